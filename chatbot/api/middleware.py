"""The edge of every request (plain ASGI, outermost): body size limit, one log line, and the
last catch for exceptions.

- **Size** before anything reads the body: a declared ``Content-Length`` over the limit is
  refused at once; a chunked body is read up to the limit and refused when it goes past it, so
  no handler ever parses more than ``api.max_request_bytes``.
- **Log**: method, path, status, key id, latency; never the query string (``/v1/kb/search?q=``
  carries the patient's words) nor any body. The path itself goes through ``chatbot.redact``:
  a client can put anything in a URL. uvicorn's access log is off for the same reason
  (``chatbot.api.server``).
- **Exceptions** that escaped every handler become the bilingual 500 of ``chatbot.api.errors``;
  the traceback is logged with identifiers redacted, and the client never sees it.
"""

from __future__ import annotations

import json
import logging
import time
import traceback
from typing import Any, Awaitable, Callable

from chatbot.api.errors import MESSAGES, error_body
from chatbot.redact import redact

log = logging.getLogger("medchat.api")

Scope = dict[str, Any]
Message = dict[str, Any]
ASGIApp = Callable[[Scope, Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]], Awaitable[None]]


class _TooLarge(Exception):
    pass


class EdgeMiddleware:
    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        t0 = time.perf_counter()
        state = {"status": 0, "started": False}

        async def send_logged(message: Message) -> None:
            if message["type"] == "http.response.start":
                state["status"], state["started"] = message["status"], True
            await send(message)

        try:
            receive = await self._limited(scope, receive)
            await self.app(scope, receive, send_logged)
        except _TooLarge:
            await self._json(send_logged, "request_too_large", limit=self.max_body_bytes)
        except Exception as exc:  # the last catch: anything a handler did not turn into a response
            log_unexpected(f"{scope['method']} {_path(scope)}", exc)
            if not state["started"]:
                await self._json(send_logged, "server_error")
        finally:
            key_id = (scope.get("state") or {}).get("key_id") or "-"
            log.info("%s %s %s key=%s %.1fms", scope["method"], _path(scope), state["status"] or "-",
                     key_id, (time.perf_counter() - t0) * 1000)

    async def _limited(self, scope: Scope, receive):
        """``receive`` replaying the body once it is known to fit, then the real channel (so a
        client disconnect is still seen while an answer streams)."""
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None:
            try:
                if int(declared) > self.max_body_bytes:
                    raise _TooLarge
            except ValueError:
                pass  # a malformed header: the server refuses it before us, or the body count below does
        if scope["method"] in ("GET", "HEAD", "OPTIONS", "DELETE") and declared is None:
            return receive
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] != "http.request":  # the client left: let the app see it
                return _replaying(message, receive)
            body = message.get("body", b"")
            size += len(body)
            if size > self.max_body_bytes:
                raise _TooLarge
            chunks.append(body)
            more = message.get("more_body", False)
        done = False

        async def replay() -> Message:
            nonlocal done
            if not done:
                done = True
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            return await receive()

        return replay

    @staticmethod
    async def _json(send, code: str, **values: Any) -> None:
        body = json.dumps(error_body(code, **values), ensure_ascii=False).encode("utf-8")
        await send({"type": "http.response.start", "status": MESSAGES[code][0],
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})


def _replaying(first: Message, receive):
    """A ``receive`` that returns ``first`` once, then reads the real channel."""
    pending = [first]

    async def replay() -> Message:
        return pending.pop() if pending else await receive()

    return replay


def log_unexpected(where: str, exc: BaseException) -> None:
    """The traceback of an unexpected exception, identifiers redacted (an exception's message
    may quote the text it failed on)."""
    log.error("unhandled %s in %s:\n%s", type(exc).__name__, where,
              redact("".join(traceback.format_exception(exc)))[0])


def _path(scope: Scope) -> str:
    return redact(scope.get("path", ""))[0]
