"""The shipped classifier (data/models/classifier) with its real encoder (USE-multilingual):
it loads offline, puts a Chinese and an English message of one intent into the same class, reads
emotions in both languages, stays within the latency budget, and drives the engine's routing."""

from __future__ import annotations

import time

import numpy as np
import pytest

from chatbot.classifier.runtime import TrainedClassifier
from chatbot.engine.service import ConsultationService
from chatbot.llm.fake import FakeGenerator
from chatbot.prompts import PromptLibrary
from chatbot.settings import PROJECT_ROOT, ChatSettings, LLMSettings
from chatbot.store import ChatStore
from knowledge_base.retriever import Retriever

pytestmark = pytest.mark.slow
MODEL = PROJECT_ROOT / "data" / "models" / "classifier"


@pytest.fixture(scope="module")
def shipped():
    clf = TrainedClassifier(MODEL)
    clf.warm_up()
    return clf


@pytest.mark.parametrize("zh,en,intent", [
    ("高血压怎么治疗？", "How is high blood pressure treated?", "treatment"),
    ("做一次胃镜大概多少钱？", "How much does a gastroscopy cost?", "cost"),
    ("你好，医生", "Hello, doctor", "greeting"),
    ("帮我写一首关于大海的诗", "Write me a poem about the sea", "out_of_scope"),
    ("怎么在网上预约挂号？", "How do I book an appointment online?", "administrative"),
])
def test_same_intent_in_both_languages(shipped, zh, en, intent):
    assert shipped.classify(zh).intent.label == intent
    assert shipped.classify(en).intent.label == intent


@pytest.mark.parametrize("text,emotion", [
    ("我好害怕，检查出肺结节，会不会是癌症？", "fear"),
    ("I'm terrified this lump is cancer", "fear"),
    ("排了三个小时队，医生态度还这么差，我要投诉！", "anger"),
    ("This is outrageous, I waited three hours and the nurse was rude", "anger"),
])
def test_emotions_in_both_languages(shipped, text, emotion):
    assert shipped.classify(text).emotion.label == emotion


def test_bad_input_on_the_real_model(shipped):
    for text in ("", "🙂🙂🙂", "x" * 100_000, "SELECT * FROM patients; -- 删除"):
        u = shipped.classify(text)
        assert 0 <= u.intent.score <= 1 and 0 <= u.emotion.score <= 1
    empty = shipped.classify("")
    assert (empty.intent.label, empty.emotion.label) == ("other", "neutral") and empty.intent.score < 0.5


def test_latency_per_message_is_within_budget(shipped):
    texts = ["高血压怎么治疗？", "What are the symptoms of glaucoma?", "我最近总是头疼，很担心",
             "How much does an MRI cost?"] * 5
    times = []
    for t in texts:
        t0 = time.perf_counter()
        shipped.classify(t)
        times.append((time.perf_counter() - t0) * 1000)
    assert np.median(times) < 30, times  # the budget: <= 30 ms per message on this CPU


def test_engine_routes_with_the_shipped_model(shipped, built_index, tmp_path):
    gen = FakeGenerator()
    prompts = PromptLibrary()
    service = ConsultationService(
        retriever=Retriever(built_index), generator=gen, store=ChatStore(tmp_path / "c.sqlite"),
        prompts=prompts, chat=ChatSettings(min_dense_evidence_en=0.0, min_dense_evidence_zh=0.0),
        llm=LLMSettings(backend="fake"), classifier=shipped)
    refused = service.ask("今天天气怎么样？明天会下雨吗？")
    assert refused.answer == prompts.text("zh", "route.out_of_scope") and gen.calls == []
    answered = service.ask("I'm really scared, how is asthma treated?")
    assert answered.intent["label"] == "treatment" and len(gen.calls) == 1
    assert answered.answer.startswith(prompts.text("en", "tone.fear.opening"))
