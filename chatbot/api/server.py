"""``medchat api``: the API under uvicorn. The models load before the port opens, so the first
request does not wait for them and a broken setup (no index, no model) fails at start-up with the
CLI's message instead of on a patient's question.

uvicorn's access log is off: it writes every URL with its query string, and
``/v1/kb/search?q=...`` carries a patient's words. The edge middleware logs each request instead
(``chatbot.api.middleware``).
"""

from __future__ import annotations

import copy
from typing import Any

from chatbot.settings import Settings, load_settings


def log_config() -> dict[str, Any]:
    """uvicorn's logging plus MedChat's request log (``medchat.api``, INFO) and the engine's
    warnings, on uvicorn's handler."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config["loggers"]["medchat"] = {"handlers": ["default"], "level": "INFO", "propagate": False}
    for name in ("chatbot", "knowledge_base"):
        config["loggers"][name] = {"handlers": ["default"], "level": "WARNING", "propagate": False}
    return config


def ready_api(settings: Settings) -> Any:
    """The API with every model loaded."""
    from chatbot.api.app import create_api

    api = create_api(settings)
    api.state.medchat.app.service.warm_up()
    return api


def worker_app() -> Any:
    """uvicorn's factory for ``api.workers`` > 1: each worker process wires and loads its own
    copy from the settings (the CLI passes its options to them as MEDCHAT_* variables)."""
    return ready_api(load_settings())


def serve(settings: Settings, host: str, port: int, workers: int = 1) -> None:
    import uvicorn

    common = {"host": host, "port": port, "access_log": False, "log_config": log_config(),
              "timeout_graceful_shutdown": 10}
    if workers == 1:
        uvicorn.run(ready_api(settings), **common)
    else:
        uvicorn.run("chatbot.api.server:worker_app", factory=True, workers=workers, **common)
