"""Configuration dataclasses of the knowledge base. Each field explains itself (``help``) and each
config checks itself in ``__post_init__``; the build writes them into ``manifest.json``.

They are plain dataclasses so that ``knowledge_base`` does not depend on the chat settings; the
``chatbot.settings`` pydantic model converts into them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

DenseIndexType = Literal["auto", "flat", "ivf", "hnsw"]
Method = Literal["hybrid", "bm25", "dense"]


@dataclass
class ChunkerConfig:
    chunk_chars_en: int = field(default=1000, metadata={
        "help": "Max characters of an English chunk. ~1000 chars ≈ 200 words: one MedQuAD answer "
                "section mostly fits, and the LLM context holds 5-8 of them."})
    chunk_chars_zh: int = field(default=400, metadata={
        "help": "Max characters of a Chinese chunk. One Chinese character carries about as much as "
                "2.5 English characters, so 400 ≈ the English 1000."})
    overlap_ratio: float = field(default=0.12, metadata={
        "help": "Share of a chunk repeated at the start of the next, so a sentence cut at a chunk "
                "border still appears whole in one of them."})
    embed_chars: int = field(default=256, metadata={
        "help": "Characters of (question + chunk start) the dense embedder sees. USE-multilingual is "
                "weak on long passages and ~1.6x faster on 256 chars than on 400; BM25 covers the "
                "rest of the chunk. Dev recall@5 was the same at 256 and 400 (within 0.02 on every "
                "set), so the faster setting wins: a fresh default build embeds ~62k texts."})
    min_chunk_chars: int = field(default=40, metadata={
        "help": "A trailing piece shorter than this is merged into the previous chunk."})
    question_view: bool = field(default=True, metadata={
        "help": "Also embed each document's stored question (or title) alone, as a second vector "
                "pointing at its first chunk. USE matches question to question far better than "
                "question to passage: MedQuAD dev recall@5 0.50 -> 0.62, Toyhom 0.39 -> 0.49."})

    def __post_init__(self) -> None:
        if self.chunk_chars_en < 100 or self.chunk_chars_zh < 50:
            raise ValueError("chunk sizes below 100 (en) / 50 (zh) characters make meaningless chunks")
        if not 0.0 <= self.overlap_ratio < 0.5:
            raise ValueError("overlap_ratio must be in [0, 0.5)")
        if self.embed_chars < 32:
            raise ValueError("embed_chars must be at least 32")
        if self.min_chunk_chars < 0:
            raise ValueError("min_chunk_chars must be >= 0")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class IndexConfig:
    dense_index: DenseIndexType = field(default="auto", metadata={
        "help": "FAISS index type. auto: exact inner product (flat) up to flat_max_vectors, IVF "
                "above (HNSW on request). Exact search of 50k x 512-d vectors takes ~5 ms here."})
    flat_max_vectors: int = field(default=200_000, metadata={
        "help": "Above this many chunks, auto switches from exact search to IVF: a flat scan of "
                "200k x 512 floats costs ~20 ms on 2 cores, past that p95 targets slip."})
    ivf_nprobe: int = field(default=16, metadata={
        "help": "IVF lists visited per query: recall vs latency knob (16 of ~1000 lists ≈ 1.6% scanned)."})
    hnsw_m: int = field(default=32, metadata={"help": "HNSW graph degree."})
    hnsw_ef_search: int = field(default=64, metadata={"help": "HNSW search beam width."})
    use_gpu: bool = field(default=False, metadata={
        "help": "Move the FAISS index to a GPU when faiss-gpu and a CUDA device are present "
                "(install the [gpu] extra). Falls back to CPU with a warning otherwise."})
    bm25_k1: float = field(default=1.2, metadata={"help": "BM25 term-frequency saturation."})
    bm25_b: float = field(default=0.75, metadata={"help": "BM25 length normalisation."})
    threads: int = field(default=0, metadata={
        "help": "Threads for FAISS and the embedder; 0 = all cores."})

    def __post_init__(self) -> None:
        if self.dense_index not in ("auto", "flat", "ivf", "hnsw"):
            raise ValueError(f"dense_index must be auto|flat|ivf|hnsw, not {self.dense_index!r}")
        if self.flat_max_vectors < 1 or self.ivf_nprobe < 1 or self.hnsw_m < 4:
            raise ValueError("flat_max_vectors, ivf_nprobe must be >= 1 and hnsw_m >= 4")
        if self.bm25_k1 < 0 or not 0 <= self.bm25_b <= 1:
            raise ValueError("bm25_k1 must be >= 0 and bm25_b in [0, 1]")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class RetrievalConfig:
    method: Method = field(default="hybrid", metadata={
        "help": "hybrid (BM25 + dense fused by reciprocal rank), bm25, or dense."})
    candidates: int = field(default=50, metadata={
        "help": "Results taken from each retriever before fusion/reranking."})
    rrf_k: int = field(default=60, metadata={
        "help": "RRF constant: 60 is the value of Cormack et al. (2009), robust across collections."})
    dense_weight: float = field(default=1.0, metadata={"help": "Weight of the dense ranking in RRF."})
    bm25_weight: float = field(default=1.0, metadata={"help": "Weight of the BM25 ranking in RRF."})
    crosslingual_expansion: bool = field(default=True, metadata={
        "help": "Add English terms from the shipped bilingual glossary to the BM25 query of a "
                "Chinese question, so it also matches English guideline words."})
    english_sources_for_english: bool = field(default=True, metadata={
        "help": "English queries search English chunks only. The Chinese corpus holds crawled "
                "doctor replies, of little use to an English reader, and USE matches question "
                "templates across languages ('How is gout treated?' ~ '癫痫如何治疗?' at 0.54)."})
    crosslingual_weight: float = field(default=0.8, metadata={
        "help": "For Chinese queries (hybrid method), weight in RRF of two extra dense rankings "
                "restricted to English chunks: the question itself, and its glossary translation. "
                "USE ranks same-language text first, so without them a Chinese question rarely "
                "reaches the English guidelines. Dev recall@5, zh->en / zh->zh consumer / Toyhom: "
                "0.23 / 0.64 / 0.49 at 0; 0.65 / 0.54 / 0.48 at 0.8 (default: best sum); "
                "0.71 / 0.47 / 0.43 at 1.0. 0 turns them off."})
    max_query_chars: int = field(default=2000, metadata={
        "help": "Longer queries keep their first and last halves of this budget: a pasted history "
                "usually ends with the actual question."})
    reranker: str = field(default="none", metadata={
        "help": "none | bi-encoder:<embedder name or path> | cross-encoder:<HF id or local path>. "
                "Re-scores the fused top candidates."})
    rerank_top: int = field(default=30, metadata={"help": "How many fused candidates the reranker sees."})
    query_threads: int = field(default=1, metadata={
        "help": "BLAS threads of the query-time embedder. One query is a tiny matrix: a second "
                "thread buys nothing, and when another process (a rebuild) holds the other core, "
                "2 threads took ~220 ms per query instead of ~3 ms here."})
    max_per_doc: int = field(default=2, metadata={
        "help": "At most this many chunks of one document in the results, so sources stay diverse."})

    def __post_init__(self) -> None:
        if self.method not in ("hybrid", "bm25", "dense"):
            raise ValueError(f"method must be hybrid|bm25|dense, not {self.method!r}")
        if self.query_threads < 1:
            raise ValueError("query_threads must be >= 1")
        if self.candidates < 1 or self.rrf_k < 0 or self.rerank_top < 1 or self.max_per_doc < 1:
            raise ValueError("candidates, rerank_top, max_per_doc must be >= 1 and rrf_k >= 0")
        if self.crosslingual_weight < 0:
            raise ValueError("crosslingual_weight must be >= 0")
        if self.max_query_chars < 16:
            raise ValueError("max_query_chars must be at least 16")
        if not (self.reranker == "none" or self.reranker.startswith(("bi-encoder:", "cross-encoder:"))):
            raise ValueError("reranker must be none, bi-encoder:<name> or cross-encoder:<path>")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)
