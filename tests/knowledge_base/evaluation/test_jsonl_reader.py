"""The one JSONL reader: line numbers, blank lines, and errors raised as the caller's class."""

import pytest

from knowledge_base.errors import DomainError
from knowledge_base.evaluation.jsonl import read_jsonl


class _Mine(DomainError):
    pass


def test_rows_come_with_their_line_numbers_and_blank_lines_are_skipped(tmp_path):
    path = tmp_path / "a.jsonl"
    path.write_text('{"a": 1}\n\n   \n{"a": 2}\n', encoding="utf-8")
    assert list(read_jsonl(path)) == [(1, {"a": 1}), (4, {"a": 2})]


@pytest.mark.parametrize("text,match", [
    ('{"a": 1}\nnot json\n', r"a\.jsonl:2: not JSON"),
    ('{"a": 1}\n[1, 2]\n', r"a\.jsonl:2: each line must be a JSON object"),
])
def test_a_bad_line_is_named_by_file_and_line_in_the_callers_error(tmp_path, text, match):
    path = tmp_path / "a.jsonl"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(_Mine, match=match):
        list(read_jsonl(path, _Mine))


def test_a_caller_keeps_its_own_wording_and_hint(tmp_path):
    path = tmp_path / "a.jsonl"
    path.write_text("nope\n", encoding="utf-8")
    with pytest.raises(_Mine, match="a.jsonl:1: bad question line") as info:
        list(read_jsonl(path, _Mine, malformed="bad question line", hint="one object a line"))
    assert info.value.hint == "one object a line"


def test_an_unreadable_file_is_the_callers_error(tmp_path):
    with pytest.raises(_Mine, match="cannot read"):
        list(read_jsonl(tmp_path / "missing.jsonl", _Mine))
    (tmp_path / "latin.jsonl").write_bytes(b'{"a": "\xe9"}\n')
    with pytest.raises(_Mine, match="cannot read"):
        list(read_jsonl(tmp_path / "latin.jsonl", _Mine))
