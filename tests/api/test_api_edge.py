"""The edge of every request: body size limit (413), CORS off unless configured, one log line per
request without the patient's words, and a bilingual 500 without a traceback."""

from __future__ import annotations

import json
import logging

from tests.api.helpers import assert_error, auth, make_client, new_key

PHONE = "13812345678"


def chat_body(text: str) -> dict:
    return {"model": "medchat", "messages": [{"role": "user", "content": text}]}


def test_a_body_over_the_limit_is_413_before_it_is_read(api_env):
    with make_client(max_request_bytes=2048) as client:
        key = new_key(client, "patient")
        big = chat_body("gout " * 1000)
        error = assert_error(client.post("/v1/chat/completions", headers=auth(key), json=big), 413,
                             "request_too_large")
        assert "2048" in error["message_en"]
        # no Content-Length (chunked upload): counted while it is received
        payload = json.dumps(big).encode()

        def chunked():
            for i in range(0, len(payload), 512):
                yield payload[i:i + 512]

        streamed = client.post("/v1/chat/completions", content=chunked(),
                               headers={**auth(key), "Content-Type": "application/json"})
        assert "content-length" not in {k.lower() for k in streamed.request.headers}
        assert_error(streamed, 413, "request_too_large")
        # a chunked body under the limit is replayed intact
        small = json.dumps(chat_body("What causes gout?")).encode()
        ok = client.post("/v1/chat/completions", content=iter([small[:10], small[10:]]),
                         headers={**auth(key), "Content-Type": "application/json"})
        assert ok.status_code == 200, ok.text
        assert ok.json()["medchat"]["passages"][0]["doc_id"] == "gout"


def test_cors_is_off_by_default(client, keys):
    preflight = client.options("/v1/chat/completions", headers={
        "Origin": "https://evil.example", "Access-Control-Request-Method": "POST"})
    assert "access-control-allow-origin" not in preflight.headers
    response = client.get("/v1/models", headers={**auth(keys["patient"]), "Origin": "https://evil.example"})
    assert response.status_code == 200 and "access-control-allow-origin" not in response.headers


def test_cors_allows_only_the_configured_origins(api_env):
    with make_client(cors_origins=["https://portal.example.org"]) as client:
        key = new_key(client, "patient")
        ok = client.options("/v1/chat/completions", headers={
            "Origin": "https://portal.example.org", "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,content-type,x-medchat-session"})
        assert ok.status_code == 200
        assert ok.headers["access-control-allow-origin"] == "https://portal.example.org"
        assert "x-medchat-session" in ok.headers["access-control-allow-headers"].lower()
        other = client.get("/v1/models", headers={**auth(key), "Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in other.headers
        mine = client.post("/v1/chat/completions", headers={**auth(key), "Origin": "https://portal.example.org"},
                           json=chat_body("What causes gout?"))
        assert mine.headers["access-control-allow-origin"] == "https://portal.example.org"
        assert "x-medchat-session" in mine.headers["access-control-expose-headers"].lower()


def test_every_request_is_logged_without_the_patients_words(client, keys, caplog):
    caplog.set_level(logging.INFO, logger="medchat.api")
    key = keys["patient"]
    key_id = key[4:16]
    secret_words = f"zebrafinch gout pain, call me on {PHONE}"
    client.post("/v1/chat/completions", headers=auth(key), json=chat_body(secret_words))
    client.get("/v1/kb/search", headers=auth(key), params={"q": f"zebrafinch {PHONE}"})
    client.get("/v1/models")  # no key
    client.get(f"/v1/call-me-{PHONE}")  # anything a client puts in a URL
    lines = [r.getMessage() for r in caplog.records if r.name == "medchat.api"]
    assert f"POST /v1/chat/completions 200 key={key_id}" in lines[0] and lines[0].endswith("ms")
    assert f"GET /v1/kb/search 200 key={key_id}" in lines[1]
    assert "GET /v1/models 401 key=-" in lines[2]
    assert "GET /v1/call-me-[PHONE] 404 key=-" in lines[3]
    everything = caplog.text + "\n".join(lines)
    assert "zebrafinch" not in everything and PHONE not in everything and key not in everything


def test_an_unexpected_error_is_a_bilingual_500_logged_redacted(api_env, caplog):
    from chatbot.app import build_app
    from chatbot.settings import load_settings

    app = build_app(load_settings())

    def broken(session_id, text):
        raise RuntimeError(f"boom while reading {PHONE}")

    app.service.reply = broken
    caplog.set_level(logging.INFO, logger="medchat.api")
    with make_client(app) as client:
        response = client.post("/v1/chat/completions", headers=auth(new_key(client, "patient")),
                               json=chat_body("What causes gout?"))
    error = assert_error(response, 500, "server_error")
    assert error["type"] == "server_error" and "boom" not in response.text
    assert "RuntimeError" in caplog.text and "[PHONE]" in caplog.text and PHONE not in caplog.text


def app_whose_index_is_gone():
    """The real app wiring with a retriever that fails as a deleted index does."""
    from chatbot.app import build_app
    from chatbot.settings import load_settings
    from knowledge_base.errors import IndexNotFoundError

    app = build_app(load_settings())

    def gone(*args, **kwargs):
        raise IndexNotFoundError("no index at /secret/path")

    app.retriever.search = gone
    return app


def test_a_domain_error_is_a_bilingual_503(api_env):
    app = app_whose_index_is_gone()
    with make_client(app) as client:
        response = client.get("/v1/kb/search", headers=auth(new_key(client, "patient")), params={"q": "gout"})
    assert_error(response, 503, "unavailable")
    assert "/secret/path" not in response.text


def test_a_failure_during_a_stream_ends_it_with_an_error_event(api_env):
    app = app_whose_index_is_gone()
    with make_client(app) as client:
        response = client.post("/v1/chat/completions", headers=auth(new_key(client, "patient")),
                               json={**chat_body("What causes gout?"), "stream": True})
    assert response.status_code == 200  # the headers were already sent
    data = [line[6:] for line in response.text.split("\n") if line.startswith("data: ")]
    assert data[-1] == "[DONE]"
    assert json.loads(data[-2])["error"]["code"] == "unavailable"
    assert "/secret/path" not in response.text
