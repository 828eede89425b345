"""``medchat eval all``: sections, statuses, the written report and plots (toy index, fake LLM)."""

import json

import pytest
from typer.testing import CliRunner

import chatbot.evaluation.report as R
from chatbot.cli import app
from tests.conftest import write_jsonl

runner = CliRunner()


def test_recall_curve_counts_relevant_documents_found_by_k():
    rows = [{"relevant": ["a", "b"], "retrieved": ["x", "a", "b"]},
            {"relevant": ["c"], "retrieved": ["c", "y", "z"]}]
    # k=1: (0/2 + 1/1)/2 ; k=2: (1/2 + 1)/2 ; k=3: (2/2 + 1)/2
    assert R.recall_curve(rows, max_k=3) == [0.5, 0.75, 1.0]
    assert R.recall_curve([], max_k=3) == []


@pytest.fixture
def toy_eval(tmp_path, monkeypatch):
    eval_dir = tmp_path / "eval"
    eval_dir.mkdir()
    write_jsonl(eval_dir / "ret_en.jsonl", [
        {"id": "1", "question": "How is asthma treated?", "relevant": ["asthma"], "lang": "en"},
        {"id": "2", "question": "What causes gout?", "relevant": ["gout"], "lang": "en"}])
    write_jsonl(eval_dir / "consult_dev.jsonl", [
        {"id": "c1", "question": "How is asthma treated with an inhaler?", "lang": "en"},
        {"id": "c2", "question": "慢性胃炎怎么治疗？", "lang": "zh"}])
    monkeypatch.setattr(R, "EVAL_DIR", eval_dir)
    monkeypatch.setattr(R, "RETRIEVAL_SETS", (("ret_en.jsonl", "test data", 0),))
    monkeypatch.setenv("MEDCHAT_PATHS__DATABASE", str(tmp_path / "chat.sqlite"))
    monkeypatch.setenv("MEDCHAT_CHAT__MIN_DENSE_EVIDENCE_EN", "0")
    monkeypatch.setenv("MEDCHAT_CHAT__MIN_DENSE_EVIDENCE_ZH", "0")
    return eval_dir


def test_eval_all_writes_report_with_data_commands_metrics_and_plots(tmp_path, built_index, toy_eval):
    out = tmp_path / "report"
    result = runner.invoke(app, ["eval", "all", "--report", str(out), "--index", str(built_index),
                                 "--backend", "fake", "--only", "retrieval", "--only", "generation"])
    assert result.exit_code == 0, result.output
    data = json.loads((out / "report.json").read_text())
    sections = {s["key"]: s for s in data["sections"]}
    assert [s["status"] for s in sections.values()] == ["ok", "ok"]
    ret = sections["retrieval"]
    assert ret["data"][0]["size"] == 2 and ret["data"][0]["licence"] == "test data"
    assert set(ret["metrics"]["ret_en.jsonl"]) == {"bm25", "dense", "hybrid"}
    # the toy corpus holds both answers: BM25 ranks each question's own document first
    assert ret["metrics"]["ret_en.jsonl"]["bm25"]["recall@1"] == 1.0
    gen = sections["generation"]
    assert gen["metrics"]["n"] == 2 and set(gen["metrics"]["by_lang"]) == {"en", "zh"}
    for s in sections.values():
        for plot in s["plots"]:
            assert (out / plot).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    md = (out / "report.md").read_text()
    assert "medchat eval retrieval" in md and "medchat eval generation" in md
    assert f"![{ret['plots'][0]}]" in md


def test_skipped_and_failed_sections_are_reported_not_hidden(tmp_path, monkeypatch):
    def absent(ctx, section):
        raise R.SectionSkipped("no adapter configured")

    def broken(ctx, section):
        raise R.MedChatError("eval file is malformed")

    monkeypatch.setattr(R, "SECTIONS", {"a": ("Absent part", absent), "b": ("Broken part", broken)})
    ctx = R.Context(report_dir=tmp_path / "r", quick=True, app_factory=lambda **kw: None, echo=lambda s: None)
    report = R.run_all(ctx)
    assert [(s["status"], s["reason"]) for s in report["sections"]] == [
        ("skipped", "no adapter configured"), ("failed", "eval file is malformed")]
    md = (tmp_path / "r" / "report.md").read_text()
    assert "**skipped**: no adapter configured" in md and "**failed**: eval file is malformed" in md


def test_unknown_section_is_a_clear_error(tmp_path, built_index, toy_eval):
    result = runner.invoke(app, ["eval", "all", "--report", str(tmp_path / "r"), "--index", str(built_index),
                                 "--backend", "fake", "--only", "telepathy"])
    assert result.exit_code == 2 and "unknown report section" in result.output


def test_eval_sets_are_the_dev_file_then_every_holdout(tmp_path, monkeypatch):
    for name in ("safety_dev.jsonl", "safety_holdout2.jsonl", "safety_holdout.jsonl", "triage_dev.jsonl"):
        (tmp_path / name).write_text("{}\n")
    monkeypatch.setattr(R, "EVAL_DIR", tmp_path)
    assert R.eval_sets("safety") == ["safety_dev.jsonl", "safety_holdout.jsonl", "safety_holdout2.jsonl"]
    assert R.eval_sets("triage") == ["triage_dev.jsonl"]


def test_comparison_pairs_base_and_finetuned_per_view():
    base = {"means": {"support": 1.0, "rouge_l": 0.5}, "model_text": {"means": {"support": 0.2}}}
    tuned = {"means": {"support": 0.98, "rouge_l": 0.7}, "model_text": {"means": {"support": 0.9}}}
    table = R.comparison(base, tuned)
    assert table["reply"]["rouge_l"] == {"base": 0.5, "finetuned": 0.7}
    assert table["model text"] == {"support": {"base": 0.2, "finetuned": 0.9}}


def test_safety_and_triage_sections_agree_with_their_own_eval_commands(tmp_path, built_index, monkeypatch):
    monkeypatch.setattr(R, "eval_sets", lambda prefix: [f"{prefix}_dev.jsonl"])
    monkeypatch.setenv("MEDCHAT_PATHS__DATABASE", str(tmp_path / "chat.sqlite"))
    monkeypatch.setenv("MEDCHAT_CLASSIFIER__ENABLED", "false")
    out = tmp_path / "report"
    result = runner.invoke(app, ["eval", "all", "--report", str(out), "--index", str(built_index),
                                 "--backend", "fake", "--only", "safety", "--only", "triage"])
    assert result.exit_code == 0, result.output
    sections = {s["key"]: s for s in json.loads((out / "report.json").read_text())["sections"]}
    safety = json.loads(runner.invoke(app, ["eval", "safety", "data/eval/safety_dev.jsonl", "--json"]).stdout)
    assert sections["safety"]["metrics"]["safety_dev.jsonl"]["recall"] == safety["recall"]
    assert sections["safety"]["metrics"]["safety_dev.jsonl"]["false_alarm_rate"] == safety["false_alarm_rate"]
    triage = json.loads(runner.invoke(app, ["eval", "triage", "data/eval/triage_dev.jsonl", "--json"]).stdout)
    assert sections["triage"]["metrics"]["triage_dev.jsonl"]["accuracy"] == triage["accuracy"]
    assert (out / sections["triage"]["plots"][0]).stat().st_size > 1000


def test_lora_section_compares_base_and_finetuned_through_the_engine(tmp_path, built_index, monkeypatch):
    write_jsonl(tmp_path / "q.jsonl", [{"id": "1", "question": "How is asthma treated with an inhaler?", "lang": "en"}])
    monkeypatch.setattr(R, "LORA_EVAL", tmp_path / "q.jsonl")
    monkeypatch.setenv("MEDCHAT_PATHS__DATABASE", str(tmp_path / "chat.sqlite"))
    monkeypatch.setenv("MEDCHAT_CHAT__MIN_DENSE_EVIDENCE_EN", "0")
    monkeypatch.setenv("MEDCHAT_CLASSIFIER__ENABLED", "false")
    seen = []
    real_app = R.Context.app

    def spy(self, **overrides):
        seen.append(overrides.get("adapter"))
        return real_app(self, **overrides)

    monkeypatch.setattr(R.Context, "app", spy)
    out = tmp_path / "report"
    result = runner.invoke(app, ["eval", "all", "--report", str(out), "--index", str(built_index),
                                 "--backend", "fake", "--only", "lora"])
    assert result.exit_code == 0, result.output
    lora = json.loads((out / "report.json").read_text())["sections"][0]
    assert seen == ["none", "auto"] and set(lora["metrics"]) == {"comparison", "base", "finetuned", "training"}
    assert set(lora["metrics"]["comparison"]) == {"reply", "model text"}
    assert lora["metrics"]["base"]["n"] == 1 and lora["metrics"]["training"]["steps"] >= 1
    assert "--adapter none" in lora["commands"][0] and "--adapter auto" in lora["commands"][1]


def test_a_refitted_intent_head_is_not_reported_as_held_out(tmp_path):
    from types import SimpleNamespace

    (tmp_path / "metrics.json").write_text(json.dumps({"heads": {"intent": {
        "refit_on_held_back": True,
        "held_back_by_source": {"kuake-qic": {"n": 1051, "accuracy": 0.7793, "macro_f1": 0.7459}}}}}))
    app_ = SimpleNamespace(settings=SimpleNamespace(classifier=SimpleNamespace(model_dir=tmp_path)))
    ctx = R.Context(report_dir=tmp_path / "r", quick=True, app_factory=lambda **kw: app_, echo=lambda s: None)
    section = R.Section("classifier", "Classifier")
    section.metrics["kuake_heldback.jsonl"] = {"kind": "intent", "accuracy": 0.955}
    R._held_out_intent(ctx, section)
    assert "not a held-out score" in section.metrics["kuake_heldback.jsonl"]["note"]
    assert section.metrics["kuake_held_out_before_refit"]["accuracy"] == 0.7793
