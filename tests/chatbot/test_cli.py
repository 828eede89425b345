"""Every CLI command through typer's runner, on a small corpus with the hash embedder."""

import json

import pytest
from typer.testing import CliRunner

from chatbot.cli import app

runner = CliRunner()


@pytest.fixture
def cli_index(tmp_path, corpus_dir):
    index = tmp_path / "idx"
    result = runner.invoke(app, ["kb", "build", "--source", str(corpus_dir), "--index", str(index),
                                 "--embedder", "hash", "--json"])
    assert result.exit_code == 0, result.output
    return index, json.loads(result.stdout)


def test_build_json_summary(cli_index):
    _, report = cli_index
    assert report["documents"] == 6 and report["chunks"] >= 6
    assert report["embedder"] == "hash:64" and report["skipped"] == []
    assert set(report["stage_seconds"]) >= {"load", "embed", "faiss", "bm25"}


def test_build_human_summary_lists_skipped(tmp_path, corpus_dir):
    (corpus_dir / "bad.xml").write_text("<Document id='1' source='X'><QAPairs>")
    result = runner.invoke(app, ["kb", "build", "--source", str(corpus_dir), "--index",
                                 str(tmp_path / "i"), "--embedder", "hash", "--quiet"])
    assert result.exit_code == 0, result.output
    assert "documents:  6" in result.stdout
    assert "skipped" in result.stdout and "bad.xml" in result.stdout and "malformed XML" in result.stdout


def test_search_json_contract(cli_index):
    index, _ = cli_index
    result = runner.invoke(app, ["kb", "search", "gout uric acid", "--index", str(index), "-k", "3", "--json"])
    assert result.exit_code == 0, result.output
    hits = json.loads(result.stdout)
    assert len(hits) == 3
    assert {"doc_id", "chunk_id", "title", "url", "source", "lang", "score", "text"} <= set(hits[0])
    assert hits[0]["doc_id"] == "gout"
    assert [h["score"] for h in hits] == sorted((h["score"] for h in hits), reverse=True)


def test_search_human_and_chinese(cli_index):
    index, _ = cli_index
    result = runner.invoke(app, ["kb", "search", "慢性胃炎怎么治疗", "--index", str(index), "--method", "bm25"])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("[1]") and "zh_gastritis" in result.stdout.splitlines()[0]


def test_search_errors_are_clear(tmp_path, cli_index):
    index, _ = cli_index
    empty = runner.invoke(app, ["kb", "search", "   ", "--index", str(index)])
    assert empty.exit_code == 2 and "query is empty" in empty.stderr
    missing = runner.invoke(app, ["kb", "search", "x", "--index", str(tmp_path / "none")])
    assert missing.exit_code == 2 and "no index at" in missing.stderr and "medchat kb build" in missing.stderr
    mismatch = runner.invoke(app, ["kb", "search", "x", "--index", str(index), "--embedder", "hash:32"])
    assert mismatch.exit_code == 2 and "built with embedder 'hash:64'" in mismatch.stderr
    assert "Traceback" not in empty.output + missing.output + mismatch.output


def test_stats_and_verify(cli_index):
    index, _ = cli_index
    stats = runner.invoke(app, ["kb", "stats", "--index", str(index), "--json"])
    assert stats.exit_code == 0
    data = json.loads(stats.stdout)
    assert data["documents"] == 6 and data["embedder"] == "hash:64" and data["dense_index"] == "flat"
    ok = runner.invoke(app, ["kb", "verify", "--index", str(index)])
    assert ok.exit_code == 0 and "index OK" in ok.stdout
    (next((index / "builds").iterdir()) / "bm25.npz").write_bytes(b"garbage")
    bad = runner.invoke(app, ["kb", "verify", "--index", str(index), "--json"])
    assert bad.exit_code == 1
    assert not json.loads(bad.stdout)["ok"]


def test_eval_retrieval(tmp_path, cli_index):
    index, _ = cli_index
    qfile = tmp_path / "q.jsonl"
    qfile.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in [
        {"id": "1", "question": "inhaler for wheezing", "relevant": ["asthma"], "lang": "en"},
        {"id": "2", "question": "胃炎 治疗", "relevant": ["zh_gastritis"], "lang": "zh",
         "grades": {"zh_gastritis": 4}},
    ]) + "\n", encoding="utf-8")
    result = runner.invoke(app, ["eval", "retrieval", str(qfile), "--index", str(index), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    for key in ("n", "recall@1", "recall@5", "recall@10", "mrr@10", "ndcg@10", "avg_score@1"):
        assert key in data
    assert data["n"] == 2 and data["recall@5"] == 1.0
    human = runner.invoke(app, ["eval", "retrieval", str(qfile), "--index", str(index), "--method", "bm25"])
    assert human.exit_code == 0 and "recall@5=1.0" in human.stdout
    bad = tmp_path / "bad.jsonl"
    bad.write_text("{oops\n")
    err = runner.invoke(app, ["eval", "retrieval", str(bad), "--index", str(index)])
    assert err.exit_code == 2 and "bad.jsonl:1" in err.stderr


def test_invalid_settings_env_is_reported(monkeypatch, cli_index):
    index, _ = cli_index
    monkeypatch.setenv("MEDCHAT_RETRIEVAL__METHOD", "telepathy")
    result = runner.invoke(app, ["kb", "search", "x", "--index", str(index)])
    assert result.exit_code == 2 and "invalid settings" in result.stderr and "retrieval.method" in result.stderr


@pytest.mark.parametrize("args", [[], ["kb"], ["kb", "build"], ["kb", "search"], ["kb", "stats"],
                                  ["kb", "verify"], ["eval", "retrieval"], ["bench", "kb"], ["setup"]])
def test_every_command_has_help(args):
    result = runner.invoke(app, args + ["--help"])
    assert result.exit_code == 0
    assert "Usage" in result.stdout and len(result.stdout) > 200
