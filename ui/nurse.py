"""护士分诊台 / Nurse triage console: login, intake form, result card, editable note, saved
records with search and CSV export. Every console action re-checks the login (sessions expire
after ``ui.session_timeout_min`` idle minutes)."""

from __future__ import annotations

import html
import time
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import gradio as gr

from chatbot.errors import MedChatError
from ui import render
from ui.handoff import build_queue_panel
from ui.i18n import Registry
from ui.security import download_path
from ui.services import Services

FORM_FIELDS = ("complaint", "age", "sex", "pregnant", "hr", "sbp", "rr", "spo2", "temp", "gcs",
               "avpu", "pain", "onset", "comorbidities")
VITAL_KEYS = ("hr", "sbp", "rr", "spo2", "temp", "gcs", "pain")
HISTORY_LIMIT = 50


@dataclass
class NurseHandles:
    """Components app.py wires to the login shared with the admin tab."""

    login_group: Any
    console_group: Any
    login_msg: Any
    user_box: Any
    password_box: Any
    login_btn: Any
    logout_btn: Any
    who: Any
    table: Any
    wire: Any  # wire(admin_views): the console events, once the admin tab exists


def staff_view(logged_in: bool, message: str = "") -> tuple:
    """(login group, console group, admin login hint, admin panel, login message)."""
    return (gr.update(visible=not logged_in), gr.update(visible=logged_in),
            gr.update(visible=not logged_in), gr.update(visible=logged_in), message)


def login(services: Services, user: str, password: str, lang: str) -> tuple:
    """(token, *staff_view, password box, who, history table)."""
    token = services.auth.login(user or "", password or "")
    if token is None:
        time.sleep(0.5)  # blunts scripted guessing on top of PBKDF2's cost
        wait_s = services.auth.locked_for(user or "")
        message = (services.t(lang, "ui.nurse.login_locked", minutes=max(1, round(wait_s / 60)))
                   if wait_s else services.t(lang, "ui.nurse.login_failed"))
        return (None, *staff_view(False, message), "", gr.update(), gr.update())
    who = services.t(lang, "ui.nurse.logged_in", user=services.auth.check(token))
    rows = render.triage_rows(services.nurse.history("", HISTORY_LIMIT), lang)
    return (token, *staff_view(True), "", who, rows)


def logout(services: Services, token: str | None, lang: str) -> tuple:
    services.auth.logout(token)
    return (None, *staff_view(False), "", "", [])


def _expired(services: Services, lang: str, n_outputs: int) -> tuple:
    return (None, *staff_view(False, services.t(lang, "ui.nurse.expired")),
            *([gr.update()] * n_outputs))


def assess(services: Services, token: str | None, lang: str, *values: Any) -> tuple:
    """(token, *staff_view, result card, note, assessment state, status)."""
    if services.auth.check(token) is None:
        return _expired(services, lang, 4)
    form = dict(zip(FORM_FIELDS, values, strict=True))
    try:
        intake, result = services.nurse.assess(form, lang)
    except MedChatError as exc:
        return (token, *staff_view(True), gr.update(), gr.update(), None,
                f"⚠ {services.nurse.explain(exc, lang)}")
    card = render.triage_card_html(result, lang, services.t)
    return (token, *staff_view(True), card, result.get("note", ""),
            {"intake": intake, "result": result}, "")


def save(services: Services, token: str | None, lang: str, note: str, assessment: dict | None,
         search: str) -> tuple:
    """(token, *staff_view, status, history table)."""
    user = services.auth.check(token)
    if user is None:
        return _expired(services, lang, 2)
    if not assessment:
        return (token, *staff_view(True), services.t(lang, "ui.nurse.nothing_to_save"), gr.update())
    try:
        record = services.nurse.save(user, assessment["intake"], assessment["result"], note or "")
    except MedChatError as exc:
        raise gr.Error(services.t(lang, "ui.error.generic", message=str(exc))) from exc
    rows = render.triage_rows(services.nurse.history(search or "", HISTORY_LIMIT), lang)
    return (token, *staff_view(True), services.t(lang, "ui.nurse.saved", id=record), rows)


def search_history(services: Services, token: str | None, lang: str, search: str) -> tuple:
    """(token, *staff_view, history table)."""
    if services.auth.check(token) is None:
        return _expired(services, lang, 1)
    return (token, *staff_view(True),
            render.triage_rows(services.nurse.history(search or "", HISTORY_LIMIT), lang))


def export_csv(services: Services, token: str | None, lang: str, search: str) -> tuple:
    """(token, *staff_view, download link). The CSV (with a UTF-8 BOM so spreadsheet programs
    read Chinese correctly) is never written to disk: it is held in memory for one download by
    a link only this logged-in callback hands out (ui/security.py; review finding b)."""
    if services.auth.check(token) is None:
        return _expired(services, lang, 1)
    data = services.nurse.export_csv(search or "").encode("utf-8-sig")
    name = f"triage-{time.strftime('%Y%m%d-%H%M%S')}.csv"
    code = services.downloads.put(data, name)
    link = (f'<a href="{download_path(code)}" download="{name}" id="mc-export-download">'
            f'{html.escape(services.t(lang, "ui.nurse.export_link", name=name))}</a>')
    return (token, *staff_view(True), gr.update(value=link, visible=True))


def _sex_choices(t, lang: str) -> list[tuple[str, str]]:
    return [(t(lang, "ui.nurse.sex_unknown"), ""), (t(lang, "ui.nurse.sex_f"), "F"),
            (t(lang, "ui.nurse.sex_m"), "M")]


def _avpu_choices(t, lang: str) -> list[tuple[str, str]]:
    return [(t(lang, "ui.nurse.avpu_none"), ""), ("A", "A"), ("V", "V"), ("P", "P"), ("U", "U")]


def _history_headers(t, lang: str) -> list[str]:
    return [t(lang, f"ui.nurse.col.{c}") for c in render.TRIAGE_COLUMNS]


@dataclass
class _Parts:
    """The tab's buttons, headings and intake fields by key; the key also names the text
    (``ui.nurse.<key>``) and, for a button, the element id (``mc-<key>``)."""

    t: Any
    buttons: dict[str, Any] = field(default_factory=dict)
    headings: dict[str, tuple[Any, str]] = field(default_factory=dict)  # key -> (markdown, level)
    fields: dict[str, Any] = field(default_factory=dict)

    def button(self, lang: str, key: str, **kwargs: Any) -> Any:
        self.buttons[key] = gr.Button(self.t(lang, f"ui.nurse.{key}"), elem_id=f"mc-{key}", **kwargs)
        return self.buttons[key]

    def heading(self, lang: str, key: str, level: str) -> Any:
        md = gr.Markdown(f"{level} {render.md_text(self.t(lang, f'ui.nurse.{key}'))}")
        self.headings[key] = (md, level)
        return md


def build_nurse_tab(services: Services, lang_box: gr.Radio, registry: Registry, lang: str,
                    token: gr.State) -> NurseHandles:
    t = services.t
    parts = _Parts(t)
    login_group, user_box, password_box = _login_form(services, lang, parts)
    login_msg = gr.Markdown("", elem_id="mc-login-msg")
    assessment = gr.State(None)
    with gr.Column(visible=False) as console_group:
        with gr.Row():
            who = gr.Markdown("", elem_id="mc-who")
            parts.button(lang, "logout", size="sm")
        with gr.Row(equal_height=False):
            with gr.Column(scale=1, min_width=300):
                _intake_form(lang, parts)
            with gr.Column(scale=1, min_width=300):
                card, note, status = _result_panel(lang, parts)
        search, table, export_file = _history_panel(lang, parts)
        queue_panel = build_queue_panel(services, lang, registry)
    buttons, fields = parts.buttons, parts.fields

    def wire(admin_views: tuple[Any, Any]) -> None:
        views = [token, login_group, console_group, *admin_views, login_msg]
        inputs = [fields[k] for k in FORM_FIELDS]
        buttons["assess"].click(partial(assess, services), [token, lang_box, *inputs],
                                [*views, card, note, assessment, status], concurrency_id="staff")
        buttons["save"].click(partial(save, services), [token, lang_box, note, assessment, search],
                              [*views, status, table], queue=False)
        for trigger in (buttons["refresh"].click, search.submit):
            trigger(partial(search_history, services), [token, lang_box, search], [*views, table],
                    queue=False)
        buttons["export"].click(partial(export_csv, services), [token, lang_box, search],
                                [*views, export_file], queue=False)
        queue_panel.wire(views, token, lang_box)

    labelled = {"user": user_box, "password": password_box, "note": note, "search": search}
    _register_texts(registry, parts, labelled, table)
    return NurseHandles(login_group, console_group, login_msg, user_box, password_box,
                        buttons["login"], buttons["logout"], who, table, wire)


def _login_form(services: Services, lang: str, parts: _Parts) -> tuple[Any, Any, Any]:
    """The "not configured" notice (both languages: no one has picked one yet) and the login
    group; returns (group, user box, password box)."""
    t = services.t
    both = " / ".join(t(lg, "ui.nurse.not_configured") for lg in ("zh", "en"))
    gr.Markdown(render.md_text(both), visible=not services.auth.configured, elem_id="mc-not-configured")
    with gr.Group(visible=services.auth.configured) as login_group:
        user_box = gr.Textbox(label=t(lang, "ui.nurse.user"), elem_id="mc-user")
        password_box = gr.Textbox(label=t(lang, "ui.nurse.password"), type="password",
                                  elem_id="mc-password")
        parts.button(lang, "login", variant="primary")
    return login_group, user_box, password_box


def _intake_form(lang: str, parts: _Parts) -> None:
    """The intake column: one field per ``FORM_FIELDS`` key, then the assess button."""
    t, fields = parts.t, parts.fields
    parts.heading(lang, "intake", "###")
    fields["complaint"] = gr.Textbox(label=t(lang, "ui.nurse.complaint"), lines=2, elem_id="mc-complaint")
    fields["age"] = gr.Textbox(label=t(lang, "ui.nurse.age"), max_lines=1, elem_id="mc-age")
    fields["sex"] = gr.Radio(_sex_choices(t, lang), value="", label=t(lang, "ui.nurse.sex"), elem_id="mc-sex")
    fields["pregnant"] = gr.Checkbox(label=t(lang, "ui.nurse.pregnant"), elem_id="mc-pregnant")
    parts.heading(lang, "vitals", "####")
    with gr.Row():
        for key in VITAL_KEYS:
            # Text, not gr.Number: an untouched Number submits 0, and RR 0 or
            # GCS 0 is a different patient from "not measured". The engine parses
            # and range-checks the text (InvalidIntake names the field).
            fields[key] = gr.Textbox(label=t(lang, f"ui.nurse.{key}"), max_lines=1,
                                     min_width=140, elem_id=f"mc-{key}")
    fields["avpu"] = gr.Dropdown(_avpu_choices(t, lang), value="", label=t(lang, "ui.nurse.avpu"),
                                 elem_id="mc-avpu")
    fields["onset"] = gr.Textbox(label=t(lang, "ui.nurse.onset"), elem_id="mc-onset")
    fields["comorbidities"] = gr.Textbox(label=t(lang, "ui.nurse.comorbidities"),
                                         elem_id="mc-comorbidities")
    parts.button(lang, "assess", variant="primary")


def _result_panel(lang: str, parts: _Parts) -> tuple[Any, Any, Any]:
    """The result column: (triage card, editable note, status line) and the save button."""
    t = parts.t
    parts.heading(lang, "result", "###")
    card = gr.HTML("", elem_id="mc-triage-card")
    note = gr.Textbox(label=t(lang, "ui.nurse.note"), lines=6, elem_id="mc-note")
    parts.button(lang, "save", variant="primary")
    status = gr.Markdown("", elem_id="mc-nurse-status")
    return card, note, status


def _history_panel(lang: str, parts: _Parts) -> tuple[Any, Any, Any]:
    """Saved records: (search box, table, CSV file) with the refresh and export buttons."""
    t = parts.t
    parts.heading(lang, "history", "###")
    with gr.Row():
        search = gr.Textbox(label=t(lang, "ui.nurse.search"), scale=3, elem_id="mc-search")
        parts.button(lang, "refresh", scale=1)
        parts.button(lang, "export", scale=1)
    table = gr.Dataframe(headers=_history_headers(t, lang), value=[], interactive=False,
                         wrap=True, elem_id="mc-history")
    export_file = gr.HTML("", visible=False, elem_id="mc-export-file")
    return search, table, export_file


def _register_texts(registry: Registry, parts: _Parts, labelled: dict[str, Any], table: Any) -> None:
    """Every text of the tab follows the language switch (``labelled``: key -> component whose
    label is ``ui.nurse.<key>``)."""
    t = parts.t

    def label(key: str, comp: Any) -> None:
        registry.add(comp, lambda lg, k=key: gr.update(label=t(lg, f"ui.nurse.{k}")))

    for key in ("user", "password"):
        label(key, labelled[key])
    for key, comp in parts.buttons.items():
        registry.add(comp, lambda lg, k=key: gr.update(value=t(lg, f"ui.nurse.{k}")))
    for key, (comp, level) in parts.headings.items():
        registry.add(comp, lambda lg, k=key, h=level: gr.update(value=f"{h} {render.md_text(t(lg, f'ui.nurse.{k}'))}"))
    for key in ("complaint", "age", "pregnant", *VITAL_KEYS, "onset", "comorbidities"):
        label(key, parts.fields[key])
    registry.add(parts.fields["sex"], lambda lg: gr.update(label=t(lg, "ui.nurse.sex"), choices=_sex_choices(t, lg)))
    registry.add(parts.fields["avpu"], lambda lg: gr.update(label=t(lg, "ui.nurse.avpu"), choices=_avpu_choices(t, lg)))
    for key in ("note", "search"):
        label(key, labelled[key])
    registry.add(table, lambda lg: gr.update(headers=_history_headers(t, lg)))
