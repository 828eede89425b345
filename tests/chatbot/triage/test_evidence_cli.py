"""Evidence from a real (small, hash-embedded) index, the CLI commands through CliRunner, the
evaluation metrics on a hand-computed file, the store, and the chat disposition in the service."""

import json

import pytest
from typer.testing import CliRunner

from chatbot.cli import app
from chatbot.engine.service import ConsultationService
from chatbot.llm.fake import FakeGenerator
from chatbot.prompts import PromptLibrary
from chatbot.settings import ChatSettings, LLMSettings, TriageSettings
from chatbot.store import ChatStore
from chatbot.triage import Intake, TriageEngine
from chatbot.triage.evaluation import TriageEvalError, evaluate, load_vignettes
from knowledge_base.retriever import Retriever
from tests.conftest import write_jsonl

from .conftest import KeywordScreen

runner = CliRunner()


def test_evidence_comes_from_the_index(built_index):
    engine = TriageEngine(screen=KeywordScreen({}), retriever=Retriever(built_index),
                          settings=TriageSettings(evidence_passages=2))
    result = engine.assess(Intake("wheezing and short of breath, asthma attack", age=30))
    assert result.disposition == "emergency"
    assert len(result.evidence) == 2 and result.evidence[0]["doc_id"] == "asthma"
    assert {"doc_id", "title", "url", "source", "text"} <= set(result.evidence[0])
    assert result.to_json()["evidence"] == result.evidence
    none = engine.assess(Intake("asthma attack"), with_evidence=False)
    assert none.evidence == []


def test_missing_index_is_a_warning_not_a_failure(tmp_path):
    engine = TriageEngine(screen=KeywordScreen({}), retriever=Retriever(tmp_path / "nothing"))
    result = engine.assess(Intake("crushing chest pain"))
    assert result.disposition == "emergency" and result.evidence == []
    assert any("Supporting guideline passages are unavailable" in w for w in result.warnings)


TRIAGE_KEYS = {"acuity", "disposition", "department", "reasons", "red_flags", "evidence", "note",
               "lang", "warnings", "opinion", "understood"}


def test_cli_triage_json_keys_exactly(built_index):
    result = runner.invoke(app, ["triage", "A 45-year-old man with crushing chest pain", "--index",
                                 str(built_index), "--hr", "120", "--spo2", "96", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert set(data) == TRIAGE_KEYS
    assert data["acuity"] == 2 and data["disposition"] == "emergency"
    assert data["department"]["zh"] == "急诊科"
    assert {r["code"] for r in data["reasons"]} >= {"chest_pain", "hr_above_100"}
    assert data["evidence"] and data["note"].startswith("TRIAGE NOTE")


def test_cli_triage_human_chinese_and_options():
    result = runner.invoke(app, ["triage", "昨天前臂磕到桌角，有一块淤青", "--age", "70", "--sex", "F",
                                 "--no-evidence", "--comorbidity", "高血压"])
    assert result.exit_code == 0, result.output
    assert "4 级" in result.stdout and "门诊" in result.stdout and "65 岁及以上" in result.stdout
    assert "预检分诊记录" in result.stdout and "既往病史：高血压" in result.stdout


def test_cli_triage_rejects_impossible_vitals():
    result = runner.invoke(app, ["triage", "cough", "--spo2", "140", "--no-evidence"])
    assert result.exit_code == 2
    assert "error: impossible spo2 value 140" in result.stderr and "hint" in result.stderr


def test_cli_triage_save_stores_the_record(tmp_path, monkeypatch):
    db = tmp_path / "t.sqlite"
    monkeypatch.setenv("MEDCHAT_PATHS__DATABASE", str(db))
    result = runner.invoke(app, ["triage", "burning when I pee, call me on 13812345678",
                                 "--no-evidence", "--save", "--nurse", "Li Na", "--json"])
    assert result.exit_code == 0, result.output
    with ChatStore(db) as store:
        rows = store.recent_triage(5)
    assert len(rows) == 1 and rows[0].nurse == "Li Na"
    assert rows[0].result["disposition"] == "routine"
    assert "13812345678" not in json.dumps(rows[0].intake) and "13812345678" not in rows[0].note


def _vignettes(tmp_path):
    return write_jsonl(tmp_path / "v.jsonl", [
        {"id": "a", "text": "crushing chest pain", "expected": "em"},
        {"id": "b", "text": "runny nose for two days", "age": 30, "expected": "sc"},
        {"id": "c", "text": "runny nose for two days", "age": 30, "expected": "em"},        # under
        {"id": "d", "text": "crushing chest pain", "expected": "ne"},                        # over
        {"id": "e", "text": "burning when urinating", "age": 30, "expected": "routine"},
        {"id": "f", "text": "burning when urinating", "age": 30, "expected": "urgent"},      # under (4 levels)
        {"id": "g", "text": "feels unwell", "vitals": {"spo2": 85}, "expected": "emergency"},
    ])


def test_eval_metrics_hand_computed(tmp_path):
    engine = TriageEngine(screen=KeywordScreen({}))
    r = evaluate(engine, load_vignettes(_vignettes(tmp_path)))
    assert r["n"] == 7
    assert r["accuracy"] == round(4 / 7, 4)
    assert r["under_triage_rate"] == round(2 / 7, 4) and r["over_triage_rate"] == round(1 / 7, 4)
    assert r["emergency_recall"] == round(2 / 3, 4)           # a, g yes; c no
    assert r["per_class_recall"] == {"em": 0.5, "emergency": 1.0, "ne": 0.0, "routine": 1.0,
                                     "sc": 1.0, "urgent": 0.0}
    assert r["confusion"]["em"] == {"em": 1, "sc": 1} and r["confusion"]["urgent"] == {"routine": 1}
    assert r["confusion_3level"]["ne"] == {"em": 1, "ne": 2, "sc": 0}


def test_cli_eval_triage(tmp_path):
    path = _vignettes(tmp_path)
    human = runner.invoke(app, ["eval", "triage", str(path)])
    assert human.exit_code == 0, human.output
    assert "n=7  accuracy=0.571  emergency_recall=0.667" in human.stdout
    assert "under_triage=0.286  over_triage=0.143" in human.stdout
    as_json = runner.invoke(app, ["eval", "triage", str(path), "--json"])
    data = json.loads(as_json.stdout)
    assert data["accuracy"] == 0.5714 and data["confusion_3level"]["em"] == {"em": 2, "ne": 0, "sc": 1}


@pytest.mark.parametrize("row,message", [
    ({"id": "x", "text": "cough"}, "missing field 'expected'"),
    ({"id": "x", "text": "cough", "expected": "soon"}, "is not one of"),
    ({"id": "x", "text": "cough", "expected": "sc", "vitals": {"spo2": 140}}, "impossible spo2"),
])
def test_eval_triage_bad_files(tmp_path, row, message):
    path = write_jsonl(tmp_path / "bad.jsonl", [row])
    result = runner.invoke(app, ["eval", "triage", str(path)])
    assert result.exit_code == 2 and message in result.stderr


def test_eval_loader_refuses_duplicates(tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", [{"id": "1", "text": "a", "expected": "sc"}] * 2)
    with pytest.raises(TriageEvalError, match="duplicate id"):
        load_vignettes(path)


def _service(built_index, tmp_path, triage, intake=False):
    # the one-message disposition line: symptom intake off (its tests: tests/chatbot/engine/test_symptom_intake.py)
    return ConsultationService(
        retriever=Retriever(built_index), generator=FakeGenerator(),
        store=ChatStore(tmp_path / "chat.sqlite"), prompts=PromptLibrary(),
        chat=ChatSettings(min_dense_evidence_en=0.0, min_dense_evidence_zh=0.0, symptom_intake=intake),
        llm=LLMSettings(backend="fake"), triage=triage)


def test_service_adds_the_disposition_line_before_the_disclaimer(built_index, tmp_path):
    engine = TriageEngine(screen=KeywordScreen({}))
    service = _service(built_index, tmp_path, engine)
    result = service.ask("I have been wheezing a bit with my asthma for 2 days, how is asthma treated?")
    line = engine.prompts.text("en", "triage.line.urgent")  # wheeze: NHS urgent GP / 111
    assert result.disposition == {"level": "urgent", "line": line}
    disclaimer = engine.prompts.text("en", "answer.disclaimer")
    assert result.answer.endswith(f"{line}\n\n{disclaimer}")
    assert result.to_json()["disposition"] == result.disposition
    topic = service.ask("How is asthma treated?")
    assert topic.disposition is None and topic.to_json()["disposition"] is None
    assert engine.prompts.text("en", "triage.line.routine") not in topic.answer


def test_service_without_triage_is_unchanged(built_index, tmp_path):
    result = _service(built_index, tmp_path, None).ask("I have had a cough for 2 days, what helps?")
    assert result.disposition is None
