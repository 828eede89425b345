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


@pytest.mark.parametrize("args", [[], ["kb"], ["kb", "build"], ["kb", "search"], ["kb", "stats"], ["ask"], ["chat"],
                                  ["eval", "generation"], ["bench", "chat"],
                                  ["kb", "verify"], ["eval", "retrieval"], ["bench", "kb"], ["setup"]])
def test_every_command_has_help(args):
    result = runner.invoke(app, args + ["--help"])
    assert result.exit_code == 0
    assert "Usage" in result.stdout and len(result.stdout) > 200


@pytest.fixture
def fake_env(monkeypatch, tmp_path):
    """The chat commands on the fake backend, a temp database and an open evidence gate (the
    hash embedder's cosines mean nothing)."""
    monkeypatch.setenv("MEDCHAT_PATHS__DATABASE", str(tmp_path / "chat.sqlite"))
    monkeypatch.setenv("MEDCHAT_CHAT__MIN_DENSE_EVIDENCE_EN", "0")
    monkeypatch.setenv("MEDCHAT_CHAT__MIN_DENSE_EVIDENCE_ZH", "0")
    # the real classifier loads USE; its CLI path is tested in test_cli_classifier / the slow tests
    monkeypatch.setenv("MEDCHAT_CLASSIFIER__ENABLED", "false")
    return tmp_path


def test_ask_json_contract(cli_index, fake_env):
    index, _ = cli_index
    result = runner.invoke(app, ["ask", "How is asthma treated with an inhaler?", "--index", str(index),
                                 "--backend", "fake", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    for key in ("answer", "lang", "intent", "emotion", "red_flag", "citations", "passages", "flags",
                "timings", "backend"):
        assert key in data
    assert data["intent"] is None and data["emotion"] is None and data["red_flag"] is None
    assert {"n", "doc_id", "title", "url"} <= set(data["citations"][0])
    assert set(data["timings"]) >= {"retrieval_ms", "ttft_ms", "total_ms"} and data["backend"] == "fake"
    follow = runner.invoke(app, ["ask", "Is it dangerous?", "--session", data["session_id"], "--index",
                                 str(index), "--backend", "fake", "--json"])
    assert "query_rewritten" in json.loads(follow.stdout)["flags"]


def test_ask_human_output_and_missing_index(tmp_path, cli_index, fake_env):
    index, _ = cli_index
    ok = runner.invoke(app, ["ask", "慢性胃炎怎么治疗？", "--index", str(index), "--backend", "fake"])
    assert ok.exit_code == 0 and "[1]" in ok.stdout
    missing = runner.invoke(app, ["ask", "hi there", "--index", str(tmp_path / "nope"), "--backend", "fake"])
    assert missing.exit_code == 2 and "medchat kb build" in missing.stderr


def test_chat_repl_commands(cli_index, fake_env):
    index, _ = cli_index
    script = "How is asthma treated with an inhaler?\n/sources\n/new\n/sources\n/quit\n"
    result = runner.invoke(app, ["chat", "--index", str(index), "--backend", "fake"], input=script)
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "[1]" in out and "example.org/asthma" in out
    assert "(new conversation / 新对话)" in out and "(no sources / 暂无来源)" in out


def test_eval_generation(tmp_path, cli_index, fake_env):
    index, _ = cli_index
    qfile = tmp_path / "g.jsonl"
    qfile.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in [
        {"id": "1", "question": "How is asthma treated with an inhaler?", "lang": "en",
         "reference": "Asthma is treated with inhaled corticosteroids."},
        {"id": "2", "question": "那它会复发吗？", "lang": "zh",
         "history": [{"role": "user", "content": "慢性胃炎怎么治疗？"}, {"role": "assistant", "content": "规律饮食。[1]"}]},
    ]) + "\n", encoding="utf-8")
    result = runner.invoke(app, ["eval", "generation", str(qfile), "--index", str(index), "--backend", "fake", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    summary = data["summary"]
    assert summary["n"] == 2 and summary["means"]["language_match"] == 1.0
    assert 0 < summary["means"]["rouge_l"] <= 1 and set(summary["by_lang"]) == {"en", "zh"}
    human = runner.invoke(app, ["eval", "generation", str(qfile), "--index", str(index), "--backend", "fake"])
    assert human.exit_code == 0 and "language_match=1.000" in human.stdout
    assert len(data["answers"]) == 2 and "query_rewritten" in data["answers"][1]["flags"]
    # both questions reached the (fake) model: its own text is scored beside the replies
    assert data["model_summary"]["n"] == 2
    first = data["answers"][0]
    assert first["model_answer"].endswith("[1]") and first["model"]["citation_valid"] == 1
    assert "model text (before the engine's safeguards)" in human.stdout


def test_bench_chat_writes_json(tmp_path, cli_index, fake_env):
    index, _ = cli_index
    out = tmp_path / "chat.json"
    result = runner.invoke(app, ["bench", "chat", "--index", str(index), "--backend", "fake", "--out", str(out)])
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    assert data["questions"] == 8 and data["backend"] == "fake"
    assert data["ttft_ms"]["p50"] <= data["ttft_ms"]["p95"] and data["decode_tok_s"]["p50"] > 0


def test_python_m_chatbot_cli_is_medchat():
    # ui/load.py starts `python -m chatbot.cli serve`; the package needs its __main__.py for that
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-m", "chatbot.cli", "--help"], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert "hash-password" in result.stdout and "finetune" in result.stdout
