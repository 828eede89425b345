"""``medchat eval all --quick`` on the embedded defaults: every section runs on the real index, the
real models and the shipped adapter and classifier, and the report agrees with the per-part eval
commands. This is how CI runs the evaluation report (issue 8); it reads the default index that
``medchat setup`` builds (CI builds it first)."""

import json

import pytest
from typer.testing import CliRunner

from chatbot.cli import app

runner = CliRunner()


@pytest.fixture(scope="module")
def quick_report(tmp_path_factory):
    from chatbot.settings import load_settings

    index = load_settings().paths.index_dir
    assert (index / "current").exists(), f"no default index at {index}: run `medchat setup` first"
    out = tmp_path_factory.mktemp("report")
    result = runner.invoke(app, ["eval", "all", "--quick", "--report", str(out)])
    assert result.exit_code == 0, result.output
    return out, json.loads((out / "report.json").read_text(encoding="utf-8"))


@pytest.mark.slow
def test_every_section_ran_and_is_written_with_its_rerun_command(quick_report):
    out, report = quick_report
    sections = {s["key"]: s for s in report["sections"]}
    assert list(sections) == ["retrieval", "generation", "safety", "triage", "classifier", "lora"]
    # CI has ../shared/data beside the clone, so not even the classifier section may be skipped
    assert {k: s["status"] for k, s in sections.items()} == {k: "ok" for k in sections}
    assert report["mode"] == "quick"
    md = (out / "report.md").read_text(encoding="utf-8")
    for s in sections.values():
        assert s["commands"] and s["data"], s["key"]
        assert f'<a id="{s["key"]}"></a>' in md
        for plot in s["plots"]:
            assert (out / plot).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
def test_report_figures_are_the_eval_commands_figures(quick_report):
    _, report = quick_report
    sections = {s["key"]: s for s in report["sections"]}
    safety = json.loads(runner.invoke(app, ["eval", "safety", "data/eval/safety_dev.jsonl", "--json"]).stdout)
    assert sections["safety"]["metrics"]["safety_dev.jsonl"]["recall"] == safety["recall"]
    triage = json.loads(runner.invoke(app, ["eval", "triage", "data/eval/triage_dev.jsonl", "--json"]).stdout)
    assert sections["triage"]["metrics"]["triage_dev.jsonl"]["accuracy"] == triage["accuracy"]
    # Cross-lingual retrieval is what the multilingual embedder is for: BM25 cannot match Chinese
    # words to English passages, dense and hybrid can.
    xling = sections["retrieval"]["metrics"]["retrieval_zh_en_crosslingual.jsonl"]
    assert xling["hybrid"]["recall@5"] > xling["bm25"]["recall@5"] + 0.2


@pytest.mark.slow
def test_lora_section_compares_the_model_text_of_base_and_finetuned(quick_report):
    _, report = quick_report
    lora = next(s for s in report["sections"] if s["key"] == "lora")
    table = lora["metrics"]["comparison"]
    assert set(table) == {"reply", "model text"}
    assert lora["metrics"]["base"]["adapter"] is None and lora["metrics"]["finetuned"]["adapter"]
    # The base model rambles until the token cap on these prompts; the finetuned one answers.
    assert table["model text"]["language_match"]["finetuned"] >= table["model text"]["language_match"]["base"]
