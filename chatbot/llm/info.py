"""What ``medchat`` reports about the active backend (admin UI, ``ask --json``)."""

from __future__ import annotations

from chatbot.llm.base import BackendInfo, Generator


def backend_info(generator: Generator) -> BackendInfo:
    """The generator's own report when it has one, else what its ``name`` tells
    ("backend:model")."""
    info = getattr(generator, "info", None)
    if callable(info):
        return info()
    backend, _, model = generator.name.partition(":")
    return BackendInfo(backend=backend, model=model or backend)
