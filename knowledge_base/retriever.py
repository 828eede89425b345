"""Hybrid retrieval over one index directory: BM25 (jieba for Chinese) and dense (FAISS), fused by
reciprocal-rank fusion, optionally reranked.

``Retriever(index_dir)`` is cheap; :meth:`warm_up` opens the current build, checks its manifest
against the embedder, and loads FAISS, BM25 and the chunk store.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from knowledge_base.config import IndexConfig, Method, RetrievalConfig
from knowledge_base.embedders import Embedder, make_embedder
from knowledge_base.errors import QueryError
from knowledge_base.index.bm25 import BM25Index
from knowledge_base.index.dense import DenseIndex
from knowledge_base.index.manifest import IndexLayout, check_embedder, read_manifest, verify_checksums
from knowledge_base.index.store import CHUNKS_FILE, ChunkStore
from knowledge_base.records import Passage
from knowledge_base.text import clean_text, detect_lang
from knowledge_base.tokenize import tokenize, translate_terms

log = logging.getLogger(__name__)

# Expansion terms come from a glossary, not from the user: they count half as much as the words
# the patient actually typed, so "高血压" plus its English terms does not outweigh the question.
EXPANSION_WEIGHT = 0.5


class Reranker(Protocol):
    name: str

    def rerank(self, query: str, passages: list[Passage]) -> list[float]: ...


@dataclass
class SearchTimings:
    bm25_ms: float = 0.0
    dense_ms: float = 0.0
    embed_ms: float = 0.0
    rerank_ms: float = 0.0
    total_ms: float = 0.0


@dataclass
class _Loaded:
    build_dir: Path
    manifest: dict
    dense: DenseIndex
    bm25: BM25Index
    store: ChunkStore
    # FAISS selectors of English chunks' vectors: all views / own-text views only (None: the index
    # is monolingual, cross-lingual lists make no sense)
    en_selector: object = None
    en_content_selector: object = None
    en_mask: object = None  # numpy bool array over chunk idx
    loaded_at: float = field(default_factory=time.time)


def prepare_query(text: str, max_chars: int) -> str:
    """Clean the query; over-long queries keep their head and tail (the question is usually at the
    end of a pasted history, the topic at its start)."""
    cleaned = clean_text(text or "")
    if not cleaned:
        raise QueryError("the query is empty", hint="type a question / 请输入问题")
    if len(cleaned) > max_chars:
        half = max_chars // 2
        cleaned = cleaned[:half] + "\n" + cleaned[-half:]
    return cleaned


class Retriever:
    def __init__(self, index_dir: str | Path, embedder: Embedder | None = None,
                 config: RetrievalConfig | None = None, index_config: IndexConfig | None = None,
                 reranker: Reranker | None = None) -> None:
        self.layout = IndexLayout(Path(index_dir))
        self.config = config or RetrievalConfig()
        self.index_config = index_config or IndexConfig()
        self._embedder = embedder
        self._reranker = reranker
        self._loaded: _Loaded | None = None
        self._lock = threading.Lock()
        self.last_timings = SearchTimings()
        # Another process (a rebuild on a replica or the operator's `kb build` on the shared index
        # volume) may swap ``current``: the next search after a swap loads the new build.
        self._reloading = threading.Lock()
        self._refused: Path | None = None  # a new build that failed to load: not retried per search

    # -- loading -----------------------------------------------------------------------------
    def warm_up(self) -> None:
        with self._lock:
            if self._loaded is None:
                self._loaded = self._load()

    def reload(self) -> None:
        """Switch to the newest build (after a rebuild); the old one serves until this returns."""
        fresh = self._load()
        with self._lock:
            old, self._loaded = self._loaded, fresh
        if old is not None:
            old.store.close()

    def follow_swap(self) -> bool:
        """Load the build ``current`` points at now if it is not the one serving (a swap made by
        another process); True when it switched. One ``readlink`` per call, so a search can ask
        every time. A build that fails to load is logged once and the old one keeps serving."""
        loaded = self._loaded
        if loaded is None:
            return False
        try:
            target = self.layout.current.resolve(strict=True)
        except OSError:  # mid-swap or removed: keep serving what is loaded
            return False
        if target == loaded.build_dir or target == self._refused:
            return False
        if not self._reloading.acquire(blocking=False):
            return False  # another thread is switching already; this search uses the old build
        try:
            self.reload()
            log.info("index swapped by another process: now serving %s", target.name)
            return True
        except Exception as exc:  # noqa: BLE001 - any load failure keeps the serving build
            self._refused = target
            log.warning("index build %s could not be loaded, the old build keeps serving: %s", target.name, exc)
            return False
        finally:
            self._reloading.release()

    def _load(self) -> _Loaded:
        build = self.layout.current_build()
        manifest = read_manifest(build)
        # A tampered or damaged build is refused here (and a swap to one keeps the old build
        # serving), not discovered by the next `kb verify`.
        verify_checksums(build, manifest)
        if self._embedder is None:
            self._embedder = make_embedder(manifest["embedder"]["name"], threads=self.config.query_threads)
        # The embedder's dim may be unknown before loading (sentence-transformers); check the name
        # now and the dimension against the FAISS index below.
        check_embedder(manifest, self._embedder.name, self._embedder.dim or None)
        from dataclasses import replace as _replace

        # Query-time FAISS on query_threads too: OpenMP spinning on a core that a rebuild or the
        # LLM holds made searches 3-5x slower than one thread.
        dense = DenseIndex.load(build, manifest["dense_index"]["type"],
                                _replace(self.index_config, threads=self.config.query_threads))
        if dense.dim != manifest["embedder"]["dim"]:
            check_embedder(manifest, self._embedder.name, dense.dim)
        bm25 = BM25Index.load(build)
        store = ChunkStore(build / CHUNKS_FILE)
        n = manifest["counts"]["chunks"]
        if not (dense.n_chunks == bm25.n_docs == n):
            from knowledge_base.errors import IndexCorruptError

            raise IndexCorruptError(
                f"index parts disagree in {build}: manifest {n} chunks, FAISS {dense.n_chunks}, "
                f"BM25 {bm25.n_docs}", hint="rebuild with: medchat kb build --full")
        self._embedder.warm_up()
        if self._reranker is None and self.config.reranker != "none":
            from knowledge_base.rerank import make_reranker

            self._reranker = make_reranker(self.config.reranker)
        en_mask = store.lang_mask("en")
        mixed = en_mask.any() and not en_mask.all()
        return _Loaded(build, manifest, dense, bm25, store,
                       dense.selector(en_mask) if mixed else None,
                       dense.selector(en_mask, content_only=True) if mixed else None,
                       en_mask)

    @property
    def manifest(self) -> dict:
        self.warm_up()
        return self._loaded.manifest

    @property
    def embedder(self) -> Embedder:
        self.warm_up()
        return self._embedder

    # -- search ------------------------------------------------------------------------------
    def search(self, query: str, k: int = 10, lang: str | None = None,
               method: Method | None = None, section_hint: str | None = None) -> list[Passage]:
        """Top ``k`` passages for ``query``. ``lang`` (zh/en) only steers query expansion; results
        come from every language. ``section_hint`` (e.g. "treatment") breaks near-ties in favour
        of chunks of that section."""
        self.warm_up()  # first call loads models; excluded from the timings on purpose
        self.follow_swap()
        t0 = time.perf_counter()
        loaded = self._loaded
        cfg = self.config
        method = method or cfg.method
        if k < 1:
            raise QueryError("k must be at least 1")
        q = prepare_query(query, cfg.max_query_chars)
        lang = lang or detect_lang(q)
        timings = SearchTimings()
        n_cand = max(cfg.candidates, k * 3)
        english_only = (lang == "en" and cfg.english_sources_for_english
                        and loaded.en_selector is not None)
        rankings: list[tuple[str, float, list[tuple[int, float]]]] = []

        if method in ("hybrid", "bm25"):
            t = time.perf_counter()
            tokens = tokenize(q)
            weights = [1.0] * len(tokens)
            if cfg.crosslingual_expansion and lang == "zh":
                extra = [tok for term in translate_terms(q, lang) for tok in tokenize(term)]
                tokens += extra
                weights += [EXPANSION_WEIGHT] * len(extra)
            ranked = loaded.bm25.search(tokens, n_cand * 3 if english_only else n_cand, weights)
            if english_only:
                ranked = [(i, s) for i, s in ranked if loaded.en_mask[i]][:n_cand]
            rankings.append(("bm25", cfg.bm25_weight, ranked))
            timings.bm25_ms = (time.perf_counter() - t) * 1000
        if method in ("hybrid", "dense"):
            t = time.perf_counter()
            crossing = (method == "hybrid" and lang == "zh" and cfg.crosslingual_weight > 0
                        and loaded.en_selector is not None)
            terms = translate_terms(q, "zh") if crossing else []
            vectors = self._embedder.encode([q, " ".join(terms)] if terms else [q])
            timings.embed_ms = (time.perf_counter() - t) * 1000
            t = time.perf_counter()
            rankings.append(("dense", cfg.dense_weight, loaded.dense.search(
                vectors[0], n_cand, loaded.en_selector if english_only else None)))
            if crossing:
                # USE puts same-language text first, so a Chinese question rarely reaches English
                # guidelines on its own: rank English chunks separately, for the question and for
                # its glossary translation (see RetrievalConfig.crosslingual_weight). The question
                # itself is matched to chunk texts only: against English *questions* it matches
                # the template ("What are the symptoms of ...") more than the topic.
                rankings.append(("dense_en", cfg.crosslingual_weight,
                                 loaded.dense.search(vectors[0], n_cand, loaded.en_content_selector)))
                if terms:
                    rankings.append(("dense_en_gloss", cfg.crosslingual_weight,
                                     loaded.dense.search(vectors[1], n_cand, loaded.en_selector)))
            timings.dense_ms = (time.perf_counter() - t) * 1000

        fused = self._fuse(rankings, method)
        scored = fused[: max(cfg.rerank_top, k) * 2 if self._reranker else k * 4]
        passages = loaded.store.passages(scored)
        if section_hint:
            # A quarter of the RRF gap between ranks 1 and 2 (1/61 - 1/62): enough to reorder
            # near-ties, never to lift an unrelated chunk above a clearly better one.
            bonus = 0.25 * (1 / (cfg.rrf_k + 1) - 1 / (cfg.rrf_k + 2)) if method == "hybrid" else 0.0
            for p in passages:
                if p.section == section_hint:
                    p.score += bonus
            passages.sort(key=lambda p: -p.score)
        if self._reranker is not None:
            t = time.perf_counter()
            head = passages[: cfg.rerank_top]
            for p, s in zip(head, self._reranker.rerank(q, head)):
                p.scores["rerank"] = float(s)
                p.score = float(s)
            passages = sorted(head, key=lambda p: -p.score) + passages[cfg.rerank_top:]
            timings.rerank_ms = (time.perf_counter() - t) * 1000
        passages = self._diversify(passages, k)
        timings.total_ms = (time.perf_counter() - t0) * 1000
        self.last_timings = timings
        return passages

    def _fuse(self, rankings, method) -> list[tuple[int, float, dict[str, float]]]:
        if len(rankings) == 1:
            name, _, ranked = rankings[0]
            return [(idx, score, {name: score}) for idx, score in ranked]
        fused: dict[int, float] = {}
        parts: dict[int, dict[str, float]] = {}
        for name, weight, ranked in rankings:
            for rank, (idx, score) in enumerate(ranked):
                fused[idx] = fused.get(idx, 0.0) + weight / (self.config.rrf_k + rank + 1)
                parts.setdefault(idx, {})[name] = score
        order = sorted(fused, key=lambda i: -fused[i])
        return [(i, fused[i], {**parts[i], "rrf": fused[i]}) for i in order]

    def _diversify(self, passages: list[Passage], k: int) -> list[Passage]:
        out: list[Passage] = []
        per_doc: dict[str, int] = {}
        for p in passages:
            if per_doc.get(p.doc_id, 0) < self.config.max_per_doc:
                per_doc[p.doc_id] = per_doc.get(p.doc_id, 0) + 1
                out.append(p)
                if len(out) == k:
                    break
        return out
