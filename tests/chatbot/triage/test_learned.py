"""chatbot.triage.learned (the learned second opinion) and `medchat train triage`: the artifact,
its failures, and the engine's one-way use of it (raise a missed emergency, never lower)."""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import pytest
from typer.testing import CliRunner

from chatbot.cli import app
from chatbot.prompts import PromptLibrary
from chatbot.triage import Intake, TriageEngine
from chatbot.triage.learned import CLASSES, LearnedTriage, Opinion, SimilarCase, TriageModelError, TriageOpinionModel

from .conftest import KeywordScreen

runner = CliRunner()

VIGNETTES = {
    "em": ["sudden crushing chest pain and sweating", "患者男，60岁，突发胸痛伴大汗", "not breathing and blue lips",
           "突然口角歪斜，一侧手脚无力"],
    "ne": ["burning on passing urine for three days", "尿频尿急两天", "earache and fever for two days",
           "咳嗽一周，有黄痰"],
    "sc": ["runny nose and sneezing for two days", "流鼻涕打喷嚏两天", "small paper cut on a finger",
           "蚊子咬了几个包"],
}


def _write_vignettes(folder, name, rows):
    with (folder / name).open("w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")


@pytest.fixture()
def trained(tmp_path):
    vignettes = tmp_path / "eval"
    vignettes.mkdir()
    rows = [{"id": f"v{level}{i}", "text": t, "expected": level} for level, texts in VIGNETTES.items()
            for i, t in enumerate(texts)]
    _write_vignettes(vignettes, "triage_dev.jsonl", rows)
    # the frozen blind round must never be read
    from finetune.triage.train import FROZEN_ROUNDS

    _write_vignettes(vignettes, FROZEN_ROUNDS[0], [{"id": "frozen-1", "text": "frozen text", "expected": "em"}])
    out = tmp_path / "model"
    result = runner.invoke(app, ["train", "triage", "--out", str(out), "--vignettes", str(vignettes),
                                 "--encoder", "hash:64"])
    assert result.exit_code == 0, result.output
    return out, rows


def test_train_triage_writes_a_versioned_model_without_the_frozen_round(trained):
    out, rows = trained
    cfg = json.loads((out / "config.json").read_text(encoding="utf-8"))
    assert cfg["version"].startswith("triage-lr-") and cfg["threshold_em"] == 0.6
    assert cfg["classes"] == list(CLASSES) and cfg["encoder"] == "hash:64"
    assert cfg["trained_on"]["vignettes"] == len(rows) and cfg["trained_on"]["files"] == ["triage_dev.jsonl"]
    cases = [json.loads(line) for line in (out / "cases.jsonl").read_text(encoding="utf-8").splitlines()]
    assert "frozen-1" not in {c["id"] for c in cases} and len(cases) == len(rows)


def test_the_opinion_is_deterministic_and_names_the_nearest_case(trained):
    out, _ = trained
    model = LearnedTriage(out, similar_cases=2)
    a, b = model.opinion("尿频尿急两天"), model.opinion("尿频尿急两天")
    assert a == b and abs(sum(a.probabilities.values()) - 1.0) < 1e-6
    # a training text is its own nearest case
    assert a.similar[0].text == "尿频尿急两天" and a.similar[0].similarity == pytest.approx(1.0, abs=1e-3)
    assert len(a.similar) == 2 and a.similar[0].similarity >= a.similar[1].similarity


def test_a_missing_or_broken_model_is_a_clear_error(tmp_path, trained):
    with pytest.raises(TriageModelError, match="no learned triage model"):
        TriageOpinionModel.load(tmp_path / "nowhere")
    out, _ = trained
    (out / "cases.jsonl").write_text('{"id": "x", "expected": "em", "text": "t"}\n', encoding="utf-8")
    with pytest.raises(TriageModelError, match="cases do not match"):
        TriageOpinionModel.load(out)
    with pytest.raises(TriageModelError):
        TriageOpinionModel(encoder="hash:4", dim=4, weights=np.zeros((4, 3)), bias=np.zeros(3),
                           case_vectors=np.zeros((0, 4)), cases=[], threshold_em=1.5, version="v", meta={})


@dataclass
class FixedOpinion:
    """The engine's view of the model: fixed probabilities, counted calls."""
    p: dict
    em_near: int = 1
    sc_near: int = 0
    calls: int = 0

    def warm_up(self) -> None:
        pass

    def opinion(self, text: str) -> Opinion:
        self.calls += 1
        return Opinion(self.p, [SimilarCase("c1", "em", "similar text", 0.9)], "triage-lr-test", 0.6,
                       em_neighbours=self.em_near, min_em_neighbours=1, threshold_sc=0.6,
                       sc_neighbours=self.sc_near, min_sc_neighbours=2)


def _engine(p, em_near=1, sc_near=0):
    opinion = FixedOpinion(p, em_near, sc_near)
    return TriageEngine(screen=KeywordScreen({}), prompts=PromptLibrary(), opinion=opinion), opinion


def test_the_opinion_raises_a_missed_emergency_with_its_reason_in_both_languages():
    engine, _ = _engine({"em": 0.8, "ne": 0.15, "sc": 0.05})
    # words no rule knows: the rules say "see a doctor" (routine), the model says emergency
    result = engine.assess(Intake(complaint="grandpa is just not quite right today, mumbling"), lang="en")
    assert result.disposition == "emergency" and result.acuity == 2
    learned = [r for r in result.reasons if r.kind == "learned"]
    assert [r.code for r in learned] == ["similar_cases_emergency"] and learned[0].value == 0.8
    assert "triage-lr-test" in learned[0].text_en and "triage-lr-test" in learned[0].text_zh
    data = result.to_json()
    assert data["opinion"]["emergency"] is True and data["opinion"]["similar_cases"][0]["id"] == "c1"


@pytest.mark.parametrize("p", [{"em": 0.59, "ne": 0.2, "sc": 0.21}, {"em": 0.0, "ne": 0.0, "sc": 1.0}])
def test_below_its_thresholds_the_opinion_changes_nothing(p):
    engine, _ = _engine(p)
    plain = TriageEngine(screen=KeywordScreen({}), prompts=PromptLibrary())
    for text in ("A 45-year-old man with crushing chest pain radiating to the left arm, sweating",
                 "尿频、尿急、尿痛两天", "感冒两天，流鼻涕"):
        if p["em"] >= 0.6:
            continue
        with_opinion, rules = engine.assess(Intake(complaint=text)), plain.assess(Intake(complaint=text))
        assert with_opinion.acuity == rules.acuity and with_opinion.disposition == rules.disposition
        assert not [r for r in with_opinion.reasons if r.kind == "learned"]


def test_without_an_emergency_among_the_nearest_cases_the_head_alone_does_not_raise():
    engine, _ = _engine({"em": 0.95, "ne": 0.04, "sc": 0.01}, em_near=0)
    result = engine.assess(Intake(complaint="grandpa is just not quite right today, mumbling"), lang="en")
    assert result.disposition != "emergency" and not [r for r in result.reasons if r.kind == "learned"]


def test_a_self_care_result_of_the_rules_is_not_raised():
    engine, _ = _engine({"em": 0.95, "ne": 0.04, "sc": 0.01})
    result = engine.assess(Intake(complaint="感冒两天，流鼻涕，嗓子有点疼"), lang="zh")
    assert result.disposition == "self_care" and not [r for r in result.reasons if r.kind == "learned"]
    assert result.to_json()["opinion"]["emergency"] is True   # shown to the nurse all the same


def test_patient_chat_lines_do_not_use_the_opinion():
    engine, opinion = _engine({"em": 0.99, "ne": 0.01, "sc": 0.0})
    found = engine.chat_disposition("我感冒两天了，流鼻涕", "zh")
    assert found is not None and found["level"] == "self_care" and opinion.calls == 0


def test_a_routine_result_becomes_self_care_when_similar_cases_were_self_care():
    engine, _ = _engine({"em": 0.02, "ne": 0.3, "sc": 0.68}, em_near=0, sc_near=2)
    plain = TriageEngine(screen=KeywordScreen({}), prompts=PromptLibrary())
    text = "a few small white spots on my fingernails for a month, no pain"  # a complaint no rule knows
    assert plain.assess(Intake(complaint=text), lang="en").acuity == 4      # the rules: routine
    result = engine.assess(Intake(complaint=text), lang="en")
    assert result.disposition == "self_care" and result.acuity == 5
    learned = [r for r in result.reasons if r.kind == "learned"]
    assert [r.code for r in learned] == ["similar_cases_self_care"] and learned[0].value == 0.68
    assert "triage-lr-test" in learned[0].text_en and "居家" in learned[0].text_zh
    assert result.to_json()["opinion"]["self_care"] is True


@pytest.mark.parametrize("em_near, sc_near, p_sc", [(1, 2, 0.9), (0, 1, 0.9), (0, 3, 0.59)])
def test_no_self_care_without_every_condition(em_near, sc_near, p_sc):
    # an emergency among the nearest cases, too few self-care neighbours, or P(sc) under 0.6
    engine, _ = _engine({"em": 0.05, "ne": 0.95 - p_sc, "sc": p_sc}, em_near=em_near, sc_near=sc_near)
    result = engine.assess(Intake(complaint="a few small white spots on my fingernails"), lang="en")
    assert result.acuity == 4 and not [r for r in result.reasons if r.code == "similar_cases_self_care"]


def test_an_urgent_or_emergency_result_is_never_lowered():
    engine, _ = _engine({"em": 0.0, "ne": 0.0, "sc": 1.0}, em_near=0, sc_near=3)
    plain = TriageEngine(screen=KeywordScreen({}), prompts=PromptLibrary())
    for text in ("A 45-year-old man with crushing chest pain radiating to the left arm, sweating",
                 "尿频、尿急、尿痛两天，发热38.9℃，腰痛"):
        rules = plain.assess(Intake(complaint=text))
        assert rules.acuity < 4
        assert engine.assess(Intake(complaint=text)).acuity == rules.acuity


@pytest.mark.parametrize("text", ["72-year-old man, small bright red patch on the white of one eye, no pain",
                                  "孕28周，眼白上一小片鲜红色斑，无疼痛，视力正常"])
def test_the_rules_self_care_disqualifiers_are_never_overridden(text):
    # an over-65 or a pregnancy keeps "see a doctor" whatever similar cases say (stop 24: the
    # first version sent a 65-year-old home against the age rule)
    engine, _ = _engine({"em": 0.0, "ne": 0.1, "sc": 0.9}, em_near=0, sc_near=3)
    result = engine.assess(Intake(complaint=text))
    assert result.acuity <= 4 and not [r for r in result.reasons if r.code == "similar_cases_self_care"]
    assert result.understood["age"] == 72 or result.understood["pregnant"]
