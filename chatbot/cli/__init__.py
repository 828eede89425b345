"""The ``medchat`` command line. Commands are thin: they read settings, call a service, print.
Domain errors become a one-line message (plus a hint) on stderr and exit code 2; bad usage is
click's exit code 2 too; success is 0.

JSON outputs (``--json``) are contracts read by other tools; see docs/CLI.md.

One module per command group (kb, consult, clinical, evaluate, bench, train, api; shared helpers
in common). This module only assembles them: the registration order below is the order in
``medchat --help``.
"""

from __future__ import annotations

import typer

from chatbot.cli import api, bench, clinical, consult, evaluate, kb, nurse, staff, train

app = typer.Typer(help="MedChat: bilingual medical consultation assistant (中文 / English).",
                  no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)

app.command()(kb.setup)
app.command()(consult.ask)
app.command()(consult.chat)
app.command()(consult.serve)
app.command("hash-password")(consult.hash_password_cmd)
app.command()(clinical.triage)
app.command()(clinical.classify)

app.add_typer(kb.kb_app, name="kb")
app.add_typer(evaluate.eval_app, name="eval")
app.add_typer(bench.bench_app, name="bench")
app.add_typer(train.train_app, name="train")
app.add_typer(clinical.safety_app, name="safety")
app.add_typer(train.finetune_app, name="finetune")
app.add_typer(api.api_app, name="api")
app.add_typer(staff.staff_app, name="staff")
app.add_typer(nurse.nurse_app, name="nurse")


def main() -> None:
    app()
