"""Operator services behind the admin tab: knowledge-base status, a rebuild that runs in a
background thread (chat keeps answering from the current build, which the builder replaces
atomically; the retriever switches to the new one when it is complete), model status and recent
feedback. The UI only calls these and renders what they return.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable

from chatbot.llm.info import backend_info
from knowledge_base.errors import DomainError

log = logging.getLogger(__name__)


@dataclass
class RebuildProgress:
    """A snapshot of the rebuild job: ``state`` is idle | running | done | failed."""

    state: str = "idle"
    stage: str = ""
    done: int = 0
    total: int = 0
    started_at: float = 0.0
    seconds: float = 0.0
    message: str = ""
    report: dict[str, Any] = field(default_factory=dict)

    @property
    def fraction(self) -> float:
        return self.done / self.total if self.total else 0.0

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "fraction": round(self.fraction, 4)}


class AdminService:
    """``build`` is the rebuild function (``chatbot.app.build_index_from_settings`` bound to the
    settings; it takes ``full`` and ``on_progress``); ``app`` is the wired
    :class:`chatbot.app.App` whose retriever reloads after a successful build."""

    def __init__(self, app: Any, build: Callable[..., Any]) -> None:
        self.app = app
        self._build = build
        self._progress = RebuildProgress()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    # -- status --------------------------------------------------------------------------------
    def kb_status(self) -> dict[str, Any]:
        """documents, chunks, embedder, built_at (and build id, languages) of the serving build."""
        from knowledge_base.inspect import index_stats

        stats = index_stats(self.app.settings.paths.index_dir)
        return {k: stats[k] for k in ("documents", "chunks", "chunks_by_lang", "embedder",
                                      "built_at", "build_id", "dense_index", "index_dir")}

    def model_status(self) -> dict[str, Any]:
        info = backend_info(self.app.generator)
        service = self.app.service
        return {"backend": info.backend, "model": info.model, "adapter": info.adapter or "",
                "device": info.device,
                "classifier": service.classifier.name,
                "safety_screen": service.safety.name}

    def recent_feedback(self, limit: int = 20) -> list[dict[str, Any]]:
        rows = []
        for fb in self.app.store.recent_feedback(limit):
            message = self.app.store.message(fb.message_id)
            rows.append({"id": fb.id, "created_at": fb.created_at, "rating": fb.rating,
                         "comment": fb.comment, "session_id": fb.session_id,
                         "answer": message.text if message else ""})
        return rows

    # -- rebuild -------------------------------------------------------------------------------
    def start_rebuild(self, full: bool = False) -> bool:
        """Start a rebuild in a background thread; False when one is already running."""
        with self._lock:
            if self._progress.state == "running":
                return False
            self._progress = RebuildProgress(state="running", stage="start", started_at=time.time())
            self._thread = threading.Thread(target=self._run, args=(full,), name="kb-rebuild",
                                            daemon=True)
            self._thread.start()
        return True

    def progress(self) -> RebuildProgress:
        with self._lock:
            p = self._progress
            if p.state == "running":
                p.seconds = round(time.time() - p.started_at, 1)
            return RebuildProgress(**{**asdict(p)})

    def wait(self, timeout: float | None = None) -> RebuildProgress:
        """Block until the running rebuild ends (tests, scripts)."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
        return self.progress()

    def _on_progress(self, stage: str, done: int, total: int) -> None:
        with self._lock:
            self._progress.stage, self._progress.done, self._progress.total = stage, done, total

    def _run(self, full: bool) -> None:
        try:
            report = self._build(full=full, on_progress=self._on_progress)
            # Only now does chat switch: the old build served every question until here.
            self.app.retriever.reload()
        except DomainError as exc:  # knowledge-base and chat-side failures alike: a failure to show
            log.warning("rebuild failed: %s", exc)
            self._finish("failed", str(exc), {})
            return
        self._finish("done", "", report.to_json() if hasattr(report, "to_json") else dict(report))

    def _finish(self, state: str, message: str, report: dict[str, Any]) -> None:
        with self._lock:
            p = self._progress
            p.state, p.message, p.report = state, message, report
            p.seconds = round(time.time() - p.started_at, 1)
