"""A deterministic generator for tests: queued replies, or a cited echo of passage [1]."""

from __future__ import annotations

import re
import time
from typing import Iterator, Sequence

from chatbot.llm.base import BackendInfo, ChatMessage, GenerationOptions
from chatbot.llm.prompting import Deadline, trim_at_stops

NO_PASSAGE_REPLY = "I could not find this in the provided sources."

_PASSAGE_HEAD = re.compile(r"^\[(\d+)\]\s*(.*)$")
_SENTENCE_END = re.compile(r"(?<=[.!?])(?:\s|$)|(?<=[。！？])")


def first_sentence(text: str) -> str:
    text = " ".join(text.split())
    match = _SENTENCE_END.search(text)
    return text[: match.start()].strip() if match else text


def passage_one(prompt: str) -> str:
    """Text of passage [1] in either layout the engine may use:
    ``[1] text`` (up to a blank line), or ``[1] Title (source)`` + a ``<<<``/``>>>`` fenced body."""
    lines = prompt.splitlines()
    start = next((i for i, line in enumerate(lines)
                  if (m := _PASSAGE_HEAD.match(line)) and m.group(1) == "1"), None)
    if start is None:
        return ""
    block: list[str] = []
    for line in lines[start + 1:]:
        if _PASSAGE_HEAD.match(line):
            break
        block.append(line)
    if block and block[0].strip() == "<<<":
        body = block[1:]
        end = next((i for i, line in enumerate(body) if line.strip() == ">>>"), len(body))
        return "\n".join(body[:end])
    first = _PASSAGE_HEAD.match(lines[start]).group(2)  # type: ignore[union-attr]
    rest = []
    for line in block:
        if not line.strip():
            break
        rest.append(line)
    return "\n".join([first, *rest])


def cited_echo(prompt: str) -> str:
    """The first sentence of passage [1] followed by " [1]", or ``NO_PASSAGE_REPLY``."""
    body = passage_one(prompt)
    lines = [line for line in body.splitlines() if line.strip()]
    # A question-answer chunk opens with its stored question: echo the answer, not the question.
    sentence = first_sentence("\n".join(lines[1:]) if len(lines) > 1 else body)
    return f"{sentence} [1]" if sentence else NO_PASSAGE_REPLY


class FakeGenerator:
    name = "fake"

    def __init__(self, replies: list[str] | None = None, delay_s: float = 0.0,
                 fail: Exception | None = None, token_size: int = 4,
                 context_length: int = 4096) -> None:
        self.replies = list(replies or [])
        self.delay_s = delay_s
        self.fail = fail
        self.token_size = max(1, token_size)
        self._context_length = context_length
        self.calls: list[list[ChatMessage]] = []
        self.warm_ups = 0

    @property
    def context_length(self) -> int:
        return self._context_length

    def warm_up(self) -> None:
        self.warm_ups += 1

    def count_tokens(self, text: str) -> int:
        return len(text) // 4 + 1

    def reply_for(self, messages: Sequence[ChatMessage]) -> str:
        if self.replies:
            return self.replies.pop(0)
        last_user = next((m.content for m in reversed(messages) if m.role == "user"), "")
        return cited_echo(last_user)

    def stream(self, messages: Sequence[ChatMessage], options: GenerationOptions) -> Iterator[str]:
        # Recorded at call time (not first iteration) so tests see calls even for unread streams.
        self.calls.append(list(messages))
        return self._pieces(messages, options)

    def _pieces(self, messages: Sequence[ChatMessage], options: GenerationOptions) -> Iterator[str]:
        deadline = Deadline(options.timeout_s)
        if self.fail is not None:
            raise self.fail
        text = self.reply_for(messages)
        # One piece stands for one token, so max_tokens truncates like a real model would.
        text = text[: options.max_tokens * self.token_size]
        yield from trim_at_stops(self._timed(text, deadline), options.stop)

    def _timed(self, text: str, deadline: Deadline) -> Iterator[str]:
        for start in range(0, len(text), self.token_size):
            if self.delay_s:
                time.sleep(self.delay_s)
            deadline.check("fake generation")  # lets tests exercise the timeout path
            yield text[start:start + self.token_size]

    def info(self) -> BackendInfo:
        return BackendInfo(backend="fake", model="fake", extra={"queued": str(len(self.replies))})
