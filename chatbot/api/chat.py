"""``POST /v1/chat/completions`` (OpenAI-compatible) and ``GET /v1/models``, over
``ConsultationService.reply``.

- **The question** is the last user message. A new conversation's earlier user / assistant turns
  are written into a fresh session first (as ``eval generation`` replays history), so follow-ups
  are rewritten and the prompt holds the history exactly as for the browser app. A continued
  session (``X-MedChat-Session``, ``session_id``, or ``user`` naming one) already holds its
  conversation; the request's earlier turns are then ignored.
- **Sessions belong to the key that opened them** (``api_sessions`` in the key file): another
  key gets 404, as for a session that does not exist, so ids cannot be probed. Admin keys may
  continue any API session.
- **Streaming sends the checked answer.** The engine checks an answer after generation
  (citations, doses, unsupported sentences, language) and may replace it entirely; the browser
  app shows the raw tokens and then swaps in the checked text, but an OpenAI client only
  appends deltas. So the stream opens at once with the assistant role, sends SSE comments while
  the model generates (keep-alive; every SSE client ignores them), then the checked answer as
  content deltas, a final chunk with ``finish_reason`` and the ``medchat`` extras, and
  ``data: [DONE]``. An unchecked sentence never reaches a client.
- **Emergencies, refusals, the safety question** are ordinary assistant messages; ``medchat``
  says what they are (``red_flag``, ``flags``, ``safety_question``).
"""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from typing import Any, Iterator

from fastapi import APIRouter, Depends, Header, Request
from fastapi.responses import JSONResponse, StreamingResponse

from chatbot.api.auth import require_patient
from chatbot.api.context import ApiContext, context
from chatbot.api.errors import ApiError, error_body
from chatbot.api.keys import ApiKey
from chatbot.api.middleware import log_unexpected
from chatbot.api.schemas import ERRORS, ChatCompletion, ChatCompletionRequest, ChatMessageIn, ModelList
from chatbot.engine.service import ConsultationResult, ReplyEvent
from chatbot.redact import redact
from chatbot.store import StoreError, check_session_id
from knowledge_base.errors import DomainError

log = logging.getLogger("medchat.api")
router = APIRouter(prefix="/v1", tags=["chat"])

SESSION_HEADER = "X-MedChat-Session"
# A comment line at most this often while the model generates: proxies and clients with read
# timeouts see the connection alive (a CPU answer takes seconds).
HEARTBEAT_S = 1.0
# Content deltas of the checked answer: a few words each, so clients render it progressively.
PIECE_CHARS = 24


@router.get("/models", response_model=ModelList, responses=ERRORS)
def list_models(request: Request, key: ApiKey = Depends(require_patient)) -> dict[str, Any]:
    """The model names /v1/chat/completions accepts (one MedChat profile under each)."""
    created = int(time.time())
    return {"object": "list", "data": [{"id": name, "object": "model", "created": created, "owned_by": "medchat"}
                                       for name in context(request).models]}


@router.post("/chat/completions", response_model=ChatCompletion, responses=ERRORS)
def chat_completions(body: ChatCompletionRequest, request: Request,
                     key: ApiKey = Depends(require_patient),
                     session_header: str | None = Header(None, alias=SESSION_HEADER)) -> Any:
    """One MedChat answer to the last user message; `stream: true` for server-sent events."""
    ctx = context(request)
    if body.model not in ctx.models:
        raise ApiError("model_not_found", param="model", model=body.model, models=", ".join(ctx.models))
    if body.n not in (None, 1):
        raise ApiError("unsupported_n", param="n")
    question, history = split_messages(body.messages)
    session_id = _session(ctx, key, session_header or body.session_id, body.user, history)
    head = {"id": f"chatcmpl-{uuid.uuid4().hex}", "created": int(time.time()), "model": body.model}
    headers = {SESSION_HEADER: session_id}
    events = ctx.app.service.reply(session_id, question)
    if body.stream:
        # Sync generator: Starlette runs each step in its thread pool (the model blocks a thread,
        # never the event loop).
        return StreamingResponse(_sse(events, head), media_type="text/event-stream",
                                 headers={**headers, "Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
    result = _final(events)
    return JSONResponse({**_shell(head, "chat.completion"),
                         "choices": [{"index": 0, "message": {"role": "assistant", "content": result.answer,
                                                              "refusal": None},
                                      "logprobs": None, "finish_reason": "stop"}],
                         "usage": None, "medchat": extras(result)}, headers=headers)


# -- messages and sessions ---------------------------------------------------------------------
def _text(message: ChatMessageIn, index: int) -> str:
    content = message.content
    if content is None or isinstance(content, str):
        return content or ""
    if any(part.type != "text" for part in content):
        raise ApiError("unsupported_content", param=f"messages[{index}].content")
    return "\n".join(part.text or "" for part in content)


def split_messages(messages: list[ChatMessageIn]) -> tuple[str, list[tuple[str, str]]]:
    """(the question, the earlier user / assistant turns as (role, text)). Messages after the
    last user message (an assistant prefill) are ignored: MedChat writes the whole answer."""
    if not messages:
        raise ApiError("empty_messages", param="messages")
    texts = [(m.role, _text(m, i)) for i, m in enumerate(messages)]
    last_user = max((i for i, (role, _) in enumerate(texts) if role == "user"), default=None)
    if last_user is None:
        raise ApiError("no_user_message", param="messages")
    question = texts[last_user][1]
    if not question.strip():
        raise ApiError("empty_question", param=f"messages[{last_user}].content")
    history = [(role, text) for role, text in texts[:last_user] if role in ("user", "assistant") and text.strip()]
    return question, history


def _valid_session(session_id: str) -> bool:
    try:
        check_session_id(session_id)
    except StoreError:
        return False
    return True


def _may_continue(ctx: ApiContext, key: ApiKey, session_id: str) -> bool:
    owner = ctx.keys.session_owner(session_id)
    return owner is not None and (owner == key.id or key.allows("admin"))


def _session(ctx: ApiContext, key: ApiKey, requested: str | None, user: str | None,
             history: list[tuple[str, str]]) -> str:
    """The session this request speaks in: the one asked for (404 when it is not this key's),
    the one ``user`` names if it is this key's, else a new one seeded with ``history``."""
    if requested:
        if not _valid_session(requested):
            raise ApiError("invalid_session", param="session_id")
        if not _may_continue(ctx, key, requested):
            raise ApiError("session_not_found", param="session_id", session=requested)
        return requested
    # `user` is OpenAI's end-user tag, which clients set for their own reasons: it continues a
    # session only when it is one, and this key's; anything else is not ours to interpret.
    if user and _valid_session(user) and _may_continue(ctx, key, user):
        return user
    store = ctx.app.store
    session_id = store.new_session(channel="api")
    ctx.keys.own_session(session_id, key.id)
    keep = 2 * ctx.app.settings.chat.history_turns  # the service reads no further back
    for role, text in (history[len(history) - keep:] if keep else []):
        store.add_message(session_id, role, text)
    return session_id


# -- results -------------------------------------------------------------------------------------
def extras(result: ConsultationResult) -> dict[str, Any]:
    return {"session_id": result.session_id, "citations": result.citations, "passages": result.passages,
            "red_flag": result.red_flag, "flags": result.flags, "disposition": result.disposition,
            "safety_question": result.safety_question, "lang": result.lang, "timings": result.timings,
            "backend": result.backend}


def _final(events: Iterator[ReplyEvent]) -> ConsultationResult:
    result = None
    for event in events:
        if event.kind == "final":
            result = event.data
    assert result is not None  # reply() always ends with a final event or raises
    return result


def pieces(text: str, size: int = PIECE_CHARS) -> list[str]:
    """``text`` cut into deltas of about ``size`` characters at spaces (Chinese, which has none,
    at ``size``); joined they are exactly ``text``."""
    out, buf = [], ""
    for token in re.findall(r"\S+\s*|\s+", text):
        while len(token) > size:
            if buf:
                out.append(buf)
                buf = ""
            out.append(token[:size])
            token = token[size:]
        if buf and len(buf) + len(token) > size:
            out.append(buf)
            buf = ""
        buf += token
    if buf:
        out.append(buf)
    return out


def _data(payload: dict[str, Any] | str) -> str:
    text = payload if isinstance(payload, str) else json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
    return f"data: {text}\n\n"


def _shell(head: dict[str, Any], kind: str) -> dict[str, Any]:
    """OpenAI's leading fields, in OpenAI's order."""
    return {"id": head["id"], "object": kind, "created": head["created"], "model": head["model"],
            "system_fingerprint": None}


def _sse(events: Iterator[ReplyEvent], head: dict[str, Any]) -> Iterator[str]:
    def chunk(delta: dict[str, Any], finish: str | None = None, **more: Any) -> str:
        return _data({**_shell(head, "chat.completion.chunk"),
                      "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}], **more})

    yield chunk({"role": "assistant", "content": ""})
    result, beat = None, time.monotonic()
    try:
        for event in events:
            if event.kind == "final":
                result = event.data
            elif time.monotonic() - beat >= HEARTBEAT_S:
                beat = time.monotonic()
                yield ": generating\n\n"
    except DomainError as exc:  # the headers are sent: the error travels as an event (the SDKs raise it)
        log.warning("stream failed: %s", redact(str(exc))[0])
        yield _data(error_body("unavailable"))
        yield _data("[DONE]")
        return
    except Exception as exc:
        log_unexpected("chat stream", exc)
        yield _data(error_body("server_error"))
        yield _data("[DONE]")
        return
    assert result is not None
    for piece in pieces(result.answer):
        yield chunk({"content": piece})
    yield chunk({}, "stop", medchat=extras(result))
    yield _data("[DONE]")
