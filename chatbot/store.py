"""The store of the consultation side: sessions, messages, feedback, audit events (e.g.
red-flag escalations), nurse triage records and staff accounts — in one SQLite file
(``paths.database``, WAL mode) by default, or in Postgres (``store.url: postgresql://…``) when
several replicas share it. Both run the same SQL (:mod:`chatbot.db`) and the same versioned
migrations (:mod:`chatbot.schema`).

Everything a person typed is passed through :func:`chatbot.redact.redact` *before* it is
written: message text, every string inside a message's ``meta``, feedback comments, event
payloads, triage intake, result and note. The stored logs therefore never hold a phone number,
e-mail, ID or card number.

:meth:`ChatStore.history`, which the service uses to build the next prompt, reads back that
redacted text. This is deliberate: the model never needs a patient's phone number to answer a
medical question, and keeping one unredacted copy "just for the prompt" would mean an
identifier-bearing copy somewhere. The reply to the *current* message is built from the live
input, so the patient sees no difference.

Threads: one connection guarded by a lock (not a connection per thread, see :mod:`chatbot.db`). SQLite serialises
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
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator, Literal, Mapping

from chatbot.db import Cursor, Database, DatabaseError, PostgresDatabase, SQLiteDatabase, is_postgres_url
from chatbot.errors import MedChatError
from chatbot.redact import redact
from chatbot.schema import SCHEMA_VERSION, SchemaError, migrate

log = logging.getLogger(__name__)

ROLES = ("user", "assistant", "system")
Role = Literal["user", "assistant", "system"]

_SESSION_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
_HINT_PATH = ("move the file away (a new, empty store is created on the next start) or point "
              "MEDCHAT_PATHS__DATABASE / paths.database at another file")

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


@dataclass
class StoredHandoff:
    id: int
    session_id: str
    created_at: str
    updated_at: str
    status: str          # waiting | claimed | closed
    lang: str | None
    acuity: int
    disposition: str
    case: Any            # intake, disposition, reasons, passages shown (redacted)
    nurse: str
    claimed_at: str | None

    def to_json(self) -> dict[str, Any]:
        from dataclasses import asdict

        return asdict(self)


_HANDOFF_COLUMNS = ("id, session_id, created_at, updated_at, status, lang, acuity, disposition, case_json, "
                    "nurse, claimed_at")


def _handoff(r: tuple) -> StoredHandoff:
    return StoredHandoff(int(r[0]), r[1], r[2], r[3], r[4], r[5], int(r[6]), r[7], json.loads(r[8]), r[9], r[10])


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
    """Sessions, messages, feedback, events and triage, in an SQLite file (``target`` a path) or
    Postgres (``target`` a ``postgresql://`` URL); safe to share between threads. Lists come back
    newest first, except :meth:`history` (oldest first, prompt order). :attr:`db` is the open
    database, which the staff accounts share."""

    def __init__(self, target: Path | str) -> None:
        self.db: Database
        if is_postgres_url(target):
            self.path = None
            self.where = str(target)
            try:
                self.db = PostgresDatabase(str(target))
                self.where = self.db.where
                migrate(self.db)
            except DatabaseError as exc:
                raise StoreError(f"chat store: {exc.message}", hint=exc.hint) from exc
            except SchemaError as exc:
                self.db.close()
                raise StoreError(f"chat store {self.where}: {exc}",
                                 hint="point store.url at an empty database or schema, or upgrade MedChat") from exc
            return
        self.path = Path(target)
        self.where = str(self.path)
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
            self.db = SQLiteDatabase(self.path)
        except DatabaseError as exc:
            raise StoreError(f"cannot open chat store {exc.message.removeprefix('cannot open ')}",
                             hint=exc.hint) from exc
        try:
            self.db.setup()
            migrate(self.db)
        except sqlite3.DatabaseError as exc:
            self.db.close()
            # "file is not a database", "database disk image is malformed", ...
            raise StoreError(f"{self.path} is not a MedChat chat store or is corrupt: {exc}",
                             hint=_HINT_PATH) from exc
        except SchemaError as exc:
            self.db.close()
            raise StoreError(f"chat store {self.path}: {exc}",
                             hint=("upgrade MedChat, or " if "reads version" in str(exc) else "") + _HINT_PATH) from exc
        except DatabaseError as exc:
            self.db.close()
            raise StoreError(f"chat store: {exc.message}", hint=exc.hint) from exc

    @property
    def backend(self) -> str:
        return self.db.dialect

    @contextmanager
    def _write(self) -> Iterator[Cursor]:
        try:
            with self.db.transaction() as cur:
                yield cur
        except DatabaseError as exc:
            raise StoreError(f"cannot write to chat store {self.where}: {exc.message}", hint=exc.hint) from exc

    def _read(self, sql: str, params: tuple | list = ()) -> list[tuple]:
        try:
            return self.db.read(sql, params)
        except DatabaseError as exc:
            raise StoreError(f"cannot read chat store {self.where}: {exc.message}", hint=exc.hint) from exc

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
            conn.execute("INSERT INTO sessions(id, created_at, updated_at, lang, channel) "
                         "VALUES (?,?,?,?,?) ON CONFLICT (id) DO NOTHING", (session_id, now, now, lang, channel))
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
            row = conn.execute("INSERT INTO messages(session_id, role, text, lang, created_at, meta) "
                               "VALUES (?,?,?,?,?,?) RETURNING id",
                               (session_id, role, stored_text, lang, now, stored_meta)).fetchone()
            conn.execute("UPDATE sessions SET updated_at=? WHERE id=?", (now, session_id))
            return int(row[0])

    def history(self, session_id: str, limit: int = 20) -> list[StoredMessage]:
        """The last ``limit`` messages of the session, oldest first — redacted text (see the
        module docstring for why prompts are built from it)."""
        check_session_id(session_id)
        rows = self._read(
            "SELECT id, session_id, role, text, lang, created_at, meta FROM messages "
            "WHERE session_id=? ORDER BY id DESC LIMIT ?", (session_id, _positive("limit", limit)))
        return [StoredMessage(r[0], r[1], r[2], r[3], r[4], r[5], json.loads(r[6]))
                for r in reversed(rows)]

    def messages_after(self, session_id: str, after_id: int, role: Role = "assistant") -> list[StoredMessage]:
        """The session's messages of ``role`` newer than message ``after_id``, oldest first: what a
        page that polls (nurse replies) has not seen yet, one indexed read."""
        check_session_id(session_id)
        rows = self._read("SELECT id, session_id, role, text, lang, created_at, meta FROM messages "
                          "WHERE session_id=? AND id>? AND role=? ORDER BY id", (session_id, int(after_id), role))
        return [StoredMessage(r[0], r[1], r[2], r[3], r[4], r[5], json.loads(r[6])) for r in rows]

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
            row = conn.execute("INSERT INTO feedback(message_id, rating, comment, created_at) "
                               "VALUES (?,?,?,?) RETURNING id",
                               (message_id, rating, stored_comment, utc_now())).fetchone()
            return int(row[0])

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
            row = conn.execute("INSERT INTO events(kind, session_id, created_at, payload) "
                               "VALUES (?,?,?,?) RETURNING id",
                               (kind, session_id, utc_now(), _dumps(payload))).fetchone()
            return int(row[0])

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
            row = conn.execute("INSERT INTO triage(created_at, nurse, intake, result, note) "
                               "VALUES (?,?,?,?,?) RETURNING id",
                               (utc_now(), redact(clean_text(nurse), keep=("NAME",))[0], _dumps(intake),
                                _dumps(result), redact_text(note))).fetchone()
            return int(row[0])

    def recent_triage(self, limit: int = 50, search: str | None = None) -> list[StoredTriage]:
        """Newest first; ``search`` is a case-insensitive (ASCII) substring of the nurse, the note
        or the intake/result JSON (stored with real Chinese characters, so 胸痛 is found)."""
        sql = "SELECT id, created_at, nurse, intake, result, note FROM triage"
        params: list[Any] = []
        if search:
            like = "%" + re.sub(r"([\\%_])", r"\\\1", clean_text(search)) + "%"
            like_op = self.db.ilike  # case-insensitive on both engines
            sql += " WHERE " + " OR ".join(f"{column} {like_op} ? ESCAPE '\\'"
                                           for column in ("nurse", "note", "intake", "result"))
            params += [like] * 4
        rows = self._read(sql + " ORDER BY id DESC LIMIT ?", [*params, _positive("limit", limit)])
        return [StoredTriage(r[0], r[1], r[2], json.loads(r[3]), json.loads(r[4]), r[5])
                for r in rows]

    # -- nurse handoff queue -------------------------------------------------------------------
    def add_handoff(self, session_id: str, lang: str, acuity: int, disposition: str,
                    case: Mapping[str, Any]) -> tuple[int, bool]:
        """Queue the session's case for a nurse; (id, created). A session with an open case (waiting
        or claimed) keeps that one: asking twice does not queue twice. ``case`` is redacted."""
        check_session_id(session_id)
        if not 1 <= int(acuity) <= 5:
            raise StoreError(f"invalid acuity {acuity!r}", hint="1 (immediate) to 5 (self-care)")
        now = utc_now()
        with self._write() as conn:
            open_case = conn.execute("SELECT id FROM handoffs WHERE session_id=? AND status<>'closed' "
                                     "ORDER BY id DESC LIMIT 1", (session_id,)).fetchone()
            if open_case is not None:
                return int(open_case[0]), False
            row = conn.execute("INSERT INTO handoffs(session_id, created_at, updated_at, status, lang, acuity, "
                               "disposition, case_json) VALUES (?,?,?,'waiting',?,?,?,?) RETURNING id",
                               (session_id, now, now, lang, int(acuity), disposition, _dumps(case))).fetchone()
            return int(row[0]), True

    def handoffs(self, statuses: tuple[str, ...] = ("waiting", "claimed"), limit: int = 100) -> list[StoredHandoff]:
        """The queue: most urgent first (acuity 1 before 5), newest first within a level."""
        marks = ",".join("?" * len(statuses))
        rows = self._read(f"SELECT {_HANDOFF_COLUMNS} FROM handoffs WHERE status IN ({marks}) "
                          "ORDER BY acuity, id DESC LIMIT ?", [*statuses, _positive("limit", limit)])
        return [_handoff(r) for r in rows]

    def handoff(self, handoff_id: int) -> StoredHandoff | None:
        rows = self._read(f"SELECT {_HANDOFF_COLUMNS} FROM handoffs WHERE id=?", (handoff_id,))
        return _handoff(rows[0]) if rows else None

    def session_handoff(self, session_id: str) -> StoredHandoff | None:
        """The session's latest case, if any (the patient's page shows its state)."""
        check_session_id(session_id)
        rows = self._read(f"SELECT {_HANDOFF_COLUMNS} FROM handoffs WHERE session_id=? ORDER BY id DESC LIMIT 1",
                          (session_id,))
        return _handoff(rows[0]) if rows else None

    def update_handoff(self, handoff_id: int, *, expect: tuple[str, ...], status: str | None = None,
                       nurse: str | None = None, acuity: int | None = None) -> StoredHandoff | None:
        """Change a case only if its status is in ``expect`` (two nurses claiming at once: one
        wins); the updated case, or None when it was not in an expected state."""
        sets, params = ["updated_at=?"], [utc_now()]
        if status is not None:
            sets.append("status=?")
            params.append(status)
            if status == "claimed":
                sets.append("claimed_at=?")
                params.append(params[0])
        if nurse is not None:
            sets.append("nurse=?")
            params.append(redact(clean_text(nurse), keep=("NAME",))[0])
        if acuity is not None:
            if not 1 <= int(acuity) <= 5:
                raise StoreError(f"invalid acuity {acuity!r}", hint="1 (immediate) to 5 (self-care)")
            sets += ["acuity=?", "disposition=?"]
            params += [int(acuity), {1: "emergency", 2: "emergency", 3: "urgent", 4: "routine", 5: "self_care"}[int(acuity)]]
        marks = ",".join("?" * len(expect))
        with self._write() as conn:
            row = conn.execute(f"UPDATE handoffs SET {', '.join(sets)} WHERE id=? AND status IN ({marks}) "
                               "RETURNING id", [*params, handoff_id, *expect]).fetchone()
        return self.handoff(handoff_id) if row else None

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
            "handoffs_waiting": ("handoffs", "status='waiting'"),
        }
        with self._write() as cur:  # one consistent snapshot
            return {name: int(cur.execute(f"SELECT count(*) FROM {table}" + (f" WHERE {where}" if where else ""))
                              .fetchone()[0]) for name, (table, where) in counts.items()}

    def journal_mode(self) -> str:
        """SQLite's journal mode ("wal"); Postgres has its own WAL and answers "postgresql"."""
        if isinstance(self.db, SQLiteDatabase):
            return str(self.db.pragma("journal_mode"))
        return self.db.dialect

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> "ChatStore":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
