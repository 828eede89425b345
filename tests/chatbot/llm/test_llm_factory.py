"""make_generator / resolve_model / backend_info: fast, no model is loaded."""

from __future__ import annotations

import socket
import sys
from pathlib import Path

import pytest

from chatbot.llm import (
    GenerationError,
    GenerationOptions,
    Generator,
    backend_info,
    generation_options,
    make_generator,
    model_label,
    resolve_model,
)
from chatbot.llm.base import ChatMessage
from chatbot.settings import LLMSettings


def test_smollm2_alias_is_the_packaged_gguf():
    path = resolve_model("smollm2-135m")
    assert isinstance(path, Path) and path.is_file()
    assert path.name == "SmolLM2-135M-Instruct.Q4_1.gguf"


def test_gemma3_alias_is_an_assembled_gguf():
    path = resolve_model("gemma3-270m")
    assert isinstance(path, Path) and path.suffix == ".gguf" and path.is_file()
    assert resolve_model("gemma3-270m") == path  # cached: the second call does not re-hash


def test_local_path_and_hf_id(tmp_path):
    model = tmp_path / "m.gguf"
    model.write_bytes(b"x")
    assert resolve_model(str(model)) == model
    assert resolve_model("google/gemma-3-270m-it") == "google/gemma-3-270m-it"
    assert model_label("gemma3-270m") == "gemma-3-270m-q4_k_m.gguf"
    assert model_label("google/gemma-3-270m-it") == "google/gemma-3-270m-it"


@pytest.mark.parametrize("backend, cls", [
    ("llamacpp", "LlamaCppGenerator"), ("transformers", "TransformersGenerator"),
    ("openai", "OpenAICompatGenerator"), ("fake", "FakeGenerator")])
def test_make_generator_builds_without_loading(backend, cls):
    settings = LLMSettings(backend=backend, model="smollm2-135m", n_ctx=2048)
    generator = make_generator(settings)
    assert type(generator).__name__ == cls
    assert isinstance(generator, Generator)
    assert generator.context_length == 2048
    assert getattr(generator, "_llm", None) is None and getattr(generator, "_model", None) is None
    info = backend_info(generator)
    assert info.backend == backend


def test_names_say_backend_and_model():
    assert make_generator(LLMSettings(backend="llamacpp")).name == "llamacpp:gemma-3-270m-q4_k_m.gguf"
    assert make_generator(LLMSettings(backend="openai", model="qwen2.5")).name == "openai:qwen2.5"
    assert make_generator(LLMSettings(backend="fake")).name == "fake"


@pytest.mark.parametrize("backend, module, hint", [
    ("llamacpp", "llama_cpp", "pip install llama-cpp-python"),
    ("transformers", "transformers", "pip install torch transformers"),
    ("openai", "httpx", "pip install httpx")])
def test_missing_package_gives_install_hint(monkeypatch, backend, module, hint):
    monkeypatch.setitem(sys.modules, module, None)  # makes the package look absent
    with pytest.raises(GenerationError) as err:
        make_generator(LLMSettings(backend=backend))
    assert err.value.hint == hint


def test_missing_peft_for_an_adapter(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "peft", None)
    with pytest.raises(GenerationError, match="peft") as err:
        make_generator(LLMSettings(backend="transformers", adapter=str(tmp_path)))
    assert err.value.hint == "pip install peft"


def test_llamacpp_refuses_hf_ids():
    generator = make_generator(LLMSettings(backend="llamacpp", model="org/not-local"))
    with pytest.raises(GenerationError, match="local .gguf"):
        generator.warm_up()


def test_adapters_are_checked_before_any_model_loads(tmp_path):
    not_gguf = tmp_path / "lora.gguf"
    not_gguf.write_text("not a gguf")
    llama = make_generator(LLMSettings(backend="llamacpp", model="smollm2-135m",
                                       adapter=str(not_gguf)))
    with pytest.raises(GenerationError, match="not a GGUF file"):
        llama.warm_up()
    assert llama._llm is None
    pytest.importorskip("torch")
    hf = make_generator(LLMSettings(backend="transformers", model="smollm2-135m",
                                    adapter=str(tmp_path / "missing")))
    with pytest.raises(GenerationError, match="adapter directory not found"):
        hf.warm_up()
    assert hf._model is None


def test_four_bit_needs_cuda():
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    generator = make_generator(LLMSettings(backend="transformers", model="smollm2-135m",
                                           load_in_4bit=True))
    with pytest.raises(GenerationError, match="needs CUDA"):
        generator.warm_up()


def test_generation_options_from_settings():
    options = generation_options(LLMSettings(max_tokens=64, timeout_s=5), seed=3)
    assert options == GenerationOptions(max_tokens=64, temperature=0.0, repeat_penalty=1.1,
                                        timeout_s=5.0, seed=3)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_openai_unreachable_server_names_the_url():
    url = f"http://127.0.0.1:{_closed_port()}/v1"
    generator = make_generator(LLMSettings(backend="openai", base_url=url))
    with pytest.raises(GenerationError, match="cannot reach the LLM server at " + url):
        list(generator.stream([ChatMessage("user", "hi")], GenerationOptions(timeout_s=5)))
    with pytest.raises(GenerationError, match=url):
        generator.warm_up()


def test_openai_sse_parsing_and_token_estimate():
    from chatbot.llm.openai_compat import OpenAICompatGenerator, approx_tokens

    generator = OpenAICompatGenerator("http://x/v1", "m")
    assert generator._parse('data: {"choices":[{"delta":{"content":"Hi"}}]}', "u") == ("Hi", False)
    assert generator._parse("data: [DONE]", "u") == ("", True)
    assert generator._parse(": keep-alive", "u") == ("", False)
    assert generator._parse('data: {"choices":[{"delta":{"role":"assistant"}}]}', "u") == ("", False)
    with pytest.raises(GenerationError, match="malformed"):
        generator._parse("data: {oops", "u")
    with pytest.raises(GenerationError, match="reported"):
        generator._parse('data: {"error": {"message": "boom"}}', "u")
    assert approx_tokens("abcdef") == 2
    assert approx_tokens("糖尿病") == 3  # one per CJK character: budgets stay on the safe side
    assert generator.count_tokens("") == 1
