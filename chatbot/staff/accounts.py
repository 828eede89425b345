"""Individual staff accounts (one per nurse or operator, no shared password), their console
sessions and their recent login failures — rows of the store's database, so that every replica
behind a load balancer sees the same accounts, the same logins and the same lockouts.

Only PBKDF2 hashes of passwords are stored (``chatbot.staff.auth.hash_password``) and only the
SHA-256 of a session token: whoever reads the database cannot log in with what they find.
``medchat staff add|list|passwd|disable|enable`` manage the accounts.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from chatbot.db import Database, SQLiteDatabase, is_integrity_error
from chatbot.errors import MedChatError
from chatbot.schema import migrate

ROLES = ("nurse", "admin")
_RANK = {role: i for i, role in enumerate(ROLES)}
MAX_NAME = 64


class AccountError(MedChatError):
    """An account operation that cannot be done (unknown name, taken name, bad role)."""


@dataclass(frozen=True)
class Account:
    name: str
    role: str
    created_at: str
    disabled_at: str | None = None

    @property
    def active(self) -> bool:
        return self.disabled_at is None

    def allows(self, role: str) -> bool:
        """``admin`` may do what a ``nurse`` may, not the other way round."""
        return _RANK[self.role] >= _RANK[role]

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "role": self.role, "created_at": self.created_at,
                "disabled_at": self.disabled_at, "active": self.active}


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def check_role(role: str) -> str:
    if role not in ROLES:
        raise AccountError(f"unknown staff role {role!r} / 未知的角色", hint=f"roles: {', '.join(ROLES)}")
    return role


def check_name(name: str) -> str:
    name = (name or "").strip()
    if not name or len(name) > MAX_NAME or any(ch.isspace() or not ch.isprintable() for ch in name):
        raise AccountError(f"invalid account name {name!r} / 账号名无效",
                           hint=f"1-{MAX_NAME} printable characters without spaces, e.g. li.wen")
    return name


class AccountStore:
    """Accounts, sessions and failures on ``db`` (the chat store's database: ``ChatStore.db``)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    @classmethod
    def in_memory(cls) -> "AccountStore":
        """A private, empty store (tests, and a console whose only account comes from settings)."""
        db = SQLiteDatabase(":memory:")  # type: ignore[arg-type]
        migrate(db)
        return cls(db)

    # -- accounts ------------------------------------------------------------------------------
    def add(self, name: str, role: str, password_hash: str) -> Account:
        account = Account(check_name(name), check_role(role), _now())
        try:
            with self.db.transaction() as cur:
                cur.execute("INSERT INTO staff_accounts(name, role, password_hash, created_at) VALUES (?,?,?,?)",
                            (account.name, account.role, password_hash, account.created_at))
        except Exception as exc:
            if is_integrity_error(exc):
                raise AccountError(f"an account named {account.name!r} exists already / 账号已存在",
                                   hint="choose another name, or `medchat staff passwd` to reset its password") from exc
            raise
        return account

    def get(self, name: str) -> Account | None:
        rows = self.db.read("SELECT name, role, created_at, disabled_at FROM staff_accounts WHERE name=?",
                            ((name or "").strip(),))
        return Account(*rows[0]) if rows else None

    def password_hash(self, name: str) -> str | None:
        """The hash of an *active* account, else None."""
        rows = self.db.read("SELECT password_hash FROM staff_accounts WHERE name=? AND disabled_at IS NULL",
                            (name,))
        return rows[0][0] if rows else None

    def list(self) -> list[Account]:
        rows = self.db.read("SELECT name, role, created_at, disabled_at FROM staff_accounts ORDER BY created_at, name")
        return [Account(*r) for r in rows]

    def active_count(self) -> int:
        return int(self.db.read("SELECT count(*) FROM staff_accounts WHERE disabled_at IS NULL")[0][0])

    def set_password(self, name: str, password_hash: str) -> Account:
        """New password; the account's open sessions end (a reset is often because one leaked)."""
        with self.db.transaction() as cur:
            cur.execute("UPDATE staff_accounts SET password_hash=? WHERE name=?", (password_hash, name))
            cur.execute("DELETE FROM staff_sessions WHERE name=?", (name,))
        return self._must(name)

    def set_disabled(self, name: str, disabled: bool) -> Account:
        """Disable (its sessions end at once, it cannot log in) or enable an account. Rows are
        kept, never deleted: the triage records and audit events name it."""
        with self.db.transaction() as cur:
            if disabled:
                cur.execute("UPDATE staff_accounts SET disabled_at=? WHERE name=? AND disabled_at IS NULL",
                            (_now(), name))
                cur.execute("DELETE FROM staff_sessions WHERE name=?", (name,))
            else:
                cur.execute("UPDATE staff_accounts SET disabled_at=NULL WHERE name=?", (name,))
        return self._must(name)

    def _must(self, name: str) -> Account:
        account = self.get(name)
        if account is None:
            raise AccountError(f"no staff account named {name!r} / 没有这个账号",
                               hint="`medchat staff list` shows the accounts")
        return account

    # -- login failures ------------------------------------------------------------------------
    def record_failure(self, name: str, at: float, window_s: float) -> list[float]:
        """Add a failure; the name's failures inside the last ``window_s`` seconds, oldest first
        (older ones are deleted here, so the table never grows without bound)."""
        with self.db.transaction() as cur:
            cur.execute("DELETE FROM login_failures WHERE name=? AND at <= ?", (name, at - window_s))
            cur.execute("INSERT INTO login_failures(name, at) VALUES (?,?)", (name, at))
            rows = cur.execute("SELECT at FROM login_failures WHERE name=? ORDER BY at", (name,)).fetchall()
        return [r[0] for r in rows]

    def failures(self, name: str, since: float) -> list[float]:
        return [r[0] for r in self.db.read("SELECT at FROM login_failures WHERE name=? AND at > ? ORDER BY at",
                                           (name, since))]

    def clear_failures(self, name: str) -> None:
        with self.db.transaction() as cur:
            cur.execute("DELETE FROM login_failures WHERE name=?", (name,))

    # -- console sessions ----------------------------------------------------------------------
    def open_session(self, token: str, name: str, role: str, now: float) -> None:
        with self.db.transaction() as cur:
            cur.execute("INSERT INTO staff_sessions(token_sha256, name, role, created_at, last_seen) "
                        "VALUES (?,?,?,?,?)", (token_digest(token), name, role, now, now))

    def touch_session(self, token: str, now: float, timeout_s: float) -> tuple[str, str] | None:
        """(name, role) of a live session, whose idle clock restarts; None when unknown or idle
        longer than ``timeout_s`` (then it is deleted, with every other expired session)."""
        digest = token_digest(token)
        with self.db.transaction() as cur:
            cur.execute("DELETE FROM staff_sessions WHERE last_seen < ?", (now - timeout_s,))
            row = cur.execute("SELECT name, role FROM staff_sessions WHERE token_sha256=?", (digest,)).fetchone()
            if row is None:
                return None
            cur.execute("UPDATE staff_sessions SET last_seen=? WHERE token_sha256=?", (now, digest))
        return row[0], row[1]

    def close_session(self, token: str) -> None:
        with self.db.transaction() as cur:
            cur.execute("DELETE FROM staff_sessions WHERE token_sha256=?", (token_digest(token),))


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")
