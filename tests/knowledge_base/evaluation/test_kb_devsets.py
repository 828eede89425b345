"""Retrieval dev sets under data/eval/, their generator (knowledge_base/evaluation/devsets.py) and the bilingual
glossary (knowledge_base/resources/glossary_zh_en.tsv).

The set of valid document ids is rebuilt here by parsing the shipped corpus directly (ElementTree +
csv, the same id scheme as the loaders), independently of knowledge_base.evaluation.devsets, so a drift in
either the generator or the hand-written labels is caught."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from knowledge_base.evaluation.devsets import build_generated_devsets, paraphrase_question
from knowledge_base.paths import PROJECT_ROOT

ROOT = PROJECT_ROOT
CORPUS = ROOT / "data" / "corpus"
EVAL = ROOT / "data" / "eval"
GLOSSARY = ROOT / "knowledge_base" / "resources" / "glossary_zh_en.tsv"
CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
EVAL_FILES = sorted(EVAL.glob("retrieval_*.jsonl"))


def _child(elem, *names):
    wanted = {n.lower() for n in names}
    return next((c for c in elem if c.tag.lower() in wanted), None)


def _corpus_ids() -> set[str]:
    # The ids the real loader gives the shipped corpus: exactly what the index will contain.
    from knowledge_base.loaders import load_sources

    return {d.id for d in load_sources([CORPUS]).documents}


@pytest.fixture(scope="module")
def corpus_ids() -> set[str]:
    assert CORPUS.is_dir(), "the shipped corpus data/corpus is missing"
    return _corpus_ids()


# ----------------------------------------------------------------------------- (a) dev set files
def test_expected_files_exist():
    names = {p.name for p in EVAL_FILES}
    assert {"retrieval_en_consumer.jsonl", "retrieval_zh_en_crosslingual.jsonl", "retrieval_zh_consumer.jsonl",
            "retrieval_en_medquad.jsonl", "retrieval_zh_toyhom.jsonl"} <= names


@pytest.mark.parametrize("path", EVAL_FILES, ids=lambda p: p.name)
def test_devset_lines_are_valid(path: Path, corpus_ids: set[str]):
    seen = set()
    lines = path.read_text(encoding="utf-8").splitlines()
    assert lines, f"{path.name} is empty"
    for n, line in enumerate(lines, start=1):
        item = json.loads(line)
        where = f"{path.name}:{n}"
        assert isinstance(item.get("id"), str) and item["id"], where
        assert item["id"] not in seen, f"{where}: duplicate id {item['id']}"
        seen.add(item["id"])
        assert isinstance(item.get("question"), str) and item["question"].strip(), where
        relevant = item.get("relevant")
        assert isinstance(relevant, list) and relevant, f"{where}: relevant must be a non-empty list"
        assert len(set(relevant)) == len(relevant), f"{where}: duplicate relevant ids"
        missing = [d for d in relevant if d not in corpus_ids]
        assert not missing, f"{where}: unknown doc ids {missing}"
        assert item.get("lang") in {"en", "zh"}, where
        if "grades" in item:
            assert set(item["grades"]) <= set(relevant) and all(1 <= g <= 4 for g in item["grades"].values()), where


def test_hand_written_sets_have_expected_shape():
    def load(name):
        return [json.loads(l) for l in (EVAL / name).read_text(encoding="utf-8").splitlines()]
    en, xl, zh = load("retrieval_en_consumer.jsonl"), load("retrieval_zh_en_crosslingual.jsonl"), load("retrieval_zh_consumer.jsonl")
    assert len(en) == 80 and all(i["lang"] == "en" and i["kind"] == "consumer" for i in en)
    assert len(xl) == 80 and all(i["lang"] == "zh" and i["kind"] == "crosslingual" and CJK.search(i["question"]) for i in xl)
    assert all(not d.startswith("Toyhom_") for i in xl for d in i["relevant"])
    assert len(zh) == 60 and all(i["kind"] == "consumer" and CJK.search(i["question"]) for i in zh)
    assert all(d.startswith("Toyhom_IM_") for i in zh for d in i["relevant"]) and max(len(i["relevant"]) for i in zh) <= 6


# ----------------------------------------------------------------------------- (b) generator
def test_generator_is_deterministic(tmp_path: Path):
    a, b = tmp_path / "a", tmp_path / "b"
    counts_a = build_generated_devsets(CORPUS, a, n_en=40, n_zh=30, seed=7)
    counts_b = build_generated_devsets(CORPUS, b, n_en=40, n_zh=30, seed=7)
    assert counts_a == counts_b == {"retrieval_en_medquad.jsonl": 40, "retrieval_zh_toyhom.jsonl": 30}
    for name in counts_a:
        assert (a / name).read_bytes() == (b / name).read_bytes()
    zh = [json.loads(l) for l in (a / "retrieval_zh_toyhom.jsonl").read_text(encoding="utf-8").splitlines()]
    assert all(len(i["question"]) <= 300 and i["relevant"][0].startswith("Toyhom_IM_") for i in zh)


def test_generator_paraphrases_focus(tmp_path: Path):
    build_generated_devsets(CORPUS, tmp_path, n_en=60, n_zh=1, seed=13)
    items = [json.loads(l) for l in (tmp_path / "retrieval_en_medquad.jsonl").read_text(encoding="utf-8").splitlines()]
    paraphrased = [i for i in items if i["paraphrased"]]
    assert paraphrased, "expected some questions with a synonym substituted"
    # the committed file: a paraphrased question must differ from the stored MedQuAD question
    committed = [json.loads(l) for l in (EVAL / "retrieval_en_medquad.jsonl").read_text(encoding="utf-8").splitlines()]
    questions = _stored_questions({i["relevant"][0] for i in committed if i["paraphrased"]})
    for item in committed:
        if item["paraphrased"]:
            assert item["question"] != questions[item["relevant"][0]]


def _stored_questions(ids: set[str]) -> dict[str, str]:
    from knowledge_base.evaluation.devsets import iter_medquad

    return {row["id"]: " ".join(row["question"].split()) for row in iter_medquad(CORPUS) if row["id"] in ids}


def test_paraphrase_question_unit():
    import random
    q, changed = paraphrase_question("What causes Foo syndrome ?", "Foo syndrome", ["Bar disease"], random.Random(1))
    assert changed and q == "What causes Bar disease ?"
    assert paraphrase_question("What is X ?", "X", [], random.Random(1)) == ("What is X ?", False)
    assert paraphrase_question("What is X ?", "X", ["x"], random.Random(1)) == ("What is X ?", False)


# ----------------------------------------------------------------------------- (c) glossary
def test_glossary_parses():
    lines = [l for l in GLOSSARY.read_text(encoding="utf-8").splitlines() if l.strip()]
    assert lines[0].startswith("#"), "glossary must start with a purpose/licence comment"
    assert "MIT" in "\n".join(l for l in lines if l.startswith("#"))
    content = [l for l in lines if not l.startswith("#")]
    assert content[0] == "zh\ten"
    rows = content[1:]
    assert len(rows) >= 400
    seen: dict[str, int] = {}
    for n, row in enumerate(rows, start=1):
        cols = row.split("\t")
        assert len(cols) == 2, f"row {n}: {row!r}"
        zh = [t.strip() for t in cols[0].split("|") if t.strip()]
        en = [t.strip() for t in cols[1].split("|") if t.strip()]
        assert zh and en, f"row {n}: {row!r}"
        for term in zh:
            assert CJK.search(term), f"row {n}: zh term without CJK: {term!r}"
            assert term not in seen, f"row {n}: zh term {term!r} already in row {seen[term]}"
            seen[term] = n
        for term in en:
            assert not CJK.search(term), f"row {n}: en term with CJK: {term!r}"
