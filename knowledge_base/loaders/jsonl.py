"""JSONL documents: one JSON object per line, ``{"id", "text"}`` plus optional ``title, url, lang,
source, license, question, section``. A bad line is reported and skipped; a file whose every
line is bad is an error."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from knowledge_base.errors import LoaderError
from knowledge_base.loaders.textual import decode_text
from knowledge_base.records import Document, SkippedFile
from knowledge_base.text import clean_text, detect_lang

_OPTIONAL = ("title", "url", "source", "license", "question", "section")


class _BadLine(ValueError):
    """One unusable line; becomes a SkippedFile("path:lineno", reason)."""


def _document(obj: Any, rel: str) -> Document | None:
    if not isinstance(obj, dict):
        raise _BadLine(f"not a JSON object ({type(obj).__name__})")
    doc_id, text = obj.get("id"), obj.get("text")
    if not isinstance(doc_id, str) or not doc_id.strip():
        raise _BadLine('missing or empty "id" (a non-empty string)')
    if not isinstance(text, str):
        raise _BadLine(f'missing or non-string "text" in document {doc_id}')
    text = clean_text(text)
    if not text:
        return None  # empty documents are dropped like in every loader, not a format error
    fields = {k: clean_text(obj[k]) for k in _OPTIONAL if isinstance(obj.get(k), str)}
    lang = obj["lang"] if obj.get("lang") in ("zh", "en") else detect_lang(f"{fields.get('title', '')} {text}")
    fields.setdefault("source", Path(rel).stem)
    return Document(id=doc_id.strip(), text=text, lang=lang, path=rel, **fields)


def load_jsonl(data: bytes, path: Path, rel: str) -> tuple[list[Document], list[SkippedFile]]:
    docs: list[Document] = []
    problems: list[SkippedFile] = []
    n_good = 0  # well-formed lines, including documents dropped for empty text
    # split("\n"), not splitlines(): U+2028 and friends are legal unescaped inside JSON strings.
    for lineno, line in enumerate(decode_text(data).split("\n"), start=1):
        if not line.strip():
            continue
        try:
            doc = _document(json.loads(line), rel)
        except json.JSONDecodeError as exc:
            problems.append(SkippedFile(f"{path}:{lineno}", f"invalid JSON: {exc.msg} (column {exc.colno})"))
            continue
        except _BadLine as exc:
            problems.append(SkippedFile(f"{path}:{lineno}", str(exc)))
            continue
        n_good += 1
        docs += [doc] if doc else []
    if problems and not n_good:
        first = problems[0]
        raise LoaderError(f"no valid JSONL line ({len(problems)} bad; first, line "
                          f"{first.path.rsplit(':', 1)[1]}: {first.reason})")
    return docs, problems
