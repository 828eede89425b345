"""Helpers shared by the local backends: the Gemma turn format, stop-string trimming, deadlines."""

from __future__ import annotations

import time
from typing import Iterable, Iterator, Sequence

from chatbot.llm.base import ChatMessage, GenerationTimeout

GEMMA_END_OF_TURN = "<end_of_turn>"


def gemma_turns(messages: Sequence[ChatMessage]) -> str:
    """Gemma's chat layout, used when a model ships no chat template (Gemma 3 270M *base*).

    Gemma has no system role: system text is folded into the first user turn, as Google's own
    template does. The prompt ends with an open model turn so the model answers. No ``<bos>``
    here: the tokenizer adds it.
    """
    system = "\n\n".join(m.content for m in messages if m.role == "system" and m.content)
    parts: list[str] = []
    folded = not system
    for message in messages:
        if message.role == "system":
            continue
        content = message.content
        if message.role == "user" and not folded:
            content = f"{system}\n\n{content}"
            folded = True
        role = "model" if message.role == "assistant" else "user"
        parts.append(f"<start_of_turn>{role}\n{content}{GEMMA_END_OF_TURN}\n")
    if not folded:  # only a system message: it still has to reach the model
        parts.append(f"<start_of_turn>user\n{system}{GEMMA_END_OF_TURN}\n")
    parts.append("<start_of_turn>model\n")
    return "".join(parts)


class Deadline:
    """Wall-clock budget of one generation (monotonic clock: immune to clock changes)."""

    def __init__(self, timeout_s: float) -> None:
        self.timeout_s = timeout_s
        self.end = time.monotonic() + timeout_s

    def remaining(self) -> float:
        return max(0.0, self.end - time.monotonic())

    def expired(self) -> bool:
        return time.monotonic() >= self.end

    def timeout(self, what: str) -> GenerationTimeout:
        return GenerationTimeout(f"{what} exceeded its {self.timeout_s:g} s budget",
                                 hint="raise llm.timeout_s or lower llm.max_tokens")

    def check(self, what: str) -> None:
        if self.expired():
            raise self.timeout(what)


def trim_at_stops(pieces: Iterable[str], stops: Sequence[str]) -> Iterator[str]:
    """Yield ``pieces`` up to (excluding) the first stop string, which may span pieces.

    Holds back only as many trailing characters as a stop string could still be completing, so
    streaming stays smooth. The caller should close the source when this returns early.
    """
    stops = [s for s in stops if s]
    if not stops:
        yield from pieces
        return
    keep = max(len(s) for s in stops) - 1
    buffer = ""
    for piece in pieces:
        buffer += piece
        cut = min((i for i in (buffer.find(s) for s in stops) if i >= 0), default=-1)
        if cut >= 0:
            if buffer[:cut]:
                yield buffer[:cut]
            return
        if len(buffer) > keep:
            ready, buffer = buffer[: len(buffer) - keep], buffer[len(buffer) - keep:]
            yield ready
    if buffer:
        yield buffer
