"""Request and response shapes of the API (they are also the OpenAPI schema at /openapi.json).

Chat follows OpenAI's Chat Completions: requests accept the fields OpenAI clients send
(``extra="allow"``) and MedChat reads only those below; sampling fields (``temperature``,
``max_tokens``, ``top_p`` ...) are accepted and ignored, because answers come from the settings
(greedy, reproducible, the length the prompts ask for). Triage and knowledge-base search return
exactly the JSON of ``medchat triage --json`` and ``medchat kb search --json`` (docs/CLI.md).
"""

from __future__ import annotations

from typing import Any, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field


class ContentPart(BaseModel):
    model_config = ConfigDict(extra="allow")
    type: str = Field(description="Only 'text' is supported.")
    text: Optional[str] = None


class ChatMessageIn(BaseModel):
    model_config = ConfigDict(extra="allow")
    role: Literal["system", "developer", "user", "assistant", "tool", "function"] = Field(description=(
        "user and assistant turns are the conversation; system / developer / tool messages are "
        "ignored: MedChat's own instructions are the only system prompt (nothing a client sends "
        "reaches it)."))
    content: Optional[str | list[ContentPart]] = None
    name: Optional[str] = None


class ChatCompletionRequest(BaseModel):
    model_config = ConfigDict(extra="allow")
    model: str = Field(default="medchat", description="'medchat' or the configured model name (GET /v1/models).")
    messages: list[ChatMessageIn] = Field(description=(
        "The conversation, oldest first. The last user message is the question; the user and "
        "assistant turns before it are the history of a new session (ignored when a session is "
        "continued: the server holds that conversation)."))
    stream: bool = Field(default=False, description=(
        "true: server-sent events, OpenAI chunk format, ending with data: [DONE]."))
    n: Optional[int] = Field(default=1, description="Must be 1.")
    user: Optional[str] = Field(default=None, description=(
        "OpenAI's end-user tag. When it names a session this key opened, the conversation continues."))
    session_id: Optional[str] = Field(default=None, description=(
        "Continue this session (from medchat.session_id of an earlier reply); the header "
        "X-MedChat-Session does the same and wins."))


class MedChatExtras(BaseModel):
    """What MedChat adds to an OpenAI completion, in the top-level field ``medchat``."""

    session_id: str = Field(description=(
        "Send it back (X-MedChat-Session or session_id) to continue the conversation."))
    citations: list[dict[str, Any]] = Field(description=(
        "[{n, doc_id, title, url, source}] of the [n] markers in the answer."))
    passages: list[dict[str, Any]] = Field(description=(
        "The passages the answer was written from (kb search shape + n)."))
    red_flag: Optional[dict[str, Any]] = Field(description=(
        "Emergencies: {category, evidence, categories, rule_ids, number, crisis_line}."))
    flags: list[str] = Field(description=(
        "What happened on the way (docs/CLI.md lists them): emergency, no_evidence, fallback_extractive ..."))
    disposition: Optional[dict[str, Any]] = Field(description=(
        "{level, line} when the message describes one's own symptoms."))
    safety_question: Optional[dict[str, Any]] = Field(default=None, description=(
        "The fixed safety question asked instead of an answer (the detector was unsure); "
        "answer it in the same session."))
    lang: str = Field(description="zh | en: the language of the answer.")
    timings: dict[str, float] = Field(default_factory=dict, description="retrieval_ms, ttft_ms, total_ms.")
    backend: str = Field(default="", description="The generator that answered, or 'none' (no model was needed).")


class AssistantMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str
    refusal: Optional[str] = None


class Choice(BaseModel):
    index: int = 0
    message: AssistantMessage
    logprobs: None = None
    finish_reason: Literal["stop"] = "stop"


class ChatCompletion(BaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[Choice]
    usage: None = Field(default=None, description="Not reported: the prompt is built inside MedChat.")
    system_fingerprint: Optional[str] = None
    medchat: MedChatExtras


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str = "medchat"


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]


class VitalsIn(BaseModel):
    """Every field optional; ranges are checked by the triage engine (400 with the field)."""

    model_config = ConfigDict(extra="forbid")
    hr: Optional[float] = Field(default=None, description="Heart rate, /min.")
    sbp: Optional[float] = Field(default=None, description="Systolic blood pressure, mmHg.")
    rr: Optional[float] = Field(default=None, description="Respiratory rate, /min.")
    spo2: Optional[float] = Field(default=None, description="Oxygen saturation, %.")
    temp: Optional[float] = Field(default=None, description="Temperature, °C.")
    gcs: Optional[float] = Field(default=None, description="Glasgow Coma Scale, 3-15 (whole number).")
    avpu: Optional[str] = Field(default=None, description="A | V | P | U.")
    pain: Optional[float] = Field(default=None, description="Pain score 0-10 (whole number).")


class TriageRequest(BaseModel):
    """One intake, as ``medchat triage`` takes it (and as the intake JSON stored with --save)."""

    model_config = ConfigDict(extra="forbid")
    complaint: str = Field(description="The complaint in the patient's words (中文 / English).")
    age: Optional[float] = Field(default=None, description="Age in years (0.25 = 3 months).")
    sex: Optional[str] = Field(default=None, description="F or M.")
    pregnant: Optional[bool] = None
    vitals: VitalsIn = Field(default_factory=VitalsIn)
    onset: Optional[str] = Field(default=None, description='When it started, e.g. "2 hours ago", "3天".')
    comorbidities: list[str] = Field(default_factory=list, description="Long-term conditions.")
    lang: Optional[Literal["zh", "en"]] = Field(default=None, description=(
        "Language of the note and reasons (default: the complaint's)."))
    evidence: bool = Field(default=True, description="false = no supporting passages (medchat triage --no-evidence).")


class ErrorDetail(BaseModel):
    message: str = Field(description="中文 / English")
    type: str
    code: str
    param: Optional[str] = None
    message_zh: str
    message_en: str


class ErrorResponse(BaseModel):
    error: ErrorDetail


ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorResponse, "description": text}
    for status, text in ((400, "Bad input"), (401, "Missing or invalid API key"), (403, "Role not allowed"),
                         (413, "Body too large"), (422, "Wrong types"), (429, "Rate limited (Retry-After)"))
}
