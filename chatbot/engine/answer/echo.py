"""What a base model echoes instead of answering: chat-template tokens, passage fences and
headers, the passages' stored questions, sentences copied from the prompt's instructions, and
sentences restating the patient's question."""

from __future__ import annotations

import re
from collections.abc import Sequence

from chatbot.engine.answer.checks import ngrams
from chatbot.engine.answer.citations import strip_markers
from chatbot.engine.answer.sentences import drop_spans, fold, sentence_spans, tidy
from knowledge_base.records import Passage
from knowledge_base.text import detect_lang

# What chatbot.engine.answer re-exports.
__all__ = ["strip_prompt_echo", "strip_question_echo"]

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
        rest = fold(header.group(2))
        for p in passages:
            title = fold(p.title or p.doc_id)
            if title and rest.startswith(title) and len(rest) - len(title) <= len(p.source) + 4:
                return True
    folded = fold(line)
    return any(p.question and folded == fold(p.question) for p in passages)


def _template_grams(templates: Sequence[str]) -> set[tuple[str, ...]]:
    grams: set[tuple[str, ...]] = set()
    for template in templates:
        body = re.sub(r"\{[a-z_]+\}", "\n", template)
        grams.update(ngrams(body, "zh", ECHO_NGRAM))
        grams.update(ngrams(body, "en", ECHO_NGRAM))
    return grams


def _is_instruction_echo(sentence: str, template_grams: set[tuple[str, ...]]) -> bool:
    """A sentence copied from the prompt's own instructions, possibly remixed ("每句话后面用 [1]、[2]
    等标注出处。" from SmolLM2-135M): most of its n-grams occur in a template."""
    body = _PLACEHOLDER_MARKER.sub("", sentence)
    grams = ngrams(body, detect_lang(body), ECHO_NGRAM)
    return bool(grams) and sum(g in template_grams for g in grams) / len(grams) >= ECHO_GRAM_SHARE


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
    return tidy(drop_spans(cleaned, copied)), True


def _letters(text: str) -> str:
    """Words and CJK characters only: "糖尿病早期有哪些症状[2]。" -> "糖尿病早期有哪些症状"."""
    return re.sub(r"[\W_]+", "", strip_markers(text)).casefold()


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
    return tidy(drop_spans(text, drop)), True
