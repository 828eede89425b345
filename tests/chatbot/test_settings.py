
import pytest
from pydantic import ValidationError

from chatbot.settings import PROJECT_ROOT, load_settings, reference_markdown


def test_defaults_resolve_paths_against_project_root(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # no settings.yaml here: the project's own is used
    s = load_settings()
    assert s.paths.index_dir == PROJECT_ROOT / "data" / "index" / "default"
    assert s.paths.corpus == [PROJECT_ROOT / "data" / "corpus"]
    assert s.kb.embedder == "use-multilingual" and s.retrieval.method == "hybrid"


def test_yaml_then_env_override(monkeypatch, tmp_path):
    cfg = tmp_path / "s.yaml"
    cfg.write_text("kb:\n  embedder: minilm\n  chunker:\n    chunk_chars_en: 700\nretrieval:\n  method: bm25\n")
    monkeypatch.setenv("MEDCHAT_SETTINGS", str(cfg))
    s = load_settings()
    assert s.kb.embedder == "minilm" and s.kb.chunker.chunk_chars_en == 700 and s.retrieval.method == "bm25"
    monkeypatch.setenv("MEDCHAT_RETRIEVAL__METHOD", "dense")
    monkeypatch.setenv("MEDCHAT_KB__INDEX__USE_GPU", "true")
    s = load_settings()
    assert s.retrieval.method == "dense" and s.kb.index.use_gpu is True
    assert s.kb.chunker.chunk_chars_en == 700  # untouched by the env


@pytest.mark.parametrize("yaml_text,match", [
    ("kb:\n  chunker:\n    overlap_ratio: 0.9\n", "overlap_ratio"),
    ("retrieval:\n  reranker: magic\n", "reranker"),
    ("kb:\n  index:\n    dense_index: lsh\n", "dense_index"),
    ("unknown_section: 1\n", "unknown_section"),
])
def test_invalid_settings_are_refused(monkeypatch, tmp_path, yaml_text, match):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(yaml_text)
    monkeypatch.setenv("MEDCHAT_SETTINGS", str(cfg))
    with pytest.raises((ValidationError, ValueError), match=match):
        load_settings()


def test_configuration_doc_is_generated_from_code():
    doc = (PROJECT_ROOT / "docs" / "CONFIGURATION.md").read_text(encoding="utf-8")
    assert doc.strip() == reference_markdown().strip(), \
        "docs/CONFIGURATION.md is stale: run python -m chatbot.settings > docs/CONFIGURATION.md"


def test_project_relative_paths_read_the_same_on_every_machine(tmp_path):
    from chatbot.settings import PROJECT_ROOT, project_relative

    assert project_relative(PROJECT_ROOT / "data" / "models" / "classifier") == "data/models/classifier"
    assert project_relative(PROJECT_ROOT.parent / "shared" / "data") == "../shared/data"
    outside = tmp_path / "x.json"
    assert project_relative(outside) == str(outside)  # elsewhere: left as given
    # a link inside the project to data elsewhere still reads from the project root
    link = PROJECT_ROOT / "data" / "cache" / ".relative-test-link"
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(tmp_path, target_is_directory=True)
    try:
        assert project_relative(link / "x.json") == "data/cache/.relative-test-link/x.json"
    finally:
        link.unlink()


def test_an_empty_model_folder_turns_the_learned_triage_opinion_off(monkeypatch):
    from chatbot.app import make_triage_engine

    assert make_triage_engine(load_settings()).opinion is not None
    monkeypatch.setenv("MEDCHAT_TRIAGE__OPINION_DIR", "")
    s = load_settings()
    assert s.triage.opinion_dir is None and make_triage_engine(s).opinion is None
