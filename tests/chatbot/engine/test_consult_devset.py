"""Schema of data/eval/consult_dev.jsonl, the generation dev set (format: chatbot/evaluation/generation.py)."""

from __future__ import annotations

import json

import pytest

from knowledge_base.paths import PROJECT_ROOT
from knowledge_base.text import detect_lang

DEVSET = PROJECT_ROOT / "data" / "eval" / "consult_dev.jsonl"
ALLOWED_KEYS = {"id", "question", "lang", "reference", "history", "answerable", "kind"}
KINDS = {"single", "crosslingual", "followup", "unanswerable", "injection"}


@pytest.fixture(scope="module")
def rows() -> list[dict]:
    lines = [ln for ln in DEVSET.read_text(encoding="utf-8").splitlines() if ln.strip()]
    return [json.loads(ln) for ln in lines]


def test_size_ids_and_keys(rows):
    assert len(rows) >= 48
    ids = [r["id"] for r in rows]
    assert len(set(ids)) == len(ids), "duplicate ids"
    for r in rows:
        assert set(r) <= ALLOWED_KEYS, r["id"]
        assert isinstance(r["question"], str) and r["question"].strip(), r["id"]
        assert r.get("kind") in KINDS, r["id"]
        assert isinstance(r.get("answerable"), bool), r["id"]


def test_language_labels_match_the_text_and_zh_share(rows):
    for r in rows:
        assert r["lang"] in ("zh", "en")
        assert detect_lang(r["question"]) == r["lang"], r["id"]
        if r.get("reference"):
            assert detect_lang(r["reference"]) == r["lang"], r["id"]
    assert sum(r["lang"] == "zh" for r in rows) / len(rows) >= 0.4


def test_history_is_well_formed_and_follow_ups_are_enough(rows):
    multi = [r for r in rows if r.get("history")]
    assert len(multi) >= 8
    assert {r["lang"] for r in multi} == {"zh", "en"}
    for r in multi:
        history = r["history"]
        assert isinstance(history, list) and history, r["id"]
        for turn in history:
            assert set(turn) == {"role", "content"}, r["id"]
            assert turn["role"] in ("user", "assistant"), r["id"]
            assert isinstance(turn["content"], str) and turn["content"].strip(), r["id"]
        assert history[0]["role"] == "user", r["id"]
        roles = [t["role"] for t in history]
        assert all(a != b for a, b in zip(roles, roles[1:])), f"{r['id']}: turns must alternate"
        assert history[-1]["role"] == "assistant", f"{r['id']}: the question is the next user turn"
    assert all(r["kind"] == "followup" for r in multi)


def test_answerable_items_have_references_and_unanswerable_ones_do_not(rows):
    unanswerable = [r for r in rows if r["answerable"] is False]
    assert len(unanswerable) >= 8
    assert sum(r["kind"] == "injection" for r in unanswerable) >= 2
    assert {r["lang"] for r in unanswerable if r["kind"] == "injection"} == {"zh", "en"}
    for r in rows:
        if r["answerable"]:
            assert r.get("reference", "").strip(), r["id"]
            assert r["kind"] in ("single", "crosslingual", "followup"), r["id"]
        else:
            assert "reference" not in r, r["id"]
            assert r["kind"] in ("unanswerable", "injection"), r["id"]
    assert sum(r["kind"] == "crosslingual" for r in rows) >= 4
