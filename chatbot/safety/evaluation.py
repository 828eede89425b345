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
    asked = sum(r["emergency"] or r["safety_question"] for r in emergencies)
    return {"n": len(rows), "emergencies": len(emergencies), "non_emergencies": len(others),
            "recall": _rate(caught, len(emergencies)),
            "false_alarm_rate": _rate(alarms, len(others)),
            "caught": caught, "false_alarms": alarms,
            # the unsure band: escalated or asked the safety question first, on emergencies;
            # asked the question, on the rest (a question is not an alarm, but it is a cost)
            "recall_with_question": _rate(asked, len(emergencies)),
            "question_rate": _rate(sum(r["safety_question"] for r in others), len(others)),
            # the simple baseline of the same run: the lexicon alone
            "baseline_lexicon": {"recall": _rate(sum(r["lexicon"] for r in emergencies), len(emergencies)),
                                 "false_alarm_rate": _rate(sum(r["lexicon"] for r in others), len(others))}}


def _detector_info(screen: RedFlagScreen) -> dict[str, Any] | None:
    if screen.detector is None:
        return None
    m = screen.detector.model
    return {"version": m.version, "threshold_high": m.threshold_high, "threshold_low": m.threshold_low,
            "model_dir": str(screen.detector.model_dir)}


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
        lexicon = bool(screen.hits(text, lang))  # the baseline: the lexicon alone, every hit escalating
        rows.append({"id": str(case["id"]), "text": text, "lang": lang, "expect": case["expect"],
                     "expected_category": case.get("category", ""),
                     "emergency": result.emergency, "categories": result.categories,
                     "rule_ids": result.rule_ids, "evidence": result.evidence,
                     "safety_question": result.safety_question is not None,
                     "lexicon": lexicon, "via": result.via,
                     "detector_score": (result.detector or {}).get("score")})
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
        "detector": _detector_info(screen),
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
            "mean_chars": round(sum(len(t) for t in texts) / max(len(texts), 1), 1),
            # the whole screen as the chat runs it: lexicon and detector (None without a detector)
            "screen_per_message_ms": _time_screen(screen, texts) if screen.detector is not None else None}


def _time_screen(screen: RedFlagScreen, texts: list[str], repeats: int = 3) -> dict[str, float]:
    per = []
    for text in texts:
        runs = []
        for _ in range(repeats):
            t = time.perf_counter()
            screen.screen(text, lang_of(text))
            runs.append((time.perf_counter() - t) * 1000)
        per.append(sorted(runs)[len(runs) // 2])
    per.sort()
    return {"mean": round(sum(per) / len(per), 3), "p50": round(per[len(per) // 2], 3),
            "p95": round(per[int(0.95 * (len(per) - 1))], 3), "max": round(per[-1], 3)}
