"""Domain errors of the consultation side. Knowledge-base errors (``knowledge_base.errors``) and
these are translated at the edges: CLI exit code + message, ``gr.Error`` in the UI."""

from __future__ import annotations

from knowledge_base.errors import KnowledgeBaseError


class MedChatError(KnowledgeBaseError):
    """Base of chat-side failures; shares the ``message`` + ``hint`` shape of KB errors."""


class SettingsError(MedChatError):
    """settings.yaml or a MEDCHAT_* variable is invalid."""
