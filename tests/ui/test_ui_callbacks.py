"""The browser app's callbacks with fake services: what each one returns for the page."""

from __future__ import annotations

import pytest

gr = pytest.importorskip("gradio")

from tests.ui.fakes import FakeChat, FakeNurse, final_result, make_services  # noqa: E402
from ui import admin, nurse, patient  # noqa: E402

XSS = "<img src=x onerror=alert(1)>"


def run_turn(services, text="How is asthma treated?", state=None, lang="en"):
    return list(patient.respond(services, text, [], state or patient.new_state(), lang))


def test_answer_streams_then_is_replaced_by_the_checked_answer(monkeypatch):
    services = make_services(chat=FakeChat(tokens=["Asthma ", "is ", "treated"]))
    monkeypatch.setattr(patient, "STREAM_INTERVAL_S", 0.0)  # every token repaints
    steps = run_turn(services)
    history0 = steps[0][0]
    assert history0[-2] == {"role": "user", "content": "How is asthma treated?"}
    assert history0[-1]["content"] == "…"
    streamed = [s[0][-1]["content"] for s in steps[1:-1]]
    assert streamed == ["Asthma ", "Asthma is ", "Asthma is treated"]
    history, sources, banner, disposition, state, box = steps[-1]
    assert history[-1]["content"] == r"Asthma is treated with inhalers \[1\]\."
    assert state == {"session_id": "s1", "message_id": 7, "safety_question": None, "intake_options": [],
                     "last_nurse_id": 0}
    assert 'href="https://medlineplus.gov/asthma.html"' in sources and "MedlinePlus" in sources
    assert "mc-cited" in sources  # [1] is cited by the answer
    assert banner == gr.update()  # no emergency: banner untouched (hidden)
    assert box == ""


@pytest.mark.parametrize("lang, expect", [("en", "2 ahead of you"), ("zh", "前面还有 2 位")])
def test_a_waiting_patient_sees_the_place_in_line_in_the_page_language(monkeypatch, lang, expect):
    # review finding (i): under load the first token waited 25 s p50 and the page said nothing
    services = make_services(chat=FakeChat(queued=(2, 1)))
    monkeypatch.setattr(patient, "STREAM_INTERVAL_S", 0.0)
    steps = run_turn(services, lang=lang)
    bubbles = [s[0][-1]["content"] for s in steps]
    assert expect in bubbles[1] and ("1 ahead of you" if lang == "en" else "前面还有 1 位") in bubbles[2]
    assert bubbles[3] == "Asthma "  # the answer replaces the notice as soon as it streams


def test_second_turn_continues_the_session():
    chat = FakeChat()
    services = make_services(chat=chat)
    state = run_turn(services)[-1][4]
    run_turn(services, "And for children?", state=state)
    assert chat.calls == [(None, "How is asthma treated?"), ("s1", "And for children?")]


def test_emergency_shows_the_bilingual_banner_with_the_number():
    final = final_result(answer="请立即拨打120。", lang="zh", passages=[], citations=[],
                         red_flag={"category": "chest_pain", "evidence": ["胸痛"], "number": "112"},
                         flags=["emergency"])
    services = make_services(chat=FakeChat(tokens=[], final=final))
    history, sources, banner, *_ = run_turn(services, "我胸口剧痛，喘不上气", lang="zh")[-1]
    assert banner["visible"] is True
    assert "拨打 112" in banner["value"] and "call 112 now" in banner["value"]
    assert 'role="alert"' in banner["value"]
    assert history[-1]["content"] == "请立即拨打120。"
    assert "此回答没有来源" in sources  # the answer's language, not the interface's


def test_banner_falls_back_to_the_configured_number():
    final = final_result(red_flag={"category": "stroke", "evidence": []}, flags=["emergency"], passages=[])
    services = make_services(chat=FakeChat(tokens=[], final=final), emergency_number="911")
    banner = run_turn(services)[-1][2]
    assert "call 911 now" in banner["value"]


def test_disposition_line_is_shown_when_the_engine_gives_one():
    final = final_result(disposition={"level": "urgent", "line": "See a doctor within 24 hours."})
    services = make_services(chat=FakeChat(final=final))
    disposition = run_turn(services)[-1][3]
    assert disposition == r"**Where to go:** See a doctor within 24 hours\."


def test_user_text_and_documents_never_become_markup():
    final = final_result(answer=f"Echo {XSS} [1]", passages=[{
        "n": 1, "title": "<script>alert(1)</script>", "source": XSS, "url": "javascript:alert(1)",
        "text": XSS}])
    services = make_services(chat=FakeChat(tokens=[XSS], final=final))
    steps = run_turn(services, XSS)
    history, sources = steps[-1][0], steps[-1][1]
    for message in history:
        assert "<img" not in message["content"] and r"&lt;img src\=x onerror\=alert\(1\)&gt;" in message["content"]
    assert "<script>" not in sources and "&lt;script&gt;" in sources
    assert "<img" not in sources and "javascript:" not in sources


def test_empty_message_changes_nothing():
    chat = FakeChat()
    steps = list(patient.respond(make_services(chat=chat), "   ", [], patient.new_state(), "en"))
    assert len(steps) == 1 and steps[0][0] == [] and chat.calls == []


def test_feedback_is_stored_for_the_last_answer_with_its_comment():
    chat = FakeChat()
    services = make_services(chat=chat)
    status, box = patient.give_feedback(services, -1, "too vague", {"message_id": 7}, "zh")
    assert chat.feedback_calls == [(7, -1, "too vague")]
    assert status == "谢谢，您的反馈已保存。" and box == ""
    status, _ = patient.give_feedback(services, 1, "", patient.new_state(), "en")
    assert status.startswith("Ask a question first") and len(chat.feedback_calls) == 1


def test_new_conversation_forgets_the_session_and_hides_the_banner():
    history, sources, banner, disposition, state, box, status = patient.new_conversation()
    assert history == [] and state == {"session_id": None, "message_id": None, "safety_question": None,
                                       "intake_options": [], "last_nurse_id": 0}
    assert banner["visible"] is False


def test_an_intake_question_shows_its_options_as_buttons_and_hides_them_after():
    final = final_result()
    final["intake"] = {"state": {}, "question": {"key": "age", "text": "How old?", "options": ["under 1", "1-15",
                                                                                            "16-64", "65 or older"],
                                                 "number": 2, "total": 3}, "done": False}
    state = run_turn(make_services(chat=FakeChat(final=final)))[-1][4]
    row, *buttons = patient.intake_replies(state)
    assert row["visible"] is True and [b["value"] for b in buttons] == ["under 1", "1-15", "16-64", "65 or older"]
    final["intake"]["done"] = True
    state = run_turn(make_services(chat=FakeChat(final=final)))[-1][4]
    row, *buttons = patient.intake_replies(state)
    assert row["visible"] is False and all(b["visible"] is False for b in buttons)


def test_the_nurse_button_sends_the_request_in_the_page_language():
    chat = FakeChat()
    services = make_services(chat=chat)
    list(patient.ask_nurse(services, [], patient.new_state(), "zh"))
    list(patient.ask_nurse(services, [], patient.new_state(), "en"))
    assert [text for _, text in chat.calls] == ["转护士", "talk to a nurse"]


def test_a_nurse_reply_is_appended_once_marked_as_from_a_nurse():
    from types import SimpleNamespace

    chat = FakeChat()
    chat.nurse_messages = [SimpleNamespace(id=12, text="Please come in today <b>now</b>")]
    services = make_services(chat=chat)
    state = {**patient.new_state(), "session_id": "s1"}
    history, state = patient.poll_nurse(services, [{"role": "user", "content": "hi"}], state, "zh")
    assert history[-1]["content"].startswith("**护士:**") and "&lt;b&gt;" in history[-1]["content"]
    assert state["last_nurse_id"] == 12
    again, state = patient.poll_nurse(services, history, state, "zh")
    assert again == gr.update()  # not shown twice
    none, _ = patient.poll_nurse(services, [], patient.new_state(), "en")
    assert none == gr.update()  # no session yet: nothing to ask


# -- nurse console -------------------------------------------------------------------------------
def test_wrong_password_is_refused_and_right_one_opens_the_console(monkeypatch):
    monkeypatch.setattr(nurse.time, "sleep", lambda s: None)
    services = make_services()
    token, login_g, console_g, hint_g, panel_g, msg, pw, who, table = nurse.login(services, "nurse", "wrong", "en")
    assert token is None and console_g["visible"] is False and msg == "Wrong user name or password."
    token, login_g, console_g, hint_g, panel_g, msg, pw, who, table = nurse.login(services, "nurse", "right", "zh")
    assert token == "tok" and console_g["visible"] is True and login_g["visible"] is False
    assert panel_g["visible"] is True and who == "已登录：nurse。" and pw == ""


def test_a_locked_account_is_told_how_long_in_its_language(monkeypatch):
    monkeypatch.setattr(nurse.time, "sleep", lambda s: None)
    services = make_services()
    services.auth.locked["nurse"] = 600.0
    for lang in ("en", "zh"):
        out = nurse.login(services, "nurse", "right-or-wrong", lang)
        assert out[0] is None and out[5] == services.t(lang, "ui.nurse.login_locked", minutes=10)


def form(**over):
    values = dict(complaint="chest pain", age=64, sex="M", pregnant=False, hr=110, sbp=95, rr=24,
                  spo2=88, temp=37.2, gcs=15, avpu="A", pain=7, onset="1 h", comorbidities="diabetes")
    values.update(over)
    return [values[k] for k in nurse.FORM_FIELDS]


def test_assess_renders_the_card_escaped_and_save_stores_the_edited_note():
    services = make_services()
    services.auth.login("nurse", "right")
    out = nurse.assess(services, "tok", "en", *form())
    card, note, assessment, status = out[6:]
    assert services.nurse.forms[0]["spo2"] == 88 and services.nurse.forms[0]["complaint"] == "chest pain"
    assert 'data-acuity="2"' in card and "Emergency — now" in card and "spo2_low" in card
    assert "<b>low</b>" not in card and "&lt;b&gt;low&lt;/b&gt;" in card
    assert "<script>" not in card and "javascript:" not in card
    # the intake as the engine read it, and the learned opinion's similar cases, escaped
    assert "What the engine understood" in card and "Stated as absent" in card and "anticoagulant" in card
    assert "&lt;i&gt;cough&lt;/i&gt;" in card and "Pregnant" not in card   # empty / false rows left out
    assert "Similar labelled cases" in card and "67F &lt;b&gt;chest&lt;/b&gt; pain" in card
    assert note == "Draft: chest pain, SpO2 88%." and status == ""
    out = nurse.save(services, "tok", "en", "edited note", assessment, "")
    status, table = out[6:]
    assert services.nurse.saved[0][0] == "nurse" and services.nurse.saved[0][3] == "edited note"
    assert status == "Saved as triage record #1." and table[0][3] == "chest pain"


def test_invalid_intake_is_explained_in_the_nurses_language():
    services = make_services(nurse=FakeNurse(fail=True))
    services.auth.login("nurse", "right")
    out = nurse.assess(services, "tok", "zh", *form(spo2=140))
    assert out[-1] == "⚠ [zh] impossible spo2" and out[8] is None


def test_expired_session_sends_the_nurse_back_to_the_login():
    services = make_services()
    out = nurse.assess(services, "stale-token", "en", *form())
    token, login_g, console_g, hint_g, panel_g, msg = out[:6]
    assert token is None and login_g["visible"] is True and console_g["visible"] is False
    assert msg == "Your session has expired. Please log in again."
    assert services.nurse.forms == []  # nothing assessed without a live login


def test_save_without_assessment_and_search_and_csv_export(tmp_path):
    services = make_services()
    services.auth.login("nurse", "right")
    assert nurse.save(services, "tok", "en", "", None, "")[6] == "Assess an intake before saving."
    for complaint in ("chest pain", "fever"):
        services.nurse.save("nurse", {"complaint": complaint}, services.nurse.result, "")
    rows = nurse.search_history(services, "tok", "en", "fever")[6]
    assert [r[3] for r in rows] == ["fever"]
    import re
    import tempfile
    from pathlib import Path

    before = set(Path(tempfile.gettempdir()).iterdir())
    link = nurse.export_csv(services, "tok", "en", "")[6]["value"]
    # review (b): nothing on disk to be fetched by URL or left behind; a single-use link instead
    assert set(Path(tempfile.gettempdir()).iterdir()) == before
    code = re.search(r'href="medchat/download/([^"]+)"', link).group(1)
    held = services.downloads.take(code)
    assert held.data.startswith(b"\xef\xbb\xbf") and b"2,fever" in held.data
    assert services.downloads.take(code) is None  # used once, then gone
    assert nurse.export_csv(services, None, "en", "")[0] is None and len(services.downloads) == 0


def test_logout_closes_the_console():
    services = make_services()
    services.auth.login("nurse", "right")
    out = nurse.logout(services, "tok", "en")
    assert out[0] is None and out[2]["visible"] is False and services.auth.check("tok") is None


# -- admin ----------------------------------------------------------------------------------------
def test_admin_status_only_after_login():
    services = make_services()
    assert admin.status(services, None, "en") == ("", [], "")
    services.auth.login("nurse", "right")
    table, feedback, progress = admin.status(services, "tok", "en")
    assert "| Documents | 12 |" in table and "hash" in table and "| LLM backend | fake · fake |" in table
    assert feedback[0][1] == "👎" and feedback[0][2] == "too long"
    assert progress == "No rebuild since start-up."


def test_rebuild_starts_once_and_polling_stops_when_done():
    services = make_services()
    services.auth.login("nurse", "right")
    message, timer = admin.rebuild(services, "tok", "en")
    assert message.startswith("Rebuild started") and timer["active"] is True
    message, _ = admin.rebuild(services, "tok", "en")
    assert message == "A rebuild is already running." and services.admin.starts == 1
    text, timer = admin.poll(services, "zh")
    assert text == "正在重建：embed 3/10（1.5 秒）" and timer["active"] is True
    services.admin.state = "done"
    text, timer = admin.poll(services, "en")
    assert text == "Rebuild finished in 1.5 s." and timer["active"] is False


def test_rebuild_refused_without_login():
    services = make_services()
    message, timer = admin.rebuild(services, None, "en")
    assert message.startswith("Your session has expired") and services.admin.starts == 0


# -- the page as a whole ---------------------------------------------------------------------------
def _component(demo, elem_id):
    return next(b for b in demo.blocks.values() if getattr(b, "elem_id", None) == elem_id)


def test_unconfigured_console_says_how_to_configure_it_in_both_languages():
    from tests.ui.fakes import FakeAuth
    from ui.app import create_demo

    auth = FakeAuth()
    auth.configured = False
    demo = create_demo(make_services(auth=auth))
    notice = _component(demo, "mc-not-configured")
    assert notice.visible is True
    assert "MEDCHAT\\_UI\\_\\_NURSE\\_PASSWORD" in notice.value and "尚未配置" in notice.value
    block, hidden = _component(demo, "mc-user"), False
    while block is not None:  # the login form sits in a hidden group: nothing to try
        hidden = hidden or getattr(block, "visible", True) is False
        block = getattr(block, "parent", None)
    assert hidden


def test_queue_is_configured_from_the_settings():
    from ui.app import create_demo

    services = make_services()
    services.concurrency_limit, services.max_queue = 3, 17
    demo = create_demo(services)
    assert demo._queue.default_concurrency_limit == 3 and demo._queue.max_size == 17


def test_every_ui_string_exists_in_both_languages():
    from chatbot.prompts import PromptLibrary

    prompts = PromptLibrary()
    zh = {k for k in prompts.messages("zh") if k.startswith("ui.")}
    en = {k for k in prompts.messages("en") if k.startswith("ui.")}
    assert zh == en and len(zh) > 90
    for key in zh:  # the same placeholders on both sides, so a switch never breaks a format()
        import string

        fields = lambda text: {f for _, f, _, _ in string.Formatter().parse(text) if f}  # noqa: E731
        assert fields(prompts.messages("zh")[key]) == fields(prompts.messages("en")[key]), key


def test_the_classifiers_reading_is_shown_with_the_sources_in_the_answers_language():
    final = final_result(lang="zh", intent={"label": "treatment", "score": 0.9},
                         emotion={"label": "fear", "score": 0.8})
    sources = run_turn(make_services(chat=FakeChat(final=final)), "高血压怎么治疗？", lang="en")[-1][1]
    assert '<p class="mc-understood">理解为: 治疗 · 担心</p>' in sources
    calm = final_result(intent={"label": "cause", "score": 0.7}, emotion={"label": "neutral", "score": 0.9})
    sources = run_turn(make_services(chat=FakeChat(final=calm)))[-1][1]
    assert "Understood as: causes</p>" in sources  # a neutral tone is not worth a word
    unknown = final_result(intent={"label": "brand_new_label", "score": 0.7}, emotion=None)
    assert "mc-understood" not in run_turn(make_services(chat=FakeChat(final=unknown)))[-1][1]


def test_every_classifier_label_has_a_display_text():
    from chatbot.classifier.labels import EMOTIONS, INTENTS
    from chatbot.prompts import PromptLibrary

    messages = PromptLibrary().messages("en")
    assert {f"ui.intent.{k}" for k in INTENTS} | {f"ui.emotion.{k}" for k in EMOTIONS} <= set(messages)
