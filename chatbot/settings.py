"""One settings object for the whole application.

Read in this order, later wins: defaults in code -> ``settings.yaml`` -> environment variables
``MEDCHAT_<SECTION>__<FIELD>`` (e.g. ``MEDCHAT_KB__EMBEDDER=minilm``,
``MEDCHAT_RETRIEVAL__METHOD=bm25``) -> explicit overrides (CLI options).

The YAML file is ``$MEDCHAT_SETTINGS`` when set, else ``./settings.yaml`` when present, else the
project's own ``settings.yaml``. Relative paths inside are resolved against the project root.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from knowledge_base.config import ChunkerConfig, IndexConfig, RetrievalConfig

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def settings_file() -> Path | None:
    env = os.environ.get("MEDCHAT_SETTINGS")
    if env:
        return Path(env)
    for candidate in (Path.cwd() / "settings.yaml", PROJECT_ROOT / "settings.yaml"):
        if candidate.is_file():
            return candidate
    return None


class PathSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    corpus: list[Path] = Field(default_factory=lambda: [Path("data/corpus")], description=(
        "Source files or directories of the default knowledge base (read recursively)."))
    index_dir: Path = Field(default=Path("data/index/default"), description=(
        "Index directory used when a command gets no --index."))
    database: Path = Field(default=Path("data/medchat.sqlite"), description=(
        "SQLite file of sessions, messages, feedback, events and triage records (WAL mode)."))

    @field_validator("corpus", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, (str, Path)) else value

    def resolved(self, root: Path) -> "PathSettings":
        def fix(p: Path) -> Path:
            p = p.expanduser()
            return p if p.is_absolute() else (root / p)

        return PathSettings(corpus=[fix(p) for p in self.corpus], index_dir=fix(self.index_dir),
                            database=fix(self.database))


class KBSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    embedder: str = Field(default="use-multilingual", description=(
        "use-multilingual (default, zh+en, offline) | minilm (English, offline) | "
        "st:<HF id or local path> | hash (tests only)."))
    device: str = Field(default="cpu", description="Device for sentence-transformers embedders (cpu, cuda).")
    chunker: ChunkerConfig = Field(default_factory=ChunkerConfig)
    index: IndexConfig = Field(default_factory=IndexConfig)


class LLMSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    backend: Literal["llamacpp", "transformers", "openai", "fake"] = Field(default="llamacpp", description=(
        "llamacpp: GGUF on CPU via llama-cpp-python (fast default) | transformers: any HF causal "
        "LM (+ peft adapter) | openai: an OpenAI-compatible server (vLLM, TGI, Ollama, "
        "llama.cpp server) | fake: deterministic, tests only."))
    model: str = Field(default="gemma3-270m", description=(
        "gemma3-270m | smollm2-135m (models shipped in PyPI packages), a local path (directory or "
        ".gguf file) or an HF id (needs network or a filled cache). For openai: the served model name."))
    gguf_file: str = Field(default="", description="transformers backend: GGUF file inside the model directory, dequantised on load.")
    adapter: str = Field(default="auto", description=(
        "LoRA adapter: auto = the project's finetuned adapter of the model when it ships one "
        "(gemma3-270m: data/models/lora-gemma3-270m), none (or empty) = the base model, or a path: "
        "GGUF LoRA file (llamacpp) / peft directory (transformers); relative to the project root."))
    device: str = Field(default="cpu", description="transformers: cpu | cuda | auto (device_map).")
    dtype: Literal["float32", "bfloat16", "float16"] = Field(default="float32", description="transformers: weights dtype (bfloat16/float16 on GPU).")
    load_in_4bit: bool = Field(default=False, description="transformers: 4-bit via bitsandbytes; needs CUDA and the [gpu] extra.")
    n_ctx: int = Field(default=4096, ge=512, description="Context window used for prompts (tokens); history and passages are budgeted to fit.")
    n_threads: int = Field(default=0, ge=0, description="llamacpp: CPU threads, 0 = all cores.")
    base_url: str = Field(default="http://127.0.0.1:8080/v1", description="openai: server base URL.")
    api_key: str = Field(default="", description="openai: API key (prefer the MEDCHAT_LLM__API_KEY variable).")
    max_tokens: int = Field(default=256, ge=16, description="Longest answer in tokens (~150 English words or ~250 Chinese characters, as the prompts ask).")
    temperature: float = Field(default=0.0, ge=0.0, le=2.0, description="0 = greedy: reproducible answers.")
    repeat_penalty: float = Field(default=1.1, ge=1.0, description="Discourages the loops small models fall into.")
    timeout_s: float = Field(default=60.0, gt=0, description="Wall-clock budget of one generation; past it the extractive fallback answers.")


class ChatSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    passages: int = Field(default=3, ge=1, le=20, description=(
        "Passages given to the model. 3 x 160 tokens keeps the prompt near 700 tokens, which "
        "llama.cpp prefills in ~1.4 s on 2 cores (the 1.5 s first-token target); the top 3 "
        "hold the answer for most dev questions (retrieval recall@3 vs @5 in docs/EVALUATION.md)."))
    passage_tokens: int = Field(default=160, ge=32, le=2000, description=(
        "Each passage is cut to this many tokens in the prompt (whole passages stay in the "
        "sources list). ~160 tokens is one MedQuAD paragraph or ~250 Chinese characters."))
    history_turns: int = Field(default=6, ge=0, description="Earlier exchanges considered for the prompt (then budgeted).")
    max_input_chars: int = Field(default=4000, ge=100, description=(
        "Longer messages are refused with a clear message: a pasted record of 100k characters "
        "cannot be answered well, and the patient is asked for the main question."))
    min_dense_evidence_en: float = Field(default=0.47, ge=0, le=1, description=(
        "An English question whose best dense cosine among the top passages is below this gets "
        "'no reliable source' instead of a generated answer (unless every content word of the "
        "question appears in a top passage). Calibrated on 160 answerable dev questions vs 30 "
        "unanswerable: 1.2% answerable refused, 83% unanswerable refused (docs/EVALUATION.md)."))
    min_dense_evidence_zh: float = Field(default=0.58, ge=0, le=1, description=(
        "The same for Chinese questions; USE cosines run higher for Chinese text. Calibrated: "
        "0.7% answerable refused, 90% unanswerable refused."))
    min_overlap_evidence: float = Field(default=1.0, ge=0, le=1, description=(
        "Share of the question's content words found in one top passage that counts as evidence "
        "on its own. Partial overlap did not separate answerable from unanswerable questions "
        "(short off-topic questions share words by chance), so only full overlap rescues."))


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MEDCHAT_", env_nested_delimiter="__",
                                      extra="forbid")
    paths: PathSettings = Field(default_factory=PathSettings)
    kb: KBSettings = Field(default_factory=KBSettings)
    retrieval: RetrievalConfig = Field(default_factory=RetrievalConfig)
    llm: LLMSettings = Field(default_factory=LLMSettings)
    chat: ChatSettings = Field(default_factory=ChatSettings)

    @classmethod
    def settings_customise_sources(cls, settings_cls, init_settings, env_settings, dotenv_settings,
                                   file_secret_settings) -> tuple[PydanticBaseSettingsSource, ...]:
        from pydantic_settings import YamlConfigSettingsSource

        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        path = settings_file()
        if path is not None:
            sources.append(YamlConfigSettingsSource(settings_cls, yaml_file=path))
        return tuple(sources)


def load_settings(**overrides: Any) -> Settings:
    """Settings from YAML + environment, with relative paths resolved against the project root."""
    settings = Settings(**overrides)
    settings.paths = settings.paths.resolved(PROJECT_ROOT)
    return settings


def reference_markdown() -> str:
    """docs/CONFIGURATION.md, generated from the field descriptions so the docs cannot drift
    (a test compares the file with this output)."""
    import dataclasses

    lines = ["# Configuration reference", "",
             "Generated from the code by `python -m chatbot.settings > docs/CONFIGURATION.md`.",
             "Set a field in `settings.yaml` or with an environment variable "
             "`MEDCHAT_<SECTION>__<FIELD>` (nested sections joined with `__`), e.g. "
             "`MEDCHAT_KB__INDEX__USE_GPU=true`.", ""]

    def table(title: str, env: str, rows: list[tuple[str, object, str]]) -> None:
        lines.extend([f"## `{title}`", "", "| field | default | env | meaning |", "|---|---|---|---|"])
        for name, default, help_text in rows:
            cell = help_text.replace("|", "\\|")  # a bare | would split the Markdown cell
            lines.append(f"| `{name}` | `{default}` | `{env}__{name.upper()}` | {cell} |")
        lines.append("")

    def model_rows(model: type[BaseModel]) -> list[tuple[str, object, str]]:
        rows = []
        for name, f in model.model_fields.items():
            if dataclasses.is_dataclass(f.annotation):
                continue
            default = f.get_default(call_default_factory=True)
            if isinstance(default, list):
                default = [str(p) for p in default]
            rows.append((name, default, f.description or ""))
        return rows

    def dc_rows(cls) -> list[tuple[str, object, str]]:
        return [(f.name, f.default, f.metadata.get("help", "")) for f in dataclasses.fields(cls)]

    table("paths", "MEDCHAT_PATHS", model_rows(PathSettings))
    table("kb", "MEDCHAT_KB", model_rows(KBSettings))
    table("kb.chunker", "MEDCHAT_KB__CHUNKER", dc_rows(ChunkerConfig))
    table("kb.index", "MEDCHAT_KB__INDEX", dc_rows(IndexConfig))
    table("retrieval", "MEDCHAT_RETRIEVAL", dc_rows(RetrievalConfig))
    table("llm", "MEDCHAT_LLM", model_rows(LLMSettings))
    table("chat", "MEDCHAT_CHAT", model_rows(ChatSettings))
    return "\n".join(lines)


if __name__ == "__main__":
    print(reference_markdown())
