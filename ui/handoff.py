"""转接队列 / Handoff queue in the nurse console (issue 17): the patients who asked for a nurse, most
urgent first and live-updating; open a case (transcript, intake, disposition and reasons, sources),
claim it, change the acuity with a reason, reply into the patient's chat, close it. Every callback
re-checks the login and acts as the logged-in account; the desk (chatbot.staff.handoff) audits."""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any, Callable

import gradio as gr

from chatbot.errors import MedChatError
from ui import render
from ui.i18n import Registry
from ui.services import Services

# The queue refreshes itself: a waiting patient should not depend on a nurse pressing a button.
QUEUE_POLL_S = 5.0
COLUMNS = ("id", "acuity", "disposition", "status", "nurse", "created", "first")


def queue_rows(services: Services, lang: str) -> list[list[Any]]:
    rows = []
    for c in services.handoff.queue():
        first = (c.case.get("first_message") or "").replace("\n", " ")
        rows.append([c.id, c.acuity, services.t(lang, f"ui.handoff.disposition.{c.disposition}"),
                     services.t(lang, f"ui.handoff.status.{c.status}"), c.nurse or "—", c.created_at[:16].replace("T", " "),
                     first[:80]])
    return rows


def case_md(services: Services, case_id: int, lang: str) -> str:
    """The case as the nurse reads it, every value escaped."""
    t, md = services.t, render.md_text
    case = services.handoff.get(case_id)
    data = case.case or {}
    lines = [f"### {md(t(lang, 'ui.handoff.case', id=case.id))} · {md(t(lang, f'ui.handoff.disposition.{case.disposition}'))}"
             f" ({md(t(lang, 'ui.handoff.acuity'))} {case.acuity}) · {md(t(lang, f'ui.handoff.status.{case.status}'))}"]
    disposition = data.get("disposition") or {}
    if disposition.get("reasons"):
        lines.append(f"**{md(t(lang, 'ui.handoff.reasons'))}**")
        lines += [f"- {md(r)}" for r in disposition["reasons"]]
    intake = data.get("intake") or {}
    if intake.get("answers"):
        lines.append(f"**{md(t(lang, 'ui.handoff.intake'))}**")
        lines += [f"- {md(k)}: {md(v)}" for k, v in intake["answers"].items()]
    lines.append(f"**{md(t(lang, 'ui.handoff.transcript'))}**")
    for turn in services.handoff.transcript(case_id):
        who = t(lang, f"ui.handoff.from.{turn['from']}") if turn["from"] in ("patient", "medchat", "nurse") else turn["from"]
        lines.append(f"- **{md(who)}:** {md(turn['text'])}")
    sources = data.get("citations") or []
    if sources:
        lines.append(f"**{md(t(lang, 'ui.handoff.sources'))}** " + "; ".join(
            f"[{s.get('n')}] {md(s.get('title') or '')}" for s in sources))
    return "\n".join(lines)


def _result(services, token, lang, status: str, case_id: int | None) -> tuple:
    from ui.nurse import staff_view

    detail = case_md(services, case_id, lang) if case_id else gr.update()
    return (token, *staff_view(True), status, detail, queue_rows(services, lang))


def _case_id(value: Any) -> int | None:
    try:
        return int(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


def refresh(services: Services, token: str | None, lang: str) -> Any:
    """The timer's tick: the queue table for a logged-in nurse, nothing otherwise."""
    if services.auth.check(token) is None:
        return gr.update()
    return queue_rows(services, lang)


def _act(services: Services, token: str | None, lang: str, case_id: Any,
         run: Callable[[int, str], Any] | None, done_key: str | None) -> tuple:
    """The shape of every queue action: the login re-checked (the logged-in account acts), a case
    number required, the desk's refusal shown as a message, then the case and the queue redrawn."""
    from ui.nurse import _expired

    user = services.auth.check(token)
    if user is None:
        return _expired(services, lang, 3)
    cid = _case_id(case_id)
    if cid is None:
        return _result(services, token, lang, services.t(lang, "ui.handoff.pick"), None)
    try:
        if run is not None:
            run(cid, user)
        return _result(services, token, lang, services.t(lang, done_key) if done_key else "", cid)
    except MedChatError as exc:
        return _result(services, token, lang, f"⚠ {exc.message}", None)


def open_case(services: Services, token: str | None, lang: str, case_id: Any) -> tuple:
    return _act(services, token, lang, case_id, None, None)


def claim(services: Services, token: str | None, lang: str, case_id: Any) -> tuple:
    return _act(services, token, lang, case_id, services.handoff.claim, "ui.handoff.claimed")


def change_acuity(services: Services, token: str | None, lang: str, case_id: Any, level: Any, reason: str) -> tuple:
    if _case_id(level) is None:
        case_id = None  # no level chosen: ask for the case and level first
    return _act(services, token, lang, case_id,
                lambda cid, user: services.handoff.change_acuity(cid, user, int(level), reason or ""),
                "ui.handoff.acuity_changed")


def reply(services: Services, token: str | None, lang: str, case_id: Any, text: str) -> tuple:
    return _act(services, token, lang, case_id, lambda cid, user: services.handoff.reply(cid, user, text or ""),
                "ui.handoff.replied")


def close(services: Services, token: str | None, lang: str, case_id: Any) -> tuple:
    return _act(services, token, lang, case_id, services.handoff.close, "ui.handoff.closed")


@dataclass
class QueuePanel:
    table: Any
    wire: Any  # wire(views, token, lang_box)


def build_queue_panel(services: Services, lang: str, registry: Registry) -> QueuePanel:
    t = services.t
    heading = gr.Markdown(f"### {render.md_text(t(lang, 'ui.handoff.title'))}")
    table = gr.Dataframe(headers=[t(lang, f"ui.handoff.col.{c}") for c in COLUMNS], value=[], interactive=False,
                         wrap=True, elem_id="mc-handoff-queue")
    with gr.Row():
        case_id = gr.Number(label=t(lang, "ui.handoff.case_id"), precision=0, elem_id="mc-handoff-id")
        buttons = {key: gr.Button(t(lang, f"ui.handoff.{key}"), size="sm", elem_id=f"mc-handoff-{key}")
                   for key in ("open", "claim", "close")}
    detail = gr.Markdown("", elem_id="mc-handoff-case")
    with gr.Row():
        level = gr.Dropdown(choices=[1, 2, 3, 4, 5], label=t(lang, "ui.handoff.new_acuity"), elem_id="mc-handoff-level")
        reason = gr.Textbox(label=t(lang, "ui.handoff.reason"), lines=1, elem_id="mc-handoff-reason")
        buttons["set_acuity"] = gr.Button(t(lang, "ui.handoff.set_acuity"), size="sm", elem_id="mc-handoff-set_acuity")
    message = gr.Textbox(label=t(lang, "ui.handoff.reply_box"), lines=2, elem_id="mc-handoff-reply-text")
    buttons["reply"] = gr.Button(t(lang, "ui.handoff.reply"), variant="primary", elem_id="mc-handoff-reply")
    status = gr.Markdown("", elem_id="mc-handoff-status")
    timer = gr.Timer(QUEUE_POLL_S)

    def wire(views: list[Any], token: Any, lang_box: Any) -> None:
        outputs = [*views, status, detail, table]
        buttons["open"].click(partial(open_case, services), [token, lang_box, case_id], outputs, queue=False)
        buttons["claim"].click(partial(claim, services), [token, lang_box, case_id], outputs, queue=False)
        buttons["close"].click(partial(close, services), [token, lang_box, case_id], outputs, queue=False)
        buttons["set_acuity"].click(partial(change_acuity, services), [token, lang_box, case_id, level, reason],
                                    outputs, queue=False)
        buttons["reply"].click(partial(reply, services), [token, lang_box, case_id, message], outputs,
                               queue=False).then(lambda: "", None, [message], queue=False)
        timer.tick(partial(refresh, services), [token, lang_box], [table], queue=False, show_progress="hidden")

    registry.add(heading, lambda lg: gr.update(value=f"### {render.md_text(t(lg, 'ui.handoff.title'))}"))
    registry.add(table, lambda lg: gr.update(headers=[t(lg, f"ui.handoff.col.{c}") for c in COLUMNS]))
    registry.add(case_id, lambda lg: gr.update(label=t(lg, "ui.handoff.case_id")))
    registry.add(level, lambda lg: gr.update(label=t(lg, "ui.handoff.new_acuity")))
    registry.add(reason, lambda lg: gr.update(label=t(lg, "ui.handoff.reason")))
    registry.add(message, lambda lg: gr.update(label=t(lg, "ui.handoff.reply_box")))
    for key, button in buttons.items():
        registry.add(button, lambda lg, key=key: gr.update(value=t(lg, f"ui.handoff.{key}")))
    return QueuePanel(table, wire)
