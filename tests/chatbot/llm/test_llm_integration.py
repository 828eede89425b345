"""Real models, a real llama.cpp server, a real peft adapter. Marked slow (about 1-2 minutes)."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import pytest

from chatbot.llm import resolve_model
from chatbot.llm.base import ChatMessage, GenerationError, GenerationOptions, GenerationTimeout
from chatbot.llm.prompting import gemma_turns

pytestmark = pytest.mark.slow

QUESTION = [ChatMessage("system", "You are a careful medical assistant. Answer briefly."),
            ChatMessage("user", "What is asthma?")]
# Generous budgets and one llama.cpp thread: on a busy shared CPU, two spinning llama.cpp threads
# can slow down ~10x and a tight budget would make these tests flaky. Timeouts are tested apart.
SHORT = GenerationOptions(max_tokens=24, timeout_s=300)
THREADS = 1


# -- llama.cpp in process ------------------------------------------------------------------------
@pytest.fixture(scope="module", params=["smollm2-135m", "gemma3-270m"])
def llama_gen(request):
    from chatbot.llm.llamacpp import LlamaCppGenerator

    generator = LlamaCppGenerator(request.param, n_ctx=1024, n_threads=THREADS)
    generator.warm_up()
    return generator


def _non_streamed(generator, messages, options: GenerationOptions) -> str:
    """The same request through llama_cpp without streaming, as the reference text."""
    llm = generator._llm
    common = dict(max_tokens=options.max_tokens, temperature=options.temperature,
                  top_p=options.top_p, repeat_penalty=options.repeat_penalty, seed=options.seed)
    if generator.has_chat_template:
        out = llm.create_chat_completion(messages=[m.as_dict() for m in messages], **common)
        return out["choices"][0]["message"]["content"]
    out = llm.create_completion(gemma_turns(messages), stop=["<end_of_turn>"], **common)
    return out["choices"][0]["text"]


def test_llamacpp_streams_a_short_answer(llama_gen):
    pieces = list(llama_gen.stream(QUESTION, SHORT))
    text = "".join(pieces)
    assert text.strip(), f"{llama_gen.name} produced no text"
    assert len(pieces) > 1  # really streamed
    assert "<end_of_turn>" not in text and "<|im_end|>" not in text
    assert text == _non_streamed(llama_gen, QUESTION, SHORT)
    assert llama_gen.count_tokens("What is asthma?") > 0
    assert llama_gen.count_tokens("哮喘是什么？") > 0


def test_llamacpp_timeout_then_recovers(llama_gen):
    with pytest.raises(GenerationTimeout):
        list(llama_gen.stream(QUESTION, GenerationOptions(max_tokens=24, timeout_s=0.001)))
    # The lock was released and the model still answers.
    assert "".join(llama_gen.stream(QUESTION, GenerationOptions(max_tokens=4, timeout_s=300))).strip()


def test_gemma_base_has_no_chat_template_and_uses_turns():
    from chatbot.llm.llamacpp import LlamaCppGenerator

    assert LlamaCppGenerator("gemma3-270m", n_ctx=512).has_chat_template is False
    assert LlamaCppGenerator("smollm2-135m", n_ctx=512).has_chat_template is True


def test_llamacpp_refuses_a_lora_llama_cpp_cannot_load(tmp_path):
    from chatbot.llm.llamacpp import LlamaCppGenerator

    # A GGUF that is not a LoRA: llama-cpp-python would accept it and crash on first use.
    generator = LlamaCppGenerator("smollm2-135m", n_ctx=512,
                                  adapter=str(resolve_model("smollm2-135m")))
    with pytest.raises(GenerationError, match="could not load the LoRA adapter"):
        generator.warm_up()


# -- OpenAI-compatible: a real llama_cpp.server subprocess ---------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, tmp: Path) -> None:
        self.port = _free_port()
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        self.log = tmp / "server.log"
        model = resolve_model("smollm2-135m")
        with self.log.open("wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "chatbot.llm.llamacpp_server", "--model", str(model),
                 "--model_alias", "smollm2", "--host", "127.0.0.1", "--port", str(self.port),
                 "--n_ctx", "1024", "--n_threads", str(THREADS)],
                stdout=log, stderr=subprocess.STDOUT)

    def wait_ready(self, limit_s: float = 60.0) -> None:
        import httpx

        end = time.monotonic() + limit_s
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                pytest.fail(f"llama_cpp.server exited ({self.proc.returncode}):\n"
                            + self.log.read_text(errors="replace")[-3000:])
            try:
                if httpx.get(f"{self.base_url}/models", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass  # not listening yet
            time.sleep(0.3)
        pytest.fail(f"llama_cpp.server not ready after {limit_s} s:\n"
                    + self.log.read_text(errors="replace")[-3000:])

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=15)


@pytest.fixture
def llama_server(tmp_path) -> Iterator[Server]:
    server = Server(tmp_path)
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


def test_openai_backend_against_a_real_server(llama_server):
    from chatbot.llm.openai_compat import OpenAICompatGenerator

    generator = OpenAICompatGenerator(llama_server.base_url, "smollm2", n_ctx=1024)
    generator.warm_up()
    pieces = list(generator.stream(QUESTION, SHORT))
    assert len(pieces) > 1 and "".join(pieces).strip()
    assert generator.count_tokens("What is asthma?") > 0

    llama_server.stop()
    with pytest.raises(GenerationError, match="cannot reach the LLM server at "
                                              + llama_server.base_url) as err:
        list(generator.stream(QUESTION, SHORT))
    assert not isinstance(err.value, GenerationTimeout)
    generator.close()


# -- transformers: the packaged GGUF dequantised, then a real peft LoRA --------------------------
@pytest.fixture(scope="module")
def hf_gen():
    from chatbot.llm.hf import TransformersGenerator

    generator = TransformersGenerator("smollm2-135m", n_ctx=1024)
    generator.warm_up()
    return generator


def test_transformers_generates_from_the_dequantised_gguf(hf_gen):
    text = "".join(hf_gen.stream(QUESTION, GenerationOptions(max_tokens=8, timeout_s=300)))
    assert text.strip()
    assert hf_gen.count_tokens("What is asthma?") > 0
    with pytest.raises(GenerationTimeout):
        list(hf_gen.stream(QUESTION, GenerationOptions(max_tokens=8, timeout_s=0.001)))
    assert "".join(hf_gen.stream(QUESTION, GenerationOptions(max_tokens=2, timeout_s=300))).strip()


# Both come from saving the adapter (transformers / peft internals), not from our code.
@pytest.mark.filterwarnings("ignore:`is_gradient_checkpointing` is deprecated:FutureWarning")
@pytest.mark.filterwarnings("ignore:Could not find a config file:UserWarning")
def test_transformers_with_a_peft_lora_adapter(hf_gen, tmp_path):
    import copy

    import torch
    from peft import LoraConfig, PeftModel, get_peft_model

    from chatbot.llm.hf import TransformersGenerator

    # "Train" the adapter on a copy of the dequantised model (get_peft_model edits it in place;
    # transformers cannot save a GGUF-loaded base, but an adapter saves fine).
    adapter_dir = tmp_path / "adapter"
    torch.manual_seed(0)
    # init_lora_weights=False: random A and B, so the adapter really changes the forward pass;
    # a small alpha keeps the output language-like.
    lora = get_peft_model(copy.deepcopy(hf_gen._model),
                          LoraConfig(r=4, lora_alpha=1, target_modules=["q_proj", "v_proj"],
                                     init_lora_weights=False, task_type="CAUSAL_LM"))
    lora.save_pretrained(adapter_dir)
    assert (adapter_dir / "adapter_config.json").is_file()
    del lora

    generator = TransformersGenerator("smollm2-135m", adapter=str(adapter_dir), n_ctx=1024)
    generator.warm_up()
    assert isinstance(generator._model, PeftModel)
    assert generator.info().adapter == str(adapter_dir)
    text = "".join(generator.stream(QUESTION, GenerationOptions(max_tokens=8, timeout_s=300)))
    assert text.strip()
