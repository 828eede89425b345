"""The emergency detector's training sets: which files it reads, and which it must never read."""

from __future__ import annotations

import json

from chatbot.settings import EVAL_DIR
from finetune.safety.data import ANSWER_DEV_SETS, FROZEN_ROUNDS, WRITTEN_EVAL_SETS, answer_dev_examples


def test_frozen_rounds_are_never_training_data_and_every_named_set_exists():
    assert not set(FROZEN_ROUNDS) & set(WRITTEN_EVAL_SETS)
    for name in (*WRITTEN_EVAL_SETS, *FROZEN_ROUNDS, *ANSWER_DEV_SETS):
        assert (EVAL_DIR / name).is_file(), name


def test_answer_dev_questions_are_ordinary_messages_in_their_language(tmp_path):
    rows = [{"id": "a-1", "lang": "en", "question": "my mum is 78 and dizzy when she stands up", "answerable": True},
            {"id": "a-2", "lang": "zh", "question": "失眠怎么办", "answerable": True},
            {"id": "a-3", "lang": "en", "question": "   ", "answerable": False}]
    (tmp_path / "answer_dev_x.jsonl").write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows),
                                                 encoding="utf-8")
    got = answer_dev_examples(tmp_path, ["answer_dev_x.jsonl", "missing.jsonl"])
    assert [(e.text, e.lang, e.emergency, e.source) for e in got] == [
        ("my mum is 78 and dizzy when she stands up", "en", False, "answer_dev"),
        ("失眠怎么办", "zh", False, "answer_dev")]


def test_the_shipped_answer_rounds_are_all_read():
    got = answer_dev_examples()
    assert len(got) == sum(1 for n in ANSWER_DEV_SETS for _ in (EVAL_DIR / n).open(encoding="utf-8"))
    assert {e.lang for e in got} == {"en", "zh"}
