"""The nurse console's handoff queue callbacks (ui/handoff.py) on a real store and desk, with the
fake login of the other console tests (token "tok" = user "nurse")."""

from __future__ import annotations

import pytest

gr = pytest.importorskip("gradio")

from chatbot.staff.handoff import HandoffDesk  # noqa: E402
from chatbot.store import ChatStore  # noqa: E402
from tests.ui.fakes import make_services  # noqa: E402
from ui import handoff  # noqa: E402


@pytest.fixture
def env(tmp_path):
    store = ChatStore(tmp_path / "chat.sqlite")
    services = make_services(handoff=HandoffDesk(store))
    services.auth.login("nurse", "right")
    sid = store.new_session(lang="zh")
    store.add_message(sid, "user", "我头痛两天了 <script>x</script>", lang="zh")
    store.add_message(sid, "assistant", "问题 1/3 …", lang="zh",
                      meta={"disposition": {"level": "urgent", "acuity": 3, "reasons": ["疼痛评分 8/10"]},
                            "intake": {"state": {"answers": {"age": "30岁"}}, "done": True}})
    case_id, _ = store.add_handoff(sid, "zh", 3, "urgent", {"first_message": "我头痛两天了",
                                                            "disposition": {"reasons": ["疼痛评分 8/10"]},
                                                            "intake": {"answers": {"age": "30岁"}}})
    return services, store, sid, case_id


def test_the_queue_claim_acuity_reply_and_close_from_the_console(env):
    services, store, sid, case_id = env
    rows = handoff.refresh(services, "tok", "zh")
    assert rows[0][:4] == [case_id, 3, "当天就医", "等待中"]
    out = handoff.open_case(services, "tok", "zh", case_id)
    status, detail, table = out[-3:]
    assert "疼痛评分 8/10" in detail and "30岁" in detail and "&lt;script&gt;" in detail  # escaped
    out = handoff.claim(services, "tok", "zh", case_id)
    assert out[-3] == "已认领：该病例由您处理。" and out[-1][0][3] == "已认领"
    out = handoff.change_acuity(services, "tok", "en", case_id, 2, "")
    assert out[-3].startswith("⚠") and "reason" in out[-3]  # a reason is required
    out = handoff.change_acuity(services, "tok", "en", case_id, 2, "sounds worse")
    assert out[-1][0][1] == 2
    out = handoff.reply(services, "tok", "zh", case_id, "请今天来医院就诊。")
    assert out[-3] == "回复已发送：患者会在对话中看到。"
    assert store.history(sid)[-1].text == "请今天来医院就诊。" and store.history(sid)[-1].meta["from"] == "nurse"
    out = handoff.close(services, "tok", "en", case_id)
    assert out[-1] == []  # no open case left
    kinds = {e.kind for e in store.events(limit=20)}
    assert {"handoff_claimed", "handoff_acuity_changed", "handoff_replied", "handoff_closed"} <= kinds


def test_every_queue_action_refuses_a_visitor_who_is_not_logged_in(env):
    services, store, sid, case_id = env
    assert handoff.refresh(services, None, "en") == gr.update()
    for call in (lambda: handoff.open_case(services, "forged", "en", case_id),
                 lambda: handoff.claim(services, None, "en", case_id),
                 lambda: handoff.reply(services, "forged", "en", case_id, "hi"),
                 lambda: handoff.close(services, None, "en", case_id)):
        out = call()
        assert out[0] is None  # the token is dropped: logged out
    assert store.handoff(case_id).status == "waiting" and len(store.history(sid)) == 2


def test_no_case_number_asks_for_one(env):
    services, _, _, _ = env
    assert handoff.claim(services, "tok", "en", None)[-3] == "Enter a case number from the queue first."
