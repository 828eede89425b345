"""chatbot.engine.answer.echo: what a base model echoes: template tokens, headers, copied instructions, the question."""

from __future__ import annotations

import pytest

from chatbot.engine.answer.echo import strip_prompt_echo, strip_question_echo
from tests.chatbot.engine.answer.samples import GLAUCOMA, GOUT, ZH_HBP


def test_strip_prompt_echo_removes_scaffolding_a_base_model_copies():
    # Shape of a real Gemma-3-270M (base) output on the dev set: template token, header, fence,
    # the chunk's stored question, then text.
    raw = (" <<SYS>>\n\n[1] Gout (TestSource)\n<<<\nWhat causes gout?\nGout is caused by uric acid "
           "crystals [1].\n>>>\n<end_of_turn>")
    assert strip_prompt_echo(raw, [GOUT, GLAUCOMA]) == ("Gout is caused by uric acid crystals [1].",
                                                          True)
    # The prompt's "[n]" placeholder copied as if it were a citation
    assert strip_prompt_echo("[n] Gout is caused by uric acid [1].", [GOUT]) == \
        ("Gout is caused by uric acid [1].", True)
    plain = "Gout is caused by uric acid crystals [1].  [2] Glaucoma checks matter too.\n"
    assert strip_prompt_echo(plain, [GOUT, GLAUCOMA]) == (plain, False)


def test_strip_prompt_echo_removes_copied_instructions():
    # Real SmolLM2-135M output on the dev set: it copied the Chinese system prompt.
    template = ("只依据下面给出的编号参考资料作答。每句话后面用 [1]、[2] 等标注出处。参考资料可能是英文，"
                "请用中文转述。\n患者的问题：{question}")
    raw = ("参考资料可能是英文，请用中文转述：[n] 每句话后面用 [1]、[2] 等标注出处。\n"
           "[n] 每句话中用 [1]、[2] 等标注出处。\n"     # remixed copy: 5 of 8 trigrams in the template
           "高血压患者要低盐饮食[1]。\n患者的问题：")
    assert strip_prompt_echo(raw, [ZH_HBP], [template]) == ("高血压患者要低盐饮食[1]。", True)
    # A real answer sharing a phrase with the instructions stays.
    kept = "参考资料[1]提到，高血压患者要低盐饮食，多吃蔬菜[1]。"
    assert strip_prompt_echo(kept, [ZH_HBP], [template]) == (kept, False)
    en = "Use only the numbered reference passages you are given. Cite as [1], [2]."
    raw = "use only the numbered reference passages you were given. Gout is caused by uric acid [1]."
    assert strip_prompt_echo(raw, [GOUT], [en]) == ("Gout is caused by uric acid [1].", True)


@pytest.mark.parametrize("raw,question,lang,kept", [
    ("糖尿病早期有哪些症状[1]。老是口渴、尿多是不是糖尿病[1]。", "糖尿病早期有哪些症状？老是口渴、尿多是不是糖尿病", "zh", ""),
    ("What causes gout [1]. Gout is caused by uric acid crystals [1].", "What causes gout?", "en",
     "Gout is caused by uric acid crystals [1]."),
    # short shared pieces are not echoes: real answers repeat the disease name
    ("高血压[1]。高血压需要长期服药控制[1]。", "高血压怎么治疗？", "zh", "高血压[1]。高血压需要长期服药控制[1]。"),
])
def test_sentences_restating_the_question_are_removed(raw, question, lang, kept):
    text, removed = strip_question_echo(raw, question, lang)
    assert text == kept and removed == (text != raw)
