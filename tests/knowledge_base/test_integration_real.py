"""Integration: the real offline embedders on a real subset of the shipped corpus.

Slow (model loading + embedding ~1,500 chunks): marked ``slow``, and run in CI.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from knowledge_base.builder import build_index
from knowledge_base.embedders import make_embedder
from knowledge_base.errors import IndexMismatchError
from knowledge_base.paths import PROJECT_ROOT
from knowledge_base.retriever import Retriever

pytestmark = pytest.mark.slow

CORPUS = PROJECT_ROOT / "data" / "corpus"
TOPICS = ("Glaucoma", "High Blood Pressure", "Asthma", "Gout", "Diabetes", "Kidney Stones", "Shingles")


def _focus(path: Path) -> str:
    m = re.search(r"<Focus>(.*?)</Focus>", path.read_text(encoding="utf-8", errors="replace"))
    return m.group(1) if m else ""


@pytest.fixture(scope="module")
def subset(tmp_path_factory) -> Path:
    """The MedlinePlus/SeniorHealth/NHLBI files on our topics plus ~150 unrelated distractor
    files, and the first 400 rows of the Toyhom CSV."""
    root = tmp_path_factory.mktemp("subset")
    files = sorted((CORPUS / "medquad").glob("*/*.xml"))
    on_topic = [p for p in files if _focus(p) in TOPICS]
    distractors = [p for p in files if p.parent.name.startswith("4_") and p not in on_topic][:150]
    assert len(on_topic) >= 10
    for p in on_topic + distractors:
        (root / "medquad" / p.parent.name).mkdir(parents=True, exist_ok=True)
        shutil.copy(p, root / "medquad" / p.parent.name / p.name)
    lines = (CORPUS / "toyhom" / "Toyhom_IM.csv").read_text(encoding="utf-8").splitlines(keepends=True)
    (root / "toyhom").mkdir()
    (root / "toyhom" / "Toyhom_IM.csv").write_text("".join(lines[:401]), encoding="utf-8")
    return root


@pytest.fixture(scope="module")
def use_index(subset, tmp_path_factory) -> Path:
    index = tmp_path_factory.mktemp("use_index")
    report = build_index([subset], index, make_embedder("use-multilingual"), progress=False)
    assert report.documents > 600 and report.skipped == []  # 400 Toyhom rows + MedQuAD pairs
    return index


def _docs(hits):
    return [h.doc_id for h in hits]


def test_english_consumer_question(use_index):
    hits = Retriever(use_index).search("my eye pressure is high, could I go blind from glaucoma?", k=5)
    assert any("glaucoma" in h.title.lower() for h in hits[:3]), _docs(hits)


def test_chinese_question_finds_english_guideline(use_index):
    """Cross-lingual: the answer exists only in English MedQuAD; both the dense side (USE maps
    languages into one space) and the glossary-expanded BM25 side must reach it."""
    r = Retriever(use_index)
    for method in ("dense", "bm25", "hybrid"):
        hits = r.search("青光眼有什么症状？", k=5, method=method)
        assert any(h.lang == "en" and "glaucoma" in h.title.lower() for h in hits), (method, _docs(hits))


def test_chinese_question_gets_chinese_answer_and_english_guideline(use_index):
    hits = Retriever(use_index).search("高血压患者可以吃党参吗", k=10)
    assert any(h.lang == "zh" and "党参" in h.text for h in hits), _docs(hits)
    assert any(h.lang == "en" and "blood pressure" in h.title.lower() for h in hits), _docs(hits)


def test_english_question_stays_with_english_sources(use_index):
    """'How is gout treated?' resembles '癫痫如何治疗?' under USE; English readers get English."""
    hits = Retriever(use_index).search("How is gout treated?", k=5)
    assert all(h.lang == "en" for h in hits)
    assert "gout" in hits[0].title.lower()


def test_minilm_embedder_and_bi_encoder_reranker(subset, tmp_path, use_index):
    from knowledge_base.config import RetrievalConfig

    reranked = Retriever(use_index, config=RetrievalConfig(reranker="bi-encoder:minilm"))
    hits = reranked.search("What are the treatments for kidney stones?", k=3)
    assert "rerank" in hits[0].scores and "kidney stones" in hits[0].title.lower()

    small = tmp_path / "small"
    (small / "medquad").mkdir(parents=True)
    for p in list((subset / "medquad").rglob("*.xml"))[:40]:
        shutil.copy(p, small / "medquad" / p.name)
    index = tmp_path / "minilm_index"
    build_index([small], index, make_embedder("minilm"), progress=False)
    assert Retriever(index).manifest["embedder"] == {"name": "minilm", "dim": 384}
    with pytest.raises(IndexMismatchError):
        Retriever(index, embedder=make_embedder("use-multilingual")).warm_up()
