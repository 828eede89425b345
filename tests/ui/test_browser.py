"""End-to-end tests of the browser app in headless Chromium (Debian's `chromium` through its
`chromedriver`, driven by Selenium) against `medchat serve` started by the test on localhost.

- ``fake_server``: the real app (FAISS/BM25 index of the test corpus, SQLite, triage engine,
  red-flag screen) with a slowed-down fake generator, so streaming is visible and fast.
- ``real_server``: the embedded defaults (the default index and the packaged Gemma-3-270M through
  llama.cpp), one Chinese and one English question.

The tests also write the README's screenshots to docs/screenshots/.
"""

from __future__ import annotations

import sqlite3

import pytest

from tests.ui import browser as B

pytestmark = [pytest.mark.slow, pytest.mark.browser,
              pytest.mark.skipif(not B.browser_available(),
                                 reason="needs Debian chromium + chromium-driver (.ci/run installs them)")]

PASSWORD = "correct horse battery"
XSS = '<img src=x onerror="window.__xss=1">'


def _settings(tmp, index=None, backend="fake"):
    from chatbot.settings import load_settings

    s = load_settings()
    s.paths.database = tmp / "chat.sqlite"
    if index is not None:
        s.paths.index_dir, s.kb.embedder = index, "hash"
        s.classifier.enabled = False  # the toy-corpus app tests the page, not the classifier
        # hash-embedder cosines mean nothing: the evidence gate stays open for the toy corpus
        s.chat.min_dense_evidence_en = s.chat.min_dense_evidence_zh = 0.0
    s.llm.backend = backend
    return s


@pytest.fixture(scope="module")
def fake_server(tmp_path_factory):
    import os

    from chatbot.llm.fake import FakeGenerator
    from knowledge_base.builder import build_index
    from knowledge_base.embedders import HashEmbedder
    from tests.conftest import EN_DOCS, ZH_DOCS, write_jsonl

    tmp = tmp_path_factory.mktemp("ui")
    corpus = tmp / "corpus"
    corpus.mkdir()
    write_jsonl(corpus / "en.jsonl", [dict(d, source="Test/EN", url=f"https://example.org/{d['id']}")
                                      for d in EN_DOCS])
    write_jsonl(corpus / "zh.jsonl", [dict(d, source="Test/ZH") for d in ZH_DOCS])
    build_index([corpus], tmp / "index", HashEmbedder(64), progress=False)
    old = os.environ.get("MEDCHAT_UI__NURSE_PASSWORD")
    os.environ["MEDCHAT_UI__NURSE_PASSWORD"] = PASSWORD
    try:
        settings = _settings(tmp, tmp / "index")
        # A hand-weighted emergency detector (tests/chatbot/safety/test_detector.py) on the hash
        # embedder: its made-up words put a message in a known band, whatever the shipped model.
        from tests.chatbot.safety.test_detector import hand_model

        hand = hand_model()
        hand.encoder = "hash:8"
        hand.save(tmp / "detector")
        settings.safety.detector_dir = tmp / "detector"
    finally:
        if old is None:
            del os.environ["MEDCHAT_UI__NURSE_PASSWORD"]
        else:
            os.environ["MEDCHAT_UI__NURSE_PASSWORD"] = old
    # 4 characters every 40 ms: an answer streams over a second or two
    demo, url = B.start_server(settings, generator=FakeGenerator(delay_s=0.04))
    yield url, settings.paths.database
    demo.close()


@pytest.fixture
def driver():
    d = B.start_chromium()
    yield d
    B.stop_chromium(d)


def test_patient_chat_streams_answers_with_sources_and_takes_feedback(fake_server, driver):
    url, database = fake_server
    B.open_app(driver, url)
    driver.execute_script(B.WATCH_STREAM_JS)
    B.ask(driver, "How is asthma treated with an inhaler?")
    first, answer = B.wait_answer(driver, "", 60)
    assert answer.startswith("Asthma is treated with inhaled corticosteroids") and "[1]" in answer
    streamed = driver.execute_script("return window.__mcTexts")
    assert len([t for t in streamed if t.strip() not in ("", "…")]) >= 3, streamed  # grew piece by piece
    sources = B.sources_text(driver)
    assert "[1] Asthma — Test/EN" in sources
    link = driver.find_element("css selector", "#mc-sources a")
    assert link.get_attribute("href") == "https://example.org/asthma" and link.get_attribute("target") == "_blank"

    B.ask(driver, "慢性胃炎怎么治疗？")
    second, answer = B.wait_answer(driver, first, 60)
    assert "[" in B.sources_text(driver) and "来源" in B.sources_text(driver)  # the answer's language

    driver.find_element("css selector", "#mc-fb-comment textarea").send_keys("清楚 <b>ok</b>")
    B.click(driver, "#mc-fb-down")
    B.wait_for(lambda: "谢谢" in driver.find_element("css selector", "#mc-fb-status").text, 20, "feedback saved")
    row = sqlite3.connect(database).execute(
        "SELECT rating, comment, message_id FROM feedback ORDER BY id DESC LIMIT 1").fetchone()
    assert row == (-1, "清楚 <b>ok</b>", int(second))
    B.screenshot(driver, "patient")

    B.click(driver, "#mc-new")
    B.wait_for(lambda: not B.bot_texts(driver), 20, "a new, empty conversation")


def test_xss_payload_stays_text(fake_server, driver):
    url, _ = fake_server
    B.open_app(driver, url)
    B.ask(driver, f"What causes gout? {XSS}")
    B.wait_answer(driver, "", 60)
    user = driver.find_element("css selector", '#mc-chat [data-testid="user"]').text
    assert XSS in user  # shown literally
    assert driver.execute_script("return window.__xss") is None  # the handler never ran
    assert not driver.find_elements("css selector", '#mc-chat img[src="x"]')


def test_red_flag_message_shows_the_banner_and_no_generated_answer(fake_server, driver):
    url, database = fake_server
    B.open_app(driver, url)
    B.ask(driver, "I have crushing chest pain spreading to my left arm and I can't breathe")
    B.wait_answer(driver, "", 60)
    banner = B.wait_for(lambda: driver.find_element("css selector", "#mc-banner .mc-banner"), 20, "the banner")
    assert "EMERGENCY" in banner.text and "紧急情况" in banner.text and "120" in banner.text
    assert banner.value_of_css_property("background-color") == "rgba(176, 0, 32, 1)"
    assert "[1]" not in B.sources_text(driver)
    B.screenshot(driver, "patient_emergency")
    flags = sqlite3.connect(database).execute(
        "SELECT meta FROM messages WHERE role='assistant' ORDER BY id DESC LIMIT 1").fetchone()[0]
    assert '"emergency"' in flags and '"backend": "none"' in flags  # no model call


def test_unsure_message_gets_the_safety_question_with_quick_replies(fake_server, driver):
    url, database = fake_server
    B.open_app(driver, url)
    def quick_shown() -> bool:  # an invisible Gradio row is not in the page at all
        rows = driver.find_elements("css selector", "#mc-quick")
        return bool(rows) and rows[0].is_displayed()

    assert not quick_shown()
    B.ask(driver, "my son is a bit blimfy")
    first, answer = B.wait_answer(driver, "", 60)
    assert "is anyone having trouble breathing right now" in answer and "Not sure" in answer
    B.wait_for(quick_shown, 20, "the quick replies")
    labels = [driver.find_element("css selector", f"#mc-quick-{o}").text for o in ("yes", "no", "unsure")]
    assert labels == ["Yes", "No", "Not sure"]
    B.click(driver, "#mc-quick-yes")
    second, answer = B.wait_answer(driver, first, 60)
    banner = B.wait_for(lambda: driver.find_element("css selector", "#mc-banner .mc-banner"), 20, "the banner")
    assert "120" in banner.text and answer.startswith("Severe difficulty breathing")
    B.wait_for(lambda: not quick_shown(), 20, "the quick replies hidden again")
    meta = sqlite3.connect(database).execute(
        "SELECT meta FROM messages WHERE role='assistant' ORDER BY id DESC LIMIT 1").fetchone()[0]
    assert '"emergency"' in meta and "safety_question:breathing" in meta

    # Chinese: the buttons speak the question's language, and a "no" gets the answer
    B.click(driver, "#mc-new")
    B.wait_for(lambda: not B.bot_texts(driver), 20, "a new, empty conversation")
    B.ask(driver, "我儿子 blimfy")
    third, answer = B.wait_answer(driver, second, 60)
    assert "呼吸困难" in answer
    B.wait_for(lambda: driver.find_element("css selector", "#mc-quick-no").text == "否", 20, "Chinese labels")
    B.click(driver, "#mc-quick-no")
    _, answer = B.wait_answer(driver, third, 60)
    assert "呼吸困难吗" not in answer and answer.strip()
    meta = sqlite3.connect(database).execute(
        "SELECT meta FROM messages WHERE role='assistant' ORDER BY id DESC LIMIT 1").fetchone()[0]
    assert "safety_answer_no" in meta and '"emergency"' not in meta


def test_language_switch_and_keyboard_and_labels(fake_server, driver):
    url, _ = fake_server
    B.open_app(driver, url)
    tabs = lambda: [b.text.strip() for b in driver.find_elements("css selector", "button[role='tab']")]  # noqa: E731
    assert tabs() == ["患者咨询", "护士分诊台", "管理"]
    for label in driver.find_elements("css selector", "#mc-lang label"):
        if label.text.strip() == "English":
            label.click()
    B.wait_for(lambda: tabs() == ["Patient chat", "Nurse triage", "Admin"], 20, "English labels")
    assert "Your question" in driver.find_element("css selector", "#mc-input").text
    # every visible text input has a label a screen reader announces
    unlabelled = driver.execute_script("""
        return [...document.querySelectorAll('input:not([type=hidden]), textarea')]
          .filter(e => e.offsetParent !== null)
          .filter(e => !(e.labels && e.labels.length) && !e.getAttribute('aria-label')
                       && !e.closest('label'))
          .map(e => e.outerHTML.slice(0, 80));""")
    assert unlabelled == []


def test_nurse_console_login_triage_save_and_history(fake_server, driver):
    url, database = fake_server
    B.open_app(driver, url)
    B.open_tab(driver, "护士分诊台")
    user = driver.find_element("css selector", "#mc-user input, #mc-user textarea")
    user.send_keys("nurse")
    password = driver.find_element("css selector", "#mc-password input")
    password.send_keys("wrong password")
    B.click(driver, "#mc-login")
    B.wait_for(lambda: "用户名或密码错误" in driver.find_element("css selector", "#mc-login-msg").text, 20,
               "the refusal")
    assert not [e for e in driver.find_elements("css selector", "#mc-complaint") if e.is_displayed()]
    password.clear()
    password.send_keys(PASSWORD)
    B.click(driver, "#mc-login")
    complaint = B.wait_for(lambda: (e := driver.find_element("css selector", "#mc-complaint textarea")).is_displayed() and e,
                           20, "the console")
    complaint.send_keys("胸痛 2 小时，出冷汗")
    for key, value in (("age", "62"), ("hr", "118"), ("sbp", "88"), ("spo2", "91"), ("temp", "36.8")):
        field = B.wait_for(lambda k=key: driver.find_element("css selector", f"#mc-{k} textarea, #mc-{k} input"), 20, key)
        field.clear()
        field.send_keys(value)
    B.click(driver, "#mc-assess")
    card = B.wait_for(lambda: driver.find_element("css selector", "#mc-triage-card .mc-triage"), 30, "the card")
    acuity = int(card.get_attribute("data-acuity"))
    assert acuity <= 2  # hypotension + chest pain: never a routine case
    assert "急诊" in card.text and card.find_elements("css selector", ".mc-reasons li")
    note = driver.find_element("css selector", "#mc-note textarea")
    assert note.get_attribute("value").strip()
    note.send_keys(" 已通知医生。")
    B.click(driver, "#mc-save")
    B.wait_for(lambda: "已保存" in driver.find_element("css selector", "#mc-nurse-status").text, 20, "saved")
    intake, saved_note = sqlite3.connect(database).execute(
        "SELECT intake, note FROM triage ORDER BY id DESC LIMIT 1").fetchone()
    assert "胸痛" in intake and '"spo2": 91' in intake and saved_note.endswith("已通知医生。")
    B.wait_for(lambda: "胸痛" in driver.find_element("css selector", "#mc-history").text, 20, "the history row")
    B.screenshot(driver, "nurse")

    B.open_tab(driver, "管理")
    B.click(driver, "#mc-admin-refresh")
    status = B.wait_for(lambda: (t := driver.find_element("css selector", "#mc-kb-status").text) and "hash" in t and t,
                        20, "the admin status")
    assert "fake" in status
    B.screenshot(driver, "admin")


def test_invalid_vitals_are_explained(fake_server, driver):
    url, _ = fake_server
    B.open_app(driver, url)
    B.open_tab(driver, "护士分诊台")
    driver.find_element("css selector", "#mc-user textarea, #mc-user input").send_keys("nurse")
    driver.find_element("css selector", "#mc-password input").send_keys(PASSWORD)
    B.click(driver, "#mc-login")
    complaint = B.wait_for(lambda: (e := driver.find_element("css selector", "#mc-complaint textarea")).is_displayed() and e,
                           20, "the console")
    complaint.send_keys("fever")
    B.wait_for(lambda: driver.find_element("css selector", "#mc-spo2 textarea, #mc-spo2 input"), 20, "spo2").send_keys("140")
    B.click(driver, "#mc-assess")
    status = B.wait_for(lambda: driver.find_element("css selector", "#mc-nurse-status").text, 20, "the message")
    assert "140" in status and "spo2" in status.lower()


def test_phone_sized_viewport(fake_server):
    url, _ = fake_server
    driver = B.start_chromium(390, 844)
    try:
        B.open_app(driver, url)
        B.ask(driver, "What causes gout?")
        B.wait_answer(driver, "", 60)
        overflow = driver.execute_script("return document.documentElement.scrollWidth")
        assert overflow <= 390 + 1  # no sideways scrolling
        B.screenshot(driver, "patient_phone")
    finally:
        B.stop_chromium(driver)


@pytest.fixture(scope="module")
def real_server(tmp_path_factory):
    from chatbot.settings import load_settings

    defaults = load_settings()
    if not (defaults.paths.index_dir / "current").exists():
        pytest.fail(f"no default index at {defaults.paths.index_dir}: run `medchat setup` first")
    tmp = tmp_path_factory.mktemp("ui-real")
    settings = _settings(tmp, backend=defaults.llm.backend)
    demo, url = B.start_server(settings)
    yield url
    demo.close()


def test_real_default_model_answers_chinese_and_english_with_sources(real_server, driver):
    B.open_app(driver, real_server)
    driver.execute_script(B.WATCH_STREAM_JS)
    B.ask(driver, "高血压怎么治疗？")
    first, answer = B.wait_answer(driver, "", 150)
    assert answer.strip() and "[1]" in B.sources_text(driver) and "来源" in B.sources_text(driver)
    B.ask(driver, "What are the symptoms of glaucoma?")
    _, answer = B.wait_answer(driver, first, 150)
    assert "Sources" in B.sources_text(driver) and "glaucoma" in B.sources_text(driver).lower()
    texts = driver.execute_script("return window.__mcTexts")
    # tokens reached the page before the final answer (more than placeholder -> final per turn)
    assert len(texts) > 4, texts


def _click_option(driver, label: str) -> None:
    """Click the intake quick-reply button showing ``label``."""
    button = B.wait_for(lambda: next((b for b in driver.find_elements("css selector", "#mc-intake button")
                                      if b.is_displayed() and b.text.strip() == label), None), 20, f"option {label}")
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", button)
    button.click()


def _nurse_login(driver, url) -> None:
    B.open_app(driver, url)
    B.open_tab(driver, "护士分诊台")
    driver.find_element("css selector", "#mc-user input, #mc-user textarea").send_keys("nurse")
    driver.find_element("css selector", "#mc-password input").send_keys(PASSWORD)
    B.click(driver, "#mc-login")
    B.wait_for(lambda: driver.find_element("css selector", "#mc-handoff-queue").is_displayed(), 20, "the console")


def _nurse_handles(driver, case_id: int, level: str, reason: str, reply: str) -> None:
    B.wait_for(lambda: str(case_id) in driver.find_element("css selector", "#mc-handoff-queue").text, 30,
               "the case in the live queue")
    number = driver.find_element("css selector", "#mc-handoff-id input")
    number.clear()
    number.send_keys(str(case_id))
    B.click(driver, "#mc-handoff-claim")
    B.wait_for(lambda: "认领" in driver.find_element("css selector", "#mc-handoff-status").text, 20, "claimed")
    case_text = driver.find_element("css selector", "#mc-handoff-case").text
    assert "对话记录" in case_text and "追问的回答" in case_text  # transcript and intake pre-filled
    level_box = driver.find_element("css selector", "#mc-handoff-level input")
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", level_box)
    level_box.click()
    option = B.wait_for(lambda: next((o for o in driver.find_elements("css selector", "#mc-handoff-level li, ul.options li")
                                      if o.is_displayed() and o.text.strip() == level), None), 20, f"level {level}")
    option.click()
    B.wait_for(lambda: level_box.get_attribute("value") == level, 10, "the level chosen")
    driver.find_element("css selector", "#mc-handoff-reason textarea").send_keys(reason)
    B.click(driver, "#mc-handoff-set_acuity")
    B.wait_for(lambda: "分级已修改" in driver.find_element("css selector", "#mc-handoff-status").text, 20,
               "acuity changed")
    driver.find_element("css selector", "#mc-handoff-reply-text textarea").send_keys(reply)
    B.click(driver, "#mc-handoff-reply")
    B.wait_for(lambda: "回复已发送" in driver.find_element("css selector", "#mc-handoff-status").text, 20, "sent")


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_a_case_from_the_patients_first_message_to_the_nurses_reply(fake_server, lang):
    """Issue 17: two real browser sessions. The patient reports a symptom, answers the follow-up
    questions with the quick replies, asks for a nurse; the nurse sees the case in the live queue,
    claims it, changes the acuity with a reason and replies; the reply appears in the patient's
    page marked as from a nurse."""
    url, database = fake_server
    patient, nurse = B.start_chromium(), B.start_chromium()
    try:
        B.open_app(patient, url)
        if lang == "en":
            for label in patient.find_elements("css selector", "#mc-lang label"):
                if label.text.strip() == "English":
                    label.click()
            B.wait_for(lambda: "Your question" in patient.find_element("css selector", "#mc-input").text, 20, "English")
        first_message = "I have had a headache since this morning" if lang == "en" else "我头痛两天了"
        B.ask(patient, first_message)
        last, text = B.wait_answer(patient, "", 60)
        assert ("Question 1/" in text) if lang == "en" else ("问题 1/" in text)
        answers = {"en": ["no", "16-64", "4-6"], "zh": ["否", "16-64岁", "4-6"]}[lang]

        def summary_shown() -> bool:
            text = B.bot_texts(patient)[-1]
            return ("Based on what you describe" in text) if lang == "en" else ("根据您的描述" in text and "谢谢" in text)

        def next_step() -> str | None:
            # Read the page until it settles on one of the two states: the chat and the quick-reply
            # row are separate components and one may render a moment before the other, so a single
            # look right after an answer can see the old buttons or none at all.
            if summary_shown():
                return "summary"
            visible = [b for b in patient.find_elements("css selector", "#mc-intake button") if b.is_displayed()]
            return "question" if visible else None

        for option in answers:
            if B.wait_for(next_step, 30, "the next intake question or the summary") == "summary":
                break  # fewer questions needed (a fact was already in the message)
            _click_option(patient, option)
            last, text = B.wait_answer(patient, last, 60)
        B.wait_for(summary_shown, 30, "the intake summary with its triage line")
        B.click(patient, "#mc-ask-nurse")
        last, text = B.wait_answer(patient, last, 60)
        B.wait_for(lambda: ("A nurse will look at your case" in B.bot_texts(patient)[-1]) if lang == "en"
                   else ("护士会查看" in B.bot_texts(patient)[-1]), 30, "the handoff confirmation")
        case_id, session = sqlite3.connect(database).execute(
            "SELECT id, session_id FROM handoffs ORDER BY id DESC LIMIT 1").fetchone()

        _nurse_login(nurse, url)
        reply = "Please see your GP today." if lang == "en" else "请今天到门诊就诊。"
        _nurse_handles(nurse, case_id, "3", "sounds worse" if lang == "en" else "电话中描述加重", reply)
        B.wait_for(lambda: any(reply in t for t in B.bot_texts(patient)), 30, "the nurse's reply on the patient page")
        shown = [t for t in B.bot_texts(patient) if reply in t][0]
        assert shown.startswith("Nurse" if lang == "en" else "护士")
        conn = sqlite3.connect(database)
        acuity, status, who = conn.execute("SELECT acuity, status, nurse FROM handoffs WHERE id=?", (case_id,)).fetchone()
        assert (acuity, status, who) == (3, "claimed", "nurse")
        kinds = {k for (k,) in conn.execute("SELECT kind FROM events WHERE session_id=?", (session,))}
        assert {"intake_started", "intake_done", "handoff_requested", "handoff_claimed",
                "handoff_acuity_changed", "handoff_replied"} <= kinds
    finally:
        B.stop_chromium(patient)
        B.stop_chromium(nurse)
