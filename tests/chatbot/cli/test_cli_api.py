"""`medchat api` and `medchat api key create|list|revoke` through typer's runner."""

from __future__ import annotations

import json
import os

import pytest
from typer.testing import CliRunner

from chatbot.api.keys import KeyStore
from chatbot.cli import app

runner = CliRunner()


@pytest.fixture
def keys_db(monkeypatch, tmp_path):
    path = tmp_path / "keys.sqlite"
    monkeypatch.setenv("MEDCHAT_API__KEYS_DB", str(path))
    return path


def test_key_create_prints_the_key_once_and_list_never_shows_it(keys_db):
    created = runner.invoke(app, ["api", "key", "create", "--role", "nurse", "--name", "ward 3"])
    assert created.exit_code == 0, created.output
    raw = created.stdout.strip()
    assert raw.startswith("mck_") and len(raw.splitlines()) == 1
    assert "not shown again" in created.stderr
    record = KeyStore(keys_db).authenticate(raw)
    assert record is not None and record.role == "nurse" and record.name == "ward 3"
    listed = runner.invoke(app, ["api", "key", "list"])
    assert listed.exit_code == 0
    assert record.id in listed.stdout and "nurse" in listed.stdout and "ward 3" in listed.stdout
    assert raw not in listed.output and raw.split("_", 2)[2] not in listed.output
    as_json = json.loads(runner.invoke(app, ["api", "key", "list", "--json"]).stdout)
    assert as_json == [record.to_json()] and "key" not in as_json[0]


def test_key_create_json_and_revoke(keys_db):
    data = json.loads(runner.invoke(app, ["api", "key", "create", "--role", "patient", "--json"]).stdout)
    assert data["role"] == "patient" and data["active"] and data["key"].startswith(f"mck_{data['id']}_")
    revoked = runner.invoke(app, ["api", "key", "revoke", data["id"]])
    assert revoked.exit_code == 0 and f"revoked {data['id']}" in revoked.stdout
    assert KeyStore(keys_db).authenticate(data["key"]) is None
    listed = runner.invoke(app, ["api", "key", "list"]).stdout
    assert "revoked" in listed


def test_key_errors_are_messages_not_tracebacks(keys_db):
    bad_role = runner.invoke(app, ["api", "key", "create", "--role", "doctor"])
    assert bad_role.exit_code == 2 and "error: unknown role 'doctor'" in bad_role.stderr
    assert "patient, nurse, admin" in bad_role.stderr
    unknown = runner.invoke(app, ["api", "key", "revoke", "abc123"])
    assert unknown.exit_code == 2 and "no API key with id 'abc123'" in unknown.stderr
    assert "Traceback" not in bad_role.output + unknown.output
    empty = runner.invoke(app, ["api", "key", "list"])
    assert empty.exit_code == 0 and "no API keys" in empty.stdout


def test_api_serves_with_settings_defaults_and_options(monkeypatch, keys_db):
    import chatbot.api.server

    calls = []
    monkeypatch.setattr(chatbot.api.server, "serve", lambda settings, host, port, workers: calls.append(
        (settings, host, port, workers)))
    assert runner.invoke(app, ["api"]).exit_code == 0
    assert calls[-1][1:] == ("127.0.0.1", 8000, 1)
    monkeypatch.setenv("MEDCHAT_API__PORT", "8123")
    result = runner.invoke(app, ["api", "--host", "0.0.0.0", "--backend", "fake"])
    assert result.exit_code == 0 and "MedChat API on http://0.0.0.0:8123" in result.stderr
    assert calls[-1][1:] == ("0.0.0.0", 8123, 1) and calls[-1][0].llm.backend == "fake"


def test_api_workers_pass_the_options_to_the_worker_processes(monkeypatch, keys_db, tmp_path):
    import chatbot.api.server

    calls = []
    monkeypatch.setattr(chatbot.api.server, "serve", lambda *args: calls.append(args))
    for name in ("MEDCHAT_LLM__BACKEND", "MEDCHAT_PATHS__INDEX_DIR"):
        # the command sets them for its workers: set-then-delete makes monkeypatch restore them
        monkeypatch.setenv(name, "")
        monkeypatch.delenv(name)
    result = runner.invoke(app, ["api", "--workers", "3", "--backend", "fake", "--index", str(tmp_path / "i")])
    assert result.exit_code == 0, result.output
    assert calls[-1][3] == 3 and "3 workers" in result.stderr
    assert os.environ["MEDCHAT_LLM__BACKEND"] == "fake"
    assert os.environ["MEDCHAT_PATHS__INDEX_DIR"] == str((tmp_path / "i").resolve())


def test_api_start_up_failure_is_a_message_and_nothing_listens(monkeypatch, keys_db, tmp_path):
    import uvicorn

    started = []
    monkeypatch.setattr(uvicorn, "run", lambda *a, **k: started.append(a))
    monkeypatch.setenv("MEDCHAT_CLASSIFIER__ENABLED", "false")
    monkeypatch.setenv("MEDCHAT_SAFETY__DETECTOR_DIR", "")
    monkeypatch.setenv("MEDCHAT_TRIAGE__OPINION_DIR", "")
    result = runner.invoke(app, ["api", "--backend", "fake", "--index", str(tmp_path / "none")])
    assert result.exit_code == 2 and "error: no index at" in result.stderr and "medchat kb build" in result.stderr
    assert started == [] and "Traceback" not in result.output


def test_api_invalid_settings_are_reported(monkeypatch, keys_db):
    monkeypatch.setenv("MEDCHAT_API__CORS_ORIGINS", '["https://portal.example.org/"]')
    result = runner.invoke(app, ["api"])
    assert result.exit_code == 2 and "invalid settings" in result.stderr and "cors origin" in result.stderr


@pytest.mark.parametrize("args", [["api"], ["api", "key"], ["api", "key", "create"], ["api", "key", "list"],
                                  ["api", "key", "revoke"]])
def test_api_commands_have_help(args):
    result = runner.invoke(app, args + ["--help"])
    assert result.exit_code == 0 and "Usage" in result.stdout and len(result.stdout) > 200
