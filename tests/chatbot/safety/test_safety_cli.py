"""``medchat eval safety``, ``medchat bench safety`` and ``medchat safety check`` through typer's
runner, with a small JSONL written here."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from chatbot.cli import app
from tests.conftest import write_jsonl

runner = CliRunner()

CASES = [
    {"id": "e1", "text": "胸口压着疼，出了一身冷汗", "expect": "emergency", "category": "cardiac"},
    {"id": "e2", "text": "my baby is 6 weeks old and has a fever of 38.4", "expect": "emergency", "category": "infant_fever"},
    {"id": "e3", "text": "I feel a bit off today", "expect": "emergency"},   # a deliberate miss
    {"id": "n1", "text": "what are the signs of a stroke?", "expect": "not_emergency"},
    {"id": "n2", "text": "没有胸痛，就是有点咳嗽", "expect": "not_emergency"},
    {"id": "n3", "text": "我爸突然晕倒了", "expect": "not_emergency"},       # a deliberate false alarm
]


def test_eval_safety_json_contract(tmp_path):
    path = write_jsonl(tmp_path / "s.jsonl", CASES)
    result = runner.invoke(app, ["eval", "safety", str(path), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert {"file", "rules", "n", "emergencies", "non_emergencies", "recall", "false_alarm_rate",
            "misses", "false_alarm_cases", "by_lang", "by_category", "timing_ms", "results"} <= set(report)
    assert report["n"] == 6 and report["emergencies"] == 3 and report["non_emergencies"] == 3
    assert report["recall"] == round(2 / 3, 4) and report["false_alarm_rate"] == round(1 / 3, 4)
    assert report["misses"] == [{"id": "e3", "text": "I feel a bit off today"}]
    assert [f["id"] for f in report["false_alarm_cases"]] == ["n3"]
    assert report["false_alarm_cases"][0]["categories"] == ["consciousness"]
    assert report["by_category"]["cardiac"] == {"n": 1, "recall": 1.0, "category_match": 1.0}
    assert set(report["by_lang"]) == {"zh", "en"}
    assert report["timing_ms"]["mean"] > 0


def test_eval_safety_text_lists_the_misses(tmp_path):
    path = write_jsonl(tmp_path / "s.jsonl", CASES)
    result = runner.invoke(app, ["eval", "safety", str(path)])
    assert result.exit_code == 0, result.output
    assert "recall on emergencies:        66.7% (2/3)" in result.stdout
    assert "false alarms on the rest:     33.3% (1/3)" in result.stdout
    assert "e3: I feel a bit off today" in result.stdout and "n3: 我爸突然晕倒了" in result.stdout


def test_eval_safety_refuses_a_bad_file(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "x", "text": "hi", "expect": "maybe"}\n', encoding="utf-8")
    result = runner.invoke(app, ["eval", "safety", str(bad)])
    assert result.exit_code == 2 and "expect must be one of" in result.stderr
    missing = runner.invoke(app, ["eval", "safety", str(tmp_path / "none.jsonl")])
    assert missing.exit_code == 2 and "cannot read" in missing.stderr


def test_bench_safety(tmp_path):
    path = write_jsonl(tmp_path / "s.jsonl", CASES)
    result = runner.invoke(app, ["bench", "safety", "--file", str(path), "--repeats", "2", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["messages"] == 6 and report["repeats"] == 2
    assert 0 < report["per_message_ms"]["p50"] <= report["per_message_ms"]["max"]


def test_safety_check(monkeypatch):
    monkeypatch.setenv("MEDCHAT_SAFETY__LOCALE", "us")
    result = runner.invoke(app, ["safety", "check", "my mom's face is drooping", "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["emergency"] and out["category"] == "stroke" and out["number"] == "911"
    assert out["hits"][0]["rule_id"] == "stroke.face_droop" and "911" in out["message"]
    quiet = runner.invoke(app, ["safety", "check", "有点头疼"])
    lines = quiet.stdout.strip().splitlines()
    assert quiet.exit_code == 0 and lines[-1] == "no red flag"
    # the detector's verdict is shown with its version and thresholds
    assert lines[0].startswith("detector emergency-lr-") and "-> clear" in lines[0]
    assert out["detector"]["version"].startswith("emergency-lr-") and out["via"] == "lexicon"
