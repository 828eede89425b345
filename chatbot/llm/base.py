"""The seam between the consultation engine and any language model.

A backend turns chat messages into a stream of text pieces. Backends: ``llamacpp`` (the fast CPU
path for GGUF models), ``transformers`` (any HF causal LM, GGUF via ``gguf_file``, optional peft
LoRA adapter, device/dtype/4-bit selectable), ``openai`` (any OpenAI-compatible server: vLLM, TGI,
Ollama, llama.cpp server) and ``fake`` (deterministic, for tests).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator, Literal, Protocol, Sequence, runtime_checkable

from chatbot.errors import MedChatError

Role = Literal["system", "user", "assistant"]


@dataclass(frozen=True)
class ChatMessage:
    role: Role
    content: str

    def as_dict(self) -> dict[str, str]:
        return {"role": self.role, "content": self.content}


@dataclass(frozen=True)
class GenerationOptions:
    max_tokens: int = 256
    temperature: float = 0.0  # greedy by default: answers must be reproducible and auditable
    top_p: float = 1.0
    repeat_penalty: float = 1.1
    stop: tuple[str, ...] = ()
    timeout_s: float = 60.0  # wall-clock budget for the whole generation
    seed: int = 0


class GenerationError(MedChatError):
    """The model could not produce an answer (not loaded, server unreachable, timed out)."""


class GenerationTimeout(GenerationError):
    """The generation exceeded ``GenerationOptions.timeout_s``."""


@runtime_checkable
class Generator(Protocol):
    name: str  # e.g. "llamacpp:gemma-3-270m-q4_k_m.gguf"

    @property
    def context_length(self) -> int: ...

    def warm_up(self) -> None: ...

    def count_tokens(self, text: str) -> int: ...

    def stream(self, messages: Sequence[ChatMessage], options: GenerationOptions) -> Iterator[str]:
        """Yield text pieces as they are produced. Raises GenerationError (or GenerationTimeout)."""
        ...


@dataclass
class BackendInfo:
    """What ``medchat`` reports about the loaded backend (admin UI, ``ask --json``)."""

    backend: str
    model: str
    adapter: str = ""
    device: str = "cpu"
    extra: dict[str, str] = field(default_factory=dict)
