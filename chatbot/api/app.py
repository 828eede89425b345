"""The one place the HTTP API is wired: ``create_api(settings)`` builds the application's
services with ``chatbot.app.build_app`` (the same wiring as the CLI and the browser app), the key
store and the rate limiter of ``settings.api``, and mounts the routers on them.

Middleware, outermost first: the edge (size limit, request log, last catch of exceptions), then
CORS when ``api.cors_origins`` is set. The edge's own answers (413, 500) therefore carry no CORS
headers; every other response does.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from chatbot.api import chat, health, kb, triage
from chatbot.api.context import ApiContext
from chatbot.api.errors import install_handlers
from chatbot.api.keys import KeyStore
from chatbot.api.middleware import EdgeMiddleware
from chatbot.api.ratelimit import RateLimiter
from chatbot.app import App, build_app, keys_target
from chatbot.settings import Settings, load_settings

DESCRIPTION = """MedChat over HTTP: OpenAI-compatible chat completions (answers grounded in the
knowledge base, with sources; emergencies answered by the red-flag screen), nurse triage and
knowledge-base search. Every /v1 endpoint needs `Authorization: Bearer <key>` (`medchat api key
create`). MedChat is not a doctor. See docs/API.md."""


def _version() -> str:
    try:
        return version("medchat")
    except PackageNotFoundError:  # a source checkout that was never installed
        return "0"


def create_api(settings: Settings | None = None, *, app: App | None = None,
               keys: KeyStore | None = None) -> FastAPI:
    """The FastAPI application. ``app`` reuses an already wired ``chatbot.app.App`` (its settings
    then win); nothing loads here: models load on ``app.service.warm_up()`` or first use."""
    app = app or build_app(settings or load_settings())
    s = app.settings.api
    # No /docs or /redoc: they load their scripts from a CDN, which a clinic's network may not
    # reach; /openapi.json is the contract and any OpenAPI viewer reads it.
    api = FastAPI(title="MedChat API", version=_version(), description=DESCRIPTION,
                  docs_url=None, redoc_url=None)
    api.state.medchat = ApiContext(app=app, keys=keys or KeyStore(keys_target(app.settings)),
                                   limiter=RateLimiter(s.rate_limit_per_minute))
    install_handlers(api)
    for module in (health, chat, triage, kb):
        api.include_router(module.router)
    if s.cors_origins:
        # Keys travel in the Authorization header, never in cookies: no credentials mode.
        api.add_middleware(CORSMiddleware, allow_origins=s.cors_origins, allow_methods=["GET", "POST"],
                           allow_headers=["Authorization", "Content-Type", chat.SESSION_HEADER],
                           expose_headers=[chat.SESSION_HEADER, "Retry-After"], max_age=600)
    api.add_middleware(EdgeMiddleware, max_body_bytes=s.max_request_bytes)  # added last = outermost
    return api
