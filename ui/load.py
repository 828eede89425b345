"""Load test of the patient chat: N simultaneous sessions through the browser protocol
(gradio_client, one client = one browser session), each asking a question in one language and a
follow-up in the other. Measures time to first token (first streamed piece of the answer; for an
answer that arrives whole, the answer itself) and to the complete answer, counts errors, and
checks for cross-talk:

- every session's chat history must hold exactly its own messages;
- with a self-started server, the SQLite store must hold one conversation per client whose user
  messages are exactly that client's questions, in order.

It also counts answers that mention neither language's word for their question's topic
(``off_topic``, informational: an honest "no reliable source" answer is off topic by this test).

``medchat bench ui`` runs it (``--url`` for a running server, else it starts ``medchat serve``
on a free port with a scratch database) and writes JSON (default ``data/bench/ui.json``).
"""

from __future__ import annotations

import functools
import json
import os
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from chatbot.settings import PROJECT_ROOT
from knowledge_base.evaluation.stats import percentile

# (question, topic word that an on-topic answer or its sources contain). Ten topics, each asked
# in both languages; session i asks pair i % 10 starting in zh for even i, en for odd i, so all
# 20 default sessions ask different first questions.
QUESTIONS: list[tuple[tuple[str, str], tuple[str, str]]] = [
    (("高血压怎么治疗？", "血压"), ("What are the treatments for high blood pressure?", "blood pressure")),
    (("青光眼有什么症状？", "青光眼"), ("What are the symptoms of glaucoma?", "glaucoma")),
    (("哮喘怎么治疗？", "哮喘"), ("How is asthma treated?", "asthma")),
    (("痛风是什么原因引起的？", "痛风"), ("What causes gout?", "gout")),
    (("糖尿病人能吃水果吗？", "糖尿病"), ("Can people with diabetes eat fruit?", "diabetes")),
    (("慢性胃炎怎么治疗？", "胃炎"), ("How is chronic gastritis treated?", "gastritis")),
    (("偏头痛有什么症状？", "头痛"), ("What are the symptoms of migraine?", "migraine")),
    (("骨质疏松怎么预防？", "骨质疏松"), ("How can osteoporosis be prevented?", "osteoporosis")),
    (("贫血是什么原因？", "贫血"), ("What causes anemia?", "anemia")),
    (("甲状腺功能亢进有什么症状？", "甲状腺"), ("What are the symptoms of hyperthyroidism?", "thyroid")),
]
PLACEHOLDER = "…"  # what the chat shows before the first token (ui.patient.respond)
POLL_S = 0.02      # output polling: 20 ms is far below the seconds being measured


@dataclass
class Turn:
    question: str
    topic: tuple[str, str]
    lang: str
    ttft_s: float | None = None
    total_s: float | None = None
    answer: str = ""
    on_topic: bool = False
    streamed: bool = False  # tokens reached the page before the final answer
    error: str = ""


@dataclass
class SessionRun:
    index: int
    turns: list[Turn] = field(default_factory=list)
    history_ok: bool = False


def session_questions(i: int) -> list[tuple[str, tuple[str, str], str]]:
    """(question, the topic's words in both languages, language) for session i's two turns: a
    Chinese question may be answered from English sources, so either word counts as on topic."""
    zh, en = QUESTIONS[i % len(QUESTIONS)]
    topic = (zh[1], en[1])
    turns = [(zh[0], topic, "zh"), (en[0], topic, "en")]
    return turns if i % 2 == 0 else turns[::-1]


def _percentile(values: list[float], q: float) -> float | None:
    return round(percentile(values, q), 3) if values else None


def _unescape(md: str) -> str:
    """The chat shows Markdown-escaped text (ui.render.md_text); compare plain text."""
    import html
    import re

    return html.unescape(re.sub(r"\\(.)", r"\1", md))


@functools.lru_cache(maxsize=1)
def _waiting_heads() -> tuple[str, ...]:
    from chatbot.prompts import PromptLibrary

    prompts = PromptLibrary()  # read once: _waiting runs every 20 ms for every session
    return tuple(prompts.text(lang, "ui.chat.queued", ahead="\x00").split("\x00")[0] for lang in ("zh", "en"))


def _waiting(content: str) -> bool:
    """The bubble says the turn waits for the model ("ui.chat.queued"): not the first token yet."""
    return _unescape(content).startswith(_waiting_heads())


def _ask(client: Any, text: str, history: list, start: threading.Event) -> tuple[Turn, list, str]:
    start.wait()
    t0 = time.perf_counter()
    job = client.submit(text, history, "zh", api_name="/chat")
    ttft, first = None, None
    while not job.done():
        outputs = job.outputs()
        if ttft is None and outputs:
            content = (outputs[-1][0] or [{}])[-1].get("content")
            if content and content != PLACEHOLDER and not _waiting(content):
                ttft, first = time.perf_counter() - t0, content
        time.sleep(POLL_S)
    result = job.result()
    total = time.perf_counter() - t0
    chat, sources = result[0], result[1] if isinstance(result[1], str) else ""
    final = chat[-1]["content"] if chat else ""
    # Streamed = something other than the final answer reached the page first (an answer that
    # arrives whole, e.g. after a generation timeout, counts at its arrival).
    turn = Turn(question=text, topic=("", ""), lang="", ttft_s=round(ttft if ttft is not None else total, 3),
                total_s=round(total, 3), answer=_unescape(final),
                streamed=first is not None and first != final)
    return turn, chat, sources


def _run_session(url: str, run: SessionRun, start: threading.Event) -> None:
    from gradio_client import Client

    client = Client(url, verbose=False, analytics_enabled=False)
    history: list = []
    for text, topic, lang in session_questions(run.index):
        try:
            turn, history, sources = _ask(client, text, history, start)
        except Exception as exc:  # noqa: BLE001 - the load test counts every failure, it does not hide it
            run.turns.append(Turn(text, topic, lang, error=f"{type(exc).__name__}: {exc}"))
            return
        turn.topic, turn.lang = topic, lang
        seen = (turn.answer + " " + sources).lower()
        turn.on_topic = any(word.lower() in seen for word in topic)
        run.turns.append(turn)
    asked = [t.question for t in run.turns]
    users = [_unescape(m["content"]) for m in history if m["role"] == "user"]
    run.history_ok = users == asked and len(history) == 2 * len(asked)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_up(url: str, proc: subprocess.Popen, timeout_s: float = 300) -> None:
    import httpx

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"medchat serve exited with code {proc.returncode}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"medchat serve did not answer on {url} within {timeout_s} s")


def start_server(settings: Any, port: int, database: Path, log_path: Path) -> subprocess.Popen:
    """``medchat serve`` in a subprocess with the given settings' backend/model/index and a
    scratch database (the load must not fill the real one)."""
    env = dict(os.environ, MEDCHAT_PATHS__DATABASE=str(database),
               MEDCHAT_LLM__BACKEND=settings.llm.backend, MEDCHAT_LLM__MODEL=settings.llm.model,
               MEDCHAT_PATHS__INDEX_DIR=str(settings.paths.index_dir),
               MEDCHAT_UI__CONCURRENCY_LIMIT=str(settings.ui.concurrency_limit))
    log = open(log_path, "w")
    return subprocess.Popen([sys.executable, "-m", "chatbot.cli", "serve", "--host", "127.0.0.1",
                             "--port", str(port)], env=env, stdout=log, stderr=subprocess.STDOUT,
                            cwd=str(PROJECT_ROOT))


def check_store(database: Path, runs: list[SessionRun]) -> tuple[list[str], dict[str, int]]:
    """(problems, answer kinds) from the server's store: each client's questions must be one
    conversation; the answers' flags tell how many were generated, cut by the time budget
    (``generation_timeout``: the wait for the serialised model counts against it) or replaced
    by the extractive fallback."""
    conn = sqlite3.connect(database)
    try:
        rows = conn.execute("SELECT session_id, text FROM messages WHERE role='user' ORDER BY id").fetchall()
        metas = [json.loads(m) for (m,) in conn.execute("SELECT meta FROM messages WHERE role='assistant'")]
    finally:
        conn.close()
    kinds = {"answers": len(metas),
             "generation_timeout": sum("generation_timeout" in m.get("flags", []) for m in metas),
             "fallback_extractive": sum("fallback_extractive" in m.get("flags", []) for m in metas),
             "no_evidence": sum("no_evidence" in m.get("flags", []) for m in metas)}
    by_session: dict[str, list[str]] = {}
    for session_id, text in rows:
        by_session.setdefault(session_id, []).append(text)
    expected = sorted([t.question for t in r.turns] for r in runs)
    found = sorted(by_session.values())
    problems = []
    if len(by_session) != len(runs):
        problems.append(f"{len(by_session)} stored conversations for {len(runs)} clients")
    if found != expected:
        problems.append("stored conversations do not match the clients' questions")
    return problems, kinds


def run_load(sessions: int = 20, url: str | None = None, out: Path | None = None,
             settings: Any = None, echo: Callable[[str], None] = print) -> dict[str, Any]:
    proc, database, scratch = None, None, None
    if url is None:
        scratch = Path(tempfile.mkdtemp(prefix="medchat-load-"))
        database = scratch / "load.sqlite"
        port = _free_port()
        url = f"http://127.0.0.1:{port}/"
        echo(f"starting medchat serve on {url} ({settings.llm.backend}:{settings.llm.model}); log {scratch / 'serve.log'}")
        proc = start_server(settings, port, database, scratch / "serve.log")
    try:
        if proc is not None:
            t_start = time.perf_counter()
            _wait_up(url, proc)
            echo(f"server up in {time.perf_counter() - t_start:.1f} s (models loaded)")
        runs = [SessionRun(i) for i in range(sessions)]
        start = threading.Event()
        threads = [threading.Thread(target=_run_session, args=(url, r, start)) for r in runs]
        for th in threads:
            th.start()
        time.sleep(2.0)  # every client connected before the simultaneous start
        t0 = time.perf_counter()
        start.set()
        for th in threads:
            th.join()
        wall = time.perf_counter() - t0
        store_problems, kinds = check_store(database, runs) if database is not None else ([], {})
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(timeout=30)
    result = summarise(runs, wall, url, store_problems, settings)
    result["answer_kinds"] = kinds
    result["load_average_1m"] = round(os.getloadavg()[0], 2)  # other work on the machine skews the figures
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, ensure_ascii=False, indent=2), encoding="utf-8")
    echo(f"{sessions} sessions x 2 turns in {wall:.1f} s: errors {result['errors']}, cross-talk "
         f"{result['cross_talk']}, off-topic {result['off_topic']}; answers {kinds or 'n/a'}")
    for name in ("first_turn", "all_turns"):
        block = result[name]
        echo(f"  {name}: ttft p50 {block['ttft_s']['p50']} s p95 {block['ttft_s']['p95']} s; "
             f"total p50 {block['total_s']['p50']} s p95 {block['total_s']['p95']} s")
    return result


def summarise(runs: list[SessionRun], wall: float, url: str, store_problems: list[str],
              settings: Any) -> dict[str, Any]:
    turns = [t for r in runs for t in r.turns]
    ok = [t for t in turns if not t.error]
    first = [r.turns[0] for r in runs if r.turns and not r.turns[0].error]

    def block(items: list[Turn]) -> dict[str, Any]:
        ttft = [t.ttft_s for t in items if t.ttft_s is not None]
        total = [t.total_s for t in items if t.total_s is not None]
        return {"n": len(items),
                "ttft_s": {"p50": _percentile(ttft, 0.5), "p95": _percentile(ttft, 0.95),
                           "max": max(ttft) if ttft else None, "mean": round(statistics.fmean(ttft), 3) if ttft else None},
                "total_s": {"p50": _percentile(total, 0.5), "p95": _percentile(total, 0.95),
                            "max": max(total) if total else None}}

    history_bad = sum(1 for r in runs if r.turns and not r.history_ok)
    return {
        "url": url, "sessions": len(runs), "turns": len(turns), "wall_s": round(wall, 2),
        "backend": f"{settings.llm.backend}:{settings.llm.model}" if settings is not None else "external",
        "concurrency_limit": settings.ui.concurrency_limit if settings is not None else None,
        "errors": len(turns) - len(ok),
        "error_messages": [t.error for t in turns if t.error][:10],
        "off_topic": sum(1 for t in ok if not t.on_topic),
        "streamed": sum(1 for t in ok if t.streamed),
        "cross_talk": history_bad + len(store_problems),
        "cross_talk_details": store_problems + [f"session {r.index}: history mismatch" for r in runs
                                                if r.turns and not r.history_ok],
        "first_turn": block(first), "all_turns": block(ok),
        "per_turn": [{"session": r.index, "question": t.question, "lang": t.lang, "ttft_s": t.ttft_s,
                      "total_s": t.total_s, "on_topic": t.on_topic, "streamed": t.streamed,
                      "answer": t.answer[:200],
                      "error": t.error}
                     for r in runs for t in r.turns],
        "cpu_count": os.cpu_count(),
    }
