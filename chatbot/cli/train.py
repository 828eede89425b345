"""Training: ``medchat train classifier | safety | triage`` and ``medchat finetune data|lora|export|merge``. The
training code lives in finetune/; these commands only pass options and print results."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Optional

import typer

from chatbot.cli.common import IndexOpt, JsonOpt, cli_errors, echo_json, resolve_index_dir
from knowledge_base.errors import KnowledgeBaseError

train_app = typer.Typer(help="Train MedChat's models (training code lives in finetune/).",
                        no_args_is_help=True)
finetune_app = typer.Typer(help="Build LoRA training data, train, export the adapter for llama.cpp.",
                           no_args_is_help=True)


def _training_module(name: str):
    """The finetune module ``name``; its sklearn dependency missing is a domain error."""
    import importlib

    try:
        return importlib.import_module(name)
    except ImportError as exc:
        raise KnowledgeBaseError(f"training needs the finetune dependencies ({exc.name} missing)",
                                 hint='pip install -e ".[finetune]"') from exc


def _training_config(factory, kwargs: dict[str, Any], shared_data: Optional[Path], no_cache: bool):
    """``factory(**kwargs)`` with the common options folded in; a bad value is a domain error."""
    if shared_data:
        kwargs["shared_data"] = shared_data
    if no_cache:
        kwargs["cache"] = None
    try:
        return factory(**kwargs)
    except ValueError as exc:
        raise KnowledgeBaseError(f"invalid training option: {exc}") from exc


@train_app.command("classifier")
@cli_errors
def train_classifier_cmd(
    out: Path = typer.Option(Path("data/models/classifier"), "--out", help="Model directory to write."),
    shared_data: Optional[Path] = typer.Option(None, "--data", help="Public datasets folder (default ../shared/data)."),
    examples: Optional[Path] = typer.Option(None, "--examples", help="Project examples folder (default data/classifier)."),
    encoder: str = typer.Option("use-multilingual", "--encoder", help="Sentence encoder (knowledge_base embedder name)."),
    no_cache: bool = typer.Option(False, "--no-cache", help="Do not read or write the embedding cache."),
    seed: int = typer.Option(13, "--seed", help="Split and sampling seed."),
    hash_dim: Optional[int] = typer.Option(None, "--hash-dim", help="n-gram hash buckets, a power of two (default 65536)."),
    linear: str = typer.Option("svm", "--linear", help="Head type for both heads: svm (one-vs-rest linear SVM) or logreg."),
    c_values: Optional[list[float]] = typer.Option(None, "--c", help="Inverse L2 strength to try (repeatable; default 0.3 for svm, 4 for logreg)."),
    dense_scales: Optional[list[float]] = typer.Option(None, "--dense-scale", help="Embedding weight to try (repeatable; default 1)."),
) -> None:
    """Train the intent and emotion heads on KUAKE-QIC, MedQuAD qtypes, GoEmotions-Ekman and the
    project's examples; calibrate on a held-back part; write model, metrics and config."""
    training = _training_module("finetune.classifier.train")
    kwargs: dict[str, Any] = {"out": out, "encoder": encoder, "seed": seed}
    if examples:
        kwargs["examples_dir"] = examples
    if hash_dim:
        kwargs["hash_dim"] = hash_dim
    if linear not in ("svm", "logreg"):
        raise KnowledgeBaseError(f"invalid training option: --linear {linear!r}", hint="use svm or logreg")
    kwargs["svm_heads"] = ("intent", "emotion") if linear == "svm" else ()
    if c_values:
        kwargs["svm_c_grid" if linear == "svm" else "c_grid"] = tuple(c_values)
    if dense_scales:
        kwargs["dense_scales"] = tuple(dense_scales)
    cfg = _training_config(training.TrainConfig, kwargs, shared_data, no_cache)
    command = "medchat train classifier " + " ".join(sys.argv[3:]) if len(sys.argv) > 3 else \
        "medchat train classifier"
    metrics = training.train_classifier(cfg, log=typer.echo, command=command.strip())
    for kind, info in metrics["heads"].items():
        hb = info["held_back"]
        typer.echo(f"{kind}: held-back accuracy {hb['accuracy']:.4f} macro-F1 {hb['macro_f1']:.4f}")
    typer.echo(f"written: {out}")


@train_app.command("safety")
@cli_errors
def train_safety_cmd(
    out: Path = typer.Option(Path("data/models/emergency"), "--out", help="Model directory to write."),
    shared_data: Optional[Path] = typer.Option(None, "--data", help="Public datasets folder (default ../shared/data): real ordinary questions."),
    real_per_pool: int = typer.Option(1500, "--real-per-pool", help="Real ordinary questions per pool from the training half."),
    no_cache: bool = typer.Option(False, "--no-cache", help="Do not read or write the embedding cache."),
    cv_folds: int = typer.Option(5, "--cv", help="Cross-validation folds for metrics.json (0: skip)."),
) -> None:
    """Train the meaning-based emergency detector (beside the red-flag lexicon) on the project's
    written emergency and hard-negative messages and real ordinary questions; write the model
    with its fixed thresholds, version and cross-validated figures."""
    from chatbot.app import make_safety_screen
    from chatbot.cli.common import cli_settings

    training = _training_module("finetune.safety.train")
    cfg = _training_config(training.SafetyTrainConfig, {"out": out, "real_per_pool": real_per_pool,
                                                        "cv_folds": cv_folds}, shared_data, no_cache)
    # the lexicon alone: it cleans the real negatives and is the cross-validated OR partner
    lexicon = make_safety_screen(cli_settings(), enabled=True, detector=False)
    training.train_detector(cfg, screen=lexicon, log=typer.echo)
    typer.echo(f"written: {out}")


@train_app.command("triage")
@cli_errors
def train_triage_cmd(
    out: Path = typer.Option(Path("data/models/triage"), "--out", help="Model directory to write."),
    eval_dir: Optional[Path] = typer.Option(None, "--vignettes", help="Folder of triage_*.jsonl files (default data/eval)."),
    c: float = typer.Option(4.0, "--c", help="Inverse L2 strength of the logistic-regression head."),
    encoder: str = typer.Option("use-multilingual", "--encoder", help="Sentence encoder (knowledge_base embedder name)."),
) -> None:
    """Train the learned second opinion of nurse triage on the labelled vignettes (the frozen blind
    round is not read); write the model with its fixed threshold, version and the
    leave-one-round-out figures (rules alone vs rules + model on each outside-written round)."""
    from chatbot.app import make_triage_engine
    from chatbot.cli.common import cli_settings
    from chatbot.triage.evaluation import TO_THREE, intake_of

    training = _training_module("finetune.triage.train")
    kwargs: dict[str, Any] = {"out": out, "c": c, "encoder": encoder}
    if eval_dir:
        kwargs["eval_dir"] = eval_dir
    cfg = _training_config(training.TriageTrainConfig, kwargs, None, False)
    settings = cli_settings()
    # the rules alone (no opinion) are the partner the figures compare against
    rules = make_triage_engine(settings.model_copy(update={"triage": settings.triage.model_copy(
        update={"opinion_dir": None})}))

    def rules_given(rows: list[dict]) -> list[tuple[str, int, bool]]:
        """(em | ne | sc, acuity 1-5, may the learned self-care opinion lower it) of the rules alone."""
        out = []
        for row in rows:
            result = rules.assess(intake_of(row), lang=row.get("lang"), with_evidence=False)
            out.append((TO_THREE[result.disposition], result.acuity,
                        rules.self_care_may_follow_cases(result.reasons, result.understood, row["text"])))
        return out

    training.train_triage(cfg, rules_given=rules_given, log=typer.echo)
    typer.echo(f"written: {out}")


@finetune_app.command("data")
@cli_errors
def finetune_data(
    out: Path = typer.Option(Path("data/finetune"), "--out", help="Directory for train/dev/test JSONL and the data card."),
    index: Optional[Path] = IndexOpt,
    train_size: int = typer.Option(400, "--train-size", min=1, help="Examples in train.jsonl."),
    test_size: int = typer.Option(60, "--test-size", min=0, help="Examples in test.jsonl."),
    seed: int = typer.Option(13, "--seed", help="Sampling seed (splits depend on document ids only)."),
    as_json: bool = JsonOpt,
) -> None:
    """Grounded-QA examples in the engine's prompt format (MedQuAD en, Toyhom zh, written zh<-en,
    no-source, multi-turn), split by document; writes DATA_CARD.md with the counts."""
    from finetune.lora.data import DataConfig, build

    cfg = DataConfig(out_dir=str(out), index_dir=str(resolve_index_dir(index)), train_size=train_size,
                     test_size=test_size, seed=seed)
    stats = build(cfg, echo=(lambda _m: None) if as_json else typer.echo)
    if as_json:
        echo_json(stats)


@finetune_app.command("lora")
@cli_errors
def finetune_lora(
    config: Path = typer.Option(..., "--config", help="YAML/JSON run config (finetune/lora/config.py: LoraRunConfig)."),
    resume: bool = typer.Option(False, "--resume", help="Continue from <output_dir>/checkpoint."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="tqdm progress bar (off: one log line per step)."),
    from_checkpoint: bool = typer.Option(False, "--from-checkpoint", help="Do not train: write adapter/, metrics.json and loss.png from the last checkpoint."),
    as_json: bool = JsonOpt,
) -> None:
    """Train a LoRA adapter; writes adapter/, config.json, metrics.json and loss.png to the run's
    output_dir. Ctrl-C stops after writing a checkpoint (continue with --resume, or keep it with
    --from-checkpoint)."""
    from finetune.lora.config import LoraRunConfig
    from finetune.lora.train import finalize_checkpoint, train

    echo = (lambda _m: None) if as_json else typer.echo
    cfg = LoraRunConfig.load(config)
    if from_checkpoint:
        metrics = finalize_checkpoint(cfg, echo=echo)
    else:
        metrics = train(cfg, resume=resume, progress=progress and not as_json, echo=echo)
    if as_json:
        echo_json(metrics)
AdapterDirArg = typer.Argument(..., help="peft adapter directory (adapter_config.json + safetensors).")
BaseModelOpt = typer.Option("gemma3-270m", "--base", help="Base model the adapter was trained on (alias or .gguf path; merge also takes a directory or HF id).")


@finetune_app.command("export")
@cli_errors
def finetune_export(
    adapter: Path = AdapterDirArg,
    out: Path = typer.Option(..., "--out", help="GGUF LoRA file to write (llm.adapter of the llamacpp backend)."),
    base: str = BaseModelOpt,
    aliases: bool = typer.Option(True, "--end-of-turn-aliases/--no-end-of-turn-aliases",
                                 help="Store the base's look-alikes of <end_of_turn> (served as end of turn; ~40 s)."),
    as_json: bool = JsonOpt,
) -> None:
    """Convert a peft LoRA adapter into a GGUF LoRA file that llama.cpp applies at load time."""
    from finetune.lora.export import end_of_turn_aliases, export_gguf_lora

    found = end_of_turn_aliases(base)[1] if aliases else None
    report = export_gguf_lora(adapter, out, base=base, end_of_turn_aliases=found)
    if as_json:
        echo_json(report)
    else:
        typer.echo(f"{report['tensors']} tensors -> {out} ({report['bytes'] / 2**20:.1f} MB)")


@finetune_app.command("merge")
@cli_errors
def finetune_merge(
    adapter: Path = AdapterDirArg,
    out: Path = typer.Option(..., "--out", help="Directory for the merged model (safetensors + tokenizer)."),
    base: str = BaseModelOpt,
    dtype: str = typer.Option("float16", "--dtype", help="float16 | bfloat16 | float32."),
) -> None:
    """Merge the adapter into the base weights (for the transformers backend or llama.cpp's
    convert_hf_to_gguf.py); the GGUF LoRA file of `finetune export` is the compact way."""
    from finetune.lora.export import merge_adapter

    path = merge_adapter(adapter, out, base=base, dtype=dtype)
    typer.echo(f"merged model -> {path}")
