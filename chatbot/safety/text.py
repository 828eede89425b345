"""Text helpers of the red-flag screen: normalisation (width, case, apostrophes, listed
misspellings, keyboard typos of the fuzzy vocabulary), clause and sentence spans, and the numbers
that rules compare (pill counts, temperatures, infant ages) in Arabic or Chinese numerals."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Iterable

from knowledge_base.text import CJK

_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'", "`": "'", "\u00b4": "'"})
_WORD = re.compile(r"[a-z]+")
_CANT = re.compile(r"(?<![a-z])can ?not(?![a-z])")

# QWERTY neighbours: a typo that hits the key next door is the commonest substitution.
_ROWS = ["qwertyuiop", "asdfghjkl", "zxcvbnm"]
_NEIGHBOURS: dict[str, set[str]] = {}
for _r, _row in enumerate(_ROWS):
    for _c, _ch in enumerate(_row):
        near = set()
        for dr in (-1, 0, 1):
            rr = _r + dr
            if 0 <= rr < len(_ROWS):
                for dc in (-1, 0, 1):
                    cc = _c + dc
                    if 0 <= cc < len(_ROWS[rr]) and (dr, dc) != (0, 0):
                        near.add(_ROWS[rr][cc])
        _NEIGHBOURS[_ch] = near


def typo_variants(word: str) -> set[str]:
    """Spellings one slip away from ``word``: a dropped letter, two letters swapped, a doubled
    letter, a neighbouring key pressed instead or as well. Deliberately narrower than
    Levenshtein distance 1: arbitrary substitutions turn "choking" into "cooking"."""
    out: set[str] = set()
    n = len(word)
    for i in range(n):
        out.add(word[:i] + word[i + 1:])                       # deletion
        out.add(word[:i] + word[i] + word[i:])                 # doubled letter
        if i + 1 < n:
            out.add(word[:i] + word[i + 1] + word[i] + word[i + 2:])   # transposition
        for k in _NEIGHBOURS.get(word[i], ()):
            out.add(word[:i] + k + word[i + 1:])                # neighbour key instead
            out.add(word[:i] + k + word[i:])                    # neighbour key as well
    out.discard(word)
    return out


@dataclass(frozen=True)
class Normaliser:
    """Applied before any pattern: the patterns are written for the normalised form."""

    phrase_fixes: re.Pattern[str] | None   # listed misspellings (en and zh), one alternation
    phrase_map: dict[str, str]
    word_fixes: dict[str, str]             # generated keyboard typos -> word

    @classmethod
    def build(cls, en_fixes: dict[str, str], zh_fixes: dict[str, str], vocabulary: Iterable[str],
              exceptions: Iterable[str], min_len: int) -> "Normaliser":
        phrase_map = {k.lower(): v.lower() for k, v in en_fixes.items()}
        phrase_map.update(zh_fixes)
        # longest first, so "cant breath" wins over a shorter listed fix inside it
        alts = [rf"(?<![a-z]){re.escape(w)}(?![a-z])" if w.isascii() else re.escape(w)
                for w in sorted(phrase_map, key=len, reverse=True)]
        fixes = re.compile("|".join(alts)) if alts else None
        keep = {e.lower() for e in exceptions}
        vocab = {v.lower() for v in vocabulary}
        words: dict[str, str] = {}
        for v in sorted(vocab):
            if len(v) < min_len:
                continue
            for variant in typo_variants(v):
                # a real word (exception list or another vocabulary word) is never "corrected"
                if variant not in keep and variant not in vocab:
                    words.setdefault(variant, v)
        return cls(fixes, phrase_map, words)

    def __call__(self, text: str) -> str:
        text = unicodedata.normalize("NFKC", text).translate(_APOSTROPHES).lower()
        # apostrophes go: "can't" and "cant", "I'm" and "im" are one spelling for the patterns
        text = _CANT.sub("cant", text.replace("'", ""))
        text = re.sub(r"[ \t\u3000]+", " ", text)
        if self.phrase_fixes is not None:
            text = self.phrase_fixes.sub(lambda m: self.phrase_map[m.group(0)], text)
        if self.word_fixes:
            text = _WORD.sub(lambda m: self.word_fixes.get(m.group(0), m.group(0)), text)
        return text


def spans(text: str, splitter: re.Pattern[str]) -> list[tuple[int, int]]:
    """(start, end) of the pieces between separators, covering the whole text."""
    out, start = [], 0
    for m in splitter.finditer(text):
        out.append((start, m.start()))
        start = m.end()
    out.append((start, len(text)))
    return out


def span_at(pieces: list[tuple[int, int]], pos: int) -> tuple[int, int]:
    for start, end in pieces:
        if start <= pos < end or (pos == end and start == end):
            return start, end
    return pieces[-1]


def lang_of(span: str) -> str:
    return "zh" if CJK.search(span) else "en"


_ZH_DIGITS = {"零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "俩": 2, "三": 3, "四": 4, "五": 5,
              "六": 6, "七": 7, "八": 8, "九": 9, "几": 3}   # 几 "a few": counted low on purpose
_ZH_UNITS = {"十": 10, "百": 100, "千": 1000}
_EN_NUMBERS = {"zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6,
               "seven": 7, "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12,
               "thirteen": 13, "fourteen": 14, "fifteen": 15, "sixteen": 16, "seventeen": 17,
               "eighteen": 18, "nineteen": 19, "twenty": 20, "thirty": 30, "forty": 40,
               "fifty": 50, "sixty": 60, "hundred": 100, "a dozen": 12, "dozen": 12,
               "a couple": 2, "a few": 3, "several": 4, "a": 1, "an": 1, "half a": 0.5}


def parse_number(raw: str) -> float | None:
    """'30' -> 30, '3.5' -> 3.5, '三十' -> 30, '二十几' -> 23, '十五' -> 15, 'twenty' -> 20,
    '一个半' -> 1.5, '三十八点五' -> 38.5; None when it is not a number."""
    raw = raw.strip().lower()
    if not raw:
        return None
    try:
        return float(raw)
    except ValueError:
        pass
    if raw in _EN_NUMBERS:
        return float(_EN_NUMBERS[raw])
    parts = raw.split("-")
    if len(parts) == 2 and all(p in _EN_NUMBERS for p in parts):   # twenty-five
        return float(_EN_NUMBERS[parts[0]] + _EN_NUMBERS[parts[1]])
    if "点" in raw:   # 三十八点五 = 38.5: the digits after 点 are decimals, one by one
        whole, _, frac = raw.partition("点")
        head = parse_number(whole)
        digits = [_ZH_DIGITS.get(ch) for ch in frac]
        if head is None or not digits or any(d is None for d in digits):
            return None
        return head + float("0." + "".join(str(d) for d in digits))
    half = 0.5 if raw.endswith("半") else 0.0
    raw = raw.rstrip("个半")
    if not raw:
        return half or None
    total, current = 0, 0
    for ch in raw:
        if ch in _ZH_DIGITS:
            current = _ZH_DIGITS[ch]
        elif ch in _ZH_UNITS:
            total += (current or 1) * _ZH_UNITS[ch]
            current = 0
        else:
            return None
    return float(total + current) + half


def celsius(value: float) -> float:
    """A temperature reading as degrees Celsius: 350-429 without a point is a dropped decimal
    point ("375度" = 37.5), anything else above 45 is Fahrenheit."""
    if 350 <= value <= 429:
        return value / 10
    if value > 45:
        return (value - 32) * 5 / 9
    return value
