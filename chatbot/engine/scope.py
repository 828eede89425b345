"""Questions no health library answers by their nature: prices and insurance, a particular
provider, place or opening hours, an animal as the patient, consumer products.

Why a unit of its own: the evidence gate asks "did retrieval find something on the topic?", and
for these questions it always does ("Botox" for "how much is Botox in Los Angeles", the dog
page-less "grapes" for a dog that ate grapes), so the answer would be a confident reply to a
question nobody asked. The cues live in ``data/prompts/scope.yaml`` (bilingual, with reasons);
the reply lines in ``data/prompts/<lang>/routing.yaml`` (``route.scope.<category>``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import yaml

from chatbot.engine.answer.compose import asked_types
from chatbot.errors import MedChatError
from chatbot.settings import PROJECT_ROOT

SCOPE_FILE = PROJECT_ROOT / "data" / "prompts" / "scope.yaml"
CATEGORIES = ("cost", "provider", "veterinary", "product")
# Clause boundaries: sentence punctuation of both languages, commas, and a joining "and" /
# 还有 / 另外 ("is it covered by Medicare and how much does it cost" asks two things).
_CLAUSES = re.compile(r"[。？！；，,?!;]|\band\b|\balso\b|还有|另外|以及")


class ScopeError(MedChatError):
    """The scope cue file is missing or malformed."""


@dataclass(frozen=True)
class ScopeVerdict:
    category: str   # one of CATEGORIES: names the reply line route.scope.<category>
    cue: str        # the cue that matched (logged, shown in tests)


@dataclass(frozen=True)
class _Category:
    name: str
    per_clause: bool
    cues: dict[str, tuple[re.Pattern[str], ...]]
    unless: dict[str, tuple[re.Pattern[str], ...]]

    def cue(self, text: str) -> str | None:
        """The first cue of either language found in ``text`` (mixed messages are common), or
        None; an ``unless`` cue anywhere in ``text`` vetoes."""
        low = text.lower()
        if any(p.search(low) for pats in self.unless.values() for p in pats):
            return None
        for pats in self.cues.values():
            for p in pats:
                if p.search(low):
                    return p.pattern
        return None


class LibraryScope:
    """``check(text, lang)``: a :class:`ScopeVerdict` when the whole question is of a kind the
    library cannot answer, else None. Deterministic; the cue file loads on first use."""

    def __init__(self, path: Path = SCOPE_FILE) -> None:
        self.path = path

    def warm_up(self) -> None:
        _ = self._categories

    @cached_property
    def _categories(self) -> tuple[_Category, ...]:
        try:
            data = yaml.safe_load(self.path.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as exc:
            raise ScopeError(f"cannot read {self.path}: {exc}") from exc
        if not isinstance(data, dict) or set(data) - set(CATEGORIES):
            raise ScopeError(f"{self.path} must map some of {CATEGORIES} to cue lists")

        def compiled(block: dict | None) -> dict[str, tuple[re.Pattern[str], ...]]:
            try:
                return {lang: tuple(re.compile(str(c).lower()) for c in (block or {}).get(lang, []))
                        for lang in ("en", "zh")}
            except re.error as exc:
                raise ScopeError(f"{self.path}: bad cue pattern: {exc}") from exc

        return tuple(_Category(name, bool(spec.get("per_clause", False)), compiled(spec),
                               compiled(spec.get("unless"))) for name, spec in data.items())

    def check(self, text: str, lang: str) -> ScopeVerdict | None:
        clauses = [c.strip() for c in _CLAUSES.split(text) if c and c.strip()]
        for category in self._categories:
            if not category.per_clause:
                cue = category.cue(text)
                if cue:
                    return ScopeVerdict(category.name, cue)
                continue
            found = [(clause, category.cue(clause)) for clause in clauses]
            cue = next((c for _, c in found if c), None)
            if cue is None:
                continue
            # A clause without a cue that asks a clinical question keeps the message medical:
            # "what is prednisone used for and how much does it cost" is answered.
            # (asked in words: a clause with no question cue at all asks nothing on its own)
            if any(asked_types(clause, lang) for clause, c in found
                   if c is None and not self._other_cue(clause, category.name)):
                continue
            return ScopeVerdict(category.name, cue)
        return None

    def _other_cue(self, clause: str, name: str) -> bool:
        """A clause out of scope by another per-clause category ("which hospital" beside "how
        much")."""
        return any(c.per_clause and c.name != name and c.cue(clause) for c in self._categories)
