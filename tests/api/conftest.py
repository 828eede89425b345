"""The API on the toy corpus (hash embedder), the fake LLM and temp files, configured through the
same MEDCHAT_* variables as the CLI tests, so an API answer and a CLI answer come from identical
settings. The USE-based parts (classifier, emergency detector, triage opinion) are off: they are
the engine's, tested elsewhere; the lexicon red-flag screen stays on.

Every API test runs twice: on the embedded SQLite store and on a real Postgres (``store.url``:
sessions, messages, events and the API keys in one database), the deployment's store."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests.api.helpers import FAST_ENV, make_client, new_key


@pytest.fixture(params=["sqlite", "postgres"])
def api_env(request, monkeypatch, tmp_path, built_index):
    for name, value in FAST_ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("MEDCHAT_PATHS__INDEX_DIR", str(built_index))
    monkeypatch.setenv("MEDCHAT_PATHS__DATABASE", str(tmp_path / "chat.sqlite"))
    monkeypatch.setenv("MEDCHAT_API__KEYS_DB", str(tmp_path / "keys.sqlite"))
    if request.param == "postgres":
        monkeypatch.setenv("MEDCHAT_STORE__URL", request.getfixturevalue("postgres_url"))
    else:
        monkeypatch.delenv("MEDCHAT_STORE__URL", raising=False)
    return tmp_path


@pytest.fixture
def client(api_env) -> TestClient:
    with make_client() as c:
        yield c


@pytest.fixture
def keys(client) -> dict[str, str]:
    """A raw key per role."""
    return {role: new_key(client, role, f"test {role}") for role in ("patient", "nurse", "admin")}
