"""``medchat bench all``: the benchmark scripts of every part, collected into one JSON with the
machine's details, so runs on different machines compare side by side.

Parts that are cheap enough run now (knowledge-base build and query latency, chat first token
and decode speed, classifier and safety-screen latency). Parts that take hours or need a
running server are *read* from the file their own command wrote (training throughput from the
shipped adapter's metrics, UI load from ``medchat bench ui``), and the JSON says which file and
when it was written; a part with no such file is ``not_run`` with the command that produces it.
"""

from __future__ import annotations

import json
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from chatbot.errors import MedChatError
from chatbot.protocols import NoClassifier

Echo = Callable[[str], None]


@dataclass
class BenchContext:
    settings: Any
    quick: bool
    app_factory: Callable[[], Any]
    work_dir: Path
    echo: Echo = print
    _app: Any = field(default=None, repr=False)

    def app(self):
        if self._app is None:
            self._app = self.app_factory()
        return self._app


def part_kb(ctx: BenchContext) -> dict[str, Any]:
    from knowledge_base.evaluation.bench import run_kb_bench

    # Full: a fresh build of the shipped corpus and the 1M-chunk synthetic index (~15 min here);
    # quick: a 300-file slice and 20k synthetic chunks.
    return run_kb_bench(settings=ctx.settings, out=ctx.work_dir / "kb.json", quick=ctx.quick,
                        synthetic=20_000 if ctx.quick else 1_000_000,
                        n_queries=50 if ctx.quick else 200, echo=ctx.echo)


def part_chat(ctx: BenchContext) -> dict[str, Any]:
    from chatbot.evaluation.generation import run_chat_bench

    report = run_chat_bench(ctx.app(), ctx.work_dir / "chat.json", repeats=1, echo=ctx.echo)
    report.pop("rows", None)  # per-question rows stay in `medchat bench chat`'s own JSON
    return report


def read_measured(path: Path, command: str) -> dict[str, Any]:
    """Figures another command measured: its file, when it was written, and the figures."""
    if not path.is_file():
        return {"status": "not_run", "command": command,
                "reason": f"{path} does not exist yet"}
    try:
        figures = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise MedChatError(f"cannot read {path}: {exc}", hint=f"rerun: {command}") from exc
    written = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(path.stat().st_mtime))
    return {"status": "read", "file": str(path), "written_at": written, "command": command,
            "figures": figures}


def part_safety(ctx: BenchContext) -> dict[str, Any]:
    from chatbot.safety import RedFlagScreen
    from chatbot.safety.evaluation import read_cases, run_safety_bench

    screen = ctx.app().safety
    if not isinstance(screen, RedFlagScreen):  # the pass-through has no rules to time
        return {"status": "not_run", "reason": "safety.enabled is false"}
    texts = [c["text"] for c in read_cases(Path("data/eval/safety_dev.jsonl"))]
    return run_safety_bench(screen, texts, repeats=3 if ctx.quick else 20)


def part_classifier(ctx: BenchContext) -> dict[str, Any]:
    """Per-message latency of intent + emotion (the engine calls it once per message)."""
    from chatbot.evaluation.generation import BENCH_QUESTIONS
    from knowledge_base.evaluation.bench import latency_stats

    classifier = ctx.app().service.classifier
    if isinstance(classifier, NoClassifier):
        return {"status": "not_run", "reason": "classifier.enabled is false"}
    classifier.warm_up()  # loading is not per-message latency
    times = []
    for _ in range(2 if ctx.quick else 10):
        for lang, text in BENCH_QUESTIONS:
            t0 = time.perf_counter()
            classifier.classify(text, lang)
            times.append((time.perf_counter() - t0) * 1000)
    return {"per_message_ms": latency_stats(times), "target_ms": 30}


def part_training(ctx: BenchContext) -> dict[str, Any]:
    adapter = str(ctx.settings.llm.adapter or "")
    if not adapter or adapter in ("none", "auto"):
        candidates = sorted(Path("data/models").glob("lora-*/metrics.json"))
    else:
        candidates = [Path(adapter).parent / "metrics.json"] if Path(adapter).is_file() else [Path(adapter) / "metrics.json"]
    if not candidates:
        return {"status": "not_run", "command": "medchat finetune lora --config FILE",
                "reason": "no trained adapter with metrics.json under data/models/"}
    return read_measured(candidates[0], "medchat finetune lora --config FILE")


def part_ui(ctx: BenchContext) -> dict[str, Any]:
    return read_measured(Path("data/bench/ui.json"), "medchat bench ui")


PARTS: dict[str, Callable[[BenchContext], dict[str, Any]]] = {
    "kb": part_kb,
    "chat": part_chat,
    "safety": part_safety,
    "classifier": part_classifier,
    "training": part_training,
    "ui": part_ui,
}


def run_bench_all(settings: Any, out: Path, *, quick: bool, app_factory: Callable[[], Any],
                  only: list[str] | None = None, echo: Echo = print) -> dict[str, Any]:
    from knowledge_base.evaluation.bench import machine_info

    keys = only or list(PARTS)
    unknown = [k for k in keys if k not in PARTS]
    if unknown:
        raise MedChatError(f"unknown benchmark part(s): {', '.join(unknown)}",
                           hint=f"choose from: {', '.join(PARTS)}")
    result: dict[str, Any] = {"machine": machine_info(), "mode": "quick" if quick else "full", "parts": {}}
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="medchat-bench-") as tmp:
        ctx = BenchContext(settings=settings, quick=quick, app_factory=app_factory,
                           work_dir=Path(tmp), echo=echo)
        for key in keys:
            echo(f"== {key}")
            t0 = time.perf_counter()
            figures = PARTS[key](ctx)
            figures.setdefault("status", "measured")
            figures["seconds"] = round(time.perf_counter() - t0, 1)
            result["parts"][key] = figures
    result["seconds"] = round(time.perf_counter() - started, 1)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, ensure_ascii=False, indent=2), encoding="utf-8")
    return result
