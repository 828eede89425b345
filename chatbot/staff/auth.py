"""Login of the staff console (nurse and admin): individual accounts from the store
(``medchat staff add``), salted PBKDF2 hashes, expiring sessions, lockout.

Accounts, sessions and failures live in the store's database (:mod:`chatbot.staff.accounts`), so a
restart keeps nurses logged in and every replica shares logins and lockouts. One more account may
come from settings (``ui.nurse_user`` with ``MEDCHAT_UI__NURSE_PASSWORD`` or ``ui.nurse_password_hash``):
the bootstrap account of a single-person install, with the admin role. There is no default
password: with no account at all the console stays closed (:attr:`NurseAuth.configured` is False).

Sessions expire ``timeout_s`` after their last use; every console action calls
:meth:`NurseAuth.check`, which also refreshes the clock and checks the role the action needs.

Guessing is bounded: after ``max_failures`` wrong passwords for a user name within
``lockout_s``, that name is locked for ``lockout_s`` (the right password is refused too, so a
guesser learns nothing), and every failure, lockout and login is reported to ``on_event`` (the
app writes them to the store's audit events). A password shorter than
:data:`MIN_PASSWORD_LENGTH` is refused (at start-up for the settings account, by ``medchat staff``).
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import secrets
import threading
import time
from typing import Callable

from chatbot.errors import MedChatError
from chatbot.staff.accounts import ROLES, AccountStore, check_role

SCHEME = "pbkdf2_sha256"
# OWASP's 2023 recommendation for PBKDF2-HMAC-SHA256; ~0.3 s per login on this CPU, which is
# what slows down guessing, and a nurse logs in a few times a day.
ITERATIONS = 600_000
SALT_BYTES = 16
# NIST SP 800-63B asks for at least 8 characters; 12 because one console password guards every
# patient record the console can read.
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


@functools.lru_cache(maxsize=1)
def _dummy_hash() -> str:
    """What an unknown name is compared against, so that it costs the same time as a known one."""
    return hash_password(secrets.token_urlsafe(16))


class NurseAuth:
    """Staff login. ``accounts`` is the store's :class:`AccountStore` (a private in-memory one when
    None); ``user`` with ``password_hash`` (wins) or ``password`` is the optional settings account."""

    def __init__(self, user: str = "", *, password: str = "", password_hash: str = "",
                 timeout_s: float = 1800.0, clock: Callable[[], float] = time.time,
                 max_failures: int = MAX_FAILURES, lockout_s: float = LOCKOUT_S,
                 on_event: Callable[[str, dict], object] | None = None,
                 accounts: AccountStore | None = None) -> None:
        if timeout_s <= 0 or lockout_s <= 0 or max_failures < 1:
            raise AuthConfigError("session timeout and lockout must be positive and max_failures at least 1")
        self.user = user
        self.max_failures = max_failures
        self.lockout_s = lockout_s
        self._on_event = on_event
        # Hash a clear password at start-up (cheaper rounds would not matter: it never leaves memory
        # in clear once hashed, and verify() then costs the same for both configurations).
        self._hash = password_hash or (hash_password(password) if password else "")
        if self._hash:
            _parse(self._hash)  # a malformed hash fails at start-up, not at first login
        self.timeout_s = timeout_s
        self._clock = clock
        self.accounts = accounts if accounts is not None else AccountStore.in_memory()

    @property
    def configured(self) -> bool:
        return bool(self._hash) or self.accounts.active_count() > 0

    def locked_for(self, user: str) -> float:
        """Seconds until ``user`` may try again (0 when not locked)."""
        now = self._clock()
        recent = self.accounts.failures(user or "", since=now - self.lockout_s)
        if len(recent) < self.max_failures:
            return 0.0
        return max(0.0, recent[-1] + self.lockout_s - now)

    def _credentials(self, user: str) -> tuple[str, str] | None:
        """(hash, role) of the account ``user`` may log in as, or None."""
        stored = self.accounts.password_hash(user)
        if stored is not None:
            account = self.accounts.get(user)
            return stored, account.role if account else "nurse"
        if self._hash and hmac.compare_digest(user.encode("utf-8"), self.user.encode("utf-8")):
            return self._hash, "admin"  # the settings account runs the whole install
        return None

    def login(self, user: str, password: str) -> str | None:
        """A session token, or None for wrong credentials, a locked user name (see
        :meth:`locked_for`) or an unconfigured console."""
        user = (user or "").strip()
        credentials = self._credentials(user)
        # Logged by whether the name is an account's: a wrong name may be a password typed in
        # the wrong box, and the audit log must not keep it.
        who = {"user": user if credentials else "(other)"}
        if not self.configured:
            return None
        if self.locked_for(user):
            self._event("login_locked", who)
            return None
        # Always one PBKDF2 verification, so a wrong user name answers as slowly as a wrong password.
        ok = verify_password(password or "", credentials[0] if credentials else _dummy_hash())
        if not (credentials and ok):
            now = self._clock()
            count = len(self.accounts.record_failure(user, now, self.lockout_s))
            self._event("login_failed", {**who, "failures": count})
            if count >= self.max_failures:
                self._event("login_lockout", {**who, "lockout_s": self.lockout_s})
            return None
        token = secrets.token_urlsafe(32)
        self.accounts.clear_failures(user)
        self.accounts.open_session(token, user, credentials[1], self._clock())
        self._event("login_ok", {**who, "role": credentials[1]})
        return token

    def _event(self, kind: str, payload: dict) -> None:
        if self._on_event is not None:
            self._on_event(kind, payload)

    def check(self, token: str | None, role: str = "nurse") -> str | None:
        """The user of a live session whose role allows ``role`` (its idle clock restarts), or
        None when the token is unknown, expired, or the account's role is too low."""
        check_role(role)
        if not token:
            return None
        found = self.accounts.touch_session(token, self._clock(), self.timeout_s)
        if found is None:
            return None
        name, has = found
        return name if ROLES.index(has) >= ROLES.index(role) else None

    def logout(self, token: str | None) -> None:
        if token:
            self.accounts.close_session(token)
