"""Every danger-zone rule of data/triage/vitals.yaml fires at its threshold for an age inside its
band, and hand-checked cases from the sources (ESI v4 danger zones, NEWS2, NICE NG143)."""

import pytest

from chatbot.triage.rules import load_rules

from .conftest import assess, codes

RULES = load_rules().vital_rules


def _firing_value(rule, age):
    t = rule.threshold(age)
    if rule.op == "eq":
        return t
    step = 1 if rule.field in ("gcs", "pain", "hr", "sbp", "rr", "spo2") else 0.1
    return {"lt": t - step, "lt_pals": t - step, "le": t, "gt": t + step, "ge": t}[rule.op]


def _age_in_band(rule):
    low, high = rule.ages
    if low is None and high is None:
        return 40.0
    if high is None:
        return max(low, 16) + 24
    return ((low or 0) + high) / 2


@pytest.mark.parametrize("rule", RULES, ids=[r.id for r in RULES])
def test_each_rule_fires_at_its_threshold(engine, rule):
    age = _age_in_band(rule)
    value = _firing_value(rule, age)
    result = assess(engine, "feels unwell", age=age, vitals={rule.field: value})
    assert result.acuity <= rule.acuity
    vital = [r for r in result.reasons if r.kind == "vital"]
    # the rule itself or a more urgent rule of the same field explains the level
    assert any(r.code == rule.id or (r.acuity <= rule.acuity and r.code.split("_")[0] in rule.id)
               for r in vital), [r.code for r in vital]


@pytest.mark.parametrize("age,vitals,code,acuity", [
    (40, {"hr": 135}, "hr_131_or_more", 2),           # NEWS2 3 points at >= 131
    (40, {"hr": 105}, "hr_above_100", 3),             # ESI adult danger zone
    (40, {"sbp": 88}, "sbp_90_or_less", 2),
    (40, {"spo2": 91}, "spo2_below_92", 2),
    (40, {"spo2": 83}, "spo2_below_85", 1),
    (40, {"rr": 28}, "rr_25_or_more", 2),
    (40, {"gcs": 7}, "gcs_8_or_less", 1),
    (40, {"avpu": "P"}, "avpu_pain", 1),
    (40, {"pain": 8}, "pain_7_or_more", 2),
    (2, {"hr": 165}, "child_hr_above_160_3m_3y", 2),  # ESI paediatric: 3 m - 3 y HR > 160
    (2, {"hr": 150}, None, None),                     # ... 150 is normal for a toddler
    (0.1, {"temp": 38.1}, "infant_fever_under_3m", 2),  # NICE red: < 3 months and >= 38
    (5, {"sbp": 75}, "child_sbp_hypotension_1_10y", 2),  # PALS: < 70 + 2 x 5 = 80
    (5, {"sbp": 85}, None, None),
])
def test_hand_checked_thresholds(engine, age, vitals, code, acuity):
    result = assess(engine, "feels unwell", age=age, vitals=vitals)
    vital = {r.code: r.acuity for r in result.reasons if r.kind == "vital"}
    if code is None:
        assert vital == {}
    else:
        assert vital.get(code) == acuity and result.acuity == acuity


def test_reason_text_names_value_threshold_and_source(engine):
    result = assess(engine, "headache", age=40, vitals={"hr": 135})
    r = next(r for r in result.reasons if r.code == "hr_131_or_more")
    assert r.value == 135 and "135" in r.text_en and "131" in r.text_en and "news2" in r.text_en
    assert "心率" in r.text_zh and "135" in r.text_zh


def test_near_threshold_leans_safer_and_says_so(engine):
    # HR 97 is 3 below the ESI danger zone (> 100): one level safer than self-care
    result = assess(engine, "sprained ankle", age=30, vitals={"hr": 97})
    near = [r for r in result.reasons if r.kind == "uncertainty"]
    assert near and near[0].code == "near_hr_above_100" and near[0].acuity == 4
    assert result.disposition == "routine"  # self-care without the near-threshold heart rate
    assert assess(engine, "sprained ankle", age=30, vitals={"hr": 80}).disposition == "self_care"
    # SpO2 93 fires the <= 94 rule (3); being near < 92 adds nothing the level does not say
    spo2 = assess(engine, "sprained ankle", age=30, vitals={"spo2": 93})
    assert spo2.acuity == 3 and not [r for r in spo2.reasons if r.kind == "uncertainty"]
    assert "safer" in near[0].text_en and "更安全" in near[0].text_zh


def test_missing_vitals_are_fine(engine):
    result = assess(engine, "runny nose and sneezing for 2 days", age=30)
    assert result.disposition == "self_care"
    assert not [r for r in result.reasons if r.kind == "vital"]


def test_unknown_age_uses_adult_rules(engine):
    result = assess(engine, "feels unwell", vitals={"hr": 135})
    assert "hr_131_or_more" in codes(result)


def test_vitals_written_in_the_text_count(engine):
    assert "infant_fever_under_3m" in codes(assess(engine, "6-week-old baby, temperature 38.4"))
    assert "spo2_below_92" in codes(assess(engine, "咳嗽，血氧88%", age=50))
    assert "temp_39_1_or_more" in codes(assess(engine, "fever of 103 F and cough", age=30))
