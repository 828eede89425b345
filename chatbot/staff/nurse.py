"""The nurse console's service: an intake form in, the triage engine's result out; records saved
to and read back from the SQLite store; CSV export. The form is the console's flat dictionary
(``complaint, age, sex, pregnant, onset, comorbidities`` and the vitals ``hr, sbp, rr, spo2,
temp, gcs, avpu, pain``); empty values mean "not measured". Validation is the engine's
(``chatbot.triage.InvalidIntake``); :meth:`NurseDesk.explain` turns any domain error into the
nurse's language.
"""

from __future__ import annotations

import csv
import io
from typing import Any

from chatbot.errors import MedChatError
from chatbot.prompts import PromptError, PromptLibrary
from chatbot.store import ChatStore

VITALS = ("hr", "sbp", "rr", "spo2", "temp", "gcs", "avpu", "pain")
# A cell a spreadsheet would run as a formula ("=HYPERLINK(...)", "+1+cmd|..."): OWASP's CSV
# injection advice is to prefix it with a quote so it shows as text (review finding b).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\uff1d", "\uff0b", "\uff0d", "\uff20")


def csv_cell(value: object) -> object:
    """``value`` safe for a spreadsheet cell: text that starts like a formula gets a leading
    quote; numbers stay numbers (a negative number is data, not a formula)."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


CSV_COLUMNS = ("id", "created_at", "nurse", "complaint", "age", "sex", "pregnant", "acuity",
               "disposition", "department", "reasons", "note")


def intake_from_form(form: dict[str, Any]) -> dict[str, Any]:
    """The engine's intake JSON from the console's flat form: blanks dropped, comorbidities split
    on commas (ASCII or Chinese), the vitals nested."""

    def blank(value: Any) -> bool:
        return value is None or (isinstance(value, str) and not value.strip())

    vitals = {k: form[k] for k in VITALS if not blank(form.get(k))}
    comorbid = form.get("comorbidities") or ""
    if isinstance(comorbid, str):
        comorbid = [c.strip() for c in comorbid.replace("，", ",").replace("、", ",").split(",")]
    intake = {"complaint": (form.get("complaint") or "").strip(),
              "age": None if blank(form.get("age")) else form["age"],
              "sex": None if blank(form.get("sex")) else form["sex"],
              "pregnant": bool(form["pregnant"]) if form.get("pregnant") is not None else None,
              "vitals": vitals,
              "onset": None if blank(form.get("onset")) else str(form["onset"]).strip(),
              "comorbidities": [c for c in comorbid if c]}
    return intake


class NurseDesk:
    """``engine``: the ``chatbot.triage`` engine (or anything with ``assess(intake, lang) ->
    result with to_json()``)."""

    def __init__(self, store: ChatStore, prompts: PromptLibrary, engine: Any) -> None:
        self.store = store
        self.prompts = prompts
        self.engine = engine

    def assess(self, form: dict[str, Any], lang: str) -> tuple[dict[str, Any], dict[str, Any]]:
        """(intake JSON, result JSON) for a form; raises the engine's ``InvalidIntake``."""
        from chatbot.triage import Intake

        data = intake_from_form(form)
        intake = Intake(complaint=data["complaint"], age=data["age"], sex=data["sex"],
                        pregnant=data["pregnant"], vitals=data["vitals"], onset=data["onset"],
                        comorbidities=tuple(data["comorbidities"]))
        result = self.engine.assess(intake, lang)
        return intake.to_json(), result.to_json()

    def save(self, nurse: str, intake: dict[str, Any], result: dict[str, Any], note: str) -> int:
        return self.store.add_triage(intake, result, nurse=nurse, note=note)

    def history(self, search: str = "", limit: int = 50) -> list[dict[str, Any]]:
        rows = []
        for r in self.store.recent_triage(limit=limit, search=search or None):
            intake, result = r.intake or {}, r.result or {}
            department = result.get("department") or {}
            rows.append({
                "id": r.id, "created_at": r.created_at, "nurse": r.nurse,
                "complaint": intake.get("complaint", ""), "age": intake.get("age"),
                "sex": intake.get("sex"), "pregnant": intake.get("pregnant"),
                "acuity": result.get("acuity"), "disposition": result.get("disposition", ""),
                "department": department, "reasons": [x.get("code", "") for x in result.get("reasons", [])],
                "note": r.note})
        return rows

    def export_csv(self, search: str = "", limit: int = 10_000) -> str:
        """The matching records as CSV text (UTF-8; the UI writes it with a BOM so Excel reads
        Chinese correctly)."""
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, extrasaction="ignore")
        writer.writeheader()
        for row in self.history(search, limit):
            dep = row["department"]
            row = {**row, "department": dep.get("en", "") if isinstance(dep, dict) else dep,
                   "reasons": ";".join(row["reasons"])}
            writer.writerow({k: csv_cell(v) for k, v in row.items()})
        return out.getvalue()

    def explain(self, exc: MedChatError, lang: str) -> str:
        """A domain error in the nurse's language: the engine's keyed message when it has one
        (``InvalidIntake.key`` + values), else the error's own text."""
        key = getattr(exc, "key", None)
        values = exc.values() if callable(getattr(exc, "values", None)) else {}
        if key:
            try:
                return self.prompts.text(lang, key, **values)
            except PromptError:
                pass  # an engine message without a bilingual text: fall back to the English one
        return str(exc)

