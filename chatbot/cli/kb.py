"""``medchat setup`` and ``medchat kb build|search|stats|verify``: build, search and check the
knowledge-base index."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Optional

import typer

from chatbot.cli.common import IndexOpt, JsonOpt, cli_errors, cli_retriever, cli_settings, echo_json, resolve_index_dir

kb_app = typer.Typer(help="Build, search and check the knowledge-base index.", no_args_is_help=True)


def _print_build(report, as_json: bool) -> None:
    if as_json:
        echo_json(report.to_json())
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
    import logging

    from chatbot.app import build_index_from_settings

    if not (quiet or as_json):
        logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
        logging.getLogger("faiss").setLevel(logging.WARNING)  # its AVX2 probe is not news
    report = build_index_from_settings(cli_settings(), sources=sources, index=index, embedder=embedder, full=full,
                                       progress=False if (quiet or as_json) else None)
    _print_build(report, as_json)


@cli_errors
def setup(full: bool = typer.Option(False, "--full", help="Re-chunk everything (vectors still come from the cache)."),
          as_json: bool = JsonOpt) -> None:
    """Build (or update) the default index from the shipped corpus (paths in settings).

    A fresh build of the default corpus takes about 4 minutes on 2 CPU cores; later runs reuse
    unchanged documents and take seconds."""
    s = cli_settings()
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
    _build(source, resolve_index_dir(index), embedder, full, as_json, quiet)


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
    retriever = cli_retriever(index, embedder, method)
    passages = retriever.search(query, k=k)
    if as_json:
        echo_json([p.to_json() for p in passages])
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

    stats = index_stats(resolve_index_dir(index))
    if as_json:
        echo_json(stats)
        return
    for key, value in stats.items():
        typer.echo(f"{key + ':':<16}{json.dumps(value, ensure_ascii=False) if isinstance(value, (dict, list)) else value}")


@kb_app.command("verify")
@cli_errors
def kb_verify(index: Optional[Path] = IndexOpt, as_json: bool = JsonOpt) -> None:
    """Check the current build: manifest, file checksums, counts across FAISS, BM25 and SQLite,
    per-document hashes. Exit code 1 when a check fails."""
    from knowledge_base.inspect import verify_index

    result = verify_index(resolve_index_dir(index))
    if as_json:
        echo_json(result)
    else:
        for check in result["checks"]:
            typer.echo(f"{'ok  ' if check['ok'] else 'FAIL'} {check['name']}: {check['detail']}")
        typer.echo("index OK" if result["ok"] else "index BROKEN: rebuild with medchat kb build --full")
    if not result["ok"]:
        raise typer.Exit(1)
