"""The finetune commands through typer's runner."""

from __future__ import annotations

import json

from typer.testing import CliRunner

import finetune.lora.train as lora_mod
from chatbot.cli import app
from finetune.lora.config import LoraRunConfig
from tests.finetune.lora.test_lora import _tiny_base_gguf
from tests.finetune.tiny import ByteTokenizer, tiny_gemma

runner = CliRunner()


def test_lora_reports_missing_data_before_loading_the_model(tmp_path):
    config = tmp_path / "run.yaml"
    config.write_text(f"train_file: {tmp_path / 'missing.jsonl'}\noutput_dir: {tmp_path / 'out'}\n")
    result = runner.invoke(app, ["finetune", "lora", "--config", str(config)])
    assert result.exit_code == 2
    assert "training data not found" in result.output and "finetune data" in result.output


def test_lora_rejects_a_bad_config(tmp_path):
    config = tmp_path / "run.yaml"
    config.write_text("rank: 0\n")
    result = runner.invoke(app, ["finetune", "lora", "--config", str(config)])
    assert result.exit_code == 2 and "rank must be >= 1" in result.output


def test_export_writes_a_gguf_lora(tmp_path):
    rows = tmp_path / "t.jsonl"
    rows.write_text(json.dumps({"prompt": "Q: asthma?\n", "target": "Inhalers [1]."}) + "\n")
    model = tiny_gemma()
    base = tmp_path / "base.gguf"
    _tiny_base_gguf(base, model)
    cfg = LoraRunConfig(train_file=str(rows), dev_file="", dev_examples=0, output_dir=str(tmp_path / "run"),
                        max_steps=1, grad_accum=1, rank=2, alpha=4, threads=1)
    lora_mod.train(cfg, loaded=(ByteTokenizer(), model), progress=False, echo=lambda _m: None)
    out = tmp_path / "a.gguf"
    result = runner.invoke(app, ["finetune", "export", str(tmp_path / "run" / "adapter"), "--out", str(out),
                                 "--base", str(base), "--no-end-of-turn-aliases", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["tensors"] == 28 and report["rank"] == 2 and out.read_bytes()[:4] == b"GGUF"
    human = runner.invoke(app, ["finetune", "export", str(tmp_path / "run" / "adapter"), "--out", str(out),
                                "--base", str(base), "--no-end-of-turn-aliases"])
    assert human.exit_code == 0 and "28 tensors" in human.stdout


def test_export_refuses_a_directory_without_adapter(tmp_path):
    result = runner.invoke(app, ["finetune", "export", str(tmp_path), "--out", str(tmp_path / "a.gguf")])
    assert result.exit_code == 2 and "not a peft adapter directory" in result.output


def test_data_needs_a_built_index(tmp_path):
    result = runner.invoke(app, ["finetune", "data", "--index", str(tmp_path / "nothing"),
                                 "--out", str(tmp_path / "ft")])
    assert result.exit_code == 2 and "no index" in result.output
