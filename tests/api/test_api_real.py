"""Integration: `medchat api` as a real subprocess on a free loopback port, with the default model
and the default index (`medchat setup`), called by the official openai SDK and by LangChain's
ChatOpenAI. Slow: the server loads every model first (~20 s), then two questions reach the model
(a few seconds each on an idle 2-core machine); the rest are emergencies, answered without it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.ui.browser import free_port

pytestmark = pytest.mark.slow


def _medchat() -> list[str]:
    exe = shutil.which("medchat")
    return [exe] if exe else [sys.executable, "-m", "chatbot.cli"]


class ApiServer:
    def __init__(self, tmp: Path) -> None:
        # Default model, adapter and index. One llama.cpp thread, as in the engine's real-parts
        # tests: on a shared CI machine, all-core llama.cpp threads spinning against another job's
        # turned 3-second answers into 60-second timeouts.
        self.env = {**os.environ, "MEDCHAT_API__KEYS_DB": str(tmp / "keys.sqlite"),
                    "MEDCHAT_PATHS__DATABASE": str(tmp / "chat.sqlite"), "MEDCHAT_LLM__N_THREADS": "1"}
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = tmp / "api.log"
        with self.log.open("wb") as log:
            self.proc = subprocess.Popen([*_medchat(), "api", "--host", "127.0.0.1", "--port", str(self.port)],
                                         env=self.env, stdout=log, stderr=subprocess.STDOUT)

    def key(self, role: str) -> str:
        out = subprocess.run([*_medchat(), "api", "key", "create", "--role", role, "--json"], env=self.env,
                             capture_output=True, text=True, check=True, timeout=120)
        return json.loads(out.stdout)["key"]

    def wait_ready(self, limit_s: float = 300.0) -> None:
        import httpx

        end = time.monotonic() + limit_s
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                pytest.fail(f"medchat api exited ({self.proc.returncode}):\n{self.tail()}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=30).status_code == 200:
                    return
            except httpx.HTTPError:
                pass  # not listening yet: the models load before the port opens
            time.sleep(0.5)
        pytest.fail(f"medchat api not ready after {limit_s} s:\n{self.tail()}")

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=30)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    from chatbot.settings import load_settings

    index = load_settings().paths.index_dir
    assert (index / "current").exists(), f"no default index at {index}: run `medchat setup` first"
    api = ApiServer(tmp_path_factory.mktemp("api"))
    try:
        key = api.key("patient")
        api.wait_ready()
        yield api, key
    finally:
        api.stop()


@pytest.fixture(scope="module")
def client(server):
    from openai import OpenAI

    api, key = server
    return OpenAI(base_url=f"{api.url}/v1", api_key=key, timeout=240, max_retries=0)


def test_openai_sdk_completion_is_answered_and_cited(client):
    completion = client.chat.completions.create(
        model="medchat", messages=[{"role": "user", "content": "What are the symptoms of glaucoma?"}])
    choice = completion.choices[0]
    assert completion.object == "chat.completion" and completion.model == "medchat"
    assert choice.finish_reason == "stop" and choice.message.role == "assistant"
    assert len(choice.message.content) > 40
    extras = completion.model_extra["medchat"]
    assert extras["citations"] and extras["lang"] == "en" and extras["red_flag"] is None
    assert extras["backend"].startswith("llamacpp:")
    assert any("glaucoma" in p["title"].lower() for p in extras["passages"])


def test_openai_sdk_stream_in_chinese_then_an_emergency_in_the_same_session(client):
    stream = client.chat.completions.create(
        model="medchat", stream=True, messages=[{"role": "user", "content": "高血压怎么治疗？"}])
    chunks = list(stream)  # the SDK stops at data: [DONE]
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert sum("\u4e00" <= ch <= "\u9fff" for ch in text) > 10
    last = chunks[-1]
    assert last.choices[0].finish_reason == "stop"
    extras = last.model_extra["medchat"]
    assert extras["lang"] == "zh" and extras["session_id"]
    emergency = client.chat.completions.create(
        model="medchat", messages=[{"role": "user", "content": "我现在胸口剧痛，喘不上气"}],
        extra_body={"session_id": extras["session_id"]})
    flags = emergency.model_extra["medchat"]
    assert flags["red_flag"] is not None and "emergency" in flags["flags"]
    assert flags["session_id"] == extras["session_id"] and "120" in emergency.choices[0].message.content


def test_openai_sdk_raises_its_authentication_error_with_the_bilingual_message(server):
    from openai import AuthenticationError, OpenAI

    api, _ = server
    bad = OpenAI(base_url=f"{api.url}/v1", api_key="mck_000000000000_" + "x" * 43, max_retries=0)
    with pytest.raises(AuthenticationError) as info:
        bad.models.list()
    assert info.value.status_code == 401 and info.value.code == "invalid_api_key"
    assert "API 密钥" in info.value.message and "API key" in info.value.message


def test_langchain_chat_openai_invokes_and_streams(server):
    # Emergencies need no model: LangChain's parsing of both modes is what is under test here
    # (the SDK tests above cover answers the model wrote).
    from langchain_openai import ChatOpenAI

    api, key = server
    llm = ChatOpenAI(model="medchat", base_url=f"{api.url}/v1", api_key=key, timeout=240, max_retries=0)
    message = llm.invoke("I have crushing chest pain spreading to my left arm")
    assert "120" in message.content and message.response_metadata.get("finish_reason") == "stop"
    streamed = list(llm.stream("My father suddenly cannot move his right arm and his speech is slurred"))
    text = "".join(chunk.content for chunk in streamed)
    assert "120" in text and len(streamed) > 2
