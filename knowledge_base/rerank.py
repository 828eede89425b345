"""Optional reranking of the fused candidates (setting ``retrieval.reranker``).

- ``bi-encoder:<embedder>``: cosine between the query and each full passage under a second
  embedder, e.g. ``bi-encoder:minilm`` (offline, English-strong: MedQuAD question -> answer recall@5
  0.90 for all-MiniLM vs 0.56 for USE on long passages).
- ``cross-encoder:<HF id or local path>``: a sentence-transformers CrossEncoder (e.g. a multilingual
  MS MARCO model on a GPU machine); needs the model locally or network access.
"""

from __future__ import annotations

import numpy as np

from knowledge_base.embedders import Embedder, make_embedder
from knowledge_base.errors import EmbedderError
from knowledge_base.records import Passage


class BiEncoderReranker:
    def __init__(self, embedder: Embedder) -> None:
        self.embedder = embedder
        self.name = f"bi-encoder:{embedder.name}"

    def rerank(self, query: str, passages: list[Passage]) -> list[float]:
        if not passages:
            return []
        vectors = self.embedder.encode([query] + [p.text for p in passages])
        return [float(s) for s in vectors[1:] @ vectors[0]]


class CrossEncoderReranker:
    def __init__(self, model: str, device: str = "cpu") -> None:
        self.model_ref = model
        self.name = f"cross-encoder:{model}"
        self.device = device
        self._model = None

    def warm_up(self) -> None:
        if self._model is None:
            from sentence_transformers import CrossEncoder

            try:
                self._model = CrossEncoder(self.model_ref, device=self.device)
            except (OSError, ValueError) as exc:
                raise EmbedderError(f"cannot load cross-encoder {self.model_ref!r}: {exc}",
                                    hint="give a local model directory") from exc

    def rerank(self, query: str, passages: list[Passage]) -> list[float]:
        self.warm_up()
        if not passages:
            return []
        scores = self._model.predict([(query, p.text) for p in passages], show_progress_bar=False)
        return [float(s) for s in np.asarray(scores).ravel()]


def make_reranker(spec: str):
    kind, _, ref = spec.partition(":")
    if kind == "bi-encoder" and ref:
        return BiEncoderReranker(make_embedder(ref))
    if kind == "cross-encoder" and ref:
        return CrossEncoderReranker(ref)
    raise EmbedderError(f"unknown reranker {spec!r}",
                        hint="use none, bi-encoder:<embedder name> or cross-encoder:<path>")
