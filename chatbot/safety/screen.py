"""The deterministic red-flag screen: rules from data/safety/rules.yaml, context filters, and
the fixed escalation message.

A trigger pattern fires when, in its context:

- it is not negated: no negation cue ("no", "denies", "没有", "否认" ...) earlier in its clause
  within a few words / characters, with no scope break ("but", "then", "就", "开始" ...) in
  between, and pseudo-negations ("not sure", "无明显诱因", "没想到") blanked first;
- it is not history: no history marker ("years ago", "history of", "去年", "以前", "后遗症" ...)
  in its sentence, unless its sub-clause (clauses cut further at "and", "then", "然后") says the event is happening now ("right now", "suddenly",
  "现在", "突然", "又") and is not a lasting after-effect ("still", "还是");
- it is not an information question: no info frame ("what are the signs of", "怎么预防",
  "的前兆", "如果") in its clause (an enumeration "like ...", "比如 ..." inherits the clause
  before it), unless the clause has a strong present marker ("I'm having", "现在", "正在");
- its co-occurrence groups (``with``) are each present somewhere in the message, themselves not
  negated, historical or informational;
- no ``unless`` pattern of the rule is in scope, and its numbers pass (pill count, infant age,
  temperature).

No model, no network: the same text always gives the same hits.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from chatbot.prompts import PromptLibrary
from chatbot.protocols import ScreenResult
from chatbot.safety.rules import Rule, RuleSet, load_rules
from chatbot.safety.text import CJK, celsius, lang_of, parse_number, span_at, spans

if TYPE_CHECKING:
    from chatbot.safety.detector import Detection, EmergencyDetector
    from chatbot.settings import SafetySettings

_LATIN_WORD = re.compile(r"[a-z]+(?:'[a-z]+)?")
# A cue, then one to three short items separated by commas, then "or"/"nor"/"and" right before
# the finding ("no lip, tongue or ", "denies fever, chills or ").
_DENIED_LIST = re.compile(r"(?<![a-z])(no|denies|denied|without|not|never|negative for)\s+[a-z]+(?:\s[a-z]+){0,2}"
                          r"(?:\s*,\s*[a-z]+(?:\s[a-z]+){0,2}){0,4}\s*,?\s*(?:or|nor|and)\s*$")
# The safety question asked in the detector's unsure band, by the likeliest category's group.
QUESTION_GROUP = {"breathing": "breathing", "anaphylaxis": "breathing", "carbon_monoxide": "breathing",
                  "cardiac": "chest", "stroke": "neuro", "seizure": "neuro", "consciousness": "neuro",
                  "trauma": "neuro", "bleeding": "bleeding", "obstetric": "bleeding", "abdominal": "bleeding",
                  "poisoning": "harm", "self_harm": "harm", "infant_fever": "child", "sepsis": "child"}
ANSWERS = ("yes", "no", "unsure")
# Hits of these categories always escalate, whatever the detector says: a crisis line shown to
# someone who was joking costs little, one withheld from someone who was not costs a life.
NEVER_VETOED = frozenset({"self_harm"})
# Single rules can say so too (``never_vetoed: true`` in the rules file: a child's ingestions).
_DAYS_PER = {"day": 1.0, "week": 7.0, "month": 30.4, "year": 365.0}


@dataclass(frozen=True)
class RedFlagHit:
    category: str        # e.g. "cardiac", "self_harm"
    rule_id: str         # id of the rule in the rules file
    evidence: str        # the matched span of the (normalised) message
    lang: str            # "zh" | "en": the script of the evidence
    context: tuple[str, ...] = ()   # spans of the co-occurring terms the rule required
    start: int = -1                 # offsets of the evidence in the normalised message
    end: int = -1


class _Context:
    """One message, normalised, with its clauses and sentences and memoised marker checks."""

    def __init__(self, text: str, rules: RuleSet) -> None:
        self.rules = rules
        self.m = rules.markers
        self.text = rules.normalise(text)
        self.clauses = spans(self.text, self.m.clause_split)
        self.sentences = spans(self.text, self.m.sentence_split)
        self.subclauses = spans(self.text, self.m.subclause_split)
        self._memo: dict[tuple, bool] = {}

    def clause(self, pos: int) -> tuple[int, int]:
        return span_at(self.clauses, pos)

    def sentence(self, pos: int) -> tuple[int, int]:
        return span_at(self.sentences, pos)

    # -- filters -------------------------------------------------------------------------------
    def negated(self, start: int, end: int) -> bool:
        cs, ce = self.clause(start)
        key = ("neg", cs, start)
        if key in self._memo:
            return self._memo[key]
        prefix = self.text[cs:start]
        # pseudo-negations ("not sure", "无明显诱因") are blanked, keeping offsets
        prefix = self.m.pseudo_negation.sub(lambda m: " " * len(m.group(0)), prefix)
        cue = None
        for cue in self.m.negation.finditer(prefix):
            pass
        result = False
        if cue is not None:
            gap = prefix[cue.end():]
            # "无突然一侧手脚无力或说话不清": a word that qualifies the negated finding (sudden,
            # obvious) is part of it, not distance from the cue
            counted = self.m.negation_gap_ignore.sub("", gap)
            if CJK.search(self.text[start:end]):
                close = len(counted.replace(" ", "")) <= self.m.negation_window_zh
            else:
                close = len(_LATIN_WORD.findall(counted)) <= self.m.negation_window_en
            result = (close and not self.m.negation_gap_stop.search(gap)
                      and not self.m.negation_cancel.search(self.text[cs:ce]))
        if not result and not CJK.search(self.text[start:end]):
            result = self._in_denied_list(cs, start)
        self._memo[key] = result
        return result

    def _in_denied_list(self, clause_start: int, start: int) -> bool:
        """"no lip, tongue or throat swelling": the comma ends the clause, but the list that a
        cue opened runs on to its or/nor. True when the text before the finding, back to the cue
        in an earlier clause of the same sentence, is only short comma-separated items."""
        ss, _ = self.sentence(start)
        return clause_start > ss and bool(_DENIED_LIST.search(self.text[ss:start]))

    def historical(self, start: int) -> bool:
        ss, se = self.sentence(start)
        cs, ce = span_at(self.subclauses, start)
        key = ("hist", ss, cs)
        if key in self._memo:
            return self._memo[key]
        result = False
        sentence, clause = self.text[ss:se], self.text[cs:ce]
        if self.m.history.search(sentence):
            now = bool(self.m.history_override.search(clause)) or self._carried_now(sentence, start - ss)
            lasting = bool(self.m.residual.search(clause))
            result = not now or lasting
        self._memo[key] = result
        return result

    def _carried_now(self, sentence: str, rel: int) -> bool:
        """"Had surgery last week, now high fever, confused and barely peeing": a strong present
        marker that comes after the last history marker before the term, and before the term,
        moves the rest of the sentence back to the present. A history marker after the term
        ("confused, had surgery last week") is not affected."""
        last = max((h.end() for h in self.m.history.finditer(sentence) if h.start() < rel), default=None)
        if last is None:
            return False
        return any(last <= c.start() < rel for c in self.m.history_carry.finditer(sentence))

    def informational(self, start: int) -> bool:
        cs, ce = self.clause(start)
        key = ("info", cs)
        if key in self._memo:
            return self._memo[key]
        scope_start = cs
        if self.m.enumeration.match(self.text[cs:ce].lstrip()):
            # "what are the signs of a stroke, like face drooping": the list item inherits
            previous = [c for c in self.clauses if c[1] <= cs]
            if previous:
                scope_start = previous[-1][0]
        scope = self.text[scope_start:ce]
        result = bool(self.m.info.search(scope)) and not self.m.info_override.search(self.text[cs:ce])
        self._memo[key] = result
        return result

    def blocked(self, rule: Rule, start: int, end: int) -> bool:
        if "negation" not in rule.ignore and self.negated(start, end):
            return True
        if "history" not in rule.ignore and self.historical(start):
            return True
        return "info" not in rule.ignore and self.informational(start)

    def unless(self, rule: Rule, start: int) -> bool:
        if not rule.unless:
            return False
        if rule.unless_scope == "message":
            lo, hi = 0, len(self.text)
        elif rule.unless_scope == "clause":
            lo, hi = self.clause(start)
        else:
            lo, hi = self.sentence(start)
        return any(p.search(self.text, lo, hi) for p in rule.unless)


def _quantities_ok(rule: Rule, m: re.Match[str]) -> bool:
    groups = m.groupdict()
    if rule.min_count is not None and groups.get("count"):
        n = parse_number(groups["count"])
        if n is None or n < rule.min_count:
            return False
    if rule.max_age_days is not None and groups.get("age"):
        n = parse_number(groups["age"])
        unit = (groups.get("age_unit") or "month").lower()
        per = (_DAYS_PER["day"] if ("day" in unit or "天" in unit or "日" in unit) else
               _DAYS_PER["week"] if ("week" in unit or "wk" in unit or "周" in unit or "星期" in unit or "礼拜" in unit) else
               _DAYS_PER["year"] if ("year" in unit or "yr" in unit or "岁" in unit or "年" in unit) else
               _DAYS_PER["month"])
        if n is None or n * per > rule.max_age_days:
            return False
    if rule.min_temp_c is not None and groups.get("temp"):
        t = parse_number(groups["temp"])
        if t is None:
            return False
        if celsius(t) < rule.min_temp_c:
            return False
    return True


def _temperature_gate(rule: Rule, ctx: _Context) -> bool:
    """For a rule with ``min_temp_c``: False when the message gives temperatures and none of them
    reaches the threshold ("体温37.5，算发烧吗" is not a fever, whatever words it uses)."""
    readings = []
    for group in (rule.any, *rule.with_):
        for pattern in group:
            if "(?P<temp>" not in pattern.pattern:
                continue
            for m in pattern.finditer(ctx.text):
                t = parse_number(m.group("temp") or "") if m.group("temp") else None
                if t is not None:
                    readings.append(celsius(t))
    return not readings or max(readings) >= (rule.min_temp_c or 0)


def _fire(rule: Rule, ctx: _Context) -> RedFlagHit | None:
    if rule.anchors is not None:
        if not any(a in ctx.text for a in rule.anchors):
            return None
    elif rule.quick is not None and not rule.quick.search(ctx.text):
        return None
    if rule.min_temp_c is not None and not _temperature_gate(rule, ctx):
        return None
    for pattern in rule.any:
        for m in pattern.finditer(ctx.text):
            s, e = m.span()
            if e == s or not _quantities_ok(rule, m) or ctx.unless(rule, s) or ctx.blocked(rule, s, e):
                continue
            context: list[str] = []
            for group in rule.with_:
                found = _present(rule, group, ctx)
                if found is None:
                    break
                context.append(found)
            else:
                span = m.group(0).strip()
                return RedFlagHit(rule.category, rule.id, span, lang_of(span), tuple(context), s, e)
    return None


def _present(rule: Rule, group: tuple[re.Pattern[str], ...], ctx: _Context) -> str | None:
    for pattern in group:
        for m in pattern.finditer(ctx.text):
            s, e = m.span()
            if e > s and _quantities_ok(rule, m) and not ctx.blocked(rule, s, e):
                return m.group(0).strip()
    return None


class RedFlagScreen:
    """Implements :class:`chatbot.protocols.SafetyScreen`. Construction is cheap; the rules file is
    read and compiled on :meth:`warm_up` or on first use."""

    name = "redflag"

    def __init__(self, settings: "SafetySettings | None" = None, prompts: PromptLibrary | None = None,
                 detector: "EmergencyDetector | None" = None) -> None:
        from chatbot.settings import SafetySettings

        self.settings = settings or SafetySettings()
        self.prompts = prompts or PromptLibrary()
        self._rules: RuleSet | None = None
        self.detector = detector

    @property
    def rules(self) -> RuleSet:
        if self._rules is None:
            self._rules = load_rules(self.settings.rules_file)
        return self._rules

    def warm_up(self) -> None:
        _ = self.rules
        if self.detector is not None:
            self.detector.warm_up()

    def hits(self, text: str, lang: str | None = None) -> list[RedFlagHit]:
        """Acute red flags in ``text``, most severe category first (one hit per rule). ``lang``
        is accepted for the protocol's sake: every rule runs on every message, because mixed
        messages ("我爸 chest pain 出冷汗") carry terms of both languages."""
        rules = self.rules
        ctx = _Context(text or "", rules)
        found = [h for r in rules.rules if (h := _fire(r, ctx)) is not None]
        found.sort(key=lambda h: rules.severity(h.category))
        return found

    def screen(self, text: str, lang: str) -> ScreenResult:
        """The lexicon OR the detector: either one escalates. Where neither does and the
        detector is unsure, the result carries the safety question to ask."""
        found = self.hits(text, lang)
        detection = self.detector.detect(text) if self.detector is not None else None
        verdict = detection.to_json() if detection is not None else None
        if found and self._vetoed(found, detection):
            # The words matched a rule, the meaning says "not an emergency" with near certainty
            # (fiction, a question about CO alarms): ask first instead of escalating.
            verdict = {**verdict, "vetoed_rule_ids": [h.rule_id for h in found]}
            return ScreenResult(emergency=False, detector=verdict,
                                safety_question=self.question(found[0].category, lang))
        if found:
            return self._escalate(found, lang, verdict)
        if detection is not None and detection.band == "emergency":
            return self._escalate_detected(detection, text, lang, verdict)
        if detection is not None and detection.band == "ask":
            return ScreenResult(emergency=False, detector=verdict,
                                safety_question=self.question(detection.category, lang))
        return ScreenResult(emergency=False, detector=verdict)

    def _vetoed(self, found: list[RedFlagHit], detection: "Detection | None") -> bool:
        veto = self.settings.lexicon_veto_below
        return (detection is not None and veto > 0 and detection.score < veto
                and not any(h.category in NEVER_VETOED or self._never_vetoed(h.rule_id) for h in found))

    def _never_vetoed(self, rule_id: str) -> bool:
        return any(r.never_vetoed for r in self.rules.rules if r.id == rule_id)

    def _escalate(self, found: list[RedFlagHit], lang: str, verdict: dict | None) -> ScreenResult:
        categories = list(dict.fromkeys(h.category for h in found))
        langs = [lang if lang in ("zh", "en") else found[0].lang]
        other = "en" if langs[0] == "zh" else "zh"
        if other in {h.lang for h in found}:
            langs.append(other)  # a mixed message gets both languages
        evidence = list(dict.fromkeys(x for h in found for x in (h.evidence, *h.context)))
        return self._result(categories, langs, evidence, [h.rule_id for h in found], verdict, "lexicon")

    def _escalate_detected(self, detection: "Detection", text: str, lang: str, verdict: dict | None) -> ScreenResult:
        langs = [lang if lang in ("zh", "en") else lang_of(text)]
        if CJK.search(text) and _LATIN_WORD.search(text.lower()):
            langs.append("en" if langs[0] == "zh" else "zh")  # a mixed message gets both languages
        return self._result([detection.category], langs, [f"score {detection.score:.2f}"],
                            [f"detector:{detection.version}"], verdict, "detector")

    def _result(self, categories: list[str], langs: list[str], evidence: list[str], rule_ids: list[str],
                verdict: dict | None, via: str) -> ScreenResult:
        number = self.settings.number()
        crisis = self.settings.crisis()
        needs_crisis = any(self.rules.categories[c].crisis_line for c in categories)
        message = "\n\n".join(self.message(l, categories, number, crisis if needs_crisis else "")
                               for l in langs)
        return ScreenResult(emergency=True, category=categories[0], evidence=evidence,
                            message=message, categories=categories, rule_ids=rule_ids, number=number,
                            crisis_line=crisis if needs_crisis else "", detector=verdict, via=via)

    def escalation(self, category: str, lang: str, rule_id: str, detector: dict | None = None) -> ScreenResult:
        """The fixed emergency result of ``category``: a "yes" or "not sure" to the safety question."""
        category = category if category in self.rules.categories else "consciousness"
        return self._result([category], [lang if lang in ("zh", "en") else "en"], [rule_id], [rule_id],
                            detector, "safety_question")

    def question(self, category: str, lang: str) -> dict:
        """The fixed safety question of a category's group, with its fixed answers: ``yes`` and
        ``unsure`` escalate, ``no`` lets the question be answered."""
        group = QUESTION_GROUP.get(category, "general")
        lang = lang if lang in ("zh", "en") else "en"
        p = self.prompts
        return {"category": category, "group": group,
                "question": p.text(lang, f"safety.question.{group}"),
                "options": [{"id": o, "label": p.text(lang, f"safety.answer.{o}")} for o in ANSWERS]}

    def message(self, lang: str, categories: list[str], number: str, crisis: str = "") -> str:
        """The fixed escalation text: the most severe category's advice, then the crisis line
        when a self-harm or overdose category is among the hits."""
        p = self.prompts
        parts = [p.text(lang, f"safety.{categories[0]}", number=number)]
        if crisis:
            parts.append(p.text(lang, "safety.crisis_line", number=number, crisis_line=crisis))
        parts.append(p.text(lang, "safety.footer", number=number))
        return "\n".join(parts)
