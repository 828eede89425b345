"""The LangChain adapters behave like LangChain components."""

from chatbot.lc import MedChatRetriever, consultation_runnable
from chatbot.llm.fake import FakeGenerator
from knowledge_base.retriever import Retriever
from tests.chatbot.engine.test_service import make_service


def test_retriever_returns_langchain_documents(built_index):
    docs = MedChatRetriever(retriever=Retriever(built_index), k=2).invoke("What causes gout?")
    assert len(docs) == 2
    assert docs[0].metadata["doc_id"] == "gout" and docs[0].metadata["url"] == "https://example.org/gout"
    assert docs[0].page_content.startswith("What causes gout?")


def test_consultation_runnable_batches_and_keeps_sessions(built_index, tmp_path):
    service = make_service(built_index, tmp_path, generator=FakeGenerator())
    chain = consultation_runnable(service)
    out = chain.invoke("How is asthma treated with an inhaler?")
    assert out["citations"][0]["doc_id"] == "asthma" and out["lang"] == "en"
    follow = chain.invoke({"question": "Is it dangerous?", "session_id": out["session_id"]})
    assert follow["session_id"] == out["session_id"] and "query_rewritten" in follow["flags"]
    batch = chain.batch(["What causes gout?", "慢性胃炎怎么治疗？"])
    assert [b["lang"] for b in batch] == ["en", "zh"]
