"""PNG plots for the evaluation report: recall@k curves, confusion matrices, histograms, bars.

matplotlib is imported lazily with the non-interactive Agg backend: the chat path never pays for
it and a headless machine never needs a display.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only; no display on servers and CI
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    _pyplot().close(fig)
    return path


def line_chart(series: Mapping[str, Sequence[float]], path: Path, *, title: str, xlabel: str,
               ylabel: str, x: Sequence[float] | None = None, ylim: tuple[float, float] | None = (0, 1)) -> Path:
    """One line per series (e.g. recall@k for k = 1..10 per method, or a loss curve)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    for label, values in series.items():
        xs = list(x) if x is not None else list(range(1, len(values) + 1))
        ax.plot(xs[: len(values)], list(values), marker="o" if len(values) <= 20 else None,
                markersize=3, label=label)
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if ylim:
        ax.set_ylim(*ylim)
    ax.grid(alpha=0.3)
    if len(series) > 1:
        ax.legend(fontsize=8)
    return _save(fig, path)


def confusion_matrix(matrix: Sequence[Sequence[int]], labels: Sequence[str], path: Path, *,
                     title: str, xlabel: str = "predicted", ylabel: str = "expected") -> Path:
    """Counts with each row's share as colour, so small classes stay readable."""
    import numpy as np

    plt = _pyplot()
    counts = np.asarray(matrix, dtype=float)
    shares = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    size = max(4.0, 0.55 * len(labels) + 2)
    fig, ax = plt.subplots(figsize=(size, size * 0.85))
    ax.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(labels)), labels=list(labels), rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(len(labels)), labels=list(labels), fontsize=8)
    for i in range(counts.shape[0]):
        for j in range(counts.shape[1]):
            if counts[i, j]:
                ax.text(j, i, int(counts[i, j]), ha="center", va="center", fontsize=7,
                        color="white" if shares[i, j] > 0.6 else "black")
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    return _save(fig, path)


def histogram(values: Sequence[float], path: Path, *, title: str, xlabel: str, bins: int = 20) -> Path:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.hist(list(values), bins=bins, color="#4477aa")
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("count")
    ax.grid(alpha=0.3)
    return _save(fig, path)


def bar_chart(values: Mapping[str, float], path: Path, *, title: str, ylabel: str,
              ylim: tuple[float, float] | None = (0, 1)) -> Path:
    """One bar per key (e.g. per-class F1)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(max(5.0, 0.45 * len(values) + 2), 3.8))
    ax.bar(list(values), list(values.values()), color="#4477aa")
    ax.set_title(title)
    ax.set_ylabel(ylabel)
    if ylim:
        ax.set_ylim(*ylim)
    ax.tick_params(axis="x", rotation=45, labelsize=8)
    ax.grid(axis="y", alpha=0.3)
    return _save(fig, path)
