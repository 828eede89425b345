"""FAISS dense index: exact inner product for small corpora, IVF (or HNSW) above a size threshold,
optionally moved to a GPU. Vectors are L2-normalised, so inner product = cosine.

A chunk may own several vectors ("views": its text, and for a document's first chunk the stored
question alone). ``owners[v]`` is the chunk of vector ``v``; a search returns chunks, each scored
by its best view."""

from __future__ import annotations

import logging
import math
from pathlib import Path

import numpy as np

from knowledge_base.config import IndexConfig
from knowledge_base.errors import IndexCorruptError

log = logging.getLogger(__name__)

INDEX_FILE = "dense.faiss"
OWNERS_FILE = "dense_owners.npy"


def _faiss():
    import faiss  # imported lazily: ~0.3 s and a few threads at import

    return faiss


def choose_type(n: int, config: IndexConfig) -> str:
    if config.dense_index != "auto":
        return config.dense_index
    return "flat" if n <= config.flat_max_vectors else "ivf"


class DenseIndex:
    def __init__(self, index, kind: str, config: IndexConfig, owners: np.ndarray | None = None) -> None:
        self.index = index
        self.kind = kind
        self.config = config
        self.owners = (np.arange(index.ntotal, dtype=np.int64) if owners is None
                       else np.asarray(owners, dtype=np.int64))
        if len(self.owners) != index.ntotal:
            raise IndexCorruptError(f"dense index has {index.ntotal} vectors but {len(self.owners)} owners",
                                    hint="rebuild with: medchat kb build --full")
        self._apply_search_params()

    @property
    def ntotal(self) -> int:
        """Number of vectors (views)."""
        return int(self.index.ntotal)

    @property
    def n_chunks(self) -> int:
        return int(self.owners.max()) + 1 if len(self.owners) else 0

    @property
    def dim(self) -> int:
        return int(self.index.d)

    @classmethod
    def build(cls, vectors: np.ndarray, config: IndexConfig,
              owners: np.ndarray | None = None) -> "DenseIndex":
        faiss = _faiss()
        if config.threads:
            faiss.omp_set_num_threads(config.threads)
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        n, dim = vectors.shape
        kind = choose_type(n, config)
        if kind == "flat" or n < 1000:  # IVF/HNSW need enough points to train; tiny sets stay exact
            kind = "flat"
            index = faiss.IndexFlatIP(dim)
        elif kind == "ivf":
            # sqrt(N) lists is FAISS's rule of thumb; 39 points per list is its training minimum.
            nlist = max(16, min(int(math.sqrt(n)), n // 39))
            quantizer = faiss.IndexFlatIP(dim)
            index = faiss.IndexIVFFlat(quantizer, dim, nlist, faiss.METRIC_INNER_PRODUCT)
            # Train on a sample: k-means over all 1M points costs minutes and gains little recall.
            sample = vectors[np.random.default_rng(0).choice(n, min(n, nlist * 64), replace=False)]
            index.train(sample)
        elif kind == "hnsw":
            index = faiss.IndexHNSWFlat(dim, config.hnsw_m, faiss.METRIC_INNER_PRODUCT)
        else:
            raise ValueError(f"unknown dense index type {kind!r}")
        index.add(vectors)
        return cls(index, kind, config, owners)

    def _apply_search_params(self) -> None:
        faiss = _faiss()
        if self.kind == "ivf":
            faiss.extract_index_ivf(self.index).nprobe = self.config.ivf_nprobe
        elif self.kind == "hnsw":
            self.index.hnsw.efSearch = self.config.hnsw_ef_search

    def to_gpu(self) -> "DenseIndex":
        """Move to GPU 0 when faiss-gpu and a CUDA device are present; stay on CPU otherwise."""
        faiss = _faiss()
        if not hasattr(faiss, "StandardGpuResources") or faiss.get_num_gpus() == 0:
            log.warning("use_gpu is set but faiss-gpu or a CUDA device is missing; searching on CPU "
                        "(install the [gpu] extra on a CUDA machine)")
            return self
        if self.kind == "hnsw":
            log.warning("FAISS has no GPU HNSW; keeping the HNSW index on CPU")
            return self
        self._gpu_res = faiss.StandardGpuResources()
        self.index = faiss.index_cpu_to_gpu(self._gpu_res, 0, self.index)
        return self

    def selector(self, chunk_mask: np.ndarray, content_only: bool = False):
        """A FAISS selector of the vectors whose chunk is set in ``chunk_mask`` (e.g. English);
        ``content_only`` keeps each chunk's own-text vector and drops the question views (the
        first ``n_chunks`` vectors are the chunks' own texts, in chunk order: see the builder)."""
        keep = chunk_mask[self.owners]
        if content_only:
            keep &= np.arange(self.ntotal) < self.n_chunks
        return _faiss().IDSelectorBatch(np.flatnonzero(keep).astype(np.int64))

    def search(self, query: np.ndarray, k: int, selector=None) -> list[tuple[int, float]]:
        """Top ``k`` chunks as (chunk idx, best cosine over its views)."""
        if self.ntotal == 0:
            return []
        faiss = _faiss()
        query = np.ascontiguousarray(query.reshape(1, -1), dtype=np.float32)
        # Views of one chunk may crowd the list: ask for twice as many vectors as chunks wanted.
        n = min(2 * k, self.ntotal)
        params = None
        if selector is not None:
            params = (faiss.SearchParametersIVF(sel=selector, nprobe=self.config.ivf_nprobe)
                      if self.kind == "ivf" else faiss.SearchParameters(sel=selector))
        scores, ids = self.index.search(query, n, params=params)
        best: dict[int, float] = {}
        for i, s in zip(ids[0], scores[0]):
            if i < 0:
                continue
            owner = int(self.owners[i])
            if owner not in best:  # FAISS returns best first: the first view seen is the best one
                best[owner] = float(s)
        return list(best.items())[:k]

    def reconstruct_all(self) -> np.ndarray:
        return self.index.reconstruct_n(0, self.ntotal)

    def save(self, directory: Path) -> None:
        _faiss().write_index(self.index, str(directory / INDEX_FILE))
        np.save(directory / OWNERS_FILE, self.owners)

    @classmethod
    def load(cls, directory: Path, kind: str, config: IndexConfig) -> "DenseIndex":
        faiss = _faiss()
        path = directory / INDEX_FILE
        if config.threads:
            faiss.omp_set_num_threads(config.threads)
        try:
            index = faiss.read_index(str(path))
            owners = np.load(directory / OWNERS_FILE)
        except (RuntimeError, OSError, ValueError) as exc:  # faiss: RuntimeError when truncated
            raise IndexCorruptError(f"dense index {path} is unreadable: {exc}",
                                    hint="rebuild with: medchat kb build --full") from exc
        dense = cls(index, kind, config, owners)
        return dense.to_gpu() if config.use_gpu else dense
