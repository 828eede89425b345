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
from typing import Any

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

    @field_validator("corpus", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, (str, Path)) else value

    def resolved(self, root: Path) -> "PathSettings":
        def fix(p: Path) -> Path:
            p = p.expanduser()
            return p if p.is_absolute() else (root / p)

        return PathSettings(corpus=[fix(p) for p in self.corpus], index_dir=fix(self.index_dir))


class KBSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    embedder: str = Field(default="use-multilingual", description=(
        "use-multilingual (default, zh+en, offline) | minilm (English, offline) | "
        "st:<HF id or local path> | hash (tests only)."))
    device: str = Field(default="cpu", description="Device for sentence-transformers embedders (cpu, cuda).")
    chunker: ChunkerConfig = Field(default_factory=ChunkerConfig)
    index: IndexConfig = Field(default_factory=IndexConfig)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MEDCHAT_", env_nested_delimiter="__",
                                      extra="forbid")
    paths: PathSettings = Field(default_factory=PathSettings)
    kb: KBSettings = Field(default_factory=KBSettings)
    retrieval: RetrievalConfig = Field(default_factory=RetrievalConfig)

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
    return "\n".join(lines)


if __name__ == "__main__":
    print(reference_markdown())
