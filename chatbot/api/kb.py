"""``GET /v1/kb/search?q=&k=&method=`` (every role): exactly the JSON of ``medchat kb search
--json`` (docs/CLI.md), from the retriever the chat uses."""

from __future__ import annotations

from typing import Any, Literal, Optional

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse

from chatbot.api.auth import require_patient
from chatbot.api.context import context
from chatbot.api.errors import ApiError
from chatbot.api.keys import ApiKey
from chatbot.api.schemas import ERRORS
from knowledge_base.errors import QueryError

router = APIRouter(prefix="/v1", tags=["knowledge base"])


@router.get("/kb/search", responses=ERRORS)
def kb_search(request: Request,
              q: str = Query(..., description="The question, in Chinese or English."),
              k: int = Query(10, ge=1, le=100, description="Number of results."),
              method: Optional[Literal["hybrid", "bm25", "dense"]] = Query(
                  None, description="Default: retrieval.method."),
              key: ApiKey = Depends(require_patient)) -> Any:
    """A list, best first, of {doc_id, chunk_id, title, url, source, lang, score, text, section, scores}."""
    try:
        passages = context(request).app.retriever.search(q, k=k, method=method)
    except QueryError:
        raise ApiError("invalid_query", param="q") from None
    return JSONResponse([p.to_json() for p in passages])
