"""``medchat eval generation`` and ``medchat bench chat``: the full engine on question files.

Input (contract, docs/CLI.md): JSONL ``{"id", "question"}`` with optional ``"lang"``,
``"reference"``, ``"answerable"`` (false: the corpus cannot answer it, the honest reply is "no
reliable source") and ``"history"`` (earlier turns ``[{"role", "content"}]`` replayed into a fresh
session before the question).
"""

from __future__ import annotations

import json
import platform
import resource
import statistics
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import chatbot.evaluation.gen_metrics as gen_metrics
from chatbot.errors import MedChatError
from knowledge_base.evaluation.jsonl import read_jsonl
from knowledge_base.evaluation.metrics import percentile


class EvalInputError(MedChatError):
    """The evaluation file is malformed."""


_ITEM_HINT = 'each line: {"id", "question"} (+ "lang", "reference", "history")'


def load_items(path: Path) -> list[dict[str, Any]]:
    items = []
    for lineno, row in read_jsonl(path, EvalInputError, malformed="bad line", hint=_ITEM_HINT):
        try:
            if not isinstance(row.get("question"), str) or not row["question"].strip():
                raise ValueError("question must be a non-empty string")
            for turn in row.get("history") or []:
                if turn.get("role") not in ("user", "assistant") or not isinstance(turn.get("content"), str):
                    raise ValueError("history turns need role user|assistant and content")
        except (ValueError, AttributeError) as exc:
            raise EvalInputError(f"{path}:{lineno}: bad line ({exc})", hint=_ITEM_HINT) from exc
        row.setdefault("id", str(lineno))
        items.append(row)
    if not items:
        raise EvalInputError(f"{path} holds no question")
    return items


def _replay_history(app, item: dict[str, Any]) -> str:
    session = app.store.new_session()
    for turn in item.get("history") or []:
        app.store.add_message(session, turn["role"], turn["content"])
    return session


def run_generation_eval(app, path: Path, limit: int = 0) -> dict[str, Any]:
    """Every question through the full engine. ``summary`` scores the replies patients get;
    ``model_summary`` scores the model's own text on the questions that reached the model (not
    emergencies, short routes or the no-evidence gate), which is what base vs finetuned compares."""
    items = load_items(path)[: limit or None]
    rows, model_rows, baseline_rows, answers = [], [], [], []
    for item in items:
        session = _replay_history(app, item)
        t0 = time.perf_counter()
        result = app.service.ask(item["question"], session_id=session)
        latency = (time.perf_counter() - t0) * 1000
        passages_by_n = {p["n"]: p["text"] for p in result.passages}
        cited = [c["n"] for c in result.citations]
        row = gen_metrics.score_answer(
            question=item["question"], lang=item.get("lang") or result.lang,
            answer_text=result.answer, passages_by_n=passages_by_n, citations=cited,
            flags=result.flags, answerable=item.get("answerable"), reference=item.get("reference"),
            latency_ms=latency, expect_emergency=item.get("emergency"))
        row["lang"] = item.get("lang") or result.lang
        rows.append(row)
        baseline_rows.append(gen_metrics.score_baseline(
            lang=row["lang"], passage_text=top_passage(app.retriever, item["question"], row["lang"]),
            reference=item.get("reference"), answerable=item.get("answerable")))
        model_row = None
        if result.model_text is not None:
            model_row = gen_metrics.score_model_text(
                question=item["question"], lang=row["lang"], model_text=result.model_text,
                passages_by_n=passages_by_n, answerable=item.get("answerable"),
                reference=item.get("reference"), latency_ms=latency)
            model_rows.append(model_row)
        answers.append({"id": item["id"], "question": item["question"], "answer": result.answer,
                        "flags": result.flags, "citations": result.citations,
                        **{k: v for k, v in row.items() if k != "lang"},
                        "model_answer": result.model_text,
                        "model": {k: v for k, v in model_row.items() if k not in ("lang", "question")}
                        if model_row else None})
    return {"file": str(path), "backend": app.generator.name, "model": app.settings.llm.model,
            "adapter": getattr(app.generator, "adapter", "") or None,
            "summary": gen_metrics.summarise(rows), "model_summary": gen_metrics.summarise(model_rows),
            # The anchor of every figure above, on the same questions in the same run.
            "baseline": {"name": "top_passage", **gen_metrics.summarise(baseline_rows)},
            "answers": answers}


def top_passage(retriever, question: str, lang: str) -> str | None:
    """The "show the top retrieved passage" baseline: the best passage's body (its stored
    question line removed: a heading, not an answer), or None when nothing is retrieved."""
    passages = retriever.search(question, k=1, lang=lang)
    if not passages:
        return None
    p = passages[0]
    text = p.text
    if p.question and text.startswith(p.question):
        text = text[len(p.question):]
    return text.strip()


BENCH_QUESTIONS = (
    ("en", "What are the symptoms of glaucoma?"),
    ("en", "How is high blood pressure treated?"),
    ("en", "What causes kidney stones?"),
    ("en", "Is shingles contagious?"),
    ("zh", "高血压患者平时饮食要注意什么？"),
    ("zh", "糖尿病人能吃水果吗？"),
    ("zh", "痛风是什么原因引起的？"),
    ("zh", "慢性胃炎怎么治疗？"),
)


def run_chat_bench(app, out: Path, repeats: int = 1, echo: Callable[[str], None] = print) -> dict[str, Any]:
    app.service.warm_up()
    app.service.ask("warm up: what is asthma?")  # first call pays one-off costs (caches, graphs)
    rows = []
    for _ in range(repeats):
        for lang, question in BENCH_QUESTIONS:
            pieces: list[str] = []
            t0 = time.perf_counter()
            first = None
            result = None
            for event in app.service.reply(None, question):
                if event.kind == "token":
                    if first is None:
                        first = time.perf_counter()
                    pieces.append(event.data)
                elif event.kind == "final":
                    result = event.data
            end = time.perf_counter()
            raw = "".join(pieces)
            n_tokens = app.generator.count_tokens(raw) if raw else 0
            decode_s = end - first if first else 0.0
            rows.append({"lang": lang, "question": question, "ttft_ms": (first - t0) * 1000 if first else None,
                         "total_ms": (end - t0) * 1000, "tokens": n_tokens,
                         "decode_tok_s": n_tokens / decode_s if decode_s > 0 else None,
                         "retrieval_ms": result.timings["retrieval_ms"], "flags": result.flags})

    def stats(key: str) -> dict[str, float]:
        values = [r[key] for r in rows if r[key] is not None]
        if not values:
            return {}
        return {"p50": round(percentile(values, 0.5), 1), "p95": round(percentile(values, 0.95), 1),
                "mean": round(statistics.fmean(values), 1)}

    report = {
        "machine": {"python": platform.python_version(), "processor": platform.processor() or platform.machine(),
                    "at": datetime.now(timezone.utc).isoformat(timespec="seconds")},
        "backend": app.generator.name, "model": app.settings.llm.model, "questions": len(rows),
        "ttft_ms": stats("ttft_ms"), "total_ms": stats("total_ms"), "decode_tok_s": stats("decode_tok_s"),
        "tokens": stats("tokens"), "retrieval_ms": stats("retrieval_ms"),
        "fallback_rate": round(sum("fallback_extractive" in r["flags"] for r in rows) / len(rows), 3),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "targets": {"ttft_ms": 1500, "answer_150_tokens_ms": 5000},
        "rows": rows,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, ensure_ascii=False, indent=2), encoding="utf-8")
    echo(f"backend {report['backend']} ({report['model']}), {len(rows)} answers")
    for key in ("ttft_ms", "total_ms", "decode_tok_s", "tokens", "retrieval_ms"):
        echo(f"  {key:<14} " + "  ".join(f"{k}={v}" for k, v in report[key].items()))
    echo(f"  fallback rate  {report['fallback_rate']}   peak RSS {report['peak_rss_mb']} MB")
    return report
