"""llm.adapter: auto (the shipped adapter of the model), none, or a path."""

from __future__ import annotations

import pytest

from chatbot.llm import make_generator
from chatbot.llm.base import GenerationError
from chatbot.llm.models import SHIPPED_ADAPTERS, resolve_adapter
from chatbot.settings import PROJECT_ROOT, LLMSettings


def test_auto_picks_the_shipped_adapter_per_backend(tmp_path):
    for backend, rel in SHIPPED_ADAPTERS["gemma3-270m"].items():
        target = tmp_path / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(b"GGUF") if backend == "llamacpp" else target.mkdir(exist_ok=True)
        assert resolve_adapter("auto", "gemma3-270m", backend, tmp_path) == str(target)
    # no shipped adapter for another model or the server backend: the base model
    assert resolve_adapter("auto", "smollm2-135m", "llamacpp", tmp_path) == ""
    assert resolve_adapter("AUTO", "gemma3-270m", "openai", tmp_path) == ""


def test_auto_with_the_file_missing_says_so(tmp_path):
    with pytest.raises(GenerationError, match="shipped adapter"):
        resolve_adapter("auto", "gemma3-270m", "llamacpp", tmp_path)


@pytest.mark.parametrize("value", ["", "none", " None "])
def test_none_means_the_base_model(value, tmp_path):
    assert resolve_adapter(value, "gemma3-270m", "llamacpp", tmp_path) == ""


def test_relative_paths_resolve_against_the_project_root(tmp_path):
    assert resolve_adapter("runs/x/a.gguf", "gemma3-270m", "llamacpp", tmp_path) == str(tmp_path / "runs/x/a.gguf")
    assert resolve_adapter(str(tmp_path / "b.gguf"), "m", "llamacpp", PROJECT_ROOT) == str(tmp_path / "b.gguf")


def test_default_generator_carries_the_shipped_adapter():
    generator = make_generator(LLMSettings())
    assert generator.adapter == str(PROJECT_ROOT / SHIPPED_ADAPTERS["gemma3-270m"]["llamacpp"])
    assert make_generator(LLMSettings(adapter="none")).adapter == ""


def test_end_of_turn_look_alikes_are_served_as_end_of_turn():
    import numpy as np

    from chatbot.llm.llamacpp import LlamaCppGenerator

    generator = LlamaCppGenerator("gemma3-270m")
    assert generator._fold_processor() is None  # no adapter metadata: logits untouched
    generator._end_fold = (3, np.array([5, 7]))
    fold = generator._fold_processor()[0]
    scores = fold(np.array([1, 2]), np.array([0.1, 2.0, 0.5, 1.0, 0.0, 4.0, 3.0, 3.5]))
    # the cluster's best score (4.0, a look-alike) goes to the end-of-turn token 3
    assert scores[3] == 4.0 and np.isneginf(scores[[5, 7]]).all() and int(np.argmax(scores)) == 3
    scores = fold(np.array([1]), np.array([0.1, 2.0, 0.5, 1.0, 0.0, -1.0, 3.0, -2.0]))
    assert scores[3] == 1.0 and int(np.argmax(scores)) == 6  # content still wins when it should


def test_eval_generation_adapter_option_overrides_the_setting(tmp_path):
    from chatbot.cli.common import cli_app

    base = cli_app(backend="llamacpp", index=tmp_path, adapter="none")  # nothing loads here
    assert base.generator.adapter == ""
    default = cli_app(backend="llamacpp", index=tmp_path)
    assert default.generator.adapter.endswith("medchat-lora-f16.gguf")
    other = cli_app(backend="llamacpp", index=tmp_path, adapter=str(tmp_path / "x.gguf"))
    assert other.generator.adapter == str(tmp_path / "x.gguf")
