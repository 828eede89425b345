"""Doses (number + unit, in Latin or Chinese spelling): every sentence holding a dose that no
passage states is removed, since a small model invents them."""

from __future__ import annotations

import re
from collections.abc import Sequence

from chatbot.engine.answer.citations import FULLWIDTH_DIGITS
from chatbot.engine.answer.sentences import drop_spans, sentence_spans, tidy
from chatbot.prompts import PromptLibrary
from knowledge_base.records import Passage

# What chatbot.engine.answer re-exports.
__all__ = ["dose_mentions", "strip_unsupported_doses", "unsupported_doses"]

# Unit spelling -> canonical form. Longest spellings first in the pattern so "毫克" is not "克".
# Spelled-out units and tablets/capsules are there because the small models write them ("less
# than 1,500 milligrams of salt" in a real SmolLM2 answer); 片/粒 are tablets/capsules.
_UNITS: dict[str, str] = {
    "mcg": "mcg", "µg": "mcg", "μg": "mcg", "ug": "mcg", "mg": "mg", "g": "g", "ml": "ml",
    "iu": "iu", "units": "unit", "unit": "unit",
    "micrograms": "mcg", "microgram": "mcg", "milligrams": "mg", "milligram": "mg",
    "grams": "g", "gram": "g", "milliliters": "ml", "milliliter": "ml", "millilitres": "ml",
    "millilitre": "ml", "tablets": "tablet", "tablet": "tablet", "capsules": "capsule",
    "capsule": "capsule",
    "毫克": "mg", "微克": "mcg", "克": "g", "毫升": "ml", "国际单位": "iu", "单位": "unit",
    "片": "tablet", "粒": "capsule",
}
_LATIN_UNITS = sorted((u for u in _UNITS if u.isascii() or u in ("µg", "μg")), key=len,
                      reverse=True)
_ZH_UNITS = sorted((u for u in _UNITS if not u.isascii() and u not in ("µg", "μg")), key=len,
                   reverse=True)
_NUM = r"\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?"
_RANGE_SEP = r"\s*(?:-|–|~|～|至|到)\s*"
_ZH_NUMERAL = "零一二两三四五六七八九十百"
# Digits with any unit; Chinese numerals ("六克") only with measure units, not with 片/粒, where
# "一片" is mostly the idiom "a stretch of" (一片红斑). "千克" (kg, body weight) is not a dose.
_DOSE = re.compile(
    rf"(?<![\d.,])(?P<num>(?:{_NUM})(?:{_RANGE_SEP}(?:{_NUM}))?)\s*"
    rf"(?:(?P<latin>{'|'.join(map(re.escape, _LATIN_UNITS))})(?![A-Za-z])"
    rf"|(?P<zh>{'|'.join(map(re.escape, _ZH_UNITS))}))"
    rf"|(?<![{_ZH_NUMERAL}千万])(?P<zhnum>[{_ZH_NUMERAL}]+)(?P<zhunit>毫克|微克|克|毫升|国际单位|单位)",
    re.IGNORECASE,
)


def _zh_numeral(text: str) -> int | None:
    """Chinese numerals below 1000 ("六", "十五", "一百二十", "两"); None if malformed."""
    digits = {c: i for i, c in enumerate("〇一二三四五六七八九")} | {"两": 2}
    total, current = 0, None
    for c in text:
        if c == "零":  # a place holder: 一百零五 = 105
            continue
        if c in digits:
            if current is not None:
                return None
            current = digits[c]
        elif c in "十百":
            scale = 10 if c == "十" else 100
            total += (1 if current is None else current) * scale
            current = None
        else:
            return None
    return total + (current or 0)


def _canonical_number(s: str) -> str:
    s = s.replace(",", "")
    if "." in s:
        s = s.rstrip("0").rstrip(".")
    return s


def _normalise_dose(m: re.Match[str]) -> str:
    if m.group("zhnum"):
        value = _zh_numeral(m.group("zhnum"))
        return f"{value}{_UNITS[m.group('zhunit')]}" if value is not None else m.group(0)
    unit = _UNITS[(m.group("latin") or m.group("zh")).lower()]
    parts = re.split(_RANGE_SEP, m.group("num").strip())
    return "-".join(_canonical_number(p) for p in parts) + unit


def _dose_matches(text: str) -> list[re.Match[str]]:
    return list(_DOSE.finditer(text.translate(FULLWIDTH_DIGITS)))


def dose_mentions(text: str) -> list[str]:
    """Amounts written as number + unit ("500 mg", "2 片", "0.5g", "1-2 片", "六克", "2 tablets"),
    as written."""
    return [m.group(0).strip() for m in _dose_matches(text)]


def _passage_text(p: Passage | str) -> str:
    return p if isinstance(p, str) else p.text


def _stated_doses(passages: Sequence[Passage | str]) -> set[str]:
    """Normalised doses the passages state; a range also states its two ends."""
    stated: set[str] = set()
    for p in passages:
        for m in _dose_matches(_passage_text(p)):
            dose = _normalise_dose(m)
            stated.add(dose)
            if "-" in dose:
                unit = dose.lstrip("0123456789.-")
                low, high = dose[: len(dose) - len(unit)].split("-")
                stated.update({low + unit, high + unit})
    return stated


def _unsupported_matches(text: str, passages: Sequence[Passage | str]) -> list[re.Match[str]]:
    stated = _stated_doses(passages)
    out = []
    for m in _dose_matches(text):
        dose = _normalise_dose(m)
        if dose in stated:
            continue
        if "-" in dose:  # "1-2 片" is fine when the passages state both ends somewhere
            unit = dose.lstrip("0123456789.-")
            ends = dose[: len(dose) - len(unit)].split("-")
            if all(e + unit in stated for e in ends):
                continue
        out.append(m)
    return out


def unsupported_doses(text: str, passages: Sequence[Passage | str]) -> list[str]:
    """Doses in ``text`` whose number + unit (spaces, unit spelling and 毫克 -> mg normalised) no
    passage states. Conservative: "0.5 g" does not support "500 mg"."""
    return [m.group(0).strip() for m in _unsupported_matches(text, passages)]


def remove_dose_sentences(text: str, passages: Sequence[Passage | str]) -> tuple[str, list[str]]:
    """Remove the sentences holding a dose no passage states, without the note that
    :func:`strip_unsupported_doses` adds. Returns (text, removed doses as written)."""
    # Positions refer to the text with full-width digits folded, which has the same length.
    bad = _unsupported_matches(text, passages)
    if not bad:
        return text, []
    drop = [span for span in sentence_spans(text) for m in bad if span[0] <= m.start() < span[1]]
    return tidy(drop_spans(text, drop)), [m.group(0).strip() for m in bad]


def strip_unsupported_doses(text: str, passages: Sequence[Passage | str], lang: str,
                            prompts: PromptLibrary) -> tuple[str, list[str]]:
    """Remove the sentences that hold a dose the passages do not state and append the
    ``answer.dose_removed`` note. Returns (text, removed doses)."""
    kept, removed = remove_dose_sentences(text, passages)
    if not removed:
        return text, []
    note = prompts.text(lang, "answer.dose_removed")
    return (f"{kept}\n\n{note}" if kept else note), removed
