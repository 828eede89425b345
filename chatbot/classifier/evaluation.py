"""``medchat eval intent|emotion FILE``: accuracy, macro-F1, per-class F1 and a confusion matrix.

FILE is JSONL ``{"text", "label"}``; a label is a project key or a source dataset's own name
(KUAKE-QIC Chinese names, EWECT names, GoEmotions Ekman names; ``labels.normalise_label``).

Protocol (docs/CLASSIFIER.md): by default predictions are made *within the file's label set* —
a KUAKE-QIC file has no ``greeting`` class and EWECT has no ``disgust``, so the model's choice is
restricted to the classes the file can contain (``restrict=False`` scores the raw predictions).
Macro-F1 averages over the classes present in the gold labels.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from chatbot.classifier.labels import Kind, normalise_label
from chatbot.errors import MedChatError
from knowledge_base.evaluation.jsonl import read_jsonl


class EvalFileError(MedChatError):
    """An evaluation file is missing or has a malformed row."""


_ROW = "expected a JSON object with 'text' and 'label'"


def read_eval_file(path: Path, kind: Kind) -> tuple[list[str], list[str]]:
    texts, labels = [], []
    for n, row in read_jsonl(path, EvalFileError, malformed=_ROW):
        try:
            text, label = row["text"], row["label"]
        except KeyError as exc:
            raise EvalFileError(f"{path}:{n}: {_ROW}",
                                hint=f"got {json.dumps(row, ensure_ascii=False)[:80]!r} ({exc!r})") from exc
        texts.append(str(text))
        labels.append(normalise_label(kind, label))
    if not texts:
        raise EvalFileError(f"{path} has no rows", hint='one JSON object per line: {"text": ..., "label": ...}')
    return texts, labels


@dataclass
class Scores:
    labels: list[str]          # rows/columns of the confusion matrix
    accuracy: float
    macro_f1: float
    per_class: dict[str, dict[str, float]]
    confusion: list[list[int]]  # [gold][predicted]
    n: int

    def to_json(self) -> dict:
        return {"n": self.n, "accuracy": round(self.accuracy, 4), "macro_f1": round(self.macro_f1, 4),
                "per_class": self.per_class, "labels": self.labels, "confusion": self.confusion}


def score(gold: Sequence[str], pred: Sequence[str], label_order: Sequence[str] | None = None) -> Scores:
    if len(gold) != len(pred) or not gold:
        raise ValueError("gold and pred must be non-empty and of equal length")
    present = set(gold) | set(pred)
    labels = [l for l in (label_order or []) if l in present] + sorted(present - set(label_order or []))
    pos = {l: i for i, l in enumerate(labels)}
    cm = np.zeros((len(labels), len(labels)), dtype=np.int64)
    for g, p in zip(gold, pred):
        cm[pos[g], pos[p]] += 1
    per = {}
    f1s = []
    for l, i in pos.items():
        tp = cm[i, i]
        support = int(cm[i].sum())
        predicted = int(cm[:, i].sum())
        prec = tp / predicted if predicted else 0.0
        rec = tp / support if support else 0.0
        f1 = 2 * prec * rec / (prec + rec) if prec + rec else 0.0
        per[l] = {"precision": round(float(prec), 4), "recall": round(float(rec), 4),
                  "f1": round(float(f1), 4), "support": support}
        if support:  # macro over the gold classes
            f1s.append(f1)
    return Scores(labels=labels, accuracy=float(np.trace(cm) / cm.sum()),
                  macro_f1=float(np.mean(f1s)), per_class=per, confusion=cm.tolist(), n=len(gold))


def plot_report(scores: Scores, out_dir: Path, name: str, title: str) -> list[Path]:
    """Confusion matrix (row-normalised, counts in cells) and per-class F1 bars as PNG."""
    try:
        import matplotlib

        matplotlib.use("Agg")  # files only, never a window
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise EvalFileError("writing the report images needs matplotlib", hint="pip install matplotlib") from exc
    from matplotlib import font_manager

    out_dir.mkdir(parents=True, exist_ok=True)
    _use_cjk_font(font_manager, plt)
    cm = np.asarray(scores.confusion, dtype=float)
    norm = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    k = len(scores.labels)
    fig, ax = plt.subplots(figsize=(1.0 + 0.62 * k, 0.8 + 0.55 * k), dpi=110)
    ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(k), scores.labels, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(k), scores.labels, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("gold")
    for i in range(k):
        for j in range(k):
            if cm[i, j]:
                ax.text(j, i, int(cm[i, j]), ha="center", va="center", fontsize=7,
                        color="white" if norm[i, j] > 0.5 else "black")
    ax.set_title(f"{title}\nacc {scores.accuracy:.3f} · macro-F1 {scores.macro_f1:.3f} · n {scores.n}", fontsize=9)
    fig.tight_layout()
    cm_path = out_dir / f"{name}_confusion.png"
    fig.savefig(cm_path)
    plt.close(fig)

    gold_labels = [l for l in scores.labels if scores.per_class[l]["support"]]
    f1 = [scores.per_class[l]["f1"] for l in gold_labels]
    fig, ax = plt.subplots(figsize=(1.5 + 0.5 * len(gold_labels), 3.2), dpi=110)
    ax.bar(range(len(f1)), f1, color="#4a7ab5")
    ax.axhline(scores.macro_f1, color="#c0392b", linestyle="--", linewidth=1, label=f"macro-F1 {scores.macro_f1:.3f}")
    ax.set_xticks(range(len(f1)), gold_labels, rotation=45, ha="right", fontsize=8)
    ax.set_ylim(0, 1)
    ax.set_ylabel("F1")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    f1_path = out_dir / f"{name}_f1.png"
    fig.savefig(f1_path)
    plt.close(fig)
    return [cm_path, f1_path]


def _use_cjk_font(font_manager, plt) -> None:
    """Labels are ASCII keys; titles may hold file names in Chinese. Use a CJK font when one is
    installed so they do not render as boxes (none is required)."""
    for name in ("Noto Sans CJK SC", "WenQuanYi Zen Hei", "Source Han Sans SC", "SimHei"):
        if any(f.name == name for f in font_manager.fontManager.ttflist):
            plt.rcParams["font.sans-serif"] = [name, "DejaVu Sans"]
            return


def evaluate_file(classifier, kind: Kind, path: Path, *, report_dir: Path | None = None,
                  restrict: bool = True) -> dict:
    """Score ``classifier`` (a ``TrainedClassifier``) on one JSONL file; the ``eval intent|emotion
    --json`` output. Messages are classified one by one, so the latency is per message."""
    import time

    texts, gold = read_eval_file(path, kind)
    classifier.warm_up()  # loading is not per-message latency
    model_labels = classifier.labels(kind)
    unknown = sorted(set(gold) - set(model_labels))
    if unknown:
        raise EvalFileError(f"{path}: labels the model cannot predict: {', '.join(unknown)}",
                            hint=f"the {kind} head knows: {', '.join(model_labels)}")
    allowed = sorted(set(gold)) if restrict and set(gold) != set(model_labels) else None
    pred, times = [], []
    for text in texts:
        t0 = time.perf_counter()
        u = classifier.classify_many([text], restrict={kind: allowed} if allowed else None)[0]
        times.append((time.perf_counter() - t0) * 1000)
        pred.append((u.intent if kind == "intent" else u.emotion).label)
    scores = score(gold, pred, model_labels)
    out = {"kind": kind, "file": str(path), **scores.to_json(),
           "restricted_to": allowed or [],
           "latency_ms": {"p50": round(float(np.percentile(times, 50)), 2),
                          "p95": round(float(np.percentile(times, 95)), 2)},
           "report": []}
    if report_dir is not None:
        title = f"{kind} · {Path(path).name}"
        out["report"] = [str(p) for p in plot_report(scores, Path(report_dir), f"{kind}_{Path(path).stem}", title)]
    return out
