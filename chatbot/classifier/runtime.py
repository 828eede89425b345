"""``TrainedClassifier``: the engine's ``chatbot.protocols.Classifier`` backed by the trained heads.

Lazy: constructing it reads nothing; the model and its encoder load on :meth:`warm_up` or the
first message. Every message gets a label; input that carries no words (empty, emoji or
punctuation only) gets the fallback labels with their probability, which is low by construction.
"""

from __future__ import annotations

import re
import threading
from pathlib import Path
from typing import Sequence

import numpy as np

from chatbot.classifier.features import MAX_CHARS
from chatbot.classifier.labels import FALLBACK
from chatbot.classifier.model import HEADS, ClassifierModel
from chatbot.protocols import Label, Understanding
from knowledge_base.text import CJK_CLASS

_WORDS = re.compile(rf"[\w{CJK_CLASS}]", re.UNICODE)


class _LastText:
    """An embedder that remembers its last single text: the red-flag detector and the classifier
    embed the same message one after the other, and the second call should cost nothing."""

    def __init__(self, embedder) -> None:
        self._inner = embedder
        self.name, self._last = embedder.name, None

    @property
    def dim(self) -> int:
        return self._inner.dim

    def warm_up(self) -> None:
        self._inner.warm_up()

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        last = self._last  # one read: another thread may replace it meanwhile
        if len(texts) == 1 and last is not None and last[0] == texts[0]:
            return last[1]
        out = self._inner.encode(texts)
        if len(texts) == 1:
            self._last = (texts[0], out)
        return out


class EncoderPool:
    """Sentence encoders by name, loaded once and shared by every model that names them (the
    app gives one pool to the classifier and the emergency detector: one USE model in memory and
    one encoding per message)."""

    def __init__(self, threads: int = 1) -> None:
        self.threads = threads
        self._encoders: dict[str, _LastText] = {}
        self._lock = threading.Lock()

    def __call__(self, name: str):
        with self._lock:
            if name not in self._encoders:
                from knowledge_base.embedders import make_embedder

                self._encoders[name] = _LastText(make_embedder(name, threads=self.threads))
            return self._encoders[name]


class LazyEncoderModel:
    """A numpy model over sentence embeddings that loads itself, and its encoder, on
    :meth:`warm_up` or first use (thread-safe, idempotent). Subclasses say how to read the
    model (``_load_model``); the model names its encoder (``.encoder``), which comes from
    ``encoders`` (an :class:`EncoderPool`) when one is given."""

    def __init__(self, model_dir: str | Path, *, embedder=None, threads: int = 1,
                 encoders: EncoderPool | None = None) -> None:
        self.model_dir = Path(model_dir)
        self._embedder = embedder
        self._encoders = encoders
        # One thread: a single short message is too small for BLAS to split, and the other core
        # stays free for retrieval and generation (query embedding measured 3 ms vs 220 ms).
        self.threads = threads
        self._model = None
        self._lock = threading.Lock()

    def _load_model(self):
        raise NotImplementedError

    def warm_up(self) -> None:
        if self._model is not None:
            return
        with self._lock:
            if self._model is not None:
                return
            model = self._load_model()
            if self._embedder is None:
                self._embedder = (self._encoders or EncoderPool(self.threads))(model.encoder)
            self._embedder.warm_up()
            self._model = model

    @property
    def model(self):
        self.warm_up()
        assert self._model is not None
        return self._model


class TrainedClassifier(LazyEncoderModel):
    name = "trained"

    def __init__(self, model_dir: str | Path, *, embedder=None, intent_threshold: float | None = None,
                 emotion_threshold: float | None = None, threads: int = 1,
                 encoders: EncoderPool | None = None) -> None:
        super().__init__(model_dir, embedder=embedder, threads=threads, encoders=encoders)
        # None = the threshold chosen at training time (config.json)
        self._thresholds = {"intent": intent_threshold, "emotion": emotion_threshold}

    def _load_model(self) -> ClassifierModel:
        return ClassifierModel.load(self.model_dir)

    def labels(self, kind: str) -> list[str]:
        return list(self.model.heads[kind].labels)

    # -- inference -------------------------------------------------------------------------
    def classify(self, text: str, lang: str = "") -> Understanding:
        return self.classify_many([text])[0]

    def classify_many(self, texts: Sequence[str], restrict: dict[str, Sequence[str]] | None = None
                      ) -> list[Understanding]:
        """Labels for each text. ``restrict`` (kind -> allowed labels) limits a head's choice,
        renormalising the probabilities (evaluation on datasets with fewer classes)."""
        probs = self.probabilities(texts)
        out = []
        for i, text in enumerate(texts):
            labels = {}
            for kind in HEADS:
                labels[kind] = self._decide(kind, probs[kind][i], has_words=bool(_WORDS.search(text or "")),
                                            allowed=(restrict or {}).get(kind))
            out.append(Understanding(intent=labels["intent"], emotion=labels["emotion"]))
        return out

    def probabilities(self, texts: Sequence[str]) -> dict[str, np.ndarray]:
        """Calibrated probabilities per head, rows in ``texts`` order."""
        model = self.model
        cleaned = [(t or "")[: MAX_CHARS * 2] for t in texts]
        if not cleaned:
            return {k: np.zeros((0, len(h.labels))) for k, h in model.heads.items()}
        dense, sparse = model.features([t if t.strip() else " " for t in cleaned], self._embedder)
        return {kind: head.proba(dense, sparse) for kind, head in model.heads.items()}

    def _decide(self, kind: str, p: np.ndarray, has_words: bool, allowed: Sequence[str] | None) -> Label:
        head = self.model.heads[kind]
        if allowed is not None:
            mask = np.array([l in allowed for l in head.labels], dtype=float)
            if mask.any():
                p = p * mask
                p = p / max(p.sum(), 1e-12)
        if not has_words:
            # No words, no request: the fallback label with its own (low) probability.
            return Label(FALLBACK[kind], round(float(p[head.labels.index(FALLBACK[kind])]), 4))
        label, score = head.decide(p, self._thresholds.get(kind))
        return Label(label, round(score, 4))
