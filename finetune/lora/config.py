"""The LoRA run configuration: one dataclass, read from YAML/JSON, saved beside the adapter."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from chatbot.errors import MedChatError


class FinetuneError(MedChatError):
    """A finetuning run cannot start or continue (bad config, missing data, missing extra)."""


# Gemma / Llama / Qwen / Mistral names of the attention and MLP projections: LoRA on all seven is
# what QLoRA found to match full finetuning; attention-only adapters learn format but little style.
DEFAULT_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


@dataclass
class LoraRunConfig:
    """Everything a LoRA run depends on. Paths are relative to the working directory."""

    # -- model --
    base: str = "gemma3-270m"  # alias (packaged GGUF), .gguf path, model directory or HF id
    gguf_file: str = ""  # GGUF file inside ``base`` when it is a directory
    prompt_format: str = "gemma_turns"  # gemma_turns (base models without a template) | chat_template
    # -- data --
    train_file: str = "data/finetune/train.jsonl"
    dev_file: str = "data/finetune/dev.jsonl"
    max_examples: int = 0  # 0 = all; sizes a CPU run to its time budget
    dev_examples: int = 24  # dev loss before and after training on this many examples
    max_length: int = 896  # tokens of prompt + answer; longer examples are skipped, not cut
    packing: bool = False  # concatenate examples into max_length rows (faster on GPU, mixes contexts)
    # -- LoRA --
    target_modules: tuple[str, ...] = DEFAULT_TARGETS
    rank: int = 16
    alpha: int = 32
    dropout: float = 0.05
    # Adapt only the top N decoder layers (0 = all). Backpropagation then stops at the lowest
    # adapted layer: on a CPU the top 2/3 of Gemma-3-270M's 18 layers cost about 2/3 of the backward
    # pass. Output style (language, citations, length) lives mostly in the upper layers.
    top_layers: int = 0
    # -- optimisation --
    lr: float = 2e-4
    epochs: float = 1.0
    max_steps: int = 0  # 0 = from epochs
    batch_size: int = 1  # examples per forward pass; CPU: 1 wastes no padding
    grad_accum: int = 8  # optimizer step every batch_size * grad_accum examples
    warmup_steps: int = 5
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    seed: int = 13
    # -- runtime --
    output_dir: str = "runs/lora-gemma3-270m"
    save_every: int = 10  # optimizer steps between checkpoints
    max_minutes: float = 0.0  # stop (and save the adapter) after this much training time; 0 = none
    log_every: int = 1
    threads: int = 0  # torch CPU threads; 0 = torch's default
    device: str = "auto"  # auto | cpu | cuda
    dtype: str = "auto"  # auto (bf16 on CUDA if supported, else fp32) | float32 | bfloat16 | float16
    load_in_4bit: bool = False  # QLoRA (bitsandbytes nf4); CUDA only
    gradient_checkpointing: bool = False
    extra: dict[str, Any] = field(default_factory=dict)  # free-form notes kept with the run

    def __post_init__(self) -> None:
        self.target_modules = tuple(self.target_modules)
        problems = []
        if self.prompt_format not in ("gemma_turns", "chat_template"):
            problems.append("prompt_format must be gemma_turns or chat_template")
        if not self.target_modules:
            problems.append("target_modules is empty")
        for name in ("rank", "alpha", "batch_size", "grad_accum", "max_length", "save_every", "log_every"):
            if getattr(self, name) < 1:
                problems.append(f"{name} must be >= 1")
        if not 0.0 <= self.dropout < 1.0:
            problems.append("dropout must be in [0, 1)")
        if self.lr <= 0 or self.epochs <= 0:
            problems.append("lr and epochs must be > 0")
        if self.max_minutes < 0:
            problems.append("max_minutes must be >= 0")
        for name in ("max_examples", "max_steps", "warmup_steps", "threads", "dev_examples", "top_layers"):
            if getattr(self, name) < 0:
                problems.append(f"{name} must be >= 0")
        if self.device not in ("auto", "cpu", "cuda"):
            problems.append("device must be auto, cpu or cuda")
        if self.dtype not in ("auto", "float32", "bfloat16", "float16"):
            problems.append("dtype must be auto, float32, bfloat16 or float16")
        if problems:
            raise FinetuneError("invalid LoRA config: " + "; ".join(problems),
                                hint="see docs/FINETUNE.md for the fields")

    @classmethod
    def load(cls, path: str | Path) -> "LoraRunConfig":
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise FinetuneError(f"cannot read config {path}: {exc}") from exc
        if path.suffix == ".json":
            data = json.loads(text)
        else:
            import yaml

            data = yaml.safe_load(text) or {}
        if not isinstance(data, dict):
            raise FinetuneError(f"{path} must hold a mapping of config fields")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise FinetuneError(f"unknown config fields in {path}: {', '.join(unknown)}",
                                hint="fields: " + ", ".join(sorted(known)))
        return cls(**data)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["target_modules"] = list(self.target_modules)
        return data
