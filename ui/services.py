"""The services the browser app calls, as small protocols, and the bundle the tabs receive.
``from_app`` adapts the wired application (``chatbot.app.build_app`` + ``build_staff``); the
unit tests pass fakes. Nothing here decides anything medical."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterator, Protocol

from chatbot.prompts import PromptLibrary
from ui.security import Downloads


class ChatBackend(Protocol):
    def reply(self, session_id: str | None, text: str) -> Iterator[Any]:
        """ReplyEvents (``kind`` meta | sources | token | final, ``data``) as in chatbot.engine.service."""

    def feedback(self, message_id: int, rating: int, comment: str) -> int: ...

    def nurse_replies(self, session_id: str, after_id: int) -> list[Any]:
        """Stored nurse replies of the session newer than message ``after_id`` (``.id``, ``.text``)."""


class NurseBackend(Protocol):
    def assess(self, form: dict[str, Any], lang: str) -> tuple[dict, dict]: ...

    def save(self, nurse: str, intake: dict, result: dict, note: str) -> int: ...

    def history(self, search: str = "", limit: int = 50) -> list[dict]: ...

    def export_csv(self, search: str = "") -> str: ...

    def explain(self, exc: Exception, lang: str) -> str: ...


class AdminBackend(Protocol):
    def kb_status(self) -> dict: ...

    def model_status(self) -> dict: ...

    def recent_feedback(self, limit: int = 20) -> list[dict]: ...

    def start_rebuild(self, full: bool = False) -> bool: ...

    def progress(self) -> Any:
        """An object with ``to_json()`` -> {state, stage, done, total, seconds, message, ...}."""


class HandoffBackend(Protocol):
    """chatbot.staff.handoff.HandoffDesk: queue, get, transcript, claim, change_acuity, reply, close."""

    def queue(self, include_closed: bool = False, limit: int = 100) -> list[Any]: ...


class AuthBackend(Protocol):
    configured: bool

    def login(self, user: str, password: str) -> str | None: ...

    def check(self, token: str | None) -> str | None: ...

    def logout(self, token: str | None) -> None: ...

    def locked_for(self, user: str) -> float: ...


@dataclass
class Services:
    chat: ChatBackend
    nurse: NurseBackend
    admin: AdminBackend
    auth: AuthBackend
    prompts: PromptLibrary
    emergency_number: str = "120"
    concurrency_limit: int = 8
    max_queue: int = 100
    # the nurse's CSV exports, held in memory for one download (ui/security.py)
    downloads: Downloads = field(default_factory=Downloads)
    handoff: Any = None  # HandoffBackend: the queue of patients who asked for a nurse

    def t(self, lang: str, key: str, **values: Any) -> str:
        return self.prompts.text(lang, key, **values)


class _Chat:
    """ConsultationService + the store's feedback, as one ChatBackend."""

    def __init__(self, app: Any) -> None:
        self._service, self._store = app.service, app.store

    def reply(self, session_id: str | None, text: str) -> Iterator[Any]:
        return self._service.reply(session_id, text)

    def feedback(self, message_id: int, rating: int, comment: str) -> int:
        return self._store.add_feedback(message_id, rating, comment)

    def nurse_replies(self, session_id: str, after_id: int) -> list[Any]:
        from chatbot.staff.handoff import HandoffDesk

        return HandoffDesk(self._store).replies_since(session_id, after_id)


def from_app(app: Any) -> Services:
    from chatbot.app import build_staff
    from chatbot.staff.handoff import HandoffDesk

    staff = build_staff(app)
    ui = app.settings.ui
    return Services(chat=_Chat(app), nurse=staff.nurse, admin=staff.admin, auth=staff.auth,
                    prompts=app.prompts, emergency_number=app.settings.safety.number(),
                    concurrency_limit=ui.concurrency_limit, max_queue=ui.max_queue,
                    handoff=HandoffDesk(app.store))
