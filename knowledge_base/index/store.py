"""SQLite next to the index: chunk text and metadata of one build (``chunks.sqlite``), and the
embedding cache shared by all builds of an index directory (``cache/embeddings.sqlite``)."""

from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import numpy as np

from knowledge_base.errors import IndexCorruptError
from knowledge_base.records import Chunk, Passage

CHUNKS_FILE = "chunks.sqlite"

_SCHEMA = """
CREATE TABLE files(path TEXT PRIMARY KEY, sha256 TEXT NOT NULL, size INTEGER NOT NULL,
                   n_documents INTEGER NOT NULL, problems TEXT NOT NULL DEFAULT '[]');
CREATE TABLE documents(doc_id TEXT PRIMARY KEY, content_hash TEXT NOT NULL, path TEXT,
                       title TEXT, url TEXT, source TEXT, lang TEXT, license TEXT,
                       n_chunks INTEGER NOT NULL);
CREATE TABLE chunks(idx INTEGER PRIMARY KEY, chunk_id TEXT NOT NULL UNIQUE, doc_id TEXT NOT NULL,
                    n INTEGER NOT NULL, text TEXT NOT NULL, embed_text TEXT NOT NULL,
                    title TEXT, url TEXT, source TEXT, lang TEXT, section TEXT, question TEXT,
                    license TEXT, tokens TEXT NOT NULL, embed_hash TEXT NOT NULL);
CREATE INDEX chunks_doc ON chunks(doc_id);
"""

_CHUNK_COLS = ("chunk_id, doc_id, n, text, embed_text, title, url, source, lang, section, question, "
               "license")


def chunk_from_row(row: Sequence) -> Chunk:
    return Chunk(id=row[0], doc_id=row[1], n=row[2], text=row[3], embed_text=row[4], title=row[5],
                 url=row[6], source=row[7], lang=row[8], section=row[9], question=row[10],
                 license=row[11])


class ChunkWriter:
    """Writes a new build's ``chunks.sqlite`` (a fresh file in a temporary build directory)."""

    def __init__(self, path: Path) -> None:
        self.conn = sqlite3.connect(path)
        self.conn.executescript("PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF;")  # fsync'd at close
        self.conn.executescript(_SCHEMA)

    def add_files(self, rows: Iterable[tuple[str, str, int, int, str]]) -> None:
        """rows of (path, sha256, size, n_documents, problems as JSON)."""
        self.conn.executemany("INSERT INTO files VALUES (?,?,?,?,?)", rows)

    def add_documents(self, rows: Iterable[tuple]) -> None:
        self.conn.executemany("INSERT INTO documents VALUES (?,?,?,?,?,?,?,?,?)", rows)

    def add_chunks(self, rows: Iterable[tuple[int, Chunk, str, str]]) -> None:
        """rows of (idx, chunk, space-joined tokens, embed hash)."""
        self.conn.executemany(
            "INSERT INTO chunks VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            ((idx, c.id, c.doc_id, c.n, c.text, c.embed_text, c.title, c.url, c.source, c.lang,
              c.section, c.question, c.license, tokens, h) for idx, c, tokens, h in rows))

    def close(self) -> None:
        self.conn.commit()
        self.conn.close()


class ChunkStore:
    """Read-only access to a finished build's chunks; safe to share between threads."""

    def __init__(self, path: Path) -> None:
        if not path.is_file():
            raise IndexCorruptError(f"chunk store {path} is missing",
                                    hint="rebuild with: medchat kb build --full")
        # immutable=1: the file never changes after its build finished, so SQLite may skip locking.
        self._conn = sqlite3.connect(f"file:{path}?mode=ro&immutable=1", uri=True,
                                     check_same_thread=False)
        self._lock = threading.Lock()
        try:
            self.count()
        except sqlite3.DatabaseError as exc:
            raise IndexCorruptError(f"chunk store {path} is unreadable: {exc}",
                                    hint="rebuild with: medchat kb build --full") from exc

    def count(self, table: str = "chunks") -> int:
        assert table in ("chunks", "documents", "files")
        with self._lock:
            return self._conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]

    def passages(self, scored: Sequence[tuple[int, float, dict[str, float]]]) -> list[Passage]:
        """Passages for (idx, score, component scores), in the given order."""
        if not scored:
            return []
        ids = [idx for idx, _, _ in scored]
        marks = ",".join("?" * len(ids))
        with self._lock:
            rows = self._conn.execute(
                f"SELECT idx, chunk_id, doc_id, text, title, url, source, lang, section, question "
                f"FROM chunks WHERE idx IN ({marks})", ids).fetchall()
        by_idx = {r[0]: r for r in rows}
        out = []
        for idx, score, parts in scored:
            r = by_idx.get(idx)
            if r is None:
                raise IndexCorruptError(f"chunk {idx} is in the index but not in the chunk store",
                                        hint="rebuild with: medchat kb build --full")
            out.append(Passage(id=r[1], doc_id=r[2], text=r[3], title=r[4], url=r[5], source=r[6],
                               lang=r[7], score=score, section=r[8], question=r[9], scores=parts))
        return out

    def known_files(self) -> dict[str, tuple[str, tuple[str, ...], list[list[str]]]]:
        """path -> (sha256, ids of the documents it gave, [[path, reason], ...] line problems)."""
        with self._lock:
            files = self._conn.execute("SELECT path, sha256, problems FROM files").fetchall()
            docs = self._conn.execute("SELECT path, doc_id FROM documents ORDER BY rowid").fetchall()
        by_path: dict[str, list[str]] = {}
        for path, doc_id in docs:
            by_path.setdefault(path, []).append(doc_id)
        return {p: (sha, tuple(by_path.get(p, ())), json.loads(problems)) for p, sha, problems in files}

    def document_rows(self) -> dict[str, tuple]:
        """doc_id -> its full documents-table row."""
        with self._lock:
            return {r[0]: tuple(r) for r in self._conn.execute("SELECT * FROM documents")}

    def documents(self) -> dict[str, tuple[str, int]]:
        """doc_id -> (content hash, number of chunks)."""
        with self._lock:
            return {d: (h, n) for d, h, n in
                    self._conn.execute("SELECT doc_id, content_hash, n_chunks FROM documents")}

    def chunks_by_doc(self, doc_ids: set[str]) -> dict[str, list[tuple[Chunk, str, str]]]:
        """(chunk, tokens, embed hash) of many documents in one pass, each list in chunk order.
        One scan beats one query per document: 24k documents in ~1 s instead of ~6 s."""
        out: dict[str, list[tuple[Chunk, str, str]]] = {}
        with self._lock:
            rows = self._conn.execute(
                f"SELECT {_CHUNK_COLS}, tokens, embed_hash FROM chunks ORDER BY idx").fetchall()
        for r in rows:
            if r[1] in doc_ids:
                out.setdefault(r[1], []).append((chunk_from_row(r), r[12], r[13]))
        for triples in out.values():
            triples.sort(key=lambda t: t[0].n)
        return out

    def lang_mask(self, lang: str) -> np.ndarray:
        """Boolean array over chunk idx: True where the chunk is in ``lang``."""
        with self._lock:
            rows = self._conn.execute("SELECT lang FROM chunks ORDER BY idx").fetchall()
        return np.fromiter((r[0] == lang for r in rows), dtype=bool, count=len(rows))

    def iter_tokens(self) -> Iterator[tuple[int, str]]:
        with self._lock:
            rows = self._conn.execute("SELECT idx, tokens FROM chunks ORDER BY idx").fetchall()
        yield from rows

    def iter_embed_hashes(self) -> list[str]:
        with self._lock:
            return [r[0] for r in self._conn.execute("SELECT embed_hash FROM chunks ORDER BY idx")]

    def close(self) -> None:
        self._conn.close()


class EmbeddingCache:
    """(embedder name, sha256 of the embedded text) -> vector. Filled batch by batch during a build
    and committed as it goes, so a killed build keeps the vectors it already paid for."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.conn = sqlite3.connect(path, timeout=30)
        self.conn.executescript(
            "PRAGMA journal_mode=WAL;"
            "CREATE TABLE IF NOT EXISTS vectors(embedder TEXT NOT NULL, text_hash TEXT NOT NULL, "
            "dim INTEGER NOT NULL, vec BLOB NOT NULL, PRIMARY KEY(embedder, text_hash)) WITHOUT ROWID;")

    def get_many(self, embedder: str, hashes: Sequence[str], dim: int) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {}
        if len(hashes) > 5000:
            # A rebuild wants (nearly) the whole cache: one scan beats ~70 IN-queries (~1 s vs ~4 s).
            wanted = set(hashes)
            for h, blob in self.conn.execute(
                    "SELECT text_hash, vec FROM vectors WHERE embedder=? AND dim=?", (embedder, dim)):
                if h in wanted:
                    out[h] = np.frombuffer(blob, dtype=np.float32)
            return out
        # SQLite caps bound parameters (32766 in recent builds); 900 per query stays far below.
        for start in range(0, len(hashes), 900):
            part = hashes[start:start + 900]
            marks = ",".join("?" * len(part))
            for h, d, blob in self.conn.execute(
                    f"SELECT text_hash, dim, vec FROM vectors WHERE embedder=? AND text_hash IN ({marks})",
                    (embedder, *part)):
                if d == dim:
                    out[h] = np.frombuffer(blob, dtype=np.float32)
        return out

    def put_many(self, embedder: str, items: Iterable[tuple[str, np.ndarray]]) -> None:
        with self.conn:
            self.conn.executemany(
                "INSERT OR REPLACE INTO vectors VALUES (?,?,?,?)",
                ((embedder, h, int(v.shape[0]), np.asarray(v, dtype=np.float32).tobytes())
                 for h, v in items))

    def count(self) -> int:
        return self.conn.execute("SELECT count(*) FROM vectors").fetchone()[0]

    def close(self) -> None:
        self.conn.close()
