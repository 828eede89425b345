"""The key store: hashed keys, roles, revocation, session ownership, an owner-only file; the
behaviour tests run on SQLite and on a real Postgres (``store_target``)."""

from __future__ import annotations

import hashlib
import stat

import pytest

from chatbot.api.keys import ApiKeyError, KeyStore


def test_a_created_key_authenticates_and_only_its_hash_is_stored(tmp_path):
    store = KeyStore(tmp_path / "sub" / "keys.sqlite")
    record, raw = store.create("nurse", "ward 3")
    assert raw.startswith(f"mck_{record.id}_") and len(raw) == 4 + 12 + 1 + 43
    assert record.role == "nurse" and record.name == "ward 3" and record.active
    assert store.authenticate(raw) == record
    data = (tmp_path / "sub" / "keys.sqlite").read_bytes()
    secret = raw.split("_", 2)[2]
    assert secret.encode() not in data and raw.encode() not in data
    assert hashlib.sha256(raw.encode()).hexdigest().encode() in data


def test_the_key_file_is_owner_only(tmp_path):
    path = tmp_path / "keys.sqlite"
    KeyStore(path).create("patient")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    loose = tmp_path / "loose.sqlite"
    loose.touch(mode=0o644)
    loose.chmod(0o644)
    KeyStore(loose).list()
    assert stat.S_IMODE(loose.stat().st_mode) == 0o600


def test_wrong_malformed_and_revoked_keys_do_not_authenticate(store_target):
    store = KeyStore(store_target)
    record, raw = store.create("patient")
    other, _ = store.create("admin")
    forged = f"mck_{other.id}_{raw.split('_', 2)[2]}"  # a real secret under another id
    for bad in (None, "", "Bearer " + raw, raw.upper(), raw[:-1], forged):
        assert store.authenticate(bad) is None
    revoked = store.revoke(record.id)
    assert not revoked.active and revoked.revoked_at
    assert store.authenticate(raw) is None
    assert store.revoke(record.id).revoked_at == revoked.revoked_at  # once revoked, stays as it was
    assert [(k.id, k.active) for k in store.list()] == [(record.id, False), (other.id, True)]


def test_roles_are_ordered_and_checked(store_target):
    store = KeyStore(store_target)
    patient, nurse, admin = (store.create(role)[0] for role in ("patient", "nurse", "admin"))
    assert patient.allows("patient") and not patient.allows("nurse") and not patient.allows("admin")
    assert nurse.allows("patient") and nurse.allows("nurse") and not nurse.allows("admin")
    assert admin.allows("patient") and admin.allows("nurse") and admin.allows("admin")
    with pytest.raises(ApiKeyError, match="unknown role 'doctor'"):
        store.create("doctor")
    with pytest.raises(ApiKeyError, match="no API key with id 'nope'"):
        store.revoke("nope")


def test_sessions_remember_the_key_that_opened_them(store_target):
    store = KeyStore(store_target)
    first, _ = store.create("patient")
    second, _ = store.create("patient")
    store.own_session("s1", first.id)
    store.own_session("s1", second.id)  # the first owner stays
    assert store.session_owner("s1") == first.id and store.session_owner("s2") is None


def test_an_unwritable_location_is_a_domain_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(ApiKeyError, match="cannot create the API key file"):
        KeyStore(blocker / "keys.sqlite").list()


def test_keys_created_before_the_store_do_not_block_it(postgres_url):
    """`medchat api key create` on an empty Postgres before any server started (found by `medchat
    bench api` on Postgres: the store then refused the database as foreign)."""
    from chatbot.store import ChatStore

    keys = KeyStore(postgres_url)
    record, raw = keys.create("patient", "portal")
    with ChatStore(postgres_url) as store:
        assert store.stats()["sessions"] == 0
    assert KeyStore(postgres_url).authenticate(raw) == record
