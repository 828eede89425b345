"""First come, first served admission to the model, with a position to show while waiting.

The in-process CPU model generates one answer at a time. Without a line of its own, a turn that
found the model busy waited inside the backend's lock, its wait counted against the generation
budget (``llm.timeout_s``: under a 20-session load most answers ran out of time while waiting and
came back as extracts), and the patient saw nothing but a spinner. With :class:`ModelQueue` a turn
takes a ticket before generating, learns how many turns are ahead of it while it waits (the chat
shows "2 ahead of you"), and its generation budget starts when its turn comes.

Only the model waits in line: emergencies, refusals and greetings never reach it, so they are
never queued behind anyone.
"""

from __future__ import annotations

import itertools
import threading
from collections import deque
from dataclasses import dataclass


@dataclass
class Ticket:
    number: int
    admitted: bool = False
    left: bool = False


class ModelQueue:
    """``slots`` turns generate at once (1 for the in-process model); the rest wait in arrival order."""

    def __init__(self, slots: int = 1) -> None:
        if slots < 1:
            raise ValueError("a model queue needs at least one slot")
        self.slots = slots
        self._cond = threading.Condition()
        self._waiting: deque[Ticket] = deque()
        self._busy = 0
        self._numbers = itertools.count(1)

    def join(self) -> Ticket:
        with self._cond:
            ticket = Ticket(next(self._numbers))
            self._waiting.append(ticket)
            self._admit()
            return ticket

    def wait(self, ticket: Ticket, timeout: float) -> int:
        """0 once ``ticket`` may generate; else, after waiting up to ``timeout`` seconds, the number of
        turns ahead of it (those generating and those earlier in line)."""
        with self._cond:
            if not ticket.admitted:
                self._cond.wait_for(lambda: ticket.admitted, timeout=timeout)
            return 0 if ticket.admitted else self._ahead(ticket)

    def ahead(self, ticket: Ticket) -> int:
        with self._cond:
            return 0 if ticket.admitted else self._ahead(ticket)

    def leave(self, ticket: Ticket) -> None:
        """Done generating, or gave up waiting (a closed page): the next in line is admitted."""
        with self._cond:
            if ticket.left:
                return
            ticket.left = True
            if ticket.admitted:
                self._busy -= 1
            else:
                self._waiting.remove(ticket)
            self._admit()

    def _ahead(self, ticket: Ticket) -> int:
        return self._busy + self._waiting.index(ticket)

    def _admit(self) -> None:
        # hold the condition
        while self._waiting and self._busy < self.slots:
            first = self._waiting.popleft()
            first.admitted = True
            self._busy += 1
        self._cond.notify_all()
