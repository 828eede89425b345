"""The triage engine: an intake in, an acuity level, a disposition, a department, every reason
that fired, supporting passages and a draft note out.

Order of the rules (each one a named, sourced :class:`Reason`; the most urgent level wins):

1. contradictions in the intake (flagged; the worse reading is used)
2. vital-sign danger zones by age band (data/triage/vitals.yaml), plus "near threshold" uncertainty
3. red flags from the safety screen (chatbot.safety.RedFlagScreen, the project's one lexicon)
4. presentations matched in the complaint (data/triage/presentations.yaml), with their age
   modifiers
5. modifiers (data/triage/modifiers.yaml): fever duration, immune suppression, severity words,
   and, when the result would be self-care, the self-care disqualifiers
6. nothing recognised -> "routine" with an uncertainty reason: the engine leans safer and says so

docs/TRIAGE.md documents the acuity scale, its mapping to ESI and the Chinese four-level standard,
and the source of every rule.
"""

from __future__ import annotations

import re

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Protocol

from chatbot.prompts import PromptLibrary
from chatbot.settings import PROJECT_ROOT
from chatbot.triage.models import ACUITY_TO_DISPOSITION, Intake, InvalidIntake, Reason, TriageResult, Vitals
from chatbot.triage.rules import DEFAULT_RULES_DIR, Presentation, Rules, VitalRule, load_rules
from chatbot.triage.text import (
    compile_pattern,
    days_near,
    durations_days,
    extract_age,
    find,
    find_all,
    find_negated,
    labs_in_text,
    normalise,
    stated_negatives,
    vitals_in_text,
)
from knowledge_base.errors import DomainError
from knowledge_base.text import detect_lang

log = logging.getLogger(__name__)

# 中国急诊预检分诊专家共识 (2018) has four levels: 1 濒危, 2 危重, 3 急症, 4 非急症. ESI-style
# acuity 1-3 map one to one; 4 and 5 are both 非急症 (docs/TRIAGE.md).
ACUITY_TO_CN_LEVEL = {1: 1, 2: 2, 3: 3, 4: 4, 5: 4}
# Chinese hospitals send children under 14 to 儿科 for medical complaints.
PAEDIATRIC_DEPARTMENT_BELOW = 14
_PAEDIATRIC_SPECIALTIES = {"general", "respiratory", "gastroenterology", "infectious", "neurology",
                           "cardiology", "endocrinology", "nephrology", "rheumatology"}
_OPS = {"lt": "<", "lt_pals": "<", "le": "≤", "gt": ">", "ge": "≥", "eq": "="}
_FEVER = ("fever", "feverish", "high temperature", "temperature (of )?(3[89]|40)", "pyrexi(a|al)",
          "(a|running a|the) (slight |mild |low[- ]grade )?temperature(?! (of |is |was )?3[0-7])",
          "发烧", "发热", "低烧", "高烧", "高热", "体温(升高|3[89]|40)")


class RedFlagSource(Protocol):
    """What the engine needs from chatbot.safety.RedFlagScreen."""

    def hits(self, text: str, lang: str) -> list: ...


@dataclass
class _Ctx:
    text: str                  # normalised complaint (+ onset)
    raw: str
    lang: str
    age: float | None
    sex: str | None
    pregnant: bool
    vitals: Vitals
    comorbidity_text: str
    days: float | None         # longest duration stated anywhere
    onset_days: float | None = None   # duration in the intake's onset field
    reasons: list[Reason] = field(default_factory=list)
    departments: dict[int, str] = field(default_factory=dict)   # id(reason) -> department key
    warnings: list[str] = field(default_factory=list)
    presentations: list[tuple[Presentation, Reason]] = field(default_factory=list)
    hits: dict[str, int] = field(default_factory=dict)              # presentation key -> match offset
    spans: list[tuple[int, int]] = field(default_factory=list)      # matched presentation spans
    extra_ages: list[float] = field(default_factory=list)       # ages also to apply (contradictions)
    labs: dict[str, float] = field(default_factory=dict)        # glucose / ketones read from the note


# Chinese drops the subject: "腰疼", "胃不舒服，有点想吐" are the patient's own symptoms. A short
# Chinese message that asks nothing counts as a self-report (blind intake set 1: 37 of 60 Chinese
# first messages had no 我/孩子 and got no disposition at all).
# Also the Chinese half of the chat's "does this message ask something" (chatbot.engine.symptom_intake).
ZH_QUESTION_WORDS = (r"[?？]|吗|呢|什么|怎么|如何|哪些|哪个|能不能|可不可以|要不要|是否|是不是|会不会|能否|多少|多久|多大|"
                     r"几岁|哪家|哪里|哪儿|推荐|为什么|有没有")
_ZH_ASKS = re.compile(ZH_QUESTION_WORDS)
PRO_DROP_MAX_CHARS = 40


def _pro_drop_report(norm: str, lang: str) -> bool:
    return lang == "zh" and len(norm) <= PRO_DROP_MAX_CHARS and not _ZH_ASKS.search(norm)


# Reasons that say "not at home" on purpose (age 65+ or an infant, pregnancy, a long or worsening
# course, immunosuppression, a vital sign near its danger zone, contradictory facts): the learned
# self-care opinion never overrides them. Letting it (stop 24) gained 1 more point of accuracy on
# rounds 7-14 and sent an over-65 home against the rules' own disqualifier.
_NOT_AT_HOME_KINDS = ("vital", "red_flag", "age", "modifier", "contradiction")


class TriageEngine:
    def __init__(self, *, screen: RedFlagSource | None, retriever=None,
                 prompts: PromptLibrary | None = None, settings=None, opinion=None) -> None:
        """Cheap: rules are read on first use (or ``warm_up``). ``settings`` is the ``triage``
        section (chatbot.settings.TriageSettings) or None for the defaults. ``opinion``: the
        learned second opinion (``chatbot.triage.learned.LearnedTriage``) or None."""
        self.screen = screen
        self.opinion = opinion
        self.retriever = retriever
        self.prompts = prompts or PromptLibrary()
        self.settings = settings
        self._rules: Rules | None = None

    # -- setup ---------------------------------------------------------------------------------
    @property
    def rules_dir(self) -> Path:
        """The folder of the rule files (triage.rules_dir); the chat's intake questions live there too."""
        rules_dir = Path(getattr(self.settings, "rules_dir", None) or DEFAULT_RULES_DIR)
        return rules_dir if rules_dir.is_absolute() else PROJECT_ROOT / rules_dir

    @property
    def rules(self) -> Rules:
        if self._rules is None:
            self._rules = load_rules(self.rules_dir)
        return self._rules

    def warm_up(self) -> None:
        self.rules  # noqa: B018 - loads and validates the rule files
        if self.retriever is not None and self._evidence_k() > 0:
            self.retriever.warm_up()
        if self.opinion is not None:
            self.opinion.warm_up()

    def _evidence_k(self) -> int:
        return int(getattr(self.settings, "evidence_passages", 3))

    # -- public --------------------------------------------------------------------------------
    def assess(self, intake: Intake, lang: str | None = None, with_evidence: bool = True,
               with_opinion: bool = True) -> TriageResult:
        """The triage of one intake. ``with_opinion=False`` leaves the learned second opinion out
        (patient chat: it was trained and measured on clinical vignettes, not chat messages)."""
        rules = self.rules
        raw = intake.complaint.strip()
        if intake.onset:
            raw_for_facts = f"{raw}. {intake.onset}"
        else:
            raw_for_facts = raw
        text = self._plain_words(normalise(raw_for_facts))
        lang = lang or detect_lang(raw)
        if lang not in ("zh", "en"):
            raise InvalidIntake("triage.invalid.lang", "lang", lang, hint="lang is zh or en")
        text_age = extract_age(text)
        age = intake.age if intake.age is not None else text_age
        # Vitals written in the complaint ("temperature 39.5", "SpO2 88%") fill the gaps; measured
        # values given in the intake win.
        vitals = Vitals(**{**vitals_in_text(text), **intake.vitals.given()})
        # pregnancy stated in the text counts even against pregnant=False: the safer reading
        ctx = _Ctx(text=text, raw=raw, lang=lang, age=age, sex=intake.sex or self._text_sex(text),
                   pregnant=bool(intake.pregnant) or bool(find(text, rules.modifiers["pregnancy"])),
                   vitals=vitals, comorbidity_text=normalise(" ; ".join(intake.comorbidities)),
                   days=max(durations_days(text), default=None))
        if intake.onset:
            ctx.onset_days = max(durations_days(normalise(intake.onset)), default=None)
        self._contradictions(ctx, intake, text_age)
        self._vitals(ctx)
        ctx.labs = labs_in_text(text)
        self._labs(ctx)
        red_flags = self._red_flags(ctx)
        self._presentations(ctx)
        self._modifiers(ctx)
        if not any(r.kind in ("vital", "red_flag", "complaint") for r in ctx.reasons):
            self._add(ctx, "uncertainty", "complaint_unrecognised", 4,
                      "triage.reason.uncertainty.unrecognised", department="general")
        opinion = self.opinion.opinion(raw) if (self.opinion is not None and with_opinion) else None
        if opinion is not None and opinion.emergency and 2 < min(r.acuity for r in ctx.reasons) < 5:
            # one way only: the model raises a "see a doctor" result it finds to be a missed
            # emergency; it never lowers a level, and leaves a self-care result alone (the rules
            # sent it home on a matched self-care presentation with every disqualifier checked;
            # raising those too cost self-care recall and caught no more emergencies on round 8)
            p = round(opinion.probabilities["em"], 2)
            self._add(ctx, "learned", "similar_cases_emergency", 2, "triage.reason.learned.emergency",
                      value=p, department="emergency", p=p, version=opinion.version)
        acuity = min(r.acuity for r in ctx.reasons)
        if opinion is not None and opinion.self_care and acuity == 4 and \
                self.self_care_may_follow_cases(ctx.reasons, self._understood(ctx), raw_for_facts):
            # one step down, the mirror of the emergency raise, and only from "routine" (acuity 4:
            # no vital sign, red flag or urgent presentation fired) that no self-care disqualifier
            # of the rules asked for: labelled cases like this were self-care. Leave-one-round-out
            # on the 8 outside-written rounds: accuracy 0.776 -> 0.796, self-care recall 0.56 ->
            # 0.63, under-triage 3.3 % -> 3.6 % (finetune/triage/train.py, docs/TRIAGE.md).
            p = round(opinion.probabilities["sc"], 2)
            self._add(ctx, "learned", "similar_cases_self_care", 5, "triage.reason.learned.self_care",
                      value=p, department="general", p=p, version=opinion.version)
            acuity = 5
        department = self._department(ctx, acuity)
        disposition = ACUITY_TO_DISPOSITION[acuity]
        ctx.reasons.sort(key=lambda r: (r.acuity, _KIND_ORDER[r.kind]))
        evidence = self._evidence(ctx) if with_evidence else []
        top = min(ctx.presentations, key=lambda pr: pr[1].acuity)[0] if ctx.presentations else None
        result = TriageResult(acuity=acuity, disposition=disposition, department=department,
                              reasons=ctx.reasons, red_flags=red_flags, evidence=evidence, note="",
                              lang=lang, warnings=ctx.warnings, presentation=top.key if top else None,
                              cn_level=ACUITY_TO_CN_LEVEL[acuity],
                              opinion=opinion.to_json() if opinion is not None else None,
                              understood=self._understood(ctx))
        result.note = self.note(intake, result, ctx)
        return result

    def disposition_line(self, text: str, lang: str) -> str | None:
        """One line for patient chat when ``text`` describes the writer's own (or a dependant's)
        current symptoms that the rules recognise; None for questions about a topic."""
        found = self.chat_disposition(text, lang)
        return found["line"] if found else None

    def chat_assessment(self, text: str, lang: str, unrecognised: bool = False) -> TriageResult | None:
        """The assessment of a chat message that describes one's own (or a relative's) symptoms,
        or None (not a self-report, no symptom recognised unless ``unrecognised``, or turned off in
        settings). Without the learned opinion: it was trained and measured on clinical vignettes,
        not chat."""
        if not getattr(self.settings, "chat_disposition", True):
            return None
        norm = normalise(text or "")
        if not norm or not (find(norm, self.rules.modifiers["self_report"]) or _pro_drop_report(norm, lang)):
            return None
        result = self.assess(Intake(complaint=text), lang=lang, with_evidence=False, with_opinion=False)
        if not unrecognised and not any(r.kind in ("complaint", "red_flag", "vital") for r in result.reasons):
            return None
        return result

    def chat_disposition(self, text: str, lang: str) -> dict[str, str] | None:
        """``{"level": disposition, "line": text}`` for patient chat, or None (see
        :meth:`chat_assessment`)."""
        result = self.chat_assessment(text, lang)
        if result is None:
            return None
        return {"level": result.disposition,
                "line": self.prompts.text(lang, f"triage.line.{result.disposition}")}

    # -- rules ---------------------------------------------------------------------------------
    def _add(self, ctx: _Ctx, kind: str, code: str, acuity: int, key: str, *,
             value: Any = None, department: str | None = None, **values: Any) -> Reason:
        """A reason whose texts come from the prompt files of both languages. A value given as
        {"en": ..., "zh": ...} is rendered per language."""
        def render(lang: str) -> str:
            return self.prompts.text(lang, key, **{k: (v[lang] if isinstance(v, dict) else v)
                                                   for k, v in values.items()})

        reason = Reason(kind=kind, code=code, acuity=acuity, text_en=render("en"),
                        text_zh=render("zh"), value=value)
        ctx.reasons.append(reason)
        if department:
            ctx.departments[id(reason)] = department
        return reason

    def _plain_words(self, text: str) -> str:
        """Clinical terms of case write-ups rewritten to the words the rules use (modifiers.yaml
        ``synonyms``: "afebrile" -> "no fever", "dysuria" -> "pain on urination")."""
        for pattern, plain in self.rules.modifiers.get("synonyms", {}).items():
            text = compile_pattern(pattern).sub(plain, text)
        return text

    def self_care_may_follow_cases(self, reasons: list[Reason], understood: dict[str, Any], text: str) -> bool:
        """True when the learned opinion may turn this "see a doctor" result into self-care: its
        reasons are only presentations or uncertainty (an unknown complaint, several complaints),
        none a self-care disqualifier of the rules, and the patient is in no group the rules'
        self-care disqualifiers keep from home care (modifiers.yaml: infants, 65 and over,
        pregnancy, immunosuppression, a high-risk condition), which fire only beside a matched
        self-care presentation and so must be checked here for a complaint no rule knows."""
        if any(r.acuity <= 4 and (r.kind in _NOT_AT_HOME_KINDS or r.code.startswith("near_")) for r in reasons):
            return False
        rules = self.rules.modifiers["self_care_disqualifiers"]
        age = understood.get("age")
        if age is not None and (age < rules["infant"]["age_lt"] or age >= rules["older_adult"]["age_ge"]):
            return False
        if understood.get("pregnant") or understood.get("risk_factors"):
            return False
        plain = self._plain_words(normalise(text))
        return not any(find(plain, rules[key]["match"]) for key in ("immunocompromised", "high_risk_condition"))

    def _understood(self, ctx: _Ctx) -> dict[str, Any]:
        """The intake as the rules read it, for the nurse to check against the case: age, sex,
        pregnancy, vital signs (given or read from the text), the longest stated duration, the
        presentations matched, the risk factors named and the findings stated as absent."""
        risk = self.rules.modifiers.get("risk_factors", {})
        text = f"{ctx.text} ; {ctx.comorbidity_text}"
        return {"age": ctx.age, "sex": ctx.sex, "pregnant": ctx.pregnant,
                "vitals": ctx.vitals.given(), "labs": dict(ctx.labs), "duration_days": ctx.days,
                "presentations": [p.key for p, _ in ctx.presentations],
                "risk_factors": [k for k, patterns in risk.items() if find(text, patterns)],
                "negatives": stated_negatives(ctx.text)}

    def _text_sex(self, text: str) -> str | None:
        mods = self.rules.modifiers
        f, m = find(text, mods["female"]), find(text, mods["male"])
        if f and (not m or f.start < m.start):
            return "F"
        return "M" if m else None

    def _contradictions(self, ctx: _Ctx, intake: Intake, text_age: float | None) -> None:
        v = ctx.vitals
        if v.temp is not None and v.temp >= 38.0 and find_negated(ctx.text, _FEVER):
            self._add(ctx, "contradiction", "no_fever_but_temp", 4,
                      "triage.reason.contradiction.no_fever_temp", value=v.temp, val=_fmt(v.temp))
        if (intake.pregnant or ctx.pregnant) and intake.sex == "M":
            ctx.pregnant = True
            self._add(ctx, "contradiction", "pregnant_male", 4, "triage.reason.contradiction.pregnant_male")
        if v.gcs is not None and v.avpu is not None:
            # AVPU A ~ GCS 15, V ~ 13, P ~ 8, U ~ 3 (NEWS2 / Kelly et al. 2004); more than 2 points
            # apart is a contradiction.
            approx = {"A": 15, "V": 13, "P": 8, "U": 3}[v.avpu]
            if abs(approx - v.gcs) > 2:
                self._add(ctx, "contradiction", "gcs_avpu", 4, "triage.reason.contradiction.gcs_avpu",
                          value=f"GCS {v.gcs} / AVPU {v.avpu}", gcs=v.gcs, avpu=v.avpu)
        if intake.age is not None and text_age is not None and abs(intake.age - text_age) >= 2 \
                and abs(intake.age - text_age) > 0.2 * max(intake.age, text_age):
            younger = min(intake.age, text_age)
            ctx.extra_ages.append(younger if younger != ctx.age else max(intake.age, text_age))
            self._add(ctx, "contradiction", "age_mismatch", 4, "triage.reason.contradiction.age",
                      value=text_age, age=_fmt(intake.age), text_age=_fmt(text_age))
        if ctx.pregnant and ctx.age is not None and not (10 <= ctx.age <= 60):
            self._add(ctx, "contradiction", "pregnant_age", 4, "triage.reason.contradiction.pregnant_age",
                      value=ctx.age, age=_fmt(ctx.age))
        ctx.warnings.extend(r.text(ctx.lang) for r in ctx.reasons if r.kind == "contradiction")

    def _vitals(self, ctx: _Ctx) -> None:
        rules = self.rules
        ages = [ctx.age, *ctx.extra_ages]
        fired_fields: dict[str, int] = {}
        near: dict[str, tuple[VitalRule, Any]] = {}
        # most urgent rules first: one reason per field and direction is enough
        for rule in sorted(rules.vital_rules, key=lambda r: r.acuity):
            value = getattr(ctx.vitals, rule.field)
            if value is None:
                continue
            direction = f"{rule.field}:{'low' if rule.op in ('lt', 'le', 'lt_pals') else 'high'}"
            for age in ages:
                if not rule.applies_to(age, rules.paediatric_below):
                    continue
                if rule.fires(value, age):
                    if direction in fired_fields:
                        break
                    fired_fields[direction] = rule.acuity
                    self._reason_vital(ctx, rule, value, age)
                    break
                margin = rules.margins.get(rule.field)
                if margin is not None and rule.near(value, age, margin) and direction not in near:
                    near[direction] = (rule, value, age)
        for direction, (rule, value, age) in near.items():
            fired = fired_fields.get(direction)
            safer = min(rule.acuity + 1, 4)
            if fired is not None and fired <= safer:
                continue
            self._add(ctx, "uncertainty", f"near_{rule.id}", safer, "triage.reason.vital_near",
                      value=value, department="emergency" if safer <= 2 else None,
                      name=self._label(rule.field), unit=self._unit(rule.field), val=_fmt(value),
                      threshold=_fmt(rule.threshold(age)), rule=rule.id)

    def _labs(self, ctx: _Ctx) -> None:
        """Glucose and ketones in the note: DKA (ketones with a high glucose) and a hyperosmolar
        glucose are emergencies of their own, whatever the complaint's words."""
        labs, spec = ctx.labs, self.rules.modifiers.get("labs", {})
        glucose = labs.get("glucose")
        dka = spec.get("dka")
        if dka and glucose is not None and glucose > dka["glucose_gt"] and (
                labs.get("ketones", 0) >= dka["ketones_ge"] or labs.get("urine_ketones", 0) >= dka["urine_ketones_ge"]):
            ketones = labs.get("ketones")
            shown = _fmt(ketones) + " mmol/L" if ketones is not None else "+" * int(labs["urine_ketones"])
            self._add(ctx, "vital", "lab_dka", int(dka["acuity"]), "triage.reason.lab.dka",
                      value=glucose, department="emergency", glucose=_fmt(glucose), ketones=shown)
        hhs = spec.get("hhs")
        if hhs and glucose is not None and glucose >= hhs["glucose_ge"]:
            self._add(ctx, "vital", "lab_hhs", int(hhs["acuity"]), "triage.reason.lab.hhs",
                      value=glucose, department="emergency", glucose=_fmt(glucose))

    def _label(self, field_name: str) -> dict[str, str]:
        return {lang: self.prompts.text(lang, f"triage.vital.{field_name}") for lang in ("en", "zh")}

    def _unit(self, field_name: str) -> dict[str, str]:
        return {lang: self.prompts.text(lang, f"triage.unit.{field_name}") for lang in ("en", "zh")}

    def _reason_vital(self, ctx: _Ctx, rule: VitalRule, value: Any, age: float | None) -> None:
        self._add(ctx, "vital", rule.id, rule.acuity, "triage.reason.vital", value=value,
                  department="emergency" if rule.acuity <= 2 else None,
                  name=self._label(rule.field), unit=self._unit(rule.field), val=_fmt(value),
                  op=_OPS[rule.op], threshold=_fmt(rule.threshold(age)), rule=rule.id,
                  sources=", ".join(rule.sources))

    def _red_flags(self, ctx: _Ctx) -> list[dict]:
        if self.screen is None:
            ctx.warnings.append(self.prompts.text(ctx.lang, "triage.warning.no_screen"))
            return []
        table = self.rules.modifiers["red_flags"]
        out = []
        for hit in self.screen.hits(ctx.raw, ctx.lang):
            spec = table.get(hit.category, table["default"])
            out.append({"category": hit.category, "rule_id": hit.rule_id, "evidence": hit.evidence,
                        "lang": hit.lang})
            self._add(ctx, "red_flag", hit.rule_id, int(spec["acuity"]), "triage.reason.red_flag",
                      value=hit.evidence, department=spec["department"], category=hit.category,
                      evidence=hit.evidence)
        return out

    def _requirements_met(self, ctx: _Ctx, p: Presentation) -> bool:
        req = p.requires
        if req.get("pregnant") and not ctx.pregnant:
            return False
        if req.get("female") and ctx.sex == "M":
            return False
        ages = [a for a in (ctx.age, *ctx.extra_ages) if a is not None]
        if "age_lt" in req and not any(a < req["age_lt"] for a in ages):
            return False
        if "age_ge" in req and not any(a >= req["age_ge"] for a in ages):
            return False
        return True

    def _presentations(self, ctx: _Ctx) -> None:
        text = ctx.text
        if ctx.vitals.temp is not None and ctx.vitals.temp >= 38.0 and not find(text, ("fever",)):
            # a measured or written temperature of 38 or more is a fever for the complaint rules
            # ("temperature of 39.8 and a blotchy rash" is fever with rash)
            text = f"{text} . fever ."
        for p in self.rules.presentations:
            if not self._requirements_met(ctx, p):
                continue
            hit = find(text, p.match)
            if hit is None or any(find(text, group) is None for group in p.all):
                continue
            if p.unless and find(text, p.unless):
                continue
            acuity, key = p.acuity, "triage.reason.complaint"
            if p.older is not None and ctx.age is not None and ctx.age >= 65 and p.older < acuity:
                acuity, key = p.older, "triage.reason.older"
            if p.child is not None and ctx.age is not None and ctx.age < 16 and p.child < acuity:
                acuity, key = p.child, "triage.reason.child"
            reason = self._add(ctx, "complaint", p.key, acuity, key, value=hit.text,
                               department=p.department, name=p.name, evidence=hit.text,
                               source=p.source)
            ctx.presentations.append((p, reason))
            ctx.hits[p.key] = hit.start
            ctx.spans.append((hit.start, hit.end))
        # "孕30周，肚子发紧…不痛、没规律": Braxton Hicks replaces the catch-all "symptoms in pregnancy"
        replaced = {k for p, _ in ctx.presentations for k in p.supersedes}
        if replaced:
            gone = {id(r) for p, r in ctx.presentations if p.key in replaced}
            ctx.presentations[:] = [(p, r) for p, r in ctx.presentations if p.key not in replaced]
            ctx.reasons[:] = [r for r in ctx.reasons if id(r) not in gone]
        urgent = {r.acuity for _, r in ctx.presentations}
        if len(urgent) > 1 and min(urgent) <= 3 and max(urgent) >= 4:
            names = {lang: "; ".join(dict.fromkeys(p.name[lang] for p, _ in ctx.presentations))
                     for lang in ("en", "zh")}
            best = min(r.acuity for _, r in ctx.presentations)
            self._add(ctx, "uncertainty", "several_presentations", best,
                      "triage.reason.uncertainty.several", names=names)

    def _modifiers(self, ctx: _Ctx) -> None:
        mods = self.rules.modifiers
        current = min((r.acuity for r in ctx.reasons), default=6)
        fever_hit = find(ctx.text, _FEVER)
        fever = fever_hit or (ctx.vitals.temp is not None and ctx.vitals.temp >= 38.0)
        # how long the fever has lasted: a duration in the sentence that mentions it, else the
        # onset the nurse recorded
        fever_days = days_near(ctx.text, fever_hit.start) if fever_hit else None
        if fever_days is None and ctx.onset_days is not None:
            fever_days = ctx.onset_days
        if fever_days is None and fever and not fever_hit:
            # a measured temperature with no fever word ("cough for 5 days, T 38.3"): the
            # complaint's duration is the best estimate, and the longer reading is the safer one
            fever_days = ctx.days
        child = ctx.age is not None and ctx.age < 16
        # fever lasting longer than the guidance allows
        fd = mods["fever_days_urgent"]
        limit = fd["child"] if child else fd["adult"]
        if fever and fever_days is not None and fever_days > limit and current > fd["acuity"]:
            self._add(ctx, "modifier", "fever_days", int(fd["acuity"]), "triage.reason.modifier.fever_days",
                      value=round(fever_days, 1), days=_fmt(fever_days), limit=limit)
        dq = mods["self_care_disqualifiers"]
        immuno_text = f"{ctx.text} ; {ctx.comorbidity_text}"
        immuno = find(immuno_text, dq["immunocompromised"]["match"])
        chemo = find(immuno_text, dq["immunocompromised"].get("chemo_match", ()))
        if chemo and fever and current > dq["immunocompromised"]["chemo_fever_acuity"]:
            # suspected neutropenic sepsis (NICE NG151): to hospital now, even "a bit tired"
            self._add(ctx, "modifier", "chemotherapy_fever", int(dq["immunocompromised"]["chemo_fever_acuity"]),
                      "triage.reason.modifier.chemotherapy_fever", value=chemo.text, evidence=chemo.text,
                      department="emergency")
        elif immuno and fever and current > dq["immunocompromised"]["fever_acuity"]:
            self._add(ctx, "modifier", "immunocompromised_fever", int(dq["immunocompromised"]["fever_acuity"]),
                      "triage.reason.modifier.immunocompromised_fever", value=immuno.text, evidence=immuno.text)
        current = min((r.acuity for r in ctx.reasons), default=6)
        if 4 <= current <= 5 and ctx.presentations:
            sev = find(ctx.text, mods["severity"]["match"])
            if sev:
                self._add(ctx, "modifier", "severity", int(mods["severity"]["acuity"]),
                          "triage.reason.modifier.severity", value=sev.text, evidence=sev.text)
        current = min((r.acuity for r in ctx.reasons), default=6)
        if current != 5:
            return
        # The result would be self-care: every disqualifier that applies is a reason.
        for p, _ in ctx.presentations:
            days = days_near(ctx.text, ctx.hits[p.key])
            if days is None:
                days = ctx.onset_days if ctx.onset_days is not None else ctx.days
            if p.max_days is not None and days is not None and days > p.max_days:
                self._add(ctx, "modifier", f"long_duration:{p.key}", int(dq["long_duration"]["acuity"]),
                          "triage.reason.modifier.long_duration", value=round(days, 1),
                          name=p.name, days=_fmt(days), limit=_fmt(p.max_days))
        ages = [a for a in (ctx.age, *ctx.extra_ages) if a is not None]
        infant_ok = all(p.infant_ok for p, _ in ctx.presentations if p.self_care)
        if any(a < dq["infant"]["age_lt"] for a in ages) and not infant_ok:
            self._add(ctx, "age", "infant", int(dq["infant"]["acuity"]), "triage.reason.age.infant",
                      value=min(ages), department="paediatrics")
        older_ok = all(p.older_ok for p, _ in ctx.presentations if p.self_care)
        if any(a >= dq["older_adult"]["age_ge"] for a in ages) and not older_ok:
            self._add(ctx, "age", "older_adult", int(dq["older_adult"]["acuity"]),
                      "triage.reason.age.older_adult", value=max(ages))
        # a self-care protocol written for pregnancy (morning sickness, Braxton Hicks) keeps it at home
        # (the generic protocols beside it, such as mild vomiting, are part of that case)
        pregnancy_ok = any(p.pregnancy_ok for p, _ in ctx.presentations)
        if ctx.pregnant and not pregnancy_ok:
            self._add(ctx, "modifier", "pregnancy", int(dq["pregnancy"]["acuity"]),
                      "triage.reason.modifier.pregnancy", department="obgyn")
        if immuno:
            self._add(ctx, "modifier", "immunocompromised", int(dq["immunocompromised"]["acuity"]),
                      "triage.reason.modifier.immunocompromised", value=immuno.text, evidence=immuno.text)
        risk = find(immuno_text, dq["high_risk_condition"]["match"])
        condition_ok = any(p.condition_ok for p, _ in ctx.presentations)
        if risk and not condition_ok:
            self._add(ctx, "modifier", "high_risk_condition", int(dq["high_risk_condition"]["acuity"]),
                      "triage.reason.modifier.high_risk_condition", value=risk.text, evidence=risk.text)
        # an alarm word inside a matched presentation ("nosebleed" -> 血) is explained by it
        alarm = next((h for h in find_all(ctx.text, dq["alarm_words"]["match"])
                      if not any(a <= h.start < b for a, b in ctx.spans)), None)
        if alarm:
            self._add(ctx, "uncertainty", "alarm_word", int(dq["alarm_words"]["acuity"]),
                      "triage.reason.uncertainty.alarm_word", value=alarm.text, evidence=alarm.text)
        worse = find(ctx.text, dq["worsening"]["match"])
        if worse:
            self._add(ctx, "modifier", "worsening", int(dq["worsening"]["acuity"]),
                      "triage.reason.modifier.worsening", value=worse.text, evidence=worse.text)

    def _department(self, ctx: _Ctx, acuity: int) -> dict[str, str]:
        rules = self.rules
        if acuity <= 2:
            return rules.department("emergency")
        candidates = [r for r in ctx.reasons if id(r) in ctx.departments and r.acuity == acuity] or \
                     [r for r in ctx.reasons if id(r) in ctx.departments]
        # prefer the presentation that decided the level, then any reason with a department
        candidates.sort(key=lambda r: (r.acuity, _KIND_ORDER[r.kind]))
        key = ctx.departments[id(candidates[0])] if candidates else "general"
        if ctx.age is not None and ctx.age < PAEDIATRIC_DEPARTMENT_BELOW and key in _PAEDIATRIC_SPECIALTIES:
            key = "paediatrics"
        return rules.department(key)

    def _evidence(self, ctx: _Ctx) -> list[dict]:
        k = self._evidence_k()
        if self.retriever is None or k <= 0:
            return []
        decided = min(ctx.presentations, key=lambda pr: pr[1].acuity)[0] if ctx.presentations else None
        if decided is None:
            query = ctx.raw
        elif ctx.lang == "zh":
            query = f"{decided.name['zh']} {ctx.raw}"
        else:
            query = decided.query
        try:
            passages = self.retriever.search(query, k=k, lang=ctx.lang)
        except DomainError as exc:
            # The level does not depend on the passages: triage goes on and says what is missing.
            log.warning("triage evidence unavailable: %s", exc)
            ctx.warnings.append(self.prompts.text(ctx.lang, "triage.warning.evidence_unavailable",
                                                  error=exc.message))
            return []
        return [p.to_json() for p in passages]

    # -- note ----------------------------------------------------------------------------------
    def note(self, intake: Intake, result: TriageResult, ctx: _Ctx | None = None) -> str:
        lang = result.lang
        t: Callable[..., str] = lambda key, **kw: self.prompts.text(lang, key, **kw)  # noqa: E731
        none = t("triage.note.none")
        unknown = t("triage.patient.unknown")
        age = intake.age if intake.age is not None else (ctx.age if ctx else None)
        parts = []
        if age is not None:
            parts.append(t("triage.patient.age_months", months=_fmt(age * 12)) if age < 2
                         else t("triage.patient.age_years", age=_fmt(age)))
        sex = intake.sex or (ctx.sex if ctx else None)
        if sex:
            parts.append(t(f"triage.patient.sex.{sex}"))
        if intake.pregnant or (ctx and ctx.pregnant):
            parts.append(t("triage.patient.pregnant"))
        vitals = []
        for name, value in intake.vitals.given().items():
            vitals.append(f"{t(f'triage.vital.{name}')} {_fmt(value)}{t(f'triage.unit.{name}')}")
        reasons = "\n".join(f"- [{r.acuity}] {r.text(lang)}" for r in result.reasons)
        flags = "; ".join(f"{f['category']} (\"{f['evidence']}\")" for f in result.red_flags)
        sep = "，" if lang == "zh" else ", "
        dept = result.department["zh" if lang == "zh" else "en"]
        return t("triage.note", complaint=intake.complaint.strip(),
                 patient=sep.join(parts) or unknown, onset=intake.onset or unknown,
                 comorbidities=sep.join(intake.comorbidities) or none,
                 vitals=sep.join(vitals) or unknown, acuity=t(f"triage.acuity.{result.acuity}"),
                 cn_level=t("triage.cn_level", level=result.cn_level),
                 disposition=t(f"triage.disposition.{result.disposition}"), department=dept,
                 reasons=reasons or none, red_flags=flags or none,
                 warnings="; ".join(result.warnings) or none)


_KIND_ORDER = {"red_flag": 0, "vital": 1, "complaint": 2, "age": 3, "modifier": 4, "contradiction": 5,
               "uncertainty": 6, "learned": 7}


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.1f}".rstrip("0").rstrip(".")
    return str(value)
