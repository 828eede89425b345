"""Individual staff accounts (issue 18): roles, disable, password reset, and logins, sessions and
lockouts shared through the database — on SQLite and on a real Postgres (``store_target``)."""

from __future__ import annotations

import pytest

from chatbot.staff.accounts import AccountError, AccountStore
from chatbot.staff.auth import NurseAuth, hash_password
from chatbot.store import ChatStore

FAST = 1000  # PBKDF2 rounds for tests; the real default is 600k
PW_NURSE = "nurse-li-passphrase"
PW_ADMIN = "admin-wang-passphrase"


@pytest.fixture
def store(store_target):
    s = ChatStore(store_target)
    yield s
    s.close()


@pytest.fixture
def accounts(store) -> AccountStore:
    a = AccountStore(store.db)
    a.add("li.wen", "nurse", hash_password(PW_NURSE, iterations=FAST))
    a.add("wang.admin", "admin", hash_password(PW_ADMIN, iterations=FAST))
    return a


def test_each_account_logs_in_with_its_own_password_and_role(accounts):
    auth = NurseAuth(accounts=accounts)  # no settings account: individual accounts only
    assert auth.configured
    assert auth.login("li.wen", PW_ADMIN) is None  # another account's password
    nurse = auth.login("li.wen", PW_NURSE)
    admin = auth.login("wang.admin", PW_ADMIN)
    assert auth.check(nurse) == "li.wen" and auth.check(admin) == "wang.admin"
    assert auth.check(nurse, role="admin") is None       # a nurse cannot use the admin tab
    assert auth.check(admin, role="admin") == "wang.admin"
    with pytest.raises(AccountError, match="unknown staff role"):
        auth.check(nurse, role="doctor")


def test_no_account_means_a_closed_console(store):
    auth = NurseAuth(accounts=AccountStore(store.db))
    assert not auth.configured and auth.login("li.wen", PW_NURSE) is None


def test_a_disabled_account_cannot_log_in_and_its_session_ends(accounts):
    auth = NurseAuth(accounts=accounts)
    token = auth.login("li.wen", PW_NURSE)
    accounts.set_disabled("li.wen", True)
    assert auth.check(token) is None                      # its session ended at once
    assert auth.login("li.wen", PW_NURSE) is None
    assert [a.active for a in accounts.list()] == [False, True]
    accounts.set_disabled("li.wen", False)
    assert auth.login("li.wen", PW_NURSE)


def test_a_password_reset_ends_the_sessions_and_only_the_new_password_works(accounts):
    auth = NurseAuth(accounts=accounts)
    token = auth.login("li.wen", PW_NURSE)
    accounts.set_password("li.wen", hash_password("a-brand-new-passphrase", iterations=FAST))
    assert auth.check(token) is None
    assert auth.login("li.wen", PW_NURSE) is None
    assert auth.login("li.wen", "a-brand-new-passphrase")


def test_names_are_unique_and_checked(accounts):
    with pytest.raises(AccountError, match="exists already"):
        accounts.add("li.wen", "admin", hash_password(PW_ADMIN, iterations=FAST))
    for bad in ("", "has space", "x" * 65, "tab\there"):
        with pytest.raises(AccountError, match="invalid account name"):
            accounts.add(bad, "nurse", "h")
    with pytest.raises(AccountError, match="unknown staff role"):
        accounts.add("zhao", "doctor", "h")
    with pytest.raises(AccountError, match="no staff account named 'ghost'"):
        accounts.set_disabled("ghost", True)


def test_replicas_share_sessions_and_lockouts_through_the_store(store_target, accounts):
    """Two NurseAuth on two connections (two replicas): a session opened on one is valid on the
    other, and failures on both count toward one lockout (no 5 guesses per replica)."""
    now = [1000.0]
    other = ChatStore(store_target)
    try:
        a = NurseAuth(accounts=accounts, clock=lambda: now[0], max_failures=4, lockout_s=900)
        b = NurseAuth(accounts=AccountStore(other.db), clock=lambda: now[0], max_failures=4, lockout_s=900)
        token = a.login("li.wen", PW_NURSE)
        assert b.check(token) == "li.wen"
        b.logout(token)
        assert a.check(token) is None
        for auth in (a, b, a, b):
            assert auth.login("wang.admin", "guess-guess-guess") is None
        assert a.locked_for("wang.admin") == 900 and b.locked_for("wang.admin") == 900
        assert b.login("wang.admin", PW_ADMIN) is None       # locked on both
        now[0] += 901
        assert b.login("wang.admin", PW_ADMIN)
    finally:
        other.close()


def test_sessions_expire_on_every_replica(store_target, accounts):
    now = [0.0]
    a = NurseAuth(accounts=accounts, clock=lambda: now[0], timeout_s=60)
    token = a.login("li.wen", PW_NURSE)
    now[0] = 59
    assert a.check(token) == "li.wen"
    now[0] = 120
    assert a.check(token) is None


def test_the_settings_account_still_works_beside_the_individual_ones(accounts):
    auth = NurseAuth("boot", password_hash=hash_password("bootstrap-passphrase", iterations=FAST),
                     accounts=accounts)
    token = auth.login("boot", "bootstrap-passphrase")
    assert auth.check(token, role="admin") == "boot"
    assert auth.login("li.wen", "bootstrap-passphrase") is None  # not a master password
