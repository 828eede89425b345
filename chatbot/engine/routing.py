"""What the engine does with a message once the classifier has read it.

- ``greeting`` -> a brief small-talk reply; ``administrative`` -> a short answer with a department
  suggestion; ``out_of_scope`` -> a polite refusal. None of the three retrieves or calls the model.
  They are taken only when the intent's score reaches ``route_min_score``: a medical question
  mistaken for small talk would go unanswered.
- medical intents -> retrieval (optionally with the intent as a section hint) and generation.
- emergency (set by the red-flag screen, never by the classifier) is handled before routing.

Tone: fear or sadness -> an empathetic opening, the answer, clear next steps; anger -> a calm
opening without defensiveness. Every line comes from data/prompts/<lang>/routing.yaml.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Literal

import yaml

from chatbot.engine.scope import LibraryScope
from chatbot.errors import MedChatError
from chatbot.prompts import PromptLibrary
from chatbot.protocols import Understanding

RouteKind = Literal["answer", "small_talk", "administrative", "out_of_scope", "emergency"]
SHORT_ROUTES: dict[str, RouteKind] = {"greeting": "small_talk", "administrative": "administrative",
                                      "out_of_scope": "out_of_scope"}
# Intent -> MedQuAD section the retriever may prefer (knowledge_base chunk ``section`` values).
SECTION_HINTS = {"treatment": "treatment", "cause": "causes", "diagnosis": "exams and tests",
                 "precautions": "prevention", "consequence": "outlook"}
TONES = {"fear": "fear", "sadness": "sadness", "anger": "anger"}
# Tones that end the answer with next steps (an angry patient wants the answer, not advice).
NEXT_STEP_TONES = ("fear", "sadness")
from chatbot.settings import DEPARTMENTS_FILE


@dataclass(frozen=True)
class Route:
    kind: RouteKind
    section_hint: str | None = None
    tone: str | None = None
    department: str | None = None  # care advice ("which department / 挂什么科"): dept.<key>
    scope: str | None = None       # out_of_scope by the library's nature (chatbot.engine.scope)

    @property
    def short(self) -> bool:
        return self.kind in ("small_talk", "administrative", "out_of_scope")


@dataclass(frozen=True)
class RoutingConfig:
    route_min_score: float = 0.6
    tone_min_score: float = 0.5
    section_hint: bool = True

    def __post_init__(self) -> None:
        for name in ("route_min_score", "tone_min_score"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)}")


class RoutingError(MedChatError):
    """The department keyword file is missing or malformed."""


class Router:
    def __init__(self, prompts: PromptLibrary, config: RoutingConfig | None = None,
                 departments_file: Path = DEPARTMENTS_FILE, scope: LibraryScope | None = None) -> None:
        self.prompts = prompts
        self.config = config or RoutingConfig()
        self.departments_file = departments_file
        self.scope = scope if scope is not None else LibraryScope()

    def decide(self, understanding: Understanding, *, emergency: bool = False, text: str = "",
               lang: str = "en") -> Route:
        if emergency:
            return Route("emergency")
        emotion = understanding.emotion
        tone = (TONES.get(emotion.label) if emotion and emotion.score >= self.config.tone_min_score
                else None)
        intent = understanding.intent
        if intent is not None and intent.label in SHORT_ROUTES \
                and intent.score >= self.config.route_min_score:
            kind = SHORT_ROUTES[intent.label]
            # "pharmacy hours on Sunday?" is administrative *and* beyond the library: the
            # administrative reply stays, the scope marks it as a no-source answer.
            verdict = self.scope.check(text, lang) if text and kind == "administrative" else None
            return Route(kind, tone=tone, scope=verdict.category if verdict else None)
        # Prices, a named provider, a pet, a laptop: the library cannot answer these whatever
        # retrieval finds, and the nearest page would make a confident wrong answer.
        verdict = self.scope.check(text, lang) if text else None
        if verdict is not None:
            return Route("out_of_scope", tone=tone, scope=verdict.category)
        hint = SECTION_HINTS.get(intent.label) if intent is not None and self.config.section_hint else None
        # KUAKE-QIC files "挂什么科" under 就医建议 (care_advice), not administrative: such an
        # answer gets the department line too, on top of the retrieved one.
        dept = (self.department(text, lang) if intent is not None and intent.label == "care_advice"
                and text else None)
        return Route("answer", section_hint=hint, tone=tone, department=dept)

    def short_reply(self, route: Route, text: str, lang: str) -> str:
        if route.kind == "administrative":
            dept = self.department(text, lang)
            line = (self.prompts.text(lang, "route.department",
                                      department=self.prompts.text(lang, f"dept.{dept}"))
                    if dept else self.prompts.text(lang, "route.department_unknown"))
            reply = f"{line}\n\n{self.prompts.text(lang, 'route.administrative')}"
        elif route.scope and route.kind == "out_of_scope":
            reply = self.prompts.text(lang, f"route.scope.{route.scope}")
        else:
            reply = self.prompts.text(lang, f"route.{route.kind}")
        if route.tone == "anger":  # calm acknowledgement first; fear/sadness get it on answers
            reply = f"{self.prompts.text(lang, 'tone.anger.opening')}\n\n{reply}"
        return reply

    def prompt_tone(self, route: Route, lang: str) -> str:
        """The tone instruction for the model's user turn (empty without a tone)."""
        return self.prompts.text(lang, f"tone.prompt.{route.tone}") if route.tone else ""

    def with_tone(self, answer: str, route: Route, lang: str) -> str:
        """The answer with the tone's opening (and next steps) and, for care advice, the
        department line."""
        if route.department:
            dept = self.prompts.text(lang, f"dept.{route.department}")
            answer = f"{self.prompts.text(lang, 'route.department', department=dept)}\n\n{answer}"
        if not route.tone:
            return answer
        parts = [self.prompts.text(lang, f"tone.{route.tone}.opening"), answer]
        if route.tone in NEXT_STEP_TONES:
            parts.append(self.prompts.text(lang, "tone.next_steps"))
        return "\n\n".join(parts)

    # -- departments -----------------------------------------------------------------------
    @cached_property
    def _departments(self) -> dict[str, dict[str, list]]:
        try:
            data = yaml.safe_load(self.departments_file.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as exc:
            raise RoutingError(f"cannot read {self.departments_file}: {exc}") from exc
        if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
            raise RoutingError(f"{self.departments_file} must map department -> {{zh: [...], en: [...]}}")
        try:
            return {str(k): {"zh": [str(w).lower() for w in v.get("zh", [])],
                             "en": [re.compile(r"\b" + str(w).lower()) for w in v.get("en", [])]}
                    for k, v in data.items()}
        except re.error as exc:
            raise RoutingError(f"{self.departments_file}: bad English keyword pattern: {exc}") from exc

    def department(self, text: str, lang: str) -> str | None:
        """The first department with a keyword in ``text`` (either language's list: mixed
        messages are common), or None."""
        low = text.lower()
        for key, words in self._departments.items():
            if any(w in low for w in words["zh"]) or any(p.search(low) for p in words["en"]):
                return key
        return None
