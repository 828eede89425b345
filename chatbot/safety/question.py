"""Reading the patient's answer to the safety question of the detector's unsure band.

Deterministic and deliberately narrow: only a short reply that is clearly yes, no or not sure
counts as an answer (the quick-reply buttons send exactly the option labels). Anything longer or
unclear is a new message and goes through the whole screen again, so that "no, but now he is
not waking up" can never be read as a plain "no"."""

from __future__ import annotations

import re
from typing import Literal

Answer = Literal["yes", "no", "unsure"]

# Short answers only: a reply of at most this many characters (after trimming) can be an answer.
MAX_ANSWER_CHARS = 24
_PATTERNS: tuple[tuple[Answer, re.Pattern[str]], ...] = (
    # "not sure" before "no": 不确定 / not sure must not read as a no
    ("unsure", re.compile(r"^(not sure|unsure|i don'?t know|idk|dunno|maybe|no idea|不确定|不知道|说不清|不好说|可能吧?|也许)$")),
    ("yes", re.compile(r"^(yes|yeah|yep|yup|y|right|correct|it is|he is|she is|they are|是|是的|对|对的|有|嗯|会|是啊|对啊|有的)$")),
    ("no", re.compile(r"^(no|nope|nah|n|not really|no it'?s not|he'?s fine|she'?s fine|否|不是|没有|不|没|不会|没事|都没有|不是的)$")),
)
_TRIM = re.compile(r"[\s,.!?;:，。！？；：、~～…]+")


def parse_answer(text: str) -> Answer | None:
    """``yes`` / ``no`` / ``unsure`` for a clear short answer, else None (a new message)."""
    t = _TRIM.sub(" ", (text or "").lower()).strip()
    if not t or len(t) > MAX_ANSWER_CHARS:
        return None
    for answer, pattern in _PATTERNS:
        if pattern.match(t):
            return answer
    return None
