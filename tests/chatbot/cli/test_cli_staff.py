"""`medchat staff add|list|passwd|disable|enable` through typer's runner, on a real store file."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from chatbot.cli import app
from chatbot.staff.accounts import AccountStore
from chatbot.staff.auth import NurseAuth
from chatbot.store import ChatStore

runner = CliRunner()
PW = "ward-three-passphrase"


@pytest.fixture
def database(monkeypatch, tmp_path):
    path = tmp_path / "chat.sqlite"
    monkeypatch.setenv("MEDCHAT_PATHS__DATABASE", str(path))
    monkeypatch.delenv("MEDCHAT_STORE__URL", raising=False)
    return path


def login(database, name, password):
    with ChatStore(database) as store:
        auth = NurseAuth(accounts=AccountStore(store.db))
        token = auth.login(name, password)
        return token, (auth.check(token, role="admin") if token else None)


def test_add_list_and_login(database):
    added = runner.invoke(app, ["staff", "add", "li.wen", "--role", "nurse", "--password", PW])
    assert added.exit_code == 0, added.output
    assert "created nurse account li.wen" in added.output
    listed = runner.invoke(app, ["staff", "list", "--json"])
    rows = json.loads(listed.output)
    assert [(r["name"], r["role"], r["active"]) for r in rows] == [("li.wen", "nurse", True)]
    assert PW not in listed.output and "pbkdf2" not in listed.output
    token, admin = login(database, "li.wen", PW)
    assert token and admin is None  # a nurse, not an admin
    with ChatStore(database) as store:
        assert [e.payload for e in store.events(kind="staff_account_created")] == [
            {"user": "li.wen", "role": "nurse"}]


def test_the_password_is_prompted_hidden_and_confirmed(database):
    result = runner.invoke(app, ["staff", "add", "wang", "--role", "admin"], input=f"{PW}\n{PW}\n")
    assert result.exit_code == 0, result.output
    assert PW not in result.output
    assert login(database, "wang", PW)[1] == "wang"


def test_passwd_disable_enable(database):
    runner.invoke(app, ["staff", "add", "li.wen", "--password", PW])
    assert runner.invoke(app, ["staff", "passwd", "li.wen", "--password", "another-passphrase"]).exit_code == 0
    assert login(database, "li.wen", PW)[0] is None and login(database, "li.wen", "another-passphrase")[0]
    out = runner.invoke(app, ["staff", "disable", "li.wen"])
    assert out.exit_code == 0 and "disabled" in out.output
    assert login(database, "li.wen", "another-passphrase")[0] is None
    assert "disabled" in runner.invoke(app, ["staff", "list"]).output
    assert runner.invoke(app, ["staff", "enable", "li.wen"]).exit_code == 0
    assert login(database, "li.wen", "another-passphrase")[0]


@pytest.mark.parametrize("args, message", [
    (["staff", "add", "li", "--password", "short"], "at least 12 characters"),
    (["staff", "add", "li", "--role", "doctor", "--password", PW], "unknown staff role"),
    (["staff", "add", "has space", "--password", PW], "invalid account name"),
    (["staff", "disable", "ghost"], "no staff account named 'ghost'"),
])
def test_errors_are_bilingual_messages_not_tracebacks(database, args, message):
    result = runner.invoke(app, args)
    assert result.exit_code == 2 and message in result.output and "Traceback" not in result.output


def test_a_taken_name_is_refused(database):
    runner.invoke(app, ["staff", "add", "li.wen", "--password", PW])
    result = runner.invoke(app, ["staff", "add", "li.wen", "--password", PW])
    assert result.exit_code == 2 and "exists already" in result.output and "账号已存在" in result.output


def test_empty_list_says_how_to_add(database):
    result = runner.invoke(app, ["staff", "list"])
    assert result.exit_code == 0 and "medchat staff add" in result.output
