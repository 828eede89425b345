"""Conversation helpers: the patient's language, input checks, follow-up query rewriting and the
token budget of a prompt."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Callable, Sequence

from chatbot.errors import MedChatError
from knowledge_base.records import Passage
from knowledge_base.text import CJK_CLASS, cjk_count, clean_text, detect_lang

_LATIN_WORD = re.compile(r"[A-Za-z]{2,}")
# A letter, digit or Chinese character ("___" or "-_-" is not a question; "7" may answer one).
_READABLE = re.compile(rf"[^\W_]|[{CJK_CLASS}]")
# Terminal escape sequences (a pasted coloured log, "\x1b[31m"): clean_text drops the ESC and
# would leave "[31m" to be read as text.
_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b[@-Z\\-_]")
# Lone UTF-16 surrogates (invalid UTF-8 from a terminal, broken JSON escapes) cannot be encoded
# by the tokenizers and the store: they become U+FFFD, which is data, not text.
_SURROGATE = re.compile("[\ud800-\udfff]")
# Scripts MedChat cannot answer in. Japanese is told by its kana (its kanji look Chinese).
_OTHER_SCRIPT = re.compile("[\u3040-\u30ff\u31f0-\u31ff\uac00-\ud7af\u1100-\u11ff\u0400-\u04ff"
                           "\u0590-\u05ff\u0600-\u06ff\u0750-\u077f\u0900-\u097f\u0e00-\u0e7f]")
_OWN_LETTER = re.compile(rf"[A-Za-z{CJK_CLASS}]")
_KANA = re.compile("[\u3040-\u30ff]")


class InputError(MedChatError):
    """The patient's message cannot be answered as it is. ``key`` names the bilingual message."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key


@dataclass(frozen=True)
class LanguageInfo:
    lang: str  # zh | en: the language the answer is written in
    mixed: bool  # both scripts carry real content (e.g. "我的 HbA1c 是 7.5 正常吗")


def detect_language(text: str) -> LanguageInfo:
    cjk_words = cjk_count(text) / 1.5  # as in knowledge_base.text.detect_lang
    latin = len(_LATIN_WORD.findall(text))
    # Mixed when the minority language has at least 3 words and a fifth of the majority: one
    # drug name in a Chinese sentence does not make it mixed.
    mixed = min(cjk_words, latin) >= 3 and min(cjk_words, latin) >= 0.2 * max(cjk_words, latin)
    return LanguageInfo(detect_lang(text), mixed)


def check_input(text: str, max_chars: int) -> str:
    """The message cleaned for use, or InputError (the service turns ``key`` into a bilingual
    message). Markup is left as text: it is data, never rendered by MedChat."""
    if text is None or not text.strip():
        raise InputError("input.empty", "empty message")
    if len(text) > max_chars:
        raise InputError("input.too_long", f"message of {len(text)} characters; limit {max_chars}")
    cleaned = clean_text(_SURROGATE.sub("\ufffd", _ANSI.sub("", text)))
    if not _READABLE.search(cleaned):
        raise InputError("input.unreadable", "no readable text in the message")
    other = len(_OTHER_SCRIPT.findall(cleaned))
    # Another language when its letters outnumber the Chinese and English ones (a Russian drug
    # name in an English sentence is still English); a Japanese sentence has many kanji, so
    # three kana are enough to tell it.
    own = len(_OWN_LETTER.findall(cleaned))
    kana = len(_KANA.findall(cleaned))
    if other and (other > own or kana >= 3):
        raise InputError("input.unsupported_language", "message in a language other than Chinese or English")
    return cleaned


# Strong cues: the message opens or closes like a continuation ("what about...", "那...呢").
_STRONG_EN = re.compile(r"^(and|also|what about|how about|what if|and if|same for|then)\b", re.IGNORECASE)
_STRONG_ZH = re.compile(r"^(那|那么|还有|另外|而且|要是)|呢[？?]?$")
# A pronoun standing for the topic ("Is it contagious?", "它会遗传吗？") needs the earlier turn.
# When the pronoun is idle ("Is it normal to have headaches?"), prefixing the earlier question
# costs little: the message's own words still drive BM25 and the embedding.
_WEAK_EN = re.compile(r"\b(it|this|that|they|them|those|these|the same)\b", re.IGNORECASE)
_WEAK_ZH = re.compile(r"它|这个病|这种病|该病|这病|这些|那些")


def is_follow_up(text: str, lang: str) -> bool:
    from knowledge_base.tokenize import translate_terms

    text = text.strip()
    if (_STRONG_ZH if lang == "zh" else _STRONG_EN).search(text):
        return True
    if (_WEAK_ZH if lang == "zh" else _WEAK_EN).search(text):
        return True
    # A very short message without a medical term of its own ("for kids?", "多久能好？")
    short = len(text) <= 8 if lang == "zh" else len(text.split()) <= 4
    return short and not translate_terms(text, lang)


def rewrite_query(text: str, previous_user_turns: Sequence[str], lang: str) -> str:
    """The retrieval query for ``text``: a follow-up ("what about for children?", "那孩子呢？")
    is prefixed with the earlier question that set the topic. Deterministic on purpose: a small
    LLM rewriting queries adds latency and invents topics."""
    if not previous_user_turns or not is_follow_up(text, lang):
        return text
    return f"{previous_user_turns[-1]} {text}"


@dataclass
class Budget:
    passages: list[Passage]
    history: list[tuple[str, str]]  # (role, text), oldest first
    flags: list[str] = field(default_factory=list)


def fit_budget(*, fixed_tokens: int, passages: Sequence[Passage], history: Sequence[tuple[str, str]],
               n_ctx: int, max_new_tokens: int, count: Callable[[str], int],
               passage_cap_tokens: int = 400) -> Budget:
    """Choose what fits the context window: the system prompt and the question (``fixed_tokens``)
    always; then passages in rank order (each cut to ``passage_cap_tokens``); then history from
    the newest turn back. Nothing overflows silently: what is left out is named in ``flags``."""
    room = n_ctx - max_new_tokens - fixed_tokens
    flags: list[str] = []
    kept: list[Passage] = []
    for p in passages:
        text = p.text
        cost = count(text)
        if cost > passage_cap_tokens:
            # ~chars per token from this passage's own ratio, so Chinese and English both fit
            ratio = len(text) / max(cost, 1)
            text = text[: int(passage_cap_tokens * ratio)]
            cost = count(text)
            flags.append("passage_cut")
        if cost + 16 > room:  # 16: the passage's header line
            flags.append("passages_dropped")
            break
        room -= cost + 16
        kept.append(Passage(**{**p.__dict__, "text": text}))
    kept_history: list[tuple[str, str]] = []
    for role, text in reversed(history):
        cost = count(text) + 8
        if cost > room:
            flags.append("history_truncated")
            break
        room -= cost
        kept_history.append((role, text))
    kept_history.reverse()
    return Budget(kept, kept_history, sorted(set(flags)))
