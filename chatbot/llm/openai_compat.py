"""Any OpenAI-compatible chat server (vLLM, TGI, Ollama, llama.cpp / llama-cpp-python server).

The concurrency path: the generator is thread-safe (one pooled ``httpx.Client``), the server
batches requests. Token counts are *approximate* (no tokenizer here): see ``approx_tokens``.
"""

from __future__ import annotations

import json
import math
import re
import threading
from typing import Any, Iterator, Sequence

from chatbot.llm.base import BackendInfo, ChatMessage, GenerationError, GenerationOptions, GenerationTimeout
from chatbot.llm.prompting import Deadline
from knowledge_base.text import CJK_WIDE_CLASS

_CJK = re.compile(f"[{CJK_WIDE_CLASS}]")


def approx_tokens(text: str) -> int:
    """~3 characters per token for Latin text and one token per CJK character.

    Deliberately on the high side for both languages (BPE vocabularies of small models give
    ~4 chars/token in English and 1-1.5 tokens per Chinese character), because the engine uses
    counts to budget the prompt: over-counting leaves spare room, under-counting overflows.
    """
    cjk = len(_CJK.findall(text))
    return max(1, cjk + math.ceil((len(text) - cjk) / 3))


class OpenAICompatGenerator:
    def __init__(self, base_url: str, model: str, *, api_key: str = "", n_ctx: int = 4096,
                 connect_timeout_s: float = 10.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.api_key = api_key
        self.n_ctx = n_ctx
        self.connect_timeout_s = connect_timeout_s
        self.name = f"openai:{model}"
        self._client: Any = None
        self._client_lock = threading.Lock()

    @property
    def context_length(self) -> int:
        return self.n_ctx

    def count_tokens(self, text: str) -> int:
        return approx_tokens(text)

    def _http(self) -> Any:
        with self._client_lock:
            if self._client is None:
                try:
                    import httpx
                except ImportError as exc:
                    raise GenerationError("the openai backend needs httpx",
                                          hint="pip install httpx") from exc
                headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
                self._client = httpx.Client(headers=headers)
            return self._client

    def close(self) -> None:
        with self._client_lock:
            if self._client is not None:
                self._client.close()
                self._client = None

    def _unreachable(self, exc: Exception) -> GenerationError:
        return GenerationError(f"cannot reach the LLM server at {self.base_url}: {exc}",
                               hint="start the server, or fix llm.base_url (it must end with the "
                                    "API prefix, usually /v1)")

    def warm_up(self) -> None:
        """Fail fast at start-up: the server must answer ``GET /models``."""
        import httpx

        client = self._http()
        try:
            response = client.get(f"{self.base_url}/models", timeout=self.connect_timeout_s)
        except httpx.HTTPError as exc:
            raise self._unreachable(exc) from exc
        self._raise_for_status(response, f"{self.base_url}/models")

    def _raise_for_status(self, response: Any, url: str) -> None:
        if response.status_code < 400:
            return
        body = response.read().decode("utf-8", "replace")[:300]
        hint = ("check llm.api_key (MEDCHAT_LLM__API_KEY)" if response.status_code in (401, 403)
                else "check llm.model (the served model name) and llm.base_url")
        raise GenerationError(f"the LLM server at {url} answered HTTP {response.status_code}: "
                              f"{body}", hint=hint)

    def _payload(self, messages: Sequence[ChatMessage], options: GenerationOptions) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "model": self.model,
            "messages": [m.as_dict() for m in messages],
            "stream": True,
            "max_tokens": options.max_tokens,
            "temperature": options.temperature,
            "top_p": options.top_p,
            "seed": options.seed,
            # Not in OpenAI's schema; llama.cpp servers honour it, lenient servers ignore it.
            "repeat_penalty": options.repeat_penalty,
        }
        if options.stop:
            payload["stop"] = list(options.stop)
        return payload

    def stream(self, messages: Sequence[ChatMessage], options: GenerationOptions) -> Iterator[str]:
        import httpx

        deadline = Deadline(options.timeout_s)
        client = self._http()
        url = f"{self.base_url}/chat/completions"
        # The read timeout bounds silence between bytes; the deadline bounds the whole answer.
        timeout = httpx.Timeout(options.timeout_s,
                                connect=min(self.connect_timeout_s, options.timeout_s))
        try:
            with client.stream("POST", url, json=self._payload(messages, options),
                               timeout=timeout) as response:
                self._raise_for_status(response, url)
                for line in response.iter_lines():
                    deadline.check(f"generation with {self.name}")
                    piece, done = self._parse(line, url)
                    if done:
                        return
                    if piece:
                        yield piece
        except httpx.TimeoutException as exc:
            raise GenerationTimeout(f"the LLM server at {self.base_url} did not answer within "
                                    f"{options.timeout_s:g} s: {exc!r}",
                                    hint="raise llm.timeout_s or check the server load") from exc
        except httpx.HTTPError as exc:
            raise self._unreachable(exc) from exc

    def _parse(self, line: str, url: str) -> tuple[str, bool]:
        """One SSE line -> (text piece, stream finished). Comments and other fields are skipped."""
        if not line.startswith("data:"):
            return "", False
        data = line[len("data:"):].strip()
        if data == "[DONE]":
            return "", True
        try:
            event = json.loads(data)
        except json.JSONDecodeError as exc:
            raise GenerationError(f"the LLM server at {url} sent a malformed event: {data[:200]}",
                                  hint="is llm.base_url an OpenAI-compatible API?") from exc
        if "error" in event:  # some servers report mid-stream failures as an event
            raise GenerationError(f"the LLM server at {url} reported: {event['error']}")
        choices = event.get("choices") or []
        if not choices:
            return "", False
        delta = choices[0].get("delta") or {}
        return delta.get("content") or "", False

    def info(self) -> BackendInfo:
        return BackendInfo(backend="openai", model=self.model, device="remote",
                           extra={"base_url": self.base_url, "n_ctx": str(self.n_ctx)})
