"""Typed records that flow through the knowledge base: Document -> Chunk -> Passage.

Plain dataclasses (no pydantic) so that loaders and the index stay cheap to import.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Lang = Literal["zh", "en"]


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Document:
    """One retrievable source document, as a loader yields it.

    ``question`` is set for question-answer sources (MedQuAD, Toyhom, QA CSV): the chunker keeps it
    with every chunk of the answer so that a patient's question can match the stored question.
    """

    id: str
    text: str
    title: str = ""
    url: str = ""
    source: str = ""  # collection name, e.g. "MedQuAD/GHR", "Toyhom/心血管科"
    lang: Lang = "en"
    license: str = ""
    question: str = ""
    section: str = ""  # e.g. MedQuAD qtype "treatment"; used as chunk metadata and intent hint
    path: str = ""  # file it came from (relative to the source root when known)
    extra: dict[str, Any] = field(default_factory=dict)

    def content_hash(self) -> str:
        """Hash of everything that affects chunks and their metadata (not ``path``)."""
        payload = json.dumps(
            [self.id, self.text, self.title, self.url, self.source, self.lang, self.license,
             self.question, self.section, sorted(self.extra.items())],
            ensure_ascii=False, default=str,
        )
        return sha256_text(payload)


@dataclass(frozen=True)
class Chunk:
    """A piece of a document: ``text`` is what BM25 indexes and what a reader sees;
    ``embed_text`` is what the dense embedder encodes (shorter, question first)."""

    id: str  # "{doc_id}#c{n}"
    doc_id: str
    n: int
    text: str
    embed_text: str
    title: str
    url: str
    source: str
    lang: Lang
    section: str = ""
    question: str = ""
    license: str = ""


@dataclass
class Passage:
    """A search result. ``score`` is the ranking score of the method used (RRF for hybrid);
    ``scores`` holds every component score (``dense`` cosine, ``bm25``, ``rrf``, ``rerank``)."""

    id: str  # chunk id
    doc_id: str
    text: str
    title: str
    url: str
    source: str
    lang: Lang
    score: float
    section: str = ""
    question: str = ""
    scores: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The stable ``kb search --json`` shape (fields may be added, never renamed)."""
        return {
            "doc_id": self.doc_id,
            "chunk_id": self.id,
            "title": self.title,
            "url": self.url,
            "source": self.source,
            "lang": self.lang,
            "score": round(float(self.score), 6),
            "text": self.text,
            "section": self.section,
            "scores": {k: round(float(v), 6) for k, v in self.scores.items()},
        }

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class SkippedFile:
    path: str
    reason: str
