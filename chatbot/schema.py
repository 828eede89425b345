"""The store's tables and their versioned migrations, one scheme for SQLite and Postgres.

``schema_version`` holds one row per applied version; a store opens at :data:`SCHEMA_VERSION`
after :func:`migrate` applied what is missing, in one transaction (both engines roll DDL back, so
a killed upgrade leaves the old version intact). Several replicas starting at once on one Postgres
take an advisory lock first, so exactly one of them creates or upgrades the tables.

To change the schema: append a function to :data:`MIGRATIONS` (never edit a released one) and add
a test that opens a store of the previous version and finds its rows after the upgrade.
"""

from __future__ import annotations

from typing import Callable

from chatbot.db import Cursor, Database, PostgresDatabase

# Any constant works; this one reads "medchat" in ASCII, so it will not collide by accident with
# another application's advisory lock on a shared server.
MIGRATION_LOCK = 0x6D65646368617400


def _v1(db: Database) -> list[str]:
    """The consultation side: sessions, messages, feedback, audit events, nurse triage records."""
    pk = db.id_column
    return [
        "CREATE TABLE schema_version(version INTEGER NOT NULL)",
        "CREATE TABLE sessions(id TEXT PRIMARY KEY, created_at TEXT NOT NULL, updated_at TEXT NOT NULL, "
        "lang TEXT, channel TEXT NOT NULL DEFAULT 'chat')",
        f"CREATE TABLE messages(id {pk}, session_id TEXT NOT NULL REFERENCES sessions(id), "
        "role TEXT NOT NULL CHECK (role IN ('user', 'assistant', 'system')), text TEXT NOT NULL, "
        "lang TEXT, created_at TEXT NOT NULL, meta TEXT NOT NULL DEFAULT '{}')",
        "CREATE INDEX messages_session ON messages(session_id, id)",
        f"CREATE TABLE feedback(id {pk}, message_id INTEGER NOT NULL REFERENCES messages(id), "
        "rating INTEGER NOT NULL CHECK (rating IN (1, -1)), comment TEXT NOT NULL DEFAULT '', "
        "created_at TEXT NOT NULL)",
        f"CREATE TABLE events(id {pk}, kind TEXT NOT NULL, session_id TEXT, created_at TEXT NOT NULL, "
        "payload TEXT NOT NULL DEFAULT '{}')",
        "CREATE INDEX events_kind ON events(kind, id)",
        f"CREATE TABLE triage(id {pk}, created_at TEXT NOT NULL, nurse TEXT NOT NULL DEFAULT '', "
        "intake TEXT NOT NULL DEFAULT '{}', result TEXT NOT NULL DEFAULT '{}', note TEXT NOT NULL DEFAULT '')",
    ]


def _v2(db: Database) -> list[str]:
    """Individual staff accounts (nurse, admin) with their console sessions and login failures, in
    the database so that every replica sees the same accounts, logins and lockouts. Times are
    Unix seconds (REAL / DOUBLE): the lockout arithmetic needs numbers, not ISO strings."""
    real = "DOUBLE PRECISION" if db.dialect == "postgresql" else "REAL"
    pk = db.id_column
    return [
        "CREATE TABLE staff_accounts(name TEXT PRIMARY KEY, role TEXT NOT NULL CHECK (role IN ('nurse', 'admin')), "
        f"password_hash TEXT NOT NULL, created_at TEXT NOT NULL, disabled_at TEXT)",
        f"CREATE TABLE staff_sessions(token_sha256 TEXT PRIMARY KEY, name TEXT NOT NULL, role TEXT NOT NULL, "
        f"created_at {real} NOT NULL, last_seen {real} NOT NULL)",
        f"CREATE TABLE login_failures(id {pk}, name TEXT NOT NULL, at {real} NOT NULL)",
        "CREATE INDEX login_failures_name ON login_failures(name, at)",
    ]


def _v3(db: Database) -> list[str]:
    """The nurse handoff queue (issue 17): a patient's case waiting for, claimed by or closed by a
    nurse. ``case_json`` holds the structured intake, disposition, reasons and the passages shown;
    the transcript stays in ``messages`` (the session's)."""
    pk = db.id_column
    return [
        f"CREATE TABLE handoffs(id {pk}, session_id TEXT NOT NULL REFERENCES sessions(id), "
        "created_at TEXT NOT NULL, updated_at TEXT NOT NULL, "
        "status TEXT NOT NULL CHECK (status IN ('waiting', 'claimed', 'closed')), lang TEXT, "
        "acuity INTEGER NOT NULL CHECK (acuity BETWEEN 1 AND 5), disposition TEXT NOT NULL, "
        "case_json TEXT NOT NULL DEFAULT '{}', nurse TEXT NOT NULL DEFAULT '', claimed_at TEXT)",
        "CREATE INDEX handoffs_queue ON handoffs(status, acuity, id)",
    ]


MIGRATIONS: list[Callable[[Database], list[str]]] = [_v1, _v2, _v3]
SCHEMA_VERSION = len(MIGRATIONS)
TABLES = ("schema_version", "sessions", "messages", "feedback", "events", "triage",
          "staff_accounts", "staff_sessions", "login_failures", "handoffs")


# Tables chatbot.api.keys creates itself (CREATE TABLE IF NOT EXISTS), in the store's database
# when it is Postgres: not a sign of a foreign database.
KEY_TABLES = frozenset({"api_keys", "api_sessions"})


class SchemaError(Exception):
    """The database holds something else than a MedChat store of a version this code reads."""


def current_version(cur: Cursor) -> int | None:
    row = cur.execute("SELECT max(version) FROM schema_version").fetchone()
    return row[0] if row else None


def migrate(db: Database) -> tuple[int, int]:
    """Bring ``db`` to :data:`SCHEMA_VERSION`; (version before, version after). An empty database
    gets every table; a foreign one (tables but no ``schema_version``) or a newer one is refused
    with :class:`SchemaError` and left untouched."""
    with db.transaction() as cur:
        if isinstance(db, PostgresDatabase):
            db.lock(cur, MIGRATION_LOCK)
        tables = db_tables(db, cur)
        if not tables - KEY_TABLES:
            # empty, or only the API key tables, which `medchat api key create` may have made in
            # the Postgres store before any server opened it (chatbot.api.keys creates its own)
            before = 0
        elif "schema_version" not in tables:
            raise SchemaError(f"not a MedChat chat store (tables: {', '.join(sorted(tables))})")
        else:
            before = current_version(cur) or 0
        if before > SCHEMA_VERSION:
            raise SchemaError(f"schema version {before}, this MedChat reads version {SCHEMA_VERSION}")
        for version in range(before + 1, SCHEMA_VERSION + 1):
            for statement in MIGRATIONS[version - 1](db):
                cur.execute(statement)
            cur.execute("INSERT INTO schema_version(version) VALUES (?)", (version,))
        missing = set(TABLES) - db_tables(db, cur)
        if missing:
            raise SchemaError(f"incomplete store: missing tables {', '.join(sorted(missing))}")
    return before, SCHEMA_VERSION


def db_tables(db: Database, cur: Cursor) -> set[str]:
    """The tables seen inside the running transaction (``db.tables()`` would need the lock again
    on SQLite and a second connection's snapshot on Postgres)."""
    if db.dialect == "postgresql":
        sql = "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()"
    else:
        sql = "SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%'"
    return {r[0] for r in cur.execute(sql).fetchall()}
