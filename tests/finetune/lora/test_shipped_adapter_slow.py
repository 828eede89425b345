"""The shipped LoRA adapter on the real parts: the packaged Gemma-3-270M GGUF through llama.cpp,
the real index, the default settings (llm.adapter = auto)."""

from __future__ import annotations

import json

import pytest

from chatbot.engine.answer import language_ok
from chatbot.llm.models import SHIPPED_ADAPTERS
from chatbot.settings import PROJECT_ROOT

pytestmark = pytest.mark.slow

MODEL_DIR = PROJECT_ROOT / "data" / "models" / "lora-gemma3-270m"
GGUF = PROJECT_ROOT / SHIPPED_ADAPTERS["gemma3-270m"]["llamacpp"]


def test_shipped_files_are_compact_and_described():
    assert GGUF.read_bytes()[:4] == b"GGUF" and GGUF.stat().st_size < 12 * 2**20
    peft_dir = PROJECT_ROOT / SHIPPED_ADAPTERS["gemma3-270m"]["transformers"]
    config = json.loads((peft_dir / "adapter_config.json").read_text())
    assert config["r"] >= 4 and (peft_dir / "adapter_model.safetensors").stat().st_size < 12 * 2**20
    card = (MODEL_DIR / "MODEL_CARD.md").read_text(encoding="utf-8")
    for needed in ("Gemma Terms of Use", "CC BY 4.0", "MIT", "Limits"):
        assert needed in card


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    from chatbot.app import build_app
    from chatbot.settings import load_settings

    settings = load_settings()
    if not (settings.paths.index_dir / "current").exists():
        pytest.skip("the default index is not built (medchat setup)")
    settings.paths.database = tmp_path_factory.mktemp("db") / "chat.sqlite"
    application = build_app(settings)
    assert application.generator.adapter == str(GGUF)  # the default is the finetuned model
    application.service.warm_up()
    return application


def test_default_engine_answers_english_with_the_finetuned_model(app):
    result = app.service.ask("What is glaucoma?")
    assert result.backend.startswith("llamacpp") and result.lang == "en"
    # The generated answer was kept (an extractive fallback would flag it) and cites its passages.
    assert "fallback_extractive" not in result.flags, (result.flags, result.answer)
    assert result.citations and all(1 <= c["n"] <= len(result.passages) for c in result.citations)
    assert language_ok(result.answer, "en")


def test_default_engine_answers_chinese_in_chinese_with_citations(app):
    """Robust part only: the shipped adapter (10 steps) still loops on some Chinese questions, and
    the engine then quotes the passages; either way the patient gets cited Chinese text."""
    result = app.service.ask("高血压患者平时饮食要注意什么？")
    assert result.lang == "zh" and language_ok(result.answer, "zh")
    assert result.citations and all(1 <= c["n"] <= len(result.passages) for c in result.citations)


def test_llamacpp_adapter_changes_the_base_output():
    """The GGUF file is applied by llama.cpp: greedy output with it differs from the base and
    opens with the passage's sentences, cited. Not asserted: that it then ends its turn -- the
    shipped 10-step adapter sometimes runs on into junk (see docs/FINETUNE.md)."""
    from chatbot.llm.base import ChatMessage, GenerationOptions
    from chatbot.llm.llamacpp import LlamaCppGenerator
    from chatbot.prompts import PromptLibrary

    prompts = PromptLibrary()
    passage = ("[1] Gout (MedQuAD/MPlusHealthTopics)\n<<<\nWhat is (are) Gout ?\nGout is a common, "
               "painful form of arthritis. It causes swollen, red, hot and stiff joints. Gout happens "
               "when uric acid builds up in your body.\n>>>")
    messages = [ChatMessage("system", prompts.template("en", "system")),
                ChatMessage("user", prompts.template("en", "user").format(
                    passages=passage, question="What is gout?", tone=""))]
    options = GenerationOptions(max_tokens=96, temperature=0.0, repeat_penalty=1.1, timeout_s=120)
    outputs = {}
    for name, adapter in (("base", ""), ("lora", str(GGUF))):
        generator = LlamaCppGenerator("gemma3-270m", adapter=adapter, n_ctx=1024)
        outputs[name] = "".join(generator.stream(messages, options))
    assert outputs["lora"] != outputs["base"]
    opening = outputs["lora"][:160].lower()
    assert "[1]" in opening and "arthritis" in opening, outputs["lora"]
    assert "[1]" not in outputs["base"][:160]
