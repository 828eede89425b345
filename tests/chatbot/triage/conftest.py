"""Fixtures of the triage tests: the engine with the real rule files and prompts, and a tiny
red-flag screen double (the real chatbot.safety screen is tested with it in test_red_flags)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from chatbot.prompts import PromptLibrary
from chatbot.triage import Intake, TriageEngine, Vitals


@dataclass(frozen=True)
class Hit:
    category: str
    rule_id: str
    evidence: str
    lang: str


class KeywordScreen:
    """Fires one hit per (keyword -> category) found: enough to test how the engine uses hits."""

    def __init__(self, table: dict[str, str]) -> None:
        self.table = table
        self.calls: list[tuple[str, str]] = []

    def hits(self, text: str, lang: str) -> list[Hit]:
        self.calls.append((text, lang))
        return [Hit(cat, f"test_{cat}", kw, lang) for kw, cat in self.table.items() if kw in text]


@pytest.fixture(scope="session")
def engine() -> TriageEngine:
    return TriageEngine(screen=KeywordScreen({}), prompts=PromptLibrary())


def assess(engine: TriageEngine, text: str, lang: str | None = None, **kw):
    vitals = kw.pop("vitals", None)
    return engine.assess(Intake(text, vitals=Vitals(**(vitals or {})), **kw), lang=lang,
                         with_evidence=False)


def codes(result) -> set[str]:
    return {r.code for r in result.reasons}
