"""Training and measuring sets of the emergency detector.

- Written sets (project-written, MIT, shipped): ``data/safety/train/*.jsonl`` (batches written by
  helpers over every emergency category and as many hard negatives) and the earlier safety dev
  set and blind rounds ``data/eval/safety_dev.jsonl``, ``safety_holdout{,2,3,4,4b}.jsonl`` (their
  freeze figures are reported; since then they are training data). The rounds named in
  ``FROZEN_ROUNDS`` are never read here.
- The answerer's blind question rounds (``data/eval/answer_dev_blind*.jsonl``, project-written)
  as ordinary messages.
- Project classifier examples (``data/classifier/*.jsonl``: greetings, administrative and
  out-of-scope messages, intents, emotional statements) as ordinary messages: short chit-chat
  must not land in the unsure band.
- Real ordinary questions (research-only, read from ``../shared/data`` at training time, never
  committed): MedQuAD questions, KUAKE-QIC train queries, Toyhom titles and questions, ChatDoctor
  patient inputs. Each pool is split by a stable hash of the text: one half may train, the
  other half only measures false alarms (``real_ordinary(split="measure")``).
"""

from __future__ import annotations

import csv
import json
import re
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Literal

from chatbot.settings import DATA_DIR, EVAL_DIR, PROJECT_ROOT
from knowledge_base.evaluation.jsonl import read_jsonl

Split = Literal["train", "measure"]
TRAIN_DIR = DATA_DIR / "safety" / "train"
SHARED_DATA = PROJECT_ROOT.parent / "shared" / "data"
WRITTEN_EVAL_SETS = ("safety_dev.jsonl", "safety_holdout.jsonl", "safety_holdout2.jsonl",
                     "safety_holdout3.jsonl", "safety_holdout4.jsonl", "safety_holdout4b.jsonl",
                     # reported at freeze (docs/SAFETY.md, detectors emergency-lr-15ea3e5c and
                     # emergency-lr-f9fa12ce), then training data
                     "safety_holdout5.jsonl", "safety_holdout6.jsonl", "safety_holdout7.jsonl",
                     "safety_holdout8.jsonl", "safety_holdout9.jsonl", "safety_holdout10.jsonl",
                     # reported at freeze with detector emergency-lr-ed456f00, then training data
                     "safety_holdout11.jsonl", "safety_holdout12.jsonl",
                     # reported at freeze with detector emergency-lr-610331df, then training data
                     "safety_holdout13.jsonl", "safety_holdout14.jsonl",
                     # reported at freeze with detector emergency-lr-93fbc294, then training data
                     "safety_holdout15.jsonl", "safety_holdout16.jsonl",
                     # reported at freeze with detector emergency-lr-b1bb504a, then training data
                     "safety_holdout17.jsonl", "safety_holdout18.jsonl",
                     # reported at freeze with detector emergency-lr-880cc6aa, then training data
                     "safety_holdout19.jsonl", "safety_holdout20.jsonl",
                     # reported at freeze with detector emergency-lr-97fc5b62, then training data
                     "safety_holdout21.jsonl", "safety_holdout22.jsonl")
# Blind rounds written for the detector's own freeze figures: never training data until reported.
FROZEN_ROUNDS = ("safety_holdout23.jsonl", "safety_holdout24.jsonl")
# The answerer's blind question rounds (issue 15): everyday questions, none an emergency, written
# from the library's pages in consumer wording. The detector flagged 2 of round 4's 160 ("my mum is
# 78 ... dizzy when she stands up ... blood pressure pills"), so they are taught as ordinary.
ANSWER_DEV_SETS = ("answer_dev_blind.jsonl", "answer_dev_blind2.jsonl", "answer_dev_blind3.jsonl",
                   "answer_dev_blind4.jsonl")
POOLS = ("medquad", "kuake", "toyhom", "chatdoctor")


@dataclass(frozen=True)
class Example:
    text: str
    emergency: bool
    category: str
    lang: str
    source: str


def written_examples(train_dir: Path = TRAIN_DIR, eval_dir: Path = EVAL_DIR) -> list[Example]:
    files = sorted(train_dir.glob("*.jsonl")) + [eval_dir / n for n in WRITTEN_EVAL_SETS]
    out = []
    for path in files:
        assert path.name not in FROZEN_ROUNDS
        for _, row in read_jsonl(path):
            expect = row.get("expect")
            if expect not in ("emergency", "not_emergency") or not str(row.get("text", "")).strip():
                continue
            out.append(Example(str(row["text"]), expect == "emergency", str(row.get("category", "")),
                               str(row.get("lang", "")), path.stem))
    return out


def classifier_examples(folder: Path = DATA_DIR / "classifier") -> list[Example]:
    return [Example(str(row["text"]), False, "ordinary", str(row.get("lang", "")), "classifier_examples")
            for path in sorted(folder.glob("*.jsonl")) for _, row in read_jsonl(path)
            if str(row.get("text", "")).strip()]


def answer_dev_examples(eval_dir: Path = EVAL_DIR, names: Iterable[str] = ANSWER_DEV_SETS) -> list[Example]:
    """The answerer's dev questions as ordinary messages (a missing file is skipped)."""
    out = []
    for name in names:
        path = eval_dir / name
        if not path.is_file():
            continue
        out.extend(Example(str(row["question"]), False, "ordinary", str(row.get("lang", "")), "answer_dev")
                   for _, row in read_jsonl(path) if str(row.get("question", "")).strip())
    return out


def _half(text: str) -> Split:
    # A stable hash, not hash(): the same question lands in the same half on every machine.
    return "train" if zlib.crc32(text.encode("utf-8")) % 2 == 0 else "measure"


_QUESTION = re.compile(r"<Question[^>]*>(.*?)</Question>", re.S)


def _medquad(root: Path) -> Iterable[tuple[str, str]]:
    for path in sorted(root.rglob("*.xml")):
        for q in _QUESTION.findall(path.read_text(encoding="utf-8", errors="replace")):
            yield " ".join(q.split()), "en"


def _kuake(root: Path) -> Iterable[tuple[str, str]]:
    for row in json.loads((root / "KUAKE-QIC_train.json").read_text(encoding="utf-8")):
        yield row["query"], "zh"


def _toyhom(root: Path) -> Iterable[tuple[str, str]]:
    for path in sorted(root.glob("*.csv")):
        with path.open(encoding="utf-8", errors="replace", newline="") as fh:
            for row in csv.DictReader(fh):
                yield f"{row.get('title', '')} {row.get('ask', '')}".strip(), "zh"


def _chatdoctor(root: Path) -> Iterable[tuple[str, str]]:
    for row in json.loads((root / "chatdoctor5k.json").read_text(encoding="utf-8")):
        yield row["input"], "en"


_READERS = {"medquad": ("medquad", _medquad), "kuake": ("kuake-qic", _kuake),
            "toyhom": ("toyhom-im", _toyhom), "chatdoctor": ("chatdoctor-genmedgpt5k", _chatdoctor)}


def real_ordinary(split: Split, per_pool: int, shared: Path = SHARED_DATA,
                  pools: Iterable[str] = POOLS) -> list[Example]:
    """Up to ``per_pool`` distinct real questions of each pool's ``split`` half, spread over the
    whole pool (ordered by a stable hash, so deterministic). A missing pool is skipped (the
    caller reports what it got)."""
    out = []
    for pool in pools:
        folder, reader = _READERS[pool]
        if not (shared / folder).is_dir():
            continue
        texts = {}
        for text, lang in reader(shared / folder):
            text = text.strip()
            if text and _half(text) == split:
                texts.setdefault(text, lang)
        ordered = sorted(texts, key=lambda t: zlib.crc32(("order:" + t).encode("utf-8")))
        out.extend(Example(t, False, "ordinary", texts[t], pool) for t in ordered[:per_pool])
    return out
