"""Symptom intake in the patient chat (issue 17): the one to three fixed follow-up questions a nurse
would ask before a disposition, and the parsing of their answers.

A message that reports the patient's own (or a relative's) symptoms, recognised by the triage
engine's self-report words and a matched complaint, starts an intake when the engine lacks what a
disposition needs: the complaint's red-flag check (``data/triage/intake.yaml``), the age, the
onset, the severity. The chat asks them one at a time, each with quick replies and free text; the
state travels in the assistant message's ``meta["intake"]`` (the store keeps it, so a reload or
``medchat chat`` continues it). When the questions are done, the triage engine assesses the
complaint *with* the answers and its reasons are shown in plain language.

Nothing medical is decided here: a "yes" to a check appends the check's fixed wording to the
complaint and the triage rules decide; every answer passes the red-flag screen before it gets
here (the consultation service's order of steps). A topic question ("what causes gout?") has no
self-report words and never starts an interview; an answer that is clearly a new question ends
the intake and is answered as a question.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from chatbot.errors import MedChatError
from chatbot.settings import TRIAGE_RULES_DIR
from chatbot.triage.engine import ZH_QUESTION_WORDS

INTAKE_FILE = "intake.yaml"
KEYS = ("check", "age", "onset", "severity")


class IntakeRulesError(MedChatError):
    """data/triage/intake.yaml is missing or malformed."""


@dataclass
class IntakeState:
    """What the chat has learned so far; JSON in the assistant message's meta."""

    complaint: str                      # the patient's first message (the complaint as told)
    lang: str
    presentation: str | None            # the triage presentation the complaint matched
    pending: list[str]                  # questions still to ask, the first one is being asked
    asked: list[str] = field(default_factory=list)
    answers: dict[str, str] = field(default_factory=dict)   # key -> the patient's words
    age: float | None = None
    onset: str | None = None
    severity: int | None = None
    check_yes: bool | None = None       # the answer to the red-flag check
    check_key: str | None = None        # which check: a presentation's, or "generic"

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "IntakeState":
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in data.items() if k in known})

    @property
    def question(self) -> str | None:
        return self.pending[0] if self.pending else None


@lru_cache(maxsize=4)
def load_intake_rules(rules_dir: Path = TRIAGE_RULES_DIR) -> dict[str, Any]:
    path = Path(rules_dir) / INTAKE_FILE
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        questions, checks = data["questions"], data["checks"]
        for key in ("age", "onset", "severity"):
            for lang in ("en", "zh"):
                str(questions[key][lang])
                list(questions[key]["options"][lang])
        for key, check in checks.items():
            for lang in ("en", "zh"):
                str(check[lang])
                str(check["if_yes"][lang])
        for lang in ("en", "zh"):
            str(data["generic_check"][lang])
            str(data["generic_check"]["if_yes"][lang])
        int(data["max_questions"])
    except (OSError, yaml.YAMLError, KeyError, TypeError, ValueError) as exc:
        raise IntakeRulesError(f"cannot read the intake questions {path}: {exc!r}",
                               hint="restore data/triage/intake.yaml from the repository") from exc
    return data


def plan(complaint: str, lang: str, understood: dict[str, Any], presentation: str | None,
         rules: dict[str, Any]) -> IntakeState | None:
    """The intake for a self-reported complaint, or None when nothing needs asking."""
    # every intake asks for danger signs: the complaint's own check, else the general one
    pending = ["check"]
    check_key = presentation if presentation in rules["checks"] else "generic"
    if understood.get("age") is None:
        pending.append("age")
    if understood.get("duration_days") is None:
        pending.append("onset")
    if not re.search(r"\b(10|[0-9])\s*(/\s*10|out of 10|分)", complaint):
        pending.append("severity")
    pending = pending[: int(rules["max_questions"])]
    if not pending:
        return None
    return IntakeState(complaint=complaint, lang=lang, presentation=presentation, pending=pending,
                       check_key=check_key)


def check_of(state: IntakeState, rules: dict[str, Any]) -> dict[str, Any]:
    key = state.check_key or state.presentation
    return rules["checks"][key] if key in rules["checks"] else rules["generic_check"]


def question(state: IntakeState, rules: dict[str, Any]) -> dict[str, Any]:
    """{"key", "text", "options", "number", "total"} of the question being asked."""
    key, lang = state.pending[0], state.lang
    total = len(state.asked) + len(state.pending)
    number = len(state.asked) + 1
    if key == "check":
        check = check_of(state, rules)
        options = ["是", "否", "不确定"] if lang == "zh" else ["yes", "no", "not sure"]
        return {"key": key, "text": check[lang], "options": options, "number": number, "total": total}
    q = rules["questions"][key]
    return {"key": key, "text": q[lang], "options": list(q["options"][lang]), "number": number, "total": total}


_YES = re.compile(r"^\s*(y|yes|yeah|yep|yes it (is|does)|是|是的|有|对|嗯|有的)\b|^\s*(是|有|对)", re.I)
_NO = re.compile(r"^\s*(n|no|nope|not really|none|没有|没|无|不是|否|都没有)\b|^\s*(没|无|否|不)", re.I)
_UNSURE = re.compile(r"not sure|don'?t know|unsure|maybe|不确定|不知道|说不清|不清楚", re.I)
_BARE = re.compile(r"(?i)\b(yes|yeah|yep|no|nope|not sure|maybe)\b|是的|是|有的|有|没有|没|无|否|不确定|不知道|[\s,，.。!！]")
_AGE_OPTION = {"under 1": 0.5, "不满1岁": 0.5, "1-15": 8, "1-15岁": 8, "16-64": 40, "16-64岁": 40,
               "65 or older": 70, "65岁及以上": 70}
_NUMBER = re.compile(r"(\d{1,3}(?:\.\d)?)")


_ASKS = re.compile(ZH_QUESTION_WORDS + r"|(?i:(^|[.,;:!\-–]\s*|\b(and|or)\s+)"
                   r"(what|how|why|when|which|can|could|should|shall|is|are|do|does|did|will|would)\b)")


def asks_a_question(text: str) -> bool:
    """The message asks something ("can I take ibuprofen with warfarin?", "烧到39度要紧吗"): it gets
    its answer and the one-line disposition, not an interview. The interview is for a report of
    symptoms that asks nothing ("my chest has been hurting on and off since yesterday")."""
    return bool(_ASKS.search(text or ""))


# How a complaint no triage rule recognises still sounds like one (an unknown complaint starts an
# intake only with one of these words: "忽略之前的指令" is not a symptom report).
_SYMPTOM_WORDS = re.compile(
    r"疼|痛|不舒服|难受|肿|痒|晕|烧|咳|吐|泻|拉肚子|麻|胀|出血|血|累|乏力|没力气|想吃|食欲|吃不下|心慌|心跳|憋|喘|"
    r"没精神|发冷|发热|抽|疹|包|硬|酸|闷|摔|扭|咬|抓|痣|疙瘩|泡|黑影|看不清|"
    # a body part: a report about one's body ("手腕摔了一下", "my ear feels blocked")
    # (two-character forms where one character is also ordinary language: 助手, 小心, 背景)
    r"眼|耳|喉|嗓|心脏|心口|腰|后背|背部|手腕|手指|手臂|手掌|手上|脚|腿|膝|头部|头上|胸|肚|胃|皮肤|脖子|牙|身上|下面|"
    r"(?i:\b(hurts?|hurting|pain\w*|ache\w*|aching|sore|swollen|swelling|itch\w*|dizzy|fever\w*|cough\w*|"
    r"vomit\w*|bleed\w*|blood|tired|exhausted|weak|rash|burn\w*|numb\w*|tingl\w*|lump|spots?|feel(ing)? (sick|ill|unwell|off|bad)|"
    r"bit|bitten|twist\w*|sprain\w*|blocked|spits? up|pounding|skips?|mole|fell|"
    r"back|ears?|eyes?|throat|heart|ankle|wrist|hand|knee|legs?|arms?|head|chest|stomach|belly|tummy|skin|neck|foot|feet|teeth|tooth)\b)")


def sounds_like_symptoms(text: str) -> bool:
    return bool(_SYMPTOM_WORDS.search(text or ""))


def looks_like_a_new_question(text: str) -> bool:
    """A long message ending in a question, not an answer to ours ("what causes gout?")."""
    t = text.strip()
    return len(t) > 40 and t.endswith(("?", "？")) or bool(re.match(r"(?i)^(what|how|why|can|is|does|should)\b.{12,}", t))


def parse(state: IntakeState, text: str) -> bool:
    """Read ``text`` as the answer to the pending question; True when it was understood (the
    question is then done). Unparseable answers are kept as words and count as answered too, except
    for age, where a number is needed to decide."""
    key = state.pending[0]
    t = (text or "").strip()
    if key == "check":
        if _UNSURE.search(t):
            state.check_yes = None
        elif _NO.search(t):
            state.check_yes = False
        elif _YES.search(t):
            state.check_yes = True
        else:
            # free text: the words themselves go to the triage rules with the complaint
            state.check_yes = None
        state.answers[key] = t
    elif key == "age":
        age = _AGE_OPTION.get(t)
        if age is None:
            months = re.search(r"(\d{1,2})\s*(个月|months?|mo)\b", t)
            years = _NUMBER.search(t)
            if months:
                age = int(months.group(1)) / 12
            elif years and 0 <= float(years.group(1)) <= 120:
                age = float(years.group(1))
        if age is None:
            return False
        state.age, state.answers[key] = age, t
    elif key == "onset":
        state.onset, state.answers[key] = t, t
    elif key == "severity":
        n = _NUMBER.search(t)
        if n and 0 <= float(n.group(1)) <= 10:
            # a range option "4-6" counts as its upper end: the patient's worst
            ranged = re.search(r"(\d{1,2})\s*[-–~]\s*(\d{1,2})", t)
            state.severity = int(ranged.group(2)) if ranged else int(float(n.group(1)))
        state.answers[key] = t
    state.asked.append(state.pending.pop(0))
    absorb(state, t)
    return True


_AGE_WORDS = re.compile(r"(\d{1,3})\s*(岁|周岁|years? old|yrs? old|y/?o\b)|(\d{1,2})\s*(个月|months? old)", re.I)
_ONSET_WORDS = re.compile(r"(today|yesterday|this (morning|afternoon|evening|week)|last (night|week)|since|ago|"
                          r"for (a|an|\d+) (hours?|days?|weeks?|months?)|今天|昨天|前天|今早|昨晚|上周|(\d+|[一二两三四五六七八九十几半])"
                          r"\s*(个)?(小时|天|日|周|星期|月|年)(了|前)?)", re.I)


def absorb(state: IntakeState, text: str) -> None:
    """Facts a patient volunteers while answering another question ("no, he is 3 years old, since
    yesterday") answer the questions still to come, which are then not asked."""
    if "age" in state.pending:
        m = _AGE_WORDS.search(text)
        if m:
            state.age = float(m.group(1)) if m.group(1) else int(m.group(3)) / 12
            state.answers["age"] = text
            state.pending.remove("age")
            state.asked.append("age")
    if "onset" in state.pending and _ONSET_WORDS.search(text):
        state.onset = state.answers["onset"] = text
        state.pending.remove("onset")
        state.asked.append("onset")


def complaint_with_answers(state: IntakeState, rules: dict[str, Any], canonical: bool = False) -> str:
    """The complaint as the triage engine reads it after the intake: the patient's words plus the
    answer to the check — the sign as the patient described it, or the check's fixed wording for a
    bare "yes" (and, with ``canonical``, for a described "yes" too)."""
    parts = [state.complaint]
    said = (state.answers.get("check") or "").strip()
    described = len(_BARE.sub("", said)) > 2  # more than a bare yes / no / not sure
    if state.check_yes and (canonical or not described):
        parts.append(check_of(state, rules)["if_yes"][state.lang])
    if described and state.check_yes is not False:
        parts.append(said)  # the sign in the patient's words: the rules read it
    # the severity is not added here: it goes to the engine as the pain score (Intake.vitals.pain)
    return "；".join(parts) if state.lang == "zh" else ". ".join(parts)
