"""`medchat classify`, `eval intent|emotion`, `train classifier` through typer's runner, with a
tiny model on the hash embedder (no real model)."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from chatbot.cli import app
from tests.chatbot.classifier_fixtures import EMOTION_EXAMPLES, INTENT_EXAMPLES, train_tiny

runner = CliRunner()


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "model"
    train_tiny(out)
    return out


def test_classify_json_contract(model_dir):
    result = runner.invoke(app, ["classify", "高血压怎么治疗", "--model", str(model_dir), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert set(data) == {"intent", "emotion"}
    assert set(data["intent"]) == {"label", "score"} and set(data["emotion"]) == {"label", "score"}
    assert data["intent"]["label"] == "treatment" and 0 < data["intent"]["score"] <= 1


def test_classify_human_output_names_both_languages(model_dir):
    result = runner.invoke(app, ["classify", "How much does an MRI cost", "--model", str(model_dir)])
    assert result.exit_code == 0, result.output
    assert "intent:  cost (医疗费用)" in result.stdout and "emotion:" in result.stdout


def test_classify_empty_message_is_a_low_scored_fallback(model_dir):
    result = runner.invoke(app, ["classify", "", "--model", str(model_dir), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["intent"]["label"] == "other" and data["emotion"]["label"] == "neutral"
    assert data["intent"]["score"] < 0.5


def test_classify_without_a_model_names_the_train_command(tmp_path):
    result = runner.invoke(app, ["classify", "hello", "--model", str(tmp_path / "none")])
    assert result.exit_code == 2
    assert "no classifier model" in result.stderr and "medchat train classifier" in result.stderr


def _write(path, rows):
    path.write_text("".join(json.dumps({"text": t, "label": l}, ensure_ascii=False) + "\n" for t, l in rows),
                    encoding="utf-8")
    return path


def test_eval_intent_with_kuake_names_writes_png_report(model_dir, tmp_path):
    f = _write(tmp_path / "intent.jsonl", [("胃炎怎么治疗", "治疗方案"), ("种牙多少钱", "医疗费用"),
                                           ("How is gout treated", "治疗方案"), ("眉毛会长吗", "其他")])
    result = runner.invoke(app, ["eval", "intent", str(f), "--model", str(model_dir), "--report",
                                 str(tmp_path / "rep"), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["n"] == 4 and set(data["per_class"]) <= {"treatment", "cost", "other"}
    assert {"accuracy", "macro_f1", "per_class", "confusion", "labels", "latency_ms", "report"} <= set(data)
    pngs = sorted(p.name for p in (tmp_path / "rep").glob("*.png"))
    assert pngs == ["intent_intent_confusion.png", "intent_intent_f1.png"]
    assert (tmp_path / "rep" / pngs[0]).read_bytes()[:4] == b"\x89PNG"


def test_eval_emotion_with_ewect_names_prints_the_table(model_dir, tmp_path):
    f = _write(tmp_path / "emo.jsonl", [("我好害怕", "fear"), ("气死我了，我要投诉", "angry"),
                                        ("太好了，好开心", "happy"), ("感冒吃什么药", "neutral")])
    result = runner.invoke(app, ["eval", "emotion", str(f), "--model", str(model_dir)])
    assert result.exit_code == 0, result.output
    assert "accuracy" in result.stdout and "macro-F1" in result.stdout
    for label in ("fear", "anger", "joy", "neutral"):
        assert label in result.stdout


def test_eval_rejects_unknown_labels(model_dir, tmp_path):
    f = _write(tmp_path / "bad.jsonl", [("hi", "bored")])
    result = runner.invoke(app, ["eval", "emotion", str(f), "--model", str(model_dir)])
    assert result.exit_code == 2 and "unknown emotion label 'bored'" in result.stderr


def test_train_classifier_from_source_files(tmp_path):
    """The real readers on miniature copies of the source formats."""
    shared = tmp_path / "shared"
    (shared / "kuake-qic").mkdir(parents=True)
    kuake = [{"id": f"s{i}", "query": t, "label": zh} for i, (t, zh) in enumerate(
        [(t, "治疗方案") for t in INTENT_EXAMPLES["treatment"][:5]]
        + [(t, "医疗费用") for t in INTENT_EXAMPLES["cost"][:5]]
        + [(t, "其他") for t in INTENT_EXAMPLES["other"][:5]])]
    (shared / "kuake-qic" / "KUAKE-QIC_train.json").write_text(json.dumps(kuake, ensure_ascii=False), encoding="utf-8")
    (shared / "medquad" / "1_X").mkdir(parents=True)
    (shared / "medquad" / "1_X" / "0001.xml").write_text(
        '<Document><QAPairs>' + "".join(
            f'<QAPair pid="{i}"><Question qid="1-{i}" qtype="treatment">What are the treatments for {d} ?</Question>'
            f'<Answer>x</Answer></QAPair>' for i, d in enumerate(["asthma", "gout", "acne", "flu"]))
        + '</QAPairs></Document>', encoding="utf-8")
    (shared / "goemotions" / "ekman").mkdir(parents=True)
    order = ["anger", "disgust", "fear", "joy", "neutral", "sadness", "surprise"]
    lines = [f"{t}\t{order.index(label)}\tid{i}" for label, texts in EMOTION_EXAMPLES.items()
             for i, t in enumerate(texts) if t.isascii()] + ["two labels\t3,4\tidx"]
    (shared / "goemotions" / "ekman" / "train.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    examples = tmp_path / "examples"
    examples.mkdir()
    _write(examples / "intents.jsonl", [(t, k) for k in ("greeting", "administrative", "out_of_scope")
                                        for t in INTENT_EXAMPLES[k]])
    _write(examples / "emotions.jsonl", [(t, k) for k, texts in EMOTION_EXAMPLES.items() for t in texts
                                         if not t.isascii()])
    out = tmp_path / "model"
    result = runner.invoke(app, ["train", "classifier", "--out", str(out), "--data", str(shared),
                                 "--examples", str(examples), "--encoder", "hash:32", "--no-cache",
                                 "--hash-dim", "1024", "--c", "10", "--dense-scale", "1"])
    assert result.exit_code == 0, result.output
    assert "intent: held-back accuracy" in result.stdout
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["ngrams"]["hash_dim"] == 1024
    assert set(cfg["heads"]["intent"]["labels"]) == {"treatment", "cost", "other", "greeting",
                                                     "administrative", "out_of_scope"}
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["heads"]["intent"]["train_sources"].keys() == {"kuake-qic", "medquad", "project"}
    # the two-label GoEmotions row is left out
    assert metrics["heads"]["emotion"]["n_train"] + metrics["heads"]["emotion"]["n_held_back"] == \
        sum(len(v) for v in EMOTION_EXAMPLES.values())
    classify = runner.invoke(app, ["classify", "哮喘怎么治疗", "--model", str(out), "--json"])
    assert json.loads(classify.stdout)["intent"]["label"] == "treatment"


def test_train_classifier_rejects_an_unknown_head_type(tmp_path):
    result = runner.invoke(app, ["train", "classifier", "--out", str(tmp_path / "m"), "--encoder", "hash:32",
                                 "--no-cache", "--linear", "forest"])
    assert result.exit_code == 2 and "--linear 'forest'" in result.stderr and "svm or logreg" in result.stderr
    assert not (tmp_path / "m").exists()


def test_train_classifier_reports_missing_data(tmp_path):
    result = runner.invoke(app, ["train", "classifier", "--out", str(tmp_path / "m"), "--data",
                                 str(tmp_path / "nothing"), "--encoder", "hash:32", "--no-cache"])
    assert result.exit_code == 2 and "training data missing" in result.stderr
