"""Staff-side services of the browser app: nurse login (hashes, expiry), the nurse desk (form ->
intake, records, CSV) and the admin service (status, background rebuild on a real index)."""

from __future__ import annotations

import csv
import io

import pytest

from chatbot.app import build_app, build_staff
from chatbot.errors import MedChatError
from chatbot.llm.fake import FakeGenerator
from chatbot.prompts import PromptLibrary
from chatbot.settings import load_settings
from chatbot.staff.auth import AuthConfigError, NurseAuth, hash_password, verify_password
from chatbot.staff.nurse import NurseDesk, intake_from_form
from chatbot.store import ChatStore

FAST = 1000  # PBKDF2 rounds for tests; the real default is 600k
PW = "correct-horse-1"


def test_hash_roundtrip_and_salt():
    h = hash_password("s3cret-horse-battery", iterations=FAST)
    assert h.startswith("pbkdf2_sha256$1000$") and verify_password("s3cret-horse-battery", h)
    assert not verify_password("s3cret-horse-battery ", h)
    assert hash_password("s3cret-horse-battery", iterations=FAST) != h  # a fresh salt every time
    with pytest.raises(AuthConfigError):
        verify_password("x", "md5$abc")


def test_login_needs_user_and_password():
    auth = NurseAuth("nurse", password_hash=hash_password(PW, iterations=FAST))
    assert auth.login("nurse", "wrong") is None and auth.login("admin", PW) is None
    token = auth.login("nurse", PW)
    assert token and auth.check(token) == "nurse" and auth.check("forged") is None
    auth.logout(token)
    assert auth.check(token) is None


def test_unconfigured_console_refuses_every_login():
    auth = NurseAuth("nurse")
    assert not auth.configured and auth.login("nurse", "") is None and auth.login("nurse", "x") is None


def test_sessions_expire_after_idle_time_and_activity_extends_them():
    now = [0.0]
    auth = NurseAuth("nurse", password_hash=hash_password(PW, iterations=FAST), timeout_s=60,
                     clock=lambda: now[0])
    token = auth.login("nurse", PW)
    now[0] = 50
    assert auth.check(token) == "nurse"  # activity at 50 s restarts the clock
    now[0] = 100
    assert auth.check(token) == "nurse"
    now[0] = 161
    assert auth.check(token) is None


def test_short_passwords_are_refused(monkeypatch):
    # review (a): a one-character password was accepted
    for short in ("x", "12345678901"):
        with pytest.raises(AuthConfigError):
            hash_password(short, iterations=FAST)
        with pytest.raises(AuthConfigError):
            NurseAuth("nurse", password=short)
    assert NurseAuth("nurse", password="a" * 12).configured


def test_repeated_failures_lock_the_name_even_for_the_right_password():
    # review (a): 30 wrong passwords, then the right one logged in; failures were not logged
    now = [0.0]
    events: list[tuple[str, dict]] = []
    auth = NurseAuth("nurse", password_hash=hash_password(PW, iterations=FAST), clock=lambda: now[0],
                     max_failures=5, lockout_s=900, on_event=lambda kind, payload: events.append((kind, payload)))
    for _ in range(4):
        assert auth.login("nurse", "guess") is None
    assert auth.locked_for("nurse") == 0
    assert auth.login("nurse", "guess") is None            # the fifth failure locks
    assert auth.locked_for("nurse") == 900
    assert auth.login("nurse", PW) is None                  # the right password, refused while locked
    now[0] = 899
    assert auth.login("nurse", PW) is None
    now[0] = 901
    token = auth.login("nurse", PW)
    assert token and auth.check(token) == "nurse"
    kinds = [k for k, _ in events]
    assert kinds == ["login_failed"] * 5 + ["login_lockout", "login_locked", "login_locked", "login_ok"]
    assert events[4][1] == {"user": "nurse", "failures": 5}


def test_a_success_clears_the_failures_and_wrong_names_are_not_logged():
    events: list[tuple[str, dict]] = []
    auth = NurseAuth("nurse", password_hash=hash_password(PW, iterations=FAST), max_failures=3,
                     on_event=lambda kind, payload: events.append((kind, payload)))
    auth.login("nurse", "a")
    auth.login("nurse", "b")
    assert auth.login("nurse", PW)
    auth.login("nurse", "c")
    assert auth.locked_for("nurse") == 0                    # 1 failure since the success, not 3
    auth.login("my-password-typed-here", "x")
    assert events[-1] == ("login_failed", {"user": "(other)", "failures": 1})


def test_login_events_reach_the_store(tmp_path, monkeypatch):
    monkeypatch.setenv("MEDCHAT_UI__NURSE_PASSWORD", PW)
    app = build_app(load_settings(paths={"database": tmp_path / "chat.sqlite"}, llm={"backend": "fake"}),
                    generator=FakeGenerator())
    staff = build_staff(app)
    assert staff.auth.login("nurse", "wrong") is None
    logged = app.store.events(kind="login_failed")
    assert len(logged) == 1 and logged[0].payload == {"user": "nurse", "failures": 1}


def test_malformed_hash_fails_at_start_up():
    with pytest.raises(AuthConfigError):
        NurseAuth("nurse", password_hash="not-a-hash")


def test_password_from_environment_configures_the_console(monkeypatch):
    monkeypatch.setenv("MEDCHAT_UI__NURSE_PASSWORD", "from-env-long-enough")
    settings = load_settings()
    assert settings.ui.nurse_password.get_secret_value() == "from-env-long-enough"
    assert "from-env-long-enough" not in repr(settings.ui)  # a secret, not printed
    monkeypatch.delenv("MEDCHAT_UI__NURSE_PASSWORD")
    assert load_settings().ui.nurse_password.get_secret_value() == ""  # no default password


def test_intake_from_form_drops_blanks_and_splits_comorbidities():
    intake = intake_from_form({"complaint": " chest pain ", "age": 70, "sex": "", "pregnant": False,
                               "hr": 120, "sbp": None, "spo2": "", "avpu": "A",
                               "comorbidities": "diabetes，高血压, COPD", "onset": " "})
    assert intake == {"complaint": "chest pain", "age": 70, "sex": None, "pregnant": False,
                      "vitals": {"hr": 120, "avpu": "A"}, "onset": None,
                      "comorbidities": ["diabetes", "高血压", "COPD"]}


class KeyedError(MedChatError):
    key = "ui.nurse.acuity"

    def values(self):
        return {"acuity": 9}


def test_desk_records_search_and_csv(tmp_path):
    store = ChatStore(tmp_path / "c.sqlite")
    desk = NurseDesk(store, PromptLibrary(), engine=None)
    result = {"acuity": 2, "disposition": "emergency", "department": {"key": "ed", "en": "Emergency", "zh": "急诊科"},
              "reasons": [{"code": "spo2_low"}, {"code": "chest_pain"}]}
    desk.save("nurse", {"complaint": "胸痛", "age": 60}, result, "note 13812345678")
    desk.save("nurse", {"complaint": "fever", "age": 5}, dict(result, acuity=4), "")
    rows = desk.history("胸痛")
    assert [r["complaint"] for r in rows] == ["胸痛"] and rows[0]["reasons"] == ["spo2_low", "chest_pain"]
    assert "13812345678" not in rows[0]["note"]  # the store redacts phone numbers
    table = list(csv.DictReader(io.StringIO(desk.export_csv())))
    assert [r["complaint"] for r in table] == ["fever", "胸痛"]
    assert table[1]["department"] == "Emergency" and table[1]["reasons"] == "spo2_low;chest_pain"
    assert desk.explain(KeyedError("x"), "zh") == "9 级"
    assert desk.explain(MedChatError("plain"), "en") == "plain"


@pytest.mark.parametrize("typed", ['=HYPERLINK("http://evil.example","click")', "+1+cmd|' /C calc'!A0",
                                   "-2+3", "@SUM(A1:A2)", "＝HYPERLINK(1)", "\t=1"])
def test_csv_export_neutralises_formulas(tmp_path, typed):
    # review (b): =HYPERLINK(...) cells were exported as formulas (CSV injection)
    desk = NurseDesk(ChatStore(tmp_path / "c.sqlite"), PromptLibrary(), engine=None)
    desk.save("nurse", {"complaint": typed, "age": 40}, {"acuity": -1}, typed)
    row = list(csv.DictReader(io.StringIO(desk.export_csv())))[0]
    assert row["complaint"] == "'" + typed and row["note"] == "'" + typed
    assert row["acuity"] == "-1"  # a number is data, left as it is


def test_staff_wiring_reads_the_ui_settings(tmp_path, monkeypatch, built_index):
    monkeypatch.setenv("MEDCHAT_UI__NURSE_PASSWORD_HASH", hash_password(PW, iterations=FAST))
    settings = load_settings()
    settings.paths.index_dir, settings.paths.database = built_index, tmp_path / "c.sqlite"
    staff = build_staff(build_app(settings, generator=FakeGenerator()))
    assert staff.auth.configured and staff.auth.login("nurse", PW)


def test_admin_rebuilds_in_the_background_and_chat_switches_to_the_new_build(tmp_path, corpus_dir, built_index):
    settings = load_settings()
    settings.paths.index_dir, settings.paths.database = built_index, tmp_path / "c.sqlite"
    settings.paths.corpus, settings.kb.embedder = [corpus_dir], "hash"
    settings.chat.min_dense_evidence_en = settings.chat.min_dense_evidence_zh = 0.0
    app = build_app(settings, generator=FakeGenerator())
    admin = build_staff(app).admin
    before = admin.kb_status()
    assert before["documents"] == 6 and before["embedder"].startswith("hash")
    (corpus_dir / "extra.jsonl").write_text(
        '{"id": "flu", "title": "Influenza", "question": "What is the flu?", "text": "Influenza is a viral infection of the nose, throat and lungs."}\n',
        encoding="utf-8")
    assert admin.start_rebuild() is True
    assert admin.start_rebuild() is False or admin.progress().state != "running"  # one at a time
    done = admin.wait(timeout=120)
    assert done.state == "done", done.message
    assert done.total > 0 and done.report["documents"] == 7
    after = admin.kb_status()
    assert after["documents"] == 7 and after["build_id"] != before["build_id"]
    # the retriever reloaded: the new document is searchable without a restart
    assert app.retriever.search("What is the flu influenza?", k=1)[0].doc_id == "flu"
    status = admin.model_status()
    assert {k: status[k] for k in ("backend", "model", "adapter", "device")} == {
        "backend": "fake", "model": "fake", "adapter": "", "device": "cpu"}
    assert status["safety_screen"] == app.service.safety.name != "off"  # the red-flag screen is wired


def test_admin_reports_a_failed_rebuild(tmp_path, built_index):
    settings = load_settings()
    settings.paths.index_dir, settings.paths.database = built_index, tmp_path / "c.sqlite"
    settings.paths.corpus, settings.kb.embedder = [tmp_path / "missing"], "hash"
    admin = build_staff(build_app(settings, generator=FakeGenerator())).admin
    admin.start_rebuild()
    done = admin.wait(timeout=60)
    assert done.state == "failed" and done.message


def test_recent_feedback_joins_the_rated_answer(tmp_path, built_index):
    settings = load_settings()
    settings.classifier.enabled = False  # not under test here; its model is a separate artifact
    settings.paths.index_dir, settings.paths.database = built_index, tmp_path / "c.sqlite"
    settings.chat.min_dense_evidence_en = settings.chat.min_dense_evidence_zh = 0.0
    app = build_app(settings, generator=FakeGenerator())
    result = app.service.ask("How is asthma treated?")
    app.store.add_feedback(result.message_id, -1, "too short")
    rows = build_staff(app).admin.recent_feedback()
    assert rows[0]["rating"] == -1 and rows[0]["comment"] == "too short"
    assert rows[0]["answer"].startswith("Asthma is treated")


def test_disclaimer_once_closes_only_the_first_answer_of_a_conversation(tmp_path, built_index):
    from chatbot.engine.service import ConsultationService
    from chatbot.settings import ChatSettings, LLMSettings
    from knowledge_base.retriever import Retriever

    disclaimer = PromptLibrary().text("en", "answer.disclaimer")
    for once, expected in ((True, [True, False]), (False, [True, True])):
        chat = ChatSettings(min_dense_evidence_en=0.0, min_dense_evidence_zh=0.0, disclaimer_once=once)
        service = ConsultationService(retriever=Retriever(built_index), generator=FakeGenerator(),
                                      store=ChatStore(tmp_path / f"{once}.sqlite"), prompts=PromptLibrary(),
                                      chat=chat, llm=LLMSettings(backend="fake"))
        first = service.ask("How is asthma treated?")
        second = service.ask("What causes gout?", session_id=first.session_id)
        assert [disclaimer in first.answer, disclaimer in second.answer] == expected
