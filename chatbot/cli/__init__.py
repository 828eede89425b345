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

from knowledge_base.errors import DomainError, KnowledgeBaseError

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
        except DomainError as exc:
            message = str(exc)
        except ValidationError as exc:
            message = f"invalid settings (settings.yaml or MEDCHAT_* variables):\n{exc}"
        typer.echo(f"error: {message}", err=True)
        raise typer.Exit(EXIT_DOMAIN_ERROR)

    return wrapper


def _settings():
    from chatbot.settings import load_settings

    return load_settings()


def _echo_json(data: Any) -> None:
    typer.echo(json.dumps(data, ensure_ascii=False, indent=2))


IndexOpt = typer.Option(None, "--index", help="Index directory (default: paths.index_dir in settings).")
JsonOpt = typer.Option(False, "--json", help="Print machine-readable JSON (a stable contract).")


def _index_dir(index: Optional[Path]) -> Path:
    return index if index is not None else _settings().paths.index_dir


def _retriever(index: Optional[Path], embedder: Optional[str] = None, method: Optional[str] = None):
    from chatbot.app import make_retriever

    return make_retriever(_settings(), index=index, embedder=embedder, method=method)


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
    import logging

    from chatbot.app import build_index_from_settings

    if not (quiet or as_json):
        logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
        logging.getLogger("faiss").setLevel(logging.WARNING)  # its AVX2 probe is not news
    report = build_index_from_settings(_settings(), sources=sources, index=index, embedder=embedder, full=full,
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
    from knowledge_base.evaluation.metrics import evaluate, load_questions

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
    from knowledge_base.evaluation.bench import run_kb_bench

    result = run_kb_bench(settings=_settings(), out=out, synthetic=synthetic, n_queries=queries,
                          index_dir=index, work_dir=rebuild_dir, quick=quick, echo=typer.echo,
                          skip_build=skip_build, embedder=embedder)
    typer.echo(f"written: {out}")
    del result


def _app(backend: Optional[str] = None, model: Optional[str] = None, index: Optional[Path] = None,
         adapter: Optional[str] = None):
    from chatbot.app import build_app

    return build_app(_app_settings(backend, model, index, adapter))


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
    ROUGE-L against references, latency. Scored twice: the replies patients get, and the
    model's own text before the engine's safeguards (to compare base and finetuned models)."""
    from chatbot.evaluation.generation import run_generation_eval

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

    views = [(f"{result['backend']} replies", summary)]
    if result["model_summary"]["n"]:
        views.append(("model text (before the engine's safeguards)", result["model_summary"]))
    for title, view in views:
        typer.echo(f"{title}: " + line(view))
        for lang, block in view.get("by_lang", {}).items():
            typer.echo(f"  {lang}: " + line(block))


@eval_app.command("all")
@cli_errors
def eval_all(
    report: Path = typer.Option(Path("data/report"), "--report", help="Directory for report.md, report.json and plots/."),
    quick: bool = typer.Option(False, "--quick", help="Every section on a slice (minutes, not an hour)."),
    only: Optional[list[str]] = typer.Option(None, "--only", help="Run only this section (repeatable)."),
    backend: Optional[str] = BackendOpt,
    index: Optional[Path] = IndexOpt,
) -> None:
    """Every evaluation of the project on its own dev sets, into one report: data, licence and
    rerun command per section, metrics, plots. Exits 1 when a section failed."""
    from chatbot.evaluation.report import Context, run_all

    ctx = Context(report_dir=report, quick=quick, echo=typer.echo,
                  app_factory=lambda **kw: _app(kw.get("backend", backend), None, index, kw.get("adapter")))
    result = run_all(ctx, only=only)
    typer.echo(f"written: {report / 'report.md'} ({result['seconds']} s)")
    if any(s["status"] == "failed" for s in result["sections"]):
        raise typer.Exit(1)


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

    result = run_bench_all(_settings(), out, quick=quick, only=only, echo=typer.echo,
                           app_factory=lambda: _app(backend, None, index))
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

    application = _app(backend, model, index)
    run_chat_bench(application, out, repeats=repeats, echo=typer.echo)
    typer.echo(f"written: {out}")


@app.command()
@cli_errors
def serve(
    host: Optional[str] = typer.Option(None, "--host", help="Listen address (default: ui.host, 127.0.0.1)."),
    port: Optional[int] = typer.Option(None, "--port", min=1, max=65535, help="Port (default: ui.port, 7860)."),
    backend: Optional[str] = BackendOpt,
    model: Optional[str] = ModelOpt,
    index: Optional[Path] = IndexOpt,
) -> None:
    """Start the browser app: 患者咨询 / patient chat, 护士分诊台 / nurse triage console (login:
    ui.nurse_user + MEDCHAT_UI__NURSE_PASSWORD), 管理 / admin. Loads the models first, then
    serves until Ctrl-C."""
    from ui.app import serve as serve_ui

    application_settings = _app_settings(backend, model, index)
    host = host or application_settings.ui.host
    port = port or application_settings.ui.port
    typer.echo(f"MedChat on http://{host}:{port} (Ctrl-C stops it)", err=True)
    serve_ui(application_settings, host, port)


@app.command("hash-password")
@cli_errors
def hash_password_cmd(
    password: str = typer.Option(..., "--password", prompt=True, hide_input=True,
                                 confirmation_prompt=True, help="The nurse console password (prompted, hidden)."),
) -> None:
    """Print a salted PBKDF2 hash of a password for ui.nurse_password_hash in settings.yaml."""
    from chatbot.staff.auth import hash_password

    typer.echo(hash_password(password))


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
                      settings=None if url else _app_settings(backend, model, index), echo=typer.echo)
    typer.echo(f"written: {out}")
    if result["errors"] or result["cross_talk"]:
        raise typer.Exit(1)


def _app_settings(backend: Optional[str], model: Optional[str], index: Optional[Path],
                  adapter: Optional[str] = None):
    from chatbot.settings import load_settings

    s = load_settings()
    if backend:
        s.llm.backend = backend
    if model:
        s.llm.model = model
    if adapter is not None:
        s.llm.adapter = adapter
    if index is not None:
        s.paths.index_dir = index
    return s


# -- triage (issue 4) ------------------------------------------------------------------------
def _triage_engine(index: Optional[Path], with_evidence: bool):
    from chatbot.app import make_triage_engine

    return make_triage_engine(_settings(), retriever=_retriever(index) if with_evidence else None)


def _print_triage(result, prompts) -> None:
    lang = result.lang
    t = lambda key, **kw: prompts.text(lang, key, **kw)  # noqa: E731
    dept = result.department
    typer.echo(f"{t(f'triage.acuity.{result.acuity}')}  ({t('triage.cn_level', level=result.cn_level)})")
    typer.echo(t(f"triage.disposition.{result.disposition}"))
    typer.echo(f"{dept['zh']} / {dept['en']}")
    for r in result.reasons:
        typer.echo(f"  [{r.acuity}] {r.kind}: {r.text(lang)}")
    for w in result.warnings:
        typer.echo(f"  ! {w}")
    for i, p in enumerate(result.evidence, 1):
        typer.echo(f"  [{i}] {p['title']} — {p['source']} {p['url']}".rstrip())
    typer.echo("")
    typer.echo(result.note)


# -- classifier (issue 5): classify, eval intent|emotion, train classifier ----------------------
train_app = typer.Typer(help="Train MedChat's models (training code lives in finetune/).",
                        no_args_is_help=True)
app.add_typer(train_app, name="train")

ModelDirOpt = typer.Option(None, "--model", help="Classifier directory (default: classifier.model_dir in settings).")


def _classifier(model: Optional[Path]):
    from chatbot.classifier.runtime import TrainedClassifier

    s = _settings()
    return TrainedClassifier(model or s.classifier.model_dir, intent_threshold=s.classifier.intent_threshold,
                             emotion_threshold=s.classifier.emotion_threshold)


@app.command()
@cli_errors
def triage(
    text: str = typer.Argument(..., help="The complaint in the patient's words (中文 / English)."),
    age: Optional[float] = typer.Option(None, "--age", help="Age in years (0.25 = 3 months)."),
    sex: Optional[str] = typer.Option(None, "--sex", help="F or M."),
    pregnant: bool = typer.Option(False, "--pregnant", help="The patient is pregnant."),
    hr: Optional[float] = typer.Option(None, "--hr", help="Heart rate, /min."),
    sbp: Optional[float] = typer.Option(None, "--sbp", help="Systolic blood pressure, mmHg."),
    rr: Optional[float] = typer.Option(None, "--rr", help="Respiratory rate, /min."),
    spo2: Optional[float] = typer.Option(None, "--spo2", help="Oxygen saturation, %."),
    temp: Optional[float] = typer.Option(None, "--temp", help="Temperature, °C."),
    gcs: Optional[int] = typer.Option(None, "--gcs", help="Glasgow Coma Scale, 3-15."),
    avpu: Optional[str] = typer.Option(None, "--avpu", help="A | V | P | U."),
    pain: Optional[int] = typer.Option(None, "--pain", help="Pain score 0-10."),
    onset: Optional[str] = typer.Option(None, "--onset", help='When it started, e.g. "2 hours ago", "3天".'),
    comorbidity: list[str] = typer.Option([], "--comorbidity", help="A long-term condition; repeatable."),
    lang: Optional[str] = typer.Option(None, "--lang", help="zh | en for the note and reasons (default: the complaint's language)."),
    index: Optional[Path] = IndexOpt,
    no_evidence: bool = typer.Option(False, "--no-evidence", help="Skip the supporting passages (no index needed)."),
    save: bool = typer.Option(False, "--save", help="Store intake, result and note in the SQLite database."),
    nurse: str = typer.Option("", "--nurse", help="Nurse name recorded with --save."),
    as_json: bool = JsonOpt,
) -> None:
    """Triage one intake: acuity 1-5, disposition (emergency / urgent / routine / self_care),
    department, reasons, red flags, supporting passages and a draft note.

    JSON: {acuity, disposition, department:{key,en,zh}, reasons:[{kind,code,acuity,text,value}],
    red_flags, evidence, note, lang, warnings}."""
    from chatbot.triage import Intake, Vitals

    vitals = Vitals(hr=hr, sbp=sbp, rr=rr, spo2=spo2, temp=temp, gcs=gcs, avpu=avpu, pain=pain)
    intake = Intake(complaint=text, age=age, sex=sex, pregnant=pregnant or None, vitals=vitals,
                    onset=onset, comorbidities=tuple(comorbidity))
    engine = _triage_engine(index, not no_evidence)
    result = engine.assess(intake, lang=lang, with_evidence=not no_evidence)
    if save:
        from chatbot.store import ChatStore

        with ChatStore(_settings().paths.database) as store:
            store.add_triage(intake.to_json(), result.to_json(), nurse=nurse, note=result.note)
    if as_json:
        _echo_json(result.to_json())
        return
    _print_triage(result, engine.prompts)


@eval_app.command("triage")
@cli_errors
def eval_triage(
    file: Path = typer.Argument(..., help='JSONL: {"id","text", optional "age","sex","vitals":{...}, "expected"}; '
                                          'expected = emergency|urgent|routine|self_care or em|ne|sc.'),
    per_item: bool = typer.Option(False, "--per-item", help="Include every vignette's result in the JSON."),
    as_json: bool = JsonOpt,
) -> None:
    """Accuracy, per-class recall, emergency recall, under- and over-triage rates and the
    confusion matrix of the triage engine on labelled vignettes (rules only, no retrieval)."""
    from chatbot.triage.evaluation import evaluate, load_vignettes

    rows = load_vignettes(file)
    result = {"file": str(file), **evaluate(_triage_engine(None, False), rows, per_item=per_item)}
    if as_json:
        _echo_json(result)
        return
    er = result["emergency_recall"]
    typer.echo(f"n={result['n']}  accuracy={result['accuracy']:.3f}  "
               f"emergency_recall={'-' if er is None else f'{er:.3f}'}  "
               f"under_triage={result['under_triage_rate']:.3f}  over_triage={result['over_triage_rate']:.3f}")
    typer.echo("per-class recall: " + "  ".join(
        f"{k}={v:.3f} (n={result['per_class_n'][k]})" for k, v in result["per_class_recall"].items()))
    for lang, block in result["by_lang"].items():
        typer.echo(f"  {lang}: n={block['n']} accuracy={block['accuracy']:.3f}")
    typer.echo("confusion (rows expected, columns given; three levels):")
    typer.echo("        " + "".join(f"{g:>6}" for g in ("em", "ne", "sc")))
    for e, row in result["confusion_3level"].items():
        typer.echo(f"  {e:<6}" + "".join(f"{row[g]:>6}" for g in ("em", "ne", "sc")))
    if result["errors"]:
        typer.echo(f"errors ({len(result['errors'])}):")
        for err in result["errors"][:40]:
            typer.echo(f"  {err['id']}: expected {err['expected']}, given {err['given']} "
                       f"(acuity {err['acuity']}; {', '.join(err['reasons'][:4])})")


# -- safety (issue 4): red-flag screen --------------------------------------------------------
safety_app = typer.Typer(help="The red-flag safety screen: check one message.", no_args_is_help=True)
app.add_typer(safety_app, name="safety")


def _safety_screen():
    from chatbot.app import make_safety_screen

    return make_safety_screen(_settings(), enabled=True)


@eval_app.command("safety")
@cli_errors
def eval_safety(
    file: Path = typer.Argument(..., help='JSONL: {"id","text","expect":"emergency"|"not_emergency"} (+ optional "category", "lang").'),
    as_json: bool = JsonOpt,
    show_all: bool = typer.Option(False, "--all", help="Also print the false alarms' evidence and every result (text mode)."),
) -> None:
    """Recall on emergencies, false-alarm rate on the rest, the misses, and the time per message.

    JSON: {file, rules_file, rules, n, emergencies, non_emergencies, recall, false_alarm_rate,
    caught, false_alarms, by_lang, by_category, misses:[{id,text}], false_alarm_cases:[{id, text,
    categories, rule_ids, evidence}], timing_ms:{mean,p95,max}, results:[...]}."""
    from chatbot.safety.evaluation import run_safety_eval

    report = run_safety_eval(_safety_screen(), file)
    if as_json:
        _echo_json(report)
        return

    def pct(v):
        return "n/a" if v is None else f"{100 * v:.1f}%"

    typer.echo(f"{report['file']}: {report['n']} messages ({report['emergencies']} emergencies, "
               f"{report['non_emergencies']} not), {report['rules']} rules")
    typer.echo(f"recall on emergencies:        {pct(report['recall'])} ({report['caught']}/{report['emergencies']})")
    typer.echo(f"false alarms on the rest:     {pct(report['false_alarm_rate'])} "
               f"({report['false_alarms']}/{report['non_emergencies']})")
    for lang, block in report["by_lang"].items():
        typer.echo(f"  {lang}: recall {pct(block['recall'])}, false alarms {pct(block['false_alarm_rate'])} (n={block['n']})")
    t = report["timing_ms"]
    typer.echo(f"time per message: mean {t['mean']:.3f} ms, p95 {t['p95']:.3f} ms, max {t['max']:.3f} ms")
    typer.echo(f"misses ({len(report['misses'])}):")
    for m in report["misses"]:
        typer.echo(f"  {m['id']}: {m['text']}")
    typer.echo(f"false alarms ({len(report['false_alarm_cases'])}):")
    for f in report["false_alarm_cases"]:
        extra = f"  <- {', '.join(f['rule_ids'])}: {' | '.join(f['evidence'])}" if show_all else f"  <- {', '.join(f['rule_ids'])}"
        typer.echo(f"  {f['id']}: {f['text']}{extra}")


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
    report = run_safety_bench(_safety_screen(), texts, repeats=repeats)
    if as_json:
        _echo_json(report)
        return
    p, a = report["per_message_ms"], report["all_runs_ms"]
    typer.echo(f"{report['messages']} messages x {report['repeats']} ({report['rules']} rules, "
               f"rules load {report['load_ms']:.0f} ms)")
    typer.echo(f"per message (median of its runs): mean {p['mean']:.3f} ms, p50 {p['p50']:.3f} ms, "
               f"p95 {p['p95']:.3f} ms, max {p['max']:.3f} ms")
    typer.echo(f"all runs: mean {a['mean']:.3f} ms, p95 {a['p95']:.3f} ms, max {a['max']:.3f} ms")


@safety_app.command("check")
@cli_errors
def safety_check(
    text: str = typer.Argument(..., help="A patient message, Chinese, English or mixed."),
    lang: Optional[str] = typer.Option(None, "--lang", help="zh | en for the message language (default: detected)."),
    as_json: bool = JsonOpt,
) -> None:
    """Screen one message: the hits (category, rule, evidence) and the escalation message.

    JSON: {emergency, category, categories, rule_ids, evidence, number, crisis_line, message,
    hits:[{category, rule_id, evidence, lang, context}]}."""
    from chatbot.engine.intake import detect_language

    screen = _safety_screen()
    use_lang = lang or detect_language(text).lang
    result = screen.screen(text, use_lang)
    hits = screen.hits(text, use_lang)
    if as_json:
        _echo_json({"emergency": result.emergency, "category": result.category,
                    "categories": result.categories, "rule_ids": result.rule_ids,
                    "evidence": result.evidence, "number": result.number,
                    "crisis_line": result.crisis_line, "message": result.message,
                    "hits": [{"category": h.category, "rule_id": h.rule_id, "evidence": h.evidence,
                              "lang": h.lang, "context": list(h.context)} for h in hits]})
        return
    if not result.emergency:
        typer.echo("no red flag")
        return
    for h in hits:
        typer.echo(f"{h.category}: {h.rule_id} <- {h.evidence}" + (f" + {', '.join(h.context)}" if h.context else ""))
    typer.echo("")
    typer.echo(result.message)


@app.command()
@cli_errors
def classify(text: str = typer.Argument(..., help="The message to classify (zh or en)."),
             model: Optional[Path] = ModelDirOpt, as_json: bool = JsonOpt) -> None:
    """Intent and emotion of one message, with calibrated scores. JSON:
    {"intent": {"label", "score"}, "emotion": {"label", "score"}}."""
    from chatbot.classifier.labels import EMOTIONS, INTENTS

    result = _classifier(model).classify(text)
    data = {"intent": {"label": result.intent.label, "score": result.intent.score},
            "emotion": {"label": result.emotion.label, "score": result.emotion.score}}
    if as_json:
        _echo_json(data)
        return
    typer.echo(f"intent:  {data['intent']['label']} ({INTENTS.get(data['intent']['label'], ('',))[0]}) "
               f"{data['intent']['score']:.3f}")
    typer.echo(f"emotion: {data['emotion']['label']} ({EMOTIONS[data['emotion']['label']][0]}) "
               f"{data['emotion']['score']:.3f}")


def _eval_classifier(kind: str, file: Path, model: Optional[Path], report: Optional[Path],
                     all_labels: bool, as_json: bool) -> None:
    from chatbot.classifier.evaluation import evaluate_file

    out = evaluate_file(_classifier(model), kind, file, report_dir=report, restrict=not all_labels)
    if as_json:
        _echo_json(out)
        return
    restricted = f" (predictions within the file's labels: {', '.join(out['restricted_to'])})" \
        if out["restricted_to"] else ""
    typer.echo(f"{kind} on {file.name}: n {out['n']}{restricted}")
    typer.echo(f"accuracy {out['accuracy']:.4f}   macro-F1 {out['macro_f1']:.4f}   "
               f"latency p50 {out['latency_ms']['p50']:.1f} ms  p95 {out['latency_ms']['p95']:.1f} ms")
    typer.echo(f"{'class':<26}{'P':>7}{'R':>7}{'F1':>7}{'n':>7}")
    for label, m in out["per_class"].items():
        typer.echo(f"{label:<26}{m['precision']:>7.3f}{m['recall']:>7.3f}{m['f1']:>7.3f}{m['support']:>7}")
    for path in out["report"]:
        typer.echo(f"written: {path}")


EvalFileArg = typer.Argument(..., help='JSONL {"text", "label"}; project keys or the source datasets\' label names.')
ReportOpt = typer.Option(None, "--report", help="Write the confusion matrix and per-class F1 as PNG into this directory.")
AllLabelsOpt = typer.Option(False, "--all-labels", help="Score the raw predictions instead of restricting them to the file's label set.")


def _register_eval_command(kind: str, help_text: str) -> None:
    """``eval intent`` and ``eval emotion``: one body, two commands."""

    @eval_app.command(kind, help=help_text)
    @cli_errors
    def command(file: Path = EvalFileArg, model: Optional[Path] = ModelDirOpt,
                report: Optional[Path] = ReportOpt, all_labels: bool = AllLabelsOpt,
                as_json: bool = JsonOpt) -> None:
        _eval_classifier(kind, file, model, report, all_labels, as_json)


_register_eval_command("intent", "Accuracy, macro-F1 and per-class F1 of the intent head (e.g. on KUAKE-QIC).")
_register_eval_command("emotion", "Accuracy, macro-F1 and per-class F1 of the emotion head (GoEmotions-Ekman, EWECT).")


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
    try:
        from finetune.classifier.train import TrainConfig, train_classifier
    except ImportError as exc:
        raise KnowledgeBaseError(f"training needs the finetune dependencies ({exc.name} missing)",
                                 hint='pip install -e ".[finetune]"') from exc
    kwargs: dict[str, Any] = {"out": out, "encoder": encoder, "seed": seed}
    if shared_data:
        kwargs["shared_data"] = shared_data
    if examples:
        kwargs["examples_dir"] = examples
    if no_cache:
        kwargs["cache"] = None
    if hash_dim:
        kwargs["hash_dim"] = hash_dim
    if linear not in ("svm", "logreg"):
        raise KnowledgeBaseError(f"invalid training option: --linear {linear!r}", hint="use svm or logreg")
    kwargs["svm_heads"] = ("intent", "emotion") if linear == "svm" else ()
    if c_values:
        kwargs["svm_c_grid" if linear == "svm" else "c_grid"] = tuple(c_values)
    if dense_scales:
        kwargs["dense_scales"] = tuple(dense_scales)
    try:
        cfg = TrainConfig(**kwargs)
    except ValueError as exc:
        raise KnowledgeBaseError(f"invalid training option: {exc}") from exc
    command = "medchat train classifier " + " ".join(sys.argv[3:]) if len(sys.argv) > 3 else \
        "medchat train classifier"
    metrics = train_classifier(cfg, log=typer.echo, command=command.strip())
    for kind, info in metrics["heads"].items():
        hb = info["held_back"]
        typer.echo(f"{kind}: held-back accuracy {hb['accuracy']:.4f} macro-F1 {hb['macro_f1']:.4f}")
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
    train_size: int = typer.Option(400, "--train-size", min=1, help="Examples in train.jsonl."),
    test_size: int = typer.Option(60, "--test-size", min=0, help="Examples in test.jsonl."),
    seed: int = typer.Option(13, "--seed", help="Sampling seed (splits depend on document ids only)."),
    as_json: bool = JsonOpt,
) -> None:
    """Grounded-QA examples in the engine's prompt format (MedQuAD en, Toyhom zh, written zh<-en,
    no-source, multi-turn), split by document; writes DATA_CARD.md with the counts."""
    from finetune.lora.data import DataConfig, build

    cfg = DataConfig(out_dir=str(out), index_dir=str(_index_dir(index)), train_size=train_size,
                     test_size=test_size, seed=seed)
    stats = build(cfg, echo=(lambda _m: None) if as_json else typer.echo)
    if as_json:
        _echo_json(stats)


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
    from finetune.lora.export import end_of_turn_aliases, export_gguf_lora

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
    from finetune.lora.export import merge_adapter

    path = merge_adapter(adapter, out, base=base, dtype=dtype)
    typer.echo(f"merged model -> {path}")


def main() -> None:
    app()


if __name__ == "__main__":
    sys.exit(main())
