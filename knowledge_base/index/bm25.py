"""Okapi BM25 as one sparse matrix: W[doc, term] holds the document's BM25 weight for the term, so a
query is a sparse column sum. Scores stay exact BM25 and a query over 1M chunks costs a few ms."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
from scipy import sparse

from knowledge_base.errors import IndexCorruptError


class BM25Index:
    def __init__(self, weights: sparse.csc_matrix, vocab: dict[str, int], k1: float, b: float) -> None:
        self.weights = weights
        self.vocab = vocab
        self.k1 = k1
        self.b = b

    @property
    def n_docs(self) -> int:
        return self.weights.shape[0]

    @classmethod
    def build(cls, token_lists: Iterable[Sequence[str]], k1: float = 1.2, b: float = 0.75) -> "BM25Index":
        vocab: dict[str, int] = {}
        rows: list[int] = []
        cols: list[int] = []
        counts: list[int] = []
        lengths: list[int] = []
        for row, tokens in enumerate(token_lists):
            tf: dict[int, int] = {}
            for token in tokens:
                col = vocab.setdefault(token, len(vocab))
                tf[col] = tf.get(col, 0) + 1
            rows.extend([row] * len(tf))
            cols.extend(tf.keys())
            counts.extend(tf.values())
            lengths.append(len(tokens))
        n_docs = len(lengths)
        tf_m = sparse.csr_matrix((np.asarray(counts, dtype=np.float32), (rows, cols)),
                                 shape=(n_docs, max(len(vocab), 1)))
        dl = np.asarray(lengths, dtype=np.float32)
        avgdl = float(dl.mean()) if n_docs else 1.0
        df = np.bincount(tf_m.indices, minlength=tf_m.shape[1]).astype(np.float32)
        # Lucene's idf: log(1 + (N - df + .5) / (df + .5)) stays positive for very common terms.
        idf = np.log1p((n_docs - df + 0.5) / (df + 0.5)).astype(np.float32)
        norm = k1 * (1.0 - b + b * dl / max(avgdl, 1e-9))
        tf_rows = np.repeat(np.arange(n_docs), np.diff(tf_m.indptr))
        tf = tf_m.data
        tf_m.data = (idf[tf_m.indices] * tf * (k1 + 1.0) / (tf + norm[tf_rows])).astype(np.float32)
        return cls(tf_m.tocsc(), vocab, k1, b)

    def scores(self, query_tokens: Sequence[str], weights: Sequence[float] | None = None) -> np.ndarray:
        """BM25 score of every document; ``weights`` scales each query token (expansion terms)."""
        qw: dict[int, float] = {}
        for i, token in enumerate(query_tokens):
            col = self.vocab.get(token)
            if col is not None:
                qw[col] = qw.get(col, 0.0) + (weights[i] if weights is not None else 1.0)
        if not qw:
            return np.zeros(self.n_docs, dtype=np.float32)
        cols = np.fromiter(qw.keys(), dtype=np.int64)
        vec = np.fromiter(qw.values(), dtype=np.float32)
        return np.asarray(self.weights[:, cols] @ vec).ravel()

    def search(self, query_tokens: Sequence[str], k: int,
               weights: Sequence[float] | None = None) -> list[tuple[int, float]]:
        scores = self.scores(query_tokens, weights)
        positive = np.flatnonzero(scores > 0)
        if positive.size == 0:
            return []
        if positive.size > k:
            top = positive[np.argpartition(-scores[positive], k - 1)[:k]]
        else:
            top = positive
        top = top[np.argsort(-scores[top], kind="stable")]
        return [(int(i), float(scores[i])) for i in top]

    def save(self, directory: Path) -> None:
        sparse.save_npz(directory / "bm25.npz", self.weights, compressed=False)
        (directory / "bm25_vocab.json").write_text(
            json.dumps({"k1": self.k1, "b": self.b, "vocab": self.vocab}, ensure_ascii=False),
            encoding="utf-8")

    @classmethod
    def load(cls, directory: Path) -> "BM25Index":
        try:
            weights = sparse.load_npz(directory / "bm25.npz").tocsc()
            meta = json.loads((directory / "bm25_vocab.json").read_text(encoding="utf-8"))
        except (OSError, ValueError, KeyError) as exc:
            raise IndexCorruptError(f"BM25 index in {directory} is unreadable: {exc}",
                                    hint="rebuild with: medchat kb build --full") from exc
        return cls(weights, meta["vocab"], meta["k1"], meta["b"])
