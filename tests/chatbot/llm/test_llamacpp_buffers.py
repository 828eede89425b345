"""llama.cpp loads models without the CPU extra buffer types by default: AMX tiles kill the
process on VMs that report AMX without enabling it (seen on this project's CI machines)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from chatbot.settings import LLMSettings


def test_the_default_setting_is_the_safe_one():
    assert LLMSettings().extra_buffers is False


def test_disable_extra_buffers_turns_them_off_once():
    # In a child process: the patch is process-wide, and this test must see the library's
    # own default first (on) to be able to fail.
    code = (
        "import llama_cpp.llama_cpp as C\n"
        "from chatbot.llm.llamacpp import disable_extra_buffers\n"
        "before = C.llama_model_default_params().use_extra_bufts\n"
        "disable_extra_buffers(); first = C.llama_model_default_params\n"
        "disable_extra_buffers()\n"
        "print(before, C.llama_model_default_params().use_extra_bufts, C.llama_model_default_params is first)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["True", "False", "True"]


@pytest.mark.slow
def test_the_packaged_model_generates_with_the_default_settings():
    # The crash this guards against killed the process at the first matrix product.
    from chatbot.llm import make_generator
    from chatbot.llm.base import ChatMessage, GenerationOptions

    gen = make_generator(LLMSettings(n_ctx=512, max_tokens=16))
    text = "".join(gen.stream([ChatMessage("user", "Say hello.")], GenerationOptions(max_tokens=8)))
    assert text.strip()
