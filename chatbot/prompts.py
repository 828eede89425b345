"""Prompts and patient-facing strings, per language, from files under ``data/prompts/<lang>/``:

- ``*.yaml``: flat mappings ``key: text`` merged per language (a key defined twice is an error);
  texts are ``str.format`` templates (``{emergency_number}``).
- ``*.txt``: longer prompt templates (system prompt, answer instructions), read by name.

Both languages must define the same keys: a test checks it, so a string cannot exist in English
only.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from chatbot.errors import MedChatError

LANGS = ("zh", "en")
from chatbot.settings import PROMPTS_DIR as DEFAULT_ROOT


class PromptError(MedChatError):
    """A prompt file or key is missing or malformed."""


class PromptLibrary:
    def __init__(self, root: str | Path = DEFAULT_ROOT) -> None:
        self.root = Path(root)

    @lru_cache(maxsize=4)
    def messages(self, lang: str) -> dict[str, str]:
        if lang not in LANGS:
            raise PromptError(f"unsupported language {lang!r}; expected one of {LANGS}")
        merged: dict[str, str] = {}
        for path in sorted((self.root / lang).glob("*.yaml")):
            try:
                data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
            except (OSError, yaml.YAMLError) as exc:
                raise PromptError(f"cannot read {path}: {exc}") from exc
            if not isinstance(data, dict):
                raise PromptError(f"{path} must be a mapping of key: text")
            for key, value in data.items():
                if key in merged:
                    raise PromptError(f"message key {key!r} defined twice in {self.root / lang}")
                merged[str(key)] = str(value).strip()
        return merged

    def text(self, lang: str, key: str, **values: Any) -> str:
        try:
            template = self.messages(lang)[key]
        except KeyError as exc:
            raise PromptError(f"no message {key!r} for language {lang!r} in {self.root / lang}") from exc
        try:
            return template.format(**values)
        except KeyError as exc:
            raise PromptError(f"message {key!r} ({lang}) needs the value {exc}") from exc

    @lru_cache(maxsize=32)
    def template(self, lang: str, name: str) -> str:
        path = self.root / lang / f"{name}.txt"
        try:
            return path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise PromptError(f"missing prompt template {path}") from exc
