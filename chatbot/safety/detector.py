"""The meaning-based emergency detector: the second net beside the red-flag lexicon.

A message becomes ``[USE-multilingual embedding ⊕ hashed n-grams]`` (the classifier's features,
``chatbot.classifier.features``) and one logistic-regression head gives P(emergency); a second
softmax head names the likeliest red-flag category (it picks the fixed escalation message and
the safety question). Two fixed thresholds, saved with the model and recorded in every logged
event with the model's version:

- score >= ``threshold_high``: an emergency (OR-combined with the lexicon: either one escalates);
- ``threshold_low`` <= score < ``threshold_high``: unsure, the chat asks one fixed bilingual
  safety question before any generation;
- below: clear.

Deterministic: numpy inference over fixed weights, one thread; the same text always gives the
same score. Trained by ``medchat train safety`` (``finetune.safety``).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from chatbot.classifier.features import MAX_CHARS, NGramConfig, hashed
from chatbot.classifier.model import CONFIG_FILE, WEIGHTS_FILE, read_artifact
from chatbot.classifier.runtime import LazyEncoderModel
from chatbot.errors import MedChatError
from knowledge_base.text import CJK_CLASS

Band = Literal["emergency", "ask", "clear"]
# Below this many content units (Latin words + CJK characters) the detector cannot escalate on
# its own: short chit-chat ("bye", "hi there") scored like farewells and greetings-cum-questions.
MIN_CONTENT_UNITS = 3
_UNITS = re.compile(rf"[{CJK_CLASS}]|[A-Za-z0-9]+")


def content_units(text: str) -> int:
    return len(_UNITS.findall(text))
FORMAT_VERSION = 1
TRAIN_HINT = "train it with `medchat train safety`, or set safety.detector_dir to an empty value to use the lexicon alone"


class DetectorError(MedChatError):
    """The emergency detector's model is missing or broken."""


@dataclass(frozen=True)
class Detection:
    score: float
    band: Band
    category: str          # likeliest red-flag category (a rules category id)
    version: str           # the model's version string
    threshold_high: float
    threshold_low: float

    def to_json(self) -> dict:
        return {"score": round(self.score, 4), "band": self.band, "category": self.category,
                "version": self.version, "threshold_high": self.threshold_high,
                "threshold_low": self.threshold_low}


@dataclass
class DetectorModel:
    encoder: str
    dim: int
    ngrams: NGramConfig
    w_dense: np.ndarray      # (dim,)
    w_sparse: np.ndarray     # (hash_dim,)
    bias: float
    categories: list[str]
    c_dense: np.ndarray      # (dim, C)
    c_sparse: np.ndarray     # (hash_dim, C)
    c_bias: np.ndarray       # (C,)
    threshold_high: float
    threshold_low: float
    version: str
    meta: dict

    def __post_init__(self) -> None:
        if not 0.0 < self.threshold_low <= self.threshold_high < 1.0:
            raise DetectorError(f"detector thresholds must satisfy 0 < low <= high < 1, got "
                                f"{self.threshold_low}, {self.threshold_high}", hint=TRAIN_HINT)
        if self.w_dense.shape != (self.dim,) or self.w_sparse.shape != (self.ngrams.hash_dim,):
            raise DetectorError("detector weights do not match its config", hint=TRAIN_HINT)
        if self.c_dense.shape != (self.dim, len(self.categories)) or self.c_bias.shape != (len(self.categories),):
            raise DetectorError("detector category head does not match its categories", hint=TRAIN_HINT)

    def save(self, out_dir: Path) -> None:
        out_dir.mkdir(parents=True, exist_ok=True)
        tmp = out_dir / (WEIGHTS_FILE + ".tmp.npz")
        # float16 sparse weights halve the file; scores move by < 1e-3 (weights are O(1)).
        np.savez_compressed(tmp, w_dense=self.w_dense.astype(np.float32), w_sparse=self.w_sparse.astype(np.float16),
                            bias=np.array([self.bias], dtype=np.float32), c_dense=self.c_dense.astype(np.float32),
                            c_sparse=self.c_sparse.astype(np.float16), c_bias=self.c_bias.astype(np.float32))
        tmp.replace(out_dir / WEIGHTS_FILE)
        cfg = {"format_version": FORMAT_VERSION, "version": self.version, "encoder": self.encoder, "dim": self.dim,
               "ngrams": self.ngrams.__dict__, "categories": self.categories,
               "threshold_high": self.threshold_high, "threshold_low": self.threshold_low, **self.meta}
        (out_dir / CONFIG_FILE).write_text(json.dumps(cfg, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, model_dir: Path) -> "DetectorModel":
        cfg, a = read_artifact(Path(model_dir), FORMAT_VERSION, DetectorError, "emergency detector", TRAIN_HINT)
        try:
            known = {"format_version", "version", "encoder", "dim", "ngrams", "categories",
                     "threshold_high", "threshold_low"}
            return cls(encoder=str(cfg["encoder"]), dim=int(cfg["dim"]), ngrams=NGramConfig(**cfg["ngrams"]),
                       w_dense=a["w_dense"], w_sparse=a["w_sparse"].astype(np.float32), bias=float(a["bias"][0]),
                       categories=list(cfg["categories"]), c_dense=a["c_dense"],
                       c_sparse=a["c_sparse"].astype(np.float32), c_bias=a["c_bias"],
                       threshold_high=float(cfg["threshold_high"]), threshold_low=float(cfg["threshold_low"]),
                       version=str(cfg["version"]), meta={k: v for k, v in cfg.items() if k not in known})
        except (KeyError, TypeError, ValueError) as exc:
            raise DetectorError(f"incomplete emergency detector in {model_dir}: {exc!r}", hint=TRAIN_HINT) from exc

    def scores(self, dense: np.ndarray, sparse: tuple[np.ndarray, np.ndarray]) -> tuple[float, str]:
        """(P(emergency), likeliest category) of one message's features."""
        idx, val = sparse
        z = float(dense @ self.w_dense) + self.bias + (float(val @ self.w_sparse[idx]) if idx.size else 0.0)
        c = dense @ self.c_dense + self.c_bias + (val @ self.c_sparse[idx] if idx.size else 0.0)
        return float(1.0 / (1.0 + np.exp(-z))), self.categories[int(np.argmax(c))]


class EmergencyDetector(LazyEncoderModel):
    """Lazy: construction reads nothing; the model and its encoder load on :meth:`warm_up` or
    the first message."""

    def _load_model(self) -> DetectorModel:
        return DetectorModel.load(self.model_dir)

    def detect(self, text: str) -> Detection:
        m = self.model
        text = (text or "")[:MAX_CHARS]
        if not text.strip():
            return Detection(0.0, "clear", m.categories[0], m.version, m.threshold_high, m.threshold_low)
        dense = self._embedder.encode([text])[0]
        score, category = m.scores(dense, hashed(text, m.ngrams))
        band: Band = ("emergency" if score >= m.threshold_high else
                      "ask" if score >= m.threshold_low else "clear")
        if content_units(text) < MIN_CONTENT_UNITS:
            # "bye", "hi there", "ok": too little text for meaning to outweigh the surface; the
            # lexicon still screens it, and the detector at most asks, when it is sure.
            band = "ask" if band == "emergency" else "clear"
        return Detection(score, band, category, m.version, m.threshold_high, m.threshold_low)
