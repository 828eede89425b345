"""Helpers of the API tests: the fast environment, a TestClient factory, keys, the error check."""

from __future__ import annotations

from fastapi.testclient import TestClient

FAST_ENV = {
    "MEDCHAT_LLM__BACKEND": "fake",
    # the hash embedder's cosines mean nothing: open the evidence gate
    "MEDCHAT_CHAT__MIN_DENSE_EVIDENCE_EN": "0",
    "MEDCHAT_CHAT__MIN_DENSE_EVIDENCE_ZH": "0",
    "MEDCHAT_CLASSIFIER__ENABLED": "false",
    "MEDCHAT_SAFETY__DETECTOR_DIR": "",
    "MEDCHAT_TRIAGE__OPINION_DIR": "",
}


def make_client(app=None, **api_overrides) -> TestClient:
    """A TestClient on create_api with the current environment (``api_overrides``: api.* fields);
    ``app``: an already wired chatbot.app.App (e.g. with a scripted generator)."""
    from chatbot.api.app import create_api
    from chatbot.app import settings_with
    from chatbot.settings import load_settings

    if app is not None:
        for name, value in api_overrides.items():
            setattr(app.settings.api, name, value)
        return TestClient(create_api(app=app), raise_server_exceptions=False)
    settings = settings_with(load_settings(), api=api_overrides)
    return TestClient(create_api(settings), raise_server_exceptions=False)


def new_key(client: TestClient, role: str, name: str = "") -> str:
    return client.app.state.medchat.keys.create(role, name)[1]


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def _cjk(ch: str) -> bool:
    return "\u4e00" <= ch <= "\u9fff"


def assert_error(response, status: int, code: str) -> dict:
    """OpenAI's error shape with a message in both languages; the error object."""
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code and error["type"]
    assert error["message"] == f"{error['message_zh']} / {error['message_en']}"
    assert any(_cjk(ch) for ch in error["message_zh"]), error
    assert not any(_cjk(ch) for ch in error["message_en"]), error
    assert "{" not in error["message"], error  # every placeholder filled
    assert "Traceback" not in response.text
    return error
