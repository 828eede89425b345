"""Questions about taking two things together ("can I take ibuprofen with warfarin?",
"吃完头孢能喝酒吗").

A library that has a page on each of the two but none on the pair must not answer with what it
says about one of them: quoting the warfarin page's "tell your provider about all medicines" under
"can I take ibuprofen with warfarin" reads as an answer and is not one. :func:`combination_terms`
finds the two things a question asks to combine; :func:`covers_combination` says whether one
sentence of the passages names both beside a word of combining (with, together, interact, 同时 ...);
when none does, the engine says which pair the library does not cover and sends the patient to a
pharmacist (a ``no_evidence`` reply: it claims nothing).

On the four blind answer rounds, 13 of the 15 questions of this kind were labelled unanswerable by
their writers (the library's drug pages lack interactions); the two answerable ones (warfarin and
aspirin, ibuprofen and lisinopril) have a passage sentence that names both.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from chatbot.engine.answer.sentences import split_sentences
from knowledge_base.records import Passage
from knowledge_base.text import CJK
from knowledge_base.tokenize import tokenize, translate_terms

# "take A with B", "A and B together", "drink alcohol while taking A". The two groups are short
# (a drug, a food or "alcohol", a few words at most) so that "take care of my mum with dementia"
# does not read as a combination: the verb must be a verb of taking.
_EN = [
    re.compile(r"\b(?:take|taking|took|mix|mixing|combine|combining|use|using)\s+(?!care\b)(?P<a>[a-z][\w' -]{1,30}?)\s+"
               r"(?:and|with|together with|plus|alongside|while (?:on|taking))\s+(?P<b>[a-z][\w' -]{1,30}?)"
               r"(?=\s+(?:together|at the same time|for|if|when|or|safely|\?)|[?,.;!]|$)", re.I),
    re.compile(r"\b(?:drink|drinking|have|having)\s+(?P<a>alcohol|beer|wine|coffee|grapefruit(?: juice)?|milk)\s+"
               r"(?:with|while (?:on|taking)|after taking|when taking)\s+(?P<b>[a-z][\w' -]{1,30}?)(?=[?,.;!]|\s+(?:and|or)\b|$)", re.I),
]
_ZH = [
    re.compile(r"(?P<a>[\u4e00-\u9fffA-Za-z]{2,8}?)(?:和|与|跟|同|加)(?P<b>[\u4e00-\u9fffA-Za-z]{1,8}?)"
               r"(?:能|可以|可不可以|能不能|能否)?(?:一起|同时|一块)(?:吃|服用|服|用|喝)"),
    # "阿莫西林和头孢有什么区别，能一起吃吗": the pair first, the combining question a clause later
    re.compile(r"(?P<a>[\u4e00-\u9fffA-Za-z]{2,8}?)(?:和|与|跟)(?P<b>[\u4e00-\u9fffA-Za-z]{2,8}?)(?:有什么|有啥|的)?[^。？?]{0,10}?[，,]"
               r"(?:能|可以|可不可以|能不能|能否)?(?:一起|同时|一块)(?:吃|服用|服|用|喝)"),
    re.compile(r"(?:吃|服|服用|用)(?:完|了|着)?(?P<a>[\u4e00-\u9fffA-Za-z]{2,8}?)(?:后|期间|的时候|时)?"
               r"(?:多久)?(?:能|可以|可不可以|能不能|还能)(?:喝|吃)(?P<b>酒|西柚|葡萄柚|咖啡|牛奶|[\u4e00-\u9fff]{2,6}?)(?=吗|么|\?|？|，|,|$|要|多久)"),
]
# Words that make a sentence about the pair, not a list that happens to name both.
_COMBINING = re.compile(r"\b(with|together|combin\w*|interact\w*|at the same time|while taking|along with|mix\w*|avoid)\b|"
                        r"同时|一起|合用|联用|并用|相互作用|避免|慎用|期间", re.I)
# Determiners and generic words around a named thing ("my blood pressure medicine").
_DROP = frozenset({"my", "his", "her", "their", "the", "a", "an", "some", "any", "medicine", "medicines",
                   "medication", "medications", "meds", "pill", "pills", "tablet", "tablets", "drug", "drugs",
                   "it", "them", "this", "that", "each", "other", "both", "ok", "safe", "safely"})
# Brand and everyday names a page writes under their generic name.
_SYNONYMS = {
    "tylenol": ("acetaminophen", "paracetamol"), "panadol": ("acetaminophen", "paracetamol"),
    "paracetamol": ("acetaminophen",), "acetaminophen": ("paracetamol",),
    "advil": ("ibuprofen", "nsaid", "nsaids"), "motrin": ("ibuprofen", "nsaid", "nsaids"),
    "ibuprofen": ("nsaid", "nsaids"), "aleve": ("naproxen", "nsaid", "nsaids"), "naproxen": ("nsaid", "nsaids"),
    "aspirin": ("nsaid", "nsaids"), "coumadin": ("warfarin",), "flagyl": ("metronidazole",),
    "drinking": ("alcohol",), "beer": ("alcohol",), "wine": ("alcohol",), "booze": ("alcohol",),
    "头孢": ("cephalosporin", "cephalosporins", "头孢菌素"), "头包": ("cephalosporin", "头孢"),
    "酒": ("alcohol", "饮酒", "喝酒"), "阿莫西林": ("amoxicillin",), "西柚": ("grapefruit",),
}


@dataclass(frozen=True)
class Combination:
    first: str      # the two things as the patient wrote them
    second: str


# A group holding one of these is a clause, not a named thing ("when the blue one", "can i have").
_NOT_A_THING = frozenset({"when", "what", "how", "why", "can", "could", "should", "would", "i", "you", "is", "are",
                          "do", "does", "if", "which"})


def _clean(term: str) -> str:
    words = [w for w in re.split(r"\s+", term.strip(" ?,.!'").lower()) if w]
    if _NOT_A_THING.intersection(words):
        return ""
    kept = [w for w in words if w not in _DROP]
    # "the pill" is a thing of its own (the contraceptive pill): a generic word alone is kept
    return " ".join(kept) or (words[-1] if words and words[-1] not in ("it", "them", "this", "that") else "")


def combination_terms(question: str, lang: str) -> Combination | None:
    """The two things the question asks to take together, or None."""
    for pattern in (_ZH if lang == "zh" else []) + _EN:
        m = pattern.search(question)
        if m:
            a, b = _clean(m.group("a")), _clean(m.group("b"))
            if a and b and a != b:
                return Combination(a, b)
    return None


def _spellings(term: str) -> re.Pattern[str]:
    """One pattern for the ways a passage may write ``term``: its own words (a single Latin
    letter is no word), their synonyms, and (Chinese) its glossary translations; Latin spellings
    as whole words, Chinese ones as substrings."""
    out = {t for t in tokenize(term) if len(t) > 1 or CJK.search(t)}
    out.add(term)
    for word in list(out):
        out.update(_SYNONYMS.get(word, ()))
    if CJK.search(term):
        out.update(en.lower() for en in translate_terms(term, "zh"))
    alternatives = sorted({s.lower() for s in out if s}, key=len, reverse=True)
    return re.compile("|".join(rf"\b{re.escape(s)}\b" if s.isascii() else re.escape(s) for s in alternatives))


def _mentions(sentence: str, spellings: re.Pattern[str]) -> bool:
    return spellings.search(sentence.lower()) is not None


def covers_combination(combo: Combination, passages: Sequence[Passage]) -> bool:
    """True when the passages speak of the pair: one sentence names both beside a word of
    combining, or the page of one of them (its title names it) has a sentence that names the
    other (a drug page's "tell your doctor if you take ... ibuprofen" under Lisinopril)."""
    first, second = _spellings(combo.first), _spellings(combo.second)
    for p in passages:
        sentences = split_sentences(p.text)
        for own, other in ((first, second), (second, first)):
            if _mentions(p.title, own) and any(_mentions(s, other) for s in sentences):
                return True
        if any(_COMBINING.search(s) and _mentions(s, first) and _mentions(s, second) for s in sentences):
            return True
    return False
