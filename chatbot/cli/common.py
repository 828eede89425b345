"""What every command group shares: the error translation, settings, JSON output, the option
objects, and the parts built through chatbot.app's factories (the CLI constructs nothing itself).

Imports of chatbot.app and chatbot.settings stay inside the functions so that ``medchat --help``
loads no model code."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any, Callable, Optional

import typer
from pydantic import ValidationError

from knowledge_base.errors import DomainError

EXIT_DOMAIN_ERROR = 2


def cli_errors(fn: Callable) -> Callable:
    """Translate domain and settings errors into ``error: ...`` on stderr and exit code 2.
    Anything else is a bug and keeps its traceback."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except DomainError as exc:
            message = str(exc)
        except ValidationError as exc:
            message = f"invalid settings (settings.yaml or MEDCHAT_* variables):\n{exc}"
        typer.echo(f"error: {message}", err=True)
        raise typer.Exit(EXIT_DOMAIN_ERROR)

    return wrapper


def cli_settings():
    from chatbot.settings import load_settings

    return load_settings()


def echo_json(data: Any) -> None:
    typer.echo(json.dumps(data, ensure_ascii=False, indent=2))


IndexOpt = typer.Option(None, "--index", help="Index directory (default: paths.index_dir in settings).")
JsonOpt = typer.Option(False, "--json", help="Print machine-readable JSON (a stable contract).")
BackendOpt = typer.Option(None, "--backend", help="llamacpp | transformers | openai | fake (default: llm.backend).")
AdapterOpt = typer.Option(None, "--adapter", help="LoRA adapter: a path, none (base model) or auto (default: llm.adapter).")
ModelOpt = typer.Option(None, "--model", help="gemma3-270m | smollm2-135m | path | HF id | served name (default: llm.model).")
ModelDirOpt = typer.Option(None, "--model", help="Classifier directory (default: classifier.model_dir in settings).")


def resolve_index_dir(index: Optional[Path]) -> Path:
    return index if index is not None else cli_settings().paths.index_dir


def cli_retriever(index: Optional[Path], embedder: Optional[str] = None, method: Optional[str] = None):
    from chatbot.app import make_retriever

    return make_retriever(cli_settings(), index=index, embedder=embedder, method=method)


def app_settings(backend: Optional[str], model: Optional[str], index: Optional[Path],
                 adapter: Optional[str] = None):
    """Settings with the command's --backend, --model, --adapter and --index applied. An empty
    --backend or --model means "not given", as it always has; an empty --adapter is a value."""
    from chatbot.app import settings_with

    return settings_with(cli_settings(), llm={"backend": backend or None, "model": model or None,
                                              "adapter": adapter}, paths={"index_dir": index})


def cli_app(backend: Optional[str] = None, model: Optional[str] = None, index: Optional[Path] = None,
            adapter: Optional[str] = None):
    from chatbot.app import build_app

    return build_app(app_settings(backend, model, index, adapter))


def cli_triage_engine(index: Optional[Path], with_evidence: bool):
    from chatbot.app import make_triage_engine

    return make_triage_engine(cli_settings(), retriever=cli_retriever(index) if with_evidence else None)


def cli_safety_screen():
    from chatbot.app import make_safety_screen

    return make_safety_screen(cli_settings(), enabled=True)


def cli_classifier(model: Optional[Path]):
    """The trained classifier of --model (default: classifier.model_dir). ``enabled`` is forced on:
    ``classify`` and ``eval intent|emotion`` test the classifier itself, whatever the setting."""
    from chatbot.app import make_classifier, settings_with

    return make_classifier(settings_with(cli_settings(), classifier={"model_dir": model, "enabled": True}))
