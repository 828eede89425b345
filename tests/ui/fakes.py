"""Fake services for the UI callback tests: scripted events, recorded calls."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from chatbot.engine.service import ReplyEvent
from chatbot.errors import MedChatError
from chatbot.prompts import PromptLibrary
from ui.services import Services


def final_result(**over: Any) -> dict:
    base = {"answer": "Asthma is treated with inhalers [1].", "lang": "en", "session_id": "s1",
            "message_id": 7, "red_flag": None, "flags": [], "citations": [{"n": 1}],
            "passages": [{"n": 1, "title": "Asthma", "source": "MedlinePlus",
                          "url": "https://medlineplus.gov/asthma.html", "text": "Inhaled steroids."}]}
    base.update(over)
    return base


class FakeChat:
    def __init__(self, tokens: list[str] | None = None, final: dict | None = None,
                 queued: tuple[int, ...] = ()) -> None:
        self.tokens = tokens if tokens is not None else ["Asthma ", "is ", "treated"]
        self.queued = queued  # "ahead" counts reported before the first token
        self.final = final or final_result()
        self.calls: list[tuple[str | None, str]] = []
        self.feedback_calls: list[tuple[int, int, str]] = []

    def reply(self, session_id, text):
        self.calls.append((session_id, text))
        yield ReplyEvent("meta", {"lang": self.final["lang"]})
        yield ReplyEvent("sources", self.final["passages"])
        for ahead in self.queued:
            yield ReplyEvent("queued", {"ahead": ahead})
        for tok in self.tokens:
            yield ReplyEvent("token", tok)
        yield ReplyEvent("final", dict(self.final))

    def feedback(self, message_id, rating, comment):
        self.feedback_calls.append((message_id, rating, comment))
        return len(self.feedback_calls)

    nurse_messages: list = []  # set by a test: objects with .id and .text

    def nurse_replies(self, session_id, after_id):
        return [m for m in self.nurse_messages if m.id > after_id]


class FakeInvalid(MedChatError):
    key = "ui.nurse.login_failed"  # any keyed message: the desk's explain() is what is tested elsewhere

    def values(self) -> dict:
        return {}


@dataclass
class FakeNurse:
    result: dict = field(default_factory=lambda: {
        "acuity": 2, "disposition": "emergency", "department": {"key": "ed", "en": "Emergency", "zh": "急诊科"},
        "reasons": [{"kind": "vital", "code": "spo2_low", "acuity": 2, "text": "SpO2 88% <b>low</b>", "value": 88}],
        "red_flags": [], "evidence": [{"title": "Chest pain", "source": "NHS", "url": "javascript:alert(1)",
                                       "text": "<script>alert(1)</script>"}],
        "note": "Draft: chest pain, SpO2 88%.", "lang": "en", "warnings": [],
        "understood": {"age": 68.0, "sex": "F", "pregnant": False, "vitals": {"spo2": 88.0},
                       "duration_days": None, "presentations": ["chest_pain"],
                       "risk_factors": ["anticoagulant"], "negatives": ["fever", "<i>cough</i>"]},
        "opinion": {"similar_cases": [{"id": "c1", "expected": "em", "text": "67F <b>chest</b> pain",
                                       "similarity": 0.8}]}})
    saved: list[tuple] = field(default_factory=list)
    forms: list[dict] = field(default_factory=list)
    fail: bool = False

    def assess(self, form, lang):
        self.forms.append(form)
        if self.fail:
            raise FakeInvalid("impossible spo2")
        return {"complaint": form["complaint"]}, self.result

    def save(self, nurse, intake, result, note):
        self.saved.append((nurse, intake, result, note))
        return len(self.saved)

    def history(self, search="", limit=50):
        rows = [{"id": i + 1, "created_at": "2026-11-24T08:00:00.000+00:00", "nurse": s[0],
                 "complaint": s[1]["complaint"], "acuity": s[2]["acuity"],
                 "disposition": s[2]["disposition"], "department": s[2]["department"]}
                for i, s in enumerate(self.saved)]
        return [r for r in rows if not search or search in r["complaint"]][::-1]

    def export_csv(self, search=""):
        return "id,complaint\n" + "".join(f"{r['id']},{r['complaint']}\n" for r in self.history(search))

    def explain(self, exc, lang):
        return f"[{lang}] {exc}"


class FakeAuth:
    configured = True

    def __init__(self) -> None:
        self.live: set[str] = set()
        self.locked: dict[str, float] = {}  # user -> seconds left, set by a test

    def locked_for(self, user):
        return self.locked.get(user, 0.0)

    def login(self, user, password):
        if (user, password) == ("nurse", "right"):
            self.live.add("tok")
            return "tok"
        return None

    def check(self, token, role="nurse"):
        return "nurse" if token in self.live else None

    def logout(self, token):
        self.live.discard(token)


class FakeProgress:
    def __init__(self, state: str) -> None:
        self.state = state

    def to_json(self) -> dict:
        return {"state": self.state, "stage": "embed", "done": 3, "total": 10, "seconds": 1.5, "message": ""}


class FakeAdmin:
    def __init__(self) -> None:
        self.state = "idle"
        self.starts = 0

    def kb_status(self):
        return {"documents": 12, "chunks": 34, "chunks_by_lang": {"en": 30, "zh": 4}, "embedder": "hash",
                "built_at": "2026-11-24T07:00:00", "build_id": "b1"}

    def model_status(self):
        return {"backend": "fake", "model": "fake", "adapter": "", "classifier": "off", "safety_screen": "off"}

    def recent_feedback(self, limit=20):
        return [{"created_at": "2026-11-24T08:00:00", "rating": -1, "comment": "too long", "answer": "x"}]

    def start_rebuild(self, full=False):
        if self.state == "running":
            return False
        self.state, self.starts = "running", self.starts + 1
        return True

    def progress(self):
        return FakeProgress(self.state)


def make_services(**over: Any) -> Services:
    parts = dict(chat=FakeChat(), nurse=FakeNurse(), admin=FakeAdmin(), auth=FakeAuth(),
                 prompts=PromptLibrary(), emergency_number="120")
    parts.update(over)
    return Services(**parts)
