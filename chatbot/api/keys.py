"""API keys with roles, and which key opened which chat session: in a small SQLite file
(``api.keys_db``), or in the Postgres store (``store.url``) that every replica shares.

A key reads ``mck_<id>_<secret>``: ``id`` (12 hex characters) is public, printed by ``medchat api
key list`` and written to the request log; ``secret`` is 32 random bytes. Only the SHA-256 of the
whole key is stored. A fast hash is enough here, unlike for passwords: a slow hash (PBKDF2, as
for the nurse login) makes guessing a weak password expensive, and a 256-bit random secret cannot
be guessed at any speed. The id lets a request find its row without comparing against every
stored hash; the comparison itself is constant-time.

Roles are ordered: ``patient`` (chat, knowledge-base search) < ``nurse`` (+ triage) < ``admin``
(everything). Revoking keeps the row (``revoked_at``), so the log's key ids stay explainable.

Every call is its own statement on a database other processes share (the CLI, several server
processes, replicas), so a revocation takes effect on the next request everywhere.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import sqlite3
import threading
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from chatbot.db import Database, DatabaseError, PostgresDatabase, SQLiteDatabase, is_postgres_url
from chatbot.errors import MedChatError
from chatbot.store import private_file

ROLES = ("patient", "nurse", "admin")
_RANK = {role: i for i, role in enumerate(ROLES)}
PREFIX = "mck_"
_KEY = re.compile(r"mck_([0-9a-f]{12})_([A-Za-z0-9_\-]{43})")
# Owner-only, as the chat store (chatbot.store.private_file): whoever reads the file learns which
# key opened which conversation.
SCHEMA = ["""
CREATE TABLE IF NOT EXISTS api_keys (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    role        TEXT NOT NULL CHECK (role IN ('patient', 'nurse', 'admin')),
    key_sha256  TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    revoked_at  TEXT
)""", """
CREATE TABLE IF NOT EXISTS api_sessions (
    session_id  TEXT PRIMARY KEY,
    key_id      TEXT NOT NULL REFERENCES api_keys(id),
    created_at  TEXT NOT NULL
)"""]


class ApiKeyError(MedChatError):
    """A key operation that cannot be done (unknown role or id, unreadable file)."""


@dataclass(frozen=True)
class ApiKey:
    id: str
    name: str
    role: str
    created_at: str
    revoked_at: str | None = None

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    def allows(self, role: str) -> bool:
        """True when this key's role is ``role`` or above it."""
        return _RANK[self.role] >= _RANK[role]

    def to_json(self) -> dict:
        return {"id": self.id, "name": self.name, "role": self.role, "created_at": self.created_at,
                "revoked_at": self.revoked_at, "active": self.active}


def _now() -> str:
    # Microseconds: "oldest first" orders by it, and two keys are often created in one second.
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


def _digest(raw: str) -> str:
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()


class KeyStore:
    """``target``: the SQLite file (``api.keys_db``) or the store's ``postgresql://`` URL."""

    def __init__(self, target: Path | str) -> None:
        self.target = target
        self._db: Database | None = None
        self._lock = threading.Lock()

    # -- database ------------------------------------------------------------------------------
    def _open(self) -> Database:
        with self._lock:
            if self._db is None:
                self._db = self._create()
            return self._db

    def _create(self) -> Database:
        """Tables created on first use; an SQLite file owner-only before SQLite would create it
        with the umask's mode (an existing file that others can read is tightened)."""
        where = "check store.url" if is_postgres_url(self.target) else "check api.keys_db and its permissions"
        try:
            if is_postgres_url(self.target):
                db: Database = PostgresDatabase(str(self.target))
            else:
                path = Path(self.target)
                path.parent.mkdir(parents=True, exist_ok=True)
                private_file(path)
                db = SQLiteDatabase(path)
            with db.transaction() as cur:
                for statement in SCHEMA:
                    cur.execute(statement)
        except DatabaseError as exc:
            raise ApiKeyError(f"cannot open the API keys: {exc.message}", hint=exc.hint or where) from exc
        except (OSError, sqlite3.Error) as exc:
            raise ApiKeyError(f"cannot create the API key file {self.target}: {exc}", hint=where) from exc
        return db

    def _read(self, sql: str, params: tuple = ()) -> list[tuple]:
        try:
            return self._open().read(sql, params)
        except DatabaseError as exc:
            raise ApiKeyError(f"cannot read the API keys: {exc.message}", hint=exc.hint) from exc

    def _write(self, sql: str, params: tuple) -> None:
        try:
            with self._open().transaction() as cur:
                cur.execute(sql, params)
        except DatabaseError as exc:
            raise ApiKeyError(f"cannot write the API keys: {exc.message}", hint=exc.hint) from exc

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None

    # -- keys ----------------------------------------------------------------------------------
    def create(self, role: str, name: str = "") -> tuple[ApiKey, str]:
        """A new key: (its record, the raw key). The raw key exists only in the return value."""
        if role not in ROLES:
            raise ApiKeyError(f"unknown role {role!r}", hint=f"roles: {', '.join(ROLES)}")
        key_id = secrets.token_hex(6)
        raw = f"{PREFIX}{key_id}_{secrets.token_urlsafe(32)}"
        record = ApiKey(id=key_id, name=name.strip(), role=role, created_at=_now())
        self._write("INSERT INTO api_keys(id, name, role, key_sha256, created_at) VALUES (?,?,?,?,?)",
                    (record.id, record.name, record.role, _digest(raw), record.created_at))
        return record, raw

    def list(self) -> list[ApiKey]:
        """Every key, revoked ones included, oldest first."""
        rows = self._read("SELECT id, name, role, created_at, revoked_at FROM api_keys ORDER BY created_at, id")
        return [ApiKey(*row) for row in rows]

    def get(self, key_id: str) -> ApiKey | None:
        rows = self._read("SELECT id, name, role, created_at, revoked_at FROM api_keys WHERE id=?", (key_id,))
        return ApiKey(*rows[0]) if rows else None

    def revoke(self, key_id: str) -> ApiKey:
        """Revoke ``key_id`` (no effect on an already revoked key); the updated record."""
        self._write("UPDATE api_keys SET revoked_at=? WHERE id=? AND revoked_at IS NULL", (_now(), key_id))
        key = self.get(key_id)
        if key is None:
            raise ApiKeyError(f"no API key with id {key_id!r}", hint="`medchat api key list` shows the ids")
        return key

    def authenticate(self, raw: str | None) -> ApiKey | None:
        """The active key ``raw`` is, or None (malformed, unknown, wrong secret, revoked)."""
        match = _KEY.fullmatch(raw or "")
        if match is None:
            return None
        rows = self._read("SELECT id, name, role, created_at, revoked_at, key_sha256 FROM api_keys WHERE id=?",
                          (match.group(1),))
        row = rows[0] if rows else None
        if row is None or not hmac.compare_digest(row[5], _digest(raw)):
            return None
        key = ApiKey(*row[:5])
        return key if key.active else None

    # -- sessions ------------------------------------------------------------------------------
    def own_session(self, session_id: str, key_id: str) -> None:
        """Record that ``key_id`` opened ``session_id``: only it (or an admin key) continues it."""
        self._write("INSERT INTO api_sessions(session_id, key_id, created_at) VALUES (?,?,?) "
                    "ON CONFLICT (session_id) DO NOTHING", (session_id, key_id, _now()))

    def session_owner(self, session_id: str) -> str | None:
        rows = self._read("SELECT key_id FROM api_sessions WHERE session_id=?", (session_id,))
        return rows[0][0] if rows else None
