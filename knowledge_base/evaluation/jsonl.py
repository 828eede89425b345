"""Reading JSONL evaluation files: one JSON object a line, blank lines skipped, every failure
named by file and line number and raised as the caller's domain error."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterator

from knowledge_base.errors import DomainError


def read_jsonl(path: str | Path, error: type[DomainError] = DomainError) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, object) for every non-blank line of ``path``."""
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
            raise error(f"{path}:{n}: not JSON ({exc.msg})") from exc
        if not isinstance(row, dict):
            raise error(f"{path}:{n}: each line must be a JSON object")
        yield n, row
