"""LoRA supervised finetuning of a causal LM on grounded-answer examples (``medchat finetune lora``).

Examples are JSONL rows with ``prompt`` (the exact serve-time prompt text, ending with the open
model turn) and ``target`` (the answer followed by the end-of-turn marker); see
``finetune.lora.data``. Only target tokens carry loss.

Why a hand-written loop rather than ``transformers.Trainer``: on CPU the language-model head over
Gemma's 262k-token vocabulary is the largest tensor of a step (seq x 262k floats). The loop runs
the decoder body, then applies the head to the answer positions only, which is where the loss is;
the prompt positions (about 90% of a grounded example) never get logits. Measured here: see
docs/FINETUNE.md.

Checkpoints (adapter + optimizer + scheduler + step) are written atomically every ``save_every``
optimizer steps to ``<output_dir>/checkpoint``; a run started again with ``--resume`` continues
from there, and Ctrl-C stops after writing one.
"""

from __future__ import annotations

import json
import math
import os
import random
import resource
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

from finetune.lora.config import FinetuneError, LoraRunConfig
from knowledge_base.evaluation.jsonl import read_jsonl

CHECKPOINT = "checkpoint"
ADAPTER_DIR = "adapter"
IGNORE = -100


@dataclass
class Example:
    input_ids: list[int]
    labels: list[int]  # IGNORE on prompt positions

    @property
    def n_target(self) -> int:
        return sum(1 for x in self.labels if x != IGNORE)


# --- loading ---------------------------------------------------------------------------------


def _torch():
    try:
        import torch
    except ImportError as exc:  # pragma: no cover - torch is a base dependency
        raise FinetuneError("finetuning needs torch", hint="pip install torch") from exc
    return torch


def resolve_device(cfg: LoraRunConfig) -> tuple[str, Any]:
    torch = _torch()
    cuda = torch.cuda.is_available()
    if cfg.device == "cuda" and not cuda:
        raise FinetuneError("device is cuda but CUDA is not available", hint="set device: cpu")
    device = "cuda" if (cfg.device == "cuda" or (cfg.device == "auto" and cuda)) else "cpu"
    if cfg.load_in_4bit and device != "cuda":
        raise FinetuneError("load_in_4bit (QLoRA) needs CUDA", hint="set load_in_4bit: false on CPU")
    if cfg.dtype == "auto":
        dtype = (torch.bfloat16 if device == "cuda" and torch.cuda.is_bf16_supported()
                 else torch.float32)
    else:
        dtype = getattr(torch, cfg.dtype)
    return device, dtype


def load_base(cfg: LoraRunConfig, device: str, dtype: Any) -> tuple[Any, Any]:
    """Tokenizer and base model; a GGUF base is dequantised by transformers (nothing downloaded
    for local paths and aliases)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from chatbot.llm.hf import locate

    source = locate(cfg.base, cfg.gguf_file)
    common = source.common_kwargs()
    kwargs: dict[str, Any] = dict(common, dtype=dtype)
    if cfg.load_in_4bit:
        try:
            import bitsandbytes  # noqa: F401  (only for the install hint)
            from transformers import BitsAndBytesConfig
        except ImportError as exc:
            raise FinetuneError("QLoRA needs bitsandbytes", hint='pip install "medchat[gpu]"') from exc
        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=dtype)
        kwargs["device_map"] = {"": 0}
    try:
        tokenizer = AutoTokenizer.from_pretrained(source.location, **common)
        model = AutoModelForCausalLM.from_pretrained(source.location, **kwargs)
    except (OSError, ValueError) as exc:
        raise FinetuneError(f"cannot load base model {cfg.base}: {exc}",
                            hint="base: an alias (gemma3-270m), a .gguf file, a model directory "
                                 "or a cached HF id") from exc
    if not cfg.load_in_4bit:
        model = model.to(device)
    return tokenizer, model


def add_lora(model: Any, cfg: LoraRunConfig) -> Any:
    from peft import LoraConfig, get_peft_model

    if cfg.load_in_4bit:
        from peft import prepare_model_for_kbit_training

        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=cfg.gradient_checkpointing)
    elif cfg.gradient_checkpointing:
        model.gradient_checkpointing_enable()
        model.enable_input_require_grads()
    present = {name.rsplit(".", 1)[-1] for name, _ in model.named_modules()}
    missing = [t for t in cfg.target_modules if t not in present]
    if missing:
        raise FinetuneError(f"target modules not in the model: {', '.join(missing)}",
                            hint="module names present: " + ", ".join(sorted(present)[:30]))
    extra: dict[str, Any] = {}
    if cfg.top_layers:
        n_layers = int(getattr(model.config, "num_hidden_layers", 0) or
                       getattr(getattr(model.config, "text_config", None), "num_hidden_layers", 0))
        if not n_layers:
            raise FinetuneError("top_layers needs config.num_hidden_layers", hint="set top_layers: 0")
        extra["layers_to_transform"] = list(range(max(0, n_layers - cfg.top_layers), n_layers))
    lora = LoraConfig(r=cfg.rank, lora_alpha=cfg.alpha, lora_dropout=cfg.dropout,
                      target_modules=list(cfg.target_modules), bias="none", task_type="CAUSAL_LM",
                      **extra)
    return get_peft_model(model, lora)


# --- data ------------------------------------------------------------------------------------


def read_rows(path: str | Path, limit: int = 0) -> list[dict[str, Any]]:
    path = Path(path)
    if not path.is_file():
        raise FinetuneError(f"training data not found: {path}",
                            hint="build it with: medchat finetune data")
    rows = []
    for lineno, row in read_jsonl(path, FinetuneError):
        if not isinstance(row.get("target"), str) or not (
                isinstance(row.get("prompt"), str) or isinstance(row.get("messages"), list)):
            raise FinetuneError(f"{path}:{lineno}: a row needs a string target and a prompt or messages")
        rows.append(row)
        if limit and len(rows) >= limit:
            break
    return rows


def render_prompt(row: dict[str, Any], tokenizer: Any, prompt_format: str) -> str:
    """The prompt text: as stored, or rendered from ``messages`` with the serve-time turn format
    (Gemma turns) or the tokenizer's own chat template (instruct bases)."""
    if row.get("messages") and prompt_format == "chat_template":
        return tokenizer.apply_chat_template(row["messages"], tokenize=False, add_generation_prompt=True)
    if row.get("messages"):
        from chatbot.llm.base import ChatMessage
        from chatbot.llm.prompting import gemma_turns

        return gemma_turns([ChatMessage(m["role"], m["content"]) for m in row["messages"]])
    return row["prompt"]


def encode(rows: list[dict[str, Any]], tokenizer: Any, cfg: LoraRunConfig) -> tuple[list[Example], int]:
    """Token ids with prompt positions masked; returns (examples, skipped as too long)."""
    out, skipped = [], 0
    for row in rows:
        prompt = tokenizer(render_prompt(row, tokenizer, cfg.prompt_format),
                           add_special_tokens=True)["input_ids"]
        target = tokenizer(row["target"], add_special_tokens=False)["input_ids"]
        if len(prompt) + len(target) > cfg.max_length or not target:
            skipped += 1
            continue
        out.append(Example(prompt + target, [IGNORE] * len(prompt) + target))
    return out, skipped


def pack(examples: list[Example], max_length: int) -> list[Example]:
    """Concatenate examples into rows of at most ``max_length`` tokens (greedy, in order)."""
    rows: list[Example] = []
    ids: list[int] = []
    labels: list[int] = []
    for ex in examples:
        if ids and len(ids) + len(ex.input_ids) > max_length:
            rows.append(Example(ids, labels))
            ids, labels = [], []
        ids = ids + ex.input_ids
        labels = labels + ex.labels
    if ids:
        rows.append(Example(ids, labels))
    return rows


def batches(examples: list[Example], batch_size: int, seed: int, epoch: int) -> list[list[int]]:
    """Shuffled batches of example indices; within a batch similar lengths (less padding)."""
    rng = random.Random(seed * 1000 + epoch)
    order = list(range(len(examples)))
    rng.shuffle(order)
    if batch_size == 1:
        return [[i] for i in order]
    # Sort within windows of 8 batches by length, then shuffle the batches.
    window = batch_size * 8
    out = []
    for start in range(0, len(order), window):
        chunk = sorted(order[start:start + window], key=lambda i: len(examples[i].input_ids))
        out.extend(chunk[j:j + batch_size] for j in range(0, len(chunk), batch_size))
    rng.shuffle(out)
    return out


def collate(examples: list[Example], pad_id: int, device: str) -> dict[str, Any]:
    torch = _torch()
    width = max(len(e.input_ids) for e in examples)
    ids = torch.full((len(examples), width), pad_id, dtype=torch.long)
    labels = torch.full((len(examples), width), IGNORE, dtype=torch.long)
    mask = torch.zeros((len(examples), width), dtype=torch.long)
    for i, e in enumerate(examples):
        n = len(e.input_ids)
        ids[i, :n] = torch.tensor(e.input_ids)
        labels[i, :n] = torch.tensor(e.labels)
        mask[i, :n] = 1
    return {"input_ids": ids.to(device), "labels": labels.to(device), "attention_mask": mask.to(device)}


# --- loss ------------------------------------------------------------------------------------


def _causal_lm(model: Any) -> Any:
    """The ``*ForCausalLM`` inside a peft wrapper (LoRA layers are injected in place)."""
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def target_loss_sum(model: Any, batch: dict[str, Any]) -> tuple[Any, int]:
    """Sum of token cross-entropies over the target positions and their count.

    The body gives hidden states; the LM head (and Gemma's final logit soft-capping, when the
    config has one) is applied to the positions that predict a target token only."""
    torch = _torch()
    lm = _causal_lm(model)
    body = lm.get_decoder() if hasattr(lm, "get_decoder") else lm.model
    hidden = body(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state
    labels = batch["labels"][:, 1:]
    keep = labels != IGNORE
    states = hidden[:, :-1][keep]
    logits = lm.get_output_embeddings()(states).float()
    cap = getattr(lm.config, "final_logit_softcapping", None)
    if cap:
        logits = torch.tanh(logits / cap) * cap
    loss = torch.nn.functional.cross_entropy(logits, labels[keep], reduction="sum")
    return loss, int(keep.sum())


def evaluate(model: Any, examples: list[Example], pad_id: int, device: str) -> float | None:
    if not examples:
        return None
    torch = _torch()
    model.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for ex in examples:
            loss, n = target_loss_sum(model, collate([ex], pad_id, device))
            total += float(loss)
            count += n
    model.train()
    return total / max(count, 1)


# --- checkpoints -----------------------------------------------------------------------------


def save_checkpoint(model: Any, optimizer: Any, scheduler: Any, state: dict[str, Any], out: Path) -> Path:
    """Write ``out/checkpoint`` atomically (a crash mid-write keeps the previous one)."""
    torch = _torch()
    final = out / CHECKPOINT
    tmp = out / f".{CHECKPOINT}.tmp"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    model.save_pretrained(tmp / ADAPTER_DIR)
    torch.save({"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                "torch_rng": torch.get_rng_state(), **state}, tmp / "training_state.pt")
    old = out / f".{CHECKPOINT}.old"
    if final.exists():
        if old.exists():
            shutil.rmtree(old)
        final.rename(old)
    tmp.rename(final)
    if old.exists():
        shutil.rmtree(old)
    return final


def load_checkpoint(model: Any, optimizer: Any, scheduler: Any, out: Path) -> dict[str, Any]:
    torch = _torch()
    from peft import set_peft_model_state_dict
    from safetensors.torch import load_file

    ckpt = out / CHECKPOINT
    weights = ckpt / ADAPTER_DIR / "adapter_model.safetensors"
    if not weights.is_file():
        raise FinetuneError(f"no checkpoint to resume in {out}", hint="run without --resume")
    set_peft_model_state_dict(model, load_file(str(weights)))
    state = torch.load(ckpt / "training_state.pt", weights_only=False)
    optimizer.load_state_dict(state.pop("optimizer"))
    scheduler.load_state_dict(state.pop("scheduler"))
    torch.set_rng_state(state.pop("torch_rng"))
    return state


# --- the run ---------------------------------------------------------------------------------


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def train(cfg: LoraRunConfig, *, resume: bool = False, progress: bool = True,
          loaded: tuple[Any, Any] | None = None,
          echo: Callable[[str], None] = print) -> dict[str, Any]:
    """Run (or resume) a LoRA run; returns the metrics also written to ``metrics.json``.

    ``loaded`` = (tokenizer, model) skips loading the base (tests build a tiny model)."""
    torch = _torch()
    out = Path(cfg.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    random.seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    device, dtype = resolve_device(cfg)
    # Data first: a wrong path fails in a second, not after loading the base model.
    train_rows = read_rows(cfg.train_file, cfg.max_examples)
    dev_rows = read_rows(cfg.dev_file, cfg.dev_examples) if cfg.dev_examples and Path(cfg.dev_file).is_file() else []
    t_load = time.perf_counter()
    tokenizer, base = loaded if loaded is not None else load_base(cfg, device, dtype)
    model = add_lora(base, cfg)
    load_s = time.perf_counter() - t_load
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0

    examples, skipped = encode(train_rows, tokenizer, cfg)
    dev, _ = encode(dev_rows, tokenizer, cfg)
    if cfg.packing:
        examples = pack(examples, cfg.max_length)
    if not examples:
        raise FinetuneError("no training example fits max_length", hint="raise max_length")
    per_epoch = math.ceil(len(examples) / (cfg.batch_size * cfg.grad_accum))
    total_steps = cfg.max_steps or max(1, math.ceil(per_epoch * cfg.epochs))
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=cfg.lr, weight_decay=cfg.weight_decay)
    warmup = min(cfg.warmup_steps, max(total_steps - 1, 0))

    def schedule(step: int) -> float:  # linear warm-up, cosine decay to 10%
        if step < warmup:
            return (step + 1) / (warmup + 1)
        progress_ = (step - warmup) / max(1, total_steps - warmup)
        return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(progress_, 1.0)))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
    history: list[dict[str, Any]] = []
    step, trained_tokens, target_tokens, train_s = 0, 0, 0, 0.0
    dev_before = None
    if resume:
        state = load_checkpoint(model, optimizer, scheduler, out)
        step, history = state["step"], state["history"]
        trained_tokens, target_tokens = state["trained_tokens"], state["target_tokens"]
        train_s, dev_before = state["train_s"], state.get("dev_before")
        echo(f"resumed at step {step}/{total_steps}")
    else:
        dev_before = evaluate(model, dev, pad_id, device)
    (out / "config.json").write_text(json.dumps(cfg.to_json(), ensure_ascii=False, indent=2), encoding="utf-8")
    n_trainable = sum(p.numel() for p in trainable)
    echo(f"{len(examples)} examples ({skipped} longer than {cfg.max_length} skipped), "
         f"{total_steps} steps of {cfg.batch_size}x{cfg.grad_accum}, {n_trainable:,} trainable "
         f"parameters, device {device} {str(dtype).replace('torch.', '')}")

    def micro_batches() -> Iterator[list[int]]:
        epoch = 0
        while True:
            yield from batches(examples, cfg.batch_size, cfg.seed, epoch)
            epoch += 1

    stream = micro_batches()
    # Skip what a resumed run already consumed, so it sees the same data order.
    for _ in range(step * cfg.grad_accum):
        next(stream)
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=total_steps, initial=step, unit="step", dynamic_ncols=True)
    model.train()
    status = "finished"
    state_of = lambda: {"step": step, "history": history, "trained_tokens": trained_tokens,  # noqa: E731
                        "target_tokens": target_tokens, "train_s": train_s, "dev_before": dev_before}
    try:
        while step < total_steps:
            t0 = time.perf_counter()
            group = [next(stream) for _ in range(cfg.grad_accum)]
            n_group = sum(examples[i].n_target for idx in group for i in idx)
            loss_total, tokens = 0.0, 0
            for idx in group:
                batch = collate([examples[i] for i in idx], pad_id, device)
                loss_sum, n = target_loss_sum(model, batch)
                (loss_sum / n_group).backward()
                loss_total += float(loss_sum.detach())
                tokens += int(batch["attention_mask"].sum())
            grad_norm = float(torch.nn.utils.clip_grad_norm_(trainable, cfg.max_grad_norm))
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            elapsed = time.perf_counter() - t0
            train_s += elapsed
            trained_tokens += tokens
            target_tokens += n_group
            history.append({"step": step, "loss": loss_total / n_group, "lr": scheduler.get_last_lr()[0],
                            "grad_norm": grad_norm, "tokens_per_s": tokens / elapsed})
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{loss_total / n_group:.3f}", tok_s=f"{tokens / elapsed:.0f}")
            elif step % cfg.log_every == 0:
                echo(f"step {step}/{total_steps} loss {loss_total / n_group:.4f} {tokens / elapsed:.0f} tok/s")
            if step % cfg.save_every == 0 and step < total_steps:
                save_checkpoint(model, optimizer, scheduler, state_of(), out)
            if cfg.max_minutes and train_s >= cfg.max_minutes * 60:
                status = "time_budget"  # a complete adapter, trained for fewer steps than planned
                echo(f"\ntime budget of {cfg.max_minutes:g} min reached at step {step}/{total_steps}")
                break
    except KeyboardInterrupt:
        status = "interrupted"
        echo(f"\ninterrupted at step {step}: writing the checkpoint")
    finally:
        if bar is not None:
            bar.close()
    save_checkpoint(model, optimizer, scheduler, state_of(), out)
    if status == "interrupted":
        echo(f"checkpoint kept in {out / CHECKPOINT}; continue with --resume")
        return {"status": status, "step": step}

    dev_after = evaluate(model, dev, pad_id, device)
    adapter = out / ADAPTER_DIR
    save_adapter(model, adapter)
    cuda_peak = (torch.cuda.max_memory_allocated() / 2**20) if device == "cuda" else None
    metrics = {
        "status": status, "steps": step, "planned_steps": total_steps, "examples": len(examples), "skipped_too_long": skipped,
        "trainable_parameters": n_trainable, "device": device, "dtype": str(dtype).replace("torch.", ""),
        "threads": torch.get_num_threads(), "load_s": round(load_s, 1), "train_s": round(train_s, 1),
        "trained_tokens": trained_tokens, "target_tokens": target_tokens,
        "tokens_per_s": round(trained_tokens / train_s, 1) if train_s else None,
        "peak_rss_mb": round(peak_rss_mb(), 1), "cuda_peak_mb": cuda_peak,
        "train_loss_first": history[0]["loss"] if history else None,
        "train_loss_last10": (sum(h["loss"] for h in history[-10:]) / len(history[-10:])) if history else None,
        "dev_loss_before": dev_before, "dev_loss_after": dev_after, "dev_examples": len(dev),
    }
    (out / "metrics.json").write_text(json.dumps({**metrics, "history": history}, indent=2), encoding="utf-8")
    plot_loss(history, out / "loss.png", dev_before, dev_after)
    echo(f"adapter -> {adapter}; {metrics['tokens_per_s']} tok/s, peak RSS {metrics['peak_rss_mb']} MB, "
         f"dev loss {dev_before} -> {dev_after}")
    return metrics


def finalize_checkpoint(cfg: LoraRunConfig, echo: Callable[[str], None] = print) -> dict[str, Any]:
    """The adapter, metrics and loss curve of a run stopped early (Ctrl-C, or a machine too busy
    to finish), from its last checkpoint, without loading the model. No dev loss after training:
    that needs the model."""
    torch = _torch()
    out = Path(cfg.output_dir)
    ckpt = out / CHECKPOINT
    if not (ckpt / ADAPTER_DIR / "adapter_model.safetensors").is_file():
        raise FinetuneError(f"no checkpoint in {out}", hint="train first: medchat finetune lora --config ...")
    state = torch.load(ckpt / "training_state.pt", weights_only=False)
    adapter = out / ADAPTER_DIR
    if adapter.exists():
        shutil.rmtree(adapter)
    shutil.copytree(ckpt / ADAPTER_DIR, adapter)
    _to_fp16(adapter / "adapter_model.safetensors")
    history = state["history"]
    metrics = {
        "status": "from_checkpoint", "steps": state["step"], "trained_tokens": state["trained_tokens"],
        "target_tokens": state["target_tokens"], "train_s": round(state["train_s"], 1),
        "tokens_per_s": round(state["trained_tokens"] / state["train_s"], 1) if state["train_s"] else None,
        "train_loss_first": history[0]["loss"] if history else None,
        "train_loss_last10": (sum(h["loss"] for h in history[-10:]) / len(history[-10:])) if history else None,
        "dev_loss_before": state.get("dev_before"), "dev_loss_after": None,
    }
    (out / "metrics.json").write_text(json.dumps({**metrics, "history": history}, indent=2), encoding="utf-8")
    plot_loss(history, out / "loss.png", None, None)
    echo(f"adapter of step {state['step']} -> {adapter}")
    return metrics


def _to_fp16(weights: Path) -> None:
    from safetensors.torch import load_file, save_file

    tensors = {k: v.half().contiguous() for k, v in load_file(str(weights)).items()}
    save_file(tensors, str(weights), metadata={"format": "pt"})


def save_adapter(model: Any, path: Path, fp16: bool = True) -> Path:
    """peft ``save_pretrained`` (safetensors), weights cast to fp16 to halve the size."""
    model.save_pretrained(path)
    if fp16:
        _to_fp16(path / "adapter_model.safetensors")
    return path


def plot_loss(history: list[dict[str, Any]], path: Path, dev_before: float | None,
              dev_after: float | None) -> Path | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None  # the [finetune] extra brings matplotlib; the metrics JSON has the numbers
    steps = [h["step"] for h in history]
    losses = [h["loss"] for h in history]
    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=100)
    ax.plot(steps, losses, lw=0.8, alpha=0.5, label="train loss (step)")
    if len(losses) >= 5:
        k = 5
        smooth = [sum(losses[max(0, i - k + 1):i + 1]) / len(losses[max(0, i - k + 1):i + 1])
                  for i in range(len(losses))]
        ax.plot(steps, smooth, lw=1.5, label="train loss (5-step mean)")
    if dev_before is not None and dev_after is not None and steps:
        ax.scatter([0, steps[-1]], [dev_before, dev_after], color="red", zorder=3, label="dev loss")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("answer-token cross-entropy")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def threads_hint() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
