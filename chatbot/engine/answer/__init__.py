"""Post-processing of a generated answer: make it safe and honest before a patient sees it.

The generator is a very small model (Gemma-3-270M / SmolLM2-135M). It loops, drifts into the
wrong language, invents citation numbers and, worst, invents doses. This module:

- removes what a base model echoes from its prompt (template tokens, passage fences and headers,
  copied instructions);
- recognises an honest "I have no reliable source" reply and answers with the no-evidence message;
- normalises citation markers (``【1】``, ``［1］``, ``[1, 2]`` -> ``[1][2]``) and drops markers that
  point to no passage;
- removes every sentence holding a dose (number + unit) that no passage states;
- validates the rest (empty, wrong language, degenerate, no citation) and, on any problem, replaces
  the answer with an extractive one: sentences quoted verbatim from the passages, with their [n];
- maps the kept markers to :class:`Citation` records and appends the one-line disclaimer.

Every patient-facing string comes from ``data/prompts/<lang>/answer.yaml`` (keys ``answer.*``).
Passages are numbered [1]..[n] in the order given, as in the prompt.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from chatbot.prompts import PromptError, PromptLibrary
from knowledge_base.records import Passage
from knowledge_base.text import CJK, detect_lang
from knowledge_base.tokenize import glossary, tokenize, translate_terms

# Prompt templates (data/prompts/<lang>/<name>.txt) whose lines a base model may copy.
PROMPT_TEMPLATES = ("system", "user")

# --- thresholds (see the calibration notes next to each) -------------------------------------

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
# The extractive fallback reads the top passages only: lower ones are weaker matches.
EXTRACTIVE_TOP_PASSAGES = 3
# Quoted sentences longer than this are cut at a word / clause boundary (MedQuAD has 600-character
# lists, Toyhom runs whole answers together with commas). A CJK character carries about a word.
EXTRACTIVE_MAX_CHARS = {"en": 360, "zh": 160}
# A list intro ("Common symptoms include:") is quoted with at most this many items, each the first
# sentence of its line and at most this long (longer lines are paragraphs, not list items).
EXTRACTIVE_LIST_ITEMS = 6
EXTRACTIVE_LIST_ITEM_CHARS = 100
EXTRACTIVE_LIST_ITEM_WORDS = 5  # unbulleted items: words, or twice as many CJK characters
# Shortest stems compared by prefix in the extractive scoring: 4 Latin letters, 2 CJK characters.
_PREFIX_MIN = {True: 4, False: 2}
_TERMINAL = (".", "!", "?", "。", "！", "？", "…", ";", "；")
# A reply is the model saying "no reliable source" when at least this share of its content words
# are words of the answer.no_evidence message, and it is short (a refusal, not an answer that
# happens to mention a doctor).
NO_EVIDENCE_WORD_SHARE = 0.5
NO_EVIDENCE_MAX_WORDS = 30


@dataclass(frozen=True)
class Citation:
    n: int
    doc_id: str
    title: str
    url: str
    source: str


@dataclass
class Answer:
    text: str
    lang: str
    citations: list[Citation]
    flags: list[str] = field(default_factory=list)
    extractive: bool = False


# --- citation markers ------------------------------------------------------------------------

_FULLWIDTH_DIGITS = str.maketrans("０１２３４５６７８９", "0123456789")
# Bracket styles a small model produces: [1] 【1】 ［1］ 〔1〕, with lists "1,2" "1，2" "1、2" "1; 2"
# and ranges "1-3". Round brackets are not markers: "(1)" is usually a list item or a number.
_MARKER = re.compile(
    r"[\[【［〔]\s*(\d{1,3}(?:\s*(?:[,，、;；]|[-–~～])\s*\d{1,3})*)\s*[\]】］〕]")
_MARKER_PART = re.compile(r"(\d{1,3})\s*[-–~～]\s*(\d{1,3})|(\d{1,3})")
_NORMAL_MARKER = re.compile(r"\[(\d+)\]")
# A range longer than this is not a citation list ("[1-100]" is text, left alone).
_MAX_RANGE = 10


def _expand_marker(body: str) -> list[int] | None:
    numbers: list[int] = []
    for m in _MARKER_PART.finditer(body):
        if m.group(3):
            numbers.append(int(m.group(3)))
            continue
        lo, hi = int(m.group(1)), int(m.group(2))
        if hi < lo or hi - lo >= _MAX_RANGE:
            return None
        numbers.extend(range(lo, hi + 1))
    return numbers


def normalise_markers(text: str) -> str:
    """Every bracket-style citation becomes ``[n]``; lists and ranges become ``[1][2]``."""
    text = text.translate(_FULLWIDTH_DIGITS)

    def repl(m: re.Match[str]) -> str:
        numbers = _expand_marker(m.group(1))
        if numbers is None:
            return m.group(0)
        return "".join(f"[{n}]" for n in numbers)

    return _MARKER.sub(repl, text)


def find_citations(text: str) -> list[int]:
    """Marker numbers, distinct, in order of first appearance."""
    found = (int(n) for n in _NORMAL_MARKER.findall(normalise_markers(text)))
    return list(dict.fromkeys(found))


def _tidy(text: str) -> str:
    """Spaces left behind by removed markers or sentences: "acid [7]." -> "acid."."""
    text = re.sub(r"[ \t]+([.,;:!?。，；：！？])", r"\1", text)
    text = re.sub(r"[ \t]{2,}", " ", text)
    text = re.sub(r"[ \t]+\n", "\n", text)
    text = re.sub(r"\n{3,}", "\n\n", text)
    return text.strip()


def clean_citations(text: str, n_passages: int) -> tuple[str, list[int], list[int]]:
    """Normalise markers and drop those that point nowhere (< 1 or > n_passages).
    Returns (text, kept numbers, removed numbers), both distinct in order of appearance."""
    text = normalise_markers(text)
    kept: list[int] = []
    removed: list[int] = []

    def repl(m: re.Match[str]) -> str:
        n = int(m.group(1))
        if 1 <= n <= n_passages:
            kept.append(n)
            return m.group(0)
        removed.append(n)
        return ""

    text = _NORMAL_MARKER.sub(repl, text)
    if removed:
        text = _tidy(text)
    return text, list(dict.fromkeys(kept)), list(dict.fromkeys(removed))


def _strip_markers(text: str) -> str:
    return _NORMAL_MARKER.sub(" ", normalise_markers(text))


# --- prompt echo -----------------------------------------------------------------------------

# Base models continue the prompt instead of answering it: they echo chat-template tokens
# ("<<SYS>>", "<end_of_turn>", "<|im_start|>") and the passage fences "<<<" / ">>>".
_SCAFFOLD = re.compile(
    r"<<\s*/?\s*SYS\s*>>|\[/?INST\]|<\|[a-z_]{2,20}\|>|</?(?:start|end)_of_turn>|<{3}|>{3}",
    re.IGNORECASE)
_HEADER_LINE = re.compile(r"^\[(\d+)\]\s*(.*)$")
# The prompt's own "[n]" (cite as [n]) copied as if it were a marker.
_PLACEHOLDER_MARKER = re.compile(r"\[[a-zA-Z]\]")
# A sentence is a copy of the instructions when at least half of its word / CJK-character
# trigrams occur in the prompt templates. Trigrams, because SmolLM2 remixes what it copies
# ("每句话中用 [1]、[2] 等标注出处" for "每句话后面用…": 5 of 8 trigrams, 1 of 5 6-grams); a real answer
# shares a phrase or two with the instructions ("药物剂量"), far from half of its trigrams.
ECHO_NGRAM = 3
ECHO_GRAM_SHARE = 0.5


def _is_echoed_line(line: str, passages: Sequence[Passage]) -> bool:
    """A passage header ("[2] Glaucoma (MedQuAD/NIHSeniorHealth)") or a passage's stored question
    ("What are the symptoms of Glaucoma ?") copied from the prompt."""
    line = line.strip()
    if not line:
        return False
    header = _HEADER_LINE.match(line)
    if header:
        # Any passage's header under any number: the model renumbers what it copies.
        rest = _fold(header.group(2))
        for p in passages:
            title = _fold(p.title or p.doc_id)
            if title and rest.startswith(title) and len(rest) - len(title) <= len(p.source) + 4:
                return True
    folded = _fold(line)
    return any(p.question and folded == _fold(p.question) for p in passages)


def _fold(text: str) -> str:
    """Case and spacing do not matter: the model writes "asthma?" for the stored "Asthma ?"."""
    return re.sub(r"\s+", "", text).casefold()


def _template_grams(templates: Sequence[str]) -> set[tuple[str, ...]]:
    grams: set[tuple[str, ...]] = set()
    for template in templates:
        body = re.sub(r"\{[a-z_]+\}", "\n", template)
        grams.update(_ngrams(body, "zh", ECHO_NGRAM))
        grams.update(_ngrams(body, "en", ECHO_NGRAM))
    return grams


def _is_instruction_echo(sentence: str, template_grams: set[tuple[str, ...]]) -> bool:
    """A sentence copied from the prompt's own instructions, possibly remixed ("每句话后面用 [1]、[2]
    等标注出处。" from SmolLM2-135M): most of its n-grams occur in a template."""
    body = _PLACEHOLDER_MARKER.sub("", sentence)
    grams = _ngrams(body, detect_lang(body), ECHO_NGRAM)
    return bool(grams) and sum(g in template_grams for g in grams) / len(grams) >= ECHO_GRAM_SHARE


def _drop_spans(text: str, spans: Iterable[tuple[int, int]]) -> str:
    for s, e in sorted(set(spans), reverse=True):
        text = text[:s] + text[e:]
    return text


def strip_prompt_echo(text: str, passages: Sequence[Passage],
                      templates: Sequence[str] = ()) -> tuple[str, bool]:
    """Remove chat-template tokens, passage fences, the prompt's "[n]" placeholder, echoed passage
    headers and stored questions, and sentences copied from the prompt ``templates`` (system and
    user prompt texts).
    Returns (text, whether anything was removed)."""
    cleaned, n_tokens = _SCAFFOLD.subn("", text)
    cleaned, n_placeholders = _PLACEHOLDER_MARKER.subn("", cleaned)
    n_tokens += n_placeholders
    lines = cleaned.split("\n")
    kept = [ln for ln in lines if not _is_echoed_line(ln, passages)]
    cleaned = "\n".join(kept)
    grams = _template_grams(templates)
    copied = [(s, e) for s, e in sentence_spans(cleaned)
              if grams and _is_instruction_echo(cleaned[s:e], grams)]
    if not n_tokens and len(kept) == len(lines) and not copied:
        return text, False
    return _tidy(_drop_spans(cleaned, copied)), True


def _letters(text: str) -> str:
    """Words and CJK characters only: "糖尿病早期有哪些症状[2]。" -> "糖尿病早期有哪些症状"."""
    return re.sub(r"[\W_]+", "", _strip_markers(text)).casefold()


# Shortest copied piece that counts as an echo: a 6-character Chinese clause or a 3-word English
# phrase. Shorter pieces ("高血压。", "Yes.") occur in real answers that happen to share them.
QUESTION_ECHO_MIN = {"zh": 6, "en": 14}


def strip_question_echo(text: str, question: str, lang: str) -> tuple[str, bool]:
    """Remove sentences copied from the patient's question ("糖尿病早期有哪些症状[2]。" answering
    "糖尿病早期有哪些症状？"): a small model restating the question with a marker looks like a cited
    answer and says nothing. Returns (text, whether anything was removed)."""
    asked = _letters(question)
    if not asked:
        return text, False
    drop = [(s, e) for s, e in sentence_spans(text)
            if len(piece := _letters(text[s:e])) >= QUESTION_ECHO_MIN.get(lang, 14) and piece in asked]
    if not drop:
        return text, False
    return _tidy(_drop_spans(text, drop)), True


# --- sentences -------------------------------------------------------------------------------

# A sentence ends at Chinese or Latin end punctuation, or at a line break. A period only ends a
# sentence before a space, a marker or the end, so "5.5 mmol/L" and "e.g.," stay whole. Markers
# right after the end ("... acid. [1]") belong to the sentence they follow.
_SENT_END = re.compile(r"(?:[。！？!?]+|\.(?=\s|$|\[)|\n)[”\"'）)]*(?:[ \t]*\[\d+\])*")


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of each non-blank sentence, in order; ``text[start:end]`` keeps its markers."""
    spans: list[tuple[int, int]] = []
    start = 0
    for m in _SENT_END.finditer(text):
        spans.append((start, m.end()))
        start = m.end()
    spans.append((start, len(text)))
    out = []
    for s, e in spans:
        while s < e and text[s].isspace():
            s += 1
        while e > s and text[e - 1].isspace():
            e -= 1
        if s < e:
            out.append((s, e))
    return out


def split_sentences(text: str) -> list[str]:
    return [text[s:e] for s, e in sentence_spans(text)]


def _content_tokens(text: str) -> set[str]:
    """Content words (BM25 tokens: stop words out, stemmed) without bare numbers, which are mostly
    citation numbers and list indices. Hyphens split words: the passage's "varicella-zoster" must
    match the glossary's "varicella" and "zoster"."""
    return {t for t in tokenize(_strip_markers(text).replace("-", " ")) if not t.isdigit()}


def _in_script(tokens: set[str], lang: str) -> set[str]:
    """The tokens written in ``lang``'s script: a Latin drug name in a Chinese sentence can match
    an English passage as it is."""
    return {t for t in tokens if t.isascii() == (lang == "en")}


def _glossary_tokens(text: str, lang: str) -> set[str]:
    """Content tokens of the glossary translations of ``text`` (zh -> English terms and back)."""
    terms = translate_terms(text, lang)
    return _content_tokens(" ".join(terms)) if terms else set()


def _glossary_concepts(text: str, lang: str) -> list[list[set[str]]]:
    """The glossary entries found in ``text``, each as its alternatives in the other language
    (token sets): 症状 -> [{symptom}, {sign}]. A concept is present in a passage when any one
    alternative is, since a passage says "symptoms" without also saying "signs"."""
    found = set(translate_terms(text, lang))
    concepts = []
    for zh_terms, en_terms in glossary():
        other_side = en_terms if lang == "zh" else zh_terms
        alternatives = [_content_tokens(t) for t in other_side if t in found]
        alternatives = [a for a in alternatives if a]
        if alternatives:
            concepts.append(alternatives)
    return concepts


# --- repetition and language -----------------------------------------------------------------

_CJK_CHAR = CJK
_EN_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
_LATIN_LETTER = re.compile(r"[A-Za-z\u00c0-\u024f]")
_LATIN_WORD = re.compile(r"[A-Za-z]{2,}")


def _ngrams(text: str, lang: str, n: int | None = None) -> list[tuple[str, ...]]:
    """Word n-grams (en, default 4) or CJK-character n-grams (zh, default 6), markers ignored."""
    text = _strip_markers(text)
    if lang == "zh":
        units, n = _CJK_CHAR.findall(text), n or ZH_NGRAM
    else:
        units, n = _EN_WORD.findall(text.lower()), n or EN_NGRAM
    return [tuple(units[i:i + n]) for i in range(len(units) - n + 1)]


def repetition_rate(text: str, lang: str) -> float:
    """Share of n-grams that repeat an earlier one: word 4-grams (en), CJK-character 6-grams (zh).

    0 for texts with fewer than MIN_NGRAMS n-grams. A loop "X X X ..." tends to 1 - 1/k for k
    copies of X: "高血压是" x 12 gives 0.91, "the" x 30 gives 0.96.
    Calibration (DEGENERATE_REPETITION): see the note at the constant and the test table.
    """
    grams = _ngrams(text, lang)
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
    stripped = _strip_markers(text)
    return any(c.isalnum() for c in stripped)


def _repeated_line(text: str) -> bool:
    lines = [ln.strip() for ln in _strip_markers(text).splitlines()]
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
    body = _strip_markers(text)
    cjk = len(_CJK_CHAR.findall(body))
    letters = [c for c in body if c.isalpha()]
    latin = len(_LATIN_LETTER.findall(body))
    other = len(letters) - latin - cjk  # kana, hangul, Cyrillic...: neither expected language
    if lang == "zh":
        return cjk > 0 and cjk >= len(_LATIN_WORD.findall(body)) + other
    if not letters:
        return False
    return cjk / len(letters) < EN_MAX_CJK_SHARE and latin / len(letters) > 0.5


# --- support ---------------------------------------------------------------------------------


def _sentence_supported(sentence: str, cited: Iterable[int], passages_by_n: dict[int, str],
                        lang: str, passage_tokens: dict[int, set[str]],
                        passage_lang: dict[int, str]) -> bool | None:
    """True/False, or None when the sentence carries too little content to judge."""
    native = _content_tokens(sentence)
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
    concepts = _glossary_concepts(_strip_markers(sentence), lang)
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
    passage_tokens = {n: _content_tokens(t) for n, t in passages_by_n.items()}
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
    passage_tokens = {n: _content_tokens(t) for n, t in passages_by_n.items()}
    passage_lang = {n: detect_lang(t) for n, t in passages_by_n.items()}
    drop = []
    for start, end in sentence_spans(text):
        sentence = text[start:end]
        cited = find_citations(sentence) or all_cited
        if _sentence_supported(sentence, cited, passages_by_n, lang, passage_tokens, passage_lang) is False:
            drop.append((start, end))
    if not drop:
        return text, 0
    return _tidy(_drop_spans(text, drop)), len(drop)


# --- validation ------------------------------------------------------------------------------


def _states_something(text: str) -> bool:
    """At least one sentence that is not a question and carries MIN_CONTENT_TOKENS content words:
    a bare echoed question ("[1] 咨询高血压怎么办？") or a cut-off fragment answers nothing."""
    return any(not s.rstrip("[]0123456789 ").endswith(("?", "？"))
               and len(_content_tokens(s)) >= MIN_CONTENT_TOKENS for s in split_sentences(text))


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


# --- doses -----------------------------------------------------------------------------------

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
    return list(_DOSE.finditer(text.translate(_FULLWIDTH_DIGITS)))


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


def _remove_dose_sentences(text: str, passages: Sequence[Passage | str]) -> tuple[str, list[str]]:
    # Positions refer to the text with full-width digits folded, which has the same length.
    bad = _unsupported_matches(text, passages)
    if not bad:
        return text, []
    drop = [span for span in sentence_spans(text) for m in bad if span[0] <= m.start() < span[1]]
    return _tidy(_drop_spans(text, drop)), [m.group(0).strip() for m in bad]


def strip_unsupported_doses(text: str, passages: Sequence[Passage | str], lang: str,
                            prompts: PromptLibrary) -> tuple[str, list[str]]:
    """Remove the sentences that hold a dose the passages do not state and append the
    ``answer.dose_removed`` note. Returns (text, removed doses)."""
    kept, removed = _remove_dose_sentences(text, passages)
    if not removed:
        return text, []
    note = prompts.text(lang, "answer.dose_removed")
    return (f"{kept}\n\n{note}" if kept else note), removed


# --- fallbacks -------------------------------------------------------------------------------


def _question_tokens(question: str, lang: str) -> dict[str, set[str]]:
    """The question's content tokens as they would appear in zh and in en passages."""
    native = _content_tokens(question)
    other = "en" if lang == "zh" else "zh"
    return {lang: native, other: native | _glossary_tokens(question, lang)}


def _passage_body(p: Passage) -> str:
    """Chunks start with their stored question (see the chunker); that line is not an answer."""
    text = p.text
    if p.question and text.startswith(p.question):
        text = text[len(p.question):]
    return text


def _shorten(sentence: str, lang: str) -> str:
    limit = EXTRACTIVE_MAX_CHARS[lang]
    if len(sentence) <= limit:
        return sentence
    cut = sentence[:limit]
    boundary = max(cut.rfind(c) for c in (" ", "，", "；", ",", ";"))
    return (cut[:boundary] if boundary > limit // 2 else cut).rstrip(",;，； ") + "…"


@dataclass(frozen=True)
class _Candidate:
    score: int
    rank: int  # passage number - 1
    position: int
    text: str
    lang: str


def _is_list_intro(sentence: str) -> bool:
    """ "Common symptoms include:" announces the list on the next lines."""
    return sentence.rstrip().endswith((":", "："))


def _phrase_like(sentence: str) -> bool:
    if detect_lang(sentence) == "zh":
        return len(_CJK_CHAR.findall(sentence)) <= EXTRACTIVE_LIST_ITEM_WORDS * 2
    return len(sentence.split()) <= EXTRACTIVE_LIST_ITEM_WORDS


def _list_items(lines: list[str], start: int, bullets_only: bool) -> list[str]:
    """The first sentence of each list line from ``start`` on; a list ends at a long line."""
    items: list[str] = []
    for line in lines[start:start + EXTRACTIVE_LIST_ITEMS]:
        is_bullet = line.startswith(("-", "*", "•"))
        if bullets_only and not is_bullet:
            break
        first = split_sentences(line.lstrip("-*• \t"))
        if not first or len(first[0]) > EXTRACTIVE_LIST_ITEM_CHARS:
            break
        # Without a bullet, an item is a short heading-like phrase ("Chest tightness."), not a
        # paragraph's opening sentence ("Not all people who have asthma have these symptoms.").
        if not is_bullet and not _phrase_like(first[0]):
            break
        items.append(first[0])
    return items


def _passage_units(body: str) -> list[str]:
    """The quotable units of a passage body: its sentences, except that a list intro ("... include:"
    or an unfinished line such as "You may have a kidney stone if you") keeps its items, one per
    line: alone it says nothing."""
    lines = [ln.strip() for ln in body.split("\n") if ln.strip()]
    units: list[str] = []
    i = 0
    while i < len(lines):
        sentences = split_sentences(lines[i].lstrip("-*•\t "))
        i += 1
        if not sentences:
            continue
        units.extend(sentences[:-1])
        last = sentences[-1]
        unfinished = not last.rstrip("\"'”’)）").endswith(_TERMINAL)
        items = (_list_items(lines, i, bullets_only=not _is_list_intro(last))
                 if _is_list_intro(last) or unfinished else [])
        if items:
            units.append("\n".join([last, *(f"- {item}" for item in items)]))
            i += len(items)
        else:
            units.append(last)
    return units


def _overlap(tokens: set[str], question: set[str]) -> int:
    """Question tokens found in a sentence; stems that extend each other count ("treat" and
    "treatment" are separate Snowball stems, 高血压 and 高血压病 separate jieba words)."""
    def found(q: str) -> bool:
        return any(t == q or (min(len(t), len(q)) >= _PREFIX_MIN[t.isascii()]
                              and (t.startswith(q) or q.startswith(t))) for t in tokens)
    return sum(found(q) for q in question)


def _candidates(question: str, lang: str, passages: Sequence[Passage]) -> list[_Candidate]:
    qtokens = _question_tokens(question, lang)
    out: list[_Candidate] = []
    for rank, p in enumerate(passages[:EXTRACTIVE_TOP_PASSAGES]):
        plang = p.lang if p.lang in ("zh", "en") else detect_lang(p.text)
        for position, unit in enumerate(_passage_units(_passage_body(p))):
            # Questions are headings of the source, not answers.
            tokens = _content_tokens(unit)
            if unit.endswith(("?", "？")) or len(tokens) < MIN_CONTENT_TOKENS:
                continue
            text = unit if "\n" in unit else _shorten(unit, plang)
            out.append(_Candidate(_overlap(tokens, qtokens[plang]), rank, position, text, plang))
    return out


def _pick(candidates: list[_Candidate], max_sentences: int) -> list[_Candidate]:
    # The same sentence often comes twice (two chunks of one document, duplicate Toyhom rows).
    unique: dict[str, _Candidate] = {}
    for c in sorted(candidates, key=lambda c: (c.rank, c.position)):
        unique.setdefault(_fold(c.text), c)
    candidates = list(unique.values())
    matching = [c for c in candidates if c.score > 0]
    if matching:
        best = sorted(matching, key=lambda c: (-c.score, c.rank, c.position))[:max_sentences]
    else:
        # No shared word (e.g. a Chinese question without glossary terms over English passages):
        # the retriever still ranked passage [1] first, so its opening sentences are the best bet.
        top = min(c.rank for c in candidates)
        best = [c for c in candidates if c.rank == top][: min(2, max_sentences)]
    return sorted(best, key=lambda c: (c.rank, c.position))  # reading order


def extractive_answer(question: str, lang: str, passages: Sequence[Passage],
                      prompts: PromptLibrary, max_sentences: int = 3) -> str:
    """Quote the sentences of the top passages sharing most content words with the question,
    verbatim with their [n], under a one-line intro in the question's language; sentences from
    passages in the other language come under the ``answer.extractive_other_language`` line."""
    candidates = _candidates(question, lang, passages)
    if not candidates:
        return prompts.text(lang, "answer.generation_failed")
    picked = _pick(candidates, max_sentences)
    same = [f"{c.text} [{c.rank + 1}]" for c in picked if c.lang == lang]
    other = [f"{c.text} [{c.rank + 1}]" for c in picked if c.lang != lang]
    blocks = []
    if same:
        blocks.append("\n".join([prompts.text(lang, "answer.extractive_intro"), *same]))
    if other:
        blocks.append("\n".join([prompts.text(lang, "answer.extractive_other_language"), *other]))
    return "\n\n".join(blocks)


def no_evidence_answer(lang: str, prompts: PromptLibrary) -> str:
    return prompts.text(lang, "answer.no_evidence")


def is_no_evidence_reply(text: str, lang: str, prompts: PromptLibrary) -> bool:
    """The model followed the system prompt and said it has no reliable source ("I have no
    reliable source for this; please see a clinician." / "没有可靠的资料来源，建议就医。").
    Recognised by its words, compared with the ``answer.no_evidence`` message, so no phrase list
    lives in code. Such a reply must not be replaced by quotes of passages it found irrelevant."""
    words = _content_tokens(text)
    if not words or len(words) > NO_EVIDENCE_MAX_WORDS or is_degenerate(text, lang):
        return False
    message = _content_tokens(no_evidence_answer(lang, prompts))
    return len(words & message) / len(words) >= NO_EVIDENCE_WORD_SHARE


def render_sources(citations: Sequence[Citation], lang: str, prompts: PromptLibrary) -> str:
    """A plain-text source list for the CLI: heading, then "[n] title (source) url" lines."""
    if not citations:
        return ""
    lines = [prompts.text(lang, "answer.sources_heading")]
    for c in citations:
        detail = " ".join(part for part in (f"({c.source})" if c.source else "", c.url) if part)
        lines.append(f"[{c.n}] {c.title} {detail}".rstrip())
    return "\n".join(lines)


# --- the whole pipeline ----------------------------------------------------------------------


def _citations(text: str, passages: Sequence[Passage]) -> list[Citation]:
    out = []
    for n in find_citations(text):
        if 1 <= n <= len(passages):
            p = passages[n - 1]
            out.append(Citation(n=n, doc_id=p.doc_id, title=p.title, url=p.url, source=p.source))
    return out


def _prompt_templates(lang: str, prompts: PromptLibrary) -> list[str]:
    """The system and user prompt texts the model saw, to recognise lines it copies. Optional:
    a library without them (tests, other deployments) just skips that check."""
    out = []
    for name in PROMPT_TEMPLATES:
        try:
            out.append(prompts.template(lang, name))
        except PromptError:
            continue
    return out


def finalise(raw: str, lang: str, passages: Sequence[Passage], prompts: PromptLibrary,
             question: str, disclaimer: bool = True) -> Answer:
    """Raw model output -> the answer a patient sees.

    Order matters: echoed prompt scaffolding goes first; markers are cleaned next (a dose
    sentence removed later may take its marker with it, and citations are read from the final
    text); an honest "no reliable source" reply is recognised before copied instructions are
    removed (it is one of them), and sentences restating the patient's question after them (flag
    "question_echo"); doses are checked before validation (an answer left empty by
    dose removal falls back); then sentences the passages they cite do not support are removed
    (flag "unsupported_removed"); validation runs on the body without notes.
    With no passages at all, or when the model itself says it has no reliable source (and cites
    nothing), the answer is the no-evidence message (flag "no_evidence"); it carries its own
    advice to see a doctor, so the disclaimer is not added to it.
    """
    if not passages:
        return Answer(no_evidence_answer(lang, prompts), lang, [], ["no_evidence"])
    flags: list[str] = []
    text, echoed = strip_prompt_echo(raw or "", passages)
    text, kept, removed = clean_citations(text, len(passages))
    if removed:
        flags.append("citations_removed")
    # Before removing copied instructions: "没有可靠的资料来源，建议就医" is both the honest reply
    # the system prompt asks for and a copy of the system prompt.
    if not kept and is_no_evidence_reply(text, lang, prompts):
        # The model judged the passages irrelevant: say so in our words, quote nothing.
        echo = ["prompt_echo"] if echoed else []
        return Answer(no_evidence_answer(lang, prompts), lang, [], [*echo, *flags, "no_evidence"])
    text, copied = strip_prompt_echo(text, passages, _prompt_templates(lang, prompts))
    if echoed or copied:
        flags.insert(0, "prompt_echo")
    text, restated = strip_question_echo(text, question, lang)
    if restated:
        flags.append("question_echo")
    text, doses = _remove_dose_sentences(text, passages)
    if doses:
        flags.append("dose_removed")
    problems = validate(text, lang, passages)
    if not problems:  # a wrong-language or looping answer falls back for that reason, first
        text, unsupported = remove_unsupported_sentences(text, passages, lang)
        if unsupported:
            flags.append("unsupported_removed")
            problems = validate(text, lang, passages)
    if problems:
        text, fallback_flags = _fallback(question, lang, passages, prompts, problems)
        flags += fallback_flags
    elif doses:
        text = f"{text}\n\n{prompts.text(lang, 'answer.dose_removed')}"
    citations = _citations(text, passages)
    if disclaimer:
        text = f"{text}\n\n{prompts.text(lang, 'answer.disclaimer')}"
    return Answer(text=text, lang=lang, citations=citations, flags=flags,
                  extractive=bool(problems))


def _fallback(question: str, lang: str, passages: Sequence[Passage], prompts: PromptLibrary,
              problems: list[str]) -> tuple[str, list[str]]:
    """The extractive answer that replaces a failed one, and the flags saying why."""
    text = extractive_answer(question, lang, passages, prompts)
    flags = ["fallback_extractive", *problems]
    if not find_citations(text):
        flags.append("generation_failed")  # nothing to quote: the apology message
    return text, flags
