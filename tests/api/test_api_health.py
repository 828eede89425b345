"""/healthz, /readyz (503 with the failing check) and the OpenAPI schema."""

from __future__ import annotations

from chatbot.llm.base import GenerationError
from tests.api.helpers import assert_error, make_client


def test_healthz_and_readyz_when_everything_is_there(client):
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready", "checks": {"index": "ok", "models": "ok"}, "backend": "fake"}


def test_readyz_is_503_when_the_index_is_missing(api_env, monkeypatch, tmp_path):
    monkeypatch.setenv("MEDCHAT_PATHS__INDEX_DIR", str(tmp_path / "no-index-here"))
    with make_client() as client:
        assert client.get("/healthz").status_code == 200  # the process is up all the same
        response = client.get("/readyz")
    body = response.json()
    assert_error(response, 503, "not_ready_index")
    assert body["status"] == "unavailable" and body["reason"] == "index" and body["checks"] == {"index": "failed"}
    assert "no-index-here" not in response.text  # the detail is for the log, not for anonymous callers


def test_readyz_is_503_when_the_model_cannot_load(api_env):
    from chatbot.app import build_app
    from chatbot.llm.fake import FakeGenerator
    from chatbot.settings import load_settings

    class Unloadable(FakeGenerator):
        def warm_up(self) -> None:
            raise GenerationError("no GGUF file at /models/x.gguf")

    with make_client(build_app(load_settings(), generator=Unloadable())) as client:
        response = client.get("/readyz")
    assert_error(response, 503, "not_ready_models")
    assert response.json()["checks"] == {"index": "ok", "models": "failed"}


def test_openapi_schema_lists_every_endpoint_and_the_completion_shape(client):
    schema = client.get("/openapi.json").json()
    assert schema["info"]["title"] == "MedChat API"
    paths = {"/v1/chat/completions", "/v1/models", "/v1/triage", "/v1/kb/search", "/healthz", "/readyz"}
    assert paths <= set(schema["paths"])
    components = schema["components"]["schemas"]
    models = {"ChatCompletionRequest", "ChatCompletion", "MedChatExtras", "TriageRequest", "ErrorResponse"}
    assert models <= set(components)
    assert "medchat" in components["ChatCompletion"]["properties"]
    responses = schema["paths"]["/v1/chat/completions"]["post"]["responses"]
    assert {"200", "401", "403", "413", "429"} <= set(responses)
    # no documentation pages that load scripts from a CDN
    assert client.get("/docs").status_code == 404 and client.get("/redoc").status_code == 404


def test_the_api_runs_on_the_configured_store(client, api_env):
    """The Postgres half of the API suite really is on Postgres: conversations and keys both."""
    import os

    ctx = client.app.state.medchat
    want = "postgresql" if os.environ.get("MEDCHAT_STORE__URL") else "sqlite"
    assert ctx.app.store.backend == want
    assert isinstance(ctx.keys.target, str) == (want == "postgresql")
