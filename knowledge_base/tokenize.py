"""Tokenisation for BM25: jieba (search mode) for Chinese runs, lower-cased Snowball-stemmed words
for Latin runs, stop words out. One tokenizer serves both languages and mixed text, so a query
like "我的 HbA1c 偏高" matches both sides.

Also the bilingual glossary used for cross-lingual query expansion.
"""

from __future__ import annotations

import logging
import re
import threading
from functools import lru_cache
from importlib import resources

from knowledge_base.text import CJK_CLASS, CJK_RUN

# Bump when tokenisation changes: the builder stores tokens per chunk and reuses them only while
# this version matches.
TOKENIZER_VERSION = "jieba-search+snowball-en/1"

_RUNS = re.compile(rf"[{CJK_CLASS}]+|[A-Za-z0-9][A-Za-z0-9'\-]*")
_CJK_RUN = CJK_RUN
_jieba_lock = threading.Lock()


def _read_resource_lines(name: str) -> list[str]:
    text = resources.files("knowledge_base.resources").joinpath(name).read_text(encoding="utf-8")
    return [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]


@lru_cache(maxsize=1)
def _stopwords() -> frozenset[str]:
    return frozenset(_read_resource_lines("stopwords_en.txt") + _read_resource_lines("stopwords_zh.txt"))


@lru_cache(maxsize=1)
def _stemmer():
    import snowballstemmer

    return snowballstemmer.stemmer("english")


# Snowball in pure Python costs ~20 us a word; a corpus repeats a vocabulary of ~100k words
# millions of times, so a word -> stem memo makes tokenising the default corpus ~30x faster.
@lru_cache(maxsize=500_000)
def _stem(word: str) -> str:
    return _stemmer().stemWord(word)


@lru_cache(maxsize=1)
def _jieba():
    import jieba

    with _jieba_lock:
        jieba.setLogLevel(logging.WARNING)  # it prints "Building prefix dict" banners otherwise
        jieba.initialize()
        # Medical terms from the glossary, so e.g. 糖化血红蛋白 stays one token as well as its parts.
        for zh_terms, _ in glossary():
            for term in zh_terms:
                if len(term) >= 2:
                    jieba.add_word(term, freq=2000)
    return jieba


def tokenize(text: str) -> list[str]:
    stop = _stopwords()
    out: list[str] = []
    for run in _RUNS.findall(text):
        if _CJK_RUN.fullmatch(run):
            out.extend(t for t in _jieba().cut_for_search(run) if t not in stop)
        else:
            word = run.lower().strip("'-")
            if word and word not in stop:
                out.append(_stem(word))
    return out


@lru_cache(maxsize=1)
def glossary() -> tuple[tuple[tuple[str, ...], tuple[str, ...]], ...]:
    """Rows of (Chinese terms, English terms) from ``resources/glossary_zh_en.tsv``."""
    rows = []
    for line in _read_resource_lines("glossary_zh_en.tsv")[1:]:  # first line is the header
        parts = line.split("\t")
        if len(parts) != 2:
            continue
        zh = tuple(t.strip() for t in parts[0].split("|") if t.strip())
        en = tuple(t.strip() for t in parts[1].split("|") if t.strip())
        if zh and en:
            rows.append((zh, en))
    return tuple(rows)


@lru_cache(maxsize=1)
def _en_patterns() -> list[tuple[re.Pattern[str], tuple[str, ...]]]:
    pats = []
    for zh, en in glossary():
        for term in en:
            pats.append((re.compile(rf"\b{re.escape(term.lower())}\b"), zh))
    return pats


def translate_terms(text: str, lang: str) -> list[str]:
    """Glossary terms of the other language found in ``text`` (zh text -> English terms and back).
    Longest Chinese matches win, so 2型糖尿病 does not also add the terms of 糖尿病 twice."""
    found: list[str] = []
    if lang == "zh":
        matched_spans: list[tuple[int, int]] = []
        entries = sorted(((z, en) for zh, en in glossary() for z in zh), key=lambda e: -len(e[0]))
        for term, en in entries:
            start = text.find(term)
            while start != -1:
                end = start + len(term)
                if not any(s <= start and end <= e for s, e in matched_spans):
                    matched_spans.append((start, end))
                    found.extend(en)
                    break
                start = text.find(term, start + 1)
    else:
        lowered = text.lower()
        for pattern, zh in _en_patterns():
            if pattern.search(lowered):
                found.extend(zh)
    return list(dict.fromkeys(found))  # de-duplicated, order kept
