"""The shipped LoRA adapter on the real parts: the packaged Gemma-3-270M GGUF through llama.cpp,
the real index, the default settings (llm.adapter = auto)."""

from __future__ import annotations

import json

import pytest

from chatbot.answer import language_ok
from chatbot.llm.models import SHIPPED_ADAPTERS
from chatbot.settings import PROJECT_ROOT

pytestmark = pytest.mark.slow

MODEL_DIR = PROJECT_ROOT / "data" / "models" / "lora-gemma3-270m"
GGUF = PROJECT_ROOT / SHIPPED_ADAPTERS["gemma3-270m"]["llamacpp"]
INDEX = PROJECT_ROOT / "data" / "index" / "default"


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
    if not (INDEX / "current").exists():
        pytest.skip("the default index is not built (medchat setup)")
    from chatbot.app import build_app
    from chatbot.settings import load_settings

    settings = load_settings()
    settings.paths.database = tmp_path_factory.mktemp("db") / "chat.sqlite"
    application = build_app(settings)
    assert application.generator.adapter == str(GGUF)  # the default is the finetuned model
    application.service.warm_up()
    return application


@pytest.mark.parametrize("lang,question", [
    ("en", "What is glaucoma?"),
    ("zh", "高血压患者平时饮食要注意什么？"),
])
def test_default_engine_answers_with_the_finetuned_model(app, lang, question):
    result = app.service.ask(question)
    assert result.backend.startswith("llamacpp") and result.lang == lang
    # The generated answer was kept (an extractive fallback would flag it) and cites its passages.
    assert "fallback_extractive" not in result.flags, (result.flags, result.answer)
    assert result.citations and all(1 <= c["n"] <= len(result.passages) for c in result.citations)
    assert language_ok(result.answer, lang)


def test_llamacpp_adapter_changes_the_base_output():
    """The GGUF file is applied by llama.cpp: greedy output with it differs from the base and
    ends its turn with a cited sentence."""
    from llama_cpp import Llama

    from chatbot.llm.models import resolve_model

    prompt = ("<start_of_turn>user\nReference passages:\n[1] Gout (MedQuAD)\n<<<\nGout is a common, "
              "painful form of arthritis. It causes swollen, red, hot and stiff joints.\n>>>\n\n"
              "Patient's question: What is gout?\n\nAnswer in English with [n] citations:<end_of_turn>\n"
              "<start_of_turn>model\n")
    outputs = {}
    for name, lora in (("base", None), ("lora", str(GGUF))):
        llm = Llama(model_path=str(resolve_model("gemma3-270m")), lora_path=lora, n_ctx=512,
                    n_threads=2, seed=0, verbose=False)
        outputs[name] = llm(prompt, max_tokens=48, temperature=0.0, stop=["<end_of_turn>"])["choices"][0]
        llm.close()
    assert outputs["lora"]["text"] != outputs["base"]["text"]
    assert "[1]" in outputs["lora"]["text"] and outputs["lora"]["finish_reason"] == "stop"
