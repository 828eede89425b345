"""SQLite store of the consultation side: sessions, messages, feedback, audit events (e.g.
red-flag escalations) and nurse triage records, in one file (``paths.database``, WAL mode).

Everything a person typed is passed through :func:`chatbot.redact.redact` *before* it is
written: message text, every string inside a message's ``meta``, feedback comments, event
payloads, triage intake, result and note. The stored logs therefore never hold a phone number,
e-mail, ID or card number.

:meth:`ChatStore.history`, which the service uses to build the next prompt, reads back that
redacted text. This is deliberate: the model never needs a patient's phone number to answer a
medical question, and keeping one unredacted copy "just for the prompt" would mean an
identifier-bearing copy somewhere. The reply to the *current* message is built from the live
input, so the patient sees no difference.

Threads: one connection guarded by a lock (not a connection per thread). SQLite serialises
writers anyway and every statement here takes well under a millisecond, so per-thread
connections would buy nothing for a chat app's load, while leaking a connection for every
short-lived worker thread (Gradio's pool, test threads) and making :meth:`close` unable to reach
them. WAL + ``busy_timeout`` still matter: other *processes* (the CLI, the nurse console) read
while the chat writes, and wait instead of failing with "database is locked".
"""

from __future__ import annotations

import json
import logging
import os
import re
import sqlite3
import threading
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator, Literal, Mapping

from chatbot.errors import MedChatError
from chatbot.redact import redact

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
BUSY_TIMEOUT_MS = 5000
ROLES = ("user", "assistant", "system")
Role = Literal["user", "assistant", "system"]

_SESSION_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
_HINT_PATH = ("move the file away (a new, empty store is created on the next start) or point "
              "MEDCHAT_PATHS__DATABASE / paths.database at another file")

_SCHEMA = f"""
CREATE TABLE schema_version(version INTEGER NOT NULL);
INSERT INTO schema_version VALUES ({SCHEMA_VERSION});
CREATE TABLE sessions(
    id TEXT PRIMARY KEY,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    lang TEXT,
    channel TEXT NOT NULL DEFAULT 'chat');
CREATE TABLE messages(
    id INTEGER PRIMARY KEY,
    session_id TEXT NOT NULL REFERENCES sessions(id),
    role TEXT NOT NULL CHECK (role IN ('user', 'assistant', 'system')),
    text TEXT NOT NULL,
    lang TEXT,
    created_at TEXT NOT NULL,
    meta TEXT NOT NULL DEFAULT '{{}}');
CREATE INDEX messages_session ON messages(session_id, id);
CREATE TABLE feedback(
    id INTEGER PRIMARY KEY,
    message_id INTEGER NOT NULL REFERENCES messages(id),
    rating INTEGER NOT NULL CHECK (rating IN (1, -1)),
    comment TEXT NOT NULL DEFAULT '',
    created_at TEXT NOT NULL);
CREATE TABLE events(
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,
    session_id TEXT,
    created_at TEXT NOT NULL,
    payload TEXT NOT NULL DEFAULT '{{}}');
CREATE INDEX events_kind ON events(kind, id);
CREATE TABLE triage(
    id INTEGER PRIMARY KEY,
    created_at TEXT NOT NULL,
    nurse TEXT NOT NULL DEFAULT '',
    intake TEXT NOT NULL DEFAULT '{{}}',
    result TEXT NOT NULL DEFAULT '{{}}',
    note TEXT NOT NULL DEFAULT '');
"""
_TABLES = ("schema_version", "sessions", "messages", "feedback", "events", "triage")


class StoreError(MedChatError):
    """The chat store cannot be opened or was asked something invalid (bad id, unknown row)."""


@dataclass
class StoredMessage:
    id: int
    session_id: str
    role: str
    text: str  # redacted
    lang: str | None
    created_at: str  # ISO-8601 UTC
    meta: dict[str, Any]


@dataclass
class StoredFeedback:
    id: int
    message_id: int
    session_id: str
    rating: int
    comment: str
    created_at: str


@dataclass
class StoredEvent:
    id: int
    kind: str
    session_id: str | None
    created_at: str
    payload: Any


@dataclass
class StoredTriage:
    id: int
    created_at: str
    nurse: str
    intake: Any
    result: Any
    note: str


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def clean_text(text: str | bytes | None) -> str:
    """Storable text: bytes decoded leniently, NULs dropped (C APIs and many viewers cut a string
    at NUL), lone surrogates (from binary junk) replaced, since SQLite text must be valid UTF-8."""
    if text is None:
        return ""
    if isinstance(text, (bytes, bytearray)):
        text = bytes(text).decode("utf-8", errors="replace")
    text = text.replace("\x00", "")
    return text.encode("utf-8", errors="replace").decode("utf-8")


def redact_text(text: str | bytes | None) -> str:
    # Clean first: a NUL inside "138\x0012345678" must not hide the number from redaction.
    return redact(clean_text(text))[0]


def redact_json(value: Any) -> Any:
    """A JSON-able copy of ``value`` with every string (not dict keys: those are field names)
    redacted. Values JSON cannot hold (paths, datetimes...) are stored as their redacted str."""
    if isinstance(value, (str, bytes, bytearray)):
        return redact_text(value)
    if value is None or isinstance(value, (bool, int, float)):
        return value
    if isinstance(value, Mapping):
        return {clean_text(str(k)): redact_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [redact_json(v) for v in value]
    return redact_text(str(value))


def _dumps(value: Any) -> str:
    return json.dumps(redact_json(value), ensure_ascii=False)


def _positive(name: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise StoreError(f"{name} must be a non-negative integer, got {value!r}")
    return value


def check_session_id(session_id: str) -> str:
    if not isinstance(session_id, str) or not _SESSION_ID.fullmatch(session_id):
        raise StoreError(f"invalid session id {session_id!r}",
                         hint="session ids are 1-64 characters of A-Z a-z 0-9 _ -")
    return session_id


# Conversations are health data: the store is readable by its owner only. SQLite gives its -wal
# and -shm files the mode of the database file, so setting it on the database covers all three.
PRIVATE_MODE = 0o600


def private_file(path: Path) -> None:
    """Create ``path`` owner-only if it does not exist (before SQLite creates it with the umask's
    mode), or tighten an existing file (and its WAL files) that others can read. OSError when it
    cannot be created. Every SQLite file of personal data goes through here (chat store, API keys)."""
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, PRIVATE_MODE)
        os.close(fd)
        return
    except FileExistsError:
        pass
    for file in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        try:
            if file.is_file() and file.stat().st_mode & 0o077:
                file.chmod(PRIVATE_MODE)
        except OSError:  # not ours (a read-only copy, a shared volume): SQLite reports it if it matters
            log.warning("cannot make %s owner-only", file)


class ChatStore:
    """Sessions, messages, feedback, events and triage in one SQLite file; safe to share between
    threads. Lists come back newest first, except :meth:`history` (oldest first, prompt order)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.RLock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot create the directory of chat store {self.path}: {exc}",
                             hint="check the path and its permissions") from exc
        try:
            private_file(self.path)
        except OSError as exc:
            raise StoreError(f"cannot create chat store {self.path}: {exc}",
                             hint="check the path and its permissions") from exc
        try:
            # isolation_level=None: transactions are explicit (BEGIN IMMEDIATE in _write), so a
            # writer takes the lock up front and waits busy_timeout instead of failing mid-way.
            self._conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None,
                                         timeout=BUSY_TIMEOUT_MS / 1000)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open chat store {self.path}: {exc}",
                             hint="check that the path is a writable file, not a directory") from exc
        try:
            self._setup()
        except sqlite3.DatabaseError as exc:
            self._conn.close()
            # "file is not a database", "database disk image is malformed", ...
            raise StoreError(f"{self.path} is not a MedChat chat store or is corrupt: {exc}",
                             hint=_HINT_PATH) from exc
        except StoreError:
            self._conn.close()
            raise

    # -- opening -------------------------------------------------------------------------------
    def _setup(self) -> None:
        conn = self._conn
        conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        conn.execute("PRAGMA journal_mode=WAL")  # first real read: raises on a non-database file
        # NORMAL is safe in WAL mode: a crash never corrupts, a power cut may lose the last commits.
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=ON")
        with self._write():
            tables = {r[0] for r in conn.execute(
                "SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%'")}
            if not tables:
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        conn.execute(statement)
                return
        self._check_schema(tables)

    def _check_schema(self, tables: set[str]) -> None:
        missing = set(_TABLES) - tables
        if "schema_version" in missing:
            raise StoreError(f"{self.path} is an SQLite file but not a MedChat chat store "
                             f"(tables: {', '.join(sorted(tables))})", hint=_HINT_PATH)
        row = self._conn.execute("SELECT max(version) FROM schema_version").fetchone()
        version = row[0] if row else None
        if version != SCHEMA_VERSION:
            raise StoreError(f"chat store {self.path} has schema version {version}, this MedChat "
                             f"reads version {SCHEMA_VERSION}",
                             hint="upgrade MedChat, or " + _HINT_PATH)
        if missing:
            raise StoreError(f"chat store {self.path} is incomplete: missing tables "
                             f"{', '.join(sorted(missing))}", hint=_HINT_PATH)

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            try:
                self._conn.execute("BEGIN IMMEDIATE")  # waits up to busy_timeout for other writers
            except sqlite3.OperationalError as exc:
                raise self._write_failed(exc) from exc
            try:
                yield self._conn
            except BaseException:
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
                raise
            try:
                self._conn.execute("COMMIT")
            except sqlite3.OperationalError as exc:  # disk full, I/O error
                self._conn.execute("ROLLBACK")
                raise self._write_failed(exc) from exc

    def _write_failed(self, exc: sqlite3.Error) -> StoreError:
        return StoreError(f"cannot write to chat store {self.path}: {exc}",
                          hint="another process may hold a long write lock, or the disk is full "
                               "or read-only")

    def _read(self, sql: str, params: tuple | list = ()) -> list[tuple]:
        with self._lock:
            return self._conn.execute(sql, params).fetchall()

    # -- sessions ------------------------------------------------------------------------------
    def new_session(self, lang: str | None = None, channel: str = "chat") -> str:
        session_id = uuid.uuid4().hex
        now = utc_now()
        with self._write() as conn:
            conn.execute("INSERT INTO sessions(id, created_at, updated_at, lang, channel) "
                         "VALUES (?,?,?,?,?)", (session_id, now, now, lang, channel))
        return session_id

    def ensure_session(self, session_id: str, lang: str | None = None, channel: str = "chat") -> str:
        """``session_id``, created if it does not exist yet (a UI keeps its id across restarts)."""
        check_session_id(session_id)
        now = utc_now()
        with self._write() as conn:
            conn.execute("INSERT OR IGNORE INTO sessions(id, created_at, updated_at, lang, channel) "
                         "VALUES (?,?,?,?,?)", (session_id, now, now, lang, channel))
        return session_id

    def session_exists(self, session_id: str) -> bool:
        check_session_id(session_id)
        return bool(self._read("SELECT 1 FROM sessions WHERE id=?", (session_id,)))

    # -- messages ------------------------------------------------------------------------------
    def add_message(self, session_id: str, role: Role, text: str, lang: str | None = None,
                    meta: Mapping[str, Any] | None = None) -> int:
        """Store one message (text and meta redacted); returns its id. The session must exist:
        a typo'd id should fail loudly, not start a ghost session (use :meth:`ensure_session`)."""
        check_session_id(session_id)
        if role not in ROLES:
            raise StoreError(f"invalid message role {role!r}", hint=f"one of {', '.join(ROLES)}")
        stored_text, stored_meta = redact_text(text), _dumps(meta or {})
        now = utc_now()
        with self._write() as conn:
            if conn.execute("SELECT 1 FROM sessions WHERE id=?", (session_id,)).fetchone() is None:
                raise StoreError(f"unknown session {session_id!r}",
                                 hint="create it first with new_session() or ensure_session()")
            cur = conn.execute("INSERT INTO messages(session_id, role, text, lang, created_at, meta) "
                               "VALUES (?,?,?,?,?,?)",
                               (session_id, role, stored_text, lang, now, stored_meta))
            conn.execute("UPDATE sessions SET updated_at=? WHERE id=?", (now, session_id))
            return int(cur.lastrowid)

    def history(self, session_id: str, limit: int = 20) -> list[StoredMessage]:
        """The last ``limit`` messages of the session, oldest first — redacted text (see the
        module docstring for why prompts are built from it)."""
        check_session_id(session_id)
        rows = self._read(
            "SELECT id, session_id, role, text, lang, created_at, meta FROM messages "
            "WHERE session_id=? ORDER BY id DESC LIMIT ?", (session_id, _positive("limit", limit)))
        return [StoredMessage(r[0], r[1], r[2], r[3], r[4], r[5], json.loads(r[6]))
                for r in reversed(rows)]

    def message(self, message_id: int) -> StoredMessage | None:
        rows = self._read("SELECT id, session_id, role, text, lang, created_at, meta FROM messages "
                          "WHERE id=?", (message_id,))
        if not rows:
            return None
        r = rows[0]
        return StoredMessage(r[0], r[1], r[2], r[3], r[4], r[5], json.loads(r[6]))

    # -- feedback ------------------------------------------------------------------------------
    def add_feedback(self, message_id: int, rating: int, comment: str = "") -> int:
        if isinstance(rating, bool) or not isinstance(rating, int) or rating not in (1, -1):
            raise StoreError(f"invalid rating {rating!r}", hint="use +1 (helpful) or -1 (not helpful)")
        stored_comment = redact_text(comment)
        with self._write() as conn:
            if conn.execute("SELECT 1 FROM messages WHERE id=?", (message_id,)).fetchone() is None:
                raise StoreError(f"cannot rate unknown message {message_id!r}",
                                 hint="rate the message_id returned with the answer")
            cur = conn.execute("INSERT INTO feedback(message_id, rating, comment, created_at) "
                               "VALUES (?,?,?,?)", (message_id, rating, stored_comment, utc_now()))
            return int(cur.lastrowid)

    def recent_feedback(self, limit: int = 50) -> list[StoredFeedback]:
        rows = self._read(
            "SELECT f.id, f.message_id, m.session_id, f.rating, f.comment, f.created_at "
            "FROM feedback f JOIN messages m ON m.id = f.message_id ORDER BY f.id DESC LIMIT ?",
            (_positive("limit", limit),))
        return [StoredFeedback(*r) for r in rows]

    # -- events --------------------------------------------------------------------------------
    def log_event(self, kind: str, payload: Any, session_id: str | None = None) -> int:
        """Append an audit event (e.g. ``red_flag``); string values of the payload are redacted.
        The session need not exist: an audit line must never be refused for that."""
        if not kind or not isinstance(kind, str):
            raise StoreError(f"invalid event kind {kind!r}", hint="a short name such as 'red_flag'")
        if session_id is not None:
            check_session_id(session_id)
        with self._write() as conn:
            cur = conn.execute("INSERT INTO events(kind, session_id, created_at, payload) "
                               "VALUES (?,?,?,?)", (kind, session_id, utc_now(), _dumps(payload)))
            return int(cur.lastrowid)

    def events(self, kind: str | None = None, limit: int = 100) -> list[StoredEvent]:
        sql = "SELECT id, kind, session_id, created_at, payload FROM events"
        params: list[Any] = []
        if kind is not None:
            sql += " WHERE kind=?"
            params.append(kind)
        rows = self._read(sql + " ORDER BY id DESC LIMIT ?", [*params, _positive("limit", limit)])
        return [StoredEvent(r[0], r[1], r[2], r[3], json.loads(r[4])) for r in rows]

    # -- triage --------------------------------------------------------------------------------
    def add_triage(self, intake: Mapping[str, Any], result: Mapping[str, Any], nurse: str = "",
                   note: str = "") -> int:
        """Store one triage record. Intake free text, the result's strings and the note are
        redacted; ``nurse`` (a staff name, needed for the audit trail) keeps the name but loses
        any phone, ID, card, e-mail or address typed into it."""
        with self._write() as conn:
            cur = conn.execute("INSERT INTO triage(created_at, nurse, intake, result, note) "
                               "VALUES (?,?,?,?,?)",
                               (utc_now(), redact(clean_text(nurse), keep=("NAME",))[0], _dumps(intake), _dumps(result),
                                redact_text(note)))
            return int(cur.lastrowid)

    def recent_triage(self, limit: int = 50, search: str | None = None) -> list[StoredTriage]:
        """Newest first; ``search`` is a case-insensitive (ASCII) substring of the nurse, the note
        or the intake/result JSON (stored with real Chinese characters, so 胸痛 is found)."""
        sql = "SELECT id, created_at, nurse, intake, result, note FROM triage"
        params: list[Any] = []
        if search:
            like = "%" + re.sub(r"([\\%_])", r"\\\1", clean_text(search)) + "%"
            sql += (" WHERE nurse LIKE ? ESCAPE '\\' OR note LIKE ? ESCAPE '\\'"
                    " OR intake LIKE ? ESCAPE '\\' OR result LIKE ? ESCAPE '\\'")
            params += [like] * 4
        rows = self._read(sql + " ORDER BY id DESC LIMIT ?", [*params, _positive("limit", limit)])
        return [StoredTriage(r[0], r[1], r[2], json.loads(r[3]), json.loads(r[4]), r[5])
                for r in rows]

    # -- housekeeping --------------------------------------------------------------------------
    def stats(self) -> dict[str, int]:
        """Row counts, for ``medchat`` status output and the nurse console header."""
        counts = {
            "sessions": ("sessions", ""),
            "messages": ("messages", ""),
            "user_messages": ("messages", "role='user'"),
            "assistant_messages": ("messages", "role='assistant'"),
            "feedback": ("feedback", ""),
            "feedback_up": ("feedback", "rating=1"),
            "feedback_down": ("feedback", "rating=-1"),
            "events": ("events", ""),
            "red_flags": ("events", "kind='red_flag'"),
            "triage": ("triage", ""),
        }
        with self._lock:  # one consistent snapshot under the lock
            return {name: self._count(table, where) for name, (table, where) in counts.items()}

    def _count(self, table: str, where: str) -> int:
        sql = f"SELECT count(*) FROM {table}" + (f" WHERE {where}" if where else "")
        return int(self._conn.execute(sql).fetchone()[0])

    def journal_mode(self) -> str:
        return str(self._read("PRAGMA journal_mode")[0][0])

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> "ChatStore":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
