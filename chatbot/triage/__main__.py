"""``python -m chatbot.triage > docs/TRIAGE_RULES.md``: the rule reference, from the rule files."""

from chatbot.triage.rules import rules_markdown

print(rules_markdown(), end="")
