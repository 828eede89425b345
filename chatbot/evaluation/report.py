"""``medchat eval all --report DIR``: every evaluation of the project on its own dev sets, one
report (``report.md``, ``report.json`` and PNG plots).

Each section names its data (file, size, licence), the exact command that reruns it, its
metrics, its plots and how long it took. A section whose part is not installed or configured
(say, no LoRA adapter) is *skipped* with the reason, never silently left out; a section that
fails with a domain error is *failed* with the message, and the command exits non-zero after
writing the report. ``--quick`` runs every section on a slice sized to finish in minutes.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterable

from chatbot.errors import MedChatError
from chatbot.settings import project_relative

EVAL_DIR = Path("data/eval")


@dataclass
class DataRef:
    """One input file of a section: what it is and under which licence it ships."""

    path: str
    size: int
    licence: str
    note: str = ""


@dataclass
class Section:
    key: str
    title: str
    status: str = "ok"  # ok | skipped | failed
    reason: str = ""
    data: list[DataRef] = field(default_factory=list)
    commands: list[str] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)
    plots: list[str] = field(default_factory=list)
    seconds: float = 0.0


class SectionSkipped(Exception):
    """Raised by a section runner whose part is absent (not an error: the report says why)."""


@dataclass
class Context:
    """What every section runner receives."""

    report_dir: Path
    quick: bool
    app_factory: Callable[..., Any]  # (backend=None, adapter=None) -> chatbot.app.App
    echo: Callable[[str], None] = print
    _apps: dict = field(default_factory=dict)

    def app(self, **overrides: Any):
        key = tuple(sorted(overrides.items()))
        if key not in self._apps:
            self._apps[key] = self.app_factory(**overrides)
        return self._apps[key]

    def plot_path(self, name: str) -> Path:
        return self.report_dir / "plots" / name


def count_lines(path: Path) -> int:
    with open(path, encoding="utf-8") as fh:
        return sum(1 for line in fh if line.strip())


def data_ref(path: Path, licence: str, note: str = "") -> DataRef:
    return DataRef(str(path), count_lines(path), licence, note)


# --- sections --------------------------------------------------------------------------------

# (file, licence of its content, quick-mode limit). Hand-written sets are the project's own;
# generated sets quote MedQuAD (CC BY 4.0) or Toyhom (MIT) questions. Quick-mode slices are sized
# so that the whole quick report stays a few minutes inside CI's 25-minute budget.
RETRIEVAL_SETS = (
    ("retrieval_en_consumer.jsonl", "project-written (MIT); labels point at MedQuAD (CC BY 4.0)", 40),
    ("retrieval_zh_en_crosslingual.jsonl", "project-written (MIT); labels point at MedQuAD (CC BY 4.0)", 40),
    ("retrieval_zh_consumer.jsonl", "project-written (MIT); labels point at Toyhom (MIT)", 40),
    ("retrieval_en_medquad.jsonl", "MedQuAD questions (CC BY 4.0)", 50),
    ("retrieval_zh_toyhom.jsonl", "Toyhom questions (MIT)", 50),
)
RETRIEVAL_METHODS = ("bm25", "dense", "hybrid")
CURVE_K = 10


def recall_curve(per_question: list[dict], max_k: int = CURVE_K) -> list[float]:
    """Mean recall@k for k = 1..max_k from per-question rankings (retrieved docs vs relevant)."""
    if not per_question:
        return []
    curve = []
    for k in range(1, max_k + 1):
        total = 0.0
        for q in per_question:
            relevant = set(q["relevant"])
            total += len(relevant & set(q["retrieved"][:k])) / max(len(relevant), 1)
        curve.append(round(total / len(per_question), 4))
    return curve


def section_retrieval(ctx: Context, section: Section) -> None:
    from dataclasses import replace

    from knowledge_base.evaluation.metrics import evaluate, load_questions
    from knowledge_base.retriever import Retriever

    s = ctx.app().settings
    # One retriever per method on the same index; each loads the index's own embedder.
    retrievers = {m: Retriever(s.paths.index_dir, config=replace(s.retrieval, method=m),
                               index_config=s.kb.index) for m in RETRIEVAL_METHODS}
    for name, licence, quick_limit in RETRIEVAL_SETS:
        path = EVAL_DIR / name
        questions = load_questions(path)
        limit = quick_limit if ctx.quick else 0
        if limit:
            questions = questions[:limit]
        section.data.append(DataRef(str(path), len(questions), licence,
                                    f"first {limit} (quick)" if limit else ""))
        curves = {}
        for method, retriever in retrievers.items():
            result = evaluate(lambda q, r=retriever: r.search(q, k=20), questions, per_question=True)
            curves[method] = recall_curve(result.pop("questions"))
            section.metrics.setdefault(name, {})[method] = {
                k: result[k] for k in ("n", "recall@1", "recall@5", "recall@10", "mrr@10", "ndcg@10")
                if k in result} | {"latency_ms": result["latency_ms"]}
        plot = ctx.plot_path(f"recall_{Path(name).stem}.png")
        _plots().line_chart(curves, plot, title=f"recall@k — {name}", xlabel="k", ylabel="recall@k")
        section.plots.append(str(plot.relative_to(ctx.report_dir)))
        section.commands.append(f"medchat eval retrieval {path} --method <bm25|dense|hybrid>")
        ctx.echo(f"  retrieval {name}: " + "  ".join(
            f"{m} R@5={section.metrics[name][m].get('recall@5')}" for m in RETRIEVAL_METHODS))


def _generation_metrics(result: dict) -> dict:
    summary = result["summary"]
    adapter = result.get("adapter")
    return {"backend": result["backend"], "adapter": project_relative(Path(adapter)) if adapter else None, **summary,
            "model_text": result["model_summary"]}


# The metrics issue 6 compares base and finetuned on (latency aside), in report order.
COMPARED = ("language_match", "citation_valid", "support", "repetition", "honest_no_source", "over_refusal",
            "rouge_l")


def comparison(base: dict, tuned: dict) -> dict[str, dict[str, dict[str, float]]]:
    """``{view: {metric: {"base", "finetuned"}}}`` for the replies and the model's own text."""
    out: dict[str, dict[str, dict[str, float]]] = {}
    for view, pick in (("reply", lambda m: m["means"]), ("model text", lambda m: m["model_text"]["means"])):
        rows = {}
        for key in COMPARED:
            b, t = pick(base).get(key), pick(tuned).get(key)
            if b is not None or t is not None:
                rows[key] = {"base": round(b, 3) if b is not None else None,
                             "finetuned": round(t, 3) if t is not None else None}
        out[view] = rows
    return out


def section_generation(ctx: Context, section: Section) -> None:
    from chatbot.evaluation.generation import run_generation_eval

    path = EVAL_DIR / "consult_dev.jsonl"
    limit = 8 if ctx.quick else 0
    section.data.append(DataRef(str(path), min(count_lines(path), limit or 10**9),
                                "project-written (MIT); answers come from MedQuAD (CC BY 4.0) and Toyhom (MIT)",
                                f"first {limit} (quick)" if limit else ""))
    result = run_generation_eval(ctx.app(), path, limit=limit)
    section.metrics = _generation_metrics(result)
    latencies = [a["latency_ms"] for a in result["answers"] if a.get("latency_ms") is not None]
    plot = ctx.plot_path("generation_latency.png")
    _plots().histogram([v / 1000 for v in latencies], plot, title="end-to-end latency per question",
                       xlabel="seconds")
    section.plots.append(str(plot.relative_to(ctx.report_dir)))
    section.commands.append(f"medchat eval generation {path}" + (f" --limit {limit}" if limit else ""))


def eval_sets(prefix: str) -> list[str]:
    """``<prefix>_dev.jsonl`` first, then every ``<prefix>_holdout*.jsonl`` (new blind rounds
    join the report without a code change)."""
    holdouts = sorted(p.name for p in EVAL_DIR.glob(f"{prefix}_holdout*.jsonl"))
    return [f"{prefix}_dev.jsonl", *holdouts]


PROJECT_WRITTEN = "project-written (MIT)"


def section_safety(ctx: Context, section: Section) -> None:
    from chatbot.safety import RedFlagScreen
    from chatbot.safety.evaluation import run_safety_eval

    screen = ctx.app().safety
    if not isinstance(screen, RedFlagScreen):  # the pass-through has no rules to score
        raise SectionSkipped("the red-flag screen is off (safety.enabled = false)")
    for name in eval_sets("safety"):
        path = EVAL_DIR / name
        if not path.exists():
            continue
        result = run_safety_eval(screen, path)
        section.data.append(data_ref(path, PROJECT_WRITTEN, "written blind at a frozen rule set; see docs/SAFETY.md for the figures at freeze"
                                     if "holdout" in name else "rules tuned on it"))
        section.metrics[name] = {k: result[k] for k in ("n", "emergencies", "recall", "false_alarm_rate")} | {
            "misses": len(result["misses"]), "timing_ms": result["timing_ms"]}
        section.commands.append(f"medchat eval safety {path}")


def section_triage(ctx: Context, section: Section) -> None:
    from chatbot.triage.evaluation import evaluate, load_vignettes

    engine = ctx.app().triage
    labels = ["em", "ne", "sc"]
    for name in eval_sets("triage"):
        path = EVAL_DIR / name
        if not path.exists():
            continue
        result = evaluate(engine, load_vignettes(path))
        section.data.append(data_ref(path, PROJECT_WRITTEN + "; label sources per vignette",
                                     "written blind at a frozen rule set; see docs/TRIAGE.md for the figures at freeze"
                                     if "holdout" in name else "rules tuned on it"))
        section.metrics[name] = {k: result[k] for k in ("n", "accuracy", "emergency_recall",
                                                        "under_triage_rate", "over_triage_rate")} | {
            "per_class_recall": result["per_class_recall"]}
        section.commands.append(f"medchat eval triage {path}")
        matrix = [[result["confusion_3level"][e][g] for g in labels] for e in labels]
        plot = ctx.plot_path(f"triage_confusion_{path.stem}.png")
        _plots().confusion_matrix(matrix, labels, plot, title=f"three-level triage — {name}", xlabel="given")
        section.plots.append(str(plot.relative_to(ctx.report_dir)))


def section_classifier(ctx: Context, section: Section) -> None:
    """Scored on held-back splits of the public sets (not shipped: their licences are
    non-commercial or research-only), rebuilt from ../shared/data when it is there."""
    from chatbot.classifier.evaluation import evaluate_file
    from finetune.classifier.train import TrainConfig

    shared = TrainConfig().shared_data
    if not shared.is_dir():
        raise SectionSkipped(f"{shared} is absent: the classifier dev sets are built from it "
                             "(python -m finetune.classifier.devsets DIR)")
    from chatbot.classifier.runtime import TrainedClassifier

    classifier = ctx.app().service.classifier
    if not isinstance(classifier, TrainedClassifier):  # the pass-through has no labels to score
        raise SectionSkipped("the classifier is off (classifier.enabled = false)")
    from finetune.classifier.devsets import main as write_devsets

    dev_dir = ctx.report_dir / "classifier_dev"
    write_devsets(dev_dir)
    sets = (("intent", "kuake_heldback.jsonl", "KUAKE-QIC held-back 15% of train (CC BY-NC-SA 4.0)"),
            ("emotion", "goemotions_ekman_dev.jsonl", "GoEmotions Ekman dev (CC BY 4.0)"),
            ("emotion", "ewect_usual_eval.jsonl", "SMP2020-EWECT usual eval (research only; never trained on)"))
    limit = 200 if ctx.quick else 0
    for kind, name, licence in sets:
        path = dev_dir / name
        if limit:
            lines = path.read_text(encoding="utf-8").splitlines()[:limit]
            path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        result = evaluate_file(classifier, kind, path, report_dir=ctx.report_dir / "plots")
        section.data.append(data_ref(path, licence, f"first {limit} (quick)" if limit else ""))
        section.metrics[name] = {"kind": kind, "n": result["n"], "accuracy": round(result["accuracy"], 4),
                                 "macro_f1": round(result["macro_f1"], 4), "latency_ms": result["latency_ms"]}
        section.plots += [str(Path(p).relative_to(ctx.report_dir)) for p in result["report"]]
        section.commands.append(f"medchat eval {kind} {path} --report DIR")
    _held_out_intent(ctx, section)
    for path in dev_dir.iterdir():  # not shippable data: scored, then removed
        path.unlink()
    dev_dir.rmdir()


def _held_out_intent(ctx: Context, section: Section) -> None:
    """A head refitted on train + held back has seen the held-back rows, so scoring the shipped
    model on them measures memory, not generalisation. The held-out figure is the one training
    recorded before the refit (the model card's table); the report shows both, labelled."""
    metrics_file = Path(ctx.app().settings.classifier.model_dir) / "metrics.json"
    if not metrics_file.is_file():
        return
    head = json.loads(metrics_file.read_text(encoding="utf-8"))["heads"]["intent"]
    if not head.get("refit_on_held_back"):
        return
    kuake = head.get("held_back_by_source", {}).get("kuake-qic")
    if "kuake_heldback.jsonl" in section.metrics:
        section.metrics["kuake_heldback.jsonl"]["note"] = (
            "shipped head refitted on these rows: not a held-out score (see kuake_held_out_before_refit)")
    if kuake:
        section.metrics["kuake_held_out_before_refit"] = {
            "kind": "intent", "source": f"{project_relative(metrics_file)} (training, before the refit)", **kuake}


LORA_EVAL = Path("data/finetune/eval_small.jsonl")
ADAPTER_DIR = Path("data/models/lora-gemma3-270m")


def section_lora(ctx: Context, section: Section) -> None:
    """Base vs finetuned answerer through the whole engine, on questions none of whose documents
    was trained on; plus the training run's own loss curve."""
    import shutil

    from chatbot.evaluation.generation import run_generation_eval

    if not (ADAPTER_DIR / "metrics.json").is_file():
        raise SectionSkipped(f"no trained adapter in {ADAPTER_DIR} (medchat finetune lora --config FILE)")
    limit = 4 if ctx.quick else 0
    section.data.append(DataRef(str(LORA_EVAL), min(count_lines(LORA_EVAL), limit or 10**9),
                                "test split of MedQuAD (CC BY 4.0) / Toyhom (MIT) + project-written",
                                f"first {limit} (quick)" if limit else ""))
    for label, adapter in (("base", "none"), ("finetuned", "auto")):
        result = run_generation_eval(ctx.app(adapter=adapter), LORA_EVAL, limit=limit)
        section.metrics[label] = _generation_metrics(result)
        section.commands.append(f"medchat eval generation {LORA_EVAL} --adapter {adapter}"
                                + (f" --limit {limit}" if limit else ""))
    section.metrics = {"comparison": comparison(section.metrics["base"], section.metrics["finetuned"]),
                       **section.metrics}
    training = json.loads((ADAPTER_DIR / "metrics.json").read_text(encoding="utf-8"))
    section.metrics["training"] = {k: training.get(k) for k in ("steps", "trained_tokens", "tokens_per_s",
                                                                "train_loss_first", "train_loss_last10")}
    if (ADAPTER_DIR / "loss.png").is_file():
        plot = ctx.plot_path("lora_loss.png")
        plot.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(ADAPTER_DIR / "loss.png", plot)
        section.plots.append(str(plot.relative_to(ctx.report_dir)))


SECTIONS: dict[str, tuple[str, Callable[[Context, Section], None]]] = {
    "retrieval": ("Retrieval (BM25, dense, hybrid; per language; zh→en)", section_retrieval),
    "generation": ("Consultation quality (default engine)", section_generation),
    "safety": ("Red-flag screen (recall, false alarms)", section_safety),
    "triage": ("Nurse triage (three-level accuracy, under/over-triage)", section_triage),
    "classifier": ("Intent and emotion classifier", section_classifier),
    "lora": ("LoRA answerer: base vs finetuned", section_lora),
}


def _plots():
    import chatbot.evaluation.plots as plots

    return plots


# --- running and writing ---------------------------------------------------------------------

def run_all(ctx: Context, only: Iterable[str] | None = None) -> dict[str, Any]:
    keys = list(only) if only else list(SECTIONS)
    unknown = [k for k in keys if k not in SECTIONS]
    if unknown:
        raise MedChatError(f"unknown report section(s): {', '.join(unknown)}",
                           hint=f"choose from: {', '.join(SECTIONS)}")
    ctx.report_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    sections = []
    for key in keys:
        title, runner = SECTIONS[key]
        section = Section(key, title)
        ctx.echo(f"== {key}: {title}")
        t0 = time.perf_counter()
        try:
            runner(ctx, section)
        except SectionSkipped as exc:
            section.status, section.reason = "skipped", str(exc)
        except MedChatError as exc:  # reported in the section and in the exit code, not hidden
            section.status, section.reason = "failed", f"{exc}"
        section.seconds = round(time.perf_counter() - t0, 1)
        ctx.echo(f"   {section.status} in {section.seconds} s" + (f": {section.reason}" if section.reason else ""))
        sections.append(section)
    report = {
        "generated_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "mode": "quick" if ctx.quick else "full",
        "seconds": round(time.perf_counter() - started, 1),
        "machine": machine_info(),
        "sections": [asdict(s) for s in sections],
    }
    (ctx.report_dir / "report.json").write_text(json.dumps(report, ensure_ascii=False, indent=2), encoding="utf-8")
    (ctx.report_dir / "report.md").write_text(render_markdown(report), encoding="utf-8")
    return report


def machine_info() -> dict[str, Any]:
    from knowledge_base.evaluation.bench import machine_info as kb_machine_info

    return kb_machine_info()


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3f}".rstrip("0").rstrip(".") if value else "0"
    if isinstance(value, dict):
        return ", ".join(f"{k} {_cell(v)}" for k, v in value.items())
    return str(value)


def _metric_rows(metrics: dict[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    """Flatten nested metrics into (name, value) rows; dicts of scalars stay on one row."""
    rows = []
    for key, value in metrics.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and any(isinstance(v, dict) for v in value.values()):
            rows += _metric_rows(value, f"{name} / ")
        else:
            rows.append((name, _cell(value)))
    return rows


def render_markdown(report: dict[str, Any]) -> str:
    m = report["machine"]
    lines = [
        "# MedChat evaluation report", "",
        f"Generated {report['generated_at']} in {report['mode']} mode ({report['seconds']} s) on "
        f"{m['cpu_model']}, {m['cpu_count']} CPUs, {m['ram_gb']} GB RAM, Python {m['python']} "
        f"(load at start {m['loadavg_start']}).", "",
        "| section | status | seconds |", "|---|---|---|",
    ]
    for s in report["sections"]:
        lines.append(f"| [{s['title']}](#{s['key']}) | {s['status']} | {s['seconds']} |")
    for s in report["sections"]:
        lines += ["", f"<a id=\"{s['key']}\"></a>", f"## {s['title']}", ""]
        if s["status"] != "ok":
            lines += [f"**{s['status']}**: {s['reason']}", ""]
        if s["data"]:
            lines += ["| data | items | licence | note |", "|---|---|---|---|"]
            lines += [f"| `{d['path']}` | {d['size']} | {d['licence']} | {d['note']} |" for d in s["data"]]
            lines.append("")
        if s["commands"]:
            lines += ["Rerun:", "", "```", *s["commands"], "```", ""]
        if s["metrics"]:
            lines += ["| metric | value |", "|---|---|"]
            lines += [f"| {name} | {value} |" for name, value in _metric_rows(s["metrics"])]
            lines.append("")
        lines += [f"![{p}]({p})" for p in s["plots"]]
    return "\n".join(lines) + "\n"
