"""``medchat bench all``: parts measured now, parts read from their own command's file."""

import json
import os

from typer.testing import CliRunner

from chatbot.cli import app
from chatbot.evaluation.bench import read_measured

runner = CliRunner()


def test_read_measured_names_the_file_or_the_command(tmp_path):
    missing = read_measured(tmp_path / "ui.json", "medchat bench ui")
    assert missing["status"] == "not_run" and missing["command"] == "medchat bench ui"
    (tmp_path / "ui.json").write_text(json.dumps({"ttft_ms": {"p50": 900}}))
    os.utime(tmp_path / "ui.json", (0, 0))
    found = read_measured(tmp_path / "ui.json", "medchat bench ui")
    assert found["status"] == "read" and found["figures"]["ttft_ms"]["p50"] == 900
    assert found["written_at"] == "1970-01-01T00:00:00Z"


def test_bench_all_chat_part_on_the_fake_backend(tmp_path, built_index, monkeypatch):
    monkeypatch.setenv("MEDCHAT_PATHS__DATABASE", str(tmp_path / "chat.sqlite"))
    monkeypatch.setenv("MEDCHAT_CHAT__MIN_DENSE_EVIDENCE_EN", "0")
    monkeypatch.setenv("MEDCHAT_CHAT__MIN_DENSE_EVIDENCE_ZH", "0")
    out = tmp_path / "all.json"
    result = runner.invoke(app, ["bench", "all", "--out", str(out), "--only", "chat", "--only", "ui",
                                 "--backend", "fake", "--index", str(built_index), "--quick"])
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    assert data["machine"]["cpu_count"] >= 1 and data["mode"] == "quick"
    chat = data["parts"]["chat"]
    assert chat["status"] == "measured" and chat["backend"] == "fake" and chat["questions"] == 8
    assert chat["ttft_ms"]["p50"] > 0 and "rows" not in chat
    assert data["parts"]["ui"]["status"] in ("read", "not_run")


def test_bench_all_rejects_an_unknown_part(tmp_path):
    result = runner.invoke(app, ["bench", "all", "--out", str(tmp_path / "a.json"), "--only", "warp"])
    assert result.exit_code == 2 and "unknown benchmark part" in result.output
