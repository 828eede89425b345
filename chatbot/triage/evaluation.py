"""``medchat eval triage FILE``: triage accuracy on labelled vignettes.

FILE is JSONL, one vignette a line::

    {"id", "text", optional "age", "sex", "pregnant", "vitals": {"hr","sbp","rr","spo2","temp","gcs","pain"},
     "expected"}

``expected`` is a disposition (emergency | urgent | routine | self_care) or one of the three
levels of the symptom-checker literature (Semigran et al., BMJ 2015): ``em`` (emergency), ``ne``
(non-emergent: urgent or routine), ``sc`` (self-care). Each vignette is compared at the
granularity of its label. Under-triage: the engine's answer is less urgent than expected;
over-triage: more urgent.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any, Iterable

from chatbot.errors import MedChatError
from chatbot.triage.engine import TriageEngine
from chatbot.triage.models import DISPOSITIONS, Intake, InvalidIntake, Vitals
from knowledge_base.evaluation.jsonl import read_jsonl

THREE = ("em", "ne", "sc")
TO_THREE = {"emergency": "em", "urgent": "ne", "routine": "ne", "self_care": "sc"}
# lower = more urgent, per granularity
_RANK3 = {"em": 0, "ne": 1, "sc": 2}
_RANK4 = {d: i for i, d in enumerate(DISPOSITIONS)}


class TriageEvalError(MedChatError):
    """The vignette file is missing or malformed."""


def load_vignettes(path: Path) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    seen: set[str] = set()
    for n, row in read_jsonl(path, TriageEvalError):
        missing = [key for key in ("id", "text", "expected") if key not in row]
        if missing:
            raise TriageEvalError(f"{path}:{n}: missing field {missing[0]!r}",
                                  hint='each line needs "id", "text" and "expected"')
        if row["expected"] not in THREE + DISPOSITIONS:
            raise TriageEvalError(f"{path}:{n}: expected {row['expected']!r} is not one of "
                                  f"{THREE + DISPOSITIONS}")
        if str(row["id"]) in seen:
            raise TriageEvalError(f"{path}:{n}: duplicate id {row['id']!r}")
        seen.add(str(row["id"]))
        rows.append(row)
    if not rows:
        raise TriageEvalError(f"{path}: no vignettes")
    return rows


def intake_of(row: dict[str, Any]) -> Intake:
    return Intake(complaint=row["text"], age=row.get("age"), sex=row.get("sex"),
                  pregnant=row.get("pregnant"), vitals=Vitals.from_json(row.get("vitals")),
                  onset=row.get("onset"), comorbidities=tuple(row.get("comorbidities") or ()))


def _compare(expected: str, disposition: str) -> tuple[str, str, int]:
    """(expected label, given label at the same granularity, sign: <0 under-triage, >0 over)."""
    if expected in THREE:
        given = TO_THREE[disposition]
        return expected, given, _RANK3[expected] - _RANK3[given]
    return expected, disposition, _RANK4[expected] - _RANK4[disposition]


def evaluate(engine: TriageEngine, rows: Iterable[dict[str, Any]], per_item: bool = False) -> dict[str, Any]:
    items = []
    for row in rows:
        try:
            result = engine.assess(intake_of(row), lang=row.get("lang"), with_evidence=False)
        except InvalidIntake as exc:
            raise TriageEvalError(f"vignette {row['id']}: {exc.message}", exc.hint) from exc
        expected, given, sign = _compare(row["expected"], result.disposition)
        items.append({"id": row["id"], "expected": expected, "given": given,
                      "disposition": result.disposition, "acuity": result.acuity,
                      "correct": sign == 0, "under": sign < 0, "over": sign > 0,
                      "lang": result.lang, "reasons": [r.code for r in result.reasons]})
    n = len(items)
    by_class: dict[str, list[dict]] = {}
    for it in items:
        by_class.setdefault(it["expected"], []).append(it)
    emergency = [it for it in items if it["expected"] in ("em", "emergency")]
    labels = [lab for lab in (*THREE, *DISPOSITIONS) if lab in by_class or
              any(it["given"] == lab for it in items)]
    confusion = {exp: dict(Counter(it["given"] for it in by_class.get(exp, [])))
                 for exp in labels if exp in by_class}
    # The three-level matrix over every vignette (dispositions folded), the literature's view.
    confusion3 = {e: {g: 0 for g in THREE} for e in THREE}
    for it in items:
        e = it["expected"] if it["expected"] in THREE else TO_THREE[it["expected"]]
        confusion3[e][TO_THREE[it["disposition"]]] += 1

    def rate(xs: list[dict], key: str) -> float:
        return round(sum(x[key] for x in xs) / len(xs), 4) if xs else 0.0

    out: dict[str, Any] = {
        "n": n,
        "accuracy": rate(items, "correct"),
        "per_class_recall": {lab: rate(xs, "correct") for lab, xs in sorted(by_class.items())},
        "per_class_n": {lab: len(xs) for lab, xs in sorted(by_class.items())},
        "emergency_recall": rate([{"ok": it["disposition"] == "emergency"} for it in emergency], "ok")
        if emergency else None,
        "under_triage_rate": rate(items, "under"),
        "over_triage_rate": rate(items, "over"),
        "confusion": confusion,
        "confusion_3level": confusion3,
        "by_lang": {lang: {"n": len(xs), "accuracy": rate(xs, "correct")}
                    for lang, xs in sorted(_group(items, "lang").items())},
        "errors": [{k: it[k] for k in ("id", "expected", "given", "acuity", "reasons")}
                   for it in items if not it["correct"]],
    }
    if per_item:
        out["items"] = items
    return out


def _group(items: list[dict], key: str) -> dict[str, list[dict]]:
    groups: dict[str, list[dict]] = {}
    for it in items:
        groups.setdefault(it[key], []).append(it)
    return groups
