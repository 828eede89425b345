"""Text and HTML the browser shows, built from service results. Pure functions (no gradio), so
the unit tests check them directly.

Safety rule: nothing a user typed, a model generated or a document contains reaches the page as
markup. Chat messages are Markdown with every HTML character turned into an entity and every
Markdown/LaTeX control character backslash-escaped (``md_text``); the HTML panels (sources,
banner, triage card) escape every value with ``html.escape`` and link only http(s) URLs.
"""

from __future__ import annotations

import html
import re
from typing import Any, Callable

from chatbot.prompts import PromptError

Translate = Callable[..., str]  # (lang, key, **values) -> text

# CommonMark's backslash-escapable punctuation, minus & < > (those become HTML entities: a
# backslash before "&lt;" would print the entity itself) plus $ (Gradio's LaTeX delimiters).
_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|~$:\"'=^])")
_SAFE_URL = re.compile(r"^https?://[^\s\"'<>]+$", re.IGNORECASE)
ACUITY_COLOURS = {1: "#b00020", 2: "#d84315", 3: "#f9a825", 4: "#2e7d32", 5: "#1565c0"}
# Text colour per acuity background: dark text on yellow, white elsewhere (WCAG AA contrast).
ACUITY_TEXT = {1: "#ffffff", 2: "#ffffff", 3: "#1a1a1a", 4: "#ffffff", 5: "#ffffff"}


def md_text(text: str) -> str:
    """Markdown source that displays ``text`` literally: no HTML, links, images, emphasis or
    formulas. Line breaks are kept (the chatbot renders single newlines as breaks)."""
    escaped = _MD_SPECIAL.sub(r"\\\1", text or "")
    return html.escape(escaped, quote=False)


def esc(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def safe_url(url: str | None) -> str:
    return url if url and _SAFE_URL.match(url) else ""


def understood_text(intent: dict | None, emotion: dict | None, lang: str, t: Translate) -> str:
    """The classifier's reading of the message ("Understood as: treatment · worried"), or "" when
    it gave nothing. Labels without a display text (a taxonomy newer than ui.yaml) are skipped."""
    words = []
    for kind, result in (("intent", intent), ("emotion", emotion)):
        label = (result or {}).get("label")
        if label and not (kind == "emotion" and label == "neutral"):
            try:
                words.append(t(lang, f"ui.{kind}.{label}"))
            except PromptError:
                continue
    return f"{t(lang, 'ui.understood')}: {' · '.join(words)}" if words else ""


def sources_html(passages: list[dict], citations: list[dict], lang: str, t: Translate,
                 message_id: Any = "", understood: str = "") -> str:
    """Numbered sources beside the answer: [n] title — source, a link to the guideline page when
    the passage has a web address, and the passage text folded away. Cited numbers are marked.
    ``data-message`` names the answer they belong to (the browser tests wait for it)."""
    head = f'<div class="mc-sources" data-message="{esc(message_id)}">'
    if understood:
        head += f'<p class="mc-understood">{esc(understood)}</p>'
    if not passages:
        return f'{head}<p>{esc(t(lang, "ui.chat.no_sources"))}</p></div>'
    cited = {c.get("n") for c in citations}
    items = []
    for p in passages:
        n = p.get("n")
        title = esc(p.get("title") or p.get("doc_id") or "")
        url = safe_url(p.get("url"))
        link = (f' · <a href="{esc(url)}" target="_blank" rel="noopener noreferrer">'
                f'{esc(t(lang, "ui.chat.source_open"))}</a>') if url else ""
        mark = " mc-cited" if n in cited else ""
        items.append(
            f'<li class="mc-source{mark}" data-n="{esc(n)}"><strong>[{esc(n)}]</strong> {title}'
            f' — <span class="mc-collection">{esc(p.get("source") or "-")}</span>{link}'
            f'<details><summary>{esc(t(lang, "ui.chat.passage"))}</summary>'
            f'<p class="mc-passage">{esc(p.get("text") or "")}</p></details></li>')
    return (f'{head}<h3>{esc(t(lang, "ui.chat.sources"))}</h3>'
            f'<ul class="mc-source-list">{"".join(items)}</ul></div>')


def banner_html(number: str, t: Translate) -> str:
    """The emergency banner: red, pinned to the top, both languages whatever the patient wrote."""
    lines = "".join(f'<p lang="{lang}">{esc(t(lang, "ui.banner", number=number))}</p>'
                    for lang in ("zh", "en"))
    return f'<div class="mc-banner" role="alert" aria-live="assertive">{lines}</div>'


def disposition_md(disposition: dict | None, lang: str, t: Translate, answer: str = "") -> str:
    """The engine's disposition line for a symptom description, highlighted under the chat; ""
    when there is none or when the answer text already ends with it (not shown twice)."""
    if not disposition or not disposition.get("line") or disposition["line"] in answer:
        return ""
    return f"**{md_text(t(lang, 'ui.chat.disposition'))}:** {md_text(disposition['line'])}"


def emergency_number(red_flag: dict | None, default: str) -> str:
    return str((red_flag or {}).get("number") or default)


def triage_card_html(result: dict, lang: str, t: Translate) -> str:
    """The nurse's result card: acuity colour, disposition, department, every reason that fired,
    the evidence passages, warnings. Every value escaped."""
    acuity = int(result.get("acuity") or 5)
    bg, fg = ACUITY_COLOURS.get(acuity, "#555555"), ACUITY_TEXT.get(acuity, "#ffffff")
    disposition = result.get("disposition") or ""
    dep = result.get("department") or {}
    dep_text = ((dep.get(lang) or dep.get("en") or dep.get("key") or "") if isinstance(dep, dict)
                else str(dep))
    reasons = "".join(
        f'<li><span class="mc-reason-kind">{esc(r.get("kind"))}</span> '
        f'<code>{esc(r.get("code"))}</code> → {esc(r.get("acuity"))}: {esc(r.get("text"))}'
        + (f' ({esc(r.get("value"))})' if r.get("value") not in (None, "") else "") + "</li>"
        for r in result.get("reasons") or [])
    evidence = "".join(
        f'<li><strong>{esc(e.get("title") or e.get("doc_id") or "")}</strong>'
        f' — {esc(e.get("source") or "")}'
        + (f' · <a href="{esc(safe_url(e.get("url")))}" target="_blank" rel="noopener noreferrer">'
           f'{esc(t(lang, "ui.chat.source_open"))}</a>' if safe_url(e.get("url")) else "")
        + f'<div class="mc-passage">{esc(e.get("text") or "")}</div></li>'
        for e in result.get("evidence") or [])
    warnings = "".join(f"<li>{esc(w)}</li>" for w in result.get("warnings") or [])
    disp_label = t(lang, f"ui.disposition.{disposition}") if disposition in (
        "emergency", "urgent", "routine", "self_care") else disposition
    parts = [
        f'<div class="mc-triage" data-acuity="{acuity}">',
        f'<div class="mc-acuity" style="background:{bg};color:{fg}">'
        f'{esc(t(lang, "ui.nurse.acuity", acuity=acuity))} · {esc(disp_label)}</div>',
        f'<p><strong>{esc(t(lang, "ui.nurse.department"))}:</strong> {esc(dep_text)}</p>',
        f'<h4>{esc(t(lang, "ui.nurse.reasons"))}</h4><ul class="mc-reasons">{reasons}</ul>',
    ]
    understood = _understood_html(result.get("understood") or {}, lang, t)
    if understood:
        parts.append(f'<h4>{esc(t(lang, "ui.nurse.understood"))}</h4>{understood}')
    similar = (result.get("opinion") or {}).get("similar_cases") or []
    if similar:
        items = "".join(f'<li><code>{esc(c.get("expected"))}</code> {esc(c.get("text"))} '
                        f'({esc(c.get("similarity"))})</li>' for c in similar)
        parts.append(f'<h4>{esc(t(lang, "ui.nurse.similar_cases"))}</h4><ul class="mc-similar">{items}</ul>')
    if evidence:
        parts.append(f'<h4>{esc(t(lang, "ui.nurse.evidence"))}</h4><ol class="mc-evidence">{evidence}</ol>')
    if warnings:
        parts.append(f'<h4>{esc(t(lang, "ui.nurse.warnings"))}</h4><ul>{warnings}</ul>')
    parts.append("</div>")
    return "".join(parts)


_UNDERSTOOD_FIELDS = ("age", "sex", "pregnant", "vitals", "duration_days", "presentations", "risk_factors",
                      "negatives")


def _understood_html(understood: dict, lang: str, t: Translate) -> str:
    """The intake as the engine read it, one row per field it found (empty fields left out)."""
    rows = []
    for key in _UNDERSTOOD_FIELDS:
        value = understood.get(key)
        if value in (None, "", [], {}, False):
            continue
        if isinstance(value, dict):
            value = ", ".join(f"{k} {v}" for k, v in value.items())
        elif isinstance(value, list):
            value = ", ".join(str(v) for v in value)
        elif value is True:
            value = t(lang, "ui.nurse.understood.yes")
        rows.append(f'<tr><th>{esc(t(lang, f"ui.nurse.understood.{key}"))}</th><td>{esc(value)}</td></tr>')
    return f'<table class="mc-understood">{"".join(rows)}</table>' if rows else ""


def triage_rows(records: list[dict], lang: str) -> list[list[Any]]:
    """History table rows (newest first) in the console's column order."""
    rows = []
    for r in records:
        dep = r.get("department") or {}
        dep_text = (dep.get(lang) or dep.get("en") or "") if isinstance(dep, dict) else str(dep)
        rows.append([r.get("id"), (r.get("created_at") or "")[:19].replace("T", " "), r.get("nurse", ""),
                     r.get("complaint", ""), r.get("acuity"), r.get("disposition", ""), dep_text])
    return rows


TRIAGE_COLUMNS = ("id", "time", "nurse", "complaint", "acuity", "disposition", "department")
FEEDBACK_COLUMNS = ("time", "rating", "comment", "answer")


def feedback_rows(items: list[dict]) -> list[list[Any]]:
    return [[(f.get("created_at") or "")[:19].replace("T", " "),
             "👍" if f.get("rating") == 1 else "👎", f.get("comment", ""),
             " ".join((f.get("answer") or "").split())[:160]] for f in items]


def rebuild_text(progress: dict, lang: str, t: Translate) -> str:
    state = progress.get("state", "idle")
    return t(lang, f"ui.admin.state.{state}", stage=progress.get("stage", ""),
             done=progress.get("done", 0), total=progress.get("total", 0),
             seconds=progress.get("seconds", 0), message=progress.get("message", ""))


def kb_status_md(status: dict, model: dict, lang: str, t: Translate) -> str:
    none = t(lang, "ui.admin.none")
    by_lang = ", ".join(f"{k}: {v}" for k, v in (status.get("chunks_by_lang") or {}).items())
    rows = [
        (t(lang, "ui.admin.documents"), status.get("documents")),
        (t(lang, "ui.admin.chunks"), f"{status.get('chunks')}" + (f" ({by_lang})" if by_lang else "")),
        (t(lang, "ui.admin.embedder"), status.get("embedder")),
        (t(lang, "ui.admin.built_at"), status.get("built_at")),
        (t(lang, "ui.admin.build_id"), status.get("build_id")),
        (t(lang, "ui.admin.backend"), f"{model.get('backend')} · {model.get('model')}"),
        (t(lang, "ui.admin.adapter"), model.get("adapter") or none),
        (t(lang, "ui.admin.classifier"), model.get("classifier") or none),
        (t(lang, "ui.admin.safety"), model.get("safety_screen") or none),
    ]
    header = f"| {md_text(t(lang, 'ui.admin.kb'))} | |\n|---|---|\n"
    return header + "\n".join(f"| {md_text(str(k))} | {md_text(str(v))} |" for k, v in rows)
