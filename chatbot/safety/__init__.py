"""Deterministic red-flag safety screen (issue 4): runs on every patient message before
retrieval or generation. See docs/SAFETY.md."""

from chatbot.safety.rules import RuleSet, SafetyRulesError, load_rules
from chatbot.safety.screen import RedFlagHit, RedFlagScreen

__all__ = ["RedFlagHit", "RedFlagScreen", "RuleSet", "SafetyRulesError", "load_rules"]
