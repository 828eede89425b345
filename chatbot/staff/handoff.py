"""From patient to nurse (issue 17): the handoff queue.

A patient asks for a nurse ("talk to a nurse", "转护士"; offered after an urgent disposition). The
case — the session (its transcript stays in the store's messages), the structured intake, the
disposition and reasons, the passages shown — is queued in the store (``handoffs``, so a killed
server loses no case and every replica sees the same queue), most urgent first. A logged-in nurse
claims it (one nurse: a second claim fails), may change the acuity with a reason, and replies; the
reply is stored as an assistant message of the patient's session marked ``from: nurse`` and
appears in the patient's chat. Every step is an audit event (who, when, what changed).

Emergencies never wait for a nurse: the emergency message is the reply the patient got first (the
consultation service answers before any handoff exists).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from chatbot.engine.handoff import request_handoff
from chatbot.errors import MedChatError
from chatbot.store import ChatStore, StoredHandoff, StoredMessage

MAX_REPLY_CHARS = 4000


class HandoffError(MedChatError):
    """A handoff step that cannot be done (unknown case, claimed by someone else, closed, empty reply)."""


@dataclass
class HandoffDesk:
    store: ChatStore

    # -- patient side --------------------------------------------------------------------------
    def request(self, session_id: str, lang: str) -> tuple[StoredHandoff, bool]:
        """Queue the session's case (once: an open case is returned as it is); (case, created)."""
        return request_handoff(self.store, session_id, lang)

    def replies_since(self, session_id: str, after_id: int = 0) -> list[StoredMessage]:
        """The nurse replies of a session newer than message ``after_id`` (the patient's page polls)."""
        return [m for m in self.store.messages_after(session_id, after_id) if m.meta.get("from") == "nurse"]

    # -- nurse side ----------------------------------------------------------------------------
    def queue(self, include_closed: bool = False, limit: int = 100) -> list[StoredHandoff]:
        statuses = ("waiting", "claimed", "closed") if include_closed else ("waiting", "claimed")
        return self.store.handoffs(statuses, limit=limit)

    def get(self, handoff_id: int) -> StoredHandoff:
        case = self.store.handoff(handoff_id)
        if case is None:
            raise HandoffError(f"no handoff case {handoff_id} / 没有这个转接病例",
                               hint="`medchat nurse queue` lists the open cases")
        return case

    def transcript(self, handoff_id: int) -> list[dict[str, Any]]:
        case = self.get(handoff_id)
        return [{"role": m.role, "text": m.text, "from": m.meta.get("from", "medchat" if m.role == "assistant" else "patient"),
                 "created_at": m.created_at} for m in self.store.history(case.session_id, limit=200)]

    def claim(self, handoff_id: int, nurse: str) -> StoredHandoff:
        self.get(handoff_id)
        claimed = self.store.update_handoff(handoff_id, expect=("waiting",), status="claimed", nurse=_who(nurse))
        if claimed is None:
            case = self.get(handoff_id)
            raise HandoffError(f"case {handoff_id} is {case.status}"
                               + (f" by {case.nurse}" if case.nurse else "") + " / 该病例已被认领或已关闭",
                               hint="refresh the queue")
        self.store.log_event("handoff_claimed", {"handoff": handoff_id, "nurse": claimed.nurse},
                             session_id=claimed.session_id)
        return claimed

    def change_acuity(self, handoff_id: int, nurse: str, acuity: int, reason: str) -> StoredHandoff:
        """The nurse's acuity replaces the engine's; the reason is required and audited."""
        if not (reason or "").strip():
            raise HandoffError("a reason is required to change the acuity / 修改分级需要填写理由",
                               hint="e.g. 'pain worse on the phone, sounds breathless'")
        case = self._owned(handoff_id, nurse)
        changed = self.store.update_handoff(handoff_id, expect=("claimed",), acuity=acuity)
        if changed is None:
            raise HandoffError(f"case {handoff_id} is no longer open / 该病例已关闭")
        self.store.log_event("handoff_acuity_changed", {"handoff": handoff_id, "nurse": changed.nurse,
                                                        "from": case.acuity, "to": changed.acuity, "reason": reason},
                             session_id=case.session_id)
        return changed

    def reply(self, handoff_id: int, nurse: str, text: str) -> int:
        """Store the nurse's reply in the patient's conversation; its message id."""
        text = (text or "").strip()
        if not text:
            raise HandoffError("the reply is empty / 回复内容为空", hint="type the message for the patient")
        if len(text) > MAX_REPLY_CHARS:
            raise HandoffError(f"the reply has {len(text)} characters, at most {MAX_REPLY_CHARS} / 回复过长")
        case = self._owned(handoff_id, nurse)
        message_id = self.store.add_message(case.session_id, "assistant", text, lang=case.lang,
                                            meta={"from": "nurse", "nurse": case.nurse, "handoff": handoff_id,
                                                  "flags": ["nurse_reply"]})
        self.store.update_handoff(handoff_id, expect=("claimed",))
        self.store.log_event("handoff_replied", {"handoff": handoff_id, "nurse": case.nurse, "message_id": message_id},
                             session_id=case.session_id)
        return message_id

    def close(self, handoff_id: int, nurse: str) -> StoredHandoff:
        case = self._owned(handoff_id, nurse)
        closed = self.store.update_handoff(handoff_id, expect=("claimed",), status="closed")
        self.store.log_event("handoff_closed", {"handoff": handoff_id, "nurse": case.nurse}, session_id=case.session_id)
        return closed or self.get(handoff_id)

    def _owned(self, handoff_id: int, nurse: str) -> StoredHandoff:
        case = self.get(handoff_id)
        if case.status != "claimed" or case.nurse != _who(nurse):
            raise HandoffError(f"case {handoff_id} is not claimed by {nurse!r} / 请先认领该病例",
                               hint=f"claim it first: medchat nurse claim {handoff_id} --nurse NAME")
        return case


def _who(nurse: str) -> str:
    from chatbot.redact import redact
    from chatbot.store import clean_text

    return redact(clean_text(nurse or ""), keep=("NAME",))[0].strip()
