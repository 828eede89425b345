"""The patient side: ``medchat ask``, ``chat``, ``serve`` (the browser app) and ``hash-password``
(for the nurse console's login)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from chatbot.cli.common import BackendOpt, IndexOpt, JsonOpt, ModelOpt, app_settings, cli_app, cli_errors, echo_json


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
    result = cli_app(backend, model, index).service.ask(question, session_id=session)
    if as_json:
        echo_json(result.to_json())
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


@cli_errors
def chat(
    index: Optional[Path] = IndexOpt,
    backend: Optional[str] = BackendOpt,
    model: Optional[str] = ModelOpt,
    session: Optional[str] = typer.Option(None, "--session", help="Resume this session id."),
) -> None:
    """Terminal chat with streaming answers. Commands: /new (new conversation), /sources (sources
    of the last answer), /quit."""
    application = cli_app(backend, model, index)
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

    application_settings = app_settings(backend, model, index)
    host = host or application_settings.ui.host
    port = port or application_settings.ui.port
    typer.echo(f"MedChat on http://{host}:{port} (Ctrl-C stops it)", err=True)
    serve_ui(application_settings, host, port)


@cli_errors
def hash_password_cmd(
    password: str = typer.Option(..., "--password", prompt=True, hide_input=True,
                                 confirmation_prompt=True, help="The nurse console password (prompted, hidden)."),
) -> None:
    """Print a salted PBKDF2 hash of a password for ui.nurse_password_hash in settings.yaml."""
    from chatbot.staff.auth import hash_password

    typer.echo(hash_password(password))
