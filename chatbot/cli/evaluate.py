"""Every ``medchat eval ...`` command: retrieval, generation, all (the report), triage, safety,
intent and emotion. Each scores one part on a JSONL file; ``--json`` output is a contract
(docs/CLI.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from chatbot.cli.common import (
    AdapterOpt,
    BackendOpt,
    IndexOpt,
    JsonOpt,
    ModelDirOpt,
    ModelOpt,
    cli_app,
    cli_classifier,
    cli_errors,
    cli_retriever,
    cli_safety_screen,
    cli_triage_engine,
    echo_json,
)

eval_app = typer.Typer(help="Evaluate the parts of MedChat on JSONL question files.", no_args_is_help=True)


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
    retriever = cli_retriever(index, None, method)
    # 20 chunks give 10 distinct documents even when a document contributes two chunks.
    result = evaluate(lambda q: retriever.search(q, k=20), questions, per_question=per_question)
    result = {"file": str(file), "method": retriever.config.method, **result}
    if as_json:
        echo_json(result)
        return
    keys = [k for k in ("n", "recall@1", "recall@5", "recall@10", "mrr@10", "ndcg@10", "avg_score@1") if k in result]
    typer.echo("  ".join(f"{k}={result[k]}" for k in keys))
    for group, metrics in result.get("groups", {}).items():
        typer.echo(f"  {group}: " + "  ".join(f"{k}={metrics[k]}" for k in keys if k in metrics))
    typer.echo(f"  latency p50={result['latency_ms']['p50']} ms p95={result['latency_ms']['p95']} ms")


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
    answer rate on answerable questions, no-source honesty on unanswerable ones, language match,
    citation validity, support, repetition, fallback, ROUGE-L and key-fact recall against
    references, answer length, latency. Scored twice: the replies patients get, and the model's
    own text before the engine's safeguards (to compare base and finetuned models); beside both,
    in the same run, the "show the top retrieved passage" baseline on the same questions."""
    from chatbot.evaluation.generation import run_generation_eval

    application = cli_app(backend, model, index, adapter)
    result = run_generation_eval(application, file, limit=limit)
    if as_json:
        echo_json(result)
        return
    summary = result["summary"]

    def line(block: dict) -> str:
        means = "  ".join(f"{k}={v:.3f}" for k, v in block["means"].items() if k != "latency_ms")
        lat = block.get("latency_ms", {})
        return f"n={block['n']}  {means}  latency_p50={lat.get('p50', 0):.0f}ms"

    views = [(f"{result['backend']} replies", summary)]
    if result["model_summary"]["n"]:
        views.append(("model text (before the engine's safeguards)", result["model_summary"]))
    views.append(("baseline: the top retrieved passage", result["baseline"]))
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
                  app_factory=lambda **kw: cli_app(kw.get("backend", backend), None, index, kw.get("adapter")))
    result = run_all(ctx, only=only)
    typer.echo(f"written: {report / 'report.md'} ({result['seconds']} s)")
    if any(s["status"] == "failed" for s in result["sections"]):
        raise typer.Exit(1)


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
    result = {"file": str(file), **evaluate(cli_triage_engine(None, False), rows, per_item=per_item)}
    if as_json:
        echo_json(result)
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


@eval_app.command("intake")
@cli_errors
def eval_intake(
    file: Path = typer.Argument(..., help='JSONL: {"id","lang","first_message","age_answer","onset_answer",'
                                          '"severity_answer","warning_signs_answer","expected": em|ne|sc}.'),
    index: Optional[Path] = IndexOpt,
    as_json: bool = JsonOpt,
) -> None:
    """The chat's disposition after its follow-up questions (symptom intake) against the
    disposition from the first message alone, on multi-turn cases: a simulated patient answers
    every question from the case. Accuracy, emergency recall, per-class recall, under/over-triage
    for both, the share of cases interviewed and the questions asked. The LLM is the fake one
    (dispositions do not depend on it)."""
    from pydantic import SecretStr

    from chatbot.app import build_app
    from chatbot.cli.common import app_settings
    from chatbot.evaluation.intake import IntakeEvalError, evaluate_intake, read_cases
    from chatbot.llm.fake import FakeGenerator
    from knowledge_base.errors import DomainError

    try:
        cases = read_cases(file)
    except (OSError, IntakeEvalError) as exc:
        raise DomainError(str(exc), hint="see `medchat eval intake --help` for the line format") from exc
    base = app_settings("fake", None, index)

    def factory(database: Path):
        settings = base.model_copy(update={"paths": base.paths.model_copy(update={"database": database}),
                                           "store": base.store.model_copy(update={"url": SecretStr("")})})
        return build_app(settings, generator=FakeGenerator()).service

    result = {"file": str(file), **evaluate_intake(cases, factory)}
    if as_json:
        echo_json(result)
        return
    typer.echo(f"n={result['n']}  interviewed={result['intake_rate']:.3f}  mean questions={result['mean_questions']}")
    for key in ("one_message", "after_intake"):
        b = result[key]
        typer.echo(f"{key:<13} accuracy={b['accuracy']:.3f}  em recall={b['emergency_recall']:.3f}  "
                   f"sc recall={b['per_class_recall']['sc']:.3f}  under={b['under_triage_rate']:.3f}  "
                   f"over={b['over_triage_rate']:.3f}  no line={b['no_disposition']:.3f}")
    for lang, block in result["by_lang"].items():
        typer.echo(f"  {lang}: n={block['n']} one message {block['one_message']:.3f}, after intake {block['after_intake']:.3f}")


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

    report = run_safety_eval(cli_safety_screen(), file)
    if as_json:
        echo_json(report)
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


def _eval_classifier(kind: str, file: Path, model: Optional[Path], report: Optional[Path],
                     all_labels: bool, as_json: bool) -> None:
    from chatbot.classifier.evaluation import evaluate_file

    out = evaluate_file(cli_classifier(model), kind, file, report_dir=report, restrict=not all_labels)
    if as_json:
        echo_json(out)
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
