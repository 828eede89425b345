"""The seams the engine takes: every method it calls is declared, and the pass-throughs and the
real implementations have them all (no ``hasattr`` probes left in the engine)."""

from __future__ import annotations

import inspect

import pytest

from chatbot.classifier.runtime import TrainedClassifier
from chatbot.protocols import Classifier, NoClassifier, NoSafetyScreen, SafetyScreen, Triage
from chatbot.safety import RedFlagScreen
from chatbot.triage.engine import TriageEngine


def _methods(protocol: type) -> set[str]:
    return {n for n, v in vars(protocol).items() if inspect.isfunction(v) and not n.startswith("_")}


@pytest.mark.parametrize("protocol,implementations", [
    (SafetyScreen, [NoSafetyScreen, RedFlagScreen]),
    (Classifier, [NoClassifier, TrainedClassifier]),
    (Triage, [TriageEngine]),
])
def test_implementations_have_every_method_of_their_protocol(protocol, implementations):
    for cls in implementations:
        missing = {m for m in _methods(protocol) if not callable(getattr(cls, m, None))}
        assert not missing, (cls.__name__, missing)


def test_warm_up_is_declared_and_idempotent_on_the_pass_throughs():
    assert "warm_up" in _methods(SafetyScreen) and "warm_up" in _methods(Classifier)
    for component in (NoSafetyScreen(), NoClassifier()):
        component.warm_up()
        component.warm_up()
    assert NoSafetyScreen().screen("chest pain", "en").emergency is False
    assert NoClassifier().classify("hello", "en").intent is None


def test_service_warms_up_every_seam(tmp_path):
    from chatbot.engine.service import ConsultationService
    from chatbot.llm.fake import FakeGenerator
    from chatbot.prompts import PromptLibrary
    from chatbot.settings import ChatSettings, LLMSettings

    calls = []

    class Seam:
        name = "test"

        def __init__(self, label: str) -> None:
            self.label = label

        def warm_up(self) -> None:
            calls.append(self.label)

    service = ConsultationService(retriever=Seam("retriever"), generator=FakeGenerator(),  # type: ignore[arg-type]
                                  store=None, prompts=PromptLibrary(), chat=ChatSettings(),  # type: ignore[arg-type]
                                  llm=LLMSettings(backend="fake"), safety=Seam("safety"),  # type: ignore[arg-type]
                                  classifier=Seam("classifier"))  # type: ignore[arg-type]
    service.warm_up()
    assert calls == ["safety", "retriever", "classifier"]
