"""Document loaders: turn source files (MedQuAD XML, QA CSV, JSONL, Markdown, text, HTML, PDF)
into ``Document`` records. ``load_sources`` never raises for a bad file: it records why the file
was skipped and goes on, so one broken file cannot stop an index build."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from knowledge_base.errors import LoaderError
from knowledge_base.loaders.jsonl import load_jsonl
from knowledge_base.loaders.medquad import load_medquad
from knowledge_base.loaders.tabular import load_csv
from knowledge_base.loaders.textual import load_html, load_markdown, load_pdf, load_txt
from knowledge_base.records import Document, SkippedFile

__all__ = ["LOADER_VERSION", "FileInfo", "FileLoad", "KnownFile", "LoadResult", "MAX_FILE_BYTES",
           "iter_files", "load_file", "load_sources", "read_source"]

# Bump whenever any loader (or clean_text) gives different documents for the same bytes: an
# incremental build reuses an unchanged file's documents only while this matches.
LOADER_VERSION = "3"

# Every loader reads its file whole into memory (and a single-document format becomes one
# Document). Real sources are far smaller (the largest MedQuAD XML is 60 KB); a 50 MB+ file in a
# corpus folder is a dump or archive put there by mistake, and would stall the build.
MAX_FILE_BYTES = 50 * 1024 * 1024

# (bytes, file path, path relative to the source root) -> documents, or (documents, line problems)
_Loader = Callable[[bytes, Path, str], list[Document] | tuple[list[Document], list[SkippedFile]]]
_LOADERS: dict[str, _Loader] = {
    ".xml": load_medquad, ".csv": load_csv, ".jsonl": load_jsonl, ".md": load_markdown,
    ".markdown": load_markdown, ".txt": load_txt, ".html": load_html, ".htm": load_html,
    ".pdf": load_pdf,
}
_BINARY_TYPES = {".pdf"}  # every other supported type is text and must not contain NUL bytes
# Provenance files that sit next to a corpus; they describe the data, they are not data.
_NOT_DOCUMENT_PREFIXES = ("LICENSE", "README", "ATTRIBUTION")


@dataclass(frozen=True)
class FileInfo:
    """A loaded file. ``path`` is relative to its source root, like ``Document.path``, so the
    index builder can match files to documents and reuse unchanged ones (same sha256)."""

    path: str
    sha256: str
    size: int
    n_documents: int
    problems: tuple[SkippedFile, ...] = ()  # bad lines of a JSONL file that was still loaded


@dataclass(frozen=True)
class KnownFile:
    """A file of the previous build: if its bytes still hash to ``sha256``, its documents
    (``doc_ids``) are taken from that build instead of being parsed again."""

    sha256: str
    doc_ids: tuple[str, ...]
    problems: tuple[SkippedFile, ...] = ()  # reported again, as if the file had been parsed


@dataclass
class LoadResult:
    documents: list[Document] = field(default_factory=list)
    skipped: list[SkippedFile] = field(default_factory=list)  # whole files, JSONL lines, duplicate ids
    files: list[FileInfo] = field(default_factory=list)  # every loaded file, parsed or reused
    reused_doc_ids: list[str] = field(default_factory=list)  # from unchanged known files


@dataclass(frozen=True)
class FileLoad:
    """One file's outcome: its documents plus per-line problems that did not stop the file."""

    documents: list[Document]
    problems: list[SkippedFile]
    sha256: str
    size: int


def _is_document_name(name: str) -> bool:
    upper = name.upper()
    provenance = Path(upper).stem == "SOURCE" or upper.startswith(_NOT_DOCUMENT_PREFIXES)
    return not (name.startswith(".") or provenance)


def _walk(paths: Sequence[str | Path]) -> Iterator[tuple[Path, Path]]:
    """(file, source root) pairs. A file given directly is its own source (root = its folder)."""
    for given in map(Path, paths):
        if not given.is_dir():
            yield given, given.parent  # a missing path is yielded too: loading it reports the error
            continue
        found = []
        # os.walk without followlinks: a symlinked folder cannot loop the walk
        for folder, dirs, files in os.walk(given):
            dirs[:] = [d for d in dirs if not d.startswith(".")]  # in place: prunes the walk
            found += [Path(folder) / name for name in files if _is_document_name(name)]
        # sorted by path components, so "b/a/y.txt" < "b/z.md" whatever the file system's order
        for file in sorted(found, key=lambda f: f.relative_to(given).parts):
            yield file, given


def iter_files(paths: Sequence[str | Path]) -> Iterator[Path]:
    """The files under ``paths`` in a deterministic order; hidden entries and provenance files
    (SOURCE.txt, LICENSE*, README*, ATTRIBUTION*) inside folders are left out."""
    return (file for file, _ in _walk(paths))


def _read(path: Path, ext: str) -> bytes:
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise LoaderError(f"file too large ({size:,} bytes; limit {MAX_FILE_BYTES:,})")
        data = path.read_bytes()
    except OSError as exc:
        raise LoaderError(f"cannot read file: {exc.strerror or exc}") from exc
    if not data.removeprefix(b"\xef\xbb\xbf").strip():
        raise LoaderError("empty file")
    if ext not in _BINARY_TYPES and b"\x00" in data:
        raise LoaderError("binary content, not text")
    return data


def _rel(path: Path, root: Path | None) -> str:
    return path.relative_to(root).as_posix() if root is not None else path.name


def _read_checked(path: Path) -> tuple[bytes, str]:
    ext = path.suffix.lower()
    if ext not in _LOADERS:
        raise LoaderError(f"unsupported file type {ext}" if ext else "unsupported file type (no extension)")
    return _read(path, ext), ext


def read_source(path: Path, root: Path | None = None, data: bytes | None = None) -> FileLoad:
    """Load one file with its hash and any per-line problems. Raises LoaderError."""
    path = Path(path)
    if data is None:
        data, ext = _read_checked(path)
    else:
        ext = path.suffix.lower()
    loaded = _LOADERS[ext](data, path, _rel(path, root))
    documents, problems = loaded if isinstance(loaded, tuple) else (loaded, [])
    return FileLoad(documents, problems, hashlib.sha256(data).hexdigest(), len(data))


def load_file(path: Path, root: Path | None = None) -> list[Document]:
    """The documents of one file. Raises LoaderError with the reason. Per-line problems of a
    partly bad JSONL file are not raised; ``read_source``/``load_sources`` report them."""
    return read_source(path, root).documents


def load_sources(paths: Sequence[str | Path], known: Mapping[str, KnownFile] | None = None) -> LoadResult:
    """Every document under ``paths``. ``known`` (relative path -> KnownFile) lets an incremental
    build skip parsing files whose bytes did not change."""
    result = LoadResult()
    first_seen: dict[str, str] = {}  # document id -> file that provided it
    for path, root in _walk(paths):
        rel = _rel(path, root)
        try:
            data, _ = _read_checked(path)
            prior = (known or {}).get(rel)
            if prior is not None and not any(d in first_seen for d in prior.doc_ids):
                sha = hashlib.sha256(data).hexdigest()
                if sha == prior.sha256:
                    first_seen.update((d, str(path)) for d in prior.doc_ids)
                    result.reused_doc_ids.extend(prior.doc_ids)
                    result.skipped += prior.problems
                    result.files.append(FileInfo(rel, sha, len(data), len(prior.doc_ids),
                                                 prior.problems))
                    continue
            loaded = read_source(path, root, data)
        except LoaderError as exc:
            result.skipped.append(SkippedFile(str(path), exc.message))
            continue
        kept = 0
        for doc in loaded.documents:
            if doc.id in first_seen:  # first wins: the order is deterministic, so is the choice
                result.skipped.append(SkippedFile(str(path), f"duplicate document id {doc.id} "
                                                             f"(first seen in {first_seen[doc.id]})"))
                continue
            first_seen[doc.id] = str(path)
            result.documents.append(doc)
            kept += 1
        result.skipped += loaded.problems
        result.files.append(FileInfo(rel, loaded.sha256, loaded.size, kept, tuple(loaded.problems)))
    return result
