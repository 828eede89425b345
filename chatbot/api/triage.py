"""``POST /v1/triage`` (nurse and admin keys): one intake in, exactly the JSON of ``medchat triage
--json`` out (docs/CLI.md). Impossible values (SpO2 140 %, an unknown vital sign) are the
engine's ``InvalidIntake``: a 400 naming the field, in the engine's own bilingual wording."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from chatbot.api.auth import require_nurse
from chatbot.api.context import context
from chatbot.api.errors import ApiError
from chatbot.api.keys import ApiKey
from chatbot.api.schemas import ERRORS, TriageRequest
from chatbot.prompts import PromptError
from chatbot.triage import Intake, InvalidIntake, Vitals

router = APIRouter(prefix="/v1", tags=["triage"])


@router.post("/triage", responses=ERRORS)
def triage(body: TriageRequest, request: Request, key: ApiKey = Depends(require_nurse)) -> Any:
    """Acuity 1-5, disposition, department, reasons, red flags, evidence passages and a draft note
    (the `medchat triage --json` object)."""
    app = context(request).app
    try:
        intake = Intake(complaint=body.complaint, age=body.age, sex=body.sex, pregnant=body.pregnant,
                        vitals=Vitals(**body.vitals.model_dump()), onset=body.onset,
                        comorbidities=tuple(body.comorbidities))
        result = app.triage.assess(intake, lang=body.lang, with_evidence=body.evidence)
    except InvalidIntake as exc:
        raise ApiError("invalid_intake", param=exc.field, zh=_explain(app.prompts, "zh", exc),
                       en=_explain(app.prompts, "en", exc)) from None
    return JSONResponse(result.to_json())


def _explain(prompts, lang: str, exc: InvalidIntake) -> str:
    try:
        return prompts.text(lang, exc.key, **exc.values())
    except PromptError:  # a check without a bilingual text yet: its English message
        return exc.message
