"""The two stages in front of retrieval, as seams: the red-flag safety screen and the
intent/emotion classifier. Their real implementations come with their own issues (safety/triage
and classifier). Until then the engine runs with the explicit pass-throughs below, which decide
nothing and say so in every reply's flags (``safety_screen_off``, ``classifier_off``) — they are
not stubs that pretend to screen.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class ScreenResult:
    """Outcome of the red-flag screen. ``emergency`` short-circuits the engine: no LLM call."""

    emergency: bool
    category: str = ""
    evidence: list[str] = field(default_factory=list)
    message: str = ""  # the fixed escalation text in the patient's language
    categories: list[str] = field(default_factory=list)  # every category hit, most severe first
    rule_ids: list[str] = field(default_factory=list)    # ids of the rules that fired (audit)
    number: str = ""                                     # the emergency number in the message
    crisis_line: str = ""                                # set when a self-harm message was given
    # The meaning-based detector's verdict (score, band, category, model version, thresholds),
    # None when no detector runs; recorded with every logged event.
    detector: dict | None = None
    # The unsure band: one fixed bilingual safety question to ask before any generation
    # (keys: category, question, options); None otherwise. Never set together with emergency.
    safety_question: dict | None = None
    via: str = ""                                        # "lexicon" | "detector" | "" : what escalated


@dataclass(frozen=True)
class Label:
    label: str
    score: float


@dataclass(frozen=True)
class Understanding:
    intent: Label | None = None
    emotion: Label | None = None


class SafetyScreen(Protocol):
    """What the engine asks of the red-flag screen (chatbot.safety.RedFlagScreen, or the
    pass-through :class:`NoSafetyScreen`)."""

    name: str  # recorded with every red-flag event and on the operator panel

    def screen(self, text: str, lang: str) -> ScreenResult: ...

    def escalation(self, category: str, lang: str, rule_id: str, detector: dict | None = None) -> ScreenResult:
        """The fixed emergency result of ``category`` (a "yes" to the safety question)."""
        ...

    def warm_up(self) -> None:
        """Load what the first message would otherwise wait for (rules, lexicons). Idempotent."""
        ...


class Classifier(Protocol):
    """What the engine asks of the intent/emotion classifier
    (chatbot.classifier.runtime.TrainedClassifier, or the pass-through :class:`NoClassifier`)."""

    name: str  # shown on the operator panel

    def classify(self, text: str, lang: str) -> Understanding: ...

    def warm_up(self) -> None:
        """Load the model and its encoder before the first message. Idempotent."""
        ...


class Triage(Protocol):
    """What the engine asks of the triage engine (chatbot.triage.TriageEngine): the one-line
    disposition added to an answer about the patient's own symptoms."""

    def chat_disposition(self, text: str, lang: str) -> dict[str, str] | None:
        """``{"level", "line"}``, or None when the message describes no symptoms of one's own."""
        ...


class NoSafetyScreen:
    """Pass-through: screens nothing. The reply carries the flag ``safety_screen_off``."""

    name = "off"
    flag = "safety_screen_off"

    def screen(self, text: str, lang: str) -> ScreenResult:
        return ScreenResult(emergency=False)

    def escalation(self, category: str, lang: str, rule_id: str, detector: dict | None = None) -> ScreenResult:
        # never reached: the pass-through asks no safety question
        raise NotImplementedError("the pass-through screen asks no safety question")

    def warm_up(self) -> None:
        """Nothing to load."""


class NoClassifier:
    """Pass-through: labels nothing (intent and emotion stay null). Flag ``classifier_off``."""

    name = "off"
    flag = "classifier_off"

    def classify(self, text: str, lang: str) -> Understanding:
        return Understanding()

    def warm_up(self) -> None:
        """Nothing to load."""
