"""Index builds: atomic swap, incremental reuse, interrupted builds, broken sources and dirs."""

from pathlib import Path

import pytest

from knowledge_base import builder as builder_mod
from knowledge_base.builder import build_index
from knowledge_base.embedders import HashEmbedder
from knowledge_base.errors import BuildError, IndexCorruptError, IndexMismatchError, IndexNotFoundError
from knowledge_base.index.manifest import IndexLayout, read_manifest
from knowledge_base.inspect import verify_index
from knowledge_base.retriever import Retriever
from tests.conftest import EN_DOCS, write_jsonl


class CountingEmbedder(HashEmbedder):
    """Hash embedder that counts the texts it had to embed."""

    def __init__(self):
        super().__init__(64)
        self.name = "hash:64"
        self.encoded = 0

    def encode(self, texts):
        self.encoded += len(texts)
        return super().encode(texts)


def test_build_writes_manifest_and_serves(built_index):
    layout = IndexLayout(built_index)
    build = layout.current_build()
    manifest = read_manifest(build)
    assert manifest["embedder"] == {"name": "hash:64", "dim": 64}
    assert manifest["counts"]["documents"] == 6
    assert set(manifest["documents"]) == {"asthma", "gout", "glaucoma", "hypertension",
                                          "zh_diabetes", "zh_gastritis"}
    assert manifest["chunker"]["chunk_chars_en"] == 1000
    assert verify_index(built_index)["ok"]
    hits = Retriever(built_index).search("inhaler for asthma wheezing", k=3)
    assert hits[0].doc_id == "asthma"


def test_incremental_rebuild_reuses_unchanged_documents(tmp_path, corpus_dir):
    emb = CountingEmbedder()
    index = tmp_path / "idx"
    first = build_index([corpus_dir], index, emb, progress=False)
    # one vector per chunk plus one question view per document (all test docs have a title)
    assert first.reused_documents == 0 and emb.encoded == first.chunks + first.documents
    assert first.embedded_vectors == emb.encoded

    docs = [dict(d, source="Test/EN", url=f"https://example.org/{d['id']}") for d in EN_DOCS]
    docs[1] = dict(docs[1], text="Gout comes from uric acid. Cherries may lower attacks.")
    write_jsonl(corpus_dir / "en.jsonl", docs)
    emb.encoded = 0
    second = build_index([corpus_dir], index, emb, progress=False)
    assert second.reused_documents == first.documents - 1
    # only the changed chunk: the document's question view ("What causes gout?") is unchanged
    assert second.embedded_vectors == 1 and emb.encoded == 1
    hits = Retriever(index, embedder=HashEmbedder(64)).search("cherries", k=1, method="bm25")
    assert hits[0].doc_id == "gout" and "Cherries" in hits[0].text


def test_full_rebuild_rechunks_but_reuses_cached_vectors(tmp_path, corpus_dir):
    emb = CountingEmbedder()
    build_index([corpus_dir], tmp_path / "idx", emb, progress=False)
    emb.encoded = 0
    report = build_index([corpus_dir], tmp_path / "idx", emb, full=True, progress=False)
    assert report.reused_documents == 0
    assert emb.encoded == 0 and report.cached_vectors == report.chunks + report.documents


def test_killed_build_leaves_previous_index_serving(tmp_path, corpus_dir, monkeypatch):
    index = tmp_path / "idx"
    build_index([corpus_dir], index, HashEmbedder(64), progress=False)
    before = IndexLayout(index).current_build()

    write_jsonl(corpus_dir / "extra.jsonl", [{"id": "new", "text": "Brand new text about migraine."}])

    def crash(*args, **kwargs):
        raise KeyboardInterrupt("killed while writing the BM25 index")

    monkeypatch.setattr(builder_mod.BM25Index, "save", crash)
    with pytest.raises(KeyboardInterrupt):
        build_index([corpus_dir], index, HashEmbedder(64), progress=False)
    # the half-written build exists on disk but is not served
    assert any(p.name.startswith(".tmp-") for p in (index / "builds").iterdir())
    assert IndexLayout(index).current_build() == before
    hits = Retriever(index).search("migraine", k=3, method="bm25")
    assert all(h.doc_id != "new" for h in hits)
    assert verify_index(index)["ok"]

    monkeypatch.undo()
    report = build_index([corpus_dir], index, HashEmbedder(64), progress=False)
    assert not any(p.name.startswith(".tmp-") for p in (index / "builds").iterdir())  # cleaned
    assert report.documents == 7
    assert Retriever(index).search("migraine", k=1, method="bm25")[0].doc_id == "new"


def test_only_unfinished_build_gives_clear_error(tmp_path):
    index = tmp_path / "idx"
    (index / "builds" / ".tmp-20260101T000000Z-1").mkdir(parents=True)
    with pytest.raises(IndexNotFoundError, match="unfinished build"):
        Retriever(index).warm_up()


def test_missing_and_foreign_dirs(tmp_path):
    with pytest.raises(IndexNotFoundError, match="no index at"):
        Retriever(tmp_path / "nothing").warm_up()
    (tmp_path / "foreign").mkdir()
    (tmp_path / "foreign" / "notes.txt").write_text("hello")
    with pytest.raises(IndexNotFoundError, match="not a MedChat index"):
        Retriever(tmp_path / "foreign").warm_up()


def test_current_build_without_manifest_is_corrupt(built_index):
    build = IndexLayout(built_index).current_build()
    (build / "manifest.json").unlink()
    with pytest.raises(IndexCorruptError, match="half-written"):
        Retriever(built_index).warm_up()


def test_truncated_artifact_is_caught_by_verify_and_open(built_index):
    build = IndexLayout(built_index).current_build()
    data = (build / "dense.faiss").read_bytes()
    (build / "dense.faiss").write_bytes(data[: len(data) // 2])
    result = verify_index(built_index)
    assert not result["ok"]
    failed = {c["name"] for c in result["checks"] if not c["ok"]}
    assert "file dense.faiss" in failed
    with pytest.raises(IndexCorruptError):
        Retriever(built_index).warm_up()


def _flip_one_byte(path):
    """Change a byte in the middle, keeping the size: only a checksum can tell."""
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def test_same_size_tampered_chunk_store_is_refused_on_open(built_index):
    # review (g): a same-size-tampered chunks.sqlite was served; only `kb verify` noticed
    _flip_one_byte(IndexLayout(built_index).current_build() / "chunks.sqlite")
    with pytest.raises(IndexCorruptError, match="chunks.sqlite differs"):
        Retriever(built_index).warm_up()


def test_a_swap_to_a_tampered_build_keeps_the_old_one_serving(built_index):
    retriever = Retriever(built_index)
    before = [p.id for p in retriever.search("asthma inhaler", k=3)]
    _flip_one_byte(IndexLayout(built_index).current_build() / "bm25_vocab.json")
    with pytest.raises(IndexCorruptError):
        retriever.reload()
    assert before and [p.id for p in retriever.search("asthma inhaler", k=3)] == before


def test_mismatched_embedder_is_refused(built_index):
    with pytest.raises(IndexMismatchError, match="built with embedder 'hash:64'"):
        Retriever(built_index, embedder=HashEmbedder(32)).warm_up()


def test_bad_sources_are_skipped_and_reported(tmp_path, corpus_dir):
    (corpus_dir / "broken.pdf").write_bytes(b"%PDF-1.4\n1 0 obj <<")
    (corpus_dir / "junk.txt").write_bytes(b"\x00\x01\x02binary")
    (corpus_dir / "empty.md").write_text("")
    (corpus_dir / "table.xlsx").write_bytes(b"PK\x03\x04")
    write_jsonl(corpus_dir / "zz_dupe.jsonl", [{"id": "asthma", "text": "A second asthma document."}])
    report = build_index([corpus_dir], tmp_path / "idx", HashEmbedder(64), progress=False)
    reasons = {Path(s.path).name: s.reason for s in report.skipped}
    assert "broken.pdf" in reasons and "PDF" in reasons["broken.pdf"]
    assert "binary" in reasons["junk.txt"]
    assert "empty" in reasons["empty.md"]
    assert "unsupported" in reasons["table.xlsx"]
    assert "duplicate document id asthma" in reasons["zz_dupe.jsonl"]
    assert report.documents == 6  # every good document made it in
    manifest = read_manifest(IndexLayout(tmp_path / "idx").current_build())
    assert manifest["counts"]["skipped"] == len(report.skipped)


def test_no_loadable_document_is_a_build_error_and_keeps_old_index(tmp_path, built_index):
    empty = tmp_path / "empty_src"
    empty.mkdir()
    (empty / "x.txt").write_text("   ")
    before = IndexLayout(built_index).current_build()
    with pytest.raises(BuildError, match="no document could be loaded"):
        build_index([empty], built_index, HashEmbedder(64), progress=False)
    assert IndexLayout(built_index).current_build() == before


def test_concurrent_build_is_refused(tmp_path, corpus_dir):
    import fcntl

    index = tmp_path / "idx"
    (index / "builds").mkdir(parents=True)
    with open(index / ".build.lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        with pytest.raises(BuildError, match="another build"):
            build_index([corpus_dir], index, HashEmbedder(64), progress=False)


def test_old_builds_are_pruned(tmp_path, corpus_dir):
    index = tmp_path / "idx"
    for i in range(4):
        write_jsonl(corpus_dir / "v.jsonl", [{"id": "v", "text": f"version {i} of the text"}])
        build_index([corpus_dir], index, HashEmbedder(64), progress=False)
    builds = [p for p in (index / "builds").iterdir()]
    assert len(builds) == 2  # current + one previous for rollback
    assert IndexLayout(index).current_build() in [b.resolve() for b in builds]


def test_unchanged_files_are_not_parsed_again(tmp_path, corpus_dir, monkeypatch):
    from knowledge_base import loaders

    index = tmp_path / "idx"
    build_index([corpus_dir], index, HashEmbedder(64), progress=False)
    parsed = []
    real = loaders._LOADERS[".jsonl"]
    monkeypatch.setitem(loaders._LOADERS, ".jsonl", lambda data, path, rel: parsed.append(rel) or real(data, path, rel))
    write_jsonl(corpus_dir / "new.jsonl", [{"id": "n1", "text": "Hiccups are spasms of the diaphragm."}])
    report = build_index([corpus_dir], index, HashEmbedder(64), progress=False)
    assert parsed == ["new.jsonl"]  # en.jsonl and zh.jsonl came from the previous build
    assert report.documents == 7 and report.reused_documents == 6
    assert verify_index(index)["ok"]
    assert Retriever(index).search("hiccups diaphragm", k=1, method="bm25")[0].doc_id == "n1"
    assert Retriever(index).search("uric acid", k=1, method="bm25")[0].doc_id == "gout"


def test_reused_file_still_reports_its_bad_lines(tmp_path, corpus_dir):
    (corpus_dir / "mixed.jsonl").write_text('{"id": "ok", "text": "fine text"}\nnot json\n', encoding="utf-8")
    index = tmp_path / "idx"
    first = build_index([corpus_dir], index, HashEmbedder(64), progress=False)
    second = build_index([corpus_dir], index, HashEmbedder(64), progress=False)
    assert [s.reason for s in first.skipped] == [s.reason for s in second.skipped]
    assert len(second.skipped) == 1 and second.skipped[0].path.endswith("mixed.jsonl:2")


def test_new_duplicate_of_a_reused_file_is_resolved_by_order(tmp_path, corpus_dir):
    index = tmp_path / "idx"
    build_index([corpus_dir], index, HashEmbedder(64), progress=False)
    # "a_first.jsonl" sorts before "en.jsonl" and claims the id "gout": it wins, as in a full build
    write_jsonl(corpus_dir / "a_first.jsonl", [{"id": "gout", "text": "Replacement gout text about cherries."}])
    inc = build_index([corpus_dir], index, HashEmbedder(64), progress=False)
    full = build_index([corpus_dir], tmp_path / "full", HashEmbedder(64), full=True, progress=False)
    assert inc.documents == full.documents == 6
    assert {s.reason for s in inc.skipped} == {s.reason for s in full.skipped}
    hit = Retriever(index).search("cherries", k=1, method="bm25")[0]
    assert hit.doc_id == "gout" and "cherries" in hit.text


def test_loader_version_change_parses_everything(tmp_path, corpus_dir, monkeypatch):
    from knowledge_base import builder, loaders

    index = tmp_path / "idx"
    build_index([corpus_dir], index, HashEmbedder(64), progress=False)
    monkeypatch.setattr(builder, "LOADER_VERSION", "999")
    parsed = []
    real = loaders._LOADERS[".jsonl"]
    monkeypatch.setitem(loaders._LOADERS, ".jsonl", lambda data, path, rel: parsed.append(rel) or real(data, path, rel))
    report = build_index([corpus_dir], index, HashEmbedder(64), progress=False)
    # every file was parsed again; documents are still reused by content hash
    assert sorted(parsed) == ["en.jsonl", "zh.jsonl"]
    assert report.reused_documents == 6
    manifest = read_manifest(IndexLayout(index).current_build())
    assert manifest["loader"] == "999"
