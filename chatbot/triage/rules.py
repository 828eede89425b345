"""Triage rules as data: data/triage/{vitals,presentations,modifiers,departments}.yaml loaded
into small self-checking records. A malformed rule file fails at load with the file and rule
named, never half-way through a triage."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from chatbot.errors import MedChatError
from chatbot.settings import TRIAGE_RULES_DIR as DEFAULT_RULES_DIR
from chatbot.triage.text import compile_pattern

VITAL_FIELDS = ("hr", "sbp", "rr", "spo2", "temp", "gcs", "avpu", "pain")
OPS = ("lt", "le", "gt", "ge", "eq", "lt_pals")


class RulesError(MedChatError):
    """A triage rule file is missing or malformed."""


def _check(cond: bool, where: str, what: str) -> None:
    if not cond:
        raise RulesError(f"{where}: {what}", hint="fix the rule file under data/triage/")


@dataclass(frozen=True)
class VitalRule:
    id: str
    field: str
    op: str
    value: float | str
    acuity: int
    ages: tuple[float | None, float | None]
    sources: tuple[str, ...]

    def __post_init__(self) -> None:
        where = f"vitals.yaml rule {self.id}"
        _check(self.field in VITAL_FIELDS, where, f"unknown field {self.field!r}")
        _check(self.op in OPS, where, f"unknown op {self.op!r}; one of {OPS}")
        _check(1 <= self.acuity <= 5, where, "acuity must be 1..5")
        _check(bool(self.sources), where, "every rule names its source")

    def applies_to(self, age: float | None, paediatric_below: float) -> bool:
        low, high = self.ages
        if age is None:  # unknown age: adult rules (the common case at an adult triage desk)
            return low is None or low >= paediatric_below
        return (low is None or age >= low) and (high is None or age < high)

    def threshold(self, age: float | None) -> float | str:
        if self.op == "lt_pals":  # PALS hypotension: 70 + 2 x age in years
            return float(self.value) + 2 * (age or 0)
        return self.value

    def fires(self, value: Any, age: float | None) -> bool:
        t = self.threshold(age)
        if self.op == "eq":
            return value == t
        value = float(value)
        return {"lt": value < t, "lt_pals": value < t, "le": value <= t, "gt": value > t,
                "ge": value >= t}[self.op]

    def near(self, value: Any, age: float | None, margin: float) -> bool:
        """Just on the safe side of the threshold (within ``margin``)."""
        if self.op == "eq" or self.fires(value, age):
            return False
        t, v = float(self.threshold(age)), float(value)
        return (v - t <= margin) if self.op in ("lt", "le", "lt_pals") else (t - v <= margin)


@dataclass(frozen=True)
class Presentation:
    key: str
    name: dict[str, str]
    acuity: int
    department: str
    match: tuple[str, ...]
    source: str
    query: str
    all: tuple[tuple[str, ...], ...] = ()
    unless: tuple[str, ...] = ()
    requires: dict[str, Any] = field(default_factory=dict)
    max_days: float | None = None
    older: int | None = None
    child: int | None = None
    self_care: bool = False
    infant_ok: bool = False   # self-care also under 1 year (nappy rash, teething: NHS self-care)
    older_ok: bool = False    # self-care also from 65 (a cold, constipation, dry skin: the NHS pages set no age limit)
    pregnancy_ok: bool = False   # self-care also in pregnancy (mild morning sickness, Braxton Hicks: NHS pregnancy pages)
    condition_ok: bool = False   # self-care also with a long-term condition (one high glucose reading in a well diabetic)
    supersedes: tuple[str, ...] = ()   # broader presentations this one replaces when both match

    def __post_init__(self) -> None:
        where = f"presentations.yaml {self.key}"
        _check(1 <= self.acuity <= 5, where, "acuity must be 1..5")
        _check(set(self.name) == {"en", "zh"}, where, "name needs en and zh")
        _check(bool(self.match), where, "match needs at least one pattern")
        _check(self.self_care == (self.acuity == 5), where, "self_care is exactly the acuity-5 presentations")
        _check(set(self.requires) <= {"pregnant", "female", "age_lt", "age_ge"}, where,
               f"unknown requirement in {self.requires}")
        for pattern in (*self.match, *self.unless, *(p for g in self.all for p in g)):
            try:
                compile_pattern(pattern)
            except re.error as exc:
                raise RulesError(f"{where}: bad pattern {pattern!r}: {exc}") from exc


@dataclass(frozen=True)
class Rules:
    vital_rules: tuple[VitalRule, ...]
    vital_sources: dict[str, str]
    paediatric_below: float
    margins: dict[str, float]
    presentations: tuple[Presentation, ...]
    presentation_sources: dict[str, str]
    modifiers: dict[str, Any]
    departments: dict[str, dict[str, str]]

    def department(self, key: str) -> dict[str, str]:
        return {"key": key, **self.departments[key]}

    def source_text(self, key: str) -> str:
        for table in (self.presentation_sources, self.vital_sources, self.modifiers.get("sources", {})):
            if key in table:
                return " ".join(str(table[key]).split())
        return key


def _load_yaml(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise RulesError(f"cannot read triage rules {path}: {exc}",
                         hint="set triage.rules_dir to the folder holding vitals.yaml etc.") from exc
    except yaml.YAMLError as exc:
        raise RulesError(f"malformed YAML in {path}: {exc}") from exc


@lru_cache(maxsize=8)
def load_rules(rules_dir: Path = DEFAULT_RULES_DIR) -> Rules:
    rules_dir = Path(rules_dir)
    vitals = _load_yaml(rules_dir / "vitals.yaml")
    pres = _load_yaml(rules_dir / "presentations.yaml")
    mods = _load_yaml(rules_dir / "modifiers.yaml")
    depts = _load_yaml(rules_dir / "departments.yaml")
    vital_sources = vitals["sources"]
    vital_rules = []
    for r in vitals["rules"]:
        rule = VitalRule(id=r["id"], field=r["field"], op=r["op"], value=r["value"],
                         acuity=int(r["acuity"]), ages=tuple(r.get("ages") or (None, None)),
                         sources=tuple(r.get("sources") or ()))
        for s in rule.sources:
            _check(s in vital_sources, f"vitals.yaml rule {rule.id}", f"unknown source {s!r}")
        vital_rules.append(rule)
    presentations = []
    seen = set()
    for p in pres["presentations"]:
        _check(p["key"] not in seen, f"presentations.yaml {p['key']}", "duplicate key")
        seen.add(p["key"])
        item = Presentation(
            key=p["key"], name=dict(p["name"]), acuity=int(p["acuity"]), department=p["department"],
            match=tuple(p["match"]), source=p["source"], query=p.get("query", p["name"]["en"]),
            all=tuple(tuple(g) for g in p.get("all", ())), unless=tuple(p.get("unless", ())),
            requires=dict(p.get("requires") or {}), max_days=p.get("max_days"),
            older=p.get("older"), child=p.get("child"), self_care=bool(p.get("self_care", False)),
            infant_ok=bool(p.get("infant_ok", False)), older_ok=bool(p.get("older_ok", False)),
            pregnancy_ok=bool(p.get("pregnancy_ok", False)), condition_ok=bool(p.get("condition_ok", False)),
            supersedes=tuple(p.get("supersedes", ())))
        _check(item.department in depts, f"presentations.yaml {item.key}", f"unknown department {item.department!r}")
        _check(item.source in pres["sources"], f"presentations.yaml {item.key}", f"unknown source {item.source!r}")
        presentations.append(item)
    for key, value in mods["red_flags"].items():
        _check(value["department"] in depts, f"modifiers.yaml red_flags.{key}", "unknown department")
    for key, value in (mods.get("labs") or {}).items():
        _check(value.get("source") in mods["sources"], f"modifiers.yaml labs.{key}", f"unknown source {value.get('source')!r}")
    for key, value in depts.items():
        _check(set(value) == {"en", "zh"}, f"departments.yaml {key}", "needs en and zh")
    return Rules(tuple(vital_rules), vital_sources, float(vitals["paediatric_below"]),
                 dict(vitals["margins"]), tuple(presentations), dict(pres["sources"]), mods, depts)


def rules_markdown(rules_dir: Path = DEFAULT_RULES_DIR) -> str:
    """docs/TRIAGE_RULES.md: every rule with its level and source, generated from the rule files
    (``python -m chatbot.triage > docs/TRIAGE_RULES.md``; a test keeps it in sync)."""
    rules = load_rules(rules_dir)

    def cell(text: object) -> str:
        return " ".join(str(text).split()).replace("|", "\\|")

    ops = {"lt": "<", "le": "≤", "gt": ">", "ge": "≥", "eq": "=", "lt_pals": "< 70 + 2 × age"}
    lines = ["# Triage rules", "",
             "Generated from data/triage/*.yaml by `python -m chatbot.triage > docs/TRIAGE_RULES.md`.",
             "Acuity: 1 immediate, 2 emergent, 3 urgent, 4 less urgent, 5 non-urgent (docs/TRIAGE.md).", "",
             "## Vital-sign danger zones", "",
             "| rule | field | fires when | acuity | ages (years) | sources |", "|---|---|---|---|---|---|"]
    for r in rules.vital_rules:
        low, high = r.ages
        ages = f"{'' if low is None else low}–{'' if high is None else high}" if (low, high) != (None, None) else "all"
        cond = f"{ops[r.op]} {r.value}" if r.op != "lt_pals" else ops[r.op]
        lines.append(f"| `{r.id}` | {r.field} | {cell(cond)} | {r.acuity} | {ages} | {', '.join(r.sources)} |")
    lines += ["", "| source | reference |", "|---|---|"]
    lines += [f"| {k} | {cell(v)} |" for k, v in rules.vital_sources.items()]
    lines += ["", "## Presentations", "",
              "| key | name | acuity | older (≥ 65) | child (< 16) | department | needs | source |",
              "|---|---|---|---|---|---|---|---|"]
    for p in sorted(rules.presentations, key=lambda p: (p.acuity, p.key)):
        needs = ", ".join(f"{k}={v}" for k, v in p.requires.items())
        if p.all:
            needs = (needs + "; " if needs else "") + f"+{len(p.all)} co-finding group(s)"
        if p.max_days is not None:
            needs = (needs + "; " if needs else "") + f"self-care up to {p.max_days} days"
        lines.append(f"| `{p.key}` | {cell(p.name['en'])} / {cell(p.name['zh'])} | {p.acuity} | "
                     f"{p.older or ''} | {p.child or ''} | {p.department} | {cell(needs)} | {p.source} |")
    lines += ["", "| source | reference |", "|---|---|"]
    lines += [f"| {k} | {cell(v)} |" for k, v in rules.presentation_sources.items()]
    mods = rules.modifiers
    lines += ["", "## Modifiers and self-care disqualifiers", "", "| modifier | acuity | source |", "|---|---|---|"]
    for key, spec in mods["self_care_disqualifiers"].items():
        lines.append(f"| self-care disqualifier `{key}` | {spec['acuity']} | {spec['source']} |")
    fd = mods["fever_days_urgent"]
    lines.append(f"| fever longer than {fd['adult']} days (adults) / {fd['child']} days (children) | "
                 f"{fd['acuity']} | {fd['source']} |")
    lines.append(f"| severity words on a routine or self-care complaint | {mods['severity']['acuity']} | "
                 f"{mods['severity']['source']} |")
    immuno = mods["self_care_disqualifiers"]["immunocompromised"]
    lines.append(f"| fever with a weakened immune system | {immuno['fever_acuity']} | {immuno['source']} |")
    if "chemo_fever_acuity" in immuno:
        lines.append(f"| fever during anticancer treatment (suspected neutropenic sepsis) | "
                     f"{immuno['chemo_fever_acuity']} | {immuno['chemo_source']} |")
    labs = mods.get("labs", {})
    if "dka" in labs:
        d = labs["dka"]
        lines.append(f"| glucose > {d['glucose_gt']} mmol/L with blood ketones ≥ {d['ketones_ge']} mmol/L "
                     f"or urine ketones ≥ {'+' * int(d['urine_ketones_ge'])} (DKA) | {d['acuity']} | {d['source']} |")
    if "hhs" in labs:
        h = labs["hhs"]
        lines.append(f"| glucose ≥ {h['glucose_ge']} mmol/L (possible HHS) | {h['acuity']} | {h['source']} |")
    lines += ["", "| source | reference |", "|---|---|"]
    lines += [f"| {k} | {cell(v)} |" for k, v in mods["sources"].items()]
    lines += ["", "## Red-flag categories (chatbot.safety) → acuity and department", "",
              "| category | acuity | department |", "|---|---|---|"]
    lines += [f"| {k} | {v['acuity']} | {v['department']} |" for k, v in mods["red_flags"].items()]
    lines += ["", "## Departments", "", "| key | English | 中文 |", "|---|---|---|"]
    lines += [f"| {k} | {v['en']} | {v['zh']} |" for k, v in rules.departments.items()]
    return "\n".join(lines) + "\n"
