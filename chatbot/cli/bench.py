"""Every ``medchat bench ...`` command: kb, all, chat, ui, safety. Each prints figures and writes
(or prints) JSON."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from chatbot.cli.common import (
    BackendOpt,
    IndexOpt,
    JsonOpt,
    ModelOpt,
    app_settings,
    cli_app,
    cli_errors,
    cli_safety_screen,
    cli_settings,
    echo_json,
)

bench_app = typer.Typer(help="Benchmarks: print figures and write JSON.", no_args_is_help=True)


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
    from knowledge_base.evaluation.bench import run_kb_bench

    run_kb_bench(settings=cli_settings(), out=out, synthetic=synthetic, n_queries=queries,
                 index_dir=index, work_dir=rebuild_dir, quick=quick, echo=typer.echo,
                 skip_build=skip_build, embedder=embedder)
    typer.echo(f"written: {out}")


@bench_app.command("all")
@cli_errors
def bench_all(
    out: Path = typer.Option(Path("data/bench/all.json"), "--out", help="Where to write the combined JSON."),
    quick: bool = typer.Option(False, "--quick", help="Corpus slice and 20k synthetic chunks instead of the full build and 1M chunks."),
    only: Optional[list[str]] = typer.Option(None, "--only", help="Run only this part (repeatable)."),
    backend: Optional[str] = BackendOpt,
    index: Optional[Path] = IndexOpt,
) -> None:
    """Every part's benchmark in one JSON with machine details: knowledge base, chat, and the
    figures that other commands measured (training throughput, UI load), with their files."""
    from chatbot.evaluation.bench import run_bench_all

    result = run_bench_all(cli_settings(), out, quick=quick, only=only, echo=typer.echo,
                           app_factory=lambda: cli_app(backend, None, index))
    for key, part in result["parts"].items():
        typer.echo(f"{key}: {part['status']} ({part['seconds']} s)")
    typer.echo(f"written: {out} ({result['seconds']} s)")


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
    from chatbot.evaluation.generation import run_chat_bench

    application = cli_app(backend, model, index)
    run_chat_bench(application, out, repeats=repeats, echo=typer.echo)
    typer.echo(f"written: {out}")


@bench_app.command("ui")
@cli_errors
def bench_ui(
    sessions: int = typer.Option(20, "--sessions", min=1, help="Concurrent patient sessions."),
    url: Optional[str] = typer.Option(None, "--url", help="A running `medchat serve` (default: start one on a free port)."),
    out: Path = typer.Option(Path("data/bench/ui.json"), "--out", help="Where to write the JSON figures."),
    backend: Optional[str] = BackendOpt,
    model: Optional[str] = ModelOpt,
    index: Optional[Path] = IndexOpt,
) -> None:
    """N simultaneous browser-protocol sessions (gradio_client), each asking a bilingual pair of
    questions: time to first token and to the full answer (p50/p95), errors, cross-talk checks.
    Prints a summary and writes JSON."""
    from ui.load import run_load

    result = run_load(sessions=sessions, url=url, out=out,
                      settings=None if url else app_settings(backend, model, index), echo=typer.echo)
    typer.echo(f"written: {out}")
    if result["errors"] or result["cross_talk"]:
        raise typer.Exit(1)


@bench_app.command("api")
@cli_errors
def bench_api(
    sessions: int = typer.Option(20, "--sessions", min=1, max=200, help="Concurrent conversations (two turns each)."),
    replicas: int = typer.Option(2, "--replicas", min=1, max=8, help="`medchat api` processes sharing one store."),
    out: Path = typer.Option(Path("data/bench/api.json"), "--out", help="Where to write the JSON figures."),
    backend: Optional[str] = BackendOpt,
    model: Optional[str] = ModelOpt,
    index: Optional[Path] = IndexOpt,
) -> None:
    """Load test of the HTTP API, loopback only: N replicas on free ports sharing one store (store.url's
    Postgres, else a scratch SQLite file), M simultaneous streamed conversations whose follow-up goes
    to another replica. First-token and whole-answer p50/p95, errors, cross-talk. Exits 1 on any
    error or cross-talk."""
    from chatbot.api.load import run_api_load

    result = run_api_load(app_settings(backend, model, index), sessions=sessions, replicas=replicas,
                          out=out, echo=typer.echo)
    typer.echo(f"written: {out}")
    if result["errors"] or result["cross_talk"]:
        raise typer.Exit(1)


@bench_app.command("safety")
@cli_errors
def bench_safety(
    file: Optional[Path] = typer.Option(None, "--file", help="JSONL with a \"text\" field (default: data/eval/safety_dev.jsonl)."),
    repeats: int = typer.Option(20, "--repeats", min=1, help="Passes over the messages."),
    as_json: bool = JsonOpt,
) -> None:
    """Time of the red-flag screen per message (target < 1 ms)."""
    from chatbot.safety.evaluation import read_cases, run_safety_bench
    from chatbot.settings import PROJECT_ROOT

    path = file or PROJECT_ROOT / "data" / "eval" / "safety_dev.jsonl"
    texts = [c["text"] for c in read_cases(path)]
    report = run_safety_bench(cli_safety_screen(), texts, repeats=repeats)
    if as_json:
        echo_json(report)
        return
    p, a = report["per_message_ms"], report["all_runs_ms"]
    typer.echo(f"{report['messages']} messages x {report['repeats']} ({report['rules']} rules, "
               f"rules load {report['load_ms']:.0f} ms)")
    typer.echo(f"per message (median of its runs): mean {p['mean']:.3f} ms, p50 {p['p50']:.3f} ms, "
               f"p95 {p['p95']:.3f} ms, max {p['max']:.3f} ms")
    typer.echo(f"all runs: mean {a['mean']:.3f} ms, p95 {a['p95']:.3f} ms, max {a['max']:.3f} ms")
