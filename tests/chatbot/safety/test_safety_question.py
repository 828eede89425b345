"""The detector's unsure band in the consultation service: one fixed safety question before any
retrieval or model; a yes or not sure escalates with the fixed message, a no answers the original
question, anything else is a new message. Real parts: RedFlagScreen with the shipped rules, a
hand-weighted detector (tests/chatbot/safety/test_detector.py), SQLite store, FAISS/BM25 index."""

from __future__ import annotations

import pytest

from chatbot.llm.fake import FakeGenerator
from chatbot.prompts import PromptLibrary
from chatbot.safety import RedFlagScreen
from chatbot.safety.detector import EmergencyDetector
from chatbot.safety.question import parse_answer
from chatbot.settings import SafetySettings
from tests.chatbot.safety.test_detector import ZeroEmbedder, hand_model
from tests.chatbot.safety.test_safety_service import service_with

PROMPTS = PromptLibrary()
UNSURE = "my dad is a bit blimfy"     # the hand model's unsure band, no lexicon word
ALARM = "he is zorbly"           # the hand model's emergency band


@pytest.fixture
def service(built_index, tmp_path):
    hand_model().save(tmp_path / "det")
    screen = RedFlagScreen(SafetySettings(), PROMPTS,
                           detector=EmergencyDetector(tmp_path / "det", embedder=ZeroEmbedder()))
    return service_with(built_index, tmp_path, screen, generator=FakeGenerator())


def test_unsure_message_gets_the_question_and_no_model_call(service):
    result = service.ask(UNSURE)
    assert "safety_question" in result.flags and "emergency" not in result.flags
    assert service.generator.calls == [] and result.passages == [] and result.red_flag is None
    q = result.safety_question
    assert q["question"] == PROMPTS.text("en", "safety.question.breathing")
    assert [o["id"] for o in q["options"]] == ["yes", "no", "unsure"]
    assert result.answer.startswith(q["question"]) and "Not sure" in result.answer
    assert result.to_json()["safety_question"] == q
    logged = service.store.events(kind="safety_question")
    assert len(logged) == 1 and logged[0].payload["detector"]["version"] == "test-1"


@pytest.mark.parametrize("answer", ["Yes", "Not sure", "yes!"])
def test_yes_or_unsure_escalates_with_the_fixed_message(service, answer):
    first = service.ask(UNSURE)
    second = service.ask(answer, session_id=first.session_id)
    assert "emergency" in second.flags and service.generator.calls == []
    assert second.red_flag["rule_ids"] == ["safety_question:breathing"]
    assert second.answer.startswith(PROMPTS.text("en", "safety.breathing", number="120"))
    event = service.store.events(kind="red_flag")[0]
    assert event.payload["via"] == "safety_question" and event.payload["detector"]["threshold_low"] == 0.3


def test_no_answers_the_original_question_without_asking_again(service):
    first = service.ask(UNSURE)
    second = service.ask("No", session_id=first.session_id)
    assert "safety_answer_no" in second.flags and "safety_question" not in second.flags
    assert len(service.generator.calls) == 1 and second.red_flag is None
    # the model was asked the original question, not "No"
    assert UNSURE in service.generator.calls[0][-1].content


def test_anything_else_is_a_new_message_screened_again(service):
    first = service.ask(UNSURE)
    second = service.ask("no, " + ALARM, session_id=first.session_id)
    assert "emergency" in second.flags and second.red_flag["rule_ids"] == ["detector:test-1"]


def test_chinese_question_and_answers(service):
    first = service.ask("我爸 blimfy")
    assert first.safety_question["question"] == PROMPTS.text("zh", "safety.question.breathing")
    assert [o["label"] for o in first.safety_question["options"]] == ["是", "否", "不确定"]
    second = service.ask("不确定", session_id=first.session_id)
    assert "emergency" in second.flags and second.lang == "zh"
    assert second.answer.startswith(PROMPTS.text("zh", "safety.breathing", number="120"))


def test_a_yes_without_a_pending_question_is_an_ordinary_message(service):
    result = service.ask("Yes")
    assert "emergency" not in result.flags and "safety_answer_yes" not in result.flags


@pytest.mark.parametrize("text,expected", [
    ("是", "yes"), ("Yes.", "yes"), ("否", "no"), ("nope", "no"), ("不确定", "unsure"), ("not sure", "unsure"),
    ("没有。", "no"), ("no, but now he is not waking up", None), ("他呼吸正常", None), ("", None),
])
def test_answer_parsing_is_narrow(text, expected):
    assert parse_answer(text) == expected
