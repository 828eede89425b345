"""``kb stats`` and ``kb verify``: read-only looks at an index directory."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from knowledge_base.errors import KnowledgeBaseError
from knowledge_base.index.manifest import ARTIFACTS, IndexLayout, read_manifest, sha256_file
from knowledge_base.index.store import CHUNKS_FILE, ChunkStore


def index_stats(index_dir: Path) -> dict[str, Any]:
    layout = IndexLayout(Path(index_dir))
    build = layout.current_build()
    m = read_manifest(build)
    size = sum(p.stat().st_size for p in build.iterdir() if p.is_file())
    cache_size = layout.cache.stat().st_size if layout.cache.exists() else 0
    return {
        "index_dir": str(layout.root),
        "build_id": m["build_id"],
        "built_at": m["built_at"],
        "embedder": m["embedder"]["name"],
        "dim": m["embedder"]["dim"],
        "dense_index": m["dense_index"]["type"],
        "documents": m["counts"]["documents"],
        "chunks": m["counts"]["chunks"],
        "chunks_by_lang": m["counts"].get("chunks_by_lang", {}),
        "files": m["counts"]["files"],
        "skipped": m["counts"]["skipped"],
        "sources": m.get("sources", []),
        "tokenizer": m.get("tokenizer"),
        "chunker": m.get("chunker"),
        "size_mb": round(size / 1e6, 1),
        "cache_mb": round(cache_size / 1e6, 1),
        "versions": m.get("versions", {}),
    }


def verify_index(index_dir: Path) -> dict[str, Any]:
    """Every check runs even after one fails, so the report shows all problems at once."""
    checks: list[dict[str, Any]] = []

    def check(name: str, ok: bool, detail: str) -> bool:
        checks.append({"name": name, "ok": bool(ok), "detail": detail})
        return ok

    layout = IndexLayout(Path(index_dir))
    try:
        build = layout.current_build()
        manifest = read_manifest(build)
    except KnowledgeBaseError as exc:
        check("manifest", False, exc.message)
        return {"ok": False, "index_dir": str(index_dir), "checks": checks}
    check("manifest", True, f"{build.name}, format {manifest['format_version']}")

    for name in ARTIFACTS:
        path = build / name
        if not path.is_file():
            check(f"file {name}", False, "missing")
            continue
        expected = manifest["checksums"].get(name)
        actual = sha256_file(path)
        check(f"file {name}", actual == expected,
              "sha256 matches" if actual == expected else f"sha256 {actual[:12]}… != manifest {str(expected)[:12]}…")

    n = manifest["counts"]["chunks"]
    try:
        from knowledge_base.config import IndexConfig
        from knowledge_base.index.bm25 import BM25Index
        from knowledge_base.index.dense import DenseIndex

        dense = DenseIndex.load(build, manifest["dense_index"]["type"], IndexConfig())
        check("faiss count", dense.n_chunks == n and dense.ntotal == manifest["dense_index"]["ntotal"],
              f"{dense.ntotal} vectors for {dense.n_chunks} chunks, manifest {n} chunks")
        check("embedder dim", dense.dim == manifest["embedder"]["dim"],
              f"index dim {dense.dim}, manifest {manifest['embedder']['name']} dim {manifest['embedder']['dim']}")
        bm25 = BM25Index.load(build)
        check("bm25 count", bm25.n_docs == n, f"{bm25.n_docs} rows, manifest {n}")
        store = ChunkStore(build / CHUNKS_FILE)
        try:
            stored = store.count("chunks")
            check("sqlite chunks", stored == n, f"{stored} rows, manifest {n}")
            docs = store.documents()
            listed = manifest.get("documents", {})
            diff = [d for d in set(docs) | set(listed) if docs.get(d, (None,))[0] != listed.get(d)]
            check("document hashes", not diff,
                  f"{len(docs)} documents match the manifest" if not diff
                  else f"{len(diff)} differ, e.g. {sorted(diff)[:3]}")
            chunk_sum = sum(c for _, c in docs.values())
            check("chunks per document", chunk_sum == n, f"sum {chunk_sum}, manifest {n}")
        finally:
            store.close()
    except KnowledgeBaseError as exc:
        check("load", False, exc.message)
    return {"ok": all(c["ok"] for c in checks), "index_dir": str(index_dir),
            "build_id": manifest.get("build_id"), "checks": checks}
