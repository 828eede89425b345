"""Nurse triage: an intake (complaint, age, sex, pregnancy, vitals, onset, comorbidities) in, an
acuity level 1-5, a disposition, a department, every reason that fired, supporting passages and a
draft note out. Rules first (vital-sign danger zones, red flags, high-risk presentations), then the
complaint lexicon; see docs/TRIAGE.md."""

from .engine import TriageEngine
from .models import (ACUITY_TO_DISPOSITION, DISPOSITIONS, Intake, InvalidIntake, Reason, TriageResult,
                     Vitals)

__all__ = ["Vitals", "Intake", "Reason", "TriageResult", "TriageEngine", "InvalidIntake",
           "ACUITY_TO_DISPOSITION", "DISPOSITIONS"]


def build_engine(settings, retriever=None, prompts=None) -> TriageEngine:
    """The engine as the app and the CLI wire it: the project's red-flag screen (issue 4's
    chatbot.safety) plus the triage settings."""
    from ..prompts import PromptLibrary

    prompts = prompts or PromptLibrary()
    return TriageEngine(screen=_screen(settings, prompts), retriever=retriever, prompts=prompts,
                        settings=settings.triage)


def _screen(settings, prompts):
    try:
        from ..safety import RedFlagScreen
    except ModuleNotFoundError:  # transitional: the safety screen lands with branch issue4
        return None
    return RedFlagScreen(settings.safety, prompts)
