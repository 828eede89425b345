"""``medchat eval safety`` and ``medchat bench safety``: recall on emergencies, false-alarm rate
on the rest, the misses, and the time per message.

Input (JSONL, one message a line): ``{"id", "text", "expect": "emergency" | "not_emergency"}``
plus optional ``"category"`` (the expected category of an emergency) and ``"lang"``.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from chatbot.errors import MedChatError
from chatbot.safety.screen import RedFlagScreen
from chatbot.safety.text import lang_of
from knowledge_base.evaluation.jsonl import read_jsonl

EXPECT = ("emergency", "not_emergency")


class SafetyEvalError(MedChatError):
    """The evaluation file is missing or malformed."""


def read_cases(path: Path) -> list[dict[str, Any]]:
    cases, seen = [], set()
    for n, row in read_jsonl(path, SafetyEvalError):
        if not isinstance(row.get("text"), str) or "id" not in row:
            raise SafetyEvalError(f"{path}:{n}: each line needs \"id\" and \"text\"",
                                  hint='{"id": "...", "text": "...", "expect": "emergency"}')
        if row.get("expect") not in EXPECT:
            raise SafetyEvalError(f"{path}:{n}: expect must be one of {EXPECT}, got {row.get('expect')!r}")
        if str(row["id"]) in seen:
            raise SafetyEvalError(f"{path}:{n}: id {row['id']!r} is used twice")
        seen.add(str(row["id"]))
        cases.append(row)
    if not cases:
        raise SafetyEvalError(f"{path} has no cases")
    return cases


def _rate(num: int, den: int) -> float | None:
    return round(num / den, 4) if den else None


def _summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    emergencies = [r for r in rows if r["expect"] == "emergency"]
    others = [r for r in rows if r["expect"] == "not_emergency"]
    caught = sum(r["emergency"] for r in emergencies)
    alarms = sum(r["emergency"] for r in others)
    return {"n": len(rows), "emergencies": len(emergencies), "non_emergencies": len(others),
            "recall": _rate(caught, len(emergencies)),
            "false_alarm_rate": _rate(alarms, len(others)),
            "caught": caught, "false_alarms": alarms}


def run_safety_eval(screen: RedFlagScreen, path: Path) -> dict[str, Any]:
    """Screen every case; JSON shape documented in docs/CLI.md (a contract: add, don't rename)."""
    cases = read_cases(path)
    screen.warm_up()
    rows, times = [], []
    for case in cases:
        text = case["text"]
        lang = case.get("lang") or lang_of(text)
        t0 = time.perf_counter()
        result = screen.screen(text, lang)
        times.append((time.perf_counter() - t0) * 1000)
        rows.append({"id": str(case["id"]), "text": text, "lang": lang, "expect": case["expect"],
                     "expected_category": case.get("category", ""),
                     "emergency": result.emergency, "categories": result.categories,
                     "rule_ids": result.rule_ids, "evidence": result.evidence})
    summary = _summary(rows)
    by_lang = {lang: _summary([r for r in rows if r["lang"] == lang])
               for lang in sorted({r["lang"] for r in rows})}
    by_category: dict[str, dict[str, Any]] = {}
    for cat in sorted({r["expected_category"] for r in rows if r["expect"] == "emergency" and r["expected_category"]}):
        mine = [r for r in rows if r["expect"] == "emergency" and r["expected_category"] == cat]
        by_category[cat] = {"n": len(mine), "recall": _rate(sum(r["emergency"] for r in mine), len(mine)),
                            "category_match": _rate(sum(cat in r["categories"] for r in mine), len(mine))}
    ordered = sorted(times)
    return {
        "file": str(path), "rules_file": str(screen.rules.path), "rules": len(screen.rules.rules),
        **summary, "by_lang": by_lang, "by_category": by_category,
        "misses": [{"id": r["id"], "text": r["text"]} for r in rows
                   if r["expect"] == "emergency" and not r["emergency"]],
        "false_alarm_cases": [{"id": r["id"], "text": r["text"], "categories": r["categories"],
                               "rule_ids": r["rule_ids"], "evidence": r["evidence"]}
                              for r in rows if r["expect"] == "not_emergency" and r["emergency"]],
        "timing_ms": {"mean": round(sum(times) / len(times), 3),
                      "p95": round(ordered[int(0.95 * (len(ordered) - 1))], 3),
                      "max": round(ordered[-1], 3)},
        "results": rows,
    }


def run_safety_bench(screen: RedFlagScreen, texts: list[str], repeats: int = 20) -> dict[str, Any]:
    """Time ``hits`` per message over ``repeats`` passes (rules compiled beforehand).
    ``per_message_ms`` summarises each message's median time; ``all_runs_ms`` every run."""
    t0 = time.perf_counter()
    screen.warm_up()
    load_ms = (time.perf_counter() - t0) * 1000
    runs: list[list[float]] = [[] for _ in texts]
    for _ in range(repeats):
        for i, text in enumerate(texts):
            t = time.perf_counter()
            screen.hits(text)
            runs[i].append((time.perf_counter() - t) * 1000)
    # each message's median over the passes: robust to the scheduler pauses of a shared machine
    per = sorted(sorted(r)[len(r) // 2] for r in runs)
    raw = sorted(x for r in runs for x in r)
    return {"messages": len(texts), "repeats": repeats, "rules": len(screen.rules.rules),
            "load_ms": round(load_ms, 1),
            "per_message_ms": {"mean": round(sum(per) / len(per), 4),
                               "p50": round(per[len(per) // 2], 4),
                               "p95": round(per[int(0.95 * (len(per) - 1))], 4),
                               "max": round(per[-1], 4)},
            "all_runs_ms": {"mean": round(sum(raw) / len(raw), 4),
                            "p95": round(raw[int(0.95 * (len(raw) - 1))], 4),
                            "max": round(raw[-1], 4)},
            "mean_chars": round(sum(len(t) for t in texts) / max(len(texts), 1), 1)}
