"""FakeGenerator and the shared prompt helpers."""

from __future__ import annotations

import pytest

from chatbot.llm.base import ChatMessage, GenerationError, GenerationOptions, GenerationTimeout
from chatbot.llm.fake import NO_PASSAGE_REPLY, FakeGenerator
from chatbot.llm.prompting import gemma_turns, trim_at_stops

OPTS = GenerationOptions()
ENGINE_PROMPT = (
    "Reference passages:\n"
    "[1] Asthma (Test/EN)\n<<<\nAsthma is treated with inhaled corticosteroids. A rescue inhaler "
    "helps.\n>>>\n\n"
    "[2] Gout (Test/EN)\n<<<\nGout is caused by uric acid.\n>>>\n\n"
    "Patient's question: How is asthma treated?\n\nAnswer in English with [n] citations:")


def test_queued_replies_stream_in_small_pieces_then_echo():
    fake = FakeGenerator(replies=["Hello there, patient."], token_size=4)
    pieces = list(fake.stream([ChatMessage("user", "hi")], OPTS))
    assert pieces[0] == "Hell" and "".join(pieces) == "Hello there, patient."
    assert all(len(p) <= 4 for p in pieces)
    assert "".join(fake.stream([ChatMessage("user", "hi")], OPTS)) == NO_PASSAGE_REPLY


def test_cited_echo_of_passage_one_in_the_engine_layout():
    fake = FakeGenerator()
    messages = [ChatMessage("system", "[1] not this one."), ChatMessage("user", "earlier"),
                ChatMessage("assistant", "ok"), ChatMessage("user", ENGINE_PROMPT)]
    answer = "".join(fake.stream(messages, OPTS))
    assert answer == "Asthma is treated with inhaled corticosteroids. [1]"
    assert fake.calls == [messages]


@pytest.mark.parametrize("prompt, expected", [
    ("[1] Gout is caused by uric acid. Red meat raises it.\n[2] x", "Gout is caused by uric acid. [1]"),
    ("资料：\n[1] 糖尿病患者可以适量吃水果。应监测血糖。\n\n问题：能吃水果吗？", "糖尿病患者可以适量吃水果。 [1]"),
])
def test_cited_echo_plain_layout(prompt, expected):
    assert "".join(FakeGenerator().stream([ChatMessage("user", prompt)], OPTS)) == expected


def test_failure_timeout_limits_and_counts():
    boom = GenerationError("server down")
    with pytest.raises(GenerationError, match="server down"):
        list(FakeGenerator(fail=boom).stream([ChatMessage("user", "q")], OPTS))
    slow = FakeGenerator(replies=["x" * 40], delay_s=0.02, token_size=1)
    with pytest.raises(GenerationTimeout):
        list(slow.stream([ChatMessage("user", "q")], GenerationOptions(timeout_s=0.1)))
    short = FakeGenerator(replies=["abcdefgh STOP tail"], token_size=2)
    assert "".join(short.stream([], GenerationOptions(max_tokens=3))) == "abcdef"
    stopped = FakeGenerator(replies=["abcdefgh STOP tail"], token_size=3)
    assert "".join(stopped.stream([], GenerationOptions(stop=("STOP",)))) == "abcdefgh "
    fake = FakeGenerator(context_length=1024)
    assert fake.context_length == 1024 and fake.count_tokens("abcdefgh") == 3
    fake.warm_up()
    assert fake.warm_ups == 1 and fake.name == "fake"


def test_gemma_turns_fold_system_into_first_user_turn():
    prompt = gemma_turns([ChatMessage("system", "Be brief."), ChatMessage("user", "Hi"),
                          ChatMessage("assistant", "Hello."), ChatMessage("user", "Asthma?")])
    assert prompt == ("<start_of_turn>user\nBe brief.\n\nHi<end_of_turn>\n"
                      "<start_of_turn>model\nHello.<end_of_turn>\n"
                      "<start_of_turn>user\nAsthma?<end_of_turn>\n"
                      "<start_of_turn>model\n")
    assert gemma_turns([ChatMessage("system", "S")]).startswith("<start_of_turn>user\nS<end")


def test_trim_at_stops_across_pieces():
    assert "".join(trim_at_stops(["ab<end_", "of_turn>zz"], ["<end_of_turn>"])) == "ab"
    assert "".join(trim_at_stops(["ab", "c"], ["<x>"])) == "abc"
    assert list(trim_at_stops(["a", "b"], [])) == ["a", "b"]
