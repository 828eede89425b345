"""``medchat train safety``: fit the emergency detector (``chatbot.safety.detector``).

Features are the classifier's (USE-multilingual ⊕ hashed n-grams). The emergency head is a
class-balanced logistic regression; the category head a multinomial one over the emergency rows,
their categories mapped onto the red-flag rules' categories (``CATEGORY_MAP``). The thresholds
are fixed in the config, not tuned per run, so that a retrained model keeps its meaning; the
5-fold cross-validated figures at those thresholds go into ``metrics.json`` beside the model.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from chatbot.classifier.features import NGramConfig, hashed
from chatbot.safety.detector import DetectorModel
from chatbot.settings import DATA_DIR, project_relative
from finetune.safety.data import (SHARED_DATA, Example, answer_dev_examples, classifier_examples, real_ordinary,
                                  written_examples)

# Helper-written categories -> the rules' categories (whose fixed escalation messages exist).
CATEGORY_MAP = {
    "choking": "breathing", "drowning": "breathing", "pe": "breathing", "aortic": "cardiac",
    "overdose": "poisoning", "burns": "trauma", "eye": "trauma", "heat_stroke": "consciousness",
    "diabetic": "consciousness", "testicular": "abdominal", "infant_child": "infant_fever",
    "mental_health_crisis": "self_harm", "dehydration": "infant_fever", "meningitis": "sepsis",
}
RULE_CATEGORIES = ("breathing", "cardiac", "consciousness", "anaphylaxis", "bleeding", "stroke", "seizure",
                   "self_harm", "poisoning", "carbon_monoxide", "trauma", "obstetric", "infant_fever",
                   "sepsis", "abdominal")


@dataclass
class SafetyTrainConfig:
    out: Path = field(default=DATA_DIR / "models" / "emergency", metadata={"help": "output model directory"})
    shared_data: Path = field(default=SHARED_DATA, metadata={"help": "../shared/data (real ordinary questions)"})
    cache: Path | None = field(default=DATA_DIR / "cache" / "safety" / "embeddings.sqlite",
                               metadata={"help": "embedding cache (None: no cache)"})
    real_per_pool: int = field(default=1500, metadata={
        "help": "real ordinary questions per pool (MedQuAD, KUAKE-QIC train, Toyhom, ChatDoctor) from the "
                "training half; the other half measures false alarms"})
    measure_per_pool: int = field(default=2000, metadata={"help": "real questions per pool to measure on"})
    c: float = field(default=4.0, metadata={"help": "inverse regularisation of the emergency head (CV: 1 / 4 / 16 "
                                                     "gave recall 0.966 / 0.960 / 0.954, hard false alarms "
                                                     "0.22 / 0.15 / 0.12 at 0.5)"})
    # High 0.7 / low 0.3: cross-validated with the lexicon, 0.965 of emergencies escalate directly and
    # 0.995 escalate or get the safety question; hard negatives: 13.6 % escalate, 13 % are asked.
    threshold_high: float = field(default=0.7, metadata={"help": "P(emergency) at or above which the detector escalates"})
    threshold_low: float = field(default=0.3, metadata={"help": "P(emergency) at or above which the chat asks the safety question"})
    cv_folds: int = field(default=5, metadata={"help": "folds for the metrics.json figures (0: skip)"})
    ngrams: NGramConfig = field(default_factory=lambda: NGramConfig(hash_dim=1 << 16, cjk_max_n=3, word_max_n=2,
                                                                    latin_char_max_n=5))

    def __post_init__(self) -> None:
        if not 0.0 < self.threshold_low <= self.threshold_high < 1.0:
            raise ValueError("thresholds must satisfy 0 < threshold_low <= threshold_high < 1")
        if self.c <= 0 or self.real_per_pool < 0 or self.cv_folds == 1:
            raise ValueError("c must be > 0, real_per_pool >= 0 and cv_folds 0 or >= 2")


def _design(dense: np.ndarray, texts: list[str], ngram: NGramConfig):
    import scipy.sparse as sp

    rows, cols, vals = [], [], []
    for i, t in enumerate(texts):
        idx, val = hashed(t, ngram)
        rows.extend([i] * len(idx)); cols.extend(idx.tolist()); vals.extend(val.tolist())
    sparse = sp.csr_matrix((vals, (rows, cols)), shape=(len(texts), ngram.hash_dim), dtype=np.float32)
    return sp.hstack([sp.csr_matrix(dense), sparse]).tocsr()


def _emergency_head(c: float):
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=c, max_iter=3000, class_weight="balanced")


def _cross_validate(X, y: np.ndarray, lexicon: np.ndarray, hard: np.ndarray, cfg: SafetyTrainConfig) -> dict:
    from sklearn.model_selection import StratifiedKFold

    oof = np.zeros(len(y))
    for tr, te in StratifiedKFold(cfg.cv_folds, shuffle=True, random_state=0).split(X, y):
        oof[te] = _emergency_head(cfg.c).fit(X[tr], y[tr]).predict_proba(X[te])[:, 1]
    esc = lexicon | (oof >= cfg.threshold_high)
    ask = ~esc & (oof >= cfg.threshold_low)
    return {"folds": cfg.cv_folds, "recall": round(float(esc[y].mean()), 4),
            "recall_with_question": round(float((esc | ask)[y].mean()), 4),
            "lexicon_recall": round(float(lexicon[y].mean()), 4),
            "hard_negative_false_alarm_rate": round(float(esc[hard].mean()), 4),
            "hard_negative_question_rate": round(float(ask[hard].mean()), 4)}


def train_detector(cfg: SafetyTrainConfig, *, embedder=None, screen=None,
                   log: Callable[[str], None] = print) -> dict:
    """Fit, measure, save; returns the metrics written to ``metrics.json``."""
    from finetune.classifier.data import encode_cached
    from knowledge_base.embedders import make_embedder

    started = time.time()
    embedder = embedder or make_embedder("use-multilingual", threads=0)
    written = written_examples()
    # Real questions the lexicon flags are ambiguous (true emergencies or lexicon false alarms):
    # they are neither taught as ordinary nor counted as measured false alarms of the detector.
    real = [e for e in real_ordinary("train", cfg.real_per_pool, cfg.shared_data) + classifier_examples()
            + answer_dev_examples() if screen is None or not screen.screen(e.text, e.lang).emergency]
    examples: list[Example] = written + real
    texts = [e.text for e in examples]
    log(f"{len(written)} written examples, {len(real)} real ordinary questions")
    X = _design(encode_cached(texts, embedder, cfg.cache, log=log), texts, cfg.ngrams)
    y = np.array([e.emergency for e in examples])
    head = _emergency_head(cfg.c).fit(X, y)
    cat_idx = np.flatnonzero(y)
    cats = [CATEGORY_MAP.get(examples[i].category, examples[i].category) for i in cat_idx]
    cats = [c if c in RULE_CATEGORIES else "consciousness" for c in cats]
    from sklearn.linear_model import LogisticRegression

    cat_head = LogisticRegression(C=4.0, max_iter=3000).fit(X[cat_idx], cats)
    model = _to_model(head, cat_head, cfg, embedder)
    metrics = _measure(model, cfg, X, y, examples, embedder, screen, encode_cached)
    metrics["train_seconds"] = round(time.time() - started, 1)
    model.meta = {"metrics": metrics, "training": _config_json(cfg),
                  "trained_on": {"written": len(written), "real_ordinary": len(real),
                                 "emergencies": int(y.sum())}}
    model.save(cfg.out)
    log(json.dumps(metrics, indent=2))
    return metrics


def _to_model(head, cat_head, cfg: SafetyTrainConfig, embedder) -> DetectorModel:
    dim = embedder.dim
    w = head.coef_[0].astype(np.float32)
    cw = cat_head.coef_.T.astype(np.float32)
    digest = hashlib.sha256(w.tobytes() + cw.tobytes()).hexdigest()[:8]
    return DetectorModel(encoder=embedder.name, dim=dim, ngrams=cfg.ngrams, w_dense=w[:dim],
                         w_sparse=w[dim:], bias=float(head.intercept_[0]), categories=list(cat_head.classes_),
                         c_dense=cw[:dim], c_sparse=cw[dim:], c_bias=cat_head.intercept_.astype(np.float32),
                         threshold_high=cfg.threshold_high, threshold_low=cfg.threshold_low,
                         version=f"emergency-lr-{digest}", meta={})


def _measure(model: DetectorModel, cfg: SafetyTrainConfig, X, y, examples, embedder, screen, encode_cached) -> dict:
    out: dict = {}
    hard = np.array([not e.emergency and e.source not in ("medquad", "kuake", "toyhom", "chatdoctor",
                                                           "classifier_examples", "answer_dev") for e in examples])
    if cfg.cv_folds and screen is not None:
        lex = np.array([screen.screen(e.text, e.lang).emergency for e in examples])
        out["cross_validated"] = _cross_validate(X, y, lex, hard, cfg)
    measure = real_ordinary("measure", cfg.measure_per_pool, cfg.shared_data)
    if measure:
        texts = [e.text for e in measure]
        Xm = _design(encode_cached(texts, embedder, cfg.cache), texts, cfg.ngrams)
        d = Xm[:, :model.dim].toarray() @ model.w_dense + Xm[:, model.dim:] @ model.w_sparse + model.bias
        p = 1.0 / (1.0 + np.exp(-np.asarray(d).ravel()))
        out["real_ordinary_measure"] = {"n": len(measure),
                                        "detector_false_alarm_rate": round(float((p >= cfg.threshold_high).mean()), 4),
                                        "detector_question_rate": round(float(((p >= cfg.threshold_low) & (p < cfg.threshold_high)).mean()), 4)}
    return out


def _config_json(cfg: SafetyTrainConfig) -> dict:
    d = asdict(cfg)
    for k in ("out", "shared_data", "cache"):
        d[k] = project_relative(Path(d[k])) if d[k] else None
    return d
