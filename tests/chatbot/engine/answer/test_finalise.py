"""chatbot.engine.answer.finalise: the pipeline, the honest no-source reply, the answer messages."""

from __future__ import annotations

import pytest

from chatbot.engine.answer.checks import language_ok
from chatbot.engine.answer.citations import Citation
from chatbot.engine.answer.finalise import finalise, is_no_evidence_reply, no_evidence_answer
from knowledge_base.records import Passage
from tests.chatbot.engine.answer.samples import GLAUCOMA, GOUT, PROMPTS, ZH_DM, ZH_HBP, passage


def test_finalise_flags_prompt_echo():
    raw = "<<SYS>>\n[2] Glaucoma (TestSource)\nEarly glaucoma has no symptoms [2]."
    result = finalise(raw, "en", [GOUT, GLAUCOMA], PROMPTS, question="glaucoma?", disclaimer=False)
    assert result.flags == ["prompt_echo"] and result.text == "Early glaucoma has no symptoms [2]."


@pytest.mark.parametrize("raw,lang,question,problems", [
    ("the " * 60, "en", "What causes gout?", ["degenerate", "no_citation"]),
    ("高血压是高血压是" * 15, "zh", "高血压饮食要注意什么？", ["degenerate", "no_citation"]),
    ("Hypertension patients should eat less salt [1].", "zh", "高血压饮食要注意什么？",
     ["wrong_language"]),
    ("", "en", "What causes gout?", ["empty"]),
])
def test_finalise_garbage_falls_back_to_extractive(raw, lang, question, problems):
    passages = [GOUT, GLAUCOMA] if lang == "en" else [ZH_HBP, ZH_DM]
    result = finalise(raw, lang, passages, PROMPTS, question=question)
    assert result.extractive is True
    assert result.flags == ["fallback_extractive", *problems]
    assert result.citations and all(1 <= c.n <= len(passages) for c in result.citations)
    assert result.citations[0] == Citation(1, passages[0].doc_id, passages[0].title,
                                             passages[0].url, passages[0].source)
    assert result.text.endswith(PROMPTS.text(lang, "answer.disclaimer"))
    assert language_ok(result.text, lang)


def test_finalise_good_answer_keeps_text_maps_citations_and_adds_disclaimer():
    raw = "Gout is caused by uric acid crystals in a joint【1】. Eye exams find glaucoma early [2]."
    result = finalise(raw, "en", [GOUT, GLAUCOMA], PROMPTS, question="What causes gout?")
    assert result.flags == [] and result.extractive is False
    assert result.text == ("Gout is caused by uric acid crystals in a joint[1]. Eye exams find "
                           "glaucoma early [2].\n\n" + PROMPTS.text("en", "answer.disclaimer"))
    assert [c.n for c in result.citations] == [1, 2]
    assert result.citations[1].doc_id == "doc2" and result.citations[1].url.endswith("/2")


def test_finalise_drops_bad_markers_and_doses_with_flags():
    raw = ("高血压患者要低盐饮食，多吃新鲜蔬菜和水果[1][7]。每天服用硝苯地平30毫克[1]。"
           "血压控制不好时要在医生指导下服用降压药[1]。")
    result = finalise(raw, "zh", [ZH_HBP], PROMPTS, question="高血压怎么办？", disclaimer=False)
    assert result.flags == ["citations_removed", "dose_removed"]
    assert "[7]" not in result.text and "30毫克" not in result.text
    assert result.text.endswith(PROMPTS.text("zh", "answer.dose_removed"))
    assert PROMPTS.text("zh", "answer.disclaimer") not in result.text
    assert [c.n for c in result.citations] == [1]


def test_finalise_answer_left_empty_by_dose_removal_falls_back():
    raw = "Take 800 mg of ibuprofen [1]."
    result = finalise(raw, "en", [GOUT], PROMPTS, question="What do I take for a gout attack?")
    assert result.flags == ["dose_removed", "fallback_extractive", "empty"]
    assert "800" not in result.text and result.extractive


def test_finalise_with_nothing_to_quote_apologises():
    only_question = passage(1, "What is gout?", question="What is gout?")
    result = finalise("", "zh", [only_question], PROMPTS, question="痛风是什么？")
    assert result.flags == ["fallback_extractive", "empty", "generation_failed"]
    assert result.text.startswith(PROMPTS.text("zh", "answer.generation_failed"))
    assert result.citations == []


def test_finalise_without_passages_is_the_no_evidence_answer():
    result = finalise("Take 5 mg of something.", "zh", [], PROMPTS, question="司美格鲁肽打多少？")
    assert result.text == no_evidence_answer("zh", PROMPTS) == PROMPTS.text("zh", "answer.no_evidence")
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
    assert is_no_evidence_reply(raw, lang, PROMPTS) is expected


@pytest.mark.parametrize("raw,lang", [
    ("I have no reliable source for this question [9]. Please see a clinician.", "en"),
    ("没有可靠的资料来源，建议就医。", "zh"),
])
def test_finalise_keeps_an_honest_no_source_reply_instead_of_quoting(raw, lang):
    result = finalise(raw, lang, [GOUT, GLAUCOMA], PROMPTS, question="tirzepatide dose?")
    assert result.text == PROMPTS.text(lang, "answer.no_evidence")
    assert result.flags[-1] == "no_evidence" and not result.extractive and result.citations == []



@pytest.mark.parametrize("raw,lang,passages,question", [
    ("I have no reliable source for this question. Please see a clinician.", "en", [GOUT, GLAUCOMA],
     "What causes gout?"),
    ("没有可靠的资料来源，建议就医。", "zh", [ZH_HBP, ZH_DM], "高血压饮食上要注意什么？"),
])
def test_a_refusal_past_the_evidence_gate_is_overruled_by_the_composed_answer(raw, lang, passages, question):
    result = finalise(raw, lang, passages, PROMPTS, question=question, overrule_refusal=True)
    assert "model_refused" in result.flags and "fallback_extractive" in result.flags
    assert "no_evidence" not in result.flags and result.extractive
    assert PROMPTS.text(lang, "answer.no_evidence") not in result.text
    assert [c.n for c in result.citations] and all(c.n == 1 for c in result.citations[:1])
    assert result.text.endswith(PROMPTS.text(lang, "answer.disclaimer"))
    # every quoted line is verbatim from the passage it cites
    for line in result.text.splitlines():
        if line.endswith("]"):
            sentence, n = line.rsplit(" [", 1)
            assert sentence in passages[int(n[:-1]) - 1].text


@pytest.mark.parametrize("raw,lang,question", [
    # No passage's title is named: the library has no page on tirzepatide, the refusal stands.
    ("I have no reliable source for this question. Please see a clinician.", "en", "tirzepatide dose?"),
    ("没有可靠的资料来源，建议就医。", "zh", "司美格鲁肽在哪里买？"),
])
def test_a_refusal_on_a_topic_the_library_lacks_stands(raw, lang, question):
    result = finalise(raw, lang, [GOUT, GLAUCOMA], PROMPTS, question=question, overrule_refusal=True)
    assert result.text == PROMPTS.text(lang, "answer.no_evidence") and result.flags[-1] == "no_evidence"

def test_strong_retrieval_overrules_a_refusal_even_when_no_title_is_named():
    # "what to eat for high uric acid" names no page title; the caller's retrieval was strong
    raw = "I have no reliable source for this question. Please see a clinician."
    question = "what should I eat if my uric acid is high?"
    weak = finalise(raw, "en", [GOUT, GLAUCOMA], PROMPTS, question=question, overrule_refusal=True)
    assert weak.flags[-1] == "no_evidence"
    strong = finalise(raw, "en", [GOUT, GLAUCOMA], PROMPTS, question=question, overrule_refusal=True,
                      strong_evidence=True)
    assert "model_refused" in strong.flags and "no_evidence" not in strong.flags
    assert strong.citations and strong.citations[0].doc_id == GOUT.doc_id
    # without the overrule setting nothing overrules the model
    off = finalise(raw, "en", [GOUT, GLAUCOMA], PROMPTS, question=question, strong_evidence=True)
    assert off.flags[-1] == "no_evidence"


def test_the_extract_added_to_a_chinese_answer_never_quotes_english_pages():
    # The model answered in Chinese from an English page: the English sentences of that page must
    # not follow the Chinese answer (a wall of English for a Chinese patient).
    raw = "痛风是由尿酸结晶在关节里沉积引起的 [1]。"
    english_only = finalise(raw, "zh", [GOUT], PROMPTS, question="痛风是什么原因引起的？", add_extract=True)
    assert "extract_added" not in english_only.flags
    assert "uric acid" not in english_only.text and english_only.text.startswith(raw)
    # with a Chinese page beside it, the Chinese sentences are added, the English ones are not
    mixed = finalise("高血压患者要低盐饮食 [1]。", "zh", [ZH_HBP, GOUT], PROMPTS,
                     question="高血压饮食上要注意什么？", add_extract=True)
    assert "extract_added" in mixed.flags and "多吃新鲜蔬菜和水果" in mixed.text
    assert "uric acid" not in mixed.text and language_ok(mixed.text, "zh")


ANSWER_KEYS = {"answer.no_evidence", "answer.extractive_intro", "answer.extractive_other_language",
               "answer.dose_removed", "answer.disclaimer", "answer.sources_heading",
               "answer.generation_failed", "answer.combination_not_covered", "answer.detail_not_covered"}


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_answer_messages_exist_in_both_languages_in_the_right_language(lang):
    messages = {k: v for k, v in PROMPTS.messages(lang).items() if k.startswith("answer.")}
    assert set(messages) == ANSWER_KEYS
    for key, text in messages.items():
        assert text and "\n" not in text, key
        if key != "answer.sources_heading":
            assert language_ok(text, lang), key
    assert len(messages["answer.disclaimer"]) <= (80 if lang == "en" else 40)  # one short line


def test_finalise_removes_a_sentence_its_citation_does_not_support():
    raw = ("Gout is caused by uric acid crystals that build up in a joint [1]. "
           "Drinking lemon water every morning dissolves kidney stones permanently [1].")
    result = finalise(raw, "en", [GOUT, GLAUCOMA], PROMPTS, question="What causes gout?", disclaimer=False)
    assert result.text == "Gout is caused by uric acid crystals that build up in a joint [1]."
    assert "unsupported_removed" in result.flags and "fallback_extractive" not in result.flags


def test_finalise_falls_back_when_no_sentence_is_supported():
    raw = "Sourdough bread needs a starter fed with flour and water for a week [2]."
    result = finalise(raw, "en", [GOUT, GLAUCOMA], PROMPTS, question="What causes gout?", disclaimer=False)
    assert "unsupported_removed" in result.flags and "fallback_extractive" in result.flags
    assert "Sourdough" not in result.text and "[1]" in result.text


def test_an_answer_that_only_restates_the_question_falls_back_to_the_passages():
    passages = [Passage(id="d#0", doc_id="d", text="Many people with diabetes experience extreme thirst "
                        "and a frequent need to urinate.", title="Diabetes", url="", source="MedQuAD", lang="en",
                        score=1.0)]
    answer = finalise("糖尿病早期有哪些症状[1]。老是口渴、尿多是不是糖尿病[1]。", "zh", passages, PROMPTS,
                      question="糖尿病早期有哪些症状？老是口渴、尿多是不是糖尿病")
    assert "question_echo" in answer.flags and "fallback_extractive" in answer.flags
    assert "extreme thirst" in answer.text
