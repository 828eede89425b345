"""From patient to nurse (issue 17, part 2): "talk to a nurse" queues the structured case in the
store; the nurse claims it, changes the acuity with a reason and replies into the patient's chat;
every step is audited; a killed server loses nothing — on SQLite and a real Postgres."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from chatbot.cli import app as cli
from chatbot.engine.handoff import is_request
from chatbot.engine.service import ConsultationService
from chatbot.llm.fake import FakeGenerator
from chatbot.prompts import PromptLibrary
from chatbot.settings import ChatSettings, LLMSettings
from chatbot.staff.handoff import HandoffDesk, HandoffError
from chatbot.store import ChatStore
from chatbot.triage import TriageEngine
from knowledge_base.retriever import Retriever
from tests.chatbot.triage.conftest import KeywordScreen


def service_on(index, target):
    return ConsultationService(
        retriever=Retriever(index), generator=FakeGenerator(), store=ChatStore(target), prompts=PromptLibrary(),
        chat=ChatSettings(min_dense_evidence_en=0.0, min_dense_evidence_zh=0.0),
        llm=LLMSettings(backend="fake"), triage=TriageEngine(screen=KeywordScreen({})))


def intake_case(service, lang="en"):
    if lang == "en":
        first = service.ask("I have had a headache since this morning")
        answers = ["no", "45", "5"]
    else:
        first = service.ask("我头痛两天了")
        answers = ["没有", "30岁", "5"]
    result = first
    for a in answers:
        if result.intake and not result.intake["done"]:
            result = service.ask(a, session_id=first.session_id)
    return first.session_id, result


@pytest.mark.parametrize("text, want", [
    ("talk to a nurse", True), ("I want to speak to a nurse", True), ("Nurse, please", True),
    ("转护士", True), ("我要找护士", True), ("人工", True),
    ("What does a nurse do in triage?", False), ("护士说我要多喝水，对吗？", False),
])
def test_what_counts_as_asking_for_a_nurse(text, want):
    assert is_request(text) is want


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_a_case_goes_from_the_patient_to_the_nurse_and_back(built_index, store_target, lang):
    service = service_on(built_index, store_target)
    session, done = intake_case(service, lang)
    assert done.intake["done"] and done.disposition
    asked = service.ask("talk to a nurse" if lang == "en" else "转护士", session_id=session)
    assert "handoff_requested" in asked.flags and asked.handoff["status"] == "waiting"
    assert "120" in asked.answer  # never wait for a nurse if it gets worse
    again = service.ask("talk to a nurse" if lang == "en" else "转护士", session_id=session)
    assert again.handoff["id"] == asked.handoff["id"]  # asking twice queues once

    desk = HandoffDesk(service.store)
    (case,) = desk.queue()
    assert case.session_id == session and case.acuity == done.disposition["acuity"]
    assert case.case["intake"]["answers"] and case.case["disposition"]["reasons"]
    assert case.case["first_message"] in ("I have had a headache since this morning", "我头痛两天了")
    with pytest.raises(HandoffError, match="not claimed"):
        desk.reply(case.id, "Nurse Li", "hello")
    desk.claim(case.id, "Nurse Li")
    with pytest.raises(HandoffError, match="claimed"):
        desk.claim(case.id, "Nurse Wang")  # one nurse per case
    with pytest.raises(HandoffError, match="reason"):
        desk.change_acuity(case.id, "Nurse Li", 3, "")
    changed = desk.change_acuity(case.id, "Nurse Li", 3, "worse on the phone")
    assert (changed.acuity, changed.disposition) == (3, "urgent")
    reply = "Please see a doctor today." if lang == "en" else "请今天就诊。"
    message_id = desk.reply(case.id, "Nurse Li", reply)
    (nurse_message,) = desk.replies_since(session)
    assert nurse_message.id == message_id and nurse_message.text == reply and nurse_message.meta["nurse"] == "Nurse Li"
    desk.close(case.id, "Nurse Li")
    assert desk.queue() == [] and desk.queue(include_closed=True)[0].status == "closed"
    kinds = [e.kind for e in service.store.events(limit=50)]
    for kind in ("handoff_requested", "handoff_claimed", "handoff_acuity_changed", "handoff_replied", "handoff_closed"):
        assert kind in kinds
    changed_event = service.store.events(kind="handoff_acuity_changed")[0].payload
    assert changed_event == {"handoff": case.id, "nurse": "Nurse Li", "from": done.disposition["acuity"],
                             "to": 3, "reason": "worse on the phone"}


def test_the_queue_is_most_urgent_first_then_newest(built_index, store_target):
    store = ChatStore(store_target)
    ids = {}
    for name, acuity in (("a", 4), ("b", 2), ("c", 4), ("d", 3)):
        sid = store.new_session()
        ids[name], _ = store.add_handoff(sid, "en", acuity, "x", {})
    assert [c.id for c in HandoffDesk(store).queue()] == [ids["b"], ids["d"], ids["c"], ids["a"]]


def test_a_killed_server_loses_no_queued_case(built_index, tmp_path):
    db = tmp_path / "chat.sqlite"
    service = service_on(built_index, db)
    session, _ = intake_case(service)
    service.ask("talk to a nurse", session_id=session)
    # no close(): the process "dies" here; a new one opens the same file
    (case,) = HandoffDesk(ChatStore(db)).queue()
    assert case.session_id == session and case.status == "waiting"


def test_medchat_nurse_queue_and_the_steps_through_the_cli(built_index, tmp_path, monkeypatch):
    db = tmp_path / "chat.sqlite"
    service = service_on(built_index, db)
    session, _ = intake_case(service)
    service.ask("talk to a nurse", session_id=session)
    monkeypatch.setenv("MEDCHAT_PATHS__DATABASE", str(db))
    monkeypatch.delenv("MEDCHAT_STORE__URL", raising=False)
    runner = CliRunner()
    out = runner.invoke(cli, ["nurse", "queue", "--json"])
    assert out.exit_code == 0, out.output
    (row,) = json.loads(out.output)
    assert row["session_id"] == session and row["status"] == "waiting" and row["case"]["disposition"]
    case_id = str(row["id"])
    assert runner.invoke(cli, ["nurse", "claim", case_id, "--nurse", "li.wen"]).exit_code == 0
    assert runner.invoke(cli, ["nurse", "acuity", case_id, "3", "--reason", "worse", "--nurse", "li.wen"]).exit_code == 0
    assert runner.invoke(cli, ["nurse", "reply", case_id, "Come in today.", "--nurse", "li.wen"]).exit_code == 0
    shown = json.loads(runner.invoke(cli, ["nurse", "show", case_id, "--json"]).output)
    assert shown["acuity"] == 3 and shown["transcript"][-1] == {**shown["transcript"][-1], "from": "nurse",
                                                                 "text": "Come in today."}
    wrong = runner.invoke(cli, ["nurse", "claim", case_id, "--nurse", "someone"])
    assert wrong.exit_code == 2 and "已被认领" in wrong.output and "Traceback" not in wrong.output
    assert "no open handoff" not in runner.invoke(cli, ["nurse", "queue"]).output
