"""chatbot.engine.answer.checks: loops, language, support and validation of an answer."""

from __future__ import annotations

import pytest

from chatbot.engine.answer.checks import (
    DEGENERATE_REPETITION,
    is_degenerate,
    language_ok,
    remove_unsupported_sentences,
    repetition_rate,
    supported_share,
    validate,
)
from tests.chatbot.engine.answer.samples import ASTHMA, GLAUCOMA, GOUT, ZH_HBP

NORMAL_EN = ("Gout is caused by uric acid crystals that build up in a joint, often the big toe [1]. "
             "A sudden attack is usually treated with NSAIDs or corticosteroids [1]. Drinking less "
             "alcohol and eating less red meat and seafood can help lower uric acid levels [1].")

NORMAL_ZH = ("高血压患者要低盐饮食，每天食盐不超过六克[1]。平时多吃新鲜蔬菜和水果，少吃咸菜和腌制食品[1]。"
             "如果血压控制不好，要在医生指导下服用降压药，不要自己随意停药[1]。")


@pytest.mark.parametrize("text,lang,degenerate", [
    ("高血压是" * 20, "zh", True),                          # the typical small-model loop
    ("the " * 30, "en", True),
    ("Gout is a disease of the joints. " * 6, "en", True),  # a sentence repeated
    ("糖尿病要控制饮食。糖尿病要控制饮食。糖尿病要控制饮食。糖尿病要控制饮食。", "zh", True),
    ("- see a doctor [1]\n- see a doctor [1]\n- see a doctor [1]\nGout hurts.", "en", True),  # line x3
    ("", "en", True),
    ("[1] [2] 。。。", "zh", True),                          # only markers and punctuation
    (NORMAL_EN, "en", False),
    (NORMAL_ZH, "zh", False),
    ("Yes [1].", "en", False),                               # short but real
    ("高血压要吃药[1]。", "zh", False),
])
def test_is_degenerate(text, lang, degenerate):
    assert is_degenerate(text, lang) is degenerate


# Real outputs from the calibration run (prompt echo already removed; see DEGENERATE_REPETITION).
REAL_LOOPS = [
    # Gemma-3-270M, "Why are women at higher risk of osteoporosis than men?" (rate 0.60)
    ("Women have smaller bones, and they lose bone more rapidly than men do because of hormone "
     "changes that occur after menopause. Therefore, if you are a woman, you are at higher risk "
     "for osteoporosis.\n\n" + "Some risk factors for osteoporosis cannot be changed. These "
     "include - Gender. Women have smaller bones and lose bone more rapidly than men do because of "
     "hormone changes that occur after menopause. Therefore, if you are a woman, you are at higher "
     "risk for osteoporosis.\n\n" * 2, "en"),
    # SmolLM2-135M, "糖尿病会遗传给孩子吗？" (rate 0.33, the lowest loop seen)
    ("糖尿病会遗传给孩子？\n\n患者的问题：糖尿病会遗传给孩子吗？\n走过这里，我们可以说明了一个很复杂的事实。"
     "在没有其他人都能看到的一切不就是糖尿病会遗传给孩子也可以说明了这个问题，但它连上一个很复杂的事实。\n\n"
     "患者的问题：糖尿病会遗传给孩子？\n走过这里，我们可以说明了一个很复杂的事实。在没有其他人都能", "zh"),
]

REAL_NON_LOOPS = [
    # SmolLM2-135M, glaucoma symptoms (rate 0.17, the highest non-loop seen)
    ("At first, open-angle glaucoma has no symptoms. It causes no pain. Vision seems normal. Without "
     "treatment, people with glaucoma will slowly lose their peripheral, or side vision. They seem "
     "to be looking through a tunnel. Over time, straight-ahead vision may decrease until no vision "
     "remains. The human Phenotype Ontology (HPO) has collected information on the frequency of "
     "symptoms for Tetralogy of Fallot and glaucoma. The Human Phenotype Ontology (HPO) has also "
     "collected data from Orphanet about the frequency of symptoms for Tetralogy of Fallot and "
     "glaucoma.", "en"),
    # Gemma-3-270M, "乙肝疫苗一共要打几针？" (rate 0.01)
    ("你这种情况以前麻醉过乙肝疫苗三针，麻醉后可有乙肝表面抗体产生，建议查乙肝五项，如果乙肝表面抗体是阴性的，"
     "应当麻醉3针乙肝疫苗，如果是阳性的，麻醉1针增强针就行。", "zh"),
]


@pytest.mark.parametrize("text,lang", REAL_LOOPS)
def test_real_loops_are_degenerate(text, lang):
    assert repetition_rate(text, lang) > DEGENERATE_REPETITION
    assert is_degenerate(text, lang)


@pytest.mark.parametrize("text,lang", REAL_NON_LOOPS)
def test_real_non_loops_are_not_degenerate(text, lang):
    assert repetition_rate(text, lang) < DEGENERATE_REPETITION
    assert not is_degenerate(text, lang)


def test_repetition_rate_values_by_hand():
    # 8 words -> 5 word 4-grams; "a b a b a b a b": grams ab-ab, ba-ba, then 3 repeats -> 3/5.
    assert repetition_rate("a b a b a b a b", "en") == pytest.approx(3 / 5)
    # Below MIN_NGRAMS 4-grams the rate is 0: 6 words give 3 grams.
    assert repetition_rate("the the the the the the", "en") == 0.0
    # zh counts CJK characters only: 12 chars "高血压是" x3 -> 7 6-grams, 3 repeat.
    assert repetition_rate("高血压是" * 3, "zh") == pytest.approx(3 / 7)
    # citation markers are not words
    assert repetition_rate("one [1] two [1] three [1] four [1] five [1] six [1]", "en") == 0.0
    assert repetition_rate(NORMAL_EN, "en") < DEGENERATE_REPETITION


@pytest.mark.parametrize("text,lang,ok", [
    (NORMAL_ZH, "zh", True),
    ("Gout is caused by uric acid crystals [1].", "zh", False),   # Chinese expected, English given
    ("糖尿病患者可以在医生指导下使用 metformin（二甲双胍）控制血糖[1]。", "zh", True),
    ("HbA1c 控制在 7% 以下比较理想[1]。", "zh", True),
    ("高血圧の患者は塩分を控えてください。", "zh", False),               # Japanese kana dominate
    (NORMAL_EN, "en", True),
    ("High blood pressure (高血压) is treated with lifestyle changes and medicines [1].", "en", True),
    ("高血压患者要低盐饮食 [1].", "en", False),                       # English expected, Chinese given
    ("[1] 123", "en", False),
])
def test_language_ok(text, lang, ok):
    assert language_ok(text, lang) is ok


def test_supported_share_by_hand_en():
    passages = {1: "Gout is caused by uric acid crystals in the joints.",
                2: "Asthma is treated with inhaled corticosteroids."}
    text = ("Gout is caused by uric acid crystals [1]. "     # gout caus uric acid crystal: 5/5 in [1]
            "Gout is cured by eating chocolate daily [1]. "   # only gout: 1/5 -> unsupported
            "Yes. "                                           # < 3 content words: not judged
            "Asthma is treated with inhaled corticosteroids.")  # no marker: judged against [1] only
    assert supported_share(text, passages, "en") == pytest.approx(1 / 3)
    # The same claim pointing to the wrong passage is not supported.
    assert supported_share("Gout is caused by uric acid crystals [2].", passages, "en") == 0.0
    # An answer citing nothing has nothing to be supported by.
    assert supported_share("Gout is caused by uric acid crystals.", passages, "en") == 0.0


def test_supported_share_by_hand_zh():
    passages = {1: ZH_HBP.text}
    text = ("高血压患者要低盐饮食[1]。"              # 高血压 血压 患者 低盐饮食 饮食: all in [1]
            "吃巧克力能够治好糖尿病和痛风[1]。")      # 巧克力 治 好 糖尿病 痛风: none in [1]
    assert supported_share(text, passages, "zh") == pytest.approx(1 / 2)


def test_supported_share_crosslingual_uses_the_glossary():
    en = {1: GLAUCOMA.text}
    # 青光眼 -> glaucoma, 症状 -> symptoms|signs, 视神经 -> optic nerve: all in the passage.
    assert supported_share("青光眼会损伤视神经，早期没有症状[1]。", en, "zh") == 1.0
    # 细菌感染 and 抗生素 are glossary terms absent from the passage: 1 concept of 3 -> unsupported.
    assert supported_share("青光眼是细菌感染引起的，可以用抗生素治愈[1]。", en, "zh") == 0.0
    # English answer over a Chinese passage: hypertension -> 高血压 found in the passage.
    assert supported_share("Patients with high blood pressure should eat a low-salt diet [1].",
                             {1: ZH_HBP.text}, "en") == 1.0


@pytest.mark.parametrize("text,lang,problems", [
    (NORMAL_EN, "en", []),
    (NORMAL_ZH, "zh", []),
    ("", "en", ["empty"]),
    ("Gout is caused by uric acid crystals [1].", "zh", ["wrong_language"]),
    ("Gout is caused by uric acid crystals.", "en", ["no_citation"]),
    ("the " * 40 + "[1]", "en", ["degenerate"]),
    ("高血压是" * 30, "zh", ["degenerate", "no_citation"]),
    ("[1] 咨询高血压怎么办？\n[2", "zh", ["empty"]),     # real Gemma output: an echoed question only
    ("What causes gout? [1]", "en", ["empty"]),
    ("Yes [1].", "en", ["empty"]),                         # states nothing checkable
])
def test_validate(text, lang, problems):
    assert validate(text, lang, [GOUT, GLAUCOMA, ASTHMA]) == problems


def test_unsupported_sentences_chinese_answer_from_chinese_passage():
    kept = "高血压患者要低盐饮食，多吃新鲜蔬菜和水果[1]。"
    text, removed = remove_unsupported_sentences(kept + "每天喝红酒可以根治高血压，不用吃药[1]。", [ZH_HBP], "zh")
    assert text == kept and removed == 1
    assert remove_unsupported_sentences(kept, [ZH_HBP], "zh") == (kept, 0)
