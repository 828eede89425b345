"""Nurse triage: an intake (complaint, age, sex, pregnancy, vitals, onset, comorbidities) in, an
acuity level 1-5, a disposition, a department, every reason that fired, supporting passages and a
draft note out. Rules first (vital-sign danger zones, red flags, high-risk presentations), then the
complaint lexicon; see docs/TRIAGE.md."""

from chatbot.triage.engine import TriageEngine
from chatbot.triage.models import (
                     ACUITY_TO_DISPOSITION,
                     DISPOSITIONS,
                     Intake,
                     InvalidIntake,
                     Reason,
                     TriageResult,
                     Vitals,
)

__all__ = ["Vitals", "Intake", "Reason", "TriageResult", "TriageEngine", "InvalidIntake",
           "ACUITY_TO_DISPOSITION", "DISPOSITIONS"]

