"""The browser app: one Gradio Blocks with three tabs (患者咨询 / Patient chat, 护士分诊台 /
Nurse triage, 管理 / Admin), a language selector that switches every label, and the queue.

``create_demo(services)`` builds it from services (fakes in tests); ``serve(settings)`` wires
the real application (``chatbot.app.build_app``), warms the models up and launches.
"""

from __future__ import annotations

import logging
import os
from functools import partial
from typing import Any

from ui.services import Services

log = logging.getLogger(__name__)

# Readable contrast (WCAG AA: 4.5:1 for text), a banner pinned to the top, phone-sized layout.
CSS = """
.mc-banner {position: sticky; top: 0; z-index: 1000; background: #b00020; color: #ffffff;
  padding: 12px 16px; border-radius: 6px; font-weight: 700; font-size: 1.05rem;}
.mc-banner p {margin: 2px 0; color: #ffffff;}
#mc-banner {position: sticky; top: 0; z-index: 1000;}
.mc-sources h3 {margin-top: 0;}
.mc-source-list {padding-left: 0; list-style: none;}
.mc-source {margin-bottom: 8px; line-height: 1.45;}
.mc-source.mc-cited strong {color: #0b5394;}
.mc-source a, .mc-triage a {color: #0b5394; text-decoration: underline;}
.mc-passage {display: block; margin-top: 4px; white-space: pre-wrap; font-size: 0.92rem; color: #1a1a1a;}
.mc-collection, .mc-understood {color: #3d3d3d;}
.mc-understood {font-size: 0.9rem; margin: 0 0 6px 0;}
.mc-acuity {font-size: 1.3rem; font-weight: 700; padding: 10px 14px; border-radius: 6px;}
.mc-disclaimer p {font-size: 0.9rem; color: #3d3d3d;}
.dark .mc-passage, .dark .mc-collection, .dark .mc-disclaimer p {color: #e8e8e8;}
.dark .mc-source a, .dark .mc-triage a {color: #8ab4f8;}
button:focus-visible, input:focus-visible, textarea:focus-visible, a:focus-visible,
summary:focus-visible {outline: 3px solid #0b5394; outline-offset: 2px;}
@media (max-width: 480px) { .mc-banner {font-size: 0.95rem; padding: 8px 10px;} }
"""


def create_demo(services: Services, lang: str = "zh") -> Any:
    """The Blocks app, queue configured (not launched)."""
    import gradio as gr

    from ui import render
    from ui.admin import build_admin_tab
    from ui.admin import status as admin_status
    from ui.i18n import LANG_CHOICES, Registry
    from ui.nurse import build_nurse_tab, login, logout
    from ui.patient import build_patient_tab

    t = services.t
    registry = Registry()
    with gr.Blocks(title="MedChat", css=CSS, analytics_enabled=False,
                   theme=gr.themes.Default(primary_hue="blue")) as demo:
        with gr.Row():
            title = gr.Markdown(f"## {render.md_text(t(lang, 'ui.title'))}\n{render.md_text(t(lang, 'ui.subtitle'))}")
            lang_box = gr.Radio(LANG_CHOICES, value=lang, label=t(lang, "ui.lang_label"),
                                elem_id="mc-lang", scale=0, min_width=200)
        token = gr.State(None)
        with gr.Tabs():
            with gr.Tab(t(lang, "ui.tab.patient"), id="patient", elem_id="mc-tab-patient") as tab_patient:
                build_patient_tab(services, lang_box, registry, lang)
            with gr.Tab(t(lang, "ui.tab.nurse"), id="nurse", elem_id="mc-tab-nurse") as tab_nurse:
                nurse = build_nurse_tab(services, lang_box, registry, lang, token)
            with gr.Tab(t(lang, "ui.tab.admin"), id="admin", elem_id="mc-tab-admin") as tab_admin:
                admin_hint, admin_panel, (_, admin_table, admin_feedback, admin_progress) = \
                    build_admin_tab(services, lang_box, registry, lang, token)
        nurse.wire((admin_hint, admin_panel))

        views = [token, nurse.login_group, nurse.console_group, admin_hint, admin_panel, nurse.login_msg]
        staff_outputs = [*views, nurse.password_box, nurse.who, nurse.table]
        admin_outputs = [admin_table, admin_feedback, admin_progress]
        for trigger in (nurse.login_btn.click, nurse.password_box.submit):
            trigger(partial(login, services), [nurse.user_box, nurse.password_box, lang_box],
                    staff_outputs, concurrency_id="staff").then(
                partial(admin_status, services), [token, lang_box], admin_outputs, queue=False)
        nurse.logout_btn.click(partial(logout, services), [token, lang_box], staff_outputs, queue=False)

        registry.add(title, lambda lg: gr.update(
            value=f"## {render.md_text(t(lg, 'ui.title'))}\n{render.md_text(t(lg, 'ui.subtitle'))}"))
        registry.add(lang_box, lambda lg: gr.update(label=t(lg, "ui.lang_label")))
        for tab, key in ((tab_patient, "patient"), (tab_nurse, "nurse"), (tab_admin, "admin")):
            registry.add(tab, lambda lg, k=key: gr.update(label=t(lg, f"ui.tab.{k}")))
        lang_box.change(registry.updates, [lang_box], registry.components, queue=False)
    demo.queue(default_concurrency_limit=services.concurrency_limit, max_size=services.max_queue)
    return demo


def serve(settings: Any, host: str, port: int, *, warm_up: bool = True,
          block: bool = True, generator: Any = None) -> Any:
    """Wire the application, load the models (so the first patient does not wait for them),
    launch. Returns the running demo when ``block`` is False (the browser tests, which also pass
    a slowed-down fake ``generator`` to watch streaming)."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # no calls home from a clinic
    from chatbot.app import build_app
    from ui.services import from_app

    # The page footer carries a permanent short disclaimer: answers repeat it only once.
    settings.chat.disclaimer_once = True
    app = build_app(settings, generator=generator)
    if warm_up:
        app.service.warm_up()
    services = from_app(app)
    if not services.auth.configured:
        log.warning("nurse console not configured: set MEDCHAT_UI__NURSE_PASSWORD")
    demo = create_demo(services)
    launch(demo, services, host, port, block=block)
    return demo


def launch(demo: Any, services: Services, host: str, port: int, *, block: bool = True) -> None:
    """Start ``demo`` behind the security middleware (headers, no endpoint listing, in-memory
    downloads: ui/security.py)."""
    from ui.security import app_kwargs

    demo.launch(server_name=host, server_port=port, prevent_thread_lock=not block, share=False,
                show_api=False, ssr_mode=False, inbrowser=False, quiet=not block,
                app_kwargs=app_kwargs(services.downloads))
