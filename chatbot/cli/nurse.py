"""``medchat nurse queue|show|claim|acuity|reply|close``: the handoff queue of patients who asked for a
nurse (issue 17), for operators and for nurses without the browser console. The store is the
configured one (SQLite at paths.database or Postgres at store.url): every replica's queue."""

from __future__ import annotations

import contextlib
from typing import Iterator

import typer

from chatbot.cli.common import JsonOpt, cli_errors, cli_settings, echo_json

nurse_app = typer.Typer(help="Nurse handoff queue: queue, show, claim, acuity, reply, close. 护士转接队列。",
                        no_args_is_help=True)
NurseOpt = typer.Option(..., "--nurse", help="Your staff account name (recorded in the audit trail).")


@contextlib.contextmanager
def _desk() -> Iterator:
    from chatbot.app import make_store
    from chatbot.staff.handoff import HandoffDesk

    with make_store(cli_settings()) as store:
        yield HandoffDesk(store)


@nurse_app.command("queue")
@cli_errors
def nurse_queue(
    all_cases: bool = typer.Option(False, "--all", help="Include closed cases."),
    limit: int = typer.Option(100, "--limit", min=1, max=1000, help="Most cases listed."),
    as_json: bool = JsonOpt,
) -> None:
    """Open cases, most urgent first (acuity 1 before 5), newest first within a level. 待处理病例。"""
    with _desk() as desk:
        cases = desk.queue(include_closed=all_cases, limit=limit)
    if as_json:
        echo_json([c.to_json() for c in cases])
        return
    if not cases:
        typer.echo("no open handoff cases / 暂无转接病例")
    for c in cases:
        first = (c.case.get("first_message") or "").replace("\n", " ")[:60]
        typer.echo(f"#{c.id:<5} acuity {c.acuity} {c.disposition:<10} {c.status:<8} {c.nurse or '-':<16} "
                   f"{c.created_at[:19]}  {first}")


@nurse_app.command("show")
@cli_errors
def nurse_show(handoff_id: int = typer.Argument(..., help="Case id (medchat nurse queue)."), as_json: bool = JsonOpt) -> None:
    """One case with its transcript. 病例详情与对话记录。"""
    with _desk() as desk:
        case, transcript = desk.get(handoff_id), desk.transcript(handoff_id)
    if as_json:
        echo_json({**case.to_json(), "transcript": transcript})
        return
    typer.echo(f"#{case.id} acuity {case.acuity} ({case.disposition}), {case.status}, nurse {case.nurse or '-'}")
    for reason in (case.case.get("disposition") or {}).get("reasons", []):
        typer.echo(f"  - {reason}")
    for line in transcript:
        typer.echo(f"[{line['from']}] {line['text']}")


@nurse_app.command("claim")
@cli_errors
def nurse_claim(handoff_id: int = typer.Argument(..., help="Case id."), nurse: str = NurseOpt) -> None:
    """Take a waiting case (one nurse per case). 认领病例。"""
    with _desk() as desk:
        case = desk.claim(handoff_id, nurse)
    typer.echo(f"#{case.id} claimed by {case.nurse} / 已认领")


@nurse_app.command("acuity")
@cli_errors
def nurse_acuity(
    handoff_id: int = typer.Argument(..., help="Case id."),
    level: int = typer.Argument(..., min=1, max=5, help="New acuity, 1 (immediate) to 5 (self-care)."),
    reason: str = typer.Option(..., "--reason", help="Why (required, audited)."),
    nurse: str = NurseOpt,
) -> None:
    """Change the acuity of a case you claimed, with a reason. 修改分级（需理由）。"""
    with _desk() as desk:
        case = desk.change_acuity(handoff_id, nurse, level, reason)
    typer.echo(f"#{case.id} acuity {case.acuity} ({case.disposition}) / 分级已修改")


@nurse_app.command("reply")
@cli_errors
def nurse_reply(
    handoff_id: int = typer.Argument(..., help="Case id."),
    text: str = typer.Argument(..., help="The message for the patient."),
    nurse: str = NurseOpt,
) -> None:
    """Reply to the patient; it appears in their chat marked as from a nurse. 回复患者。"""
    with _desk() as desk:
        message_id = desk.reply(handoff_id, nurse, text)
    typer.echo(f"#{handoff_id}: reply stored as message {message_id} / 已回复")


@nurse_app.command("close")
@cli_errors
def nurse_close(handoff_id: int = typer.Argument(..., help="Case id."), nurse: str = NurseOpt) -> None:
    """Close a case you claimed. 关闭病例。"""
    with _desk() as desk:
        case = desk.close(handoff_id, nurse)
    typer.echo(f"#{case.id} {case.status} / 已关闭")
