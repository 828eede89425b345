"""Domain errors of the knowledge base. The CLI and UI translate them at their edges;
inside, a failure is raised, never returned as a success-shaped value."""

from __future__ import annotations


class DomainError(Exception):
    """Root of every MedChat domain failure (knowledge base and chat side alike): a message plus
    a ``hint`` that tells the operator what to do next. The edges (CLI, UI) catch this one type."""

    exit_code = 2

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message}\n  hint: {self.hint}" if self.hint else self.message


class KnowledgeBaseError(DomainError):
    """Base of every knowledge-base failure."""


class LoaderError(KnowledgeBaseError):
    """A source file could not be read; the build reports it and goes on."""


class IndexNotFoundError(KnowledgeBaseError):
    """No built index at the given directory."""


class IndexCorruptError(KnowledgeBaseError):
    """The index directory exists but is incomplete or inconsistent (e.g. a half-written build)."""


class IndexMismatchError(KnowledgeBaseError):
    """The index was built with another embedder (or dimension) than the one asked for."""


class EmbedderError(KnowledgeBaseError):
    """An embedder could not be loaded (missing package, wrong path)."""


class QueryError(KnowledgeBaseError):
    """The query itself is unusable (empty after cleaning)."""


class BuildError(KnowledgeBaseError):
    """The build could not produce an index (e.g. no document at all was loaded)."""
