"""Questions that ask for one detail of a topic ("how long is the flu contagious", "漏服避孕药怎么办",
"二甲双胍有什么副作用", "孕妇可以吃螃蟹吗").

The library often has the topic's page and not the detail: the flu page says how flu spreads, not
how long one stays contagious; the birth-control page lists methods, not what to do after a missed
pill. Quoting the page then reads as an answer and is not one. :func:`asked_detail` finds the
detail a question asks for (bilingual cues in ``data/prompts/details.yaml``); :func:`covers_detail`
says whether one sentence of the top passages speaks of it (the detail's evidence words, in the
passage's language) on the question's topic (a content word of the question, glossary-translated
for a passage in the other language, in that sentence, or in its passage or title). When none
does, the engine says which detail the library does not hold (a ``no_evidence`` reply: it claims
nothing) and sends the patient to a pharmacist or doctor.

The check only runs past the evidence gate, on a question whose detail cue is explicit; a
question with no topic word left once the cue is taken out ("is it contagious?" with no earlier
turn) is not judged (answered as before).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import yaml

from chatbot.engine.answer.checks import content_tokens
from chatbot.engine.answer.extractive import passage_body, passage_lang, question_tokens
from chatbot.engine.answer.sentences import split_sentences
from chatbot.errors import MedChatError
from chatbot.settings import PROMPTS_DIR
from knowledge_base.records import Passage

__all__ = ["Detail", "asked_detail", "covers_detail", "focused_query"]

DETAILS_FILE = PROMPTS_DIR / "details.yaml"
# The passages read: the answer composer quotes from the top five (compose.COMPOSE_TOP_PASSAGES);
# a detail only in a lower passage would not reach the patient anyway.
TOP_PASSAGES = 5
# Words of every such question that name no topic ("can I take it while pregnant"), the people it
# is about ("my kids", "弟弟") and the detail's own words ("contagious", "副作用"): what is left is
# the topic the evidence sentence must speak of.
_GENERIC = ("take taking took give can could should safe ok okay alright long day days week weeks time times "
            "need normal still drink eat use using get got help medicine medication medicines drug drugs new pill pills "
            "tablet tablets dose doses make making s first start started feel feeling go away stop last "
            "baby babies child children kid kids son daughter wife husband mom mum dad mother father brother sister "
            "family parent parents people others other adult adults friend grandma grandpa "
            "contagious infectious spread catch pass side effect effects adverse miss missed forgot forget skip "
            "pregnant pregnancy breastfeeding nursing morning night evening food meal meals empty stomach before after "
            "school daycare nursery home stay back return work every many since mess cup cups much "
            "treat treatment treatments care caregiver disease diseases transmission "
            "吃 用 喝 服用 可以 能 吗 什么 怎么办 怎么 多久 时候 孩子 宝宝 小孩 弟弟 妹妹 哥哥 姐姐 家人 家里人 大人 老人 "
            "儿子 女儿 老公 老婆 爸爸 妈妈 我妈 我爸 会不会 会 有 一起 药 护理 每天 传染 副作用 不良反应 漏服 忘记 "
            "饭前 饭后 空腹 餐前 餐后 孕妇 怀孕 孕期 哺乳期 上学 幼儿园 上班 传染给 传染性 传播 还是 如何 治疗 "
            "怎么治 如何治 如何治疗 能不能 要不要 需要")


class DetailsError(MedChatError):
    """The detail cue file is missing or malformed."""


@dataclass(frozen=True)
class _Spec:
    kind: str
    asks: dict[str, tuple[re.Pattern[str], ...]]
    evidence: tuple[dict[str, tuple[re.Pattern[str], ...]], ...]   # every group must be met
    topic_in_sentence: bool
    what: dict[str, str]            # how the reply names the detail, per language
    query: dict[str, str]           # words of a focused second search, per language


@dataclass(frozen=True)
class Detail:
    spec: _Spec                     # the entry of details.yaml that asked for it
    cue: str                        # the question text that asked for it
    topic: dict[str, frozenset[str]]  # the question's content words per passage language

    @property
    def kind(self) -> str:
        return self.spec.kind

    @property
    def what(self) -> dict[str, str]:
        return self.spec.what

    @property
    def query(self) -> dict[str, str]:
        return self.spec.query


def _pattern(cue: str) -> re.Pattern[str]:
    """``/regex/`` as written; any other cue as a literal, case-insensitive substring."""
    if len(cue) > 2 and cue.startswith("/") and cue.endswith("/"):
        return re.compile(cue[1:-1], re.I)
    return re.compile(re.escape(cue.lower()), re.I)


@lru_cache(maxsize=2)
def _specs(path: Path = DETAILS_FILE) -> tuple[_Spec, ...]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise DetailsError(f"cannot read {path}: {exc}") from exc
    specs = []
    try:
        for kind, body in data.items():
            asks = {lang: tuple(_pattern(str(c)) for c in body["asks"].get(lang, [])) for lang in ("en", "zh")}
            groups = tuple({lang: tuple(_pattern(str(c)) for c in group.get(lang, [])) for lang in ("en", "zh")}
                           for group in body["evidence"].values())
            what = {lang: str(body["what"][lang]) for lang in ("en", "zh")}
            query = {lang: str(body["query"][lang]) for lang in ("en", "zh")}
            specs.append(_Spec(str(kind), asks, groups, bool(body.get("topic_in_sentence", False)), what, query))
    except (AttributeError, KeyError, TypeError, re.error) as exc:
        raise DetailsError(f"{path}: each detail needs asks / evidence / what per language ({exc})") from exc
    return tuple(specs)


@lru_cache(maxsize=1)
def _generic_tokens() -> frozenset[str]:
    return frozenset(content_tokens(_GENERIC)) | frozenset(_GENERIC.split())


def asked_detail(question: str, lang: str) -> Detail | None:
    """The first detail (file order) whose cue is in ``question``, or None. English cues are
    tried on a Chinese message too: it may hold English words."""
    for spec in _specs():
        for pattern in (*spec.asks.get(lang, ()), *(spec.asks["en"] if lang != "en" else ())):
            m = pattern.search(question)
            if m:
                # The topic from the whole question: a cue may hold it ("how long is the flu contagious").
                generic = _generic_tokens()
                topic = {plang: frozenset(t for t in toks if t not in generic and len(t) > 1)
                         for plang, toks in question_tokens(question, lang).items()}
                return Detail(spec, m.group(0), topic)
    return None


def _topic_page(detail: Detail, p: Passage) -> tuple[str, frozenset[str], bool]:
    """The passage's language, the question's topic words in it, and whether the passage is a page
    on exactly that topic (every content word of its title is a topic word: "Prednisone")."""
    plang = passage_lang(p)
    topic = detail.topic.get(plang, frozenset())
    title = content_tokens(p.title)
    return plang, topic, bool(title) and title <= topic


def covers_detail(detail: Detail, passages: Sequence[Passage]) -> bool:
    """True when a top passage has one sentence that meets every evidence group of the detail and
    speaks of the question's topic (see the module docstring). A detail with no topic word is not
    judged: True."""
    if not any(detail.topic.values()):
        return True
    spec = detail.spec
    for p in passages[:TOP_PASSAGES]:
        plang, topic, on_page = _topic_page(detail, p)
        if not topic:
            continue
        title = content_tokens(p.title)
        # On the topic's own page every sentence speaks of it; otherwise the sentence must name the
        # topic itself where the detail asks for it (side effects of *this* drug), or the title or
        # sentence must (contagion). A question-shaped title (a forum answer's
        # "幽门螺杆菌阳性吃饭传染吗？") is read as a sentence too: the answer below it is about it.
        for sentence in (p.title, *split_sentences(passage_body(p))):
            if not all(any(pat.search(sentence) for pat in group.get(plang, ())) for group in spec.evidence):
                continue
            words = content_tokens(sentence) if spec.topic_in_sentence else content_tokens(sentence) | title
            if on_page or topic & words:
                return True
    return False


def focused_query(detail: Detail, question: str, lang: str, passages: Sequence[Passage]) -> str:
    """The second search for a detail the first passages lack: the title of the top page on
    exactly the question's topic plus the detail's words ("Shingles contagious"; a page's stored
    question "Is Shingles Contagious?" then ranks first), else the question plus those words."""
    for p in passages[:TOP_PASSAGES]:
        plang, _, on_page = _topic_page(detail, p)
        if on_page:
            return f"{p.title} {detail.query[plang]}"
    return f"{question} {detail.query[lang]}"
