"""Language-model backends behind one ``Generator`` protocol (see ``chatbot.llm.base``).

``make_generator(settings.llm)`` builds the configured backend without loading anything: models
load on ``warm_up()`` or the first ``stream()``. Backend modules (and their heavy packages:
llama_cpp, torch, transformers, httpx) are imported only when chosen.
"""

from __future__ import annotations

import importlib.util
import sys
from typing import TYPE_CHECKING

from chatbot.llm.base import BackendInfo, ChatMessage, GenerationError, GenerationOptions, GenerationTimeout, Generator
from chatbot.llm.info import backend_info
from chatbot.llm.models import ALIASES, model_label, resolve_model

if TYPE_CHECKING:
    from chatbot.settings import LLMSettings

__all__ = ["ALIASES", "BackendInfo", "ChatMessage", "GenerationError", "GenerationOptions",
           "GenerationTimeout", "Generator", "backend_info", "generation_options",
           "make_generator", "model_label", "resolve_model"]

# backend -> (modules it imports, pip command that provides them)
REQUIREMENTS: dict[str, tuple[tuple[str, ...], str]] = {
    "llamacpp": (("llama_cpp",), "pip install llama-cpp-python"),
    "transformers": (("torch", "transformers"), "pip install torch transformers"),
    "openai": (("httpx",), "pip install httpx"),
    "fake": ((), ""),
}


def _missing(module: str) -> bool:
    # find_spec, not import: checking must stay cheap (importing torch takes seconds).
    if module in sys.modules:
        return sys.modules[module] is None  # None = import deliberately blocked
    return importlib.util.find_spec(module) is None


def require(backend: str, *extra: tuple[str, str]) -> None:
    """Raise GenerationError with an install hint when a package the backend needs is missing.
    ``extra`` adds (module, pip command) pairs needed by the chosen options."""
    modules, hint = REQUIREMENTS[backend]
    needs = [(m, hint) for m in modules] + list(extra)
    for module, pip_hint in needs:
        if _missing(module):
            raise GenerationError(f"the {backend} backend needs the Python package "
                                  f"providing {module!r}, which is not installed", hint=pip_hint)


def make_generator(settings: "LLMSettings") -> Generator:
    """The configured backend, constructed but not loaded."""
    backend = settings.backend
    if backend in ("llamacpp", "transformers"):
        from chatbot.llm.models import resolve_adapter
        from chatbot.settings import PROJECT_ROOT

        settings = settings.model_copy(update={"adapter": resolve_adapter(
            settings.adapter, settings.model, backend, PROJECT_ROOT)})
    if backend == "llamacpp":
        require("llamacpp")
        from chatbot.llm.llamacpp import LlamaCppGenerator

        return LlamaCppGenerator(settings.model, gguf_file=settings.gguf_file, n_ctx=settings.n_ctx,
                                 n_threads=settings.n_threads, adapter=settings.adapter,
                                 extra_buffers=settings.extra_buffers)
    if backend == "transformers":
        extra = []
        if settings.adapter:
            extra.append(("peft", "pip install peft"))
        if settings.gguf_file or _points_to_gguf(settings.model):
            extra.append(("gguf", "pip install gguf"))
        require("transformers", *extra)
        from chatbot.llm.hf import TransformersGenerator

        return TransformersGenerator(settings.model, gguf_file=settings.gguf_file,
                                     adapter=settings.adapter, device=settings.device,
                                     dtype=settings.dtype, load_in_4bit=settings.load_in_4bit,
                                     n_ctx=settings.n_ctx)
    if backend == "openai":
        require("openai")
        from chatbot.llm.openai_compat import OpenAICompatGenerator

        return OpenAICompatGenerator(settings.base_url, settings.model, api_key=settings.api_key,
                                     n_ctx=settings.n_ctx)
    if backend == "fake":
        from chatbot.llm.fake import FakeGenerator

        return FakeGenerator(context_length=settings.n_ctx)
    raise GenerationError(f"unknown LLM backend {backend!r}",
                          hint="llm.backend is one of: " + ", ".join(REQUIREMENTS))


def _points_to_gguf(model: str) -> bool:
    return model.strip().lower() in ALIASES or model.lower().endswith(".gguf")


def generation_options(settings: "LLMSettings", **overrides: object) -> GenerationOptions:
    """GenerationOptions from the llm settings (max_tokens, temperature, repeat_penalty,
    timeout_s); keyword overrides win."""
    values: dict[str, object] = dict(max_tokens=settings.max_tokens,
                                     temperature=settings.temperature,
                                     repeat_penalty=settings.repeat_penalty,
                                     timeout_s=settings.timeout_s)
    values.update(overrides)
    return GenerationOptions(**values)  # type: ignore[arg-type]
