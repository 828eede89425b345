"""Typed records of the triage engine: what a nurse (or a vignette) gives, what the engine
returns. The shapes are a contract with the nurse console (ui/) and ``medchat triage --json``:
fields may be added, never renamed (docs/TRIAGE.md)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from chatbot.errors import MedChatError

# Acuity 1 (resuscitation) .. 5 (non-urgent), ESI style; docs/TRIAGE.md has the mapping to the
# Chinese four-level standard. Dispositions, most urgent first.
DISPOSITIONS = ("emergency", "urgent", "routine", "self_care")
ACUITY_TO_DISPOSITION = {1: "emergency", 2: "emergency", 3: "urgent", 4: "routine", 5: "self_care"}
REASON_KINDS = ("vital", "red_flag", "complaint", "age", "modifier", "uncertainty", "contradiction", "learned")
AVPU_LEVELS = {"A": "alert", "V": "voice", "P": "pain", "U": "unresponsive"}


class InvalidIntake(MedChatError):
    """An intake value that cannot be a real measurement (SpO2 140 %, HR -5, temp 80 °C).

    ``key`` names the bilingual message in data/prompts/<lang>/triage.yaml; ``field`` and
    ``value`` say what was wrong, ``low``/``high`` the accepted range, so the UI can render
    ``prompts.text(lang, exc.key, **exc.values())``."""

    def __init__(self, key: str, field_name: str, value: Any, low: float | None = None,
                 high: float | None = None, hint: str = "") -> None:
        self.key = key
        self.field = field_name
        self.value = value
        self.low = low
        self.high = high
        if low is not None and high is not None:
            message = f"impossible {field_name} value {value!r}: expected {low:g} to {high:g}"
        else:
            message = f"invalid {field_name} value {value!r}"
        super().__init__(message, hint)

    def values(self) -> dict[str, Any]:
        return {"field": self.field, "value": self.value,
                "low": "" if self.low is None else f"{self.low:g}",
                "high": "" if self.high is None else f"{self.high:g}"}


# Physiologically possible ranges: anything outside is a typing or unit error, not a patient.
# Wide on purpose (HR 0 = arrest, SBP 300 has been recorded); the danger zones live in
# data/triage/vitals.yaml, these only reject nonsense.
VITAL_LIMITS: dict[str, tuple[float, float, str]] = {
    "hr": (0, 300, "beats per minute"),
    "sbp": (0, 300, "mmHg"),
    "rr": (0, 80, "breaths per minute"),
    "spo2": (30, 100, "percent (a fraction such as 0.95 must be given as 95)"),
    "temp": (25, 45, "degrees Celsius (convert Fahrenheit: (F - 32) / 1.8)"),
    "gcs": (3, 15, "Glasgow Coma Scale total, 3 to 15"),
    "pain": (0, 10, "pain score 0 to 10"),
}


def _check_number(name: str, value: Any, integer: bool = False) -> float | int | None:
    if value is None:
        return None
    low, high, unit = VITAL_LIMITS[name]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        try:
            value = float(str(value).strip())
        except ValueError:
            raise InvalidIntake("triage.invalid.not_number", name, value,
                                hint=f"give {name} as a number in {unit}") from None
    if math.isnan(value) or not (low <= value <= high):
        raise InvalidIntake("triage.invalid.range", name, value, low, high, hint=f"{name} is in {unit}")
    if integer:
        if value != int(value):
            raise InvalidIntake("triage.invalid.integer", name, value, low, high,
                                hint=f"{name} is a whole number")
        return int(value)
    return float(value)


@dataclass(frozen=True)
class Vitals:
    """Vital signs; every field optional (missing vitals are normal at a first contact)."""

    hr: float | None = None     # heart rate, /min
    sbp: float | None = None    # systolic blood pressure, mmHg
    rr: float | None = None     # respiratory rate, /min
    spo2: float | None = None   # oxygen saturation, %
    temp: float | None = None   # temperature, °C
    gcs: int | None = None      # Glasgow Coma Scale 3-15
    avpu: str | None = None     # A | V | P | U
    pain: int | None = None     # 0-10

    def __post_init__(self) -> None:
        for name in ("hr", "sbp", "rr", "spo2", "temp"):
            object.__setattr__(self, name, _check_number(name, getattr(self, name)))
        for name in ("gcs", "pain"):
            object.__setattr__(self, name, _check_number(name, getattr(self, name), integer=True))
        if self.avpu is not None:
            raw = str(self.avpu).strip().lower()
            words = {v: k for k, v in AVPU_LEVELS.items()}
            letter = raw.upper() if raw.upper() in AVPU_LEVELS else words.get(raw, "")
            if not letter:
                raise InvalidIntake("triage.invalid.avpu", "avpu", self.avpu,
                                    hint="AVPU is one of A (alert), V (voice), P (pain), U (unresponsive)")
            object.__setattr__(self, "avpu", letter)

    def given(self) -> dict[str, Any]:
        return {k: v for k, v in self.to_json().items() if v is not None}

    def to_json(self) -> dict[str, Any]:
        return {"hr": self.hr, "sbp": self.sbp, "rr": self.rr, "spo2": self.spo2,
                "temp": self.temp, "gcs": self.gcs, "avpu": self.avpu, "pain": self.pain}

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> "Vitals":
        data = dict(data or {})
        unknown = set(data) - {"hr", "sbp", "rr", "spo2", "temp", "gcs", "avpu", "pain"}
        if unknown:
            name = sorted(unknown)[0]
            raise InvalidIntake("triage.invalid.field", name, data[name],
                                hint="vitals are hr, sbp, rr, spo2, temp, gcs, avpu, pain")
        return cls(**data)


@dataclass(frozen=True)
class Intake:
    """One triage intake: the complaint in the patient's words plus what the nurse measured."""

    complaint: str
    age: float | None = None          # years; 0.25 = 3 months
    sex: str | None = None            # "F" | "M"
    pregnant: bool | None = None
    vitals: Vitals = field(default_factory=Vitals)
    onset: str | None = None          # free text: "2 hours ago", "3天"
    comorbidities: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.complaint, str) or not self.complaint.strip():
            raise InvalidIntake("triage.invalid.complaint", "complaint", self.complaint,
                                hint="describe the main complaint in a few words")
        if self.age is not None:
            try:
                age = float(self.age)
            except (TypeError, ValueError):
                raise InvalidIntake("triage.invalid.not_number", "age", self.age) from None
            # 125 years: above the oldest documented human; a larger number is a typo.
            if math.isnan(age) or not (0 <= age <= 125):
                raise InvalidIntake("triage.invalid.range", "age", self.age, 0, 125,
                                    hint="age in years; 0.25 for a 3-month-old")
            object.__setattr__(self, "age", age)
        if self.sex is not None:
            sex = str(self.sex).strip().upper()
            sex = {"FEMALE": "F", "MALE": "M", "女": "F", "男": "M"}.get(sex, sex)
            if sex not in ("F", "M"):
                raise InvalidIntake("triage.invalid.sex", "sex", self.sex, hint="sex is F or M")
            object.__setattr__(self, "sex", sex)
        if isinstance(self.vitals, dict):
            object.__setattr__(self, "vitals", Vitals.from_json(self.vitals))
        object.__setattr__(self, "comorbidities", tuple(str(c) for c in self.comorbidities or ()))

    def to_json(self) -> dict[str, Any]:
        return {"complaint": self.complaint, "age": self.age, "sex": self.sex,
                "pregnant": self.pregnant, "vitals": self.vitals.to_json(), "onset": self.onset,
                "comorbidities": list(self.comorbidities)}


@dataclass(frozen=True)
class Reason:
    """One rule that fired. ``acuity`` is the level this rule alone asks for (lower = sooner)."""

    kind: str
    code: str
    acuity: int
    text_en: str
    text_zh: str
    value: float | str | None = None

    def __post_init__(self) -> None:
        if self.kind not in REASON_KINDS:
            raise ValueError(f"reason kind {self.kind!r} not in {REASON_KINDS}")
        if not 1 <= self.acuity <= 5:
            raise ValueError(f"acuity {self.acuity} outside 1..5")

    def text(self, lang: str) -> str:
        return self.text_zh if lang == "zh" else self.text_en

    def to_json(self, lang: str = "en") -> dict[str, Any]:
        return {"kind": self.kind, "code": self.code, "acuity": self.acuity,
                "text": self.text(lang), "value": self.value}


@dataclass
class TriageResult:
    acuity: int
    disposition: str
    department: dict[str, str]
    reasons: list[Reason]
    red_flags: list[dict]
    evidence: list[dict]
    note: str
    lang: str
    warnings: list[str] = field(default_factory=list)
    presentation: str | None = None   # the matched presentation key, if any
    cn_level: int = 4                  # 中国急诊预检分诊 level 1-4 (docs/TRIAGE.md)
    opinion: dict | None = None        # the learned second opinion (chatbot.triage.learned), if on
    understood: dict = field(default_factory=dict)   # the intake as the engine read it (display)

    def to_json(self) -> dict[str, Any]:
        return {"acuity": self.acuity, "disposition": self.disposition,
                "department": dict(self.department),
                "reasons": [r.to_json(self.lang) for r in self.reasons],
                "red_flags": list(self.red_flags), "evidence": list(self.evidence),
                "note": self.note, "lang": self.lang, "warnings": list(self.warnings),
                "opinion": self.opinion, "understood": dict(self.understood)}
