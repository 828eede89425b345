import json
import math

import pytest

from knowledge_base.evaluation.metrics import (
    EvalFileError,
    EvalQuestion,
    evaluate,
    liveqa_gain,
    load_questions,
    score_ranking,
)
from knowledge_base.records import Passage


def q(relevant, grades=None):
    return EvalQuestion(id="q", question="x", relevant=frozenset(relevant), grades=grades or {})


def test_recall_mrr_ndcg_by_hand():
    m = score_ranking(["a", "b", "c", "d", "e", "f"], q({"c", "z"}))
    assert m["recall@1"] == 0 and m["recall@5"] == 0.5 and m["recall@10"] == 0.5
    assert m["mrr@10"] == pytest.approx(1 / 3)
    idcg = 1 + 1 / math.log2(3)
    assert m["ndcg@10"] == pytest.approx((1 / math.log2(4)) / idcg)
    assert "avg_score@1" not in m


def test_liveqa_avg_score_at_1_mapping():
    assert [liveqa_gain(g) for g in (4, 3, 2, 1, None)] == [3, 2, 1, 0, 0]
    grades = {"a": 2, "b": 4}
    assert score_ranking(["b", "a"], q({"a", "b"}, grades))["avg_score@1"] == 3
    assert score_ranking(["a", "b"], q({"a", "b"}, grades))["avg_score@1"] == 1
    assert score_ranking(["x", "b"], q({"a", "b"}, grades))["avg_score@1"] == 0


def _p(doc):
    return Passage(id=f"{doc}#c0", doc_id=doc, text="", title="", url="", source="", lang="en", score=1)


def test_chunks_of_one_document_count_once():
    questions = [q({"b"})]
    result = evaluate(lambda text: [_p("a"), _p("a"), _p("a"), _p("a"), _p("a"), _p("b")], questions)
    # five chunks of "a" collapse into one document: "b" is the 2nd distinct document
    assert result["recall@5"] == 1.0 and result["mrr@10"] == 0.5


def test_groups_by_lang_and_kind(tmp_path):
    path = tmp_path / "q.jsonl"
    rows = [{"id": "1", "question": "a?", "relevant": ["a"], "lang": "en", "kind": "k1"},
            {"id": "2", "question": "b?", "relevant": ["b"], "lang": "zh", "kind": "k1"}]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    result = evaluate(lambda text: [_p("a")], load_questions(path), per_question=True)
    assert result["n"] == 2 and result["recall@1"] == 0.5
    assert result["groups"]["lang:en"]["recall@1"] == 1.0
    assert result["groups"]["lang:zh"]["recall@1"] == 0.0
    assert result["questions"][1]["retrieved"] == ["a"]


@pytest.mark.parametrize("line,match", [
    ("not json", "bad question line"),
    ('{"id": "1", "relevant": ["a"]}', "bad question line"),
    ('{"id": "1", "question": "x", "relevant": []}', "no relevant"),
    ('{"id": "1", "question": "x", "relevant": ["a"], "grades": {"a": 7}}', "grades must be 1-4"),
])
def test_bad_eval_lines_name_the_line(tmp_path, line, match):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"id": "0", "question": "ok", "relevant": ["a"]}\n' + line + "\n")
    with pytest.raises(EvalFileError, match=match) as info:
        load_questions(path)
    assert "bad.jsonl:2" in str(info.value)


def test_graded_answers_count_as_relevant(tmp_path):
    path = tmp_path / "g.jsonl"
    path.write_text(json.dumps({"id": "1", "question": "x", "relevant": [], "grades": {"a": 3, "b": 1}}))
    (question,) = load_questions(path)
    assert question.relevant == {"a"}
