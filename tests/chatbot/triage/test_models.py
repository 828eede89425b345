import pytest

from chatbot.prompts import PromptLibrary
from chatbot.triage import Intake, InvalidIntake, Reason, Vitals
from knowledge_base.paths import PROJECT_ROOT


@pytest.mark.parametrize("field,value", [("spo2", 140), ("hr", -5), ("temp", 80), ("rr", 200),
                                         ("sbp", 400), ("gcs", 2), ("gcs", 16), ("pain", 11),
                                         ("spo2", 0.95)])
def test_impossible_vitals_are_rejected_with_field_and_value(field, value):
    with pytest.raises(InvalidIntake) as err:
        Vitals(**{field: value})
    exc = err.value
    assert exc.key == "triage.invalid.range" and exc.field == field and exc.value == value
    assert field in str(exc) and str(value) in str(exc)
    # the key renders in both languages with the values the exception carries
    prompts = PromptLibrary()
    en = prompts.text("en", exc.key, **exc.values())
    zh = prompts.text("zh", exc.key, **exc.values())
    assert str(value) in en and str(value) in zh and "应在" in zh


def test_fractional_gcs_and_bad_avpu_and_text_are_rejected():
    with pytest.raises(InvalidIntake) as err:
        Vitals(gcs=13.5)
    assert err.value.key == "triage.invalid.integer"
    with pytest.raises(InvalidIntake) as err:
        Vitals(avpu="X")
    assert err.value.key == "triage.invalid.avpu"
    with pytest.raises(InvalidIntake) as err:
        Vitals(hr="fast")
    assert err.value.key == "triage.invalid.not_number" and err.value.field == "hr"


def test_valid_vitals_are_normalised_and_missing_ones_stay_none():
    v = Vitals(hr="88", avpu="voice", gcs=15.0)
    assert v.hr == 88.0 and v.avpu == "V" and v.gcs == 15 and v.spo2 is None
    assert v.given() == {"hr": 88.0, "gcs": 15, "avpu": "V"}
    assert Vitals().given() == {}


def test_intake_checks_complaint_age_and_sex():
    with pytest.raises(InvalidIntake) as err:
        Intake("   ")
    assert err.value.key == "triage.invalid.complaint"
    with pytest.raises(InvalidIntake):
        Intake("cough", age=180)
    with pytest.raises(InvalidIntake) as err:
        Intake("cough", sex="X")
    assert err.value.key == "triage.invalid.sex"
    intake = Intake("咳嗽", sex="女", vitals={"temp": 38.2})
    assert intake.sex == "F" and intake.vitals.temp == 38.2
    with pytest.raises(InvalidIntake) as err:
        Vitals.from_json({"bp": 120})
    assert err.value.field == "bp"


def test_reason_checks_kind_and_acuity():
    with pytest.raises(ValueError):
        Reason("guess", "x", 3, "a", "b")
    with pytest.raises(ValueError):
        Reason("vital", "x", 0, "a", "b")
    r = Reason("vital", "x", 2, "english", "中文", 1.0)
    assert r.to_json("zh") == {"kind": "vital", "code": "x", "acuity": 2, "text": "中文", "value": 1.0}


def test_rules_reference_is_generated_from_the_rule_files():

    from chatbot.triage.rules import rules_markdown

    doc = PROJECT_ROOT / "docs" / "TRIAGE_RULES.md"
    assert doc.read_text(encoding="utf-8") == rules_markdown(), \
        "run: python -m chatbot.triage > docs/TRIAGE_RULES.md"


def test_unknown_language_is_an_intake_error():
    from chatbot.triage import Intake, TriageEngine

    with pytest.raises(InvalidIntake) as err:
        TriageEngine(screen=None).assess(Intake("cough"), lang="fr", with_evidence=False)
    assert err.value.key == "triage.invalid.lang" and err.value.value == "fr"
