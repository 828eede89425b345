"""What an answer must pass before a patient sees it: the right language, no loop, something
stated, a citation, and sentences the passages they cite support (thresholds with their
calibration notes)."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence

from chatbot.engine.answer.citations import find_citations, normalise_markers, strip_markers
from chatbot.engine.answer.sentences import drop_spans, sentence_spans, split_sentences, tidy
from knowledge_base.records import Passage
from knowledge_base.text import CJK, detect_lang
from knowledge_base.tokenize import glossary, tokenize, translate_terms

# What chatbot.engine.answer re-exports.
__all__ = ["DEGENERATE_REPETITION", "content_tokens", "is_degenerate", "language_ok", "remove_unsupported_sentences", "repetition_rate", "supported_share", "validate"]

# n-gram sizes of the repetition rate. A word 4-gram or a 6-character Chinese span (about 3 words)
# rarely repeats by chance in a short answer, but a loop repeats all of them.
EN_NGRAM = 4
ZH_NGRAM = 6
# Below this many n-grams the rate is too noisy to mean anything: it is 0.
MIN_NGRAMS = 4
# Calibrated on 50 real outputs of Gemma-3-270M (base, Q4_K_M) and SmolLM2-135M-Instruct (Q4_1)
# on data/eval/consult_dev.jsonl (greedy, repeat_penalty 1.1, 256 tokens, prompt echo removed):
# the 21 loops (a paragraph or line copied 2+ times) score 0.32-0.91, the 29 other outputs
# 0.00-0.17. Corpus answers cut to answer length score 0.26 (MedQuAD, 150 words) and 0.08
# (Toyhom, 250 characters) at the 99th percentile; above 0.25 are 1.0% / 0.2% of them, mostly the
# corpus's own duplicated lists and paragraphs. 0.25 sits between the two model groups; a false
# alarm costs an extractive answer, a missed loop reaches the patient.
DEGENERATE_REPETITION = 0.25
# The same non-trivial line three times is a loop even when the rest of the answer dilutes the rate.
REPEATED_LINE_COUNT = 3
# English answers may quote a Chinese term ("high blood pressure (高血压)"), not more.
EN_MAX_CJK_SHARE = 0.10
# A sentence needs this many content tokens to be judged for support: "Yes." or "See [1]." carry
# no claim that could be checked.
MIN_CONTENT_TOKENS = 3
# A sentence is supported when at least half of its content tokens occur in the passages it cites.
SUPPORT_TOKEN_SHARE = 0.5


def content_tokens(text: str) -> set[str]:
    """Content words (BM25 tokens: stop words out, stemmed) without bare numbers, which are mostly
    citation numbers and list indices. Hyphens split words: the passage's "varicella-zoster" must
    match the glossary's "varicella" and "zoster"."""
    return {t for t in tokenize(strip_markers(text).replace("-", " ")) if not t.isdigit()}


def _in_script(tokens: set[str], lang: str) -> set[str]:
    """The tokens written in ``lang``'s script: a Latin drug name in a Chinese sentence can match
    an English passage as it is."""
    return {t for t in tokens if t.isascii() == (lang == "en")}


def _glossary_concepts(text: str, lang: str) -> list[list[set[str]]]:
    """The glossary entries found in ``text``, each as its alternatives in the other language
    (token sets): 症状 -> [{symptom}, {sign}]. A concept is present in a passage when any one
    alternative is, since a passage says "symptoms" without also saying "signs"."""
    found = set(translate_terms(text, lang))
    concepts = []
    for zh_terms, en_terms in glossary():
        other_side = en_terms if lang == "zh" else zh_terms
        alternatives = [content_tokens(t) for t in other_side if t in found]
        alternatives = [a for a in alternatives if a]
        if alternatives:
            concepts.append(alternatives)
    return concepts


_EN_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
_LATIN_LETTER = re.compile(r"[A-Za-z\u00c0-\u024f]")
_LATIN_WORD = re.compile(r"[A-Za-z]{2,}")


def ngrams(text: str, lang: str, n: int | None = None) -> list[tuple[str, ...]]:
    """Word n-grams (en, default 4) or CJK-character n-grams (zh, default 6), markers ignored."""
    text = strip_markers(text)
    if lang == "zh":
        units, n = CJK.findall(text), n or ZH_NGRAM
    else:
        units, n = _EN_WORD.findall(text.lower()), n or EN_NGRAM
    return [tuple(units[i:i + n]) for i in range(len(units) - n + 1)]


def repetition_rate(text: str, lang: str) -> float:
    """Share of n-grams that repeat an earlier one: word 4-grams (en), CJK-character 6-grams (zh).

    0 for texts with fewer than MIN_NGRAMS n-grams. A loop "X X X ..." tends to 1 - 1/k for k
    copies of X: "高血压是" x 12 gives 0.91, "the" x 30 gives 0.96.
    Calibration (DEGENERATE_REPETITION): see the note at the constant and the test table.
    """
    grams = ngrams(text, lang)
    if len(grams) < MIN_NGRAMS:
        return 0.0
    seen: set[tuple[str, ...]] = set()
    repeats = 0
    for g in grams:
        if g in seen:
            repeats += 1
        else:
            seen.add(g)
    return repeats / len(grams)


def _has_content(text: str) -> bool:
    stripped = strip_markers(text)
    return any(c.isalnum() for c in stripped)


def _repeated_line(text: str) -> bool:
    lines = [ln.strip() for ln in strip_markers(text).splitlines()]
    # Only lines with some substance: a Markdown rule or a lone "-" may legitimately repeat.
    counts = Counter(ln for ln in lines if sum(c.isalnum() for c in ln) >= 4)
    return any(c >= REPEATED_LINE_COUNT for c in counts.values())


def is_degenerate(text: str, lang: str) -> bool:
    """A loop (repetition rate above DEGENERATE_REPETITION), the same line >= 3 times, or nothing
    left once markers and punctuation are removed."""
    if not _has_content(text):
        return True
    return repetition_rate(text, lang) > DEGENERATE_REPETITION or _repeated_line(text)


def language_ok(text: str, lang: str) -> bool:
    """zh: CJK characters outnumber Latin words plus letters of other scripts (a Latin drug name or
    "HbA1c" counts as one word, as in ``detect_lang``). en: Latin letters make the bulk of the
    letters and CJK characters are under 10% of them."""
    body = strip_markers(text)
    cjk = len(CJK.findall(body))
    letters = [c for c in body if c.isalpha()]
    latin = len(_LATIN_LETTER.findall(body))
    other = len(letters) - latin - cjk  # kana, hangul, Cyrillic...: neither expected language
    if lang == "zh":
        return cjk > 0 and cjk >= len(_LATIN_WORD.findall(body)) + other
    if not letters:
        return False
    return cjk / len(letters) < EN_MAX_CJK_SHARE and latin / len(letters) > 0.5


def _sentence_supported(sentence: str, cited: Iterable[int], passages_by_n: dict[int, str],
                        lang: str, passage_tokens: dict[int, set[str]],
                        passage_lang: dict[int, str]) -> bool | None:
    """True/False, or None when the sentence carries too little content to judge."""
    native = content_tokens(sentence)
    if len(native) < MIN_CONTENT_TOKENS:
        return None
    groups: dict[str, set[str]] = {}
    for n in cited:
        if n in passages_by_n:
            groups.setdefault(passage_lang[n], set()).update(passage_tokens[n])
    best = 0.0
    for plang, vocab in groups.items():
        if plang == lang:
            best = max(best, len(native & vocab) / len(native))
        else:
            best = max(best, _crosslingual_share(sentence, lang, native, plang, vocab))
    return best >= SUPPORT_TOKEN_SHARE


def _crosslingual_share(sentence: str, lang: str, native: set[str], plang: str,
                        vocab: set[str]) -> float:
    """Across languages words cannot match, so the units are the sentence's glossary concepts
    (``translate_terms``) plus its words already in the passage's script (a Latin drug name in a
    Chinese sentence). Limitation: words outside the glossary cannot be checked at all, so a
    false claim built from common words around a medical term ("吃巧克力可以治好高血压") passes
    whenever the term is in the passage: cross-lingual support is an upper bound."""
    concepts = _glossary_concepts(strip_markers(sentence), lang)
    units = len(concepts) + len(_in_script(native, plang))
    if not units:
        return 0.0
    hits = sum(any(alt <= vocab for alt in alternatives) for alternatives in concepts)
    hits += len(_in_script(native, plang) & vocab)
    return hits / units


def supported_share(text: str, passages_by_n: dict[int, str], lang: str) -> float:
    """Share of the answer's sentences whose content words occur for >= 50% in the passages that
    sentence cites (a sentence without a marker: the passages cited anywhere in the answer).

    Sentences with fewer than 3 content tokens are not counted. A sentence citing nothing, in an
    answer citing nothing, is unsupported: a claim must point to its source. 0.0 when no sentence
    can be judged. When the answer and a passage are in different languages, matching goes through
    the zh<->en glossary (``translate_terms``), so only medical terms it lists can match.
    """
    text = normalise_markers(text)
    all_cited = find_citations(text)
    passage_tokens = {n: content_tokens(t) for n, t in passages_by_n.items()}
    passage_lang = {n: detect_lang(t) for n, t in passages_by_n.items()}
    judged = supported = 0
    for sentence in split_sentences(text):
        cited = find_citations(sentence) or all_cited
        verdict = _sentence_supported(sentence, cited, passages_by_n, lang, passage_tokens,
                                      passage_lang)
        if verdict is None:
            continue
        judged += 1
        supported += verdict
    return supported / judged if judged else 0.0


def remove_unsupported_sentences(text: str, passages: Sequence[Passage | str], lang: str) -> tuple[str, int]:
    """Drop every sentence judged unsupported by the passages it cites (the ``supported_share``
    rule): a small model that runs on past its cited sentence, or cites an unrelated passage,
    must not reach the patient with a marker that lends it authority. Returns (text, sentences
    removed). Sentences too short to judge stay; validation then decides on what is left."""
    passages_by_n = {n: (p.text if isinstance(p, Passage) else p) for n, p in enumerate(passages, 1)}
    all_cited = find_citations(text)
    passage_tokens = {n: content_tokens(t) for n, t in passages_by_n.items()}
    passage_lang = {n: detect_lang(t) for n, t in passages_by_n.items()}
    drop = []
    for start, end in sentence_spans(text):
        sentence = text[start:end]
        cited = find_citations(sentence) or all_cited
        if _sentence_supported(sentence, cited, passages_by_n, lang, passage_tokens, passage_lang) is False:
            drop.append((start, end))
    if not drop:
        return text, 0
    return tidy(drop_spans(text, drop)), len(drop)


def _states_something(text: str) -> bool:
    """At least one sentence that is not a question and carries MIN_CONTENT_TOKENS content words:
    a bare echoed question ("[1] 咨询高血压怎么办？") or a cut-off fragment answers nothing."""
    return any(not s.rstrip("[]0123456789 ").endswith(("?", "？"))
               and len(content_tokens(s)) >= MIN_CONTENT_TOKENS for s in split_sentences(text))


def validate(text: str, lang: str, passages: Sequence[Passage | str]) -> list[str]:
    """Problem codes: "empty" (nothing stated once markers, questions and fragments are set
    aside), "wrong_language", "degenerate", "no_citation" (no marker pointing to one of the
    passages; only checked when there are passages)."""
    if not _has_content(text):
        return ["empty"]
    problems: list[str] = []
    if not language_ok(text, lang):
        problems.append("wrong_language")
    if is_degenerate(text, lang):
        problems.append("degenerate")
    elif not _states_something(text):  # a loop states nothing either; say which it is
        problems.append("empty")
    if passages and not any(1 <= n <= len(passages) for n in find_citations(text)):
        problems.append("no_citation")
    return problems
