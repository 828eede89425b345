"""The triage vignette files: shape, balance, label sources, and the engine's figures on them
(with the real red-flag screen). Dev and holdout figures are documented in docs/TRIAGE.md; these
floors catch regressions (the targets of the issue: emergency recall 100 %, accuracy >= 80 %)."""

import json
import re
from collections import Counter

import pytest

from chatbot.app import make_triage_engine
from chatbot.settings import load_settings
from chatbot.triage.evaluation import evaluate, load_vignettes
from chatbot.triage.rules import load_rules
from knowledge_base.paths import PROJECT_ROOT

EVAL = PROJECT_ROOT / "data" / "eval"
FILES = {"triage_dev.jsonl": 120, "triage_holdout.jsonl": 45, "triage_holdout2.jsonl": 45,
         "triage_holdout3.jsonl": 45, "triage_holdout4.jsonl": 45, "triage_holdout5.jsonl": 45,
         "triage_holdout6.jsonl": 45}


@pytest.fixture(scope="module")
def engine():
    return make_triage_engine(load_settings())


@pytest.mark.parametrize("name,minimum", FILES.items())
def test_vignette_files_are_balanced_bilingual_and_sourced(name, minimum):
    rows = load_vignettes(EVAL / name)
    assert len(rows) >= minimum
    levels = Counter(r["expected"] for r in rows)
    assert set(levels) == {"em", "ne", "sc"} and min(levels.values()) >= minimum // 3
    langs = Counter("zh" if re.search(r"[\u4e00-\u9fff]", r["text"]) else "en" for r in rows)
    assert langs["zh"] >= 0.2 * len(rows) and langs["en"] >= 0.2 * len(rows)
    assert all(len(r.get("source", "")) > 20 for r in rows), "every label names its guidance"


def test_dev_and_holdout_texts_do_not_overlap():
    texts = {}
    for name in FILES:
        for line in (EVAL / name).read_text(encoding="utf-8").splitlines():
            if line.strip():
                texts.setdefault(json.loads(line)["text"], set()).add(name)
    assert not [t for t, files in texts.items() if len(files) > 1]


@pytest.mark.parametrize("name", FILES)
def test_engine_meets_the_targets_on_the_vignettes(engine, name):
    result = evaluate(engine, load_vignettes(EVAL / name))
    assert result["emergency_recall"] == 1.0, result["errors"]
    assert result["accuracy"] >= 0.9, result["errors"]


def test_every_red_flag_category_of_the_screen_is_mapped():
    from chatbot.safety import load_rules as safety_rules

    mapped = set(load_rules().modifiers["red_flags"])
    assert set(safety_rules().categories) <= mapped


def test_real_screen_hits_become_reasons(engine):
    from chatbot.triage import Intake

    result = engine.assess(Intake("我爸胸口压榨样疼，出冷汗"), with_evidence=False)
    assert result.disposition == "emergency"
    assert result.red_flags and result.red_flags[0]["category"] == "cardiac"
    assert any(r.kind == "red_flag" and r.acuity <= 2 for r in result.reasons)
    calm = engine.assess(Intake("runny nose for two days"), with_evidence=False)
    assert calm.red_flags == [] and not calm.warnings


def test_blind_round_7_after_its_fixes_keeps_its_floor(engine):
    # Round 7 (written outside the project) scored 0.667 / em recall 0.74 at freeze (docs/TRIAGE.md);
    # these are floors on it as tuning data now, not a claim about unseen text (round 8 is that).
    rows = load_vignettes(EVAL / "triage_holdout7.jsonl")
    assert len(rows) == 150 and all(len(r.get("why", "")) > 20 for r in rows)
    result = evaluate(engine, rows)
    assert result["emergency_recall"] == 1.0, result["errors"]
    assert result["accuracy"] >= 0.85 and result["per_class_recall"]["sc"] >= 0.6, result["errors"]
