"""Login of the nurse triage console: one configured account, salted PBKDF2 hashes, expiring
sessions. Credentials come from settings / environment only (``ui.nurse_user`` and
``MEDCHAT_UI__NURSE_PASSWORD`` or ``ui.nurse_password_hash``); there is no default password, so
an unconfigured console stays closed (:attr:`NurseAuth.configured` is False).

Sessions live in memory (a restart logs everyone out) and expire ``timeout_s`` after their last
use; every console action calls :meth:`NurseAuth.check`, which also refreshes the clock.

Guessing is bounded: after ``max_failures`` wrong passwords for a user name within
``lockout_s``, that name is locked for ``lockout_s`` (the right password is refused too, so a
guesser learns nothing), and every failure, lockout and login is reported to ``on_event`` (the
app writes them to the store's audit events). A clear password shorter than
:data:`MIN_PASSWORD_LENGTH` is refused at start-up, like a hash of one by ``medchat hash-password``.
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
# NIST SP 800-63B asks for at least 8 characters; 12 because one shared console password guards
# every patient record the console can read.
MIN_PASSWORD_LENGTH = 12
# Five tries cover typos; fifteen minutes make guessing cost ~500 tries a day instead of 2 a second.
MAX_FAILURES = 5
LOCKOUT_S = 900.0


class AuthConfigError(MedChatError):
    """The configured password hash cannot be read."""


def check_password_policy(password: str) -> None:
    if len(password or "") < MIN_PASSWORD_LENGTH:
        raise AuthConfigError(f"the nurse console password must have at least {MIN_PASSWORD_LENGTH} characters "
                              f"/ 护士台密码至少需要 {MIN_PASSWORD_LENGTH} 个字符",
                              hint="a passphrase of three or four words is easy to type and hard to guess")


def hash_password(password: str, *, iterations: int = ITERATIONS, salt: str | None = None) -> str:
    """``pbkdf2_sha256$<iterations>$<salt hex>$<hash hex>`` (what ``ui.nurse_password_hash`` holds).
    The password must pass :func:`check_password_policy`."""
    check_password_policy(password)
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
                 timeout_s: float = 1800.0, clock: Callable[[], float] = time.monotonic,
                 max_failures: int = MAX_FAILURES, lockout_s: float = LOCKOUT_S,
                 on_event: Callable[[str, dict], object] | None = None) -> None:
        if timeout_s <= 0 or lockout_s <= 0 or max_failures < 1:
            raise AuthConfigError("session timeout and lockout must be positive and max_failures at least 1")
        self.user = user
        self.max_failures = max_failures
        self.lockout_s = lockout_s
        self._on_event = on_event
        self._failures: dict[str, list[float]] = {}  # user name -> times of recent failures
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

    def locked_for(self, user: str) -> float:
        """Seconds until ``user`` may try again (0 when not locked)."""
        with self._lock:
            recent = self._recent_failures(user or "")
            if len(recent) < self.max_failures:
                return 0.0
            return max(0.0, recent[-1] + self.lockout_s - self._clock())

    def login(self, user: str, password: str) -> str | None:
        """A session token, or None for wrong credentials, a locked user name (see
        :meth:`locked_for`) or an unconfigured console."""
        if not self._hash:
            return None
        user = user or ""
        ok_user = hmac.compare_digest(user.encode("utf-8"), self.user.encode("utf-8"))
        # Logged by whether the name is the account's: a wrong name may be a password typed in
        # the wrong box, and the audit log must not keep it.
        who = {"user": self.user if ok_user else "(other)"}
        if self.locked_for(user):
            self._event("login_locked", who)
            return None
        # Both compared every time, in constant time, so a wrong user name answers as slowly.
        ok_password = verify_password(password or "", self._hash)
        if not (ok_user and ok_password):
            with self._lock:
                failures = self._recent_failures(user)
                failures.append(self._clock())
                count = len(failures)
            self._event("login_failed", {**who, "failures": count})
            if count >= self.max_failures:
                self._event("login_lockout", {**who, "lockout_s": self.lockout_s})
            return None
        token = secrets.token_urlsafe(32)
        with self._lock:
            self._failures.pop(user, None)
            self._expire()
            self._sessions[token] = _Session(self.user, self._clock())
        self._event("login_ok", who)
        return token

    def _recent_failures(self, user: str) -> list[float]:
        """The failures of ``user`` inside the lockout window (older ones dropped); hold the lock."""
        now = self._clock()
        recent = [t for t in self._failures.get(user, []) if now - t < self.lockout_s]
        self._failures[user] = recent
        return recent

    def _event(self, kind: str, payload: dict) -> None:
        if self._on_event is not None:
            self._on_event(kind, payload)

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
