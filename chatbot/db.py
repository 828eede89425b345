"""One small database layer under every MedChat table (chat store, staff accounts, API keys): an
embedded SQLite file by default, Postgres for a deployment with several replicas.

SQL is written once, in the subset both engines speak: ``?`` placeholders (turned into psycopg's
``%s`` here), ``ON CONFLICT DO NOTHING``, ``RETURNING id``, ``CREATE TABLE IF NOT EXISTS``. What
differs (an auto-increment id column, case-insensitive LIKE, listing tables) is a property of
:class:`Database`, not an ``if`` in the callers.

A database is one connection guarded by a lock: every statement here takes well under a
millisecond, SQLite serialises writers anyway, and a Postgres replica's few chat workers do not
need a pool. A Postgres connection that broke (server restart, network blip) is reopened on the
next call; the statement that met the break fails with :class:`DatabaseError` and is not retried,
because a half-known write must not be done twice.
"""

from __future__ import annotations

import logging
import re
import sqlite3
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Sequence
from urllib.parse import urlsplit, urlunsplit

from chatbot.errors import MedChatError

log = logging.getLogger(__name__)

BUSY_TIMEOUT_MS = 5000  # other processes (CLI, console) wait for a writer instead of failing
POSTGRES_SCHEMES = ("postgresql", "postgres")


class DatabaseError(MedChatError):
    """The database cannot be reached, opened or written."""


def is_postgres_url(url: str | Path | None) -> bool:
    return isinstance(url, str) and url.split(":", 1)[0].lower() in POSTGRES_SCHEMES


def safe_url(url: str) -> str:
    """``url`` without its password, for messages and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)
    user = netloc[0].split(":", 1)[0]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc[1]}"))


class Cursor:
    """What a transaction hands its body: ``execute`` (returns self) then ``fetchone`` /
    ``fetchall``, with ``?`` placeholders on both engines."""

    def __init__(self, raw: Any, translate: bool) -> None:
        self._raw = raw
        self._translate = translate

    def execute(self, sql: str, params: Sequence[Any] = ()) -> "Cursor":
        self._raw.execute(_to_pyformat(sql) if self._translate else sql, tuple(params))
        return self

    def fetchone(self) -> tuple | None:
        row = self._raw.fetchone()
        return tuple(row) if row is not None else None

    def fetchall(self) -> list[tuple]:
        return [tuple(r) for r in self._raw.fetchall()]


_PLACEHOLDER = re.compile(r"\?")


def _to_pyformat(sql: str) -> str:
    # Our SQL never has a literal "?" or "%" in it (LIKE patterns are parameters), so a plain
    # replacement is exact; "%" is doubled anyway so a future literal cannot become a placeholder.
    return _PLACEHOLDER.sub("%s", sql.replace("%", "%%"))


class Database:
    """Base: ``transaction()`` (one atomic unit of writes and reads), ``read()`` (one statement),
    ``tables()``, ``close()``; dialect properties ``id_column`` and ``ilike``."""

    dialect = ""
    id_column = ""  # column type of an auto-increment integer primary key
    ilike = ""  # operator of a case-insensitive LIKE
    where = ""  # the file or the password-less URL, for messages

    @contextmanager
    def transaction(self) -> Iterator[Cursor]:  # pragma: no cover - abstract
        raise NotImplementedError
        yield

    def read(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        with self.transaction() as cur:
            return cur.execute(sql, params).fetchall()

    def tables(self) -> set[str]:  # pragma: no cover - abstract
        raise NotImplementedError

    def close(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError


class SQLiteDatabase(Database):
    dialect = "sqlite"
    id_column = "INTEGER PRIMARY KEY"
    ilike = "LIKE"  # SQLite's LIKE ignores ASCII case already

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.where = str(self.path)
        self._lock = threading.RLock()
        try:
            # isolation_level=None: transactions are explicit (BEGIN IMMEDIATE below), so a writer
            # takes the lock up front and waits busy_timeout instead of failing mid-way.
            self._conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None,
                                         timeout=BUSY_TIMEOUT_MS / 1000)
        except sqlite3.Error as exc:
            raise DatabaseError(f"cannot open {self.path}: {exc}",
                                hint="check that the path is a writable file, not a directory") from exc

    def setup(self) -> None:
        """WAL mode and friends. Raises sqlite3.DatabaseError on a file that is not a database."""
        conn = self._conn
        conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        conn.execute("PRAGMA journal_mode=WAL")  # first real read: raises on a non-database file
        # NORMAL is safe in WAL mode: a crash never corrupts, a power cut may lose the last commits.
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=ON")

    @contextmanager
    def transaction(self) -> Iterator[Cursor]:
        with self._lock:
            try:
                self._conn.execute("BEGIN IMMEDIATE")  # waits up to busy_timeout for other writers
            except sqlite3.OperationalError as exc:
                raise self._failed(exc) from exc
            try:
                yield Cursor(self._conn.cursor(), translate=False)
            except BaseException:
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
                raise
            try:
                self._conn.execute("COMMIT")
            except sqlite3.OperationalError as exc:  # disk full, I/O error
                self._conn.execute("ROLLBACK")
                raise self._failed(exc) from exc

    def read(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        with self._lock:  # a lone SELECT needs no write lock
            return self._conn.execute(sql, tuple(params)).fetchall()

    def _failed(self, exc: sqlite3.Error) -> DatabaseError:
        return DatabaseError(f"cannot write to {self.path}: {exc}",
                             hint="another process may hold a long write lock, or the disk is full or read-only")

    def tables(self) -> set[str]:
        return {r[0] for r in self.read(
            "SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%'")}

    def pragma(self, name: str) -> Any:
        return self.read(f"PRAGMA {name}")[0][0]

    def close(self) -> None:
        with self._lock:
            self._conn.close()


class PostgresDatabase(Database):
    """``url`` as libpq takes it (``postgresql://user:pass@host:5432/db?options=-csearch_path%3Dx``)."""

    dialect = "postgresql"
    id_column = "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY"
    ilike = "ILIKE"

    def __init__(self, url: str, connect_timeout_s: int = 5) -> None:
        try:
            import psycopg
        except ImportError as exc:
            raise DatabaseError("a postgresql:// store needs the psycopg package / Postgres 存储需要 psycopg 包",
                                hint='pip install "psycopg[binary]" (or the [postgres] extra of medchat)') from exc
        self._psycopg = psycopg
        self.url = url
        self.where = safe_url(url)
        self._timeout = connect_timeout_s
        self._lock = threading.RLock()
        self._conn: Any = None
        self._connect()

    def _connect(self) -> Any:
        if self._conn is not None and not self._conn.closed:
            return self._conn
        try:
            # autocommit: every transaction is an explicit ``with conn.transaction()`` below, so no
            # idle transaction stays open between calls holding locks or an old snapshot.
            self._conn = self._psycopg.connect(self.url, autocommit=True, connect_timeout=self._timeout)
        except self._psycopg.Error as exc:
            raise DatabaseError(f"cannot connect to Postgres at {self.where}: {_first_line(exc)}",
                                hint="check store.url / MEDCHAT_STORE__URL and that the server is up") from exc
        return self._conn

    @contextmanager
    def transaction(self) -> Iterator[Cursor]:
        psycopg = self._psycopg
        with self._lock:
            conn = self._connect()
            try:
                with conn.transaction(), conn.cursor() as raw:
                    yield Cursor(raw, translate=True)
            except psycopg.OperationalError as exc:
                # The connection may be gone: the next call opens a new one.
                if conn.broken or conn.closed:
                    self._conn = None
                raise DatabaseError(f"Postgres at {self.where} failed: {_first_line(exc)}",
                                    hint="the server may have restarted; the next request reconnects") from exc
            except psycopg.errors.IntegrityError:
                raise
            except psycopg.DatabaseError as exc:
                raise DatabaseError(f"Postgres at {self.where} refused a statement: {_first_line(exc)}") from exc

    def lock(self, cur: Cursor, key: int) -> None:
        """Serialise a transaction with every other process's on ``key`` (released at commit)."""
        cur.execute("SELECT pg_advisory_xact_lock(?)", (key,))

    def tables(self) -> set[str]:
        return {r[0] for r in self.read(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()")}

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def is_integrity_error(exc: BaseException) -> bool:
    """A unique / foreign-key / check constraint refused the row (either engine)."""
    if isinstance(exc, sqlite3.IntegrityError):
        return True
    try:
        import psycopg
    except ImportError:
        return False
    return isinstance(exc, psycopg.errors.IntegrityError)
