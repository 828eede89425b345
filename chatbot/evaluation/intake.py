"""``medchat eval intake FILE``: the disposition after the chat's follow-up questions against the
disposition from the first message alone (issue 17), on multi-turn cases.

A case (JSONL) is a first message and the patient's answers if asked: ``{"id", "lang",
"first_message", "age_answer", "onset_answer", "severity_answer", "warning_signs_answer",
"expected": "em"|"ne"|"sc"}``. The whole consultation service runs (red-flag screen, classifier,
retrieval, the triage engine; the LLM is the fake one: only dispositions are scored, and the
answers' text does not change them). A simulated patient answers each question the chat asks from
the case: the intake questions by their key, the red-flag screen's safety question with yes/no from
``warning_signs_answer``.

- **one message**: what the chat said before it could ask — an emergency reply, else the triage
  engine's one-line disposition of the first message; no line at all counts as wrong ("none").
- **after intake**: the same when no question is asked, else the disposition at the end.
"""

from __future__ import annotations

import json
import re
import tempfile
from pathlib import Path
from typing import Any, Callable

ORDER = {"sc": 0, "ne": 1, "em": 2}
TO_THREE = {"emergency": "em", "urgent": "ne", "routine": "ne", "self_care": "sc"}
ANSWER_OF = {"check": "warning_signs_answer", "age": "age_answer", "onset": "onset_answer",
             "severity": "severity_answer"}
MAX_TURNS = 8
_NO = re.compile(r"^\s*(no|nope|none|not really|没有|没|无|否|都没有)", re.I)


class IntakeEvalError(Exception):
    pass


def read_cases(path: Path) -> list[dict[str, Any]]:
    cases = []
    for n, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            for key in ("id", "first_message", "expected", *ANSWER_OF.values()):
                row[key]  # noqa: B018 - presence check
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise IntakeEvalError(f"{path}:{n}: not an intake case ({exc!r})") from exc
        if row["expected"] not in ORDER:
            raise IntakeEvalError(f"{path}:{n}: expected must be em, ne or sc, got {row['expected']!r}")
        cases.append(row)
    return cases


def _level(result: Any) -> str:
    if result.red_flag or "emergency" in result.flags:
        return "em"
    if result.disposition:
        return TO_THREE.get(result.disposition.get("level"), "none")
    return "none"


def run_case(service: Any, case: dict[str, Any]) -> dict[str, Any]:
    result = service.ask(case["first_message"])
    # the one-message baseline: what the chat said before it could ask (an emergency reply, else
    # the triage engine's one-line disposition of the first message)
    first = "em" if (result.red_flag or "emergency" in result.flags) else None
    if first is None:
        line = service.triage.chat_disposition(case["first_message"], result.lang) if service.triage else None
        first = TO_THREE.get((line or {}).get("level"), "none")
    session, asked = result.session_id, []
    for _ in range(MAX_TURNS):
        if result.red_flag or "emergency" in result.flags:
            break
        if result.safety_question:
            answer = "no" if _NO.match(case["warning_signs_answer"]) else "yes"
            asked.append("safety_question")
        elif result.intake and not result.intake.get("done") and result.intake.get("question"):
            key = result.intake["question"]["key"]
            answer = case[ANSWER_OF[key]]
            asked.append(key)
        else:
            break
        result = service.ask(answer, session_id=session)
    return {"id": case["id"], "lang": case.get("lang"), "expected": case["expected"], "one_message": first,
            "after_intake": _level(result), "questions": asked}


def _figures(items: list[dict], key: str) -> dict[str, Any]:
    n = len(items)
    given = [it[key] for it in items]
    expected = [it["expected"] for it in items]

    def rate(flags: list[bool]) -> float:
        return round(sum(flags) / len(flags), 4) if flags else 0.0

    rank = lambda g: ORDER.get(g, 1)  # noqa: E731 - "none" (no line) sits with "see a doctor"
    per_class = {lab: rate([g == lab for g, e in zip(given, expected) if e == lab]) for lab in ORDER}
    return {"n": n, "accuracy": rate([g == e for g, e in zip(given, expected)]),
            "emergency_recall": per_class["em"], "per_class_recall": per_class,
            "under_triage_rate": rate([rank(g) < ORDER[e] for g, e in zip(given, expected)]),
            "over_triage_rate": rate([rank(g) > ORDER[e] for g, e in zip(given, expected)]),
            "no_disposition": rate([g == "none" for g in given]),
            "errors": [{"id": it["id"], "expected": it["expected"], "given": it[key], "questions": it["questions"]}
                       for it in items if it[key] != it["expected"]]}


def evaluate_intake(cases: list[dict[str, Any]], service_factory: Callable[[Path], Any]) -> dict[str, Any]:
    """``service_factory(database)`` builds a ConsultationService on a scratch store."""
    with tempfile.TemporaryDirectory(prefix="medchat-eval-intake-") as tmp:
        service = service_factory(Path(tmp) / "intake.sqlite")
        items = [run_case(service, c) for c in cases]
    out: dict[str, Any] = {"n": len(items), "one_message": _figures(items, "one_message"),
                           "after_intake": _figures(items, "after_intake")}
    asked = [len([q for q in it["questions"] if q != "safety_question"]) for it in items]
    out["intake_rate"] = round(sum(1 for a in asked if a) / max(1, len(asked)), 4)
    out["mean_questions"] = round(sum(asked) / max(1, len(asked)), 2)
    out["by_lang"] = {lang: {"n": len(sub), "one_message": _figures(sub, "one_message")["accuracy"],
                             "after_intake": _figures(sub, "after_intake")["accuracy"]}
                      for lang in sorted({it["lang"] for it in items if it["lang"]})
                      for sub in [[it for it in items if it["lang"] == lang]]}
    out["items"] = items
    return out
