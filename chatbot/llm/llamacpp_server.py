"""``python -m chatbot.llm.llamacpp_server …``: llama-cpp-python's OpenAI-compatible server
(``python -m llama_cpp.server``, same arguments) with the CPU-safe model loading of
:func:`chatbot.llm.llamacpp.disable_extra_buffers` (no AMX tiles: they kill the process on VMs
that report AMX without enabling it). For serving a GGUF to several MedChat replicas
(``llm.backend: openai``) and for the integration tests of the openai backend."""

from __future__ import annotations

import runpy

from chatbot.llm.llamacpp import disable_extra_buffers


def main() -> None:
    disable_extra_buffers()
    runpy.run_module("llama_cpp.server", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
