"""Two real `medchat api` processes sharing one real Postgres and one index directory (issue 18,
"replicas"): a session started on one replica continues on the other, keys and ownership are
shared, a rebuild of the shared index is served by both without a restart, and killing one
replica loses nothing. The LLM is the fake backend and the index a toy one (hash embedder): what
is under test is the sharing, not the answers. Slow: two server processes start (~10 s each)."""

from __future__ import annotations

import json
import os
import signal
import subprocess

import httpx
import pytest

from tests.api.helpers import FAST_ENV
from tests.api.test_api_real import ApiServer, _medchat
from tests.conftest import write_jsonl

pytestmark = pytest.mark.slow


class Replica(ApiServer):
    def __init__(self, tmp, env: dict[str, str], name: str) -> None:
        tmp = tmp / name
        tmp.mkdir()
        old = dict(os.environ)
        os.environ.update(env)
        try:
            super().__init__(tmp)
        finally:
            os.environ.clear()
            os.environ.update(old)


@pytest.fixture
def replicas(tmp_path, postgres_url, corpus_dir, hash_embedder):
    from knowledge_base.builder import build_index

    index = tmp_path / "index"
    build_index([corpus_dir], index, hash_embedder, progress=False)
    env = {**FAST_ENV, "MEDCHAT_STORE__URL": postgres_url, "MEDCHAT_PATHS__INDEX_DIR": str(index)}
    started = [Replica(tmp_path, env, name) for name in ("a", "b")]
    try:
        for r in started:
            # ApiServer set its own SQLite paths; Postgres (store.url) wins over both
            assert r.env["MEDCHAT_STORE__URL"] == postgres_url
            r.wait_ready(120)
        yield started, env, index, corpus_dir
    finally:
        for r in started:
            r.stop()


def _key(env: dict[str, str], role: str = "patient") -> str:
    out = subprocess.run([*_medchat(), "api", "key", "create", "--role", role, "--json"],
                         env={**os.environ, **env}, capture_output=True, text=True, check=True, timeout=120)
    return json.loads(out.stdout)["key"]


def _chat(url: str, key: str, text: str, session: str | None = None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {key}"}
    if session:
        headers["X-MedChat-Session"] = session
    return httpx.post(f"{url}/v1/chat/completions", headers=headers, timeout=120,
                      json={"model": "medchat", "messages": [{"role": "user", "content": text}]})


def test_a_session_continues_on_the_other_replica_and_survives_a_killed_one(replicas):
    (a, b), env, _, _ = replicas
    key = _key(env)  # created by the CLI, straight into Postgres: both replicas know it at once
    first = _chat(a.url, key, "How is asthma treated?")
    assert first.status_code == 200, first.text
    session = first.json()["medchat"]["session_id"]
    second = _chat(b.url, key, "And what causes gout?", session)
    assert second.status_code == 200, second.text
    assert second.json()["medchat"]["session_id"] == session
    # Ownership is shared too: another key cannot read the session on either replica.
    stranger = _key(env)
    for r in (a, b):
        assert _chat(r.url, stranger, "hello", session).status_code == 404
    # the patient asks for a nurse on replica A, which is then killed: the case must survive
    asked = _chat(a.url, key, "talk to a nurse", session)
    assert asked.status_code == 200 and "handoff_requested" in asked.json()["medchat"]["flags"]
    os.kill(a.proc.pid, signal.SIGKILL)  # a replica dies mid-service
    a.proc.wait(timeout=30)
    third = _chat(b.url, key, "What are the symptoms of glaucoma?", session)
    assert third.status_code == 200, third.text
    from chatbot.store import ChatStore

    with ChatStore(env["MEDCHAT_STORE__URL"]) as store:
        users = [m.text for m in store.history(session, limit=50) if m.role == "user"]
        (case,) = store.handoffs()
    assert case.session_id == session and case.status == "waiting"  # the killed replica lost no case
    assert users == ["How is asthma treated?", "And what causes gout?", "talk to a nurse",
                     "What are the symptoms of glaucoma?"]


def test_a_rebuild_of_the_shared_index_is_served_by_both_replicas_without_a_restart(replicas):
    (a, b), env, index, corpus = replicas
    from knowledge_base.builder import build_index
    from knowledge_base.embedders import HashEmbedder

    key = _key(env)

    def hits(url: str) -> list[str]:
        response = httpx.get(f"{url}/v1/kb/search", params={"q": "tinnitus ringing ears", "k": 3},
                             headers={"Authorization": f"Bearer {key}"}, timeout=60)
        assert response.status_code == 200, response.text
        return [h["doc_id"] for h in response.json()]

    assert "ear" not in hits(a.url) and "ear" not in hits(b.url)
    write_jsonl(corpus / "more.jsonl", [{"id": "ear", "text": "Tinnitus is ringing in the ears."}])
    build_index([corpus], index, HashEmbedder(64), progress=False)  # the operator's rebuild
    assert hits(a.url)[0] == "ear" and hits(b.url)[0] == "ear"
