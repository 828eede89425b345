"""LangChain adapters, so the engine drops into LangChain apps. LangChain is an interface here,
not the core: nothing else in MedChat imports it.

- :class:`MedChatRetriever`: the knowledge base as a ``BaseRetriever`` (documents carry doc_id,
  chunk_id, title, url, source, lang, score in their metadata).
- :func:`consultation_runnable`: the consultation service as a ``Runnable``: input a question
  string or ``{"question", "session_id"?}``, output the ``medchat ask --json`` dict.
"""

from __future__ import annotations

from typing import Any

from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document as LCDocument
from langchain_core.retrievers import BaseRetriever
from langchain_core.runnables import Runnable, RunnableLambda
from pydantic import ConfigDict

from chatbot.engine.service import ConsultationService
from knowledge_base.retriever import Retriever


class MedChatRetriever(BaseRetriever):
    model_config = ConfigDict(arbitrary_types_allowed=True)
    retriever: Retriever
    k: int = 5

    def _get_relevant_documents(self, query: str, *,
                                run_manager: CallbackManagerForRetrieverRun) -> list[LCDocument]:
        out = []
        for p in self.retriever.search(query, k=self.k):
            meta = p.to_json()
            text = meta.pop("text")
            out.append(LCDocument(page_content=text, metadata=meta))
        return out


def consultation_runnable(service: ConsultationService) -> Runnable:
    def run(inp: Any) -> dict:
        if isinstance(inp, str):
            question, session = inp, None
        else:
            question, session = inp["question"], inp.get("session_id")
        return service.ask(question, session_id=session).to_json()

    return RunnableLambda(run, name="medchat_consultation")
