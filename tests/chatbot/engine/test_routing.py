"""Routing and tone in the engine: short routes skip retrieval and the model; medical intents are
answered, with the intent as an optional section hint; fear/sadness/anger set the tone. The
classifier here is a fixed fake at the seam (its own tests train a real tiny head); every reply
text is compared with the per-language templates, not with strings copied from the code."""

from __future__ import annotations

import pytest

from chatbot.engine.routing import Route, Router, RoutingConfig
from chatbot.engine.service import ConsultationService
from chatbot.llm.fake import FakeGenerator
from chatbot.prompts import PromptLibrary
from chatbot.protocols import Label, ScreenResult, Understanding
from chatbot.settings import ChatSettings, LLMSettings
from chatbot.store import ChatStore
from knowledge_base.retriever import Retriever

PROMPTS = PromptLibrary()
OPEN_GATE = ChatSettings(min_dense_evidence_en=0.0, min_dense_evidence_zh=0.0)


class FixedClassifier:
    name = "fixed"

    def __init__(self, intent: str, emotion: str = "neutral", intent_score: float = 0.9,
                 emotion_score: float = 0.9) -> None:
        self.u = Understanding(Label(intent, intent_score), Label(emotion, emotion_score))
        self.seen: list[tuple[str, str]] = []

    def classify(self, text: str, lang: str) -> Understanding:
        self.seen.append((text, lang))
        return self.u


class SpyRetriever(Retriever):
    def search(self, query, k=10, lang=None, method=None, section_hint=None):
        self.hints = getattr(self, "hints", []) + [section_hint]
        return super().search(query, k=k, lang=lang, method=method, section_hint=section_hint)


def service_with(index, tmp_path, classifier, gen=None, router=None, safety=None, retriever=None):
    return ConsultationService(
        retriever=retriever or Retriever(index), generator=gen or FakeGenerator(),
        store=ChatStore(tmp_path / "chat.sqlite"), prompts=PROMPTS, chat=OPEN_GATE,
        llm=LLMSettings(backend="fake"), classifier=classifier, router=router, safety=safety)


@pytest.mark.parametrize("text,lang", [("帮我写一首关于春天的诗", "zh"), ("Write me a poem about the sea", "en")])
def test_out_of_scope_is_refused_in_the_patients_language_without_the_model(built_index, tmp_path, text, lang):
    gen = FakeGenerator()
    retriever = SpyRetriever(built_index)
    service = service_with(built_index, tmp_path, FixedClassifier("out_of_scope"), gen=gen, retriever=retriever)
    result = service.ask(text)
    assert gen.calls == [] and not hasattr(retriever, "hints")
    assert result.lang == lang and result.answer == PROMPTS.text(lang, "route.out_of_scope")
    assert "route_out_of_scope" in result.flags and "classifier_off" not in result.flags
    assert result.intent == {"label": "out_of_scope", "score": 0.9}
    # stored like any exchange
    assert [m.role for m in service.store.history(result.session_id)] == ["user", "assistant"]


@pytest.mark.parametrize("text,lang", [("你好", "zh"), ("Hello there", "en")])
def test_small_talk_gets_a_brief_reply(built_index, tmp_path, text, lang):
    gen = FakeGenerator()
    result = service_with(built_index, tmp_path, FixedClassifier("greeting"), gen=gen).ask(text)
    assert gen.calls == [] and result.answer == PROMPTS.text(lang, "route.small_talk")


@pytest.mark.parametrize("text,lang,dept", [
    ("皮肤起疹子应该挂哪个科？", "zh", "dermatology"),
    ("Which department should I see for my child's fever?", "en", "pediatrics"),
])
def test_administrative_suggests_a_department(built_index, tmp_path, text, lang, dept):
    gen = FakeGenerator()
    result = service_with(built_index, tmp_path, FixedClassifier("administrative"), gen=gen).ask(text)
    assert gen.calls == []
    expected_line = PROMPTS.text(lang, "route.department", department=PROMPTS.text(lang, f"dept.{dept}"))
    assert result.answer.startswith(expected_line)
    assert PROMPTS.text(lang, "route.administrative") in result.answer


def test_administrative_without_a_known_topic_points_to_general_medicine(built_index, tmp_path):
    result = service_with(built_index, tmp_path, FixedClassifier("administrative")).ask("How do I book an appointment?")
    assert result.answer.startswith(PROMPTS.text("en", "route.department_unknown"))


def test_care_advice_answer_also_names_the_department(built_index, tmp_path):
    gen = FakeGenerator()
    result = service_with(built_index, tmp_path, FixedClassifier("care_advice"), gen=gen).ask(
        "胃疼应该挂什么科？")
    assert len(gen.calls) == 1  # answered from the library, with the department line first
    line = PROMPTS.text("zh", "route.department", department=PROMPTS.text("zh", "dept.gastroenterology"))
    assert result.answer.startswith(line)


def test_a_low_scored_short_route_is_answered_as_a_medical_question(built_index, tmp_path):
    gen = FakeGenerator()
    service = service_with(built_index, tmp_path, FixedClassifier("greeting", intent_score=0.4), gen=gen)
    result = service.ask("Hi, how is asthma treated?")
    assert len(gen.calls) == 1 and result.citations


@pytest.mark.parametrize("lang,text", [("en", "I'm so scared, how is asthma treated?"),
                                       ("zh", "我好害怕，慢性胃炎怎么治疗？")])
def test_fear_gets_an_empathetic_opening_and_next_steps(built_index, tmp_path, lang, text):
    gen = FakeGenerator()
    service = service_with(built_index, tmp_path, FixedClassifier("treatment", "fear"), gen=gen)
    result = service.ask(text)
    assert result.answer.startswith(PROMPTS.text(lang, "tone.fear.opening"))
    assert result.answer.rstrip().endswith(PROMPTS.text(lang, "tone.next_steps"))
    assert "tone_fear" in result.flags
    # the model is told too
    assert PROMPTS.text(lang, "tone.prompt.fear") in gen.calls[0][-1].content


def test_anger_gets_a_calm_opening_without_next_steps(built_index, tmp_path):
    result = service_with(built_index, tmp_path, FixedClassifier("treatment", "anger")).ask(
        "This is ridiculous, how is gout treated?")
    assert result.answer.startswith(PROMPTS.text("en", "tone.anger.opening"))
    assert PROMPTS.text("en", "tone.next_steps") not in result.answer


def test_a_weak_emotion_sets_no_tone(built_index, tmp_path):
    gen = FakeGenerator()
    result = service_with(built_index, tmp_path, FixedClassifier("treatment", "fear", emotion_score=0.3),
                          gen=gen).ask("How is asthma treated?")
    assert not result.answer.startswith(PROMPTS.text("en", "tone.fear.opening"))
    assert PROMPTS.text("en", "tone.prompt.fear") not in gen.calls[0][-1].content


def test_section_hint_is_passed_only_when_enabled(built_index, tmp_path):
    on = SpyRetriever(built_index)
    service_with(built_index, tmp_path, FixedClassifier("treatment"), retriever=on,
                 router=Router(PROMPTS, RoutingConfig(section_hint=True))).ask("asthma inhaler")
    off = SpyRetriever(built_index)
    service_with(built_index, tmp_path, FixedClassifier("treatment"), retriever=off,
                 router=Router(PROMPTS, RoutingConfig(section_hint=False))).ask("asthma inhaler")
    assert on.hints == ["treatment"] and off.hints == [None]


def test_emergency_intent_comes_from_the_screen(built_index, tmp_path):
    class Screen:
        name = "test"

        def screen(self, text, lang):
            return ScreenResult(emergency=True, category="chest_pain", evidence=["chest pain"],
                                message="Call emergency services now.")

    gen = FakeGenerator()
    result = service_with(built_index, tmp_path, FixedClassifier("greeting"), gen=gen, safety=Screen()).ask(
        "hello, crushing chest pain")
    assert gen.calls == [] and result.intent == {"label": "emergency", "score": 1.0}
    assert result.answer == "Call emergency services now."


def test_router_decisions():
    router = Router(PROMPTS, RoutingConfig(route_min_score=0.6, tone_min_score=0.5))
    u = lambda i, s, e="neutral", es=0.9: Understanding(Label(i, s), Label(e, es))  # noqa: E731
    assert router.decide(u("out_of_scope", 0.7)) == Route("out_of_scope")
    assert router.decide(u("out_of_scope", 0.5)).kind == "answer"
    assert router.decide(u("treatment", 0.9, "sadness", 0.8)) == Route("answer", "treatment", "sadness")
    assert router.decide(u("cost", 0.9)) == Route("answer")  # no MedQuAD section for cost
    assert router.decide(u("treatment", 0.9, "joy", 0.99)).tone is None
    assert router.decide(Understanding()) == Route("answer")
    assert router.decide(u("greeting", 0.99), emergency=True).kind == "emergency"
    with pytest.raises(ValueError):
        RoutingConfig(route_min_score=1.5)


def test_routing_templates_exist_in_both_languages():
    keys_en = {k for k in PROMPTS.messages("en") if k.startswith(("route.", "tone.", "dept."))}
    keys_zh = {k for k in PROMPTS.messages("zh") if k.startswith(("route.", "tone.", "dept."))}
    assert keys_en == keys_zh and len(keys_en) > 20
    router = Router(PROMPTS)
    for dept in router._departments:
        assert f"dept.{dept}" in keys_en
