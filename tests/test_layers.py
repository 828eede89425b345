"""The dependency rules of docs/ARCHITECTURE.md, checked on every import in the code, lazy
imports inside functions included (an import that only runs later is still a dependency).

    knowledge_base  <-  chatbot core stages  <-  chatbot.engine  <-  chatbot.staff  <-  chatbot.app
                    <-  edges: chatbot.cli, chatbot.api, chatbot.evaluation, chatbot.lc, ui
    finetune sits beside the engine: it may use the layers below it; only the edges import it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from knowledge_base.paths import PROJECT_ROOT

PACKAGES = ("knowledge_base", "chatbot", "finetune", "ui")
EDGES = ("chatbot.cli", "chatbot.api", "chatbot.evaluation", "chatbot.lc", "ui")
CORE = ("chatbot.settings", "chatbot.errors", "chatbot.prompts", "chatbot.protocols", "chatbot.store",
        "chatbot.db", "chatbot.schema",
        "chatbot.redact", "chatbot.llm", "chatbot.safety", "chatbot.classifier", "chatbot.triage")

# layer of a module -> module prefixes it must never import
NEVER = {
    "knowledge_base": ("chatbot", "finetune", "ui"),
    "core": ("chatbot.engine", "chatbot.staff", "chatbot.app", *EDGES, "finetune"),
    "chatbot.engine": ("chatbot.staff", "chatbot.app", *EDGES, "finetune"),
    "chatbot.staff": ("chatbot.app", *EDGES, "finetune"),
    "chatbot.app": (*EDGES, "finetune"),
    "finetune": ("chatbot.staff", "chatbot.app", *EDGES),
    "edge": (),
}

# Known exceptions, each to be removed: (importer, imported).
KNOWN: set[tuple[str, str]] = set()


def _within(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def layer_of(module: str) -> str:
    if _within(module, "knowledge_base"):
        return "knowledge_base"
    if _within(module, "finetune"):
        return "finetune"
    if any(_within(module, e) for e in EDGES):
        return "edge"
    for name in ("chatbot.engine", "chatbot.staff", "chatbot.app"):
        if _within(module, name):
            return name
    if any(_within(module, c) for c in CORE) or module == "chatbot":
        return "core"
    raise AssertionError(f"{module}: no layer declared for it (add it to tests/test_layers.py and ARCHITECTURE.md)")


def project_modules() -> dict[str, Path]:
    out = {}
    for pkg in PACKAGES:
        for path in (PROJECT_ROOT / pkg).rglob("*.py"):
            parts = list(path.relative_to(PROJECT_ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            out[".".join(parts)] = path
    return out


def imports_of(path: Path) -> set[str]:
    """Every project module named by an import statement anywhere in the file."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path}: relative import; the layer rules read absolute names"
            if node.module:
                names.add(node.module)
                names.update(f"{node.module}.{a.name}" for a in node.names)
    return {n for n in names if n.split(".")[0] in PACKAGES}


def violations() -> list[tuple[str, str]]:
    modules = project_modules()
    found = []
    for module, path in sorted(modules.items()):
        banned = NEVER[layer_of(module)]
        for imported in sorted(imports_of(path)):
            if any(_within(imported, b) for b in banned):
                found.append((module, imported))
    return found


def test_every_module_has_a_layer():
    for module in project_modules():
        layer_of(module)


def test_no_import_breaks_the_layer_rules():
    bad = [v for v in violations() if v not in KNOWN]
    assert not bad, "imports against the layer rules:\n" + "\n".join(f"  {a} -> {b}" for a, b in bad)


def test_known_exceptions_are_still_needed():
    stale = KNOWN - set(violations())
    assert not stale, f"remove these from KNOWN, they no longer happen: {sorted(stale)}"


def test_no_module_finds_the_project_root_from_its_own_depth():
    offenders = []
    for module, path in project_modules().items():
        text = path.read_text(encoding="utf-8")
        if "__file__" in text and (".parent.parent" in text or ".parents[" in text):
            offenders.append(module)
    assert not offenders, f"use knowledge_base.paths / chatbot.settings instead: {offenders}"


@pytest.mark.parametrize("module,banned", [
    ("knowledge_base.retriever", "chatbot"),
    ("chatbot.safety.screen", "chatbot.engine"),
    ("chatbot.engine.service", "finetune"),
    ("chatbot.engine.service", "ui"),
    ("chatbot.app", "chatbot.cli"),
    ("chatbot.engine.service", "chatbot.api"),
])
def test_the_rules_would_catch_a_forbidden_import(module, banned):
    # The check itself can fail: a forbidden import is reported for the layer it comes from.
    assert any(_within(banned, b) for b in NEVER[layer_of(module)])
