"""MedQuAD XML (Ben Abacha & Demner-Fushman 2019, CC BY 4.0): one Document per answered QAPair.

Most files look like ``<Document id source url><Focus/><QAPairs><QAPair pid><Question qid qtype/>
<Answer/></QAPair>...``. A few real files use older spellings of the same schema, which are read
too: ``<doc docid corpus>`` with ``<doctitle-focus>``, ``<qaPairs>``, ``<pair>``, lower-case
``<question>``/``<answer>`` (6_NINDS_QA), and ``<DiseaseFile fid source>`` (9_CDC_QA).

ElementTree (expat) never fetches external entities or DTDs, so a local file cannot make it read
other files or the network; expat >= 2.4.1 also caps entity expansion ("billion laughs"). That is
why defusedxml is not needed here.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

from knowledge_base.errors import LoaderError
from knowledge_base.records import Document
from knowledge_base.text import clean_text

LICENSE = "CC BY 4.0"
_ROOTS = {"document", "doc", "diseasefile"}
# Inline bullet lists ("Key Points  - a    - b", GHR "resources:  - Gene Review ...") become one
# item per line so the chunker does not glue unrelated points into one sentence.
_INLINE_BULLET = re.compile(r"(?<=\S)[ \t]{2,}- ")  # after text: a bullet that already starts a line stays


def _child(elem: ET.Element, *names: str) -> ET.Element | None:
    wanted = {n.lower() for n in names}
    return next((c for c in elem if c.tag.lower() in wanted), None)


def _text(elem: ET.Element | None) -> str:
    return "".join(elem.itertext()).strip() if elem is not None else ""


def _attr(elem: ET.Element, *names: str) -> str:
    return next((elem.get(n, "").strip() for n in names if elem.get(n, "").strip()), "")


def parse(data: bytes) -> ET.Element:
    try:
        return ET.fromstring(data)  # bytes: expat honours the encoding in the XML declaration
    except ET.ParseError as exc:
        raise LoaderError(f"malformed XML: {exc}") from exc


def load_medquad(data: bytes, path: Path, rel: str) -> list[Document]:
    root = parse(data)
    pairs = _child(root, "QAPairs")
    if root.tag.lower() not in _ROOTS or pairs is None:
        raise LoaderError(f"unsupported XML: root <{root.tag}> is not a MedQuAD document with QAPairs")
    doc_id, source = _attr(root, "id", "docid", "fid"), _attr(root, "source", "corpus")
    if not doc_id or not source:
        raise LoaderError("MedQuAD document without id or source attribute")
    # CancerGov ships sub-documents (0000013_2_1.xml ... ) that repeat their parent's id attribute
    # but answer other topics; their file stem (0000013_2_1) keeps them apart. For every other file
    # the stem equals the id, so ids stay those of MedQuAD's published relevance judgments.
    stem = path.stem
    if stem != doc_id and stem.startswith(doc_id + "_"):
        doc_id = stem
    focus = clean_text(_text(_child(root, "Focus", "doctitle-focus")))
    synonyms = [s for s in (clean_text(_text(e)) for e in root.iter("Synonym")) if s]
    docs = []
    for n, pair in enumerate((p for p in pairs if p.tag.lower() in {"qapair", "pair"}), start=1):
        question = _child(pair, "Question")
        raw = _text(_child(pair, "Answer"))
        # the lookbehind regex is slow; most answers have no inline bullet at all
        answer = clean_text(_INLINE_BULLET.sub("\n- ", raw) if "  - " in raw or "\t- " in raw else raw)
        if not answer:
            continue  # MedQuAD withheld some answers (copyright); a question alone answers nothing
        pid = pair.get("pid") or str(n)  # every real pair has a pid; position is a safe fallback
        docs.append(Document(
            id=f"{source}_{doc_id}_Sec{pid}",
            text=answer,
            title=focus,
            url=root.get("url", "").strip(),
            source=f"MedQuAD/{source}",
            lang="en",
            license=LICENSE,
            question=clean_text(_text(question)),
            section=question.get("qtype", "").strip() if question is not None else "",
            path=rel,
            extra={"qid": question.get("qid", "") if question is not None else "", "focus": focus,
                   "synonyms": synonyms},
        ))
    return docs
