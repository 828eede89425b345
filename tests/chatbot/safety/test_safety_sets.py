"""The shipped safety sets as a regression guard: every emergency in the dev set and the four
(now tuning) held-back sets is caught, and false alarms stay at or under the 5 % target."""

from __future__ import annotations

import pytest

from chatbot.safety import RedFlagScreen
from chatbot.safety.evaluation import read_cases, run_safety_eval
from chatbot.settings import PROJECT_ROOT, SafetySettings

SETS = ["safety_dev.jsonl", "safety_holdout.jsonl", "safety_holdout2.jsonl", "safety_holdout3.jsonl",
        "safety_holdout4.jsonl"]


@pytest.mark.parametrize("name", SETS)
def test_safety_set_recall_and_false_alarms(name):
    path = PROJECT_ROOT / "data" / "eval" / name
    report = run_safety_eval(RedFlagScreen(SafetySettings()), path)
    assert report["misses"] == [], f"missed emergencies in {name}: {report['misses'][:5]}"
    assert report["false_alarm_rate"] <= 0.05, report["false_alarm_cases"][:5]


def test_sets_cover_both_languages_and_every_category():
    cases = [c for name in SETS for c in read_cases(PROJECT_ROOT / "data" / "eval" / name)]
    assert {c["lang"] for c in cases} == {"zh", "en"}
    categories = {c.get("category") for c in cases if c["expect"] == "emergency"}
    assert {"cardiac", "stroke", "breathing", "bleeding", "anaphylaxis", "seizure", "consciousness",
            "poisoning", "self_harm", "obstetric", "infant_fever", "sepsis", "abdominal",
            "carbon_monoxide", "trauma"} <= categories
    assert len({c["text"] for c in cases}) == len(cases), "a message appears twice across the sets"
