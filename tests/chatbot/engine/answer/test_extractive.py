"""chatbot.engine.answer.extractive: the extractive fallback: verbatim quotes with their [n]."""

from __future__ import annotations

from chatbot.engine.answer.extractive import extractive_answer
from tests.chatbot.engine.answer.samples import ASTHMA, GLAUCOMA, GOUT, PROMPTS, ZH_DM, ZH_HBP, passage, quoted_lines


def test_extractive_answer_en_quotes_matching_sentences_verbatim():
    passages = [GOUT, GLAUCOMA, ASTHMA]
    text = extractive_answer("What causes gout? Is it uric acid?", "en", passages, PROMPTS)
    lines = text.splitlines()
    assert lines[0] == PROMPTS.text("en", "answer.extractive_intro")
    quoted = quoted_lines(text)
    assert 1 <= len(quoted) <= 3
    for sentence, n in quoted:
        assert sentence in passages[n - 1].text            # verbatim, from the passage it cites
    assert quoted[0] == ("Gout is caused by uric acid crystals that build up in a joint, often the "
                         "big toe.", 1)
    assert "What causes gout?" not in text                 # the stored question is not an answer


def test_extractive_answer_zh_question_over_english_passages_says_so():
    text = extractive_answer("青光眼早期有什么症状？", "zh", [GLAUCOMA, GOUT], PROMPTS)
    assert text.splitlines()[0] == PROMPTS.text("zh", "answer.extractive_other_language")
    quoted = quoted_lines(text)
    assert ("Early glaucoma has no symptoms; later, side vision is lost.", 1) in quoted
    assert all(sentence in [GLAUCOMA, GOUT][n - 1].text for sentence, n in quoted)


def test_extractive_answer_zh_over_zh_passages_uses_the_plain_intro():
    text = extractive_answer("糖尿病人能吃水果吗？", "zh", [ZH_HBP, ZH_DM], PROMPTS)
    assert text.splitlines()[0] == PROMPTS.text("zh", "answer.extractive_intro")
    assert ("糖尿病患者可以适量吃含糖量低的水果，比如苹果、柚子，应在两餐之间吃，并监测血糖。", 2) in \
        quoted_lines(text)


def test_extractive_answer_keeps_a_list_with_its_intro():
    # The layout of the NHLBI asthma passage: an intro, unbulleted items, then a paragraph.
    nhlbi = passage(1, "What are the symptoms of Asthma ?\nCommon signs and symptoms of asthma include:"
                       "\n\nCoughing. Coughing from asthma often is worse at night.\n\nWheezing. Wheezing "
                       "is a whistling sound.\n\nNot all people who have asthma have these symptoms. "
                       "A lung function test helps.", question="What are the symptoms of Asthma ?")
    kidney = passage(2, "You may have a kidney stone if you\n- have pain while urinating\n- see blood in "
                        "your urine\nThe pain may last for a short or long time.")
    text = extractive_answer("What are the symptoms of asthma?", "en", [nhlbi], PROMPTS)
    assert "Common signs and symptoms of asthma include:\n- Coughing.\n- Wheezing. [1]" in text
    assert "- Not all people" not in text
    text = extractive_answer("kidney stone pain?", "en", [kidney], PROMPTS)
    assert ("You may have a kidney stone if you\n- have pain while urinating\n- see blood in your "
            "urine [1]") in text


def test_extractive_answer_without_usable_sentences_is_the_generation_failed_message():
    assert extractive_answer("gout?", "en", [], PROMPTS) == \
        PROMPTS.text("en", "answer.generation_failed")
