"""Build an index directory from sources: load -> chunk -> tokenise -> embed -> FAISS + BM25 +
SQLite -> manifest -> atomic swap.

Incremental by default: a document whose content hash matches the previous build reuses its
chunks and tokens, and every chunk whose embedded text was seen before (by this embedder) reuses
its vector from the embedding cache. ``full=True`` re-chunks and re-tokenises everything (the
cache still saves re-embedding identical text; delete ``cache/`` to force that too).

Atomic: the new build is written into ``builds/.tmp-<id>`` and only a finished build (manifest
written last) is renamed and pointed to by the ``current`` symlink. A build killed at any moment
leaves the previous build serving.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import shutil
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from knowledge_base.chunking import Chunker
from knowledge_base.config import ChunkerConfig, IndexConfig
from knowledge_base.embedders import Embedder
from knowledge_base.errors import BuildError, IndexCorruptError, IndexNotFoundError
from knowledge_base.index.bm25 import BM25Index
from knowledge_base.index.dense import DenseIndex
from knowledge_base.index.manifest import IndexLayout, read_manifest, versions, write_manifest
from knowledge_base.index.store import CHUNKS_FILE, ChunkStore, ChunkWriter, EmbeddingCache
from knowledge_base.loaders import LOADER_VERSION, KnownFile, LoadResult, load_sources
from knowledge_base.records import SkippedFile, sha256_text
from knowledge_base.tokenize import TOKENIZER_VERSION, tokenize

log = logging.getLogger(__name__)

# A progress callback gets (stage, done, total); the UI's rebuild panel uses it, the CLI uses tqdm.
Progress = Callable[[str, int, int], None]

EMBED_BATCH = 256  # vectors committed to the cache every batch: a kill loses at most this many


@dataclass
class BuildReport:
    index_dir: str
    build_id: str
    documents: int
    chunks: int
    files: int
    reused_documents: int
    embedded_vectors: int
    cached_vectors: int
    skipped: list[SkippedFile] = field(default_factory=list)
    seconds: float = 0.0
    stage_seconds: dict[str, float] = field(default_factory=dict)
    dense_index: str = "flat"
    embedder: str = ""

    def to_json(self) -> dict:
        return {
            "index_dir": self.index_dir, "build_id": self.build_id, "documents": self.documents,
            "chunks": self.chunks, "files": self.files, "reused_documents": self.reused_documents,
            "embedded_vectors": self.embedded_vectors, "cached_vectors": self.cached_vectors,
            "skipped": [{"path": s.path, "reason": s.reason} for s in self.skipped],
            "seconds": round(self.seconds, 2),
            "stage_seconds": {k: round(v, 2) for k, v in self.stage_seconds.items()},
            "dense_index": self.dense_index, "embedder": self.embedder,
        }


class _Tqdm:
    """tqdm on stderr when it is a terminal (or forced); silent otherwise."""

    def __init__(self, enabled: bool | None, callback: Progress | None) -> None:
        self.enabled = sys.stderr.isatty() if enabled is None else enabled
        self.callback = callback

    def __call__(self, stage: str, total: int):
        from tqdm import tqdm

        bar = tqdm(total=total, desc=stage, unit="chunk", disable=not self.enabled, leave=False)
        callback = self.callback

        def update(n: int) -> None:
            bar.update(n)
            if callback:
                callback(stage, bar.n, total)

        update.close = bar.close  # type: ignore[attr-defined]
        return update


class _BuildLock:
    def __init__(self, path: Path) -> None:
        self.path = path

    def __enter__(self):
        self.fh = open(self.path, "w")
        try:
            fcntl.flock(self.fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            self.fh.close()
            raise BuildError(f"another build of {self.path.parent} is running",
                             hint="wait for it to finish; the current index keeps serving") from exc
        return self

    def __exit__(self, *exc) -> None:
        fcntl.flock(self.fh, fcntl.LOCK_UN)
        self.fh.close()


def _previous_store(layout: IndexLayout, chunker: ChunkerConfig,
                    full: bool) -> tuple[ChunkStore | None, dict[str, KnownFile]]:
    """The serving build's store when its chunks can be reused, and its unchanged-file map when
    even parsing can be skipped (same loader version)."""
    if full:
        return None, {}
    try:
        build = layout.current_build()
        manifest = read_manifest(build)
        store = ChunkStore(build / CHUNKS_FILE)
    except (IndexNotFoundError, IndexCorruptError) as exc:
        log.info("no reusable previous build: %s", exc.message)
        return None, {}
    if (manifest.get("chunker") != chunker.as_dict()
            or manifest.get("tokenizer") != TOKENIZER_VERSION):
        log.info("chunker or tokenizer changed since the previous build: re-chunking everything")
        store.close()
        return None, {}
    if manifest.get("loader") != LOADER_VERSION:
        return store, {}
    known = {path: KnownFile(sha, ids, tuple(SkippedFile(p, r) for p, r in problems))
             for path, (sha, ids, problems) in store.known_files().items()}
    return store, known


def _cleanup_stale(layout: IndexLayout, keep: int) -> None:
    """Remove interrupted builds and all but the ``keep`` newest finished non-current builds."""
    if not layout.builds.exists():
        return
    current = layout.current.resolve() if layout.current.exists() else None
    finished = []
    for path in layout.builds.iterdir():
        if path.name.startswith(".tmp-"):
            shutil.rmtree(path, ignore_errors=True)  # only reached under the build lock
        elif path.resolve() != current:
            finished.append(path)
    for path in sorted(finished, key=lambda p: p.name)[:-keep or None]:
        shutil.rmtree(path, ignore_errors=True)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class _StageClock:
    """Seconds of each build stage, each measured from the end of the one before; logged too, so
    a build without a TTY still shows its progress."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._mark = time.perf_counter()

    def done(self, name: str) -> None:
        now = time.perf_counter()
        self.seconds[name] = now - self._mark
        log.info("build: %s done in %.1f s", name, now - self._mark)
        self._mark = now


@dataclass
class _Chunked:
    """The chunk stage's output: document rows (as ``ChunkWriter.add_documents`` takes them, the
    chunk count last), (chunk, tokens, embed-text hash) triples in document order, and how many
    documents were reused from the previous build."""

    doc_rows: list[tuple]
    chunk_rows: list[tuple]
    reused: int


def build_index(
    sources: Sequence[str | Path],
    index_dir: str | Path,
    embedder: Embedder,
    chunker_config: ChunkerConfig | None = None,
    index_config: IndexConfig | None = None,
    full: bool = False,
    progress: bool | None = None,
    on_progress: Progress | None = None,
    keep_previous: int = 1,
) -> BuildReport:
    """The named stages in order: load, chunk+tokenise, embed, index (FAISS, BM25, SQLite),
    manifest, swap; ``stage_seconds`` keeps one figure per stage."""
    chunker_config = chunker_config or ChunkerConfig()
    index_config = index_config or IndexConfig()
    layout = IndexLayout(Path(index_dir))
    layout.builds.mkdir(parents=True, exist_ok=True)
    bar = _Tqdm(progress, on_progress)
    started = time.perf_counter()

    with _BuildLock(layout.lock):
        _cleanup_stale(layout, keep=keep_previous)
        clock = _StageClock()
        previous, loaded = _load(sources, layout, chunker_config, full)
        clock.done("load")
        chunked = _chunk_and_tokenise(loaded, previous, chunker_config, bar)
        clock.done("chunk+tokenize")
        texts, owners = _embed_views(chunked, chunker_config.question_view)
        vectors, embedded, cached = _embed(texts, embedder, layout, bar)
        clock.done("embed")
        build_id = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%fZ") + f"-{os.getpid()}"
        tmp = layout.builds / f".tmp-{build_id}"
        tmp.mkdir()
        dense = _write_indexes(tmp, vectors, owners, chunked, index_config, clock)
        _write_chunk_store(tmp, loaded, chunked)
        clock.done("sqlite")
        write_manifest(tmp, _manifest(build_id, sources, loaded, chunked, embedder, vectors, dense,
                                      chunker_config, index_config))
        _swap(layout, tmp, build_id, keep_previous)
        clock.done("swap")

    return BuildReport(
        index_dir=str(layout.root), build_id=build_id, documents=len(chunked.doc_rows),
        chunks=len(chunked.chunk_rows), files=len(loaded.files), reused_documents=chunked.reused,
        embedded_vectors=embedded, cached_vectors=cached, skipped=list(loaded.skipped),
        seconds=time.perf_counter() - started, stage_seconds=clock.seconds, dense_index=dense.kind,
        embedder=embedder.name)


def _load(sources: Sequence[str | Path], layout: IndexLayout, chunker_config: ChunkerConfig,
          full: bool) -> tuple[ChunkStore | None, LoadResult]:
    """Stage load: the previous build's store (when reusable) and the parsed sources; unchanged
    files of the previous build are not parsed again."""
    previous, known = _previous_store(layout, chunker_config, full)
    loaded = load_sources(sources, known)
    if not loaded.documents and not loaded.reused_doc_ids:
        if previous is not None:
            previous.close()
        raise BuildError("no document could be loaded from " + ", ".join(map(str, sources)),
                         hint="check the paths; skipped files: "
                              + "; ".join(f"{s.path}: {s.reason}" for s in loaded.skipped[:5]))
    return previous, loaded


def _chunk_and_tokenise(loaded: LoadResult, previous: ChunkStore | None,
                        chunker_config: ChunkerConfig, bar: _Tqdm) -> _Chunked:
    """Stage chunk+tokenise: an unchanged document keeps the previous build's chunks and tokens;
    any other is split and tokenised now. Closes ``previous``: nothing later reads it."""
    prev_rows = previous.document_rows() if previous is not None else {}
    hashes = {doc.id: doc.content_hash() for doc in loaded.documents}
    unchanged = {d for d, h in hashes.items() if d in prev_rows and prev_rows[d][1] == h}
    prev_chunks = (previous.chunks_by_doc(unchanged | set(loaded.reused_doc_ids))
                   if previous is not None else {})
    chunker = Chunker(chunker_config)
    doc_rows, chunk_rows = [], []
    reused = 0
    update = bar("chunk+tokenize", len(loaded.documents) + len(loaded.reused_doc_ids))
    for doc in loaded.documents:
        h = hashes[doc.id]
        if doc.id in unchanged and doc.id in prev_chunks:
            triples = prev_chunks[doc.id]
            reused += 1
        else:
            triples = [(c, " ".join(tokenize(f"{c.title}\n{c.text}")),
                        sha256_text(c.embed_text)) for c in chunker.split(doc)]
        doc_rows.append((doc.id, h, doc.path, doc.title, doc.url, doc.source, doc.lang,
                         doc.license, len(triples)))
        chunk_rows.extend(triples)
        update(1)
    for doc_id in loaded.reused_doc_ids:  # from unchanged files: not even parsed
        doc_rows.append(prev_rows[doc_id])
        chunk_rows.extend(prev_chunks[doc_id])
        reused += 1
        update(1)
    update.close()
    if previous is not None:
        previous.close()
    if not chunk_rows:
        raise BuildError("the loaded documents produced no chunk (all empty after cleaning?)")
    return _Chunked(doc_rows, chunk_rows, reused)


def _embed_views(chunked: _Chunked, question_view: bool) -> tuple[list[tuple[str, str]], list[int]]:
    """(hash, text) of every vector to embed and the chunk each belongs to. Views: every chunk's
    own text, plus each document's question (or title) alone, owned by the document's first chunk
    (see ChunkerConfig.question_view)."""
    chunk_rows = chunked.chunk_rows
    texts = [(h, c.embed_text) for c, _, h in chunk_rows]
    owners = list(range(len(chunk_rows)))
    if question_view:
        first = 0
        for row in chunked.doc_rows:
            lead = chunk_rows[first][0] if row[8] else None
            view = (lead.question or lead.title).strip() if lead else ""
            if view:
                texts.append((sha256_text(view), view))
                owners.append(first)
            first += row[8]
    return texts, owners


def _write_indexes(tmp: Path, vectors: np.ndarray, owners: list[int], chunked: _Chunked,
                   index_config: IndexConfig, clock: _StageClock) -> DenseIndex:
    """Stage index, its search halves: the dense (FAISS) index over every view and BM25 over the
    chunks' tokens, each timed on its own (``faiss``, ``bm25``)."""
    dense = DenseIndex.build(vectors, index_config, owners=np.asarray(owners, dtype=np.int64))
    dense.save(tmp)
    clock.done("faiss")
    bm25 = BM25Index.build((tokens.split() for _, tokens, _ in chunked.chunk_rows),
                           k1=index_config.bm25_k1, b=index_config.bm25_b)
    bm25.save(tmp)
    clock.done("bm25")
    return dense


def _write_chunk_store(tmp: Path, loaded: LoadResult, chunked: _Chunked) -> None:
    """Stage index, its store: files, documents and chunks in SQLite (the next build reuses them)."""
    writer = ChunkWriter(tmp / CHUNKS_FILE)
    writer.add_files((f.path, f.sha256, f.size, f.n_documents,
                      json.dumps([[p.path, p.reason] for p in f.problems], ensure_ascii=False))
                     for f in loaded.files)
    writer.add_documents(chunked.doc_rows)
    writer.add_chunks((i, c, tokens, h) for i, (c, tokens, h) in enumerate(chunked.chunk_rows))
    writer.close()


def _manifest(build_id: str, sources: Sequence[str | Path], loaded: LoadResult,
              chunked: _Chunked, embedder: Embedder, vectors: np.ndarray, dense: DenseIndex,
              chunker_config: ChunkerConfig, index_config: IndexConfig) -> dict:
    """Stage manifest: what the build is made of; written last, it marks the build finished."""
    doc_rows, chunk_rows = chunked.doc_rows, chunked.chunk_rows
    langs: dict[str, int] = {}
    for c, _, _ in chunk_rows:
        langs[c.lang] = langs.get(c.lang, 0) + 1
    return {
        "build_id": build_id,
        "built_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "embedder": {"name": embedder.name, "dim": int(vectors.shape[1])},
        "chunker": chunker_config.as_dict(),
        "tokenizer": TOKENIZER_VERSION,
        "loader": LOADER_VERSION,
        "index": index_config.as_dict(),
        "dense_index": {"type": dense.kind, "ntotal": dense.ntotal,
                        "views": dense.ntotal - len(chunk_rows)},
        "counts": {"documents": len(doc_rows), "chunks": len(chunk_rows),
                   "files": len(loaded.files), "skipped": len(loaded.skipped),
                   "chunks_by_lang": langs},
        "sources": [str(s) for s in sources],
        "documents": {row[0]: row[1] for row in doc_rows},
        "skipped": [{"path": s.path, "reason": s.reason} for s in loaded.skipped],
        "versions": versions(),
    }


def _swap(layout: IndexLayout, tmp: Path, build_id: str, keep_previous: int) -> None:
    """Stage swap: make the finished build durable, rename it into place and point ``current`` at
    it in one atomic step; readers see the old build or the new one, never half of either."""
    for path in tmp.iterdir():  # durable before it becomes visible
        with open(path, "rb") as fh:
            os.fsync(fh.fileno())
    final = layout.builds / build_id
    os.rename(tmp, final)
    link_tmp = layout.root / f".current-{build_id}"
    os.symlink(Path("builds") / build_id, link_tmp)
    os.replace(link_tmp, layout.current)  # the atomic swap: readers see old or new, never half
    _fsync_dir(layout.root)
    _cleanup_stale(layout, keep=keep_previous)


def _embed(texts: list[tuple[str, str]], embedder: Embedder, layout: IndexLayout,
           bar: _Tqdm) -> tuple[np.ndarray, int, int]:
    """Vectors for every (hash, text), in order: from the cache when known, else embedded now.
    Returns (vectors, texts embedded now, texts served from the cache)."""
    cache = EmbeddingCache(layout.cache)
    try:
        if not embedder.dim:  # sentence-transformers learn their dimension when loaded
            embedder.warm_up()
        dim = int(embedder.dim) or int(embedder.encode(["dim"]).shape[1])
        hashes = [h for h, _ in texts]
        known = cache.get_many(embedder.name, list(dict.fromkeys(hashes)), dim)
        todo: dict[str, str] = {}
        for h, text in texts:
            if h not in known and h not in todo:
                todo[h] = text
        update = bar("embed", len(todo))
        items = list(todo.items())
        if items:
            embedder.warm_up()  # loading USE costs ~1.5 s: only when something is new
        for start in range(0, len(items), EMBED_BATCH):
            batch = items[start:start + EMBED_BATCH]
            vecs = embedder.encode([text for _, text in batch])
            new = {h: vecs[i] for i, (h, _) in enumerate(batch)}
            cache.put_many(embedder.name, new.items())
            known.update(new)
            update(len(batch))
        update.close()
        vectors = np.stack([known[h] for h in hashes]).astype(np.float32)
        return vectors, len(todo), len(hashes) - len(todo)
    finally:
        cache.close()
