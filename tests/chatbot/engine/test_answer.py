"""chatbot.engine.answer: markers, loops, language, support, doses, extractive fallback, finalise."""

from __future__ import annotations

import pytest

import chatbot.engine.answer as A
from chatbot.prompts import PromptLibrary
from knowledge_base.records import Passage

PROMPTS = PromptLibrary()


def passage(n: int, text: str, lang: str = "en", question: str = "", title: str = "") -> Passage:
    return Passage(id=f"doc{n}#c0", doc_id=f"doc{n}", text=text, title=title or f"Title {n}",
                   url=f"https://example.org/{n}", source="TestSource", lang=lang, score=1.0,
                   question=question)


GOUT = passage(1, "What causes gout?\nGout is caused by uric acid crystals that build up in a joint, "
                  "often the big toe. Red meat, seafood and alcohol raise uric acid levels. "
                  "A sudden attack is treated with NSAIDs or corticosteroids.",
               question="What causes gout?", title="Gout")
GLAUCOMA = passage(2, "Glaucoma slowly damages the optic nerve. Early glaucoma has no symptoms; later, "
                      "side vision is lost. Regular eye exams with eye pressure tests find it early.",
                   title="Glaucoma")
ASTHMA = passage(3, "Asthma is treated with inhaled corticosteroids that control airway inflammation. "
                    "A rescue inhaler relieves sudden wheezing. The usual adult dose is 200 mg twice "
                    "a day.", title="Asthma")
ZH_HBP = passage(1, "高血压饮食上要注意什么？\n高血压患者要低盐饮食，每天食盐不超过六克。多吃新鲜蔬菜和水果，"
                    "少吃咸菜和腌制食品。血压控制不好时，要在医生指导下服用降压药。",
                 lang="zh", question="高血压饮食上要注意什么？", title="高血压饮食")
ZH_DM = passage(2, "糖尿病患者可以适量吃含糖量低的水果，比如苹果、柚子，应在两餐之间吃，并监测血糖。"
                   "每次服用二甲双胍2片。", lang="zh", title="糖尿病饮食")


# --- markers -----------------------------------------------------------------------------------

@pytest.mark.parametrize("raw,expected", [
    ("Gout is caused by uric acid【1】.", "Gout is caused by uric acid[1]."),
    ("Gout [1, 2] and glaucoma [1，3].", "Gout [1][2] and glaucoma [1][3]."),
    ("见［２］和〔3〕。", "见[2]和[3]。"),
    ("高血压要低盐饮食[1、2]。", "高血压要低盐饮食[1][2]。"),
    ("ranges [1-3] too", "ranges [1][2][3] too"),
    ("[ 2 ] spaced", "[2] spaced"),
    ("numbered list (1) stays, [1][2] stays", "numbered list (1) stays, [1][2] stays"),
    ("a huge range [1-40] is not a citation list", "a huge range [1-40] is not a citation list"),
])
def test_normalise_markers(raw, expected):
    assert A.normalise_markers(raw) == expected


@pytest.mark.parametrize("text,expected", [
    ("a [2] b [1, 2] c 【3】 d [2]", [2, 1, 3]),
    ("没有引用。", []),
    ("高血压[1]，糖尿病【2】。", [1, 2]),
])
def test_find_citations_distinct_in_order(text, expected):
    assert A.find_citations(text) == expected


@pytest.mark.parametrize("text,n,cleaned,kept,removed", [
    ("Gout is caused by uric acid [7]. Treat it early [1].", 3,
     "Gout is caused by uric acid. Treat it early [1].", [1], [7]),
    ("See [0] and [2][3].", 3, "See and [2][3].", [2, 3], [0]),
    ("高血压要低盐[1][5]。", 2, "高血压要低盐[1]。", [1], [5]),
    ("All fine [1, 2].", 2, "All fine [1][2].", [1, 2], []),
])
def test_clean_citations_drops_markers_pointing_nowhere(text, n, cleaned, kept, removed):
    assert A.clean_citations(text, n) == (cleaned, kept, removed)


# --- prompt echo ---------------------------------------------------------------------------------

def test_strip_prompt_echo_removes_scaffolding_a_base_model_copies():
    # Shape of a real Gemma-3-270M (base) output on the dev set: template token, header, fence,
    # the chunk's stored question, then text.
    raw = (" <<SYS>>\n\n[1] Gout (TestSource)\n<<<\nWhat causes gout?\nGout is caused by uric acid "
           "crystals [1].\n>>>\n<end_of_turn>")
    assert A.strip_prompt_echo(raw, [GOUT, GLAUCOMA]) == ("Gout is caused by uric acid crystals [1].",
                                                          True)
    # The prompt's "[n]" placeholder copied as if it were a citation
    assert A.strip_prompt_echo("[n] Gout is caused by uric acid [1].", [GOUT]) == \
        ("Gout is caused by uric acid [1].", True)
    plain = "Gout is caused by uric acid crystals [1].  [2] Glaucoma checks matter too.\n"
    assert A.strip_prompt_echo(plain, [GOUT, GLAUCOMA]) == (plain, False)


def test_strip_prompt_echo_removes_copied_instructions():
    # Real SmolLM2-135M output on the dev set: it copied the Chinese system prompt.
    template = ("只依据下面给出的编号参考资料作答。每句话后面用 [1]、[2] 等标注出处。参考资料可能是英文，"
                "请用中文转述。\n患者的问题：{question}")
    raw = ("参考资料可能是英文，请用中文转述：[n] 每句话后面用 [1]、[2] 等标注出处。\n"
           "[n] 每句话中用 [1]、[2] 等标注出处。\n"     # remixed copy: 5 of 8 trigrams in the template
           "高血压患者要低盐饮食[1]。\n患者的问题：")
    assert A.strip_prompt_echo(raw, [ZH_HBP], [template]) == ("高血压患者要低盐饮食[1]。", True)
    # A real answer sharing a phrase with the instructions stays.
    kept = "参考资料[1]提到，高血压患者要低盐饮食，多吃蔬菜[1]。"
    assert A.strip_prompt_echo(kept, [ZH_HBP], [template]) == (kept, False)
    en = "Use only the numbered reference passages you are given. Cite as [1], [2]."
    raw = "use only the numbered reference passages you were given. Gout is caused by uric acid [1]."
    assert A.strip_prompt_echo(raw, [GOUT], [en]) == ("Gout is caused by uric acid [1].", True)


def test_finalise_flags_prompt_echo():
    raw = "<<SYS>>\n[2] Glaucoma (TestSource)\nEarly glaucoma has no symptoms [2]."
    result = A.finalise(raw, "en", [GOUT, GLAUCOMA], PROMPTS, question="glaucoma?", disclaimer=False)
    assert result.flags == ["prompt_echo"] and result.text == "Early glaucoma has no symptoms [2]."


# --- loops ---------------------------------------------------------------------------------------

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
    assert A.is_degenerate(text, lang) is degenerate


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
    assert A.repetition_rate(text, lang) > A.DEGENERATE_REPETITION
    assert A.is_degenerate(text, lang)


@pytest.mark.parametrize("text,lang", REAL_NON_LOOPS)
def test_real_non_loops_are_not_degenerate(text, lang):
    assert A.repetition_rate(text, lang) < A.DEGENERATE_REPETITION
    assert not A.is_degenerate(text, lang)


def test_repetition_rate_values_by_hand():
    # 8 words -> 5 word 4-grams; "a b a b a b a b": grams ab-ab, ba-ba, then 3 repeats -> 3/5.
    assert A.repetition_rate("a b a b a b a b", "en") == pytest.approx(3 / 5)
    # Below MIN_NGRAMS 4-grams the rate is 0: 6 words give 3 grams.
    assert A.repetition_rate("the the the the the the", "en") == 0.0
    # zh counts CJK characters only: 12 chars "高血压是" x3 -> 7 6-grams, 3 repeat.
    assert A.repetition_rate("高血压是" * 3, "zh") == pytest.approx(3 / 7)
    # citation markers are not words
    assert A.repetition_rate("one [1] two [1] three [1] four [1] five [1] six [1]", "en") == 0.0
    assert A.repetition_rate(NORMAL_EN, "en") < A.DEGENERATE_REPETITION


# --- language ------------------------------------------------------------------------------------

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
    assert A.language_ok(text, lang) is ok


# --- support -------------------------------------------------------------------------------------

def test_supported_share_by_hand_en():
    passages = {1: "Gout is caused by uric acid crystals in the joints.",
                2: "Asthma is treated with inhaled corticosteroids."}
    text = ("Gout is caused by uric acid crystals [1]. "     # gout caus uric acid crystal: 5/5 in [1]
            "Gout is cured by eating chocolate daily [1]. "   # only gout: 1/5 -> unsupported
            "Yes. "                                           # < 3 content words: not judged
            "Asthma is treated with inhaled corticosteroids.")  # no marker: judged against [1] only
    assert A.supported_share(text, passages, "en") == pytest.approx(1 / 3)
    # The same claim pointing to the wrong passage is not supported.
    assert A.supported_share("Gout is caused by uric acid crystals [2].", passages, "en") == 0.0
    # An answer citing nothing has nothing to be supported by.
    assert A.supported_share("Gout is caused by uric acid crystals.", passages, "en") == 0.0


def test_supported_share_by_hand_zh():
    passages = {1: ZH_HBP.text}
    text = ("高血压患者要低盐饮食[1]。"              # 高血压 血压 患者 低盐饮食 饮食: all in [1]
            "吃巧克力能够治好糖尿病和痛风[1]。")      # 巧克力 治 好 糖尿病 痛风: none in [1]
    assert A.supported_share(text, passages, "zh") == pytest.approx(1 / 2)


def test_supported_share_crosslingual_uses_the_glossary():
    en = {1: GLAUCOMA.text}
    # 青光眼 -> glaucoma, 症状 -> symptoms|signs, 视神经 -> optic nerve: all in the passage.
    assert A.supported_share("青光眼会损伤视神经，早期没有症状[1]。", en, "zh") == 1.0
    # 细菌感染 and 抗生素 are glossary terms absent from the passage: 1 concept of 3 -> unsupported.
    assert A.supported_share("青光眼是细菌感染引起的，可以用抗生素治愈[1]。", en, "zh") == 0.0
    # English answer over a Chinese passage: hypertension -> 高血压 found in the passage.
    assert A.supported_share("Patients with high blood pressure should eat a low-salt diet [1].",
                             {1: ZH_HBP.text}, "en") == 1.0


# --- validation ----------------------------------------------------------------------------------

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
    assert A.validate(text, lang, [GOUT, GLAUCOMA, ASTHMA]) == problems


# --- doses ---------------------------------------------------------------------------------------

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
    assert A.dose_mentions(text) == expected


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
    assert A.unsupported_doses(text, passages) == unsupported


def test_strip_unsupported_doses_removes_the_sentence_and_adds_the_note():
    text = "Gout attacks are treated with NSAIDs [1]. Take 800 mg of ibuprofen every 4 hours [1]."
    cleaned, removed = A.strip_unsupported_doses(text, ["The usual dose is 200 mg."], "en", PROMPTS)
    assert removed == ["800 mg"]
    assert "800" not in cleaned and cleaned.startswith("Gout attacks are treated with NSAIDs [1].")
    assert cleaned.endswith(PROMPTS.text("en", "answer.dose_removed"))

    zh = "高血压要低盐饮食[1]。每天吃硝苯地平30毫克[1]。"
    cleaned, removed = A.strip_unsupported_doses(zh, [ZH_HBP], "zh", PROMPTS)
    assert removed == ["30毫克"]
    assert "硝苯地平" not in cleaned and "高血压要低盐饮食[1]。" in cleaned
    assert cleaned.endswith(PROMPTS.text("zh", "answer.dose_removed"))


def test_supported_dose_is_kept_unchanged():
    text = "The usual adult dose is 200 mg twice a day [3]."
    assert A.strip_unsupported_doses(text, [GOUT, GLAUCOMA, ASTHMA], "en", PROMPTS) == (text, [])


# --- extractive fallback -------------------------------------------------------------------------

def _quoted_sentences(text: str) -> list[tuple[str, int]]:
    """(sentence without its marker, n) for every quoted line."""
    out = []
    for line in text.splitlines():
        found = A.find_citations(line)
        if found:
            out.append((line.rsplit("[", 1)[0].strip(), found[0]))
    return out


def test_extractive_answer_en_quotes_matching_sentences_verbatim():
    passages = [GOUT, GLAUCOMA, ASTHMA]
    text = A.extractive_answer("What causes gout? Is it uric acid?", "en", passages, PROMPTS)
    lines = text.splitlines()
    assert lines[0] == PROMPTS.text("en", "answer.extractive_intro")
    quoted = _quoted_sentences(text)
    assert 1 <= len(quoted) <= 3
    for sentence, n in quoted:
        assert sentence in passages[n - 1].text            # verbatim, from the passage it cites
    assert quoted[0] == ("Gout is caused by uric acid crystals that build up in a joint, often the "
                         "big toe.", 1)
    assert "What causes gout?" not in text                 # the stored question is not an answer


def test_extractive_answer_zh_question_over_english_passages_says_so():
    text = A.extractive_answer("青光眼早期有什么症状？", "zh", [GLAUCOMA, GOUT], PROMPTS)
    assert text.splitlines()[0] == PROMPTS.text("zh", "answer.extractive_other_language")
    quoted = _quoted_sentences(text)
    assert ("Early glaucoma has no symptoms; later, side vision is lost.", 1) in quoted
    assert all(sentence in [GLAUCOMA, GOUT][n - 1].text for sentence, n in quoted)


def test_extractive_answer_zh_over_zh_passages_uses_the_plain_intro():
    text = A.extractive_answer("糖尿病人能吃水果吗？", "zh", [ZH_HBP, ZH_DM], PROMPTS)
    assert text.splitlines()[0] == PROMPTS.text("zh", "answer.extractive_intro")
    assert ("糖尿病患者可以适量吃含糖量低的水果，比如苹果、柚子，应在两餐之间吃，并监测血糖。", 2) in \
        _quoted_sentences(text)


def test_extractive_answer_keeps_a_list_with_its_intro():
    # The layout of the NHLBI asthma passage: an intro, unbulleted items, then a paragraph.
    nhlbi = passage(1, "What are the symptoms of Asthma ?\nCommon signs and symptoms of asthma include:"
                       "\n\nCoughing. Coughing from asthma often is worse at night.\n\nWheezing. Wheezing "
                       "is a whistling sound.\n\nNot all people who have asthma have these symptoms. "
                       "A lung function test helps.", question="What are the symptoms of Asthma ?")
    kidney = passage(2, "You may have a kidney stone if you\n- have pain while urinating\n- see blood in "
                        "your urine\nThe pain may last for a short or long time.")
    text = A.extractive_answer("What are the symptoms of asthma?", "en", [nhlbi], PROMPTS)
    assert "Common signs and symptoms of asthma include:\n- Coughing.\n- Wheezing. [1]" in text
    assert "- Not all people" not in text
    text = A.extractive_answer("kidney stone pain?", "en", [kidney], PROMPTS)
    assert ("You may have a kidney stone if you\n- have pain while urinating\n- see blood in your "
            "urine [1]") in text


def test_extractive_answer_without_usable_sentences_is_the_generation_failed_message():
    assert A.extractive_answer("gout?", "en", [], PROMPTS) == \
        PROMPTS.text("en", "answer.generation_failed")


# --- finalise ------------------------------------------------------------------------------------

@pytest.mark.parametrize("raw,lang,question,problems", [
    ("the " * 60, "en", "What causes gout?", ["degenerate", "no_citation"]),
    ("高血压是高血压是" * 15, "zh", "高血压饮食要注意什么？", ["degenerate", "no_citation"]),
    ("Hypertension patients should eat less salt [1].", "zh", "高血压饮食要注意什么？",
     ["wrong_language"]),
    ("", "en", "What causes gout?", ["empty"]),
])
def test_finalise_garbage_falls_back_to_extractive(raw, lang, question, problems):
    passages = [GOUT, GLAUCOMA] if lang == "en" else [ZH_HBP, ZH_DM]
    result = A.finalise(raw, lang, passages, PROMPTS, question=question)
    assert result.extractive is True
    assert result.flags == ["fallback_extractive", *problems]
    assert result.citations and all(1 <= c.n <= len(passages) for c in result.citations)
    assert result.citations[0] == A.Citation(1, passages[0].doc_id, passages[0].title,
                                             passages[0].url, passages[0].source)
    assert result.text.endswith(PROMPTS.text(lang, "answer.disclaimer"))
    assert A.language_ok(result.text, lang)


def test_finalise_good_answer_keeps_text_maps_citations_and_adds_disclaimer():
    raw = "Gout is caused by uric acid crystals in a joint【1】. Eye exams find glaucoma early [2]."
    result = A.finalise(raw, "en", [GOUT, GLAUCOMA], PROMPTS, question="What causes gout?")
    assert result.flags == [] and result.extractive is False
    assert result.text == ("Gout is caused by uric acid crystals in a joint[1]. Eye exams find "
                           "glaucoma early [2].\n\n" + PROMPTS.text("en", "answer.disclaimer"))
    assert [c.n for c in result.citations] == [1, 2]
    assert result.citations[1].doc_id == "doc2" and result.citations[1].url.endswith("/2")


def test_finalise_drops_bad_markers_and_doses_with_flags():
    raw = ("高血压患者要低盐饮食，多吃新鲜蔬菜和水果[1][7]。每天服用硝苯地平30毫克[1]。"
           "血压控制不好时要在医生指导下服用降压药[1]。")
    result = A.finalise(raw, "zh", [ZH_HBP], PROMPTS, question="高血压怎么办？", disclaimer=False)
    assert result.flags == ["citations_removed", "dose_removed"]
    assert "[7]" not in result.text and "30毫克" not in result.text
    assert result.text.endswith(PROMPTS.text("zh", "answer.dose_removed"))
    assert PROMPTS.text("zh", "answer.disclaimer") not in result.text
    assert [c.n for c in result.citations] == [1]


def test_finalise_answer_left_empty_by_dose_removal_falls_back():
    raw = "Take 800 mg of ibuprofen [1]."
    result = A.finalise(raw, "en", [GOUT], PROMPTS, question="What do I take for a gout attack?")
    assert result.flags == ["dose_removed", "fallback_extractive", "empty"]
    assert "800" not in result.text and result.extractive


def test_finalise_with_nothing_to_quote_apologises():
    only_question = passage(1, "What is gout?", question="What is gout?")
    result = A.finalise("", "zh", [only_question], PROMPTS, question="痛风是什么？")
    assert result.flags == ["fallback_extractive", "empty", "generation_failed"]
    assert result.text.startswith(PROMPTS.text("zh", "answer.generation_failed"))
    assert result.citations == []


def test_finalise_without_passages_is_the_no_evidence_answer():
    result = A.finalise("Take 5 mg of something.", "zh", [], PROMPTS, question="司美格鲁肽打多少？")
    assert result.text == A.no_evidence_answer("zh", PROMPTS) == PROMPTS.text("zh", "answer.no_evidence")
    assert result.flags == ["no_evidence"] and result.citations == []


@pytest.mark.parametrize("raw,lang,expected", [
    ("I have no reliable source for this question. Please see a clinician.", "en", True),
    ("The passages do not answer this. I don't have a reliable source, so please see a doctor.",
     "en", True),
    ("没有可靠的资料来源，建议就医。", "zh", True),
    ("参考资料中没有相关内容，建议您咨询医生。", "zh", True),
    ("Gout is caused by uric acid; see a doctor.", "en", False),       # an answer, not a refusal
    ("高血压没有根治的办法，建议咨询医生。", "zh", False),
    ("没有没有没有没有没有没有没有没有没有没有没有没有没有没有", "zh", False),   # a loop
])
def test_is_no_evidence_reply(raw, lang, expected):
    assert A.is_no_evidence_reply(raw, lang, PROMPTS) is expected


@pytest.mark.parametrize("raw,lang", [
    ("I have no reliable source for this question [9]. Please see a clinician.", "en"),
    ("没有可靠的资料来源，建议就医。", "zh"),
])
def test_finalise_keeps_an_honest_no_source_reply_instead_of_quoting(raw, lang):
    result = A.finalise(raw, lang, [GOUT, GLAUCOMA], PROMPTS, question="tirzepatide dose?")
    assert result.text == PROMPTS.text(lang, "answer.no_evidence")
    assert result.flags[-1] == "no_evidence" and not result.extractive and result.citations == []


def test_render_sources_lists_citations_under_the_heading():
    cites = [A.Citation(1, "doc1", "Gout", "https://example.org/1", "MedQuAD")]
    assert A.render_sources(cites, "zh", PROMPTS) == "参考资料\n[1] Gout (MedQuAD) https://example.org/1"
    assert A.render_sources([], "en", PROMPTS) == ""


# --- messages ------------------------------------------------------------------------------------

ANSWER_KEYS = {"answer.no_evidence", "answer.extractive_intro", "answer.extractive_other_language",
               "answer.dose_removed", "answer.disclaimer", "answer.sources_heading",
               "answer.generation_failed"}


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_answer_messages_exist_in_both_languages_in_the_right_language(lang):
    messages = {k: v for k, v in PROMPTS.messages(lang).items() if k.startswith("answer.")}
    assert set(messages) == ANSWER_KEYS
    for key, text in messages.items():
        assert text and "\n" not in text, key
        if key != "answer.sources_heading":
            assert A.language_ok(text, lang), key
    assert len(messages["answer.disclaimer"]) <= (80 if lang == "en" else 40)  # one short line


def test_finalise_removes_a_sentence_its_citation_does_not_support():
    raw = ("Gout is caused by uric acid crystals that build up in a joint [1]. "
           "Drinking lemon water every morning dissolves kidney stones permanently [1].")
    result = A.finalise(raw, "en", [GOUT, GLAUCOMA], PROMPTS, question="What causes gout?", disclaimer=False)
    assert result.text == "Gout is caused by uric acid crystals that build up in a joint [1]."
    assert "unsupported_removed" in result.flags and "fallback_extractive" not in result.flags


def test_finalise_falls_back_when_no_sentence_is_supported():
    raw = "Sourdough bread needs a starter fed with flour and water for a week [2]."
    result = A.finalise(raw, "en", [GOUT, GLAUCOMA], PROMPTS, question="What causes gout?", disclaimer=False)
    assert "unsupported_removed" in result.flags and "fallback_extractive" in result.flags
    assert "Sourdough" not in result.text and "[1]" in result.text


def test_unsupported_sentences_chinese_answer_from_chinese_passage():
    kept = "高血压患者要低盐饮食，多吃新鲜蔬菜和水果[1]。"
    text, removed = A.remove_unsupported_sentences(kept + "每天喝红酒可以根治高血压，不用吃药[1]。", [ZH_HBP], "zh")
    assert text == kept and removed == 1
    assert A.remove_unsupported_sentences(kept, [ZH_HBP], "zh") == (kept, 0)


@pytest.mark.parametrize("raw,question,lang,kept", [
    ("糖尿病早期有哪些症状[1]。老是口渴、尿多是不是糖尿病[1]。", "糖尿病早期有哪些症状？老是口渴、尿多是不是糖尿病", "zh", ""),
    ("What causes gout [1]. Gout is caused by uric acid crystals [1].", "What causes gout?", "en",
     "Gout is caused by uric acid crystals [1]."),
    # short shared pieces are not echoes: real answers repeat the disease name
    ("高血压[1]。高血压需要长期服药控制[1]。", "高血压怎么治疗？", "zh", "高血压[1]。高血压需要长期服药控制[1]。"),
])
def test_sentences_restating_the_question_are_removed(raw, question, lang, kept):
    from chatbot.engine.answer import strip_question_echo

    text, removed = strip_question_echo(raw, question, lang)
    assert text == kept and removed == (text != raw)


def test_an_answer_that_only_restates_the_question_falls_back_to_the_passages():
    passages = [Passage(id="d#0", doc_id="d", text="Many people with diabetes experience extreme thirst "
                        "and a frequent need to urinate.", title="Diabetes", url="", source="MedQuAD", lang="en",
                        score=1.0)]
    answer = A.finalise("糖尿病早期有哪些症状[1]。老是口渴、尿多是不是糖尿病[1]。", "zh", passages, PROMPTS,
                      question="糖尿病早期有哪些症状？老是口渴、尿多是不是糖尿病")
    assert "question_echo" in answer.flags and "fallback_extractive" in answer.flags
    assert "extreme thirst" in answer.text
