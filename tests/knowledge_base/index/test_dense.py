import logging

import numpy as np
import pytest

from knowledge_base.config import IndexConfig
from knowledge_base.errors import IndexCorruptError
from knowledge_base.index.dense import DenseIndex, choose_type


def _clustered(n: int, dim: int = 32, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(20, dim))
    x = centres[rng.integers(0, 20, n)] + 0.3 * rng.normal(size=(n, dim))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def test_auto_switches_from_flat_to_ivf_at_the_threshold():
    cfg = IndexConfig(flat_max_vectors=1000)
    assert choose_type(1000, cfg) == "flat" and choose_type(1001, cfg) == "ivf"
    assert choose_type(10, IndexConfig(dense_index="hnsw")) == "hnsw"


@pytest.mark.parametrize("kind", ["flat", "ivf", "hnsw"])
def test_each_index_type_finds_exact_neighbours(kind, tmp_path):
    x = _clustered(3000)
    dense = DenseIndex.build(x, IndexConfig(dense_index=kind, ivf_nprobe=8))
    assert dense.kind == kind and dense.ntotal == 3000
    queries = x[:50]
    exact = np.argmax(queries @ x.T, axis=1)
    hits = [dense.search(q, 1)[0] for q in queries]
    recall = np.mean([h[0] == e for h, e in zip(hits, exact)])
    assert recall >= (1.0 if kind == "flat" else 0.9), recall
    assert hits[0][1] == pytest.approx(1.0, abs=1e-4)  # a vector's own cosine
    dense.save(tmp_path)
    loaded = DenseIndex.load(tmp_path, kind, IndexConfig(dense_index=kind, ivf_nprobe=8))
    assert loaded.search(queries[0], 5) == dense.search(queries[0], 5)


def test_views_are_aggregated_to_their_chunk_by_best_score():
    x = _clustered(4)
    views = np.vstack([x, x[2:3]])  # a second vector for chunk 2
    dense = DenseIndex.build(views, IndexConfig(), owners=np.array([0, 1, 2, 3, 2]))
    assert dense.n_chunks == 4 and dense.ntotal == 5
    result = dense.search(x[2], 4)
    assert [c for c, _ in result].count(2) == 1 and result[0][0] == 2


def test_selector_restricts_to_masked_chunks():
    x = _clustered(200)
    dense = DenseIndex.build(x, IndexConfig())
    mask = np.zeros(200, dtype=bool)
    mask[100:] = True
    hits = dense.search(x[5], 10, dense.selector(mask))
    assert len(hits) == 10 and all(c >= 100 for c, _ in hits)


def test_owner_count_mismatch_is_corruption():
    import faiss

    index = faiss.IndexFlatIP(8)
    index.add(_clustered(3, 8))
    with pytest.raises(IndexCorruptError, match="3 vectors but 2 owners"):
        DenseIndex(index, "flat", IndexConfig(), owners=np.array([0, 1]))


def test_use_gpu_without_gpu_warns_and_keeps_searching(tmp_path, caplog):
    x = _clustered(50)
    DenseIndex.build(x, IndexConfig()).save(tmp_path)
    with caplog.at_level(logging.WARNING):
        dense = DenseIndex.load(tmp_path, "flat", IndexConfig(use_gpu=True))
    assert "searching on CPU" in caplog.text
    assert dense.search(x[0], 1)[0][0] == 0
