"""The doors of the browser app that Gradio leaves open (reliability review, findings b and f).

- **Security headers** on every response: the page cannot be framed (clickjacking), content types
  are not sniffed, no referrer leaves the clinic, no camera/microphone/location.
- **No endpoint listing**: ``/gradio_api/info`` (which listed every callback although
  ``show_api=False``) answers an empty API description — the page's own client still connects —
  and the schema/doc pages are gone. Every staff callback re-checks the login anyway
  (``ui/nurse.py``); this only stops advertising them.
- **Downloads without files**: the nurse's CSV export used to be a temp file, world-readable,
  never deleted and served by its URL to anyone. Now it is held in memory under a random
  single-use code that only a logged-in callback can create, expires after ``ttl_s`` and is
  served once by this middleware, then forgotten.

A pure ASGI middleware (not Starlette's BaseHTTPMiddleware): Gradio streams answers as
server-sent events, which must pass through unbuffered.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Any, Awaitable, Callable
from urllib.parse import quote

DOWNLOAD_PREFIX = "/medchat/download/"
# One minute is enough for the browser to follow the link the nurse just clicked.
DOWNLOAD_TTL_S = 60.0
SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    # Gradio's page needs its inline scripts and styles; what a CSP can still do without breaking
    # it: no framing, no plugins, no <base> hijack, forms post to this origin only.
    (b"content-security-policy", b"frame-ancestors 'none'; object-src 'none'; base-uri 'self'; form-action 'self'"),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
)
# Where Gradio describes its callbacks: answered with an empty description.
INFO_PATHS = frozenset({"/gradio_api/info", "/gradio_api/info/", "/info", "/info/"})
EMPTY_INFO = json.dumps({"named_endpoints": {}, "unnamed_endpoints": {}}).encode()
HIDDEN_PATHS = frozenset({"/gradio_api/openapi.json", "/openapi.json", "/docs", "/redoc"})


@dataclass
class _Held:
    data: bytes
    filename: str
    media_type: str
    expires: float


class Downloads:
    """Single-use, expiring, in-memory downloads. Thread-safe (Gradio callbacks run in threads)."""

    def __init__(self, ttl_s: float = DOWNLOAD_TTL_S, clock: Callable[[], float] = time.monotonic) -> None:
        if ttl_s <= 0:
            raise ValueError("ttl_s must be positive")
        self.ttl_s = ttl_s
        self._clock = clock
        self._held: dict[str, _Held] = {}
        self._lock = threading.Lock()

    def put(self, data: bytes, filename: str, media_type: str = "text/csv; charset=utf-8") -> str:
        """A fresh code for ``data`` (call only from a callback that checked the login)."""
        code = secrets.token_urlsafe(24)
        with self._lock:
            self._drop_expired()
            self._held[code] = _Held(data, filename, media_type, self._clock() + self.ttl_s)
        return code

    def take(self, code: str) -> _Held | None:
        """The held download, removed; None when unknown, used or expired."""
        with self._lock:
            self._drop_expired()
            return self._held.pop(code, None)

    def __len__(self) -> int:
        with self._lock:
            self._drop_expired()
            return len(self._held)

    def _drop_expired(self) -> None:
        now = self._clock()
        for code in [c for c, h in self._held.items() if h.expires <= now]:
            del self._held[code]


def download_path(code: str) -> str:
    """The link of a download, relative (works behind a reverse proxy's path prefix)."""
    return DOWNLOAD_PREFIX.lstrip("/") + quote(code)


Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict]]
Send = Callable[[dict], Awaitable[None]]


class SecureApp:
    """ASGI middleware: security headers, the endpoint listing emptied, held downloads served."""

    def __init__(self, app: Callable, downloads: Downloads) -> None:
        self.app = app
        self.downloads = downloads

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        if path in INFO_PATHS:
            await _respond(send, 200, EMPTY_INFO, b"application/json")
            return
        if path in HIDDEN_PATHS:
            await _respond(send, 404, b'{"detail":"Not Found"}', b"application/json")
            return
        if path.startswith(DOWNLOAD_PREFIX) and scope.get("method") == "GET":
            held = self.downloads.take(path[len(DOWNLOAD_PREFIX):])
            if held is None:
                await _respond(send, 404, "下载链接已失效，请重新导出。 / This download link has expired: "
                                          "export again.".encode(), b"text/plain; charset=utf-8")
                return
            disposition = f"attachment; filename*=UTF-8''{quote(held.filename)}".encode()
            await _respond(send, 200, held.data, held.media_type.encode(),
                           extra=((b"content-disposition", disposition), (b"cache-control", b"no-store")))
            return

        async def with_headers(message: dict) -> None:
            if message["type"] == "http.response.start":
                present = {k.lower() for k, _ in message.get("headers", [])}
                message["headers"] = list(message.get("headers", [])) + [
                    (k, v) for k, v in SECURITY_HEADERS if k not in present]
            await send(message)

        await self.app(scope, receive, with_headers)


async def _respond(send: Send, status: int, body: bytes, content_type: bytes,
                   extra: tuple[tuple[bytes, bytes], ...] = ()) -> None:
    headers = [(b"content-type", content_type), (b"content-length", str(len(body)).encode()),
               *SECURITY_HEADERS, *extra]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def app_kwargs(downloads: Downloads) -> dict[str, Any]:
    """What ``Blocks.launch(app_kwargs=...)`` passes to Gradio's FastAPI app."""
    from starlette.middleware import Middleware

    return {"middleware": [Middleware(SecureApp, downloads=downloads)]}
