"""Domain errors of the consultation side. Knowledge-base errors (``knowledge_base.errors``) and
these are translated at the edges: CLI exit code + message, ``gr.Error`` in the UI."""

from __future__ import annotations

from knowledge_base.errors import DomainError


class MedChatError(DomainError):
    """Base of chat-side failures; a sibling of ``KnowledgeBaseError`` under ``DomainError``."""


class SettingsError(MedChatError):
    """settings.yaml or a MEDCHAT_* variable is invalid."""
