"""MedChat knowledge base: load, chunk, embed, index (FAISS + BM25) and search medical guidelines.

Importing this package loads no model and opens no index; see :class:`Retriever` and
:func:`build_index`.
"""

from knowledge_base.errors import KnowledgeBaseError
from knowledge_base.records import Chunk, Document, Passage

__all__ = ["Chunk", "Document", "KnowledgeBaseError", "Passage"]
