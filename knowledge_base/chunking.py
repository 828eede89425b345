"""Language-aware chunking on top of langchain-text-splitters.

- Chinese splits at 。！？； (then ，), English at sentence ends; chunk sizes differ per language
  (see :class:`ChunkerConfig`).
- Documents with Markdown headings (Markdown, HTML and PDF loaders keep headings as ``#`` lines)
  are first cut into sections, and each chunk carries its section title.
- Question-answer documents keep the question at the head of every chunk of the answer, so a
  patient's question can match a stored question whichever part of the answer it needs.
"""

from __future__ import annotations

import re
from functools import cached_property

from knowledge_base.config import ChunkerConfig
from knowledge_base.records import Chunk, Document
from knowledge_base.text import detect_lang

_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$", re.MULTILINE)

# Order matters: the splitter tries each separator in turn, keeping pieces under the size limit.
_SEPARATORS_ZH = ["\n\n", "\n", "。", "！", "？", "；", "!", "?", ";", "，", ",", " ", ""]
_SEPARATORS_EN = ["\n\n", "\n", ". ", "! ", "? ", "; ", "。", "！", "？", ", ", " ", ""]


class Chunker:
    def __init__(self, config: ChunkerConfig | None = None) -> None:
        self.config = config or ChunkerConfig()

    @cached_property
    def _splitters(self):
        # Imported here: langchain pulls pydantic models, too heavy for module import time.
        from langchain_text_splitters import RecursiveCharacterTextSplitter

        def make(size: int, separators: list[str]):
            return RecursiveCharacterTextSplitter(
                chunk_size=size, chunk_overlap=int(size * self.config.overlap_ratio),
                separators=separators, keep_separator="end", strip_whitespace=True)

        return {"zh": make(self.config.chunk_chars_zh, _SEPARATORS_ZH),
                "en": make(self.config.chunk_chars_en, _SEPARATORS_EN)}

    def sections(self, text: str) -> list[tuple[str, str]]:
        """(section title, body) pairs; text before the first heading has an empty title."""
        matches = list(_HEADING.finditer(text))
        if not matches:
            return [("", text)]
        out = []
        if matches[0].start() > 0:
            out.append(("", text[:matches[0].start()]))
        for i, m in enumerate(matches):
            end = matches[i + 1].start() if i + 1 < len(matches) else len(text)
            out.append((m.group(2).strip(), text[m.end():end]))
        return [(title, body.strip()) for title, body in out if body.strip()]

    def split(self, doc: Document) -> list[Chunk]:
        lang = doc.lang if doc.lang in ("zh", "en") else detect_lang(doc.text)
        splitter = self._splitters[lang]
        pieces: list[tuple[str, str]] = []
        for section, body in self.sections(doc.text):
            for piece in splitter.split_text(body):
                if pieces and len(piece) < self.config.min_chunk_chars and pieces[-1][0] == section:
                    # A sliver (e.g. a closing "Thanks.") adds noise to the index; glue it back on.
                    pieces[-1] = (section, pieces[-1][1] + ("" if lang == "zh" else " ") + piece)
                else:
                    pieces.append((section, piece))
        chunks = []
        for n, (section, piece) in enumerate(pieces):
            text = f"{doc.question}\n{piece}" if doc.question else piece
            lead = doc.question or doc.title
            embed_text = (f"{lead}\n{piece}" if lead else piece)[: self.config.embed_chars]
            chunks.append(Chunk(
                id=f"{doc.id}#c{n}", doc_id=doc.id, n=n, text=text, embed_text=embed_text,
                title=doc.title, url=doc.url, source=doc.source, lang=lang,
                section=doc.section or section, question=doc.question, license=doc.license))
        return chunks
