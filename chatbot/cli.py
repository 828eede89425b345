"""The ``medchat`` command line. Commands are thin: they read settings, call a service, print.
Domain errors become a one-line message (plus a hint) on stderr and exit code 2; bad usage is
click's exit code 2 too; success is 0.

JSON outputs (``--json``) are contracts read by other tools; see docs/CLI.md.
"""

from __future__ import annotations

import functools
import json
import sys
from pathlib import Path
from typing import Any, Callable, Optional

import typer
from pydantic import ValidationError

from knowledge_base.errors import KnowledgeBaseError

app = typer.Typer(help="MedChat: bilingual medical consultation assistant (中文 / English).",
                  no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)
kb_app = typer.Typer(help="Build, search and check the knowledge-base index.", no_args_is_help=True)
eval_app = typer.Typer(help="Evaluate the parts of MedChat on JSONL question files.", no_args_is_help=True)
bench_app = typer.Typer(help="Benchmarks: print figures and write JSON.", no_args_is_help=True)
app.add_typer(kb_app, name="kb")
app.add_typer(eval_app, name="eval")
app.add_typer(bench_app, name="bench")


EXIT_DOMAIN_ERROR = 2


def cli_errors(fn: Callable) -> Callable:
    """Translate domain and settings errors into ``error: ...`` on stderr and exit code 2.
    Anything else is a bug and keeps its traceback."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except KnowledgeBaseError as exc:
            message = str(exc)
        except ValidationError as exc:
            message = f"invalid settings (settings.yaml or MEDCHAT_* variables):\n{exc}"
        typer.echo(f"error: {message}", err=True)
        raise typer.Exit(EXIT_DOMAIN_ERROR)

    return wrapper


def _settings():
    from .settings import load_settings

    return load_settings()


def _echo_json(data: Any) -> None:
    typer.echo(json.dumps(data, ensure_ascii=False, indent=2))


IndexOpt = typer.Option(None, "--index", help="Index directory (default: paths.index_dir in settings).")
JsonOpt = typer.Option(False, "--json", help="Print machine-readable JSON (a stable contract).")


def _index_dir(index: Optional[Path]) -> Path:
    return index if index is not None else _settings().paths.index_dir


def _retriever(index: Optional[Path], embedder: Optional[str] = None, method: Optional[str] = None):
    from knowledge_base.embedders import make_embedder
    from knowledge_base.retriever import Retriever

    s = _settings()
    config = s.retrieval
    if method:
        from dataclasses import replace

        config = replace(config, method=method)
    emb = (make_embedder(embedder, threads=config.query_threads, device=s.kb.device)
           if embedder else None)
    return Retriever(_index_dir(index), embedder=emb, config=config, index_config=s.kb.index)


def _print_build(report, as_json: bool) -> None:
    if as_json:
        _echo_json(report.to_json())
        return
    typer.echo(f"index:      {report.index_dir} (build {report.build_id})")
    typer.echo(f"documents:  {report.documents} ({report.reused_documents} unchanged, reused)")
    typer.echo(f"chunks:     {report.chunks}; vectors: {report.embedded_vectors} embedded now, "
               f"{report.cached_vectors} from cache ({report.embedder}, {report.dense_index})")
    typer.echo(f"files:      {report.files} read, {len(report.skipped)} skipped")
    for s in report.skipped[:20]:
        typer.echo(f"  skipped {s.path}: {s.reason}")
    if len(report.skipped) > 20:
        typer.echo(f"  ... and {len(report.skipped) - 20} more (see --json)")
    stages = ", ".join(f"{k} {v:.1f}s" for k, v in report.stage_seconds.items())
    typer.echo(f"seconds:    {report.seconds:.1f} ({stages})")


def _build(sources: list[Path], index: Path, embedder: str | None, full: bool, as_json: bool,
           quiet: bool) -> None:
    from knowledge_base.builder import build_index
    from knowledge_base.embedders import make_embedder

    import logging

    if not (quiet or as_json):
        logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
        logging.getLogger("faiss").setLevel(logging.WARNING)  # its AVX2 probe is not news
    s = _settings()
    emb = make_embedder(embedder or s.kb.embedder, threads=s.kb.index.threads, device=s.kb.device)
    report = build_index(sources, index, emb, s.kb.chunker, s.kb.index, full=full,
                         progress=False if (quiet or as_json) else None)
    _print_build(report, as_json)


@app.command()
@cli_errors
def setup(full: bool = typer.Option(False, "--full", help="Re-chunk everything (vectors still come from the cache)."),
          as_json: bool = JsonOpt) -> None:
    """Build (or update) the default index from the shipped corpus (paths in settings).

    A fresh build of the default corpus takes about 4 minutes on 2 CPU cores; later runs reuse
    unchanged documents and take seconds."""
    s = _settings()
    _build(s.paths.corpus, s.paths.index_dir, None, full, as_json, quiet=False)


@kb_app.command("build")
@cli_errors
def kb_build(
    source: list[Path] = typer.Option(..., "--source", help="File or directory (read recursively); repeatable."),
    index: Optional[Path] = IndexOpt,
    embedder: Optional[str] = typer.Option(None, "--embedder", help="use-multilingual | minilm | st:<path> | hash (default: kb.embedder)."),
    full: bool = typer.Option(False, "--full", help="Re-chunk and re-tokenise every document instead of reusing unchanged ones."),
    as_json: bool = JsonOpt,
    quiet: bool = typer.Option(False, "--quiet", help="No progress bars."),
) -> None:
    """Build or incrementally update an index from source files.

    Reads MedQuAD XML, QA CSV (UTF-8 or GB18030), JSONL, Markdown, TXT, HTML and PDF; unreadable
    files are reported and skipped. The new build replaces the old one atomically: if the build is
    interrupted, the previous index keeps serving."""
    _build(source, _index_dir(index), embedder, full, as_json, quiet)


@kb_app.command("search")
@cli_errors
def kb_search(
    query: str = typer.Argument(..., help="The question, in Chinese or English."),
    index: Optional[Path] = IndexOpt,
    k: int = typer.Option(10, "-k", "--k", min=1, max=100, help="Number of results."),
    method: Optional[str] = typer.Option(None, "--method", help="hybrid | bm25 | dense (default: retrieval.method)."),
    embedder: Optional[str] = typer.Option(None, "--embedder", help="Must match the index's embedder (default: the one in its manifest)."),
    as_json: bool = JsonOpt,
) -> None:
    """Search the index. JSON: a list of {doc_id, chunk_id, title, url, source, lang, score, text}."""
    retriever = _retriever(index, embedder, method)
    passages = retriever.search(query, k=k)
    if as_json:
        _echo_json([p.to_json() for p in passages])
        return
    if not passages:
        typer.echo("no result / 没有找到相关内容")
    for i, p in enumerate(passages, 1):
        snippet = " ".join(p.text.split())[:220]
        typer.echo(f"[{i}] {p.score:.4f}  {p.doc_id}  {p.title}  ({p.source}, {p.lang})")
        if p.url:
            typer.echo(f"     {p.url}")
        typer.echo(f"     {snippet}")
    t = retriever.last_timings
    typer.echo(f"({t.total_ms:.1f} ms)", err=True)


@kb_app.command("stats")
@cli_errors
def kb_stats(index: Optional[Path] = IndexOpt, as_json: bool = JsonOpt) -> None:
    """Counts, embedder, index type and build time of the current build."""
    from knowledge_base.inspect import index_stats

    stats = index_stats(_index_dir(index))
    if as_json:
        _echo_json(stats)
        return
    for key, value in stats.items():
        typer.echo(f"{key + ':':<16}{json.dumps(value, ensure_ascii=False) if isinstance(value, (dict, list)) else value}")


@kb_app.command("verify")
@cli_errors
def kb_verify(index: Optional[Path] = IndexOpt, as_json: bool = JsonOpt) -> None:
    """Check the current build: manifest, file checksums, counts across FAISS, BM25 and SQLite,
    per-document hashes. Exit code 1 when a check fails."""
    from knowledge_base.inspect import verify_index

    result = verify_index(_index_dir(index))
    if as_json:
        _echo_json(result)
    else:
        for check in result["checks"]:
            typer.echo(f"{'ok  ' if check['ok'] else 'FAIL'} {check['name']}: {check['detail']}")
        typer.echo("index OK" if result["ok"] else "index BROKEN: rebuild with medchat kb build --full")
    if not result["ok"]:
        raise typer.Exit(1)


@eval_app.command("retrieval")
@cli_errors
def eval_retrieval(
    file: Path = typer.Argument(..., help='JSONL: {"id","question","relevant":[doc_id,...]} and optional "grades":{doc_id:1-4}.'),
    index: Optional[Path] = IndexOpt,
    method: Optional[str] = typer.Option(None, "--method", help="hybrid | bm25 | dense (default: retrieval.method)."),
    per_question: bool = typer.Option(False, "--per-question", help="Include every question's ranking in the JSON."),
    as_json: bool = JsonOpt,
) -> None:
    """Recall@1/5/10, MRR@10, nDCG@10 (and avg_score@1 with grades) of the retriever."""
    from knowledge_base.evaluation import evaluate, load_questions

    questions = load_questions(file)
    retriever = _retriever(index, None, method)
    # 20 chunks give 10 distinct documents even when a document contributes two chunks.
    result = evaluate(lambda q: retriever.search(q, k=20), questions, per_question=per_question)
    result = {"file": str(file), "method": retriever.config.method, **result}
    if as_json:
        _echo_json(result)
        return
    keys = [k for k in ("n", "recall@1", "recall@5", "recall@10", "mrr@10", "ndcg@10", "avg_score@1") if k in result]
    typer.echo("  ".join(f"{k}={result[k]}" for k in keys))
    for group, metrics in result.get("groups", {}).items():
        typer.echo(f"  {group}: " + "  ".join(f"{k}={metrics[k]}" for k in keys if k in metrics))
    typer.echo(f"  latency p50={result['latency_ms']['p50']} ms p95={result['latency_ms']['p95']} ms")


@bench_app.command("kb")
@cli_errors
def bench_kb(
    out: Path = typer.Option(Path("data/bench/kb.json"), "--out", help="Where to write the JSON figures."),
    synthetic: int = typer.Option(1_000_000, "--synthetic", min=0, help="Chunks in the synthetic index (0 to skip)."),
    queries: int = typer.Option(200, "--queries", min=1, help="Queries timed per index."),
    index: Optional[Path] = IndexOpt,
    rebuild_dir: Optional[Path] = typer.Option(None, "--work-dir", help="Scratch directory (default: a temp dir)."),
    quick: bool = typer.Option(False, "--quick", help="Small corpus slice and 20k synthetic chunks (CI smoke)."),
    skip_build: bool = typer.Option(False, "--skip-build", help="Time queries on the existing index; build and incremental figures come from a ~300-file slice."),
    embedder: Optional[str] = typer.Option(None, "--embedder", help="Override kb.embedder (e.g. hash for a smoke run)."),
) -> None:
    """Build throughput, incremental rebuild time, query latency p50/p95 at the default corpus and
    at a synthetic index, peak memory. Prints a table and writes JSON."""
    from knowledge_base.bench import run_kb_bench

    result = run_kb_bench(settings=_settings(), out=out, synthetic=synthetic, n_queries=queries,
                          index_dir=index, work_dir=rebuild_dir, quick=quick, echo=typer.echo,
                          skip_build=skip_build, embedder=embedder)
    typer.echo(f"written: {out}")
    del result


def _app(backend: Optional[str] = None, model: Optional[str] = None, index: Optional[Path] = None,
         adapter: Optional[str] = None):
    from .app import build_app
    from .settings import load_settings

    s = load_settings()
    if backend:
        s.llm.backend = backend
    if model:
        s.llm.model = model
    if adapter is not None:
        s.llm.adapter = adapter
    if index is not None:
        s.paths.index_dir = index
    return build_app(s)


BackendOpt = typer.Option(None, "--backend", help="llamacpp | transformers | openai | fake (default: llm.backend).")
AdapterOpt = typer.Option(None, "--adapter", help="LoRA adapter: a path, none (base model) or auto (default: llm.adapter).")
ModelOpt = typer.Option(None, "--model", help="gemma3-270m | smollm2-135m | path | HF id | served name (default: llm.model).")


@app.command()
@cli_errors
def ask(
    question: str = typer.Argument(..., help="The patient's question, in Chinese or English."),
    session: Optional[str] = typer.Option(None, "--session", help="Continue this session id (multi-turn)."),
    index: Optional[Path] = IndexOpt,
    backend: Optional[str] = BackendOpt,
    model: Optional[str] = ModelOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Answer one question from the knowledge base, with numbered sources.

    JSON: {answer, lang, intent, emotion, red_flag, citations:[{n, doc_id, title, url}],
    passages, flags, timings:{retrieval_ms, ttft_ms, total_ms}, backend, session_id}."""
    result = _app(backend, model, index).service.ask(question, session_id=session)
    if as_json:
        _echo_json(result.to_json())
        return
    typer.echo(result.answer)
    _print_sources(result)
    typer.echo(f"(session {result.session_id}; {result.timings['total_ms']:.0f} ms; {result.backend})", err=True)


def _print_sources(result) -> None:
    if not result.citations:
        return
    typer.echo("")
    for c in result.citations:
        typer.echo(f"[{c['n']}] {c['title']} — {c['source']} {c['url']}".rstrip())


@app.command()
@cli_errors
def chat(
    index: Optional[Path] = IndexOpt,
    backend: Optional[str] = BackendOpt,
    model: Optional[str] = ModelOpt,
    session: Optional[str] = typer.Option(None, "--session", help="Resume this session id."),
) -> None:
    """Terminal chat with streaming answers. Commands: /new (new conversation), /sources (sources
    of the last answer), /quit."""
    application = _app(backend, model, index)
    typer.echo("MedChat — type your question (中文 / English). /new /sources /quit")
    last = None
    while True:
        try:
            line = input("> ")
        except EOFError:
            break
        command = line.strip().lower()
        if command in ("/quit", "/exit"):
            break
        if command == "/new":
            session, last = None, None
            typer.echo("(new conversation / 新对话)")
            continue
        if command == "/sources":
            if last is None or not last.passages:
                typer.echo("(no sources / 暂无来源)")
            for p in (last.passages if last else []):
                typer.echo(f"[{p['n']}] {p['title']} — {p['source']} {p['url']}".rstrip())
            continue
        streamed = []
        for event in application.service.reply(session, line):
            if event.kind == "token":
                streamed.append(event.data)
                typer.echo(event.data, nl=False)
            elif event.kind == "final":
                last = event.data
        session = last.session_id
        if streamed:
            typer.echo("\n" + "-" * 40)
        typer.echo(last.answer)
        _print_sources(last)


@eval_app.command("generation")
@cli_errors
def eval_generation(
    file: Path = typer.Argument(..., help='JSONL: {"id","question"} + optional "lang","reference","history","answerable".'),
    index: Optional[Path] = IndexOpt,
    backend: Optional[str] = BackendOpt,
    model: Optional[str] = ModelOpt,
    limit: int = typer.Option(0, "--limit", min=0, help="Only the first N questions (0 = all)."),
    adapter: Optional[str] = AdapterOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Run the full engine (retrieval included) on every question and score the answers:
    language match, citation validity, support, repetition, fallback and no-source honesty,
    ROUGE-L against references, latency."""
    from .gen_eval import run_generation_eval

    application = _app(backend, model, index, adapter)
    result = run_generation_eval(application, file, limit=limit)
    if as_json:
        _echo_json(result)
        return
    summary = result["summary"]

    def line(block: dict) -> str:
        means = "  ".join(f"{k}={v:.3f}" for k, v in block["means"].items() if k != "latency_ms")
        lat = block.get("latency_ms", {})
        return f"n={block['n']}  {means}  latency_p50={lat.get('p50', 0):.0f}ms"

    typer.echo(f"{result['backend']}: " + line(summary))
    for lang, block in summary.get("by_lang", {}).items():
        typer.echo(f"  {lang}: " + line(block))


@bench_app.command("chat")
@cli_errors
def bench_chat(
    out: Path = typer.Option(Path("data/bench/chat.json"), "--out", help="Where to write the JSON figures."),
    backend: Optional[str] = BackendOpt,
    model: Optional[str] = ModelOpt,
    index: Optional[Path] = IndexOpt,
    repeats: int = typer.Option(1, "--repeats", min=1, help="Runs of the question set."),
) -> None:
    """Time to first token, decode tokens/s, end-to-end latency p50/p95 over a fixed bilingual
    question set, and peak RSS. Prints a table and writes JSON."""
    from .gen_eval import run_chat_bench

    application = _app(backend, model, index)
    run_chat_bench(application, out, repeats=repeats, echo=typer.echo)
    typer.echo(f"written: {out}")


# --- finetuning (issue 6) ----------------------------------------------------------------------

finetune_app = typer.Typer(help="Build LoRA training data, train, export the adapter for llama.cpp.",
                           no_args_is_help=True)
app.add_typer(finetune_app, name="finetune")


@finetune_app.command("data")
@cli_errors
def finetune_data(
    out: Path = typer.Option(Path("data/finetune"), "--out", help="Directory for train/dev/test JSONL and the data card."),
    index: Optional[Path] = IndexOpt,
    train_size: int = typer.Option(360, "--train-size", min=1, help="Examples in train.jsonl."),
    test_size: int = typer.Option(60, "--test-size", min=0, help="Examples in test.jsonl."),
    seed: int = typer.Option(13, "--seed", help="Sampling seed (splits depend on document ids only)."),
    as_json: bool = JsonOpt,
) -> None:
    """Grounded-QA examples in the engine's prompt format (MedQuAD en, Toyhom zh, written zh<-en,
    no-source, multi-turn), split by document; writes DATA_CARD.md with the counts."""
    from finetune.data import DataConfig, build

    cfg = DataConfig(out_dir=str(out), index_dir=str(_index_dir(index)), train_size=train_size,
                     test_size=test_size, seed=seed)
    stats = build(cfg, echo=(lambda _m: None) if as_json else typer.echo)
    if as_json:
        _echo_json(stats)


@finetune_app.command("lora")
@cli_errors
def finetune_lora(
    config: Path = typer.Option(..., "--config", help="YAML/JSON run config (finetune/config.py: LoraRunConfig)."),
    resume: bool = typer.Option(False, "--resume", help="Continue from <output_dir>/checkpoint."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="tqdm progress bar (off: one log line per step)."),
    from_checkpoint: bool = typer.Option(False, "--from-checkpoint", help="Do not train: write adapter/, metrics.json and loss.png from the last checkpoint."),
    as_json: bool = JsonOpt,
) -> None:
    """Train a LoRA adapter; writes adapter/, config.json, metrics.json and loss.png to the run's
    output_dir. Ctrl-C stops after writing a checkpoint (continue with --resume, or keep it with
    --from-checkpoint)."""
    from finetune.config import LoraRunConfig
    from finetune.lora import finalize_checkpoint, train

    echo = (lambda _m: None) if as_json else typer.echo
    cfg = LoraRunConfig.load(config)
    if from_checkpoint:
        metrics = finalize_checkpoint(cfg, echo=echo)
    else:
        metrics = train(cfg, resume=resume, progress=progress and not as_json, echo=echo)
    if as_json:
        _echo_json(metrics)


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
    from finetune.export import end_of_turn_aliases, export_gguf_lora

    found = end_of_turn_aliases(base)[1] if aliases else None
    report = export_gguf_lora(adapter, out, base=base, end_of_turn_aliases=found)
    if as_json:
        _echo_json(report)
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
    from finetune.export import merge_adapter

    path = merge_adapter(adapter, out, base=base, dtype=dtype)
    typer.echo(f"merged model -> {path}")


def main() -> None:
    app()


if __name__ == "__main__":
    sys.exit(main())
