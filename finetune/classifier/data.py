"""Readers of the training and evaluation sets, each returning ``Example`` s with the project's
label keys (``chatbot.classifier.labels``), and a cached sentence encoder.

Sources (in ``../shared/data``, see each folder's SOURCE.txt):

- KUAKE-QIC train (zh intents, CC BY-NC-SA 4.0),
- MedQuAD question types (en intents, CC BY 4.0; qtypes mapped by ``labels.MEDQUAD_QTYPES``),
- GoEmotions Ekman (en emotions, CC BY 4.0; single-label comments only),
- SMP2020-EWECT (zh emotions, research only: evaluation, never training),
- the project's own examples in ``data/classifier/*.jsonl``.
"""

from __future__ import annotations

import json
import random
import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from chatbot.classifier.features import MAX_CHARS
from chatbot.classifier.labels import GOEMOTIONS_EKMAN, MEDQUAD_QTYPES, Kind, normalise_label
from knowledge_base.errors import KnowledgeBaseError
from knowledge_base.evaluation.jsonl import read_jsonl
from knowledge_base.records import sha256_text


class DataError(KnowledgeBaseError):
    """A training or evaluation file is missing or malformed."""


@dataclass(frozen=True)
class Example:
    text: str
    label: str  # project key
    source: str
    lang: str = ""


def _read_json(path: Path):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise DataError(f"cannot read {path}: {exc}") from exc


def kuake_qic(path: Path) -> list[Example]:
    return [Example(r["query"], normalise_label("intent", r["label"]), "kuake-qic", "zh")
            for r in _read_json(path)]


def ewect(path: Path) -> list[Example]:
    return [Example(r["content"], normalise_label("emotion", r["label"]), "smp2020-ewect", "zh")
            for r in _read_json(path)]


def goemotions_ekman(path: Path) -> list[Example]:
    """Single-label comments of a GoEmotions Ekman TSV (text, label indices, id); the 9% with two
    or more Ekman labels are left out, as a single-label classifier cannot be scored on them."""
    out = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc}") from exc
    for line in lines:
        parts = line.split("\t")
        if len(parts) < 2 or "," in parts[1]:
            continue
        out.append(Example(parts[0], GOEMOTIONS_EKMAN[int(parts[1])], "goemotions", "en"))
    return out


_QUESTION = re.compile(r'<Question qid="[^"]*" qtype="([^"]+)">(.*?)</Question>', re.S)


def medquad_questions(root: Path) -> list[Example]:
    out = []
    for xml in sorted(root.rglob("*.xml")):
        for qtype, question in _QUESTION.findall(xml.read_text(encoding="utf-8", errors="replace")):
            if qtype in MEDQUAD_QTYPES:
                out.append(Example(" ".join(question.split()), MEDQUAD_QTYPES[qtype], "medquad", "en"))
    return out


def project_examples(path: Path, kind: Kind) -> list[Example]:
    """``data/classifier/{intents,emotions}.jsonl``: {"text", "label", "lang"} written by the project."""
    return [Example(r["text"], normalise_label(kind, r["label"]), "project", r.get("lang", ""))
            for _, r in read_jsonl(path, DataError)]


def cap_per_class(examples: Sequence[Example], cap: int, seed: int) -> list[Example]:
    """At most ``cap`` examples per label, drawn at random with a fixed seed."""
    by: dict[str, list[Example]] = defaultdict(list)
    for e in examples:
        by[e.label].append(e)
    rng = random.Random(seed)
    out = []
    for label in sorted(by):
        items = by[label]
        out.extend(rng.sample(items, cap) if len(items) > cap else items)
    return out


def split(examples: Sequence[Example], held_share: float, seed: int) -> tuple[list[Example], list[Example]]:
    """Stratified (per label) split into (train, held back)."""
    by: dict[str, list[Example]] = defaultdict(list)
    for e in examples:
        by[e.label].append(e)
    rng = random.Random(seed)
    train, held = [], []
    for label in sorted(by):
        items = list(by[label])
        rng.shuffle(items)
        n = int(round(len(items) * held_share)) if len(items) > 1 else 0
        held.extend(items[:n])
        train.extend(items[n:])
    return train, held


def encode_cached(texts: Sequence[str], embedder, cache_path: Path | None,
                  log=None) -> np.ndarray:
    """Embed ``texts`` (cut to the classifier's MAX_CHARS, as at inference), reusing and filling
    an embedding cache (``knowledge_base.index.store.EmbeddingCache``) when a path is given."""
    cut = [t[:MAX_CHARS] for t in texts]
    if cache_path is None:
        return embedder.encode(cut)
    from knowledge_base.index.store import EmbeddingCache

    cache = EmbeddingCache(cache_path)
    try:
        hashes = [sha256_text(t) for t in cut]
        embedder.warm_up()
        dim = embedder.dim
        found = cache.get_many(embedder.name, sorted(set(hashes)), dim)
        missing = sorted({h: t for h, t in zip(hashes, cut) if h not in found}.items())
        step = 512
        for start in range(0, len(missing), step):
            part = missing[start:start + step]
            vecs = embedder.encode([t for _, t in part])
            cache.put_many(embedder.name, ((h, v) for (h, _), v in zip(part, vecs)))
            found.update({h: v for (h, _), v in zip(part, vecs)})
            if log:
                log(f"encoded {min(start + step, len(missing))}/{len(missing)} new texts")
        return np.stack([found[h] for h in hashes]).astype(np.float32) if hashes else \
            np.zeros((0, dim), dtype=np.float32)
    finally:
        cache.close()


def labels_of(examples: Iterable[Example]) -> list[str]:
    return [e.label for e in examples]
