"""Switching every label between 中文 and English: each tab registers its components with a
function that returns the component's update for a language; the language selector's change
event applies them all at once."""

from __future__ import annotations

from typing import Any, Callable

LANG_CHOICES = [("中文", "zh"), ("English", "en")]


class Registry:
    def __init__(self) -> None:
        self._items: list[tuple[Any, Callable[[str], Any]]] = []

    def add(self, component: Any, update: Callable[[str], Any]) -> None:
        self._items.append((component, update))

    @property
    def components(self) -> list[Any]:
        return [c for c, _ in self._items]

    def updates(self, lang: str) -> list[Any]:
        return [update(lang) for _, update in self._items]
