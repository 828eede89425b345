"""Nurse triage: an intake (complaint, age, sex, pregnancy, vitals, onset, comorbidities) in, an
acuity level 1-5, a disposition, a department, every reason that fired, supporting passages and a
draft note out. Rules first (vital-sign danger zones, red flags, high-risk presentations), then the
complaint lexicon; see docs/TRIAGE.md."""

from .engine import TriageEngine
from .models import (ACUITY_TO_DISPOSITION, DISPOSITIONS, Intake, InvalidIntake, Reason, TriageResult,
                     Vitals)

__all__ = ["Vitals", "Intake", "Reason", "TriageResult", "TriageEngine", "InvalidIntake",
           "ACUITY_TO_DISPOSITION", "DISPOSITIONS"]


_UNSET = object()


def build_engine(settings, retriever=None, prompts=None, screen=_UNSET) -> TriageEngine:
    """The engine as the app and the CLI wire it: the project's red-flag screen
    (chatbot.safety.RedFlagScreen, unless ``safety.enabled`` is false) plus the triage settings.
    ``screen`` passes an already built screen (build_app shares the service's)."""
    from ..prompts import PromptLibrary

    prompts = prompts or PromptLibrary()
    if screen is _UNSET:
        screen = None
        if settings.safety.enabled:
            from ..safety import RedFlagScreen

            screen = RedFlagScreen(settings.safety, prompts)
    return TriageEngine(screen=screen, retriever=retriever, prompts=prompts,
                        settings=settings.triage)
