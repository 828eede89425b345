"""Triage evidence from the real default index (USE-multilingual, MedQuAD + Toyhom)."""

import pytest

from chatbot.settings import load_settings

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def app():
    settings = load_settings()
    if not (settings.paths.index_dir / "current").exists():
        pytest.skip("default index not built (medchat setup)")
    from chatbot.app import build_app
    from chatbot.llm.fake import FakeGenerator

    return build_app(settings, generator=FakeGenerator())


def test_real_index_supports_chest_pain_and_a_chinese_cold(app):
    from chatbot.triage import Intake

    chest = app.triage.assess(Intake("A 58-year-old man with crushing chest pain and sweating", age=58))
    assert chest.disposition == "emergency" and len(chest.evidence) == 3
    text = " ".join((p["title"] + " " + p["text"]).lower() for p in chest.evidence)
    assert "heart" in text or "chest" in text or "angina" in text
    cold = app.triage.assess(Intake("感冒两天，流鼻涕，嗓子疼", age=30))
    assert cold.disposition == "self_care" and cold.evidence
    assert any("感冒" in p["text"] or "cold" in p["text"].lower() for p in cold.evidence)
    assert cold.note.startswith("预检分诊记录")
