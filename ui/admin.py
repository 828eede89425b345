"""管理 / Admin: knowledge-base and model status, rebuild with a progress display (the rebuild
runs in a background thread of the admin service; a timer polls its progress, so chat keeps
streaming), recent feedback. Behind the nurse console's login."""

from __future__ import annotations

from functools import partial
from typing import Any

import gradio as gr

from knowledge_base.errors import DomainError
from ui import render
from ui.i18n import Registry
from ui.services import Services

# Progress polling interval: a rebuild takes minutes, a 1 s refresh is live enough and cheap.
POLL_S = 1.0
FEEDBACK_LIMIT = 20


def status(services: Services, token: str | None, lang: str) -> tuple[str, list, str]:
    """(status table, feedback rows, rebuild progress) — empty for a visitor who is not logged in."""
    if services.auth.check(token, role="admin") is None:
        return "", [], ""
    try:
        kb = services.admin.kb_status()
    except DomainError as exc:  # no index yet: say so in the panel instead of failing
        kb = {"documents": "-", "chunks": "-", "embedder": str(exc), "built_at": "-", "build_id": "-"}
    table = render.kb_status_md(kb, services.admin.model_status(), lang, services.t)
    rows = render.feedback_rows(services.admin.recent_feedback(FEEDBACK_LIMIT))
    return table, rows, render.rebuild_text(services.admin.progress().to_json(), lang, services.t)


def rebuild(services: Services, token: str | None, lang: str) -> tuple[str, Any]:
    """(message, timer): starts the background rebuild and turns progress polling on."""
    if services.auth.check(token, role="admin") is None:
        return services.t(lang, "ui.nurse.expired"), gr.update(active=False)
    started = services.admin.start_rebuild()
    key = "ui.admin.rebuild_started" if started else "ui.admin.rebuild_running"
    return services.t(lang, key), gr.update(active=True)


def poll(services: Services, lang: str) -> tuple[str, Any]:
    """(progress text, timer): the timer stops once the rebuild is over."""
    progress = services.admin.progress().to_json()
    running = progress.get("state") == "running"
    return render.rebuild_text(progress, lang, services.t), gr.update(active=running)


def build_admin_tab(services: Services, lang_box: gr.Radio, registry: Registry, lang: str,
                    token: gr.State) -> tuple[Any, Any, Any]:
    """Returns (login hint, panel, refresh button); app.py shows the panel after a login."""
    t = services.t
    hint = gr.Markdown(render.md_text(t(lang, "ui.admin.login_first")), elem_id="mc-admin-hint")
    with gr.Column(visible=False) as panel:
        refresh = gr.Button(t(lang, "ui.admin.refresh"), size="sm", elem_id="mc-admin-refresh")
        table = gr.Markdown("", elem_id="mc-kb-status")
        rebuild_btn = gr.Button(t(lang, "ui.admin.rebuild"), elem_id="mc-rebuild")
        progress_label = gr.Markdown(f"#### {render.md_text(t(lang, 'ui.admin.progress'))}")
        progress = gr.Markdown("", elem_id="mc-rebuild-progress")
        feedback_label = gr.Markdown(f"#### {render.md_text(t(lang, 'ui.admin.feedback'))}")
        feedback = gr.Dataframe(headers=[t(lang, f"ui.admin.col.{c}") for c in render.FEEDBACK_COLUMNS],
                                value=[], interactive=False, wrap=True, elem_id="mc-feedback")
    timer = gr.Timer(POLL_S, active=False)

    refresh.click(partial(status, services), [token, lang_box], [table, feedback, progress], queue=False)
    rebuild_btn.click(partial(rebuild, services), [token, lang_box], [progress, timer], queue=False)
    timer.tick(partial(poll, services), [lang_box], [progress, timer], queue=False)

    registry.add(hint, lambda lg: gr.update(value=render.md_text(t(lg, "ui.admin.login_first"))))
    registry.add(refresh, lambda lg: gr.update(value=t(lg, "ui.admin.refresh")))
    registry.add(rebuild_btn, lambda lg: gr.update(value=t(lg, "ui.admin.rebuild")))
    registry.add(progress_label, lambda lg: gr.update(value=f"#### {render.md_text(t(lg, 'ui.admin.progress'))}"))
    registry.add(feedback_label, lambda lg: gr.update(value=f"#### {render.md_text(t(lg, 'ui.admin.feedback'))}"))
    registry.add(feedback, lambda lg: gr.update(
        headers=[t(lg, f"ui.admin.col.{c}") for c in render.FEEDBACK_COLUMNS]))
    return hint, panel, (refresh, table, feedback, progress)
