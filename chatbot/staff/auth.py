"""Login of the nurse triage console: one configured account, salted PBKDF2 hashes, expiring
sessions. Credentials come from settings / environment only (``ui.nurse_user`` and
``MEDCHAT_UI__NURSE_PASSWORD`` or ``ui.nurse_password_hash``); there is no default password, so
an unconfigured console stays closed (:attr:`NurseAuth.configured` is False).

Sessions live in memory (a restart logs everyone out) and expire ``timeout_s`` after their last
use; every console action calls :meth:`NurseAuth.check`, which also refreshes the clock.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Callable

from chatbot.errors import MedChatError

SCHEME = "pbkdf2_sha256"
# OWASP's 2023 recommendation for PBKDF2-HMAC-SHA256; ~0.3 s per login on this CPU, which is
# what slows down guessing, and a nurse logs in a few times a day.
ITERATIONS = 600_000
SALT_BYTES = 16


class AuthConfigError(MedChatError):
    """The configured password hash cannot be read."""


def hash_password(password: str, *, iterations: int = ITERATIONS, salt: str | None = None) -> str:
    """``pbkdf2_sha256$<iterations>$<salt hex>$<hash hex>`` (what ``ui.nurse_password_hash`` holds)."""
    if not password:
        raise AuthConfigError("an empty password cannot be hashed", hint="choose a password")
    salt = salt or secrets.token_hex(SALT_BYTES)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode("utf-8"), salt.encode("ascii"), iterations)
    return f"{SCHEME}${iterations}${salt}${digest.hex()}"


def _parse(encoded: str) -> tuple[int, str, str]:
    try:
        scheme, iterations, salt, digest = encoded.split("$")
        rounds = int(iterations)
    except ValueError as exc:
        raise AuthConfigError("ui.nurse_password_hash is not a pbkdf2_sha256$iterations$salt$hash string",
                              hint="create one with: medchat hash-password") from exc
    if scheme != SCHEME or rounds < 1:
        raise AuthConfigError(f"unsupported password hash scheme {scheme!r}",
                              hint="create one with: medchat hash-password")
    return rounds, salt, digest


def verify_password(password: str, encoded: str) -> bool:
    rounds, salt, digest = _parse(encoded)
    actual = hashlib.pbkdf2_hmac("sha256", password.encode("utf-8"), salt.encode("ascii"), rounds)
    return hmac.compare_digest(actual.hex(), digest)


@dataclass
class _Session:
    user: str
    last_seen: float


class NurseAuth:
    """One account. ``password_hash`` wins over ``password`` when both are set; with neither the
    console is not configured and every login fails."""

    def __init__(self, user: str, *, password: str = "", password_hash: str = "",
                 timeout_s: float = 1800.0, clock: Callable[[], float] = time.monotonic) -> None:
        if timeout_s <= 0:
            raise AuthConfigError(f"session timeout must be positive, got {timeout_s}")
        self.user = user
        # Hash a clear password at start-up (cheaper rounds would not matter: it never leaves memory
        # in clear once hashed, and verify() then costs the same for both configurations).
        self._hash = password_hash or (hash_password(password) if password else "")
        if self._hash:
            _parse(self._hash)  # a malformed hash fails at start-up, not at first login
        self.timeout_s = timeout_s
        self._clock = clock
        self._sessions: dict[str, _Session] = {}
        self._lock = threading.Lock()

    @property
    def configured(self) -> bool:
        return bool(self._hash)

    def login(self, user: str, password: str) -> str | None:
        """A session token, or None for wrong credentials (or an unconfigured console)."""
        if not self._hash:
            return None
        # Both compared every time, in constant time, so a wrong user name answers as slowly.
        ok_password = verify_password(password or "", self._hash)
        ok_user = hmac.compare_digest((user or "").encode("utf-8"), self.user.encode("utf-8"))
        if not (ok_user and ok_password):
            return None
        token = secrets.token_urlsafe(32)
        with self._lock:
            self._expire()
            self._sessions[token] = _Session(self.user, self._clock())
        return token

    def check(self, token: str | None) -> str | None:
        """The user of a live session (and its idle clock restarts), or None when the token is
        unknown or expired."""
        if not token:
            return None
        with self._lock:
            self._expire()
            session = self._sessions.get(token)
            if session is None:
                return None
            session.last_seen = self._clock()
            return session.user

    def logout(self, token: str | None) -> None:
        with self._lock:
            self._sessions.pop(token or "", None)

    def _expire(self) -> None:
        now = self._clock()
        for token in [t for t, s in self._sessions.items() if now - s.last_seen > self.timeout_s]:
            del self._sessions[token]
