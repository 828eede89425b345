"""Question-answer CSV files: the Toyhom format (``department,title,ask,answer``) and generic
headers (question/answer, q/a, 问/答, 问题/回答). One Document per row with a non-empty answer."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from knowledge_base.errors import LoaderError
from knowledge_base.loaders.textual import decode_text
from knowledge_base.records import Document
from knowledge_base.text import clean_text, detect_lang

# Header aliases, matched case-insensitively after stripping. For Toyhom, ``title`` is the short
# question and ``ask`` the patient's longer description, so ``ask`` is only a fallback question.
_QUESTION = ("question", "q", "问题", "问", "title", "ask")
_ANSWER = ("answer", "a", "回答", "答", "答案")
_DEPARTMENT = ("department", "科室")


def _find(header: list[str], names: tuple[str, ...]) -> int | None:
    normalised = [h.strip().lower() for h in header]
    return next((normalised.index(n) for n in names if n in normalised), None)


def _cell(row: list[str], i: int | None) -> str:
    return clean_text(row[i]) if i is not None and i < len(row) else ""  # short rows: missing = empty


def _rows(data: bytes) -> tuple[list[str], list[list[str]]]:
    # newline="": the csv module handles line breaks itself (answers contain quoted newlines).
    reader = csv.reader(io.StringIO(decode_text(data), newline=""))
    try:
        rows = list(reader)
    except csv.Error as exc:
        raise LoaderError(f"malformed CSV at line {reader.line_num}: {exc}") from exc
    if not rows:
        raise LoaderError("CSV has no header row")
    return rows[0], rows[1:]


def load_csv(data: bytes, path: Path, rel: str) -> list[Document]:
    header, rows = _rows(data)
    q_col, a_col = _find(header, _QUESTION), _find(header, _ANSWER)
    if q_col is None or a_col is None:
        raise LoaderError(f"no question/answer columns in CSV (found: {', '.join(header)})")
    cols = {"id": _find(header, ("id",)), "ask": _find(header, ("ask",)),
            "department": _find(header, _DEPARTMENT)}
    stem = Path(rel).stem
    docs = []
    for n, row in enumerate(rows, start=1):
        question, answer = _cell(row, q_col), _cell(row, a_col)
        if not answer:
            continue  # a question without an answer has nothing to retrieve
        # ``ask`` is kept aside unless it already is the question (files without a title column)
        extra = {k: _cell(row, i) for k, i in cols.items() if k != "id" and i != q_col and _cell(row, i)}
        department = extra.get("department", "")
        docs.append(Document(
            id=_cell(row, cols["id"]) or f"{stem}_{n}",
            text=answer,
            title=question,
            source=f"Toyhom/{department}" if department else stem,
            lang=detect_lang(f"{question} {answer}"),
            question=question,
            path=rel,
            extra=extra,
        ))
    return docs
