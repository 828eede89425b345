"""``medchat staff add|list|passwd|disable|enable``: the individual accounts of the nurse console
and the admin tab (in the store: SQLite at paths.database, or Postgres at store.url)."""

from __future__ import annotations

import contextlib
from typing import Iterator

import typer

from chatbot.cli.common import JsonOpt, cli_errors, cli_settings, echo_json

staff_app = typer.Typer(help="Staff accounts of the nurse console and admin tab: add, list, passwd, "
                             "disable, enable. 护士台与管理页的个人账号。", no_args_is_help=True)

PasswordOpt = typer.Option(..., "--password", prompt=True, hide_input=True, confirmation_prompt=True,
                           help="The account's password, at least 12 characters (prompted, hidden; "
                                "for scripts: --password \"$(cat file)\").")


@contextlib.contextmanager
def _accounts() -> Iterator[tuple]:
    from chatbot.app import make_store
    from chatbot.staff.accounts import AccountStore

    with make_store(cli_settings()) as store:
        yield AccountStore(store.db), store


@staff_app.command("add")
@cli_errors
def staff_add(
    name: str = typer.Argument(..., help="Account name, e.g. li.wen (no spaces)."),
    role: str = typer.Option("nurse", "--role", help="nurse (triage console) or admin (also the admin tab)."),
    password: str = PasswordOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Create an account. 创建账号。"""
    from chatbot.staff.auth import hash_password

    password_hash = hash_password(password)  # checks the length policy first
    with _accounts() as (accounts, store):
        account = accounts.add(name, role, password_hash)
        store.log_event("staff_account_created", {"user": account.name, "role": account.role})
    if as_json:
        echo_json(account.to_json())
        return
    typer.echo(f"created {account.role} account {account.name} / 已创建账号")


@staff_app.command("list")
@cli_errors
def staff_list(as_json: bool = JsonOpt) -> None:
    """Every account, disabled ones included (never a password or hash). 列出账号。"""
    with _accounts() as (accounts, _):
        rows = accounts.list()
    if as_json:
        echo_json([a.to_json() for a in rows])
        return
    if not rows:
        typer.echo("no staff accounts / 尚无账号 (medchat staff add NAME --role nurse)")
    for a in rows:
        typer.echo(f"{a.name:<24} {a.role:<6} {a.created_at}  {'active' if a.active else 'disabled ' + a.disabled_at}")


@staff_app.command("passwd")
@cli_errors
def staff_passwd(
    name: str = typer.Argument(..., help="Account name."),
    password: str = PasswordOpt,
) -> None:
    """Set a new password; the account's open console sessions end. 重设密码。"""
    from chatbot.staff.auth import hash_password

    password_hash = hash_password(password)
    with _accounts() as (accounts, store):
        account = accounts.set_password(name, password_hash)
        store.log_event("staff_password_changed", {"user": account.name})
    typer.echo(f"password of {account.name} changed; its sessions ended / 密码已更改")


def _set_disabled(name: str, disabled: bool) -> None:
    with _accounts() as (accounts, store):
        account = accounts.set_disabled(name, disabled)
        store.log_event("staff_account_disabled" if disabled else "staff_account_enabled", {"user": account.name})
    state = "disabled, its sessions ended / 已停用" if disabled else "enabled / 已启用"
    typer.echo(f"{account.name}: {state}")


@staff_app.command("disable")
@cli_errors
def staff_disable(name: str = typer.Argument(..., help="Account name.")) -> None:
    """Disable an account at once (kept for the audit trail, not deleted). 停用账号。"""
    _set_disabled(name, True)


@staff_app.command("enable")
@cli_errors
def staff_enable(name: str = typer.Argument(..., help="Account name.")) -> None:
    """Enable a disabled account again. 重新启用账号。"""
    _set_disabled(name, False)

