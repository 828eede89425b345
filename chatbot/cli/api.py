"""``medchat api`` (the HTTP API, docs/API.md) and ``medchat api key create|list|revoke`` (its keys)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

import typer

from chatbot.cli.common import (
    BackendOpt,
    IndexOpt,
    JsonOpt,
    ModelOpt,
    app_settings,
    cli_errors,
    cli_settings,
    echo_json,
)

# The group's help is the callback's docstring (`medchat api --help` shows it in full).
api_app = typer.Typer(invoke_without_command=True)
key_app = typer.Typer(help="API keys: create (printed once), list, revoke.", no_args_is_help=True)
api_app.add_typer(key_app, name="key")


@api_app.callback()
@cli_errors
def api(
    ctx: typer.Context,
    host: Optional[str] = typer.Option(None, "--host", help="Listen address (default: api.host, 127.0.0.1)."),
    port: Optional[int] = typer.Option(None, "--port", min=1, max=65535, help="Port (default: api.port, 8000)."),
    workers: Optional[int] = typer.Option(None, "--workers", min=1, max=32,
                                          help="Server processes, each with its own models (default: api.workers, 1)."),
    backend: Optional[str] = BackendOpt,
    model: Optional[str] = ModelOpt,
    index: Optional[Path] = IndexOpt,
) -> None:
    """The HTTP API (OpenAI-compatible chat, triage, kb search) and its keys.

    Without a subcommand: serve POST /v1/chat/completions, GET /v1/models, POST /v1/triage,
    GET /v1/kb/search, /healthz, /readyz and /openapi.json (docs/API.md). Loads the models
    first, then serves until Ctrl-C. Keys: `medchat api key create --role patient|nurse|admin`."""
    if ctx.invoked_subcommand is not None:
        return
    from chatbot.api.server import serve

    settings = app_settings(backend, model, index)
    host = host or settings.api.host
    port = port or settings.api.port
    workers = workers or settings.api.workers
    if workers > 1:
        # Worker processes read their settings themselves: the options travel as variables.
        for name, value in (("LLM__BACKEND", backend), ("LLM__MODEL", model),
                            ("PATHS__INDEX_DIR", str(index.resolve()) if index else None)):
            if value:
                os.environ[f"MEDCHAT_{name}"] = value
    typer.echo(f"MedChat API on http://{host}:{port} ({workers} worker{'s' if workers > 1 else ''}; "
               "Ctrl-C stops it)", err=True)
    serve(settings, host, port, workers)


def _store():
    from chatbot.api.keys import KeyStore
    from chatbot.app import keys_target

    return KeyStore(keys_target(cli_settings()))


@key_app.command("create")
@cli_errors
def key_create(
    role: str = typer.Option(..., "--role", help="patient (chat, kb search) | nurse (+ triage) | admin (everything)."),
    name: str = typer.Option("", "--name", help='Who holds it, e.g. "ward 3" (shown by `key list`).'),
    as_json: bool = JsonOpt,
) -> None:
    """Create a key and print it once: only its SHA-256 is stored, so it cannot be shown again.

    JSON: {id, name, role, created_at, revoked_at, active, key}."""
    record, raw = _store().create(role, name)
    if as_json:
        echo_json({**record.to_json(), "key": raw})
        return
    typer.echo(raw)
    typer.echo(f"(key {record.id}, role {record.role}{', ' + record.name if record.name else ''}: "
               "store it now, it is not shown again)", err=True)


@key_app.command("list")
@cli_errors
def key_list(as_json: bool = JsonOpt) -> None:
    """Every key (never the key itself): id, role, name, created, revoked.

    JSON: a list of {id, name, role, created_at, revoked_at, active}."""
    keys = _store().list()
    if as_json:
        echo_json([k.to_json() for k in keys])
        return
    if not keys:
        typer.echo("no API keys / 尚无 API 密钥 (medchat api key create --role ...)")
    for k in keys:
        status = "active" if k.active else f"revoked {k.revoked_at}"
        typer.echo(f"{k.id}  {k.role:<7}  {k.created_at}  {status:<9}  {k.name}")


@key_app.command("revoke")
@cli_errors
def key_revoke(key_id: str = typer.Argument(..., help="The key's id (medchat api key list).")) -> None:
    """Revoke a key: from the next request on, it gets 401."""
    key = _store().revoke(key_id)
    typer.echo(f"revoked {key.id} ({key.role}{', ' + key.name if key.name else ''}) at {key.revoked_at}")
