"""The red-flag screen inside the consultation service: an emergency never reaches retrieval or
the generator, is logged with its category and rule ids, and answers with the fixed message and
the configured number. Real parts: RedFlagScreen with the shipped rules, SQLite store, FAISS/BM25
index (hash embedder); the generator is the FakeGenerator (its ``calls`` prove no LLM call)."""

from __future__ import annotations

import pytest

from chatbot.app import build_app, make_safety_screen
from chatbot.engine.service import ConsultationService
from chatbot.llm.fake import FakeGenerator
from chatbot.prompts import PromptLibrary
from chatbot.protocols import NoSafetyScreen
from chatbot.safety import RedFlagScreen
from chatbot.settings import ChatSettings, LLMSettings, SafetySettings, load_settings
from chatbot.store import ChatStore
from knowledge_base.retriever import Retriever

PROMPTS = PromptLibrary()
OPEN_GATE = ChatSettings(min_dense_evidence_en=0.0, min_dense_evidence_zh=0.0)


class NoSearch(Retriever):
    def search(self, *a, **k):
        raise AssertionError("retrieval must not run on an emergency")


def service_with(index, tmp_path, safety, retriever=None, generator=None):
    return ConsultationService(
        retriever=retriever or Retriever(index), generator=generator or FakeGenerator(),
        store=ChatStore(tmp_path / "chat.sqlite"), prompts=PROMPTS, chat=OPEN_GATE,
        llm=LLMSettings(backend="fake"), safety=safety)


@pytest.mark.parametrize("text,lang,category,key", [
    ("胸口压着疼，出冷汗", "zh", "cardiac", "safety.cardiac"),
    ("my dad's face is drooping and he can't speak", "en", "stroke", "safety.stroke"),
    ("不想活了", "zh", "self_harm", "safety.self_harm"),
    ("took 30 pills an hour ago", "en", "poisoning", "safety.poisoning"),
])
def test_emergency_short_circuits_and_is_logged(built_index, tmp_path, text, lang, category, key):
    gen = FakeGenerator()
    screen = RedFlagScreen(SafetySettings(locale="cn"), PROMPTS)
    service = service_with(built_index, tmp_path, screen, retriever=NoSearch(built_index), generator=gen)
    events = list(service.reply(None, text))
    result = events[-1].data
    assert gen.calls == [] and [e.kind for e in events] == ["meta", "final"]
    assert "emergency" in result.flags and "safety_screen_off" not in result.flags
    assert result.backend == "none" and result.citations == [] and result.passages == []
    assert result.answer.startswith(PROMPTS.text(lang, key, number="120")) and "120" in result.answer
    assert result.red_flag["category"] == category and result.red_flag["rule_ids"]
    assert result.red_flag["number"] == "120" and result.red_flag["evidence"]
    logged = service.store.events(kind="red_flag")
    assert len(logged) == 1 and logged[0].session_id == result.session_id
    payload = logged[0].payload
    assert payload["category"] == category and payload["rule_ids"] == result.red_flag["rule_ids"]
    assert payload["screen"] == "redflag"
    # the exchange is stored like any other, with the red flag in the assistant's metadata
    history = service.store.history(result.session_id)
    assert [m.role for m in history] == ["user", "assistant"]
    assert history[1].meta["red_flag"]["category"] == category


def test_every_emergency_in_a_session_is_logged(built_index, tmp_path):
    service = service_with(built_index, tmp_path, RedFlagScreen(SafetySettings(), PROMPTS))
    first = service.ask("我爸突然晕倒了，叫不醒")
    service.ask("他现在抽搐，口吐白沫", session_id=first.session_id)
    logged = service.store.events(kind="red_flag")
    assert [e.payload["category"] for e in logged] == ["seizure", "consciousness"]  # newest first


def test_non_emergency_goes_to_retrieval_and_generation(built_index, tmp_path):
    gen = FakeGenerator()
    service = service_with(built_index, tmp_path, RedFlagScreen(SafetySettings(), PROMPTS), generator=gen)
    result = service.ask("What are the signs of a heart attack and how is asthma treated?")
    assert len(gen.calls) == 1 and result.red_flag is None
    assert "emergency" not in result.flags and "safety_screen_off" not in result.flags
    assert service.store.events(kind="red_flag") == []


def test_build_app_wires_the_screen_and_the_switch(monkeypatch, tmp_path, built_index):
    monkeypatch.setenv("MEDCHAT_PATHS__INDEX_DIR", str(built_index))
    monkeypatch.setenv("MEDCHAT_PATHS__DATABASE", str(tmp_path / "db.sqlite"))
    monkeypatch.setenv("MEDCHAT_SAFETY__EMERGENCY_NUMBER", "999")
    settings = load_settings()
    gen = FakeGenerator()
    app = build_app(settings, generator=gen)
    assert isinstance(app.service.safety, RedFlagScreen) and app.safety is app.service.safety
    result = app.service.ask("my husband is having a seizure")
    assert gen.calls == [] and result.red_flag["number"] == "999"
    assert "999" in result.answer and "120" not in result.answer

    monkeypatch.setenv("MEDCHAT_SAFETY__ENABLED", "false")
    off = build_app(load_settings(), generator=FakeGenerator())
    assert isinstance(off.service.safety, NoSafetyScreen)
    assert isinstance(make_safety_screen(load_settings()), NoSafetyScreen)


def test_locale_and_crisis_line_from_the_environment(monkeypatch):
    monkeypatch.setenv("MEDCHAT_SAFETY__LOCALE", "us")
    monkeypatch.setenv("MEDCHAT_SAFETY__CRISIS_LINE", '{"us": "988 (call or text)"}')
    screen = make_safety_screen(load_settings())
    result = screen.screen("I want to end my life", "en")
    assert result.number == "911" and "911" in result.message
    assert result.crisis_line == "988 (call or text)" and "988 (call or text)" in result.message
