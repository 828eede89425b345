"""`medchat serve`, `medchat hash-password` and `medchat bench ui` through typer's runner."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from chatbot.cli import app
from chatbot.staff.auth import verify_password

runner = CliRunner()


def test_serve_help_names_host_port_and_tabs():
    result = runner.invoke(app, ["serve", "--help"])
    assert result.exit_code == 0
    assert "--host" in result.stdout and "--port" in result.stdout and "护士分诊台" in result.stdout


def test_serve_uses_settings_defaults_and_options(monkeypatch):
    import ui.app

    calls = []
    monkeypatch.setattr(ui.app, "serve", lambda settings, host, port: calls.append((settings, host, port)))
    monkeypatch.setenv("MEDCHAT_UI__PORT", "7999")
    assert runner.invoke(app, ["serve"]).exit_code == 0
    assert calls[-1][1:] == ("127.0.0.1", 7999)
    result = runner.invoke(app, ["serve", "--host", "0.0.0.0", "--port", "8123", "--backend", "fake"])
    assert result.exit_code == 0 and calls[-1][1:] == ("0.0.0.0", 8123)
    assert calls[-1][0].llm.backend == "fake"


def test_serve_rejects_a_bad_port():
    result = runner.invoke(app, ["serve", "--port", "70000"])
    assert result.exit_code == 2


def test_hash_password_prompts_twice_and_prints_a_verifiable_hash():
    result = runner.invoke(app, ["hash-password"], input="n3w-pass-phrase\nn3w-pass-phrase\n")
    assert result.exit_code == 0, result.output
    encoded = result.stdout.strip().splitlines()[-1]
    assert encoded.startswith("pbkdf2_sha256$600000$") and verify_password("n3w-pass-phrase", encoded)
    short = runner.invoke(app, ["hash-password"], input="short\nshort\n")
    assert short.exit_code == 2 and "12" in short.output and "pbkdf2" not in short.stdout  # review (a)
    mismatch = runner.invoke(app, ["hash-password"], input="a\nb\na\na\n")
    assert "do not match" in mismatch.output.lower() or "error" in mismatch.output.lower()


@pytest.mark.slow
def test_bench_ui_runs_sessions_against_a_started_server(tmp_path, built_index, monkeypatch):
    # Hash-embedder index: open the evidence gates so the fake model answers.
    monkeypatch.setenv("MEDCHAT_CHAT__MIN_DENSE_EVIDENCE_EN", "0")
    monkeypatch.setenv("MEDCHAT_CHAT__MIN_DENSE_EVIDENCE_ZH", "0")
    monkeypatch.setenv("MEDCHAT_CLASSIFIER__ENABLED", "false")  # the load path is under test, not it
    out = tmp_path / "ui.json"
    result = runner.invoke(app, ["bench", "ui", "--sessions", "3", "--backend", "fake",
                                 "--index", str(built_index), "--out", str(out)])
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    assert data["sessions"] == 3 and data["turns"] == 6 and data["errors"] == 0 and data["cross_talk"] == 0
    assert data["backend"] == "fake:gemma3-270m"
    assert 0 < data["first_turn"]["ttft_s"]["p50"] <= data["first_turn"]["total_s"]["p95"]
    assert {t["lang"] for t in data["per_turn"]} == {"zh", "en"}
