"""Every rule of data/safety/rules.yaml checked against its own examples: each ``hit`` example
must fire that rule, each ``miss`` example must not fire it. Adding a rule adds its tests."""

from __future__ import annotations

import pytest

from chatbot.safety import RedFlagScreen, load_rules
from chatbot.settings import SafetySettings

RULES = load_rules()
SCREEN = RedFlagScreen(SafetySettings())

HIT_CASES = [pytest.param(r.id, text, id=f"{r.id}+{i}") for r in RULES.rules
             for i, text in enumerate(r.hit_examples)]
MISS_CASES = [pytest.param(r.id, text, id=f"{r.id}-{i}") for r in RULES.rules
              for i, text in enumerate(r.miss_examples)]


@pytest.mark.parametrize("rule_id,text", HIT_CASES)
def test_rule_fires_on_its_hit_examples(rule_id, text):
    fired = {h.rule_id for h in SCREEN.hits(text)}
    assert rule_id in fired, f"{rule_id} did not fire on {text!r} (fired: {sorted(fired)})"


@pytest.mark.parametrize("rule_id,text", MISS_CASES)
def test_rule_stays_quiet_on_its_miss_examples(rule_id, text):
    fired = {h.rule_id for h in SCREEN.hits(text)}
    assert rule_id not in fired, f"{rule_id} fired on {text!r}"


def test_every_category_of_the_issue_has_rules():
    wanted = {"cardiac", "stroke", "breathing", "bleeding", "anaphylaxis", "seizure",
              "consciousness", "poisoning", "self_harm", "obstetric", "infant_fever", "sepsis",
              "abdominal", "carbon_monoxide", "trauma"}
    assert wanted <= {r.category for r in RULES.rules}
    assert set(RULES.categories) == wanted


def test_every_rule_has_both_languages_of_examples_or_declares_one():
    for r in RULES.rules:
        langs = {("zh" if any("\u4e00" <= c <= "\u9fff" for c in t) else "en") for t in r.hit_examples}
        expected = {"zh", "en"} if r.lang == "both" else {r.lang}
        assert expected <= langs, f"{r.id} ({r.lang}) has hit examples only in {langs}"
