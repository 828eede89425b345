"""The trained classifier on disk and in memory: two linear heads (intent, emotion) over
``[embedding ⊕ hashed n-grams]``, temperature-scaled, with a confidence threshold each.

Directory layout (``data/models/classifier/``, written by ``medchat train classifier``)::

    config.json      format version, encoder, n-gram settings, per head: labels, temperature,
                     threshold, dense scale, class-bias offsets; training command and data
    weights.npz      <head>.w_dense (dim x C), <head>.w_sparse (hash_dim x C, float16), <head>.bias
    metrics.json     dev figures of this very model
    MODEL_CARD.md    training data, licences, intended use, figures

Inference is numpy only: ``logits = s * E @ Wd + Σ_j v_j Ws[j] + b``, then softmax(logits / T).
"""

from __future__ import annotations

import dataclasses
import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from chatbot.classifier.features import NGramConfig, hashed
from chatbot.classifier.labels import FALLBACK, Kind
from chatbot.errors import MedChatError

FORMAT_VERSION = 1
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "weights.npz"
TRAIN_HINT = ("train it with: medchat train classifier --out data/models/classifier "
              "(or run without it: MEDCHAT_CLASSIFIER__ENABLED=false)")
HEADS: tuple[Kind, ...] = ("intent", "emotion")


class ModelError(MedChatError):
    """The classifier model directory is missing, incomplete or corrupt."""


@dataclass
class Head:
    """One linear softmax head. ``threshold``: below this calibrated probability the prediction is
    the head's fallback label (``other`` / ``neutral``)."""

    kind: Kind
    labels: list[str]
    w_dense: np.ndarray
    w_sparse: np.ndarray
    bias: np.ndarray
    temperature: float = 1.0
    threshold: float = 0.0
    dense_scale: float = 1.0

    def __post_init__(self) -> None:
        c = len(self.labels)
        if c < 2 or len(set(self.labels)) != c:
            raise ModelError(f"{self.kind} head needs two or more distinct labels, got {self.labels}",
                             hint=TRAIN_HINT)
        if self.w_dense.ndim != 2 or self.w_dense.shape[1] != c or self.w_sparse.ndim != 2 \
                or self.w_sparse.shape[1] != c or self.bias.shape != (c,):
            raise ModelError(f"{self.kind} head weights do not match its {c} labels "
                             f"(dense {self.w_dense.shape}, sparse {self.w_sparse.shape}, "
                             f"bias {self.bias.shape})", hint=TRAIN_HINT)
        if not self.temperature > 0:
            raise ModelError(f"{self.kind} head temperature must be > 0, got {self.temperature}",
                             hint=TRAIN_HINT)
        if not 0.0 <= self.threshold < 1.0:
            raise ModelError(f"{self.kind} head threshold must be in [0, 1), got {self.threshold}",
                             hint=TRAIN_HINT)
        if FALLBACK[self.kind] not in self.labels:
            raise ModelError(f"{self.kind} head lacks its fallback label {FALLBACK[self.kind]!r}",
                             hint=TRAIN_HINT)
        self.w_dense = np.ascontiguousarray(self.w_dense, dtype=np.float32)
        self.bias = np.asarray(self.bias, dtype=np.float32)

    @property
    def fallback(self) -> str:
        return FALLBACK[self.kind]

    def logits(self, dense: np.ndarray, sparse: list[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
        out = self.dense_scale * (dense @ self.w_dense) + self.bias
        for row, (idx, val) in enumerate(sparse):
            if idx.size:
                out[row] += val @ self.w_sparse[idx].astype(np.float32)
        return out

    def proba(self, dense: np.ndarray, sparse: list[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
        return softmax(self.logits(dense, sparse) / self.temperature)

    def decide(self, probs: np.ndarray, threshold: float | None = None) -> tuple[str, float]:
        """Label and score of one probability row: the top class, or the fallback label with
        its own probability when the top class is less sure than the threshold."""
        t = self.threshold if threshold is None else threshold
        top = int(np.argmax(probs))
        if probs[top] < t:
            return self.fallback, float(probs[self.labels.index(self.fallback)])
        return self.labels[top], float(probs[top])


def softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


@dataclass
class ClassifierModel:
    encoder: str  # embedder name for knowledge_base.embedders.make_embedder
    dim: int
    ngrams: NGramConfig
    heads: dict[str, Head]
    meta: dict = field(default_factory=dict)

    def features(self, texts: list[str], embedder) -> tuple[np.ndarray, list]:
        from chatbot.classifier.features import MAX_CHARS

        dense = embedder.encode([t[:MAX_CHARS] for t in texts])
        if dense.shape[1] != self.dim:
            raise ModelError(f"encoder {embedder.name!r} gives {dense.shape[1]}-d vectors; "
                             f"the model was trained on {self.dim}-d {self.encoder!r}",
                             hint=TRAIN_HINT)
        return dense, [hashed(t, self.ngrams) for t in texts]

    # -- disk ------------------------------------------------------------------------------
    def save(self, out_dir: Path) -> None:
        out_dir.mkdir(parents=True, exist_ok=True)
        arrays = {}
        heads_cfg = {}
        for name, h in self.heads.items():
            arrays[f"{name}.w_dense"] = h.w_dense.astype(np.float32)
            # float16 halves the file; the logits change by < 1e-3 (weights are O(1)).
            arrays[f"{name}.w_sparse"] = h.w_sparse.astype(np.float16)
            arrays[f"{name}.bias"] = h.bias.astype(np.float32)
            heads_cfg[name] = {"labels": h.labels, "temperature": h.temperature,
                               "threshold": h.threshold, "dense_scale": h.dense_scale}
        tmp = out_dir / (WEIGHTS_FILE + ".tmp.npz")
        np.savez_compressed(tmp, **arrays)
        tmp.replace(out_dir / WEIGHTS_FILE)
        config = {"format_version": FORMAT_VERSION, "encoder": self.encoder, "dim": self.dim,
                  "ngrams": dataclasses.asdict(self.ngrams),
                  "heads": heads_cfg, **self.meta}
        (out_dir / CONFIG_FILE).write_text(json.dumps(config, ensure_ascii=False, indent=2) + "\n",
                                           encoding="utf-8")

    @classmethod
    def load(cls, model_dir: Path) -> "ClassifierModel":
        model_dir = Path(model_dir)
        cfg, arrays = read_artifact(model_dir, FORMAT_VERSION, ModelError, "classifier", TRAIN_HINT)
        try:
            ngram = NGramConfig(**cfg["ngrams"])
            heads = {}
            for name in HEADS:
                hc = cfg["heads"][name]
                heads[name] = Head(kind=name, labels=list(hc["labels"]),
                                   w_dense=arrays[f"{name}.w_dense"],
                                   w_sparse=arrays[f"{name}.w_sparse"], bias=arrays[f"{name}.bias"],
                                   temperature=float(hc["temperature"]),
                                   threshold=float(hc["threshold"]),
                                   dense_scale=float(hc.get("dense_scale", 1.0)))
                if heads[name].w_sparse.shape[0] != ngram.hash_dim:
                    raise ModelError(f"{name} sparse weights have {heads[name].w_sparse.shape[0]} rows, "
                                     f"config says hash_dim {ngram.hash_dim}", hint=TRAIN_HINT)
            meta = {k: v for k, v in cfg.items()
                    if k not in ("format_version", "encoder", "dim", "ngrams", "heads")}
            return cls(encoder=str(cfg["encoder"]), dim=int(cfg["dim"]), ngrams=ngram,
                       heads=heads, meta=meta)
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelError(f"incomplete classifier model in {model_dir}: {exc!r}", hint=TRAIN_HINT) from exc


def read_artifact(model_dir: Path, format_version: int, error: type[MedChatError], what: str,
                  hint: str) -> tuple[dict, dict[str, np.ndarray]]:
    """(config.json, weights.npz arrays) of a saved numpy model (the classifier, the emergency
    detector), every failure raised as ``error`` with the operator's ``hint``."""
    cfg_path, w_path = model_dir / CONFIG_FILE, model_dir / WEIGHTS_FILE
    for p in (cfg_path, w_path):
        if not p.is_file():
            raise error(f"no {what} model at {model_dir} ({p.name} missing)", hint=hint)
    try:
        cfg = json.loads(cfg_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise error(f"corrupt {what} config {cfg_path}: {exc}", hint=hint) from exc
    if not isinstance(cfg, dict) or cfg.get("format_version") != format_version:
        raise error(f"{cfg_path} is not a format-{format_version} {what} config", hint=hint)
    try:
        with np.load(w_path, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        # what np.load raises for truncated, non-zip or non-npy content
        raise error(f"corrupt {what} weights {w_path}: {exc}", hint=hint) from exc
    return cfg, arrays
