"""chatbot.engine.answer.compose: question types and the composed, section-aware answer."""

from __future__ import annotations

import pytest

from chatbot.engine.answer import compose_answer, names_the_topic, question_types
from knowledge_base.records import Passage
from tests.chatbot.engine.answer.samples import PROMPTS, quoted_lines


def _p(n: int, text: str, section: str, title: str = "Type 2 Diabetes", lang: str = "en") -> Passage:
    return Passage(id=f"d{n}#c0", doc_id=f"d{n}", text=text, title=title, url=f"https://example.org/{n}",
                   source="Test", lang=lang, score=1.0, section=section)


DM_INFO = _p(1, "Type 2 diabetes is a disease in which blood glucose is too high. It is the most "
                "common kind of diabetes. Many people do not know they have it.", "information")
DM_SYMPTOMS = _p(2, "Symptoms of type 2 diabetes include increased thirst and urination. Other "
                    "symptoms are feeling tired and blurred vision. Sores that heal slowly are another "
                    "sign. Some people have numbness in the feet.", "symptoms")
DM_TREAT = _p(3, "Type 2 diabetes is treated with healthy eating and physical activity. Metformin is "
                 "often the first medicine.", "treatment")
GOUT_SYMPTOMS = _p(4, "Gout attacks cause sudden severe joint pain, often in the big toe.", "symptoms",
                   title="Gout")


@pytest.mark.parametrize("question,lang,expected", [
    ("What are the symptoms of type 2 diabetes?", "en", ["symptoms"]),
    ("what causes gout and how is it treated", "en", ["causes", "treatment"]),
    ("how is it treated and what causes it", "en", ["treatment", "causes"]),   # the question's order
    ("gout?", "en", ["information"]),                                          # bare topic: overview
    ("What is glaucoma?", "en", ["information"]),
    ("糖尿病有什么症状？", "zh", ["symptoms"]),
    ("失眠怎么办", "zh", ["treatment"]),
    ("痛风是什么原因引起的，能根治吗", "zh", ["causes", "treatment"]),
    ("高血压会遗传吗", "zh", ["inheritance"]),
])
def test_question_types(question, lang, expected):
    assert question_types(question, lang) == expected


def test_the_classifier_hint_joins_last_and_is_not_repeated():
    assert question_types("What are the symptoms of gout?", "en", hint="treatment") == ["symptoms", "treatment"]
    assert question_types("What are the symptoms of gout?", "en", hint="symptoms") == ["symptoms"]
    assert question_types("gout", "en", hint="causes") == ["causes"]




def test_a_symptoms_question_gets_the_symptoms_section_not_the_first_passage():
    passages = [DM_INFO, DM_SYMPTOMS, DM_TREAT]
    text = compose_answer("What are the symptoms of type 2 diabetes?", "en", passages, PROMPTS)
    quoted = quoted_lines(text)
    assert text.splitlines()[0] == PROMPTS.text("en", "answer.extractive_intro")
    # The whole symptoms section, in reading order, each line citing [2]; verbatim.
    assert [s for s, n in quoted if n == 2] == [
        "Symptoms of type 2 diabetes include increased thirst and urination.",
        "Other symptoms are feeling tired and blurred vision.",
        "Sores that heal slowly are another sign.",
        "Some people have numbness in the feet."]
    assert quoted[0][1] == 2                                     # the answer comes first
    assert all(s in passages[n - 1].text for s, n in quoted)
    assert not any(n == 3 for _, n in quoted)                    # treatment shares no word but the topic's


def test_two_types_in_one_question_quote_both_sections_in_the_question_order():
    passages = [DM_INFO, DM_SYMPTOMS, DM_TREAT]
    quoted = quoted_lines(compose_answer("How is type 2 diabetes treated, and what are its symptoms?", "en",
                                    passages, PROMPTS))
    ns = [n for _, n in quoted]
    assert 3 in ns and 2 in ns and ns.index(3) < ns.index(2)


def test_the_topic_of_passage_one_wins_over_another_documents_matching_section():
    # [2] is a symptoms section too, of gout: the question is about [1]'s topic, answered in [3].
    passages = [DM_INFO, GOUT_SYMPTOMS, DM_SYMPTOMS]
    quoted = quoted_lines(compose_answer("what are the symptoms of type 2 diabetes", "en", passages, PROMPTS))
    assert quoted[0] == ("Symptoms of type 2 diabetes include increased thirst and urination.", 3)
    assert all(n != 2 for _, n in quoted)                         # gout shares no topic word


def test_a_matching_section_in_the_top_three_moves_the_focus_when_one_has_none():
    # [1]'s document has no symptoms section here; [2] answers the type and becomes the focus.
    passages = [DM_TREAT, GOUT_SYMPTOMS]
    quoted = quoted_lines(compose_answer("what are the symptoms of gout", "en", passages, PROMPTS))
    assert quoted[0] == ("Gout attacks cause sudden severe joint pain, often in the big toe.", 2)


def test_the_budget_caps_the_number_of_units():
    long = _p(1, " ".join(f"Symptom number {i} of this disease is a distinct complaint." for i in range(20)),
              "symptoms")
    quoted = quoted_lines(compose_answer("What are the symptoms?", "en", [long], PROMPTS))
    assert 3 <= len(quoted) <= 8     # 3-8 sentences or bullets (issue 15)


def test_duplicate_sentences_of_two_chunks_are_quoted_once():
    a = _p(1, "Insomnia is trouble falling or staying asleep. Good sleep habits help most people.", "treatment",
           title="Insomnia")
    b = _p(2, "Good sleep habits help most people. Cognitive behavioural therapy is the first treatment.",
           "treatment", title="Insomnia")
    quoted = quoted_lines(compose_answer("How is insomnia treated?", "en", [a, b], PROMPTS))
    sentences = [s for s, _ in quoted]
    assert sentences.count("Good sleep habits help most people.") == 1
    assert "Cognitive behavioural therapy is the first treatment." in sentences


def test_a_chinese_question_over_english_pages_says_the_quotes_are_english():
    text = compose_answer("2型糖尿病有什么症状？", "zh", [DM_INFO, DM_SYMPTOMS], PROMPTS)
    assert text.splitlines()[0] == PROMPTS.text("zh", "answer.extractive_other_language")
    assert ("Symptoms of type 2 diabetes include increased thirst and urination.", 2) in quoted_lines(text)


def test_a_chinese_question_over_chinese_passages():
    zh = _p(1, "失眠的治疗首先是养成良好的睡眠习惯，每天按时起床。睡前不要喝咖啡和浓茶。必要时在医生指导下短期用药。",
            "", title="失眠", lang="zh")
    text = compose_answer("最近总是失眠怎么办？", "zh", [zh], PROMPTS)
    assert text.splitlines()[0] == PROMPTS.text("zh", "answer.extractive_intro")
    quoted = quoted_lines(text)
    assert len(quoted) >= 2 and all(s in zh.text for s, _ in quoted)


def test_no_passages_is_the_generation_failed_message_not_an_invented_answer():
    for lang in ("en", "zh"):
        assert compose_answer("gout?", lang, [], PROMPTS) == PROMPTS.text(lang, "answer.generation_failed")


@pytest.mark.parametrize("question,lang,passages,expected", [
    ("What are the symptoms of type 2 diabetes?", "en", [DM_INFO], True),
    ("type 2 diabetes?", "en", [GOUT_SYMPTOMS, DM_TREAT], True),           # any of the top passages
    ("What are the symptoms of diabetes?", "en", [DM_INFO], False),        # "type 2" not named
    ("Is tirzepatide better than semaglutide?", "en", [DM_INFO, GOUT_SYMPTOMS], False),
    ("痛风有什么症状？", "zh", [GOUT_SYMPTOMS], True),                          # glossary: 痛风 -> gout
    ("北京哪家医院好？", "zh", [GOUT_SYMPTOMS], False),
    # a headline of many words is not a topic anyone names
    ("kidney failure treatment", "en", [_p(9, "Dialysis is one choice.", "treatment",
                                          title="Kidney Failure: Choosing a Treatment That Is Right for You")], False),
])
def test_names_the_topic(question, lang, passages, expected):
    assert names_the_topic(question, lang, passages) is expected


def test_a_page_on_the_named_topic_is_the_focus_over_another_topics_matching_section():
    # "adult acne" names passage [1]'s title; [2] is another topic whose *treatment* section
    # matches the question's type. The answer is about acne, not about cardiogenic shock.
    acne = _p(1, "Acne is a common skin disease that causes pimples. Pimples form when hair follicles "
                 "under your skin clog up.", "information", title="Acne")
    shock = _p(2, "Surgery to repair a break in the wall that separates the heart's chambers. This break "
                  "is called a septal rupture.", "treatment", title="Cardiogenic Shock")
    quoted = quoted_lines(compose_answer("What is the best way to treat adult acne? I'm 34.", "en",
                                         [acne, shock], PROMPTS))
    assert quoted[0] == ("Acne is a common skin disease that causes pimples.", 1)
    assert all(n == 1 for _, n in quoted)


def test_a_list_repeated_by_the_next_chunk_is_quoted_once():
    a = _p(1, "Migraine triggers vary.\nThese include\n- Anxiety\n- Stress\n- Lack of sleep", "causes", title="Migraine")
    b = _p(2, "Anxiety\n- Stress\n- Lack of sleep\nMedicines can help prevent migraine attacks.", "causes",
           title="Migraine")
    text = compose_answer("What causes migraine?", "en", [a, b], PROMPTS)
    assert text.count("Stress") == 1
    assert "Medicines can help prevent migraine attacks." in text
