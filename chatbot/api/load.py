"""``medchat bench api``: the load test of the HTTP API on N replicas (loopback only).

It starts ``replicas`` ``medchat api`` processes on free loopback ports, sharing one store (the
configured Postgres ``store.url``, else a scratch SQLite file both processes open) and the
configured index, then runs ``sessions`` simultaneous conversations of two turns through
``POST /v1/chat/completions`` with ``stream: true`` — the first turn on replica ``i % N``, the
follow-up on the next one, so every conversation crosses replicas. Each session has its own
patient key. Measured per turn: time to the first content delta (first token as a client sees
it) and to ``[DONE]``; counted: errors (HTTP status, a broken stream, a missing session id), and
cross-talk:

- the follow-up must come back with the session id the first turn opened;
- the store must hold one conversation per session whose user messages are exactly that
  session's two questions, in order.

Nothing but 127.0.0.1 is contacted. Figures go to stdout and JSON (default ``data/bench/api.json``).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from chatbot.settings import PROJECT_ROOT, Settings
from knowledge_base.evaluation.stats import percentile

# Ten topics, each asked in both languages; session i asks pair i % 10, Chinese first for even i,
# so the 20 default sessions open with 20 different questions.
QUESTIONS: list[tuple[str, str]] = [
    ("高血压怎么治疗？", "What are the treatments for high blood pressure?"),
    ("青光眼有什么症状？", "What are the symptoms of glaucoma?"),
    ("哮喘怎么治疗？", "How is asthma treated?"),
    ("痛风是什么原因引起的？", "What causes gout?"),
    ("糖尿病人能吃水果吗？", "Can people with diabetes eat fruit?"),
    ("慢性胃炎怎么治疗？", "How is chronic gastritis treated?"),
    ("偏头痛有什么症状？", "What are the symptoms of migraine?"),
    ("骨质疏松怎么预防？", "How can osteoporosis be prevented?"),
    ("贫血是什么原因？", "What causes anemia?"),
    ("甲状腺功能亢进有什么症状？", "What are the symptoms of hyperthyroidism?"),
]
# A CPU answer takes seconds and 20 sessions share two model processes: a turn may wait minutes.
TURN_TIMEOUT_S = 900.0


def session_questions(i: int) -> list[str]:
    zh, en = QUESTIONS[i % len(QUESTIONS)]
    return [zh, en] if i % 2 == 0 else [en, zh]


@dataclass
class Turn:
    question: str
    replica: int
    ttft_s: float | None = None
    total_s: float | None = None
    answer: str = ""
    session_id: str = ""
    error: str = ""


@dataclass
class Session:
    index: int
    key: str
    turns: list[Turn] = field(default_factory=list)


def ask(url: str, key: str, question: str, session_id: str | None, replica: int) -> Turn:
    """One streamed turn; every failure becomes the turn's ``error`` (the test counts them)."""
    import httpx

    turn = Turn(question, replica)
    headers = {"Authorization": f"Bearer {key}"}
    if session_id:
        headers["X-MedChat-Session"] = session_id
    body = {"model": "medchat", "stream": True, "messages": [{"role": "user", "content": question}]}
    t0 = time.perf_counter()
    try:
        with httpx.stream("POST", f"{url}/v1/chat/completions", json=body, headers=headers,
                          timeout=TURN_TIMEOUT_S) as response:
            if response.status_code != 200:
                turn.error = f"HTTP {response.status_code}: {response.read()[:200]!r}"
                return turn
            turn.session_id = response.headers.get("X-MedChat-Session", "")
            done = False
            for line in response.iter_lines():
                if not line.startswith("data: "):
                    continue  # SSE comments are keep-alives
                data = line[len("data: "):]
                if data == "[DONE]":
                    done = True
                    break
                chunk = json.loads(data)
                delta = chunk["choices"][0].get("delta", {}).get("content")
                if delta:
                    if turn.ttft_s is None:
                        turn.ttft_s = round(time.perf_counter() - t0, 3)
                    turn.answer += delta
                extras = chunk.get("medchat")
                if extras and extras.get("session_id"):
                    turn.session_id = extras["session_id"]
            if not done:
                turn.error = "stream ended without [DONE]"
    except (httpx.HTTPError, json.JSONDecodeError, KeyError, IndexError) as exc:
        turn.error = f"{type(exc).__name__}: {exc}"
    turn.total_s = round(time.perf_counter() - t0, 3)
    if not turn.error and not turn.session_id:
        turn.error = "no session id in the response"
    return turn


def run_session(urls: list[str], session: Session, start: threading.Event) -> None:
    start.wait()
    session_id = None
    for n, question in enumerate(session_questions(session.index)):
        replica = (session.index + n) % len(urls)
        turn = ask(urls[replica], session.key, question, session_id, replica)
        session.turns.append(turn)
        if turn.error:
            return
        session_id = session_id or turn.session_id


def cross_talk(sessions: list[Session], store: Any) -> list[str]:
    """Every way a conversation got mixed with another one."""
    problems = []
    for s in sessions:
        ids = {t.session_id for t in s.turns if not t.error}
        if len(ids) > 1:
            problems.append(f"session {s.index}: the follow-up came back in another session {sorted(ids)}")
        if not ids or any(t.error for t in s.turns):
            continue
        users = [m.text for m in store.history(ids.pop(), limit=50) if m.role == "user"]
        if users != [t.question for t in s.turns]:
            problems.append(f"session {s.index}: stored user messages {users!r} are not its questions")
    return problems


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_replica(env: dict[str, str], port: int, log_path: Path) -> subprocess.Popen:
    log = open(log_path, "w")
    return subprocess.Popen([sys.executable, "-m", "chatbot.cli", "api", "--host", "127.0.0.1", "--port", str(port)],
                            env=env, stdout=log, stderr=subprocess.STDOUT, cwd=str(PROJECT_ROOT))


def wait_ready(url: str, proc: subprocess.Popen, timeout_s: float = 600) -> None:
    import httpx

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"medchat api exited with code {proc.returncode}")
        try:
            if httpx.get(f"{url}/readyz", timeout=30).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"medchat api did not get ready on {url} within {timeout_s} s")


def _block(turns: list[Turn]) -> dict[str, Any]:
    def pct(values: list[float], q: float) -> float | None:
        return round(percentile(values, q), 3) if values else None

    ttft = [t.ttft_s for t in turns if t.ttft_s is not None]
    total = [t.total_s for t in turns if t.total_s is not None]
    return {"n": len(turns),
            "first_token_s": {"p50": pct(ttft, 0.5), "p95": pct(ttft, 0.95), "max": max(ttft, default=None),
                              "mean": round(statistics.fmean(ttft), 3) if ttft else None},
            "answer_s": {"p50": pct(total, 0.5), "p95": pct(total, 0.95), "max": max(total, default=None)}}


def run_api_load(settings: Settings, *, sessions: int = 20, replicas: int = 2, out: Path | None = None,
                 echo: Callable[[str], None] = print) -> dict[str, Any]:
    from chatbot.api.keys import KeyStore
    from chatbot.store import ChatStore

    scratch = Path(tempfile.mkdtemp(prefix="medchat-bench-api-"))
    postgres = settings.store.postgres
    # Scratch files unless the operator's Postgres is configured: the load must not fill a real
    # SQLite store, and two processes share an SQLite file fine on one machine.
    store_url = settings.store.url.get_secret_value() if postgres else ""
    database = scratch / "bench.sqlite"
    keys_target: Path | str = store_url or scratch / "keys.sqlite"
    env = dict(os.environ, MEDCHAT_LLM__BACKEND=settings.llm.backend, MEDCHAT_LLM__MODEL=settings.llm.model,
               MEDCHAT_PATHS__INDEX_DIR=str(settings.paths.index_dir), MEDCHAT_PATHS__DATABASE=str(database),
               MEDCHAT_API__KEYS_DB=str(scratch / "keys.sqlite"), MEDCHAT_STORE__URL=store_url,
               # every session has its own key; the per-key limit is not what is measured
               MEDCHAT_API__RATE_LIMIT_PER_MINUTE="0")
    keys = KeyStore(keys_target)
    runs = [Session(i, keys.create("patient", f"bench session {i}")[1]) for i in range(sessions)]
    keys.close()
    procs, urls = [], []
    echo(f"starting {replicas} `medchat api` replicas ({settings.llm.backend}:{settings.llm.model}, store "
         f"{'postgres' if postgres else 'scratch sqlite'}); logs in {scratch}")
    try:
        t_start = time.perf_counter()
        for n in range(replicas):
            port = _free_port()
            procs.append(start_replica(env, port, scratch / f"replica{n}.log"))
            urls.append(f"http://127.0.0.1:{port}")
        for url, proc in zip(urls, procs):
            wait_ready(url, proc)
        echo(f"replicas ready in {time.perf_counter() - t_start:.1f} s (models loaded)")
        start = threading.Event()
        threads = [threading.Thread(target=run_session, args=(urls, r, start)) for r in runs]
        for th in threads:
            th.start()
        t0 = time.perf_counter()
        start.set()
        for th in threads:
            th.join()
        wall = time.perf_counter() - t0
        with ChatStore(store_url or database) as store:
            problems = cross_talk(runs, store)
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
    turns = [t for r in runs for t in r.turns]
    ok = [t for t in turns if not t.error]
    result = {
        "sessions": sessions, "replicas": replicas, "turns": len(turns), "wall_s": round(wall, 2),
        "backend": f"{settings.llm.backend}:{settings.llm.model}", "store": "postgresql" if postgres else "sqlite",
        "errors": sessions * 2 - len(ok), "error_messages": [t.error for t in turns if t.error][:10],
        "cross_talk": len(problems), "cross_talk_details": problems[:20],
        "first_turn": _block([r.turns[0] for r in runs if r.turns and not r.turns[0].error]),
        "follow_up_other_replica": _block([r.turns[1] for r in runs if len(r.turns) > 1 and not r.turns[1].error]),
        "all_turns": _block(ok),
        "per_replica_turns": {str(n): sum(t.replica == n for t in ok) for n in range(replicas)},
        "cpu_count": os.cpu_count(), "load_average_1m": round(os.getloadavg()[0], 2),
        "per_turn": [{"session": r.index, "replica": t.replica, "question": t.question, "ttft_s": t.ttft_s,
                      "total_s": t.total_s, "answer": t.answer[:200], "error": t.error}
                     for r in runs for t in r.turns],
    }
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, ensure_ascii=False, indent=2), encoding="utf-8")
    echo(f"{sessions} sessions x 2 turns on {replicas} replicas in {wall:.1f} s: errors {result['errors']}, "
         f"cross-talk {result['cross_talk']}")
    for name in ("first_turn", "follow_up_other_replica", "all_turns"):
        block = result[name]
        echo(f"  {name}: first token p50 {block['first_token_s']['p50']} s p95 {block['first_token_s']['p95']} s; "
             f"answer p50 {block['answer_s']['p50']} s p95 {block['answer_s']['p95']} s")
    return result
