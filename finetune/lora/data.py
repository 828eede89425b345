"""Grounded-QA training data in the engine's own prompt format (``medchat finetune data``).

Each example is what the engine would show the model at serve time -- system and user templates,
the question, three numbered passages retrieved from the real index (each cut to the engine's
passage budget), optionally one earlier exchange -- and the answer it should give: a few
sentences in the question's language, each ending with the ``[n]`` of the passage it comes from.

Kinds (``kind`` field):

- ``en``: a MedQuAD question; target = the first 1-5 sentences of its answer (CC BY 4.0).
- ``zh``: a Toyhom question; target = the doctor's answer without greetings and sign-offs, 1-5
  sentences (MIT).
- ``zh_en``: a Chinese question answered from an English MedQuAD passage; question and Chinese
  answer written for this project (``data/finetune/written_zh_en.jsonl``).
- ``no_source``: a question whose passages cannot answer it; target = the engine's own
  ``answer.no_evidence`` message, no citation. Two variants (``negative`` field): ``far``, the
  passages retrieved for an unrelated question; ``near``, the passages retrieved for this very
  question once every passage on its topic is removed -- the case real patients meet (a drug or
  disease the corpus lacks, answered by passages about a neighbouring one).
- ``*_multiturn``: an ``en``/``zh`` example with one earlier exchange in the history.

The gold passage sits among the passages retrieval returns for the question: where retrieval
ranks it in the top k it stays there; otherwise it replaces one of them. Splits are by document
group (a MedQuAD document and all its QA pairs; one Toyhom QA), from a hash: no test document is
seen in training. Groups any ``data/eval`` file refers to go to the test split. Rendering uses
``chatbot.engine.prompt.PromptBuilder`` and ``chatbot.llm.prompting.gemma_turns``: the format is
the serve format.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
import sqlite3
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

from chatbot.engine.answer import split_sentences
from chatbot.errors import MedChatError
from chatbot.llm.base import ChatMessage
from chatbot.llm.prompting import GEMMA_END_OF_TURN, gemma_turns
from knowledge_base.evaluation.jsonl import read_jsonl
from knowledge_base.records import Passage
from knowledge_base.text import CJK

SPLITS = ("train", "dev", "test")
LICENCES = {"medquad": "CC BY 4.0 (MedQuAD, Ben Abacha & Demner-Fushman 2019)",
            "toyhom": "MIT (Toyhom Chinese-medical-dialogue-data)",
            "written": "MIT (written for MedChat, answers summarise CC BY 4.0 MedQuAD passages)",
            "engine": "MIT (MedChat's own no-evidence message)"}


class DataBuildError(MedChatError):
    """The training data cannot be built (index missing, no examples left after filtering)."""


@dataclass
class DataConfig:
    """Sizes and shares of one build. Defaults size the CPU run (see docs/FINETUNE.md)."""

    index_dir: str = "data/index/default"
    out_dir: str = "data/finetune"
    written_file: str = "data/finetune/written_zh_en.jsonl"
    eval_dir: str = "data/eval"
    seed: int = 13
    train_size: int = 900  # examples in train.jsonl (dev/test take what their groups give, capped)
    dev_size: int = 24
    test_size: int = 60
    # Shares of the train split (the rest are en/zh single-turn, half each). zh_en takes every
    # written example of the train split, up to this share.
    # Refusal examples only where the library lacks the topic. 0.18 with 80 % near negatives (the
    # adapter of stop 20) taught the model to refuse answerable questions whose passages did not
    # name the topic: past the evidence gate its refusals were right 13 times and wrong 13 times
    # on blind answer round 3 (docs/FINETUNE.md). The engine's gate and scope cues are the
    # deterministic refusers; the model keeps a few examples so it can still say so.
    share_no_source: float = 0.06
    # Of the no-source examples, the share that are ``near`` (own retrieval minus the topic).
    share_near_negative: float = 0.25
    share_multiturn: float = 0.10
    share_zh_en: float = 0.10
    dev_percent: int = 5  # of document groups, by hash
    test_percent: int = 5
    max_tokens: int = 896  # prompt + target, Gemma tokens (the trainer's max_length)
    en_words: tuple[int, int] = (8, 130)  # target length bounds: English words
    zh_chars: tuple[int, int] = (15, 260)  # Chinese characters (CJK + punctuation)
    # A target quotes the answer's first sentences, up to these sizes: 3-8 sentences is what the
    # answer should give (issue 15); 3 sentences / 50 words taught one-line answers.
    en_target_sentences: int = 5
    en_target_words: int = 100
    zh_target_sentences: int = 5
    zh_target_chars: int = 220
    passages: int = 3  # the engine's chat.passages
    # Passage cut of train/dev prompts (tokens). Serve time cuts at chat.passage_tokens (160); 96
    # tokens held the 1-3 sentences the earlier targets quoted, not the 3-5 of these: the serve
    # value. 0 = the serve value. Test prompts use the serve value.
    train_passage_tokens: int = 0

    def __post_init__(self) -> None:
        shares = self.share_no_source + self.share_multiturn + self.share_zh_en
        if not 0 <= shares < 1:
            raise DataBuildError("the kind shares must add up to less than 1")
        if not 0 <= self.share_near_negative <= 1:
            raise DataBuildError("share_near_negative must be between 0 and 1")
        if self.dev_percent + self.test_percent >= 100 or min(self.dev_percent, self.test_percent) < 0:
            raise DataBuildError("dev_percent + test_percent must be < 100")
        if min(self.train_size, self.dev_size, self.test_size) < 0:
            raise DataBuildError("sizes must be >= 0")


# --- sources ---------------------------------------------------------------------------------


@dataclass
class Doc:
    """A QA document of the index: its first chunk is the gold passage."""

    doc_id: str
    group: str
    source: str  # medquad | toyhom
    lang: str
    question: str
    answer: str  # the chunk text without its leading question line
    passage: Passage


_SEC = re.compile(r"_Sec\d+$")


def doc_group(doc_id: str) -> str:
    """MedQuAD QA pairs of one document share a group (``GHR_0000482_Sec5`` -> ``GHR_0000482``);
    a Toyhom QA is its own group."""
    return _SEC.sub("", doc_id)


def split_of(group: str, dev_percent: int, test_percent: int, forced_test: set[str]) -> str:
    """Deterministic split from the group's hash (stable across runs, machines, Python versions)."""
    if group in forced_test:
        return "test"
    bucket = int(hashlib.sha1(group.encode("utf-8")).hexdigest()[:8], 16) % 100
    if bucket < test_percent:
        return "test"
    if bucket < test_percent + dev_percent:
        return "dev"
    return "train"


def eval_groups(eval_dir: Path) -> set[str]:
    """Document groups that evaluation files point to (``relevant`` lists, ``doc_id``)."""
    groups: set[str] = set()
    if not eval_dir.is_dir():
        return groups
    for path in sorted(eval_dir.glob("*.jsonl")):
        for _, row in read_jsonl(path, DataBuildError):
            for doc in list(row.get("relevant") or []) + ([row["doc_id"]] if row.get("doc_id") else []):
                groups.add(doc_group(doc))
    return groups


def load_docs(index_dir: Path) -> list[Doc]:
    """First chunks of the MedQuAD and Toyhom documents of the built index (read-only)."""
    from knowledge_base.index.manifest import IndexLayout

    build = IndexLayout(Path(index_dir)).current_build()  # raises IndexNotFoundError with a hint
    db = sqlite3.connect(f"file:{build / 'chunks.sqlite'}?mode=ro", uri=True)
    try:
        rows = db.execute("SELECT chunk_id, doc_id, text, title, url, source, lang, section, question "
                          "FROM chunks WHERE n = 0 ORDER BY idx").fetchall()
    finally:
        db.close()
    docs = []
    for chunk_id, doc_id, text, title, url, source, lang, section, question in rows:
        kind = "medquad" if source.startswith("MedQuAD") else "toyhom" if source.startswith("Toyhom") else ""
        if not kind or not question:
            continue
        answer = text[len(question):].strip() if text.startswith(question) else text
        passage = Passage(id=chunk_id, doc_id=doc_id, text=text, title=title or "", url=url or "",
                          source=source, lang=lang, score=0.0, section=section or "", question=question)
        docs.append(Doc(doc_id, doc_group(doc_id), kind, lang, question.strip(), answer, passage))
    return docs


# --- targets ---------------------------------------------------------------------------------

_EN_LEAD = re.compile(r"^(summary|key points|what is .*?\?)\s*:?\s*", re.IGNORECASE)
_EN_BAD = re.compile(r"https?://|www\.|\bclick\b|\bsee the\b|\bthis section\b|\bthese resources\b"
                     r"|Human Phenotype Ontology|table below|following list|\?"
                     r"|\bquestions? (?:to ask|for your doctor)\b", re.IGNORECASE)
_BULLET = re.compile(r"^\s*[-*•]\s*")


def _words(text: str) -> int:
    return len(text.split())


def en_target_units(answer: str, max_sentences: int = 3, max_words: int = 50) -> list[str]:
    """The first sentences of a MedQuAD answer; a list intro ("... include:") takes its items as
    one sentence ("... include: a, b and c.")."""
    lines = [ln.strip() for ln in answer.splitlines() if ln.strip()]
    if not lines:
        return []
    lines[0] = _EN_LEAD.sub("", lines[0]).strip()
    units: list[str] = []
    i = 0
    while i < len(lines) and len(units) < max_sentences:
        line = lines[i]
        i += 1
        if _BULLET.match(line):
            if units:
                break  # a list not announced by the previous sentence: stop at the paragraph end
            continue
        for sentence in split_sentences(line):
            if sentence.rstrip().endswith("?"):  # "What are the signs and symptoms of X?" headings
                continue
            if sentence.endswith(":"):
                items = []
                while i < len(lines) and _BULLET.match(lines[i]) and len(items) < 6:
                    item = split_sentences(_BULLET.sub("", lines[i]))
                    if not item or _words(item[0]) > 12:
                        break
                    items.append(item[0].rstrip(".;, "))
                    i += 1
                if len(items) < 2:
                    return units
                joined = ", ".join(items[:-1]) + f" and {items[-1]}"
                units.append(f"{sentence} {joined}.")
                break
            units.append(sentence)
            if len(units) >= max_sentences or sum(map(_words, units)) >= max_words:
                break
        if sum(map(_words, units)) >= max_words:
            break
    while units and sum(map(_words, units)) > max_words + 15:
        units.pop()
    return units


_ZH_GREETING = re.compile(r"^(?:[您你]好[，,！!。：:\s]*|病情分析[：:]?\s*|意见建议[：:]?\s*|指导意见[：:]?\s*"
                          r"|根据您的描述[，,]?|根据你的描述[，,]?)+")
_ZH_SIGNOFF = re.compile(r"感谢|谢谢|祝你|祝您|希望|期望|协助|解答|答案|仅供参考|以上|上述|咨询|我院|本院|专家|电话|QQ|微信"
                         r"|医院|网上|回复|提问")
_ZH_SENT = re.compile(r"[^。！？；!?;]+[。！？；!?;]?")
_CJK = CJK
_ZH_NUMBERING = re.compile(r"^\s*(?:\d+|[一二三四五六七八九十]+)\s*[、.．)）]\s*")


def zh_target_units(answer: str, max_sentences: int = 3, max_chars: int = 150,
                    long_sentence: int = 80) -> list[str]:
    """Toyhom doctor answer -> the first clean sentences (``max_sentences``) ending in "。" (long comma-run sentences cut at a
    comma)."""
    text = _ZH_GREETING.sub("", answer.replace("\n", "").strip())
    units: list[str] = []
    for raw in _ZH_SENT.findall(text):
        sentence = raw.strip().rstrip("。！？；!?;，,")
        sentence = _ZH_NUMBERING.sub("", _ZH_GREETING.sub("", sentence))
        if len(_CJK.findall(sentence)) < 6:
            continue
        if _ZH_SIGNOFF.search(sentence):
            if units:
                break
            continue
        if len(sentence) > long_sentence:
            cut = sentence[:long_sentence]
            comma = max(cut.rfind("，"), cut.rfind(","))
            if comma < long_sentence // 2:
                break
            sentence = cut[:comma]
        units.append(sentence + "。")
        if len(units) >= max_sentences or sum(map(len, units)) >= max_chars * 0.6:
            break
    return units


def cite(units: Iterable[str], n: int) -> str:
    """``[n]`` before each sentence's end punctuation: "... nerve [1]." / "……升高[1]。"."""
    out = []
    for unit in units:
        unit = unit.strip()
        m = re.search(r"[.。!?！？]+$", unit)
        if m:
            body, end = unit[: m.start()].rstrip(), m.group(0)
        else:
            body, end = unit, ("。" if _CJK.search(unit) else ".")
        out.append(f"{body} [{n}]{end}" if not _CJK.search(body[-1:] or "a") else f"{body}[{n}]{end}")
    joiner = "" if out and _CJK.search(out[0]) else " "
    return joiner.join(out)


def _fold(text: str) -> str:
    return re.sub(r"[\W_]+", "", text).casefold()


def target_in_passage(units: list[str], passage_text: str) -> bool:
    """Every target sentence comes from the passage as given (after the engine's cut)."""
    folded = _fold(passage_text)
    for unit in units:
        pieces = re.split(r"[:：]\s", unit, maxsplit=1)
        # A joined list sentence: the intro and each item are in the passage separately.
        parts = [pieces[0]] + (re.split(r", | and ", pieces[1]) if len(pieces) > 1 else [])
        if not all(_fold(p) in folded for p in parts if _fold(p)):
            return False
    return True


# --- topic overlap (near negatives) ----------------------------------------------------------

# Words and characters of the question's form, not its topic: "What causes X", "X怎么治疗".
_EN_FORM = frozenset("""what which when where does cause causes caused treat treated treatment
treatments symptom symptoms sign signs have with from that this about there their people many
information outlook risk prevent prevention diagnose diagnosed diagnosis test tests exams research
genetic changes inherited inheritance frequency stages complications considerations support groups
being should could would your often common how who is are the for and can of to in on an""".split())
_ZH_FORM = set("怎么办什么吗呢啊吧的了是有能可以如何要需该会病症治疗引起原因好注意吃哪些还请问患者一个我你他她这那个"
               "得了就都很最和与及或在后前时候应当样些会不没多少种类型方法情况严重咋啥调理医预防常见平时用服人们到"
               "上下大小中对为被让给把着过如果比较点一问题出现经常总是")


def topic_terms(text: str) -> set[str]:
    """Content words (en, 4+ letters, not question form) and CJK characters that are not question
    form. Single characters, not bigrams: "肝胃病" and "胃病" share only "胃", and a near negative
    must not be on the topic at all (a wrong "no source" label is worse than a missing example)."""
    words = {w for w in re.findall(r"[a-z]{4,}", text.casefold()) if w not in _EN_FORM}
    return words | {ch for ch in text if _CJK.match(ch) and ch not in _ZH_FORM}


def off_topic(question: str, passage: Passage) -> bool:
    """True when the passage's title and stored question share no topic term with the question."""
    terms = topic_terms(question)
    return bool(terms) and not terms & topic_terms(f"{passage.title} {passage.question}")


# --- the build -------------------------------------------------------------------------------


@dataclass
class Candidate:
    id: str
    kind: str
    lang: str
    source: str
    group: str
    question: str
    gold: Passage | None
    units: list[str]
    history: list[tuple[str, str]] = field(default_factory=list)
    zh_answer: bool = False


class Renderer:
    """Serve-format messages and token counts (Gemma's llama.cpp tokenizer, as at serve time)."""

    def __init__(self, counter: Callable[[str], int], passage_tokens: int = 0) -> None:
        from chatbot.engine.prompt import PromptBuilder
        from chatbot.prompts import PromptLibrary
        from chatbot.settings import load_settings

        settings = load_settings()
        chat = settings.chat.model_copy(update={"passage_tokens": passage_tokens}) if passage_tokens else settings.chat
        self.prompts = PromptLibrary()
        self.settings = settings
        self.count = counter
        self.builder = PromptBuilder.from_settings(self.prompts, counter, chat, settings.llm)

    def render(self, lang: str, question: str, passages: list[Passage],
               history: list[tuple[str, str]]) -> tuple[list[ChatMessage], list[Passage]]:
        messages, given, _ = self.builder.build(lang, question, passages, history)
        return messages, given

    def no_evidence(self, lang: str) -> str:
        return self.prompts.text(lang, "answer.no_evidence")

    def disclaimer(self, lang: str) -> str:
        return self.prompts.text(lang, "answer.disclaimer")


def _place_gold(gold: Passage, retrieved: list[Passage], k: int, rng: random.Random) -> list[Passage]:
    others = [p for p in retrieved if doc_group(p.doc_id) != doc_group(gold.doc_id)]
    ranked = [p.doc_id for p in retrieved[:k]]
    if gold.doc_id in ranked:
        pos = ranked.index(gold.doc_id)
    else:  # retrieval missed it: the engine would usually show it first or second
        pos = rng.choices(range(k), weights=[0.5, 0.3, 0.2][:k] + [0.1] * max(0, k - 3))[0]
    out = others[: k - 1]
    out.insert(min(pos, len(out)), gold)
    return out


def build(cfg: DataConfig, *, retriever: Any = None, counter: Callable[[str], int] | None = None,
          docs: list[Doc] | None = None, echo: Callable[[str], None] = print) -> dict[str, Any]:
    """Build train/dev/test JSONL and the data card; returns the card's counts."""
    rng = random.Random(cfg.seed)
    if docs is None:
        docs = load_docs(Path(cfg.index_dir))
    if retriever is None:
        from knowledge_base.retriever import Retriever

        retriever = Retriever(cfg.index_dir)
    renderers = _renderers(counter if counter is not None else _gemma_counter(), cfg)
    forced = eval_groups(Path(cfg.eval_dir))

    # 1. candidates per split, deduplicated by question and target
    cands = _Candidates()
    _add_index_candidates(cands, docs, cfg, forced, rng)
    _add_written_candidates(cands, Path(cfg.written_file), {d.doc_id: d for d in docs}, cfg, forced)

    # 2. per split: choose the mix, render, filter by length
    stats: dict[str, Any] = {"dropped": dict(cands.dropped), "splits": {}}
    out_dir = Path(cfg.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    _write_splits(cands.pools, cfg, retriever, renderers, rng, stats, out_dir, echo)
    _write_eval_file(out_dir / "test_questions.jsonl", out_dir / "test.jsonl")
    (out_dir / "DATA_CARD.md").write_text(data_card(cfg, stats), encoding="utf-8")
    (out_dir / "stats.json").write_text(json.dumps(stats, ensure_ascii=False, indent=2), encoding="utf-8")
    return stats


def _gemma_counter() -> Callable[[str], int]:
    """Gemma's own llama.cpp tokenizer: the counts the engine's prompt budget uses at serve time."""
    from chatbot.llm.llamacpp import LlamaCppGenerator

    return LlamaCppGenerator("gemma3-270m", n_threads=1).count_tokens


def _renderers(counter: Callable[[str], int], cfg: DataConfig) -> dict[str, Renderer]:
    """Train and dev share the shorter training passage cut; test renders at the serve cut."""
    train = Renderer(counter, cfg.train_passage_tokens)
    return {"train": train, "dev": train, "test": Renderer(counter)}


@dataclass
class _Candidates:
    """Candidates per split and kind, and what deduplication and filtering dropped. The index docs
    and the written file share one set of seen questions: a written question that repeats an index
    question is dropped."""

    pools: dict[str, dict[str, list[Candidate]]] = field(
        default_factory=lambda: {s: {"en": [], "zh": [], "zh_en": []} for s in SPLITS})
    seen_questions: set[str] = field(default_factory=set)
    dropped: Counter = field(default_factory=Counter)


def _doc_target(d: Doc, cfg: DataConfig) -> tuple[list[str], str]:
    """The target sentences of an index doc, or ``[]`` and the reason it has none."""
    units = (en_target_units(d.answer, cfg.en_target_sentences, cfg.en_target_words) if d.lang == "en"
             else zh_target_units(d.answer, cfg.zh_target_sentences, cfg.zh_target_chars))
    if not units:
        return [], "no_clean_target"
    text = " ".join(units)
    size = _words(text) if d.lang == "en" else len(text)
    lo, hi = cfg.en_words if d.lang == "en" else cfg.zh_chars
    if not lo <= size <= hi or (d.lang == "en" and _EN_BAD.search(text)):
        return [], "target_length_or_style"
    return units, ""


def _add_index_candidates(cands: _Candidates, docs: list[Doc], cfg: DataConfig, forced: set[str],
                          rng: random.Random) -> None:
    """en/zh candidates from the index docs, in a seeded shuffle (the first of a repeated question
    or target wins)."""
    seen_targets: set[str] = set()
    order = list(docs)
    rng.shuffle(order)
    for d in order:
        key = _fold(d.question)
        if key in cands.seen_questions:
            cands.dropped["duplicate_question"] += 1
            continue
        units, reason = _doc_target(d, cfg)
        if reason:
            cands.dropped[reason] += 1
            continue
        folded = _fold(" ".join(units))
        if folded in seen_targets:
            cands.dropped["duplicate_target"] += 1
            continue
        cands.seen_questions.add(key)
        seen_targets.add(folded)
        split = split_of(d.group, cfg.dev_percent, cfg.test_percent, forced)
        cands.pools[split][d.lang].append(Candidate(d.doc_id, d.lang, d.lang, d.source, d.group,
                                                    d.question, d.passage, units))


_WRITTEN_FIELDS = ("id", "doc_id", "question", "answer")
_WRITTEN_HINT = "each line of the written zh_en file is a JSON object with " + ", ".join(_WRITTEN_FIELDS)


def _add_written_candidates(cands: _Candidates, path: Path, by_id: dict[str, Doc], cfg: DataConfig,
                            forced: set[str]) -> None:
    """zh_en candidates from the written file (absent file: none); each goes to its gold doc's split."""
    if not path.is_file():
        return
    for n, row in read_jsonl(path, DataBuildError, hint=_WRITTEN_HINT):
        missing = [k for k in _WRITTEN_FIELDS if k not in row]
        if missing:
            raise DataBuildError(f"{path}:{n}: missing {', '.join(missing)}", hint=_WRITTEN_HINT)
        gold = by_id.get(row["doc_id"])
        if gold is None:
            cands.dropped["written_doc_missing"] += 1
            continue
        key = _fold(row["question"])
        if key in cands.seen_questions:
            cands.dropped["duplicate_question"] += 1
            continue
        cands.seen_questions.add(key)
        units = [u + "。" for u in re.split(r"[。！？]", row["answer"]) if u.strip()]
        split = split_of(gold.group, cfg.dev_percent, cfg.test_percent, forced)
        cands.pools[split]["zh_en"].append(Candidate(row["id"], "zh_en", "zh", "written", gold.group,
                                                     row["question"], gold.passage, units, zh_answer=True))


def _write_splits(pools: dict[str, dict[str, list[Candidate]]], cfg: DataConfig, retriever: Any,
                  renderers: dict[str, Renderer], rng: random.Random, stats: dict[str, Any],
                  out_dir: Path, echo: Callable[[str], None]) -> None:
    """train, dev, test in that order (they share ``rng``): each split's JSONL and its counts."""
    sizes = {"train": cfg.train_size, "dev": cfg.dev_size, "test": cfg.test_size}
    for split in SPLITS:
        rows = _build_split(split, pools[split], sizes[split], cfg, retriever, renderers[split], rng, stats)
        path = out_dir / f"{split}.jsonl"
        path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
        stats["splits"][split] = _counts(rows)
        echo(f"{split}: {len(rows)} examples -> {path}")


def _build_split(split: str, pool: dict[str, list[Candidate]], size: int, cfg: DataConfig,
                 retriever: Any, renderer: Renderer, rng: random.Random, stats: dict) -> list[dict]:
    """Up to ``size`` rendered rows of one split, in a seeded shuffle; the planned examples first,
    then spares for the ones the filters drop."""
    if size == 0:
        return []
    run = _SplitRun(split, cfg, retriever, renderer, rng)
    rows: list[dict] = []
    for kind, c in _plan_split(pool, size, cfg, renderer):
        if len(rows) >= size:
            break
        row = run.example(kind, c, len(rows))
        if row is not None:
            rows.append(row)
    if run.cut_by_budget:
        key = "target_cut_by_passage_budget"
        stats["dropped"][key] = stats["dropped"].get(key, 0) + run.cut_by_budget
    stats["dropped"][f"{split}_too_long"] = run.too_long
    rng.shuffle(rows)
    return rows


def _plan_split(pool: dict[str, list[Candidate]], size: int, cfg: DataConfig,
                renderer: Renderer) -> list[tuple[str, Candidate]]:
    """(kind, candidate) in the order to try: the mix the shares ask for, then the spares (their
    own language's single-turn kind)."""
    n_no_source = round(size * cfg.share_no_source)
    n_multi = round(size * cfg.share_multiturn)
    n_zh_en = min(len(pool["zh_en"]), round(size * cfg.share_zh_en))
    n_single = size - n_no_source - n_multi - n_zh_en
    # Single-turn: half English, half Chinese; multi-turn likewise. Extra candidates absorb the
    # ones the length filter drops.
    n_en = n_single // 2 + n_multi // 2 + n_no_source // 2
    n_zh = size - n_zh_en - n_en
    en = pool["en"][: n_en * 3 + 10]
    zh = pool["zh"][: n_zh * 3 + 10]
    plan: list[tuple[str, Candidate]] = [("zh_en", c) for c in pool["zh_en"][:n_zh_en]]
    plan += _take(en, n_single // 2, n_multi // 2, n_no_source // 2, "en", renderer)
    plan += _take(zh, n_single - n_single // 2, n_multi - n_multi // 2, n_no_source - n_no_source // 2,
                  "zh", renderer)
    spares = [(k[len("spare_"):], c) for k, c in plan if k.startswith("spare_")]
    return [(k, c) for k, c in plan if not k.startswith("spare_")] + spares


def _take(cands: list[Candidate], n_single: int, n_multi: int, n_none: int, lang: str,
          renderer: Renderer) -> list[tuple[str, Candidate]]:
    """One language's share of the plan, from its candidates in order: single-turn, multi-turn
    (two candidates each: the earlier exchange and the question), no-source, then ``spare_``."""
    plan: list[tuple[str, Candidate]] = []
    it = iter(cands)
    for _ in range(n_single):
        c = next(it, None)
        if c:
            plan.append((lang, c))
    for _ in range(n_multi):
        prev, c = next(it, None), next(it, None)
        if c and prev:
            plan.append((f"{lang}_multiturn", _with_history(c, prev, renderer, lang)))
    for _ in range(n_none):
        c = next(it, None)
        if c:
            plan.append(("no_source", c))
    plan.extend(("spare_" + lang, c) for c in it)
    return plan


@dataclass
class _SplitRun:
    """Rendering one split's examples: what it shares with the build (retriever, renderer, rng),
    the retrievals so far (far negatives borrow them) and the counts of dropped examples."""

    split: str
    cfg: DataConfig
    retriever: Any
    renderer: Renderer
    rng: random.Random
    retrieved: list[list[Passage]] = field(default_factory=list)
    cut_by_budget: int = 0
    too_long: int = 0

    def example(self, kind: str, c: Candidate, index: int) -> dict | None:
        """The row of one planned example, or None when it is dropped (no far negative to borrow,
        the passage budget cut its target, over ``max_tokens``)."""
        cfg = self.cfg
        retrieved = self.retriever.search(c.question, k=cfg.passages + 3, lang=c.lang)
        self.retrieved.append(retrieved)
        negative = None
        if kind == "no_source":
            chosen = self.negative_passages(c)
            if chosen is None:
                return None
            passages, negative = chosen
            target = self.renderer.no_evidence(c.lang)
        else:
            passages = _place_gold(c.gold, retrieved, cfg.passages, self.rng)
        messages, given = self.renderer.render(c.lang, c.question, passages, c.history)
        if kind != "no_source":
            n = next((i + 1 for i, p in enumerate(given) if p.doc_id == c.gold.doc_id), None)
            if n is None or (not c.zh_answer and not target_in_passage(c.units, given[n - 1].text)):
                self.cut_by_budget += 1
                return None
            target = cite(c.units, n)
        prompt = gemma_turns(messages)
        if self.renderer.count(prompt) + self.renderer.count(target) + 2 > cfg.max_tokens:
            self.too_long += 1
            return None
        return _row(f"{self.split}_{index:04d}_{c.id}", self.split, kind, c, negative, given, messages, target)

    def negative_passages(self, c: Candidate) -> tuple[list[Passage], str] | None:
        """The passages of a no-source example and its variant (``near`` with the configured share
        when enough off-topic passages remain, else ``far``); None when no far passages qualify."""
        cfg = self.cfg
        if self.rng.random() < cfg.share_near_negative:
            # This question's own retrieval, deeper, with every passage on its topic removed.
            deeper = self.retriever.search(c.question, k=40, lang=c.lang)  # deep: the top is on topic
            # Same-language passages only: topic terms cannot tell whether an English
            # passage is on a Chinese question's topic ("Gas in the Digestive Tract" is).
            passages = [p for p in deeper if doc_group(p.doc_id) != c.group and p.lang == c.lang
                        and off_topic(c.question, p)][: cfg.passages]
            if len(passages) == cfg.passages:
                return passages, "near"
        # Passages retrieved for another question of the build, none from this one's group.
        pool = [r for r in self.retrieved[:-1]
                if all(doc_group(p.doc_id) != c.group for p in r[: cfg.passages])]
        if not pool:
            return None
        return self.rng.choice(pool)[: cfg.passages], "far"


def _row(row_id: str, split: str, kind: str, c: Candidate, negative: str | None, given: list[Passage],
         messages: list[ChatMessage], target: str) -> dict[str, Any]:
    """One JSONL row: the serve-format messages and the target the trainer puts loss on."""
    return {
        "id": row_id, "split": split, "kind": kind, "lang": c.lang,
        "source": "engine" if kind == "no_source" else c.source, "group": c.group,
        "question": c.question, "gold_doc": None if kind == "no_source" else c.gold.doc_id,
        **({"negative": negative} if negative else {}),
        "passages": [p.doc_id for p in given],
        "messages": [{"role": m.role, "content": m.content} for m in messages],
        "target": target + GEMMA_END_OF_TURN,
        "reference": target,
    }


def _with_history(c: Candidate, prev: Candidate, renderer: Renderer, lang: str) -> Candidate:
    """``c`` asked after ``prev`` was answered; the stored answer carries the disclaimer, as the
    engine stores it."""
    answer = cite(prev.units, 1) + "\n\n" + renderer.disclaimer(lang)
    return Candidate(c.id, c.kind, c.lang, c.source, c.group, c.question, c.gold, c.units,
                     history=[("user", prev.question), ("assistant", answer)], zh_answer=c.zh_answer)


def _counts(rows: list[dict]) -> dict[str, Any]:
    return {"total": len(rows), "by_lang": dict(Counter(r["lang"] for r in rows)),
            "by_kind": dict(Counter(r["kind"] for r in rows)),
            "by_negative": dict(Counter(r["negative"] for r in rows if r.get("negative"))),
            "by_source": dict(Counter(r["source"] for r in rows)),
            "groups": len({r["group"] for r in rows})}


def _write_eval_file(out: Path, test_file: Path) -> None:
    """The test split as an ``eval generation`` question file (single-turn, reference = target).
    No-source rows are left out: their questions are answerable, only their training passages were
    swapped, and the engine retrieves on its own."""
    lines = []
    for _, row in read_jsonl(test_file, DataBuildError):
        if row["kind"].endswith("multiturn") or row["kind"] == "no_source":
            continue
        item = {"id": row["id"], "question": row["question"], "lang": row["lang"], "kind": row["kind"],
                "answerable": True, "reference": re.sub(r"\s*\[\d+\]", "", row["reference"])}
        lines.append(json.dumps(item, ensure_ascii=False))
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")


def data_card(cfg: DataConfig, stats: dict[str, Any]) -> str:
    lines = ["# MedChat grounded-QA finetuning data", "",
             "Built by `python -m chatbot.cli finetune data` (finetune/lora/data.py) from the default index.",
             "Every example is rendered in the engine's serve-time prompt format (system + user templates, "
             "three numbered passages cut to the passage budget, Gemma turns).", "",
             "## Counts", "", "| split | total | en | zh | kinds | sources | document groups |",
             "|---|---|---|---|---|---|---|"]
    for split, c in stats["splits"].items():
        kinds = ", ".join(f"{k} {v}" for k, v in sorted(c["by_kind"].items()))
        sources = ", ".join(f"{k} {v}" for k, v in sorted(c["by_source"].items()))
        lines.append(f"| {split} | {c['total']} | {c['by_lang'].get('en', 0)} | {c['by_lang'].get('zh', 0)} "
                     f"| {kinds} | {sources} | {c['groups']} |")
    lines += ["", "No-source examples by variant (near: the question's own retrieval with its topic removed; "
              "far: passages retrieved for another question): "
              + "; ".join(f"{split} " + (", ".join(f"{k} {v}" for k, v in sorted(c.get("by_negative", {}).items())) or "none")
                          for split, c in stats["splits"].items()) + ".",
              "", "## Filtering", "",
              "Dropped before sampling (duplicates by folded question text and by target text, targets "
              f"outside {cfg.en_words[0]}-{cfg.en_words[1]} English words / {cfg.zh_chars[0]}-{cfg.zh_chars[1]} "
              "Chinese characters, targets the passage budget cut off, prompts over "
              f"{cfg.max_tokens} tokens):", ""]
    lines += [f"- {k}: {v}" for k, v in sorted(stats["dropped"].items())]
    lines += ["", "## Splits", "",
              f"By document group (MedQuAD document; one Toyhom QA) from SHA-1 of the group id: {cfg.test_percent}% "
              f"test, {cfg.dev_percent}% dev, the rest train. Every group an evaluation file in `data/eval` "
              "refers to is forced into test, so no evaluation document is trained on. "
              f"Seed {cfg.seed}.", "",
              "## Licences", ""]
    lines += [f"- {k}: {v}" for k, v in LICENCES.items()]
    lines += ["", "No research-only data (medicalgpt-samples, chatdoctor-genmedgpt5k) is used.", ""]
    return "\n".join(lines)
