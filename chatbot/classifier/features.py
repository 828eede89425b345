"""Features of one message, numpy only (no scikit-learn at chat time).

A message becomes ``[sentence embedding ⊕ hashed n-grams]``:

- the embedding (USE-multilingual by default) carries meaning across languages, so a Chinese and
  an English question of one intent land near each other;
- hashed n-grams carry the surface cues that decide KUAKE-QIC's fine classes ("怎么办" vs "是什么
  原因" vs "多少钱"): CJK characters as 1-3-grams, Latin words as uni- and bigrams (and, when
  configured, character 3-5-grams inside each Latin word), counted
  sublinearly and L2-normalised, hashed with CRC32 (deterministic across processes, unlike
  ``hash()``) into ``hash_dim`` buckets.
"""

from __future__ import annotations

import re
import unicodedata
import zlib
from dataclasses import dataclass

import numpy as np

from knowledge_base.text import CJK_CLASS

_CJK = CJK_CLASS
_TOKEN = re.compile(rf"[{_CJK}]+|[a-z0-9]+(?:'[a-z]+)?|[^\s{_CJK}a-z0-9]")
_IS_CJK = re.compile(rf"[{_CJK}]")

# The classifier reads the start of a message: intents and emotions show in the first sentences,
# and a 100,000-character paste must cost no more than a short message.
MAX_CHARS = 512


@dataclass(frozen=True)
class NGramConfig:
    hash_dim: int = 1 << 16
    cjk_max_n: int = 3
    word_max_n: int = 2
    # Character 3..n-grams inside each Latin word ("<worried>" -> "<wo", "wor", …, "ied>"): they
    # read misspellings, elongations ("sooo") and word families (annoy/annoying/annoyed) that whole
    # words miss; about +3 points of GoEmotions dev macro-F1 at 5 (docs/CLASSIFIER.md). 0 turns them
    # off, which is what a model saved before the field existed gets when loaded.
    latin_char_max_n: int = 0

    def __post_init__(self) -> None:
        if self.hash_dim < 16 or self.hash_dim & (self.hash_dim - 1):
            raise ValueError(f"hash_dim must be a power of two >= 16, got {self.hash_dim}")
        if not (1 <= self.cjk_max_n <= 4 and 1 <= self.word_max_n <= 3):
            raise ValueError("cjk_max_n must be 1-4 and word_max_n 1-3")
        if self.latin_char_max_n not in (0, 3, 4, 5, 6):
            raise ValueError(f"latin_char_max_n must be 0 (off) or 3-6, got {self.latin_char_max_n}")


def normalise_text(text: str) -> str:
    """NFKC (full-width -> half-width), lower case, whitespace collapsed, cut to MAX_CHARS."""
    text = unicodedata.normalize("NFKC", text[: MAX_CHARS * 2])
    return " ".join(text.lower().split())[:MAX_CHARS]


def ngrams(text: str, cfg: NGramConfig) -> list[str]:
    """The n-gram strings of one normalised text."""
    grams: list[str] = []
    words: list[str] = []
    for tok in _TOKEN.findall(text):
        if _IS_CJK.match(tok):
            chars = tok
            for n in range(1, cfg.cjk_max_n + 1):
                grams.extend("c" + chars[i:i + n] for i in range(len(chars) - n + 1))
            words.append("<cjk>")  # breaks Latin bigrams across a Chinese run
        elif tok[0].isalnum():
            words.append(tok)
            marked = "<" + tok + ">"
            for n in range(3, cfg.latin_char_max_n + 1):
                grams.extend("l" + marked[i:i + n] for i in range(len(marked) - n + 1))
        else:
            grams.append("p" + tok)  # punctuation and emoji: "?" and "!" carry intent and tone
    for n in range(1, cfg.word_max_n + 1):
        for i in range(len(words) - n + 1):
            span = words[i:i + n]
            if "<cjk>" not in span:
                grams.append("w" + " ".join(span))
    return grams


def hashed(text: str, cfg: NGramConfig) -> tuple[np.ndarray, np.ndarray]:
    """(bucket indices, weights) of one text: sublinear counts, L2-normalised."""
    counts: dict[int, int] = {}
    for g in ngrams(normalise_text(text), cfg):
        b = zlib.crc32(g.encode("utf-8")) & (cfg.hash_dim - 1)
        counts[b] = counts.get(b, 0) + 1
    if not counts:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
    idx = np.fromiter(counts.keys(), dtype=np.int64, count=len(counts))
    val = 1.0 + np.log(np.fromiter(counts.values(), dtype=np.float32, count=len(counts)))
    return idx, (val / np.linalg.norm(val)).astype(np.float32)
