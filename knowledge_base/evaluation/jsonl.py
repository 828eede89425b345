"""Reading JSONL files: one JSON object a line, blank lines skipped, every failure named by file
and line number and raised as the caller's domain error.

This is the one reader of JSONL input files (evaluation sets, training rows, question files);
each caller passes its own error class and checks its own fields on the rows it gets. The corpus
loader ``knowledge_base.loaders.jsonl`` is not one of them: it reads documents with other rules.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterator

from knowledge_base.errors import DomainError


def read_jsonl(path: str | Path, error: type[DomainError] = DomainError, *,
               malformed: str = "not JSON", hint: str = "") -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, object) for every non-blank line of ``path``.

    ``malformed`` words the error of a line that does not parse (``"{path}:{n}: {malformed} (...)"``)
    and ``hint`` goes with it and with a line that is not an object, so a caller keeps the wording
    its users know."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise error(f"cannot read {path}: {exc}") from exc
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise error(f"{path}:{n}: {malformed} ({exc.msg})", hint=hint) from exc
        if not isinstance(row, dict):
            raise error(f"{path}:{n}: each line must be a JSON object", hint=hint)
        yield n, row
