"""``run_kb_bench`` end to end at toy scale: a slice of the real corpus with the hash embedder and a
5,000-chunk synthetic index opened by a real Retriever."""

import json

import pytest

from chatbot.settings import load_settings
from knowledge_base.evaluation.bench import run_kb_bench

METHODS = ("hybrid", "bm25", "dense")


def _check_latency(query: dict) -> None:
    for method in METHODS:
        s = query[method]
        assert s["n"] == 20
        assert 0 < s["p50"] <= s["p95"] <= s["max"], (method, s)
        assert s["mean"] > 0


@pytest.mark.slow
def test_quick_bench_writes_plausible_json(tmp_path):
    settings = load_settings()
    # Never time queries on a developer's real index: the fresh slice build must be the one used.
    settings.paths = settings.paths.model_copy(update={"index_dir": tmp_path / "no-index"})
    out = tmp_path / "out" / "kb.json"
    lines: list[str] = []

    result = run_kb_bench(settings=settings, out=out, synthetic=5000, n_queries=20,
                          work_dir=tmp_path / "work", quick=True, echo=lines.append,
                          embedder="hash")

    assert out.is_file()
    data = json.loads(out.read_text(encoding="utf-8"))
    assert data == json.loads(json.dumps(result))
    assert data["machine"]["cpu_count"] >= 1 and data["machine"]["ram_gb"] > 0

    corpus = data["corpus"]
    build = corpus["build"]
    assert build["chunks"] > 0 and build["documents"] > 0 and build["seconds"] > 0
    assert build["chunks_per_s"] > 0 and build["embed_vectors_per_s"] > 0
    # Empty cache: every distinct text is embedded (identical texts share one vector; question
    # views add some).
    assert build["embedded_vectors"] >= 0.9 * build["chunks"]
    assert {"load", "embed", "faiss", "bm25", "sqlite"} <= set(build["stage_seconds"])
    inc = corpus["incremental"]
    assert inc["embedded_vectors"] == 1
    assert inc["reused_documents"] == build["documents"] and inc["documents"] == build["documents"] + 1
    assert 0 < inc["seconds"]
    query = corpus["query"]
    assert query["index_origin"] == "fresh" and query["embedder"] == "hash:64"
    assert query["results_min"] >= 1
    _check_latency(query)
    assert set(query["components_ms"]) == {"embed_ms", "bm25_ms", "dense_ms"}
    assert corpus["index_mb"] > 0 and corpus["peak_rss_mb"] > 0
    assert corpus["first_query_s"] >= build["seconds"]

    syn = data["synthetic"]
    assert syn["chunks"] == 5000
    assert syn["query"]["results_min"] == 10  # a real Retriever opened the synthetic index
    _check_latency(syn["query"])
    assert syn["build_seconds"]["total"] > 0 and syn["index_mb"] > 0
    assert syn["peak_rss_mb"] >= corpus["peak_rss_mb"] > 0
    assert data["targets"] == {"first_query_s": 300, "incremental_s": 10, "p95_default_ms": 50,
                               "p95_1m_ms": 100}
    assert any(line.startswith("synthetic") for line in lines)  # the human table was printed
