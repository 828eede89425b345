"""The chat store: round trips, redaction on every stored field, WAL, threads, bad input — every
test taking ``store`` runs on SQLite and on a real Postgres (``store_target``, tests/conftest.py)."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest

from chatbot.errors import MedChatError
from chatbot.store import ChatStore, StoredMessage, StoreError

PHONE = "13812345678"
EMAIL = "zhang.san@example.com"


@pytest.fixture
def store(store_target):
    s = ChatStore(store_target)
    yield s
    s.close()


def raw_rows(where: Path | ChatStore, sql: str) -> list[tuple]:
    """Read the database with a connection of its own, bypassing ChatStore, to see what is really
    stored (an SQLite path, or a store whose file or Postgres URL is opened anew)."""
    if isinstance(where, ChatStore) and where.path is None:
        import psycopg

        with psycopg.connect(where.db.url) as conn:
            return [tuple(r) for r in conn.execute(sql).fetchall()]
    conn = sqlite3.connect(where.path if isinstance(where, ChatStore) else where)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


# -- opening ----------------------------------------------------------------------------------
def test_schema_version_and_wal_mode(tmp_path: Path):
    store = ChatStore(tmp_path / "chat.sqlite")
    assert store.journal_mode() == "wal"
    assert store._read("PRAGMA busy_timeout") == [(5000,)]  # waits for other processes' writers
    assert store._read("PRAGMA foreign_keys") == [(1,)]
    db = tmp_path / "chat.sqlite"
    assert raw_rows(db, "PRAGMA journal_mode") == [("wal",)]  # persistent, seen by other processes
    assert raw_rows(db, "SELECT version FROM schema_version ORDER BY version") == [(1,), (2,), (3,)]
    tables = {r[0] for r in raw_rows(db, "SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"schema_version", "sessions", "messages", "feedback", "events", "triage"} <= tables


def test_store_and_wal_files_are_owner_only(tmp_path: Path):
    # review (c): the database and its WAL files were created -rw-r--r-- under the usual umask
    import os
    old = os.umask(0o022)
    try:
        s = ChatStore(tmp_path / "chat.sqlite")
        sid = s.new_session()
        s.add_message(sid, "user", "my chest hurts")
        modes = {p.name: p.stat().st_mode & 0o777 for p in tmp_path.iterdir()}
        s.close()
    finally:
        os.umask(old)
    assert {"chat.sqlite", "chat.sqlite-wal"} <= set(modes)
    assert all(mode == 0o600 for mode in modes.values()), modes


def test_an_existing_world_readable_store_is_tightened(tmp_path: Path):
    path = tmp_path / "chat.sqlite"
    ChatStore(path).close()
    path.chmod(0o644)
    ChatStore(path).close()
    assert path.stat().st_mode & 0o777 == 0o600


def test_reopen_keeps_data(tmp_path: Path):
    path = tmp_path / "sub" / "dir" / "chat.sqlite"  # parent directories are created
    with ChatStore(path) as s:
        sid = s.new_session(lang="zh")
        s.add_message(sid, "user", "头痛三天")
    with ChatStore(path) as s:
        assert [m.text for m in s.history(sid)] == ["头痛三天"]
        assert raw_rows(path, "SELECT count(*) FROM schema_version") == [(3,)]  # one row per version, once


def test_garbage_file_is_refused_with_a_hint(tmp_path: Path):
    path = tmp_path / "chat.sqlite"
    path.write_bytes(b"\x00\xffnot sqlite at all\x13\x37" * 500)
    with pytest.raises(StoreError) as info:
        ChatStore(path)
    err = info.value
    assert isinstance(err, MedChatError)
    assert "not a MedChat chat store or is corrupt" in err.message
    assert "file is not a database" in err.message
    assert "MEDCHAT_PATHS__DATABASE" in err.hint
    assert path.read_bytes()[:17] == b"\x00\xffnot sqlite at a"  # the file is left untouched


def test_foreign_sqlite_file_is_refused(tmp_path: Path):
    path = tmp_path / "other.sqlite"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE invoices(id INTEGER PRIMARY KEY)")
    conn.commit()
    conn.close()
    with pytest.raises(StoreError, match="not a MedChat chat store.*invoices"):
        ChatStore(path)


def test_newer_schema_version_is_refused(tmp_path: Path):
    path = tmp_path / "chat.sqlite"
    ChatStore(path).close()
    conn = sqlite3.connect(path)
    conn.execute("INSERT INTO schema_version VALUES (99)")
    conn.commit()
    conn.close()
    with pytest.raises(StoreError, match="schema version 99"):
        ChatStore(path)


# The version-1 schema as released (stop 23), written here by hand, not by chatbot.schema: the
# upgrade must work on the files that exist, whatever the migration code later becomes.
V1_SQLITE = """
CREATE TABLE schema_version(version INTEGER NOT NULL);
INSERT INTO schema_version VALUES (1);
CREATE TABLE sessions(id TEXT PRIMARY KEY, created_at TEXT NOT NULL, updated_at TEXT NOT NULL, lang TEXT,
    channel TEXT NOT NULL DEFAULT 'chat');
CREATE TABLE messages(id INTEGER PRIMARY KEY, session_id TEXT NOT NULL REFERENCES sessions(id),
    role TEXT NOT NULL CHECK (role IN ('user', 'assistant', 'system')), text TEXT NOT NULL, lang TEXT,
    created_at TEXT NOT NULL, meta TEXT NOT NULL DEFAULT '{}');
CREATE INDEX messages_session ON messages(session_id, id);
CREATE TABLE feedback(id INTEGER PRIMARY KEY, message_id INTEGER NOT NULL REFERENCES messages(id),
    rating INTEGER NOT NULL CHECK (rating IN (1, -1)), comment TEXT NOT NULL DEFAULT '', created_at TEXT NOT NULL);
CREATE TABLE events(id INTEGER PRIMARY KEY, kind TEXT NOT NULL, session_id TEXT, created_at TEXT NOT NULL,
    payload TEXT NOT NULL DEFAULT '{}');
CREATE INDEX events_kind ON events(kind, id);
CREATE TABLE triage(id INTEGER PRIMARY KEY, created_at TEXT NOT NULL, nurse TEXT NOT NULL DEFAULT '',
    intake TEXT NOT NULL DEFAULT '{}', result TEXT NOT NULL DEFAULT '{}', note TEXT NOT NULL DEFAULT '');
INSERT INTO sessions VALUES ('old-session', '2026-11-01T10:00:00.000+00:00', '2026-11-01T10:00:00.000+00:00', 'zh', 'chat');
INSERT INTO messages(session_id, role, text, lang, created_at) VALUES
    ('old-session', 'user', '头痛三天', 'zh', '2026-11-01T10:00:00.000+00:00');
"""


def test_a_version_1_store_is_upgraded_and_keeps_its_rows(tmp_path: Path):
    path = tmp_path / "chat.sqlite"
    conn = sqlite3.connect(path)
    conn.executescript(V1_SQLITE)
    conn.close()
    with ChatStore(path) as s:
        assert [m.text for m in s.history("old-session")] == ["头痛三天"]
        mid = s.add_message("old-session", "assistant", "答")
        assert mid == 2  # the id sequence continues
    assert raw_rows(path, "SELECT version FROM schema_version ORDER BY version") == [(1,), (2,), (3,)]
    assert {"staff_accounts", "staff_sessions", "login_failures"} <= {
        r[0] for r in raw_rows(path, "SELECT name FROM sqlite_master WHERE type='table'")}


def test_postgres_store_reopens_with_its_data_and_refuses_a_foreign_schema(postgres_url: str):
    with ChatStore(postgres_url) as s:
        assert s.backend == "postgresql" and s.journal_mode() == "postgresql"
        sid = s.new_session(lang="zh")
        s.add_message(sid, "user", "头痛三天")
    with ChatStore(postgres_url) as s:
        assert [m.text for m in s.history(sid)] == ["头痛三天"]
    import psycopg

    foreign = postgres_url.replace("search_path%3D", "search_path%3Dforeign_")
    schema = foreign.split("search_path%3D")[1].split("&")[0]
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
        conn.execute(f"CREATE TABLE {schema}.invoices(id int)")
    try:
        with pytest.raises(StoreError, match="not a MedChat chat store.*invoices") as err:
            ChatStore(foreign)
    finally:
        with psycopg.connect(postgres_url, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")


def test_replicas_starting_together_on_an_empty_postgres_create_the_tables_once(postgres_url: str):
    """Four stores opened at the same moment on one empty schema (replicas booting together):
    the advisory lock lets one create the tables; none fails, the versions are recorded once."""
    barrier = threading.Barrier(4)
    opened: list[ChatStore] = []
    errors: list[BaseException] = []

    def boot() -> None:
        try:
            barrier.wait()
            opened.append(ChatStore(postgres_url))
        except BaseException as exc:  # re-raised below
            errors.append(exc)

    threads = [threading.Thread(target=boot) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors, errors
    sid = opened[0].new_session()
    opened[1].add_message(sid, "user", "seen by every replica")
    assert [m.text for m in opened[3].history(sid)] == ["seen by every replica"]
    assert raw_rows(opened[2], "SELECT version FROM schema_version ORDER BY version") == [(1,), (2,), (3,)]
    for s in opened:
        s.close()


def test_unreachable_postgres_is_a_clear_error_without_the_password():
    with pytest.raises(StoreError, match="cannot connect to Postgres") as err:
        ChatStore("postgresql://medchat:s3cret-pw@127.0.0.1:1/medchat?connect_timeout=2")
    assert "s3cret-pw" not in str(err.value) and "***" in str(err.value)


def test_directory_path_is_refused(tmp_path: Path):
    with pytest.raises(StoreError, match="cannot open chat store"):
        ChatStore(tmp_path)


# -- sessions and messages --------------------------------------------------------------------
def test_message_round_trip(store: ChatStore):
    sid = store.new_session(lang="en", channel="cli")
    assert len(sid) == 32 and int(sid, 16) >= 0
    meta = {"citations": [{"n": 1, "doc_id": "asthma", "url": "https://example.org/asthma"}],
            "flags": ["query_rewritten"], "intent": {"label": "treatment", "score": 0.91},
            "red_flag": None, "timings": {"total_ms": 812.5}, "backend": "llama-cpp"}
    first = store.add_message(sid, "user", "How is asthma treated?", lang="en")
    second = store.add_message(sid, "assistant", "Inhaled corticosteroids [1].", lang="en", meta=meta)
    assert second > first
    got = store.history(sid)
    assert [(m.id, m.role, m.text, m.lang) for m in got] == [
        (first, "user", "How is asthma treated?", "en"),
        (second, "assistant", "Inhaled corticosteroids [1].", "en")]
    assert got[0].meta == {} and got[1].meta == meta
    assert isinstance(got[1], StoredMessage) and got[1].session_id == sid
    created = datetime.fromisoformat(got[0].created_at)
    assert created.utcoffset() == timezone.utc.utcoffset(None)
    assert abs((datetime.now(timezone.utc) - created).total_seconds()) < 60


def test_history_order_and_limit(store: ChatStore):
    sid = store.new_session()
    for i in range(30):
        store.add_message(sid, "user" if i % 2 == 0 else "assistant", f"m{i}")
    assert [m.text for m in store.history(sid, limit=5)] == ["m25", "m26", "m27", "m28", "m29"]
    assert [m.text for m in store.history(sid)] == [f"m{i}" for i in range(10, 30)]  # default 20
    assert store.history(sid, limit=0) == []
    assert len(store.history(sid, limit=1000)) == 30
    with pytest.raises(StoreError, match="limit"):
        store.history(sid, limit=-1)


def test_ensure_session_creates_once(store: ChatStore):
    assert store.ensure_session("gradio-Abc_123") == "gradio-Abc_123"
    assert store.ensure_session("gradio-Abc_123") == "gradio-Abc_123"
    store.add_message("gradio-Abc_123", "user", "hi")
    assert store.stats()["sessions"] == 1
    assert [m.text for m in store.history("gradio-Abc_123")] == ["hi"]


@pytest.mark.parametrize("bad", ["", "a" * 65, "has space", "../etc/passwd", "semi;colon",
                                 "中文", "x\x00y", None, 123])
def test_bad_session_id_is_refused(store: ChatStore, bad):
    with pytest.raises(StoreError, match="invalid session id"):
        store.ensure_session(bad)
    with pytest.raises(StoreError, match="invalid session id"):
        store.history(bad)
    assert store.stats()["sessions"] == 0


def test_session_id_of_64_chars_is_accepted(store: ChatStore):
    sid = "A" * 64
    assert store.ensure_session(sid) == sid


def test_message_to_unknown_session_or_with_bad_role_is_refused(store: ChatStore):
    with pytest.raises(StoreError, match="unknown session 'nope'"):
        store.add_message("nope", "user", "hello")
    sid = store.new_session()
    with pytest.raises(StoreError, match="invalid message role 'doctor'"):
        store.add_message(sid, "doctor", "hello")  # type: ignore[arg-type]
    assert store.stats()["messages"] == 0


def test_add_message_updates_session_time(store: ChatStore):
    sid = store.new_session()
    (created, updated_before), = raw_rows(store,
                                          f"SELECT created_at, updated_at FROM sessions WHERE id='{sid}'")
    time.sleep(0.01)  # timestamps have millisecond resolution
    store.add_message(sid, "user", "x")
    (updated_after,), = raw_rows(store,
                                 f"SELECT updated_at FROM sessions WHERE id='{sid}'")
    assert updated_before == created and updated_after > updated_before


# -- redaction on every stored field ---------------------------------------------------------
def test_message_text_and_meta_are_redacted_on_disk(store: ChatStore):
    sid = store.new_session(lang="zh")
    meta = {"query": f"我的手机号{PHONE}头痛", "flags": [f"contact {EMAIL}"], "nested": {"deep": [PHONE]},
            "timings": {"total_ms": 12.5}, "score": 3, "ok": True, "none": None}
    mid = store.add_message(sid, "user", f"我的手机号{PHONE}请回电，邮箱{EMAIL}", lang="zh", meta=meta)
    (text, meta_json), = raw_rows(store,
                                  f"SELECT text, meta FROM messages WHERE id={mid}")
    assert text == "我的手机号[PHONE]请回电，邮箱[EMAIL]"
    assert json.loads(meta_json) == {"query": "我的手机号[PHONE]头痛", "flags": ["contact [EMAIL]"],
                                     "nested": {"deep": ["[PHONE]"]}, "timings": {"total_ms": 12.5},
                                     "score": 3, "ok": True, "none": None}
    assert PHONE not in meta_json and EMAIL not in meta_json
    assert store.history(sid)[0].text == text  # the prompt history is the redacted text
    assert meta["query"] == f"我的手机号{PHONE}头痛"  # the caller's dict is not modified


def test_feedback_round_trip_and_redaction(store: ChatStore):
    sid = store.new_session()
    mid = store.add_message(sid, "assistant", "answer")
    up = store.add_feedback(mid, +1)
    down = store.add_feedback(mid, -1, f"wrong, call me on {PHONE}")
    got = store.recent_feedback()
    assert [(f.id, f.message_id, f.session_id, f.rating, f.comment) for f in got] == [
        (down, mid, sid, -1, "wrong, call me on [PHONE]"), (up, mid, sid, 1, "")]
    assert len(store.recent_feedback(limit=1)) == 1
    stats = store.stats()
    assert (stats["feedback"], stats["feedback_up"], stats["feedback_down"]) == (2, 1, 1)


def test_feedback_on_unknown_message_or_bad_rating_is_refused(store: ChatStore):
    with pytest.raises(StoreError, match="unknown message 999"):
        store.add_feedback(999, 1)
    sid = store.new_session()
    mid = store.add_message(sid, "assistant", "answer")
    for bad in (0, 2, -2, True, 1.0, "1"):
        with pytest.raises(StoreError, match="invalid rating"):
            store.add_feedback(mid, bad)  # type: ignore[arg-type]
    assert store.stats()["feedback"] == 0


def test_events_filter_order_and_redaction(store: ChatStore):
    sid = store.new_session()
    e1 = store.log_event("red_flag", {"category": "chest_pain", "evidence": [f"胸痛，电话{PHONE}"]},
                         session_id=sid)
    e2 = store.log_event("input_rejected", {"reason": "too_long"})
    e3 = store.log_event("red_flag", {"category": "stroke", "evidence": ["face drooping"]},
                         session_id="not-yet-a-session")  # audit lines never refused for that
    reds = store.events("red_flag")
    assert [(e.id, e.kind, e.session_id) for e in reds] == [
        (e3, "red_flag", "not-yet-a-session"), (e1, "red_flag", sid)]
    assert reds[1].payload == {"category": "chest_pain", "evidence": ["胸痛，电话[PHONE]"]}
    assert [e.id for e in store.events()] == [e3, e2, e1]
    assert [e.id for e in store.events(limit=1)] == [e3]
    assert store.stats()["red_flags"] == 2 and store.stats()["events"] == 3
    with pytest.raises(StoreError, match="invalid session id"):
        store.log_event("red_flag", {}, session_id="bad id")


def test_triage_round_trip_redaction_and_search(store: ChatStore):
    t1 = store.add_triage(
        intake={"age": 67, "sex": "M", "complaint": f"胸痛2小时，家属电话{PHONE}", "vitals": {"sbp": 150}},
        result={"level": 2, "label": "emergent"}, nurse="Nurse Li",
        note=f"ID 11010519491231002X, mail {EMAIL}")
    t2 = store.add_triage(intake={"age": 30, "complaint": "sore throat"}, result={"level": 5},
                          nurse="Nurse Wang", note="advise fluids")
    got = store.recent_triage()
    assert [t.id for t in got] == [t2, t1]
    first = got[1]
    assert first.intake == {"age": 67, "sex": "M", "complaint": "胸痛2小时，家属电话[PHONE]",
                            "vitals": {"sbp": 150}}
    assert first.result == {"level": 2, "label": "emergent"}
    assert first.note == "ID [ID], mail [EMAIL]" and first.nurse == "Nurse Li"
    assert [t.id for t in store.recent_triage(search="胸痛")] == [t1]        # in the intake JSON
    assert [t.id for t in store.recent_triage(search="nurse wang")] == [t2]  # nurse, any case
    assert [t.id for t in store.recent_triage(search="FLUIDS")] == [t2]      # note
    assert [t.id for t in store.recent_triage(search="emergent")] == [t1]    # result
    assert store.recent_triage(search="%") == []   # LIKE wildcards are literal
    assert store.recent_triage(search=PHONE) == []  # the number is not on disk to be found
    assert [t.id for t in store.recent_triage(limit=1)] == [t2]


def test_nurse_field_keeps_the_name_but_not_identifiers(store: ChatStore):
    # review (d): the nurse-name field was stored raw
    store.add_triage(intake={"complaint": "cough"}, result={"level": 5},
                     nurse=f"Nurse Li {PHONE} {EMAIL}")
    assert store.recent_triage()[0].nurse == "Nurse Li [PHONE] [EMAIL]"


# -- awkward input ---------------------------------------------------------------------------
def test_100k_character_message(store: ChatStore):
    sid = store.new_session()
    text = ("头痛发热，体温38.5°C。" * 10_000)[:100_000]
    assert len(text) == 100_000
    store.add_message(sid, "user", text)
    assert store.history(sid)[0].text == text


def test_binary_junk_and_nuls_are_stored_as_text(store: ChatStore):
    sid = store.new_session()
    junk = bytes(range(256)).decode("latin-1") + "\ud800 lone surrogate"
    store.add_message(sid, "user", f"a\x00b{junk}")
    store.add_message(sid, "user", b"\x00\xff\xfe raw bytes \x80")  # type: ignore[arg-type]
    store.add_message(sid, "user", "138\x0012345678")  # a NUL must not hide a number
    texts = [m.text for m in store.history(sid)]
    assert all("\x00" not in t for t in texts)
    assert texts[0].startswith("ab\x01\x02") and texts[0].endswith("? lone surrogate")
    assert texts[1] == "\ufffd\ufffd raw bytes \ufffd"
    assert texts[2] == "[PHONE]"


def test_unserialisable_meta_values_become_strings(store: ChatStore):
    sid = store.new_session()
    store.add_message(sid, "assistant", "x", meta={"path": Path("/tmp/a"), "ids": {1, 1},
                                                  "when": datetime(2024, 5, 1)})
    assert store.history(sid)[0].meta == {"path": "/tmp/a", "ids": [1], "when": "2024-05-01 00:00:00"}


# -- threads ---------------------------------------------------------------------------------
@pytest.mark.parametrize("shared", [True, False], ids=["one-store", "store-per-thread"])
def test_concurrent_writers_lose_nothing(store_target, shared: bool):
    """8 threads x 50 messages, each thread in its own session; with one shared ChatStore and
    with one ChatStore (connection) per thread, which exercises WAL + busy_timeout on SQLite and
    concurrent connections on Postgres."""
    path = store_target
    main = ChatStore(path)
    n_threads, n_messages = 8, 50
    sessions = [main.new_session() for _ in range(n_threads)]
    barrier = threading.Barrier(n_threads)
    errors: list[BaseException] = []

    def writer(k: int) -> None:
        s = main if shared else ChatStore(path)
        try:
            barrier.wait()
            for i in range(n_messages):
                s.add_message(sessions[k], "user", f"t{k}-m{i}", meta={"thread": k, "i": i})
        except BaseException as exc:  # collected and re-raised in the main thread
            errors.append(exc)
        finally:
            if not shared:
                s.close()

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(n_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    assert main.stats()["messages"] == n_threads * n_messages
    for k, sid in enumerate(sessions):
        got = main.history(sid, limit=1000)
        assert [m.text for m in got] == [f"t{k}-m{i}" for i in range(n_messages)]
        assert {m.meta["thread"] for m in got} == {k}
        assert all(m.session_id == sid for m in got)
    main.close()


def test_concurrent_readers_and_writers_share_one_store(store: ChatStore):
    sid = store.new_session()
    stop = threading.Event()
    seen: list[list[int]] = [[] for _ in range(4)]
    errors: list[BaseException] = []

    def reader(k: int) -> None:
        try:
            while not stop.is_set():
                got = store.history(sid, limit=500)
                # every read is a consistent prefix of what the writer wrote
                assert [m.text for m in got] == [f"m{i}" for i in range(len(got))]
                seen[k].append(len(got))
        except BaseException as exc:  # collected and re-raised in the main thread
            errors.append(exc)

    readers = [threading.Thread(target=reader, args=(k,)) for k in range(4)]
    for t in readers:
        t.start()
    for i in range(200):
        store.add_message(sid, "user", f"m{i}")
    stop.set()
    for t in readers:
        t.join(timeout=60)
    assert not errors, errors
    for counts in seen:
        assert counts and counts == sorted(counts) and counts[-1] <= 200  # never goes back
    assert len(store.history(sid, limit=500)) == 200


def test_stats_counts(store: ChatStore):
    a, b = store.new_session(), store.new_session()
    store.add_message(a, "user", "q")
    mid = store.add_message(a, "assistant", "r")
    store.add_message(b, "system", "s")
    store.add_feedback(mid, -1)
    store.log_event("red_flag", {})
    store.add_triage({}, {})
    assert store.stats() == {"sessions": 2, "messages": 3, "user_messages": 1, "assistant_messages": 1,
                             "feedback": 1, "feedback_up": 0, "feedback_down": 1, "events": 1,
                             "red_flags": 1, "triage": 1, "handoffs_waiting": 0}


def test_messages_after_returns_only_newer_messages_of_the_role(store: ChatStore):
    sid, other = store.new_session(), store.new_session()
    first = store.add_message(sid, "assistant", "a1")
    store.add_message(sid, "user", "u1")
    second = store.add_message(sid, "assistant", "a2", meta={"from": "nurse"})
    store.add_message(other, "assistant", "elsewhere")
    assert [m.text for m in store.messages_after(sid, 0)] == ["a1", "a2"]
    assert [(m.id, m.meta) for m in store.messages_after(sid, first)] == [(second, {"from": "nurse"})]
    assert store.messages_after(sid, second) == []
    assert [m.text for m in store.messages_after(sid, 0, role="user")] == ["u1"]
