"""The model's line (chatbot.llm.queue): first come first served, positions, leaving early."""

from __future__ import annotations

import threading

import pytest

from chatbot.llm.queue import ModelQueue


def test_first_come_first_served_with_positions():
    q = ModelQueue(slots=1)
    a, b, c = q.join(), q.join(), q.join()
    assert (q.ahead(a), q.ahead(b), q.ahead(c)) == (0, 1, 2)  # a generates, b and c wait
    q.leave(a)
    assert (q.ahead(b), q.ahead(c)) == (0, 1)
    d = q.join()
    q.leave(c)  # c closed the page while waiting: d moves up, b keeps its slot
    assert (q.ahead(b), q.ahead(d)) == (0, 1)
    q.leave(b)
    assert q.ahead(d) == 0
    q.leave(d)
    q.leave(d)  # leaving twice changes nothing
    assert q.ahead(q.join()) == 0


def test_several_slots_admit_several_turns():
    q = ModelQueue(slots=2)
    a, b, c = q.join(), q.join(), q.join()
    assert (q.ahead(a), q.ahead(b), q.ahead(c)) == (0, 0, 2)
    with pytest.raises(ValueError):
        ModelQueue(slots=0)


def test_wait_returns_the_position_after_its_timeout_and_zero_once_admitted():
    q = ModelQueue()
    first, second = q.join(), q.join()
    assert q.wait(second, timeout=0.05) == 1
    admitted = threading.Event()

    def waiter() -> None:
        while q.wait(second, timeout=0.05):
            pass
        admitted.set()

    t = threading.Thread(target=waiter)
    t.start()
    assert not admitted.wait(0.2)
    q.leave(first)
    assert admitted.wait(5) and q.ahead(second) == 0
    t.join(5)
