"""患者咨询 / Patient chat: streamed answers, numbered sources, the emergency banner, the
disposition line, feedback, new conversation, examples. Callbacks are module functions that take
the services first (bound with functools.partial) so tests call them without a browser."""

from __future__ import annotations

import time
from functools import partial
from typing import Any, Iterator

import gradio as gr

from chatbot.errors import MedChatError
from ui import render
from ui.i18n import Registry
from ui.services import Services

# Streaming repaint interval: 10 updates/s reads as live typing while keeping 20 concurrent
# sessions from flooding the server with one event per token.
STREAM_INTERVAL_S = 0.1
PLACEHOLDER = "…"  # the answer bubble before the first token (ui/load.py waits for it to change)
EXAMPLES = {"zh": ("高血压怎么治疗？", "糖尿病人能吃水果吗？", "孩子发烧38.5度怎么办？"),
            "en": ("What are the symptoms of glaucoma?", "How is asthma treated?",
                   "What causes gout?")}


def new_state() -> dict[str, Any]:
    return {"session_id": None, "message_id": None, "safety_question": None, "intake_options": [],
            "last_nurse_id": 0}


# Quick-reply buttons of a symptom-intake question (its options: at most four in intake.yaml).
INTAKE_BUTTONS = 4
# How often the page asks whether a nurse replied: a nurse types for minutes, 3 s feels immediate.
NURSE_POLL_S = 3.0


# The quick replies of the safety question, in the order of its fixed options (yes, no, unsure).
QUICK_REPLIES = ("yes", "no", "unsure")


def respond_option(services: Services, option: str, history: list[dict], state: dict, lang: str
                   ) -> Iterator[tuple]:
    """A quick-reply button: sends the option's own label as the patient's answer."""
    question = (state or {}).get("safety_question") or {}
    labels = {o["id"]: o["label"] for o in question.get("options", [])}
    if option not in labels:
        yield history, gr.update(), gr.update(), gr.update(), state, ""
        return
    yield from respond(services, labels[option], history, state, lang)


def quick_replies(state: dict) -> tuple:
    """Show the three answer buttons, labelled in the question's language, while a safety
    question waits for its answer; hide them otherwise."""
    question = (state or {}).get("safety_question")
    if not question:
        return (gr.update(visible=False), *(gr.update() for _ in QUICK_REPLIES))  # the row hides them
    labels = {o["id"]: o["label"] for o in question["options"]}
    return (gr.update(visible=True), *(gr.update(value=labels[o]) for o in QUICK_REPLIES))


def intake_replies(state: dict) -> tuple:
    """The intake question's options as buttons while it waits for its answer; hidden otherwise."""
    options = list((state or {}).get("intake_options") or [])[:INTAKE_BUTTONS]
    if not options:
        return (gr.update(visible=False), *(gr.update(visible=False) for _ in range(INTAKE_BUTTONS)))
    return (gr.update(visible=True), *(gr.update(value=options[i], visible=True) if i < len(options)
                                       else gr.update(visible=False) for i in range(INTAKE_BUTTONS)))


def ask_nurse(services: Services, history: list[dict], state: dict, lang: str) -> Iterator[tuple]:
    """The "talk to a nurse" button: the request, in the page's language, as the patient's message."""
    yield from respond(services, services.t(lang, "ui.chat.nurse_phrase"), history, state, lang)


def poll_nurse(services: Services, history: list[dict], state: dict, lang: str) -> tuple:
    """Nurse replies to this session that the page has not shown yet, appended to the chat."""
    state = dict(state or new_state())
    session = state.get("session_id")
    if not session:
        return gr.update(), state
    replies = services.chat.nurse_replies(session, int(state.get("last_nurse_id") or 0))
    if not replies:
        return gr.update(), state
    label = services.t(lang, "ui.chat.from_nurse")
    history = [*(history or []), *({"role": "assistant", "content": f"**{render.md_text(label)}:** {render.md_text(m.text)}"}
                                   for m in replies)]
    state["last_nurse_id"] = max(m.id for m in replies)
    return history, state


def respond(services: Services, text: str, history: list[dict], state: dict, lang: str
            ) -> Iterator[tuple]:
    """One patient turn. Yields (chat history, sources HTML, banner, disposition, state, input
    box) while the answer streams; the last yield carries the checked answer."""
    history = list(history or [])
    state = dict(state or new_state())
    if not (text or "").strip():
        yield history, gr.update(), gr.update(), gr.update(), state, ""
        return
    history += [{"role": "user", "content": render.md_text(text)},
                {"role": "assistant", "content": PLACEHOLDER}]
    yield history, gr.update(), gr.update(), "", state, ""
    streamed, last = "", 0.0
    try:
        for event in services.chat.reply(state.get("session_id"), text):
            if event.kind == "queued":
                # waiting for the model: the bubble says how many turns are ahead, in the UI language
                waiting = services.t(lang, "ui.chat.queued", ahead=event.data["ahead"])
                history = [*history[:-1], {"role": "assistant", "content": render.md_text(waiting)}]
                yield history, gr.update(), gr.update(), gr.update(), state, ""
            elif event.kind == "token":
                streamed += event.data
                if time.monotonic() - last >= STREAM_INTERVAL_S:
                    last = time.monotonic()
                    # A new list per repaint: Gradio diffs successive values of the chatbot.
                    history = [*history[:-1], {"role": "assistant", "content": render.md_text(streamed)}]
                    yield history, gr.update(), gr.update(), gr.update(), state, ""
            elif event.kind == "final":
                yield _final(services, event.data, history, state)
    except MedChatError as exc:
        raise gr.Error(services.t(lang, "ui.error.generic", message=str(exc))) from exc


def _final(services: Services, result: Any, history: list[dict], state: dict) -> tuple:
    data = result.to_json() if hasattr(result, "to_json") else dict(result)
    intake = data.get("intake") or {}
    question = intake.get("question") if not intake.get("done") else None
    state = {"session_id": data.get("session_id"), "message_id": data.get("message_id"),
             "safety_question": data.get("safety_question"),
             "intake_options": list((question or {}).get("options") or []),
             "last_nurse_id": (state or {}).get("last_nurse_id", 0)}
    # The checked answer replaces the stream (it may differ: citations cleaned, fallback).
    history = [*history[:-1], {"role": "assistant", "content": render.md_text(data.get("answer", ""))}]
    lang = data.get("lang") or "en"
    emergency = bool(data.get("red_flag")) or "emergency" in (data.get("flags") or [])
    if emergency:
        number = render.emergency_number(data.get("red_flag"), services.emergency_number)
        banner = gr.update(value=render.banner_html(number, services.t), visible=True)
    else:
        banner = gr.update()  # a banner already shown stays until a new conversation
    understood = render.understood_text(data.get("intent"), data.get("emotion"), lang, services.t)
    sources = render.sources_html(data.get("passages") or [], data.get("citations") or [], lang,
                                  services.t, data.get("message_id") or "", understood)
    disposition = render.disposition_md(data.get("disposition"), lang, services.t, data.get("answer", ""))
    return history, sources, banner, disposition, state, ""


def give_feedback(services: Services, rating: int, comment: str, state: dict, lang: str
                  ) -> tuple[str, Any]:
    """Store 👍/👎 (+ optional comment) for the last answer; returns (status, comment box)."""
    message_id = (state or {}).get("message_id")
    if not message_id:
        return services.t(lang, "ui.feedback.nothing"), gr.update()
    try:
        services.chat.feedback(int(message_id), rating, comment or "")
    except MedChatError as exc:
        raise gr.Error(services.t(lang, "ui.error.generic", message=str(exc))) from exc
    return services.t(lang, "ui.feedback.thanks"), ""


def new_conversation() -> tuple:
    """Clear everything of this browser session (the stored conversation stays in SQLite)."""
    return [], "", gr.update(value="", visible=False), "", new_state(), "", ""


def build_patient_tab(services: Services, lang_box: gr.Radio, registry: Registry, lang: str) -> None:
    t = services.t
    state = gr.State(new_state())
    banner = gr.HTML(visible=False, elem_id="mc-banner")
    with gr.Row(equal_height=False):
        with gr.Column(scale=3, min_width=300):
            chatbot = gr.Chatbot(type="messages", label=t(lang, "ui.chat.label"), height=460,
                                 sanitize_html=True, render_markdown=True, latex_delimiters=[],
                                 feedback_options=None, elem_id="mc-chat", show_copy_button=True)
            disposition = gr.Markdown("", elem_id="mc-disposition")
            box = gr.Textbox(label=t(lang, "ui.chat.input"), placeholder=t(lang, "ui.chat.placeholder"),
                             lines=1, max_lines=6, elem_id="mc-input", autofocus=True)
            with gr.Row(visible=False, elem_id="mc-quick") as quick_row:
                quick = [gr.Button(o, size="sm", elem_id=f"mc-quick-{o}") for o in QUICK_REPLIES]
            with gr.Row(visible=False, elem_id="mc-intake") as intake_row:
                intake_buttons = [gr.Button("", size="sm", visible=False, elem_id=f"mc-intake-{i}")
                                  for i in range(INTAKE_BUTTONS)]
            with gr.Row():
                send = gr.Button(t(lang, "ui.chat.send"), variant="primary", elem_id="mc-send")
                nurse_button = gr.Button(t(lang, "ui.chat.nurse"), elem_id="mc-ask-nurse")
                new = gr.Button(t(lang, "ui.chat.new"), elem_id="mc-new")
            examples = gr.Examples([[q] for q in EXAMPLES["zh"] + EXAMPLES["en"]], inputs=[box],
                                   label=t(lang, "ui.chat.examples"))
        with gr.Column(scale=2, min_width=260):
            sources = gr.HTML(render.sources_html([], [], lang, t), elem_id="mc-sources")
            with gr.Group():
                fb_label = gr.Markdown(f"**{render.md_text(t(lang, 'ui.feedback.label'))}**")
                fb_comment = gr.Textbox(label=t(lang, "ui.feedback.comment"), lines=1,
                                        elem_id="mc-fb-comment")
                with gr.Row():
                    up = gr.Button(t(lang, "ui.feedback.up"), size="sm", elem_id="mc-fb-up")
                    down = gr.Button(t(lang, "ui.feedback.down"), size="sm", elem_id="mc-fb-down")
                fb_status = gr.Markdown("", elem_id="mc-fb-status")
    footer = gr.Markdown(render.md_text(t(lang, "ui.chat.disclaimer", number=services.emergency_number)),
                         elem_classes=["mc-disclaimer"])

    outputs = [chatbot, sources, banner, disposition, state, box]
    run = partial(respond, services)
    # Chat turns go through Gradio's queue (its concurrency limit applies); the light events do not.
    # api_name "chat": the load script (ui/load.py) drives this event through gradio_client.
    # show_progress="minimal": a waiting patient sees the queue position and elapsed time.
    quick_outputs = [quick_row, *quick]
    intake_outputs = [intake_row, *intake_buttons]
    send.click(run, [box, chatbot, state, lang_box], outputs, concurrency_id="chat",
               show_progress="minimal", api_name="chat").then(quick_replies, [state], quick_outputs, queue=False
                                                              ).then(intake_replies, [state], intake_outputs, queue=False)
    box.submit(run, [box, chatbot, state, lang_box], outputs, concurrency_id="chat",
               show_progress="minimal", api_name=False).then(quick_replies, [state], quick_outputs, queue=False
                                                             ).then(intake_replies, [state], intake_outputs, queue=False)
    for option, button in zip(QUICK_REPLIES, quick):
        button.click(partial(respond_option, services, option), [chatbot, state, lang_box], outputs,
                     concurrency_id="chat", show_progress="minimal", api_name=False
                     ).then(quick_replies, [state], quick_outputs, queue=False)
    # Intake quick replies send their own label (the button is its own input); every turn ends by
    # showing or hiding them for the next question.
    for button in intake_buttons:
        button.click(run, [button, chatbot, state, lang_box], outputs, concurrency_id="chat",
                     show_progress="minimal", api_name=False).then(intake_replies, [state], intake_outputs, queue=False)
    nurse_button.click(partial(ask_nurse, services), [chatbot, state, lang_box], outputs, concurrency_id="chat",
                       show_progress="minimal", api_name=False).then(intake_replies, [state], intake_outputs, queue=False)
    # Nurse replies reach the page without a reload: a light poll outside the chat queue.
    timer = gr.Timer(NURSE_POLL_S)
    timer.tick(partial(poll_nurse, services), [chatbot, state, lang_box], [chatbot, state], queue=False,
               show_progress="hidden")
    up.click(partial(give_feedback, services, 1), [fb_comment, state, lang_box], [fb_status, fb_comment],
             queue=False)
    down.click(partial(give_feedback, services, -1), [fb_comment, state, lang_box], [fb_status, fb_comment],
               queue=False)
    new.click(new_conversation, None, [chatbot, sources, banner, disposition, state, box, fb_status],
              queue=False).then(quick_replies, [state], quick_outputs, queue=False
                                ).then(intake_replies, [state], intake_outputs, queue=False)

    registry.add(chatbot, lambda lg: gr.update(label=t(lg, "ui.chat.label")))
    registry.add(box, lambda lg: gr.update(label=t(lg, "ui.chat.input"), placeholder=t(lg, "ui.chat.placeholder")))
    registry.add(send, lambda lg: gr.update(value=t(lg, "ui.chat.send")))
    registry.add(new, lambda lg: gr.update(value=t(lg, "ui.chat.new")))
    registry.add(nurse_button, lambda lg: gr.update(value=t(lg, "ui.chat.nurse")))
    registry.add(examples.dataset, lambda lg: gr.update(label=t(lg, "ui.chat.examples")))
    registry.add(fb_label, lambda lg: gr.update(value=f"**{render.md_text(t(lg, 'ui.feedback.label'))}**"))
    registry.add(fb_comment, lambda lg: gr.update(label=t(lg, "ui.feedback.comment")))
    registry.add(up, lambda lg: gr.update(value=t(lg, "ui.feedback.up")))
    registry.add(down, lambda lg: gr.update(value=t(lg, "ui.feedback.down")))
    registry.add(footer, lambda lg: gr.update(value=render.md_text(
        t(lg, "ui.chat.disclaimer", number=services.emergency_number))))
