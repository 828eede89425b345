"""Metrics of generated answers, one row per dev-set question, and their summary.

``score_answer`` measures what the post-processing in ``chatbot.engine.answer`` is meant to guarantee
(right language, valid citations, no loops, support in the passages, honesty when nothing was
found) plus ROUGE-L against a hand-written reference. Boilerplate lines of ``answer.yaml`` (the
disclaimer, extractive intros, notes) are removed before support and ROUGE-L: they are not claims,
and the disclaimer is not in any reference.

Limitation: ``language_match`` judges the whole text, so an extractive fallback quoting English
passages for a Chinese question counts as a mismatch. That is deliberate: the patient does get
English text.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from functools import lru_cache
from statistics import median

from chatbot.engine.answer import (
    content_tokens,
    find_citations,
    is_degenerate,
    language_ok,
    repetition_rate,
    strip_markers,
    supported_share,
)
from chatbot.prompts import LANGS, PromptLibrary
from knowledge_base.text import CJK

# Reply flags that mark an honest "I cannot answer this" without the no-evidence text.
HONEST_FLAGS = frozenset({"no_evidence", "route_out_of_scope"})

_EN_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")


def _rouge_tokens(text: str, lang: str) -> list[str]:
    text = strip_markers(text)
    if lang == "zh":
        return CJK.findall(text)
    return _EN_WORD.findall(text.lower())


def _lcs_length(a: Sequence[str], b: Sequence[str]) -> int:
    if len(a) < len(b):
        a, b = b, a
    previous = [0] * (len(b) + 1)
    for x in a:
        current = [0]
        for j, y in enumerate(b, 1):
            current.append(previous[j - 1] + 1 if x == y else max(previous[j], current[j - 1]))
        previous = current
    return previous[-1]


def key_fact_recall(candidate: str, reference: str, lang: str) -> float:
    """Share of the reference's key facts found in the candidate: its content words (stemmed,
    stop words out) for English; its CJK character bigrams for Chinese, where words have no
    spaces and a bigram is the smallest unit that still carries a term (高血 压, not 高 / 压).
    Recall, not F1: a longer answer that also says more is not penalised here (ROUGE-L is)."""
    if lang == "zh":
        def units(text: str) -> set[str]:
            chars = CJK.findall(strip_markers(text))
            return {a + b for a, b in zip(chars, chars[1:])}
    else:
        units = content_tokens
    ref, cand = units(reference), units(candidate)
    return len(ref & cand) / len(ref) if ref else 0.0


def answer_length(text: str, lang: str) -> int:
    """Words (en) or CJK characters (zh) of the answer body."""
    return len(_rouge_tokens(text, lang))


def rouge_l(candidate: str, reference: str, lang: str) -> float:
    """ROUGE-L F1 (beta = 1) over lower-cased words (en) or CJK characters (zh); markers ignored."""
    cand, ref = _rouge_tokens(candidate, lang), _rouge_tokens(reference, lang)
    if not cand or not ref:
        return 0.0
    lcs = _lcs_length(cand, ref)
    if lcs == 0:
        return 0.0
    precision, recall = lcs / len(cand), lcs / len(ref)
    return 2 * precision * recall / (precision + recall)


@lru_cache(maxsize=4)
def _boilerplate(prompts: PromptLibrary) -> tuple[str, ...]:
    """Every ``answer.*`` message in both languages, longest first (so a message containing
    another is removed whole)."""
    texts = {text for lang in LANGS for key, text in prompts.messages(lang).items()
             if key.startswith("answer.") and text}
    return tuple(sorted(texts, key=len, reverse=True))


def strip_boilerplate(text: str, prompts: PromptLibrary) -> str:
    for message in _boilerplate(prompts):
        text = text.replace(message, "\n")
    return text.strip()


def _is_no_evidence(text: str, prompts: PromptLibrary) -> bool:
    return any(prompts.text(lang, "answer.no_evidence") in text for lang in LANGS)


def score_answer(*, question: str, lang: str, answer_text: str, passages_by_n: dict[int, str],
                 citations: list[int], flags: list[str], answerable: bool | None,
                 reference: str | None, latency_ms: float,
                 prompts: PromptLibrary | None = None, expect_emergency: bool | None = None) -> dict:
    """One metrics row. None means "not applicable" (``summarise`` skips it). ``expect_emergency``:
    the item is an emergency by design (its banner is then no false alarm)."""
    prompts = prompts or PromptLibrary()
    markers = list(dict.fromkeys([*find_citations(answer_text), *citations]))
    body = strip_boilerplate(answer_text, prompts)
    says_no_source = "no_evidence" in flags or _is_no_evidence(answer_text, prompts)
    if passages_by_n and not (says_no_source and not markers):
        citation_valid: int | None = int(bool(markers) and all(n in passages_by_n for n in markers))
        support: float | None = supported_share(body, passages_by_n, lang)
    else:
        # No passages, or the honest "no reliable source" reply: it claims nothing, so there is
        # nothing to cite or support (honesty is scored on its own); a marker still counts wrong.
        citation_valid = 0 if markers else None
        support = None
    honest = None
    if answerable is False:
        # An explicit out-of-scope refusal is honest too: it claims nothing and cites nothing.
        honest = int(says_no_source or bool(HONEST_FLAGS.intersection(flags)))
    return {
        "question": question,
        "lang": lang,
        "language_match": int(language_ok(answer_text, lang)),
        "citation_valid": citation_valid,
        "has_citation": int(bool(markers)),
        "fallback": int("fallback_extractive" in flags),
        "repetition": repetition_rate(answer_text, lang),
        "degenerate": int(is_degenerate(answer_text, lang)),
        "support": support,
        "honest_no_source": honest,
        # The other side of honesty: "no reliable source" on a question the corpus does answer.
        "over_refusal": int(says_no_source) if answerable is True else None,
        # An answer a patient can use: not the refusal, not an emergency banner, not a question back.
        "answered": (int(not says_no_source and not {"emergency", "safety_question"} & set(flags)
                         and not HONEST_FLAGS & set(flags)) if answerable is True else None),
        "rouge_l": (0.0 if says_no_source else rouge_l(body, reference, lang)) if reference else None,
        "key_fact_recall": (0.0 if says_no_source else key_fact_recall(body, reference, lang))
        if reference else None,
        "answer_length": 0 if says_no_source else answer_length(body, lang),
        # the red-flag banner on an ordinary question (the "Is there a sleep apnea surgery?")
        "false_emergency": None if expect_emergency else int("emergency" in flags),
        "latency_ms": float(latency_ms),
    }


def score_model_text(*, question: str, lang: str, model_text: str, passages_by_n: dict[int, str],
                     answerable: bool | None, reference: str | None, latency_ms: float,
                     prompts: PromptLibrary | None = None) -> dict:
    """The same row for what the model generated, before the engine's safeguards (cut-off and
    echo checks, unsupported-sentence removal, the quoted-passage fallback). Comparing models on
    the final reply alone hides them: a base model that always falls back scores the fallback's
    perfect support. ``fallback`` does not apply to raw text and is left out."""
    row = score_answer(question=question, lang=lang, answer_text=model_text, passages_by_n=passages_by_n,
                       citations=[], flags=[], answerable=answerable, reference=reference,
                       latency_ms=latency_ms, prompts=prompts)
    row["fallback"] = None
    row["answered"] = None  # the model's own refusal is what over_refusal counts there
    row["false_emergency"] = None  # the screen runs before the model
    row["empty"] = int(not model_text.strip())
    return row


def _is_metric(value: object) -> bool:
    return isinstance(value, (int, float))  # bools count as 0/1


def _summary(rows: Sequence[dict]) -> dict:
    keys = list(dict.fromkeys(k for row in rows for k in row))
    means: dict[str, float] = {}
    counts: dict[str, int] = {}
    for key in keys:
        values = [float(row[key]) for row in rows if key in row and row[key] is not None
                  and _is_metric(row[key])]
        if not values:
            continue
        means[key] = sum(values) / len(values)
        counts[key] = len(values)
    out: dict = {"n": len(rows), "means": means, "counts": counts}
    latencies = sorted(float(r["latency_ms"]) for r in rows if r.get("latency_ms") is not None)
    if latencies:
        # Nearest-rank p95: with 24 rows per language an interpolated value would be invented.
        p95 = latencies[max(0, math.ceil(0.95 * len(latencies)) - 1)]
        out["latency_ms"] = {"p50": median(latencies), "p95": p95, "max": latencies[-1]}
    return out


def summarise(rows: list[dict]) -> dict:
    """Means over the non-None numeric values of every key, with ``n`` (rows) and ``counts``
    (values behind each mean), overall and per language under ``by_lang``."""
    out = _summary(rows)
    langs = sorted({r["lang"] for r in rows if r.get("lang")})
    out["by_lang"] = {lang: _summary([r for r in rows if r.get("lang") == lang]) for lang in langs}
    return out


def score_baseline(*, lang: str, passage_text: str | None, reference: str | None,
                   answerable: bool | None) -> dict:
    """The "show the top retrieved passage" anchor for one question: the passage body as the
    answer (it never refuses, so it is never honest on an unanswerable question)."""
    text = passage_text or ""
    return {
        "lang": lang,
        "answered": int(bool(text.strip())) if answerable is True else None,
        "honest_no_source": 0 if answerable is False else None,
        "rouge_l": rouge_l(text, reference, lang) if reference else None,
        "key_fact_recall": key_fact_recall(text, reference, lang) if reference else None,
        "answer_length": answer_length(text, lang),
    }
