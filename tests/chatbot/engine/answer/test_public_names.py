"""Other modules use chatbot.engine.answer through its public names only (issue 13)."""

from __future__ import annotations

import ast
from pathlib import Path

from knowledge_base.paths import PROJECT_ROOT


def _private_imports(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("chatbot.engine.answer"):
            found += [f"{path}:{node.lineno} {a.name}" for a in node.names if a.name.startswith("_")]
    return found


def test_no_module_imports_a_private_name_from_the_answer_package():
    roots = [PROJECT_ROOT / d for d in ("chatbot", "ui", "finetune", "knowledge_base", "tests")]
    found = [hit for root in roots for path in sorted(root.rglob("*.py")) for hit in _private_imports(path)]
    assert found == []
