"""chatbot.engine.answer.doses: doses: found, normalised, unsupported ones removed with the note."""

from __future__ import annotations

import pytest

from chatbot.engine.answer.doses import dose_mentions, strip_unsupported_doses, unsupported_doses
from tests.chatbot.engine.answer.samples import ASTHMA, GLAUCOMA, GOUT, PROMPTS, ZH_DM, ZH_HBP


@pytest.mark.parametrize("text,expected", [
    ("Take 800 mg twice a day, or 0.5g, or 5 mL syrup.", ["800 mg", "0.5g", "5 mL"]),
    ("Insulin 10 units; vitamin D 1,000 IU; 50 mcg; 25 µg.", ["10 units", "1,000 IU", "50 mcg", "25 µg"]),
    ("每次2片，每日3粒，500毫克，每天不超过六克盐，1-2 片。", ["2片", "3粒", "500毫克", "六克", "1-2 片"]),
    ("每次 1～2 片", ["1～2 片"]),
    ("眼前一片模糊，体重五千克，休克。", []),   # idiom, body weight, not doses
    ("HbA1c below 7%, BMI 25, 140/90 mmHg, 24小时", []),
    ("less than 1,500 milligrams of salt, 2 tablets, 1 capsule", ["1,500 milligrams", "2 tablets",
                                                                  "1 capsule"]),
])
def test_dose_mentions(text, expected):
    assert dose_mentions(text) == expected


@pytest.mark.parametrize("text,passages,unsupported", [
    ("Take 800 mg twice a day.", ["The usual dose is 200 mg twice a day."], ["800 mg"]),
    ("Take 200mg twice a day.", ["The usual dose is 200 mg twice a day."], []),
    ("每次200毫克。", ["The usual dose is 200 mg."], []),                 # 毫克 == mg
    ("每天食盐不超过6克。", [ZH_HBP.text], []),                          # 六克 == 6 g
    ("每天食盐不超过10克。", [ZH_HBP.text], ["10克"]),
    ("一次服用 300 mg。", ["200-400 mg daily"], ["300 mg"]),              # inside a range: not stated
    ("一次服用 400 mg。", ["200-400 mg daily"], []),                      # a range states its ends
    ("每次2片。", [ZH_DM.text], []),
    ("Take 2 tablets each time.", [ZH_DM.text], []),                     # 片 == tablets
    ("Take 3 tablets each time.", [ZH_DM.text], ["3 tablets"]),
    ("less than 1,500 milligrams of salt", ["limit sodium to 1,500 mg a day"], []),
    ("Take 1,500 mg of sodium at most.", ["limit sodium to 1,500 mg a day"], []),
])
def test_unsupported_doses(text, passages, unsupported):
    assert unsupported_doses(text, passages) == unsupported


def test_strip_unsupported_doses_removes_the_sentence_and_adds_the_note():
    text = "Gout attacks are treated with NSAIDs [1]. Take 800 mg of ibuprofen every 4 hours [1]."
    cleaned, removed = strip_unsupported_doses(text, ["The usual dose is 200 mg."], "en", PROMPTS)
    assert removed == ["800 mg"]
    assert "800" not in cleaned and cleaned.startswith("Gout attacks are treated with NSAIDs [1].")
    assert cleaned.endswith(PROMPTS.text("en", "answer.dose_removed"))

    zh = "高血压要低盐饮食[1]。每天吃硝苯地平30毫克[1]。"
    cleaned, removed = strip_unsupported_doses(zh, [ZH_HBP], "zh", PROMPTS)
    assert removed == ["30毫克"]
    assert "硝苯地平" not in cleaned and "高血压要低盐饮食[1]。" in cleaned
    assert cleaned.endswith(PROMPTS.text("zh", "answer.dose_removed"))


def test_supported_dose_is_kept_unchanged():
    text = "The usual adult dose is 200 mg twice a day [3]."
    assert strip_unsupported_doses(text, [GOUT, GLAUCOMA, ASTHMA], "en", PROMPTS) == (text, [])
