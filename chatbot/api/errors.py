"""Errors as clients see them: OpenAI's error shape with a bilingual message,

    {"error": {"message": "中文 / English", "type": "...", "code": "...", "param": null,
               "message_zh": "...", "message_en": "..."}}

so that the openai SDK and LangChain raise their usual exceptions with a readable text. The
messages live here and not in data/prompts/<lang>/: those are chosen by the patient's language,
but the API does not know the language of whoever reads an error, so every message carries both
(``message``) and each alone (``message_zh``, ``message_en``) for clients that pick one.

No handler ever returns a traceback: an unexpected exception is logged (redacted) by the edge
middleware and the client gets the bilingual ``server_error``.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from chatbot.redact import redact
from knowledge_base.errors import DomainError

log = logging.getLogger("medchat.api")

# code -> (HTTP status, OpenAI error type, 中文, English)
MESSAGES: dict[str, tuple[int, str, str, str]] = {
    "missing_api_key": (401, "authentication_error", "缺少 API 密钥：请在 Authorization 头中使用 Bearer 方式提供。",
                        "Missing API key: send it as 'Authorization: Bearer <key>'."),
    "invalid_api_key": (401, "authentication_error", "API 密钥无效或已被吊销。",
                        "The API key is invalid or has been revoked."),
    "forbidden": (403, "permission_error", "此 API 密钥的角色（{role}）无权访问该接口，需要 {needed} 或更高角色。",
                  "This key's role ({role}) may not use this endpoint; it needs {needed} or above."),
    "rate_limited": (429, "rate_limit_error", "请求过于频繁：每个密钥每分钟最多 {limit} 次，请 {retry} 秒后重试。",
                     "Too many requests: at most {limit} per minute per key; retry in {retry} s."),
    "request_too_large": (413, "invalid_request_error", "请求体过大：上限为 {limit} 字节。",
                          "Request body too large: the limit is {limit} bytes."),
    "invalid_json": (400, "invalid_request_error", "请求体不是有效的 JSON。", "The request body is not valid JSON."),
    "invalid_request": (422, "invalid_request_error", "请求格式有误：{detail_zh}", "Invalid request: {detail}"),
    "empty_messages": (400, "invalid_request_error", "messages 不能为空。", "messages must not be empty."),
    "no_user_message": (400, "invalid_request_error", "messages 中没有 user 角色的消息（问题）。",
                        "messages holds no message with role 'user' (the question)."),
    "empty_question": (400, "invalid_request_error", "最后一条 user 消息没有文字内容。",
                       "The last user message has no text."),
    "unsupported_content": (400, "invalid_request_error", "仅支持文字内容（type 为 text）。",
                            "Only text content is supported (parts of type 'text')."),
    "unsupported_n": (400, "invalid_request_error", "每次请求只生成一个回答（n 必须为 1）。",
                      "One answer per request: n must be 1."),
    "model_not_found": (404, "invalid_request_error", "模型 {model!r} 不存在；可用模型见 GET /v1/models：{models}。",
                        "The model {model!r} does not exist; GET /v1/models lists them: {models}."),
    "invalid_session": (400, "invalid_request_error", "会话 ID 格式无效：1-64 个字母、数字、_ 或 -。",
                        "Invalid session id: 1-64 characters of letters, digits, _ or -."),
    "session_not_found": (404, "invalid_request_error", "会话 {session} 不存在或不属于此 API 密钥。",
                          "The session {session} does not exist or does not belong to this API key."),
    "invalid_intake": (400, "invalid_request_error", "{zh}", "{en}"),
    "invalid_query": (400, "invalid_request_error", "检索问题为空或无法使用。",
                      "The search query is empty or unusable."),
    "not_found": (404, "invalid_request_error", "没有这个接口：{path}。", "No such endpoint: {path}."),
    "method_not_allowed": (405, "invalid_request_error", "该接口不支持此 HTTP 方法。",
                           "This endpoint does not accept this HTTP method."),
    "unavailable": (503, "server_error", "服务暂时不可用（知识库或模型未就绪），请稍后再试。",
                    "The service is unavailable (knowledge base or model not ready); try again later."),
    "not_ready_index": (503, "server_error", "未就绪：知识库索引无法读取。",
                        "Not ready: the knowledge-base index cannot be read."),
    "not_ready_models": (503, "server_error", "未就绪：模型无法加载。", "Not ready: the models cannot be loaded."),
    "server_error": (500, "server_error", "服务器内部错误，已记录，请稍后再试。",
                     "Internal server error; it has been logged. Please try again later."),
}


class ApiError(Exception):
    """An error for the client: ``code`` names its bilingual message; ``values`` fill it."""

    def __init__(self, code: str, *, param: str | None = None, headers: dict[str, str] | None = None,
                 **values: Any) -> None:
        super().__init__(code)
        self.code = code
        self.param = param
        self.headers = headers or {}
        self.values = values

    @property
    def status(self) -> int:
        return MESSAGES[self.code][0]

    def body(self) -> dict[str, Any]:
        return error_body(self.code, self.param, **self.values)


def error_body(code: str, param: str | None = None, **values: Any) -> dict[str, Any]:
    _, kind, zh, en = MESSAGES[code]
    zh, en = zh.format(**values), en.format(**values)
    return {"error": {"message": f"{zh} / {en}", "type": kind, "code": code, "param": param,
                      "message_zh": zh, "message_en": en}}


def error_response(code: str, param: str | None = None, headers: dict[str, str] | None = None,
                   **values: Any) -> JSONResponse:
    return JSONResponse(error_body(code, param, **values), status_code=MESSAGES[code][0], headers=headers)


# pydantic names the member of a union it tried ("str", "list[ContentPart]"); not a field
_UNION_TAGS = re.compile(r"str|int|float|bool|list|dict|none|.*[\[\-].*")


def _field(loc: tuple | list) -> str:
    """``("body", "messages", 0, "content", "str")`` -> ``messages[0].content``."""
    out = ""
    for i, part in enumerate(loc):
        if i == 0 and part in ("body", "query", "header", "path"):
            continue
        if isinstance(part, str) and _UNION_TAGS.fullmatch(part):
            continue
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


# pydantic's messages are English only: the common ones in Chinese (others keep pydantic's text)
_ZH_TYPES = {
    "missing": "缺少此字段", "extra_forbidden": "不接受此字段", "string_type": "应为字符串",
    "list_type": "应为列表", "dict_type": "应为对象", "model_type": "应为对象", "model_attributes_type": "应为对象",
    "bool_type": "应为布尔值（true / false）", "bool_parsing": "应为布尔值（true / false）",
    "int_type": "应为整数", "int_parsing": "应为整数", "int_from_float": "应为整数",
    "float_type": "应为数字", "float_parsing": "应为数字", "literal_error": "取值无效",
    "greater_than_equal": "数值过小", "less_than_equal": "数值过大",
}


def _validation_detail(exc: RequestValidationError) -> tuple[str, str, str | None]:
    """(English detail, Chinese detail, the first field): field path and what is wrong, for at
    most five errors; the path is what a client needs to fix its request."""
    en: list[str] = []
    zh: list[str] = []
    first = None
    for err in exc.errors()[:5]:
        field = _field(err.get("loc", ())) or "body"
        first = first or field
        msg = err.get("msg", "invalid")
        for out, text in ((en, f"{field}: {msg}"), (zh, f"{field}：{_ZH_TYPES.get(err.get('type', ''), msg)}")):
            if text not in out:
                out.append(text)
    return "; ".join(en), "；".join(zh), first


def install_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        if any(e.get("type") == "json_invalid" for e in exc.errors()):
            return error_response("invalid_json")
        detail, detail_zh, param = _validation_detail(exc)
        return error_response("invalid_request", param, detail=detail, detail_zh=detail_zh)

    @app.exception_handler(DomainError)
    async def _domain(request: Request, exc: DomainError) -> JSONResponse:
        # A domain error no router expected (index gone, store unwritable, model unloadable):
        # the operator reads the log, the client learns it is not its fault.
        log.warning("%s on %s: %s", type(exc).__name__, redact(request.url.path)[0], redact(str(exc))[0])
        return error_response("unavailable")

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        # Starlette's own 404 / 405 (unknown path or method), in the same shape as ours
        if exc.status_code == 405:
            return error_response("method_not_allowed", headers=getattr(exc, "headers", None))
        if exc.status_code == 404:
            return error_response("not_found", path=redact(request.url.path)[0])
        return JSONResponse(error_body("server_error"), status_code=exc.status_code)
