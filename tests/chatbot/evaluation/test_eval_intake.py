"""`medchat eval intake`: the simulated patient, both dispositions and the figures."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from chatbot.cli import app as cli
from chatbot.evaluation.intake import IntakeEvalError, evaluate_intake, read_cases
from tests.chatbot.engine.test_symptom_intake import service_on

CASES = [
    {"id": "c1", "lang": "en", "first_message": "I have had a headache since this morning", "age_answer": "45",
     "onset_answer": "this morning", "severity_answer": "3", "warning_signs_answer": "no", "expected": "sc"},
    {"id": "c2", "lang": "en", "first_message": "I have had a headache since this morning", "age_answer": "45",
     "onset_answer": "this morning", "severity_answer": "9",
     "warning_signs_answer": "yes, it came on suddenly like a thunderclap and my neck is stiff", "expected": "em"},
    {"id": "c3", "lang": "zh", "first_message": "我头痛两天了", "age_answer": "30岁", "onset_answer": "两天",
     "severity_answer": "5分", "warning_signs_answer": "没有", "expected": "ne"},
]


def test_the_answers_change_the_disposition_the_first_message_alone_could_not(built_index):
    result = evaluate_intake(CASES, lambda db: service_on(built_index, db))
    by_id = {it["id"]: it for it in result["items"]}
    # one message: a headache "since this morning" reads as self-care for all three
    assert [by_id[i]["one_message"] for i in ("c1", "c2", "c3")] == ["sc", "sc", "sc"]
    assert [by_id[i]["after_intake"] for i in ("c1", "c2", "c3")] == ["sc", "em", "ne"]
    assert by_id["c2"]["questions"][0] == "check"  # the red-flag check first
    assert result["one_message"]["accuracy"] == pytest.approx(1 / 3, abs=1e-3)
    assert result["after_intake"]["accuracy"] == 1.0 and result["after_intake"]["emergency_recall"] == 1.0
    assert result["one_message"]["under_triage_rate"] == pytest.approx(2 / 3, abs=1e-3)
    assert result["intake_rate"] == 1.0 and result["mean_questions"] >= 1
    assert {e["id"] for e in result["one_message"]["errors"]} == {"c2", "c3"}


def test_a_malformed_case_file_is_a_clear_error(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "x", "first_message": "hi"}\n', encoding="utf-8")
    with pytest.raises(IntakeEvalError, match="bad.jsonl:1"):
        read_cases(bad)
    bad.write_text(json.dumps({**CASES[0], "expected": "urgent"}) + "\n", encoding="utf-8")
    with pytest.raises(IntakeEvalError, match="em, ne or sc"):
        read_cases(bad)


def test_the_cli_reports_a_bad_file_as_a_message(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text("not json\n", encoding="utf-8")
    out = CliRunner().invoke(cli, ["eval", "intake", str(bad)])
    assert out.exit_code == 2 and "not an intake case" in out.output and "Traceback" not in out.output


@pytest.mark.slow
def test_the_cli_runs_the_real_service_on_the_default_index(tmp_path):
    path = tmp_path / "cases.jsonl"
    path.write_text("".join(json.dumps(c, ensure_ascii=False) + "\n" for c in CASES), encoding="utf-8")
    out = CliRunner().invoke(cli, ["eval", "intake", str(path), "--json"])
    assert out.exit_code == 0, out.output
    data = json.loads(out.output)
    assert data["n"] == 3 and {"one_message", "after_intake", "intake_rate", "mean_questions", "by_lang"} <= set(data)
    assert data["after_intake"]["emergency_recall"] == 1.0  # the thunderclap answer
