"""Keys and roles at the HTTP edge: 401 without a valid key, 403 for the wrong role, 429 past the
rate limit (with Retry-After); the token bucket itself on a fake clock."""

from __future__ import annotations

import pytest

from chatbot.api.ratelimit import RateLimiter
from tests.api.helpers import assert_error, auth, make_client, new_key

TRIAGE = {"complaint": "crushing chest pain", "age": 60}
CHAT = {"model": "medchat", "messages": [{"role": "user", "content": "What causes gout?"}]}


def test_no_key_is_401_with_a_bearer_challenge(client):
    for response in (client.post("/v1/chat/completions", json=CHAT), client.get("/v1/models"),
                     client.get("/v1/kb/search", params={"q": "gout"}), client.post("/v1/triage", json=TRIAGE),
                     client.get("/v1/models", headers={"Authorization": "Basic dXNlcjpwdw=="})):
        error = assert_error(response, 401, "missing_api_key")
        assert error["type"] == "authentication_error"
        assert response.headers["WWW-Authenticate"] == "Bearer"


def test_wrong_unknown_or_revoked_keys_are_401(client, keys):
    good = keys["patient"]
    store = client.app.state.medchat.keys
    wrong_secret = good[:-4] + ("AAAA" if not good.endswith("AAAA") else "BBBB")
    unknown_id = "mck_000000000000_" + good.split("_", 2)[2]
    for bad in ("not-a-key", wrong_secret, unknown_id, good + "x"):
        assert_error(client.get("/v1/models", headers=auth(bad)), 401, "invalid_api_key")
    assert client.get("/v1/models", headers=auth(good)).status_code == 200
    store.revoke(good[4:16])
    assert_error(client.get("/v1/models", headers=auth(good)), 401, "invalid_api_key")


def test_roles_patient_chat_and_search_nurse_adds_triage_admin_everything(client, keys):
    for role in ("patient", "nurse", "admin"):
        headers = auth(keys[role])
        assert client.post("/v1/chat/completions", headers=headers, json=CHAT).status_code == 200
        assert client.get("/v1/kb/search", headers=headers, params={"q": "gout"}).status_code == 200
        assert client.get("/v1/models", headers=headers).status_code == 200
        triage = client.post("/v1/triage", headers=headers, json=TRIAGE)
        if role == "patient":
            error = assert_error(triage, 403, "forbidden")
            assert error["type"] == "permission_error"
            assert "patient" in error["message_en"] and "nurse" in error["message_en"]
        else:
            assert triage.status_code == 200, triage.text


def test_probes_and_the_schema_need_no_key(client):
    assert client.get("/healthz").status_code == 200
    assert client.get("/readyz").status_code == 200
    assert client.get("/openapi.json").status_code == 200


def test_rate_limit_per_key_is_429_with_retry_after(api_env):
    with make_client(rate_limit_per_minute=2) as client:
        first, second = new_key(client, "patient"), new_key(client, "patient")
        for _ in range(2):
            assert client.get("/v1/models", headers=auth(first)).status_code == 200
        limited = client.get("/v1/models", headers=auth(first))
        error = assert_error(limited, 429, "rate_limited")
        assert error["type"] == "rate_limit_error"
        assert 1 <= int(limited.headers["Retry-After"]) <= 30  # one token per 30 s at 2/minute
        assert client.get("/v1/models", headers=auth(second)).status_code == 200  # per key


def test_rate_limit_zero_is_off(api_env):
    with make_client(rate_limit_per_minute=0) as client:
        key = new_key(client, "patient")
        assert all(client.get("/v1/models", headers=auth(key)).status_code == 200 for _ in range(100))


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_token_bucket_bursts_then_refills_evenly():
    clock = Clock()
    limiter = RateLimiter(60, clock=clock)  # one token a second
    assert [limiter.take("k") for _ in range(60)] == [0] * 60
    assert limiter.take("k") == 1
    clock.now += 0.5
    assert limiter.take("k") == 1  # half a token: still wait
    clock.now += 0.5
    assert limiter.take("k") == 0 and limiter.take("k") == 1
    clock.now += 3600
    assert [limiter.take("k") for _ in range(61)].count(0) == 60  # never more than the burst
    assert limiter.take("other") == 0


@pytest.mark.parametrize("per_minute,wait", [(6, 10), (1, 60), (120, 1)])
def test_retry_after_is_the_time_to_the_next_token(per_minute, wait):
    clock = Clock()
    limiter = RateLimiter(per_minute, clock=clock)
    while limiter.take("k") == 0:
        pass
    assert limiter.take("k") == wait
