"""The question file of ``medchat eval generation``: ids default to the line number, and a bad
line is named by file and line with the contract's hint."""

import pytest

from chatbot.evaluation.generation import EvalInputError, load_items


def test_items_get_their_line_number_as_id(tmp_path):
    path = tmp_path / "q.jsonl"
    path.write_text('{"question": "What helps a fever?"}\n\n{"id": "b", "question": "发烧怎么办"}\n',
                    encoding="utf-8")
    assert [item["id"] for item in load_items(path)] == ["1", "b"]


@pytest.mark.parametrize("line", ["not json", '{"question": ""}',
                                  '{"question": "q", "history": [{"role": "bot", "content": "x"}]}',
                                  '{"question": "q", "history": ["hello"]}'])
def test_a_bad_line_is_named_with_the_hint(tmp_path, line):
    path = tmp_path / "q.jsonl"
    path.write_text('{"question": "ok"}\n' + line + "\n", encoding="utf-8")
    with pytest.raises(EvalInputError, match=r"q\.jsonl:2: bad line") as info:
        load_items(path)
    assert '"question"' in info.value.hint


def test_an_empty_file_holds_no_question(tmp_path):
    path = tmp_path / "q.jsonl"
    path.write_text("\n", encoding="utf-8")
    with pytest.raises(EvalInputError, match="holds no question"):
        load_items(path)
