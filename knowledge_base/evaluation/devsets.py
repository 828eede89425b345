"""Generate the large, automatically labelled retrieval dev sets under ``data/eval/``.

Two files are written (JSONL, one question per line, the format read by ``medchat eval retrieval``):

``retrieval_en_medquad.jsonl`` (kind ``medquad_question``)
    A seeded random sample of answered MedQuAD QAPairs. The query is the stored question, but when
    the Document lists ``<Synonyms>`` the focus string inside the question is replaced by a
    seeded-random synonym, so the query is not a verbatim copy of indexed text
    (``"paraphrased": true``). ``relevant`` = that QAPair's document id
    (``{source}_{Document id}_Sec{pid}``).

``retrieval_zh_toyhom.jsonl`` (kind ``toyhom_ask``)
    Seeded random Toyhom rows. The query is the ``ask`` column (the patient's own description,
    which the index does not hold: it holds title + answer), cut to 300 characters.
    ``relevant`` = ``Toyhom_IM_{row}`` (1-based data row, header excluded).

The corpus is parsed here with the standard library only (ElementTree, csv), independently of the
project loaders, so the labels double as a check on the loaders' id scheme. Output is
deterministic: the same corpus and seed give byte-identical files.

Usage::

    python -m knowledge_base.evaluation.devsets --corpus data/corpus --out data/eval
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import re
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Iterator

ASK_MAX_CHARS = 300
EN_FILE = "retrieval_en_medquad.jsonl"
ZH_FILE = "retrieval_zh_toyhom.jsonl"


# --------------------------------------------------------------------------- corpus readers
def _child(elem: ET.Element, *names: str) -> ET.Element | None:
    """First child whose tag matches one of ``names`` case-insensitively (MedQuAD mixes
    ``<QAPairs>/<QAPair>/<Question>`` with older ``<qaPairs>/<pair>/<question>`` spellings)."""
    wanted = {n.lower() for n in names}
    return next((c for c in elem if c.tag.lower() in wanted), None)


def _text(elem: ET.Element | None) -> str:
    return " ".join("".join(elem.itertext()).split()) if elem is not None else ""


def iter_medquad(corpus_dir: Path) -> Iterator[dict]:
    """Every answered MedQuAD QAPair under ``corpus_dir/medquad``, in sorted file order."""
    for path in sorted((Path(corpus_dir) / "medquad").glob("*/*.xml")):
        root = ET.parse(path).getroot()
        pairs = _child(root, "QAPairs")
        if pairs is None:
            continue
        doc_id = next((root.get(a, "").strip() for a in ("id", "docid", "fid") if root.get(a, "").strip()), "")
        source = next((root.get(a, "").strip() for a in ("source", "corpus") if root.get(a, "").strip()), "")
        if not doc_id or not source:
            continue
        if path.stem != doc_id and path.stem.startswith(doc_id + "_"):
            doc_id = path.stem  # CancerGov sub-documents, as in knowledge_base.loaders.medquad
        focus = _text(_child(root, "Focus", "doctitle-focus"))
        synonyms = [s for s in (_text(e) for e in root.iter("Synonym")) if s]
        qapairs = [p for p in pairs if p.tag.lower() in {"qapair", "pair"}]
        for n, pair in enumerate(qapairs, start=1):
            if not _text(_child(pair, "Answer")):
                continue  # answers withheld by MedQuAD are not in the index
            question = _child(pair, "Question")
            yield {
                "id": f"{source}_{doc_id}_Sec{pair.get('pid') or n}",
                "collection": path.parent.name,
                "focus": focus,
                "synonyms": synonyms,
                "qtype": question.get("qtype", "").strip() if question is not None else "",
                "question": _text(question),
            }


def iter_toyhom(corpus_dir: Path) -> Iterator[dict]:
    """Every Toyhom row with a non-empty answer; ``row`` is the 1-based data row number."""
    for path in sorted((Path(corpus_dir) / "toyhom").glob("*.csv")):
        with path.open(encoding="utf-8-sig", newline="") as fh:
            reader = csv.reader(fh)
            header = [h.strip().lower() for h in next(reader, [])]
            col = {name: header.index(name) for name in ("department", "title", "ask", "answer") if name in header}
            if "answer" not in col:
                continue

            def cell(row: list[str], name: str) -> str:
                i = col.get(name)
                return row[i].strip() if i is not None and i < len(row) else ""

            for n, row in enumerate(reader, start=1):
                if not cell(row, "answer"):
                    continue
                yield {"id": f"{path.stem}_{n}", "row": n, "department": cell(row, "department"),
                       "title": cell(row, "title"), "ask": cell(row, "ask")}


def corpus_doc_ids(corpus_dir: Path) -> set[str]:
    """All document ids of the shipped corpus (MedQuAD + Toyhom)."""
    return {d["id"] for d in iter_medquad(corpus_dir)} | {d["id"] for d in iter_toyhom(corpus_dir)}


# --------------------------------------------------------------------------- generators
def paraphrase_question(question: str, focus: str, synonyms: list[str], rng: random.Random) -> tuple[str, bool]:
    """Replace the focus inside ``question`` by a random synonym that differs from it.

    Returns ``(question, paraphrased)``; the question is unchanged when there is no usable synonym
    or the focus does not occur in it."""
    focus = focus.strip()
    candidates = sorted({s for s in synonyms if s.strip() and s.strip().lower() != focus.lower()})
    if not focus or not candidates:
        return question, False
    pattern = re.compile(re.escape(focus), re.IGNORECASE)
    if not pattern.search(question):
        return question, False
    synonym = rng.choice(candidates)
    new = pattern.sub(lambda _m: synonym, question, count=1)
    return new, new != question


def _write_jsonl(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="\n") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")


def build_en_medquad(corpus_dir: Path, n: int, seed: int) -> list[dict]:
    pairs = [p for p in iter_medquad(corpus_dir) if p["question"]]
    rng = random.Random(seed)
    sample = rng.sample(pairs, min(n, len(pairs)))
    rows = []
    for i, p in enumerate(sample, start=1):
        question, paraphrased = paraphrase_question(p["question"], p["focus"], p["synonyms"], rng)
        rows.append({"id": f"en_medquad_{i:04d}", "question": question, "relevant": [p["id"]],
                     "lang": "en", "kind": "medquad_question", "paraphrased": paraphrased,
                     "qtype": p["qtype"], "collection": p["collection"]})
    return rows


def build_zh_toyhom(corpus_dir: Path, n: int, seed: int) -> list[dict]:
    docs = [d for d in iter_toyhom(corpus_dir) if d["ask"]]
    rng = random.Random(seed)
    sample = rng.sample(docs, min(n, len(docs)))
    return [{"id": f"zh_toyhom_{i:04d}", "question": d["ask"][:ASK_MAX_CHARS], "relevant": [d["id"]],
             "lang": "zh", "kind": "toyhom_ask", "department": d["department"]}
            for i, d in enumerate(sample, start=1)]


def build_generated_devsets(corpus_dir: Path, out_dir: Path, n_en: int = 500, n_zh: int = 500,
                            seed: int = 13) -> dict[str, int]:
    """Write both generated dev sets into ``out_dir``; returns ``{file name: rows written}``."""
    corpus_dir, out_dir = Path(corpus_dir), Path(out_dir)
    en = build_en_medquad(corpus_dir, n_en, seed)
    zh = build_zh_toyhom(corpus_dir, n_zh, seed)
    _write_jsonl(out_dir / EN_FILE, en)
    _write_jsonl(out_dir / ZH_FILE, zh)
    return {EN_FILE: len(en), ZH_FILE: len(zh)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Generate MedQuAD / Toyhom retrieval dev sets.")
    parser.add_argument("--corpus", type=Path, default=Path("data/corpus"))
    parser.add_argument("--out", type=Path, default=Path("data/eval"))
    parser.add_argument("--n-en", type=int, default=500)
    parser.add_argument("--n-zh", type=int, default=500)
    parser.add_argument("--seed", type=int, default=13)
    args = parser.parse_args(argv)
    start = time.perf_counter()
    counts = build_generated_devsets(args.corpus, args.out, args.n_en, args.n_zh, args.seed)
    for name, count in counts.items():
        print(f"{args.out / name}: {count} questions")
    print(f"done in {time.perf_counter() - start:.1f}s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
