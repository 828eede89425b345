"""Who may call what: the ``Authorization: Bearer <key>`` header (what the openai SDK and LangChain
send), the key's role and its rate limit, as one FastAPI dependency per minimum role.

Order: authenticate (401) -> rate limit (429) -> role (403). The limit is counted before the role
so that a key hammering an endpoint it may not use is slowed down too. Failed authentications
are not rate limited: there is no key id to count them against, and a 256-bit secret cannot be
guessed by trying.
"""

from __future__ import annotations

from typing import Callable

from fastapi import Request

from chatbot.api.context import ApiContext, context
from chatbot.api.errors import ApiError
from chatbot.api.keys import ApiKey

_CHALLENGE = {"WWW-Authenticate": "Bearer"}


def bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def require(role: str) -> Callable[[Request], ApiKey]:
    """A dependency that returns the caller's key when its role is ``role`` or above."""

    def dependency(request: Request) -> ApiKey:
        ctx: ApiContext = context(request)
        token = bearer_token(request)
        if token is None:
            raise ApiError("missing_api_key", headers=_CHALLENGE)
        key = ctx.keys.authenticate(token)
        if key is None:
            raise ApiError("invalid_api_key", headers=_CHALLENGE)
        request.state.key_id = key.id  # the edge middleware logs it
        wait = ctx.limiter.take(key.id)
        if wait:
            raise ApiError("rate_limited", headers={"Retry-After": str(wait)},
                           limit=ctx.limiter.per_minute, retry=wait)
        if not key.allows(role):
            raise ApiError("forbidden", role=key.role, needed=role)
        return key

    dependency.__name__ = f"require_{role}"
    return dependency


require_patient = require("patient")
require_nurse = require("nurse")
