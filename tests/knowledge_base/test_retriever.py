
import pytest

from knowledge_base.config import RetrievalConfig
from knowledge_base.errors import QueryError
from knowledge_base.retriever import Retriever, prepare_query


def test_each_method_finds_the_topic(built_index):
    r = Retriever(built_index)
    for method in ("bm25", "dense", "hybrid"):
        hits = r.search("What causes gout and uric acid?", k=3, method=method)
        assert hits[0].doc_id == "gout", method
        assert method == "hybrid" or set(hits[0].scores) == {method}


def test_hybrid_score_is_reciprocal_rank_fusion(built_index):
    r = Retriever(built_index, config=RetrievalConfig(rrf_k=60))
    bm25 = [p.id for p in r.search("glaucoma eye pressure", k=10, method="bm25")]
    dense = [p.id for p in r.search("glaucoma eye pressure", k=10, method="dense")]
    hybrid = r.search("glaucoma eye pressure", k=10, method="hybrid")
    for p in hybrid:
        expected = sum(1 / (60 + ranks.index(p.id) + 1) for ranks in (bm25, dense) if p.id in ranks)
        assert p.score == pytest.approx(expected, rel=1e-6)
    assert [p.score for p in hybrid] == sorted((p.score for p in hybrid), reverse=True)


def test_chinese_query_finds_chinese_document(built_index):
    hits = Retriever(built_index).search("糖尿病人可以吃苹果吗", k=2, method="bm25")
    assert hits[0].doc_id == "zh_diabetes"
    assert hits[0].lang == "zh"


def test_crosslingual_expansion_lets_bm25_cross_languages(built_index):
    on = Retriever(built_index, config=RetrievalConfig(crosslingual_expansion=True))
    off = Retriever(built_index, config=RetrievalConfig(crosslingual_expansion=False))
    assert on.search("哮喘", k=1, method="bm25")[0].doc_id == "asthma"
    assert off.search("哮喘", k=1, method="bm25") == []


def test_english_queries_search_english_sources_only(built_index):
    # "diabetes" is in the glossary; before, en->zh expansion pulled in the Chinese diabetes doc
    mono = Retriever(built_index, config=RetrievalConfig(english_sources_for_english=True))
    both = Retriever(built_index, config=RetrievalConfig(english_sources_for_english=False))
    assert all(h.lang == "en" for h in mono.search("diabetes fruit blood sugar", k=6))
    assert any(h.lang == "zh" for h in both.search("diabetes fruit blood sugar", k=6, method="dense"))


def test_passage_json_contract(built_index):
    p = Retriever(built_index).search("high blood pressure salt", k=1)[0]
    data = p.to_json()
    assert list(data)[:8] == ["doc_id", "chunk_id", "title", "url", "source", "lang", "score", "text"]
    assert data["doc_id"] == "hypertension"
    assert data["chunk_id"] == "hypertension#c0"
    assert data["url"] == "https://example.org/hypertension"
    assert data["source"] == "Test/EN"
    assert data["text"].startswith("What are the treatments for high blood pressure?")


def test_max_per_doc_and_k(built_index):
    r = Retriever(built_index, config=RetrievalConfig(max_per_doc=1))
    hits = r.search("treatment", k=4)
    assert len(hits) <= 4
    assert len({h.doc_id for h in hits}) == len(hits)


@pytest.mark.parametrize("query", ["", "   ", "\x00\x01", "\n\t"])
def test_empty_query_is_refused(built_index, query):
    with pytest.raises(QueryError, match="empty"):
        Retriever(built_index).search(query)


def test_huge_query_is_cut_but_answered(built_index):
    query = "asthma inhaler " + "x" * 100_000 + " wheezing"
    cut = prepare_query(query, 2000)
    assert len(cut) <= 2001 and cut.startswith("asthma") and cut.endswith("wheezing")
    hits = Retriever(built_index).search(query, k=1)
    assert hits[0].doc_id == "asthma"


def test_section_hint_adds_a_small_bonus_only_to_that_section(built_index):
    r = Retriever(built_index)
    base = {p.id: p.score for p in r.search("treated", k=6)}
    hinted = r.search("treated", k=6, section_hint="causes")
    bonus = 0.25 * (1 / 61 - 1 / 62)
    assert any(p.section == "causes" for p in hinted)
    for p in hinted:
        expected = base[p.id] + (bonus if p.section == "causes" else 0.0)
        assert p.score == pytest.approx(expected, rel=1e-9)
    assert [p.score for p in hinted] == sorted((p.score for p in hinted), reverse=True)


def test_reranker_reorders(built_index):
    class ReverseAlpha:
        name = "test"

        def rerank(self, query, passages):
            return [-ord(p.doc_id[0]) for p in passages]

    hits = Retriever(built_index, reranker=ReverseAlpha()).search("treatment of disease", k=3)
    firsts = [h.doc_id[0] for h in hits]
    assert firsts == sorted(firsts)
    assert "rerank" in hits[0].scores


def test_reload_switches_to_new_build(tmp_path, corpus_dir, hash_embedder):
    from knowledge_base.builder import build_index
    from tests.conftest import write_jsonl

    index = tmp_path / "idx"
    build_index([corpus_dir], index, hash_embedder, progress=False)
    r = Retriever(index)
    assert r.search("tinnitus", k=1, method="bm25") == []
    write_jsonl(corpus_dir / "more.jsonl", [{"id": "ear", "text": "Tinnitus is ringing in the ears."}])
    build_index([corpus_dir], index, hash_embedder, progress=False)
    r.reload()
    assert r.search("tinnitus", k=1, method="bm25")[0].doc_id == "ear"


def test_a_swap_by_another_process_is_followed_on_the_next_search(tmp_path, corpus_dir, hash_embedder):
    """Replicas share one read-only index volume; a rebuild elsewhere swaps ``current`` and every
    replica serves the new build from its next search, without a restart or a reload call."""
    import os

    from knowledge_base.builder import build_index
    from tests.conftest import write_jsonl

    index = tmp_path / "idx"
    build_index([corpus_dir], index, hash_embedder, progress=False)
    r = Retriever(index)
    assert r.search("tinnitus", k=1, method="bm25") == []
    first = r.manifest["build_id"]
    write_jsonl(corpus_dir / "more.jsonl", [{"id": "ear", "text": "Tinnitus is ringing in the ears."}])
    build_index([corpus_dir], index, hash_embedder, progress=False)
    assert r.search("tinnitus", k=1, method="bm25")[0].doc_id == "ear"
    assert r.manifest["build_id"] != first
    # A swap to a damaged build (same-size tampering of its chunk store) keeps the good one serving.
    write_jsonl(corpus_dir / "more2.jsonl", [{"id": "hic", "text": "Hiccups are sudden contractions."}])
    build_index([corpus_dir], index, hash_embedder, progress=False)
    chunks = index / "current" / "chunks.sqlite"
    data = bytearray(chunks.read_bytes())
    data[len(data) // 2] ^= 0xFF
    os.chmod(chunks, 0o644)
    chunks.write_bytes(bytes(data))
    assert r.search("tinnitus", k=1, method="bm25")[0].doc_id == "ear"   # old build still serving
    assert r.search("hiccups", k=1, method="bm25") == []
    assert r.follow_swap() is False                                       # refused once, not retried


def test_chinese_query_gets_english_only_dense_lists(built_index):
    """Hybrid search of a Chinese query adds dense rankings restricted to English chunks (and the
    glossary translation): with the hash embedder a Chinese query shares no token with English
    text, so English chunks can only appear through those lists."""
    r = Retriever(built_index, config=RetrievalConfig(crosslingual_weight=1.0, crosslingual_expansion=True))
    hits = r.search("哮喘怎么治疗", k=10)
    english = [h for h in hits if h.lang == "en"]
    assert english and all("dense_en" in h.scores for h in english)
    assert any(h.doc_id == "asthma" and "dense_en_gloss" in h.scores for h in english)

    off = Retriever(built_index, config=RetrievalConfig(crosslingual_weight=0.0, crosslingual_expansion=False))
    assert all("dense_en" not in h.scores for h in off.search("哮喘怎么治疗", k=10))
    # English queries and the pure dense method never get the extra lists
    assert all("dense_en" not in h.scores for h in r.search("asthma treatment", k=10))
    assert all(set(h.scores) == {"dense"} for h in r.search("哮喘怎么治疗", k=10, method="dense"))


def test_question_view_points_at_first_chunk(tmp_path, hash_embedder):
    from knowledge_base.builder import build_index
    from tests.conftest import write_jsonl

    src = tmp_path / "src"
    src.mkdir()
    long_answer = " ".join(f"Sentence {i} about kidney filtering and urine." for i in range(80))
    write_jsonl(src / "d.jsonl", [{"id": "kid", "text": long_answer, "question": "What do kidneys do?"}])
    index = tmp_path / "idx"
    report = build_index([src], index, hash_embedder, progress=False)
    r = Retriever(index)
    dense = r._loaded.dense if r.warm_up() is None else None
    assert report.chunks > 2
    assert dense.ntotal == report.chunks + 1 and dense.n_chunks == report.chunks
    assert dense.owners[-1] == 0  # the question view belongs to chunk 0
    hit = r.search("What do kidneys do?", k=1, method="dense")[0]
    assert hit.id == "kid#c0" and hit.score == pytest.approx(1.0, abs=1e-5)
