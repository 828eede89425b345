"""The composed answer: what the question asks for, quoted from the section that answers it.

A patient who asks "what are the symptoms of type 2 diabetes" wants the symptoms list, not the
first sentence of whichever passage ranked first. :func:`question_types` reads what the question
asks for (MedQuAD's section names: symptoms, causes, treatment, ...; one message may ask two) from
bilingual cues in ``data/prompts/question_types.yaml``. :func:`compose_answer` then takes the
passages of the question's topic whose section answers those types, and quotes their sentences in
reading order (lists kept whole), de-duplicated, each with its [n], up to a length budget. It is
the answer the engine gives when the model's own text cannot be used, and never states anything
that is not in a passage.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import yaml

from chatbot.engine.answer.checks import MIN_CONTENT_TOKENS, content_tokens
from chatbot.engine.answer.extractive import (
    overlap,
    passage_body,
    passage_lang,
    passage_units,
    question_tokens,
    shorten,
    extractive_answer,
)
from chatbot.engine.answer.sentences import fold
from chatbot.errors import MedChatError
from chatbot.prompts import PromptLibrary
from chatbot.settings import PROMPTS_DIR
from knowledge_base.records import Passage
from knowledge_base.text import CJK

# What chatbot.engine.answer re-exports.
__all__ = ["compose_answer", "names_the_topic", "question_types"]

QUESTION_TYPES_FILE = PROMPTS_DIR / "question_types.yaml"
# The composed answer reads the top passages only: retrieval puts the topic there; lower ones are
# other topics as often as not.
COMPOSE_TOP_PASSAGES = 5
# 3-8 sentences or bullets is what a nurse-librarian gives; a list counts as one unit. The budget
# keeps a long list answer readable on a phone (about 200 English words / 450 Chinese characters).
# 6 units / 900 characters cut the answering section short: on the blind answer rounds 2-4 the
# composed extract's ROUGE-L against the reference went 0.320 -> 0.347 (en) and 0.103 -> 0.107
# (zh) at 8 / 1,200 / 450 (docs/EVALUATION.md).
COMPOSE_MAX_UNITS = 8
COMPOSE_MIN_UNITS = 3
COMPOSE_MAX_CHARS = {"en": 1200, "zh": 450}
_DEFAULT_TYPE = "information"
# A title of more words is a question or a headline ("Kidney Failure: Choosing a Treatment That's
# Right for You"), not a topic a patient names.
MAX_TOPIC_WORDS = 4


class QuestionTypesError(MedChatError):
    """The question-type cue file is missing or malformed."""


@lru_cache(maxsize=2)
def _cues(path: Path = QUESTION_TYPES_FILE) -> dict[str, dict[str, tuple[str, ...]]]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise QuestionTypesError(f"cannot read {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise QuestionTypesError(f"{path} must map a type to its en / zh cue lists")
    return {str(t): {lang: tuple(str(c).lower() for c in (by_lang or {}).get(lang, []))
                     for lang in ("en", "zh")} for t, by_lang in data.items()}


def question_types(question: str, lang: str, hint: str | None = None) -> list[str]:
    """The sections the question asks for, in the order it asks them; ``hint`` (the classifier's
    section) joins last. ``["information"]`` when no cue is found: a bare topic ("gout?") wants the
    overview. Cues of both languages are tried: a Chinese message may hold English words."""
    types = asked_types(question, lang)
    if hint and hint not in types:
        types.append(hint)
    return types or [_DEFAULT_TYPE]


def asked_types(question: str, lang: str) -> list[str]:
    """The types whose cues are in ``question`` (empty when none is: nothing was asked in
    words, unlike :func:`question_types`, which then assumes the overview)."""
    text = question.lower()
    found: dict[str, int] = {}
    for qtype, by_lang in _cues().items():
        positions = [text.find(c) for c in (*by_lang.get(lang, ()), *by_lang.get("en", ())) if c and c in text]
        if positions:
            found[qtype] = min(positions)
    types = sorted(found, key=lambda t: found[t])
    # "What is X" is the frame of most questions ("what are the symptoms of X"): the overview only
    # leads when nothing more specific is asked.
    if len(types) > 1 and _DEFAULT_TYPE in types:
        types.remove(_DEFAULT_TYPE)
    return types


@dataclass(frozen=True)
class _Unit:
    n: int          # the passage's citation number
    text: str
    lang: str


def _focus(question: str, lang: str, passages: Sequence[Passage],
           types: list[str]) -> tuple[str, list[tuple[int, Passage]]]:
    """The focus document's title and the passages the answer quotes, best first: those of the
    focus document ordered by the question's types, then the rest of the top passages by rank.
    The focus is the document of passage [1] when one of its passages answers the question's type
    (rank 1 is retrieval's best guess of the topic); else a top passage whose title the question
    names (a page on exactly what was asked beats another topic's matching section: "adult acne
    treatment" once quoted a cardiogenic-shock page's treatment section); else the first of the top
    three whose section answers it; else passage [1]'s."""
    top = list(enumerate(passages[:COMPOSE_TOP_PASSAGES], start=1))
    first = top[0][1]
    matching = [p for n, p in top if p.section in types]
    same_topic = [p for p in matching if p.title == first.title]
    qtokens = question_tokens(question, lang)
    named = [p for n, p in top if _names(qtokens, p)]
    # Only the top three may move the topic away from [1]: lower passages are weaker matches.
    near = [p for n, p in top if n <= 3 and p.section in types]
    focus = (same_topic or named or near or [first])[0]
    order = {t: i for i, t in enumerate(types)}
    same_doc = [(n, p) for n, p in top if p.title == focus.title]
    same_doc.sort(key=lambda np: (order.get(np[1].section, len(order)), np[0]))
    return focus.title, same_doc + [(n, p) for n, p in top if p.title != focus.title]


def _units(question: str, lang: str, focus: str, ranked: list[tuple[int, Passage]],
           types: list[str]) -> list[_Unit]:
    """Quotable units, in answer order. A passage of the focus document whose section answers the
    question is quoted in reading order (the section is the answer); any other passage only by its
    sentences sharing words with the question (it is context, and often another topic)."""
    qtokens = question_tokens(question, lang)
    out: list[_Unit] = []
    seen: set[str] = set()
    for n, p in ranked:
        plang = passage_lang(p)
        answers_type = p.title == focus and (p.section in types or (not p.section and n == 1))
        # Another section of the focus page must share a word with what was asked beyond the page's
        # topic: every sentence of the treatment section of "type 2 diabetes" names diabetes, and
        # would fill a symptoms answer.
        asked = qtokens[plang] - content_tokens(p.title) if p.title == focus else qtokens[plang]
        for unit in passage_units(passage_body(p)):
            tokens = content_tokens(unit)
            if unit.endswith(("?", "？")) or len(tokens) < MIN_CONTENT_TOKENS:
                continue  # questions are headings of the source, not answers
            if not answers_type and overlap(tokens, asked) == 0:
                continue
            key = fold(unit)
            # two chunks of one document, duplicate Toyhom rows; a list quoted again from the
            # overlap of the next chunk ("These include - Anxiety - Stress" then "Anxiety - Stress")
            if key in seen or any(key in other for other in seen):
                continue
            seen.add(key)
            out.append(_Unit(n, unit if "\n" in unit else shorten(unit, plang), plang))
    return out


def _size(text: str, lang: str) -> int:
    return len(CJK.findall(text)) if lang == "zh" else len(text)


def _within_budget(units: list[_Unit], lang: str) -> list[_Unit]:
    picked: list[_Unit] = []
    used = 0
    for unit in units:
        size = _size(unit.text, unit.lang)
        if len(picked) >= COMPOSE_MAX_UNITS:
            break
        if picked and len(picked) >= COMPOSE_MIN_UNITS and used + size > COMPOSE_MAX_CHARS[unit.lang]:
            break
        picked.append(unit)
        used += size
    return picked


def compose_answer(question: str, lang: str, passages: Sequence[Passage], prompts: PromptLibrary,
                   hint: str | None = None, same_language_only: bool = False) -> str:
    """The composed answer (module docstring) under a one-line intro in the question's language;
    quotes from passages in the other language come under the ``answer.extractive_other_language``
    line, or are left out with ``same_language_only`` (an extract added after the model's answer:
    the model already answered in the patient's language, and a block of English under a Chinese
    answer is what a Chinese patient must not get). Falls back to the plain extractive answer when
    no unit qualifies."""
    if not passages:
        return prompts.text(lang, "answer.generation_failed")
    types = question_types(question, lang, hint)
    focus, ranked = _focus(question, lang, passages, types)
    picked = _within_budget(_units(question, lang, focus, ranked, types), lang)
    if not picked:
        return extractive_answer(question, lang, passages, prompts)
    same = [f"{u.text} [{u.n}]" for u in picked if u.lang == lang]
    other = [f"{u.text} [{u.n}]" for u in picked if u.lang != lang]
    blocks = []
    if same:
        blocks.append("\n".join([prompts.text(lang, "answer.extractive_intro"), *same]))
    if other and not same_language_only:
        blocks.append("\n".join([prompts.text(lang, "answer.extractive_other_language"), *other]))
    return "\n\n".join(blocks)


def names_the_topic(question: str, lang: str, passages: Sequence[Passage]) -> bool:
    """Whether the question names the topic of one of the top passages: every content word of
    that passage's title is a word of the question (glossary-translated when the passage is in
    the other language: "失眠怎么办" names *Insomnia*). Toyhom titles are questions, not topics,
    and rarely pass; MedQuAD and MedlinePlus titles are the disease, drug or test itself.
    It is the evidence that a model's "no reliable source" is wrong: the library has a page on
    exactly what was asked."""
    qtokens = question_tokens(question, lang)
    return any(_names(qtokens, p) for p in passages[:COMPOSE_TOP_PASSAGES])


def _names(qtokens: dict, p: Passage) -> bool:
    """Every content word of ``p``'s (short) title is a word of the question, in ``p``'s language."""
    plang = passage_lang(p)
    title = content_tokens(p.title)
    return bool(title) and len(title) <= MAX_TOPIC_WORDS and title <= qtokens[plang]
