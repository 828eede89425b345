"""What the routers reach through a request: the wired services (``chatbot.app.App``), the key
store and the rate limiter. Built once by ``chatbot.api.app.create_api``."""

from __future__ import annotations

from dataclasses import dataclass, field

from fastapi import Request

from chatbot.api.keys import KeyStore
from chatbot.api.ratelimit import RateLimiter
from chatbot.app import App

MEDCHAT_MODEL = "medchat"


@dataclass
class ApiContext:
    app: App
    keys: KeyStore
    limiter: RateLimiter
    models: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        # "medchat" always; the configured model's name too, so a client that names the model
        # it knows is served (one profile: both names reach the same service).
        if not self.models:
            self.models = list(dict.fromkeys([MEDCHAT_MODEL, self.app.settings.llm.model]))


def context(request: Request) -> ApiContext:
    return request.app.state.medchat
