"""Probes, without a key (an orchestrator has none): ``/healthz`` says the process answers;
``/readyz`` says it can serve: the index answers a search and the models are loaded (or load
now). A failure is 503 with the check that failed; its detail goes to the log only (paths and
hosts are the operator's business, not an anonymous caller's)."""

from __future__ import annotations

import logging
from typing import Any, Callable

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from chatbot.api.context import context
from chatbot.api.errors import error_body
from chatbot.redact import redact

log = logging.getLogger("medchat.api")
router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@router.get("/readyz")
def readyz(request: Request) -> Any:
    """200 when the index is readable and the models are loaded or loadable; 503 with `reason` otherwise."""
    app = context(request).app
    checks: list[tuple[str, Callable[[], Any]]] = [
        # a real search, not a look at files: the loaded build is what answers patients
        ("index", lambda: app.retriever.search("readiness probe", k=1)),
        # idempotent: after start-up it only confirms (openai backend: the server answers)
        ("models", app.service.warm_up),
    ]
    done: dict[str, str] = {}
    for name, check in checks:
        try:
            check()
        except Exception as exc:  # any failure means not ready; a probe must never be a 500
            log.warning("readyz: %s not ready: %s: %s", name, type(exc).__name__, redact(str(exc))[0])
            done[name] = "failed"
            return JSONResponse({"status": "unavailable", "reason": name, "checks": done,
                                 **error_body(f"not_ready_{name}")}, status_code=503)
        done[name] = "ok"
    return {"status": "ready", "checks": done, "backend": app.generator.name}
