"""Retrieval evaluation: recall@k, MRR@10, nDCG@10 and TREC LiveQA ``avg_score@1``.

Input (contract, see docs/CLI.md): JSONL, one question a line
``{"id", "question", "relevant": [doc_id, ...]}`` with optional ``"grades": {doc_id: 1-4}``,
``"lang"`` and ``"kind"``. Several chunks of one document count once: results are collapsed to a
ranked list of distinct documents before scoring.
"""

from __future__ import annotations

import math
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

from knowledge_base.errors import KnowledgeBaseError
from knowledge_base.evaluation.jsonl import read_jsonl
from knowledge_base.evaluation.stats import percentile  # noqa: F401  (re-exported: eval callers)
from knowledge_base.records import Passage

KS = (1, 5, 10)


class EvalFileError(KnowledgeBaseError):
    """The evaluation file is malformed."""


@dataclass(frozen=True)
class EvalQuestion:
    id: str
    question: str
    relevant: frozenset[str]
    grades: dict[str, int] = field(default_factory=dict)
    lang: str = ""
    kind: str = ""


_QUESTION_HINT = 'each line: {"id", "question", "relevant": [doc_id, ...]}'


def load_questions(path: str | Path) -> list[EvalQuestion]:
    path = Path(path)
    out: list[EvalQuestion] = []
    for lineno, row in read_jsonl(path, EvalFileError, malformed="bad question line", hint=_QUESTION_HINT):
        try:
            relevant = row.get("relevant") or []
            grades = {str(k): int(v) for k, v in (row.get("grades") or {}).items()}
            if not isinstance(row["question"], str) or not isinstance(relevant, list):
                raise TypeError("question must be a string and relevant a list")
            if not relevant and not grades:
                raise ValueError("no relevant document and no grades")
            if any(not 1 <= g <= 4 for g in grades.values()):
                raise ValueError("grades must be 1-4")
            out.append(EvalQuestion(
                id=str(row.get("id", lineno)), question=row["question"],
                # A graded answer above "Incorrect" (1) counts as relevant even if not listed.
                relevant=frozenset(map(str, relevant)) | {d for d, g in grades.items() if g >= 2},
                grades=grades, lang=str(row.get("lang", "")), kind=str(row.get("kind", ""))))
        except (KeyError, TypeError, ValueError) as exc:
            raise EvalFileError(f"{path}:{lineno}: bad question line ({exc})", hint=_QUESTION_HINT) from exc
    if not out:
        raise EvalFileError(f"{path} holds no question")
    return out


def distinct_docs(passages: Sequence[Passage]) -> list[str]:
    return list(dict.fromkeys(p.doc_id for p in passages))


def liveqa_gain(grade: int | None) -> int:
    """TREC LiveQA scoring: 4 (excellent) -> 3, 3 -> 2, 2 -> 1, 1 (incorrect) or unjudged -> 0."""
    return max(0, (grade or 1) - 1)


def score_ranking(docs: Sequence[str], q: EvalQuestion) -> dict[str, float]:
    """Metrics of one ranked list of distinct document ids for one question."""
    out: dict[str, float] = {}
    n_rel = max(len(q.relevant), 1)
    for k in KS:
        out[f"recall@{k}"] = len(set(docs[:k]) & q.relevant) / n_rel
    first = next((i for i, d in enumerate(docs[:10]) if d in q.relevant), None)
    out["mrr@10"] = 0.0 if first is None else 1.0 / (first + 1)

    def gain(d: str) -> float:
        if q.grades:
            return float(liveqa_gain(q.grades.get(d)))
        return 1.0 if d in q.relevant else 0.0

    dcg = sum(gain(d) / math.log2(i + 2) for i, d in enumerate(docs[:10]))
    ideal = sorted((gain(d) for d in q.relevant | set(q.grades)), reverse=True)[:10]
    idcg = sum(g / math.log2(i + 2) for i, g in enumerate(ideal))
    out["ndcg@10"] = dcg / idcg if idcg > 0 else 0.0
    if q.grades:
        out["avg_score@1"] = float(liveqa_gain(q.grades.get(docs[0]))) if docs else 0.0
    return out


def _mean(rows: list[dict[str, float]], key: str) -> float | None:
    values = [r[key] for r in rows if key in r]
    return round(statistics.fmean(values), 4) if values else None


def summarise(rows: list[dict[str, float]]) -> dict[str, float | int]:
    out: dict[str, float | int] = {"n": len(rows)}
    for key in [f"recall@{k}" for k in KS] + ["mrr@10", "ndcg@10", "avg_score@1"]:
        value = _mean(rows, key)
        if value is not None:
            out[key] = value
    return out


def evaluate(search: Callable[[str], Sequence[Passage]], questions: Sequence[EvalQuestion],
             per_question: bool = False) -> dict:
    """Run ``search`` (query -> passages, best first) on every question and aggregate."""
    rows: list[dict[str, float]] = []
    details = []
    latencies = []
    groups: dict[str, list[dict[str, float]]] = {}
    for q in questions:
        t0 = time.perf_counter()
        docs = distinct_docs(search(q.question))[:10]
        latencies.append((time.perf_counter() - t0) * 1000)
        metrics = score_ranking(docs, q)
        rows.append(metrics)
        for key in filter(None, (f"lang:{q.lang}" if q.lang else "", f"kind:{q.kind}" if q.kind else "")):
            groups.setdefault(key, []).append(metrics)
        if per_question:
            details.append({"id": q.id, "question": q.question, "relevant": sorted(q.relevant),
                            "retrieved": docs, **{k: round(v, 4) for k, v in metrics.items()}})
    result: dict = summarise(rows)
    if groups:
        result["groups"] = {key: summarise(rs) for key, rs in sorted(groups.items())}
    result["latency_ms"] = {"p50": round(percentile(latencies, 0.5), 2),
                            "p95": round(percentile(latencies, 0.95), 2)}
    if per_question:
        result["questions"] = details
    return result
