"""The red-flag rules file (``data/safety/rules.yaml``): loading, checking and compiling.

Everything lexical lives in the data file: the categories in severity order, the normalisation
lists, the context markers (negation, history, information questions, acute overrides), a lexicon
of named term lists and the rules. docs/SAFETY.md describes the format; each rule carries the
examples its test checks (``examples.hit`` / ``examples.miss``) and the public sources it rests
on.

Pattern syntax: Python regular expressions on the normalised text (lower case, NFKC). ``@name``
as a whole entry stands for every pattern of lexicon entry ``name``; ``{@name}`` inside a
pattern is replaced by that entry as one non-capturing alternation. Latin patterns get word
boundaries automatically (a letter may not touch them on either side); CJK patterns do not.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, fields
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from chatbot.errors import MedChatError
from chatbot.safety.text import Normaliser
from chatbot.settings import SAFETY_RULES_FILE as DEFAULT_RULES

FILTERS = ("negation", "history", "info")
# Word boundaries that only bite on Latin letters: "chest pain" must not match inside
# "chestpains" but "突然胸痛" must match inside "我dad突然胸痛".
_START = r"(?:(?<![a-z])(?=[a-z])|(?![a-z]))"
# A Latin match of 3+ letters may take a plural / possessive "s" ("boiler" in "the boilers been").
_END = r"(?:(?<=[a-z][a-z][a-z])s?(?![a-z])|(?<=[a-z])(?![a-z])|(?<![a-z]))"
_REF = re.compile(r"\{@([a-z0-9_]+)\}")
_NAMED = re.compile(r"\(\?P<[a-z_]+>")
_RULE_KEYS = {"id", "category", "lang", "any", "with", "unless", "unless_scope", "ignore",
              "min_count", "max_age_days", "min_temp_c", "source", "note", "examples", "never_vetoed"}


class SafetyRulesError(MedChatError):
    """The rules file is missing or malformed."""


@dataclass(frozen=True)
class Category:
    id: str
    severity: int          # 0 = most severe; the order of the file
    crisis_line: bool      # its message names the crisis line (self-harm, overdose)


@dataclass(frozen=True)
class Rule:
    id: str
    category: str
    lang: str                                        # zh | en | both (documentation; hits carry the span's language)
    any: tuple[re.Pattern[str], ...]                 # triggers: the evidence
    with_: tuple[tuple[re.Pattern[str], ...], ...]   # each group: one must also be present, not negated
    unless: tuple[re.Pattern[str], ...]              # any of these in scope cancels the trigger
    unless_scope: str                                # clause | sentence | message
    ignore: frozenset[str]                           # context filters that do not apply
    min_count: float | None                          # for a (?P<count>...) group
    max_age_days: float | None                       # for (?P<age>...)(?P<age_unit>...)
    min_temp_c: float | None                         # for (?P<temp>...)
    source: tuple[str, ...]
    note: str
    hit_examples: tuple[str, ...]
    miss_examples: tuple[str, ...]
    quick: re.Pattern[str] | None = None   # all triggers, no groups or boundaries: a cheap pre-check
    anchors: tuple[str, ...] | None = None  # literals, one of which is in every trigger match
    never_vetoed: bool = False   # a hit always escalates, whatever the detector says


@dataclass(frozen=True)
class Markers:
    clause_split: re.Pattern[str]
    sentence_split: re.Pattern[str]
    subclause_split: re.Pattern[str]
    negation: re.Pattern[str]
    pseudo_negation: re.Pattern[str]
    negation_cancel: re.Pattern[str]
    negation_gap_stop: re.Pattern[str]
    negation_gap_ignore: re.Pattern[str]   # words of the gap that do not count toward the window
    negation_window_zh: int
    negation_window_en: int
    history: re.Pattern[str]
    residual: re.Pattern[str]
    history_override: re.Pattern[str]
    history_carry: re.Pattern[str]     # a strong "now" after the history marker covers what follows
    info: re.Pattern[str]
    info_override: re.Pattern[str]
    enumeration: re.Pattern[str]


@dataclass(frozen=True)
class RuleSet:
    path: Path
    version: int
    categories: dict[str, Category]
    rules: tuple[Rule, ...]
    markers: Markers
    normalise: Normaliser
    sources: dict[str, str]
    lexicon: dict[str, tuple[str, ...]] = field(repr=False)

    def severity(self, category: str) -> int:
        return self.categories[category].severity


def _as_list(value: Any, where: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if not isinstance(value, list) or not all(isinstance(v, (str, int, float)) for v in value):
        raise SafetyRulesError(f"{where}: expected a list of strings")
    return [str(v) for v in value]


class _Compiler:
    def __init__(self, lexicon: dict[str, list[str]], path: Path) -> None:
        self.lexicon = lexicon
        self.path = path

    def expand_inline(self, pattern: str, where: str, depth: int = 0) -> str:
        if depth > 5:
            raise SafetyRulesError(f"{where}: lexicon references nest too deep (a cycle?)")

        def sub(m: re.Match[str]) -> str:
            name = m.group(1)
            if name not in self.lexicon:
                raise SafetyRulesError(f"{where}: unknown lexicon entry {{@{name}}}")
            inner = [self.expand_inline(p, where, depth + 1) for p in self.lexicon[name]]
            return "(?:" + "|".join(inner) + ")"

        # The text is NFKC-normalised: "，！？；" arrive as ",!?;". A class written "[^，。...]"
        # (stay inside the clause) gets the half-width separators too.
        return _REF.sub(sub, pattern).replace("[^，。", "[^，。,!?;\n")

    def entries(self, items: list[str], where: str) -> list[str]:
        out: list[str] = []
        for item in items:
            if item.startswith("@"):
                name = item[1:]
                if name not in self.lexicon:
                    raise SafetyRulesError(f"{where}: unknown lexicon entry {item}")
                out.extend(self.entries(self.lexicon[name], f"{where} -> {item}"))
            else:
                out.append(self.expand_inline(item, where))
        return out

    def anchors(self, items: list[str], where: str) -> tuple[str, ...] | None:
        out: set[str] = set()
        for p in self.entries(items, where):
            found = required_literals(_NAMED.sub("(?:", p))
            if not found:
                return None
            out |= found
        return tuple(sorted(out, key=len))

    def quick(self, items: list[str], where: str) -> re.Pattern[str]:
        """A superset of the triggers: named groups and word boundaries dropped, so that the
        engine can use its literal-prefix search (most rules are absent from most messages)."""
        body = "|".join(f"(?:{_NAMED.sub('(?:', p)})" for p in self.entries(items, where))
        return re.compile(body)

    def compile(self, items: list[str], where: str) -> tuple[re.Pattern[str], ...]:
        out = []
        parts: list[str] = []
        for p in self.entries(items, where):
            # a named group may appear once per pattern: alternatives that each name their
            # number ("(?P<temp>..) 度|体温(?P<temp>..)") become separate patterns
            parts.extend(split_alternatives(p) if p.count("(?P<") > 1 else [p])
        for p in parts:
            try:
                out.append(re.compile(_START + "(?:" + p + ")" + _END))
            except re.error as exc:
                raise SafetyRulesError(f"{where}: bad pattern {p!r}: {exc}",
                                       hint=f"fix it in {self.path}") from exc
        return tuple(out)

    def one(self, items: list[str], where: str, bounded: bool = True) -> re.Pattern[str]:
        """All patterns as one alternation (markers: only presence and position matter)."""
        parts = self.entries(items, where)
        if not parts:
            return re.compile(r"(?!)")  # matches nothing
        body = "|".join(f"(?:{p})" for p in parts)
        try:
            return re.compile(_START + "(?:" + body + ")" + _END if bounded else body)
        except re.error as exc:
            raise SafetyRulesError(f"{where}: bad pattern: {exc}", hint=f"fix it in {self.path}") from exc


def required_literals(pattern: str) -> set[str] | None:
    """Literal strings one of which occurs in every match of ``pattern``, or None when no such
    set can be read off the pattern. A rule whose literals are all absent from a message cannot
    fire, and ``str in str`` is ~100x cheaper than a regex search with lookbehinds: this keeps
    the screen under a millisecond per message."""
    from re import _constants as c  # type: ignore[attr-defined]
    from re import _parser

    def seq(items) -> set[str] | None:
        candidates: list[set[str]] = []
        run = ""
        for op, av in items:
            if op is c.LITERAL:
                run += chr(av)
                continue
            if run:
                candidates.append({run})
                run = ""
            found: set[str] | None = None
            if op is c.SUBPATTERN:
                found = seq(av[3])
            elif op is c.BRANCH:
                subs = [seq(b) for b in av[1]]
                found = None if any(x is None for x in subs) else set().union(*subs)  # type: ignore[arg-type]
            elif op in (c.MAX_REPEAT, c.MIN_REPEAT, getattr(c, "POSSESSIVE_REPEAT", None)):
                found = seq(av[2]) if av[0] >= 1 else None
            elif op is c.IN and all(o is c.LITERAL for o, _ in av) and len(av) <= 8:
                found = {chr(v) for _, v in av}
            if found:
                candidates.append(found)
        if run:
            candidates.append({run})
        if not candidates:
            return None
        return max(candidates, key=lambda cand: (min(len(x) for x in cand), -len(cand)))

    try:
        return seq(_parser.parse(pattern))
    except (re.error, RecursionError):
        return None


def split_alternatives(pattern: str) -> list[str]:
    """The top-level ``|`` alternatives of a regular expression (outside groups and classes)."""
    out, depth, start, i, in_class = [], 0, 0, 0, False
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\":
            i += 2
            continue
        if in_class:
            in_class = ch != "]"
        elif ch == "[":
            in_class = True
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == "|" and depth == 0:
            out.append(pattern[start:i])
            start = i + 1
        i += 1
    out.append(pattern[start:])
    return out


def _number(value: Any, where: str) -> float | None:
    if value is None:
        return None
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise SafetyRulesError(f"{where}: expected a number, got {value!r}")
    return float(value)


def _parse(data: Any, path: Path) -> RuleSet:
    """Check and compile the whole file, section by section; the first problem raises, named by
    section (and rule id) so the author can find it."""
    if not isinstance(data, dict):
        raise SafetyRulesError(f"{path} must be a YAML mapping")
    for key in ("version", "categories", "markers", "lexicon", "rules", "sources"):
        if key not in data:
            raise SafetyRulesError(f"{path}: missing section {key!r}")
    categories = _parse_categories(data["categories"], path)
    sources = {str(k): str(v) for k, v in (data["sources"] or {}).items()}
    lexicon = {str(k): _as_list(v, f"lexicon.{k}") for k, v in (data["lexicon"] or {}).items()}
    comp = _Compiler(lexicon, path)
    markers = _parse_markers(data["markers"], comp, path)
    normaliser = _parse_normaliser(data.get("normalise") or {})
    rules: list[Rule] = []
    seen: set[str] = set()
    for i, r in enumerate(data["rules"] or []):
        if not isinstance(r, dict) or not r.get("id"):
            raise SafetyRulesError(f"{path}: rules[{i}] needs an id")
        rid = str(r["id"])
        unknown = set(r) - _RULE_KEYS
        if unknown:
            raise SafetyRulesError(f"{path}: rule {rid}: unknown keys {sorted(unknown)}")
        if rid in seen:
            raise SafetyRulesError(f"{path}: rule id {rid} is used twice")
        seen.add(rid)
        rules.append(_parse_rule(r, rid, path, comp, categories, sources))
    return RuleSet(path=path, version=int(data["version"]), categories=categories,
                   rules=tuple(rules), markers=markers, normalise=normaliser, sources=sources,
                   lexicon={k: tuple(v) for k, v in lexicon.items()})


def _parse_categories(items: Any, path: Path) -> dict[str, Category]:
    """The categories section: its order is the severity order (0 = most severe)."""
    categories: dict[str, Category] = {}
    for i, c in enumerate(items):
        if not isinstance(c, dict) or "id" not in c:
            raise SafetyRulesError(f"{path}: categories[{i}] needs an id")
        categories[c["id"]] = Category(c["id"], i, bool(c.get("crisis_line", False)))
    return categories


def _parse_markers(m: Any, comp: _Compiler, path: Path) -> Markers:
    """The markers section: three split patterns, two negation windows, and pattern lists."""
    try:
        splits = {k: re.compile(m[k]) for k in ("clause_split", "sentence_split", "subclause_split")}
        windows = {k: int(m[k]) for k in ("negation_window_zh", "negation_window_en")}
        # every other marker is a list of patterns, compiled into one alternation
        lists = {f.name: comp.one(_as_list(m[f.name], f"markers.{f.name}"), f"markers.{f.name}")
                 for f in fields(Markers) if f.name not in splits and f.name not in windows}
        return Markers(**splits, **windows, **lists)
    except KeyError as exc:
        raise SafetyRulesError(f"{path}: markers.{exc.args[0]} is missing") from exc
    except re.error as exc:
        raise SafetyRulesError(f"{path}: bad marker pattern: {exc}") from exc


def _flag(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise SafetyRulesError(f"{where} must be true or false, got {value!r}")
    return value


def _parse_normaliser(n: dict[str, Any]) -> Normaliser:
    """The normalise section: misspelling maps and the fuzzy-matching vocabulary."""
    return Normaliser.build(
        # pinyin keys are ASCII: matched like the English fixes, on word boundaries
        {str(k): str(v) for k, v in {**(n.get("misspellings_en") or {}),
                                     **(n.get("misspellings_pinyin") or {})}.items()},
        {str(k): str(v) for k, v in (n.get("misspellings_zh") or {}).items()},
        _as_list(n.get("fuzzy_vocabulary"), "normalise.fuzzy_vocabulary"),
        _as_list(n.get("fuzzy_exceptions"), "normalise.fuzzy_exceptions"),
        int(n.get("fuzzy_min_length", 6)))


def _parse_rule(r: dict[str, Any], rid: str, path: Path, comp: _Compiler,
                categories: dict[str, Category], sources: dict[str, str]) -> Rule:
    """One rule whose id and keys are already checked: its fields checked, its patterns compiled."""
    where = f"rule {rid}"
    if r.get("category") not in categories:
        raise SafetyRulesError(f"{path}: {where}: unknown category {r.get('category')!r}")
    lang = r.get("lang", "both")
    if lang not in ("zh", "en", "both"):
        raise SafetyRulesError(f"{path}: {where}: lang must be zh, en or both")
    ignore = frozenset(_as_list(r.get("ignore"), f"{where}.ignore"))
    if ignore - set(FILTERS):
        raise SafetyRulesError(f"{path}: {where}: ignore takes {FILTERS}")
    scope = r.get("unless_scope", "sentence")
    if scope not in ("clause", "sentence", "message"):
        raise SafetyRulesError(f"{path}: {where}: unless_scope must be clause, sentence or message")
    refs = _as_list(r.get("source"), f"{where}.source")
    missing = [s for s in refs if s not in sources]
    if not refs or missing:
        raise SafetyRulesError(f"{path}: {where}: every rule names sources from the sources "
                               f"section (missing: {missing or 'none given'})")
    examples = r.get("examples") or {}
    hits = _as_list(examples.get("hit"), f"{where}.examples.hit")
    misses = _as_list(examples.get("miss"), f"{where}.examples.miss")
    if not hits or not misses:
        raise SafetyRulesError(f"{path}: {where}: needs examples.hit and examples.miss")
    groups = r.get("with") or []
    if not isinstance(groups, list):
        raise SafetyRulesError(f"{path}: {where}: with must be a list of term lists")
    rule = Rule(
        id=rid, category=r["category"], lang=lang,
        any=comp.compile(_as_list(r.get("any"), f"{where}.any"), where),
        with_=tuple(comp.compile(_as_list(g, f"{where}.with"), where) for g in groups),
        unless=comp.compile(_as_list(r.get("unless"), f"{where}.unless"), where),
        unless_scope=scope, ignore=ignore,
        min_count=_number(r.get("min_count"), f"{where}.min_count"),
        max_age_days=_number(r.get("max_age_days"), f"{where}.max_age_days"),
        min_temp_c=_number(r.get("min_temp_c"), f"{where}.min_temp_c"),
        source=tuple(refs), note=str(r.get("note", "")),
        hit_examples=tuple(hits), miss_examples=tuple(misses),
        quick=comp.quick(_as_list(r.get("any"), f"{where}.any"), where),
        anchors=comp.anchors(_as_list(r.get("any"), f"{where}.any"), where),
        never_vetoed=_flag(r.get("never_vetoed", False), f"{path}: {where}.never_vetoed"))
    if not rule.any:
        raise SafetyRulesError(f"{path}: {where}: needs at least one pattern in any")
    return rule


@lru_cache(maxsize=8)
def _load_cached(path: Path, mtime_ns: int) -> RuleSet:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise SafetyRulesError(f"{path} is not valid YAML: {exc}") from exc
    return _parse(data, path)


def load_rules(path: str | Path | None = None) -> RuleSet:
    """Load and compile the rules file (cached per path and modification time)."""
    p = Path(path) if path is not None else DEFAULT_RULES
    try:
        mtime = p.stat().st_mtime_ns
    except OSError as exc:
        raise SafetyRulesError(f"cannot read the red-flag rules {p}: {exc.strerror}",
                               hint="set safety.rules_file or restore data/safety/rules.yaml") from exc
    return _load_cached(p.resolve(), mtime)
