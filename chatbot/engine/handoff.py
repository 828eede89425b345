"""The patient side of the nurse handoff (issue 17): recognising "talk to a nurse" and queueing the
session's structured case in the store. The nurse side is ``chatbot.staff.handoff``."""

from __future__ import annotations

import re
from typing import Any

from chatbot.store import ChatStore, StoredHandoff, StoredMessage, check_session_id

# What a patient types to ask for a nurse (whole short messages, either language).
REQUEST = re.compile(
    r"^\s*(please\s+)?((i\s+(want|would like|need)\s+to\s+)?(talk|speak|chat)\s+(to|with)\s+a\s+(nurse|human|person)"
    r"|(get|ask|call)\s+(me\s+)?a\s+nurse|nurse(,)?\s+please|human\s+please"
    r"|(我要|我想|请)?(转|找|联系|咨询)(人工|护士)(服务)?|(人工|护士)(服务)?(咨询)?)\s*[.!。！]?\s*$", re.I)
ACUITY_DISPOSITION = {1: "emergency", 2: "emergency", 3: "urgent", 4: "routine", 5: "self_care"}




def is_request(text: str) -> bool:
    return bool(REQUEST.match(text or ""))


def request_handoff(store: ChatStore, session_id: str, lang: str) -> tuple[StoredHandoff, bool]:
    """Queue the session's case (once: an open case is returned as it is); (case, created)."""
    check_session_id(session_id)
    case = case_of(store.history(session_id, limit=50))
    disposition = case.get("disposition") or {}
    acuity = int(disposition.get("acuity") or _acuity_of(disposition.get("level")) or 4)
    handoff_id, created = store.add_handoff(session_id, lang, acuity, ACUITY_DISPOSITION[acuity], case)
    if created:
        store.log_event("handoff_requested", {"handoff": handoff_id, "acuity": acuity}, session_id=session_id)
    found = store.handoff(handoff_id)
    assert found is not None  # just written
    return found, created


def case_of(history: list[StoredMessage]) -> dict[str, Any]:
    """The structured case from a conversation: the latest intake, disposition, red flag and the
    sources of the latest answer that had any."""
    case: dict[str, Any] = {"intake": None, "disposition": None, "citations": [], "red_flag": None,
                            "first_message": next((m.text for m in history if m.role == "user"), "")}
    for m in history:
        if m.role != "assistant":
            continue
        meta = m.meta
        if meta.get("intake"):
            case["intake"] = meta["intake"].get("state")
        if meta.get("disposition"):
            case["disposition"] = meta["disposition"]
        if meta.get("citations"):
            case["citations"] = meta["citations"]
        if meta.get("red_flag"):
            case["red_flag"] = meta["red_flag"]
    return case


def _acuity_of(level: str | None) -> int | None:
    return {"emergency": 2, "urgent": 3, "routine": 4, "self_care": 5}.get(level or "")
