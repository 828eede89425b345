"""The clinical checks on one message: ``medchat triage``, ``safety check`` and ``classify``."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from chatbot.cli.common import (
    IndexOpt,
    JsonOpt,
    ModelDirOpt,
    cli_classifier,
    cli_errors,
    cli_safety_screen,
    cli_settings,
    cli_triage_engine,
    echo_json,
)

safety_app = typer.Typer(help="The red-flag safety screen: check one message.", no_args_is_help=True)


@cli_errors
def triage(
    text: str = typer.Argument(..., help="The complaint in the patient's words (中文 / English)."),
    age: Optional[float] = typer.Option(None, "--age", help="Age in years (0.25 = 3 months)."),
    sex: Optional[str] = typer.Option(None, "--sex", help="F or M."),
    pregnant: bool = typer.Option(False, "--pregnant", help="The patient is pregnant."),
    hr: Optional[float] = typer.Option(None, "--hr", help="Heart rate, /min."),
    sbp: Optional[float] = typer.Option(None, "--sbp", help="Systolic blood pressure, mmHg."),
    rr: Optional[float] = typer.Option(None, "--rr", help="Respiratory rate, /min."),
    spo2: Optional[float] = typer.Option(None, "--spo2", help="Oxygen saturation, %."),
    temp: Optional[float] = typer.Option(None, "--temp", help="Temperature, °C."),
    gcs: Optional[int] = typer.Option(None, "--gcs", help="Glasgow Coma Scale, 3-15."),
    avpu: Optional[str] = typer.Option(None, "--avpu", help="A | V | P | U."),
    pain: Optional[int] = typer.Option(None, "--pain", help="Pain score 0-10."),
    onset: Optional[str] = typer.Option(None, "--onset", help='When it started, e.g. "2 hours ago", "3天".'),
    comorbidity: list[str] = typer.Option([], "--comorbidity", help="A long-term condition; repeatable."),
    lang: Optional[str] = typer.Option(None, "--lang", help="zh | en for the note and reasons (default: the complaint's language)."),
    index: Optional[Path] = IndexOpt,
    no_evidence: bool = typer.Option(False, "--no-evidence", help="Skip the supporting passages (no index needed)."),
    save: bool = typer.Option(False, "--save", help="Store intake, result and note in the SQLite database."),
    nurse: str = typer.Option("", "--nurse", help="Nurse name recorded with --save."),
    as_json: bool = JsonOpt,
) -> None:
    """Triage one intake: acuity 1-5, disposition (emergency / urgent / routine / self_care),
    department, reasons, red flags, supporting passages and a draft note.

    JSON: {acuity, disposition, department:{key,en,zh}, reasons:[{kind,code,acuity,text,value}],
    red_flags, evidence, note, lang, warnings}."""
    from chatbot.triage import Intake, Vitals

    vitals = Vitals(hr=hr, sbp=sbp, rr=rr, spo2=spo2, temp=temp, gcs=gcs, avpu=avpu, pain=pain)
    intake = Intake(complaint=text, age=age, sex=sex, pregnant=pregnant or None, vitals=vitals,
                    onset=onset, comorbidities=tuple(comorbidity))
    engine = cli_triage_engine(index, not no_evidence)
    result = engine.assess(intake, lang=lang, with_evidence=not no_evidence)
    if save:
        from chatbot.app import make_store

        with make_store(cli_settings()) as store:
            store.add_triage(intake.to_json(), result.to_json(), nurse=nurse, note=result.note)
    if as_json:
        echo_json(result.to_json())
        return
    _print_triage(result, engine.prompts)


def _print_triage(result, prompts) -> None:
    lang = result.lang
    t = lambda key, **kw: prompts.text(lang, key, **kw)  # noqa: E731
    dept = result.department
    typer.echo(f"{t(f'triage.acuity.{result.acuity}')}  ({t('triage.cn_level', level=result.cn_level)})")
    typer.echo(t(f"triage.disposition.{result.disposition}"))
    typer.echo(f"{dept['zh']} / {dept['en']}")
    for r in result.reasons:
        typer.echo(f"  [{r.acuity}] {r.kind}: {r.text(lang)}")
    for w in result.warnings:
        typer.echo(f"  ! {w}")
    for i, p in enumerate(result.evidence, 1):
        typer.echo(f"  [{i}] {p['title']} — {p['source']} {p['url']}".rstrip())
    typer.echo("")
    typer.echo(result.note)


@safety_app.command("check")
@cli_errors
def safety_check(
    text: str = typer.Argument(..., help="A patient message, Chinese, English or mixed."),
    lang: Optional[str] = typer.Option(None, "--lang", help="zh | en for the message language (default: detected)."),
    as_json: bool = JsonOpt,
) -> None:
    """Screen one message: the hits (category, rule, evidence) and the escalation message.

    JSON: {emergency, category, categories, rule_ids, evidence, number, crisis_line, message,
    hits:[{category, rule_id, evidence, lang, context}]}."""
    from chatbot.engine.intake import detect_language

    screen = cli_safety_screen()
    use_lang = lang or detect_language(text).lang
    result = screen.screen(text, use_lang)
    hits = screen.hits(text, use_lang)
    if as_json:
        echo_json({"emergency": result.emergency, "category": result.category,
                   "categories": result.categories, "rule_ids": result.rule_ids,
                   "evidence": result.evidence, "number": result.number,
                   "crisis_line": result.crisis_line, "message": result.message,
                   "hits": [{"category": h.category, "rule_id": h.rule_id, "evidence": h.evidence,
                             "lang": h.lang, "context": list(h.context)} for h in hits],
                   "via": result.via, "detector": result.detector, "safety_question": result.safety_question})
        return
    if result.detector is not None:
        d = result.detector
        typer.echo(f"detector {d['version']}: score {d['score']:.3f} -> {d['band']} "
                   f"(escalate >= {d['threshold_high']}, ask >= {d['threshold_low']})")
    if result.safety_question is not None:
        typer.echo(f"unsure: the chat asks first: {result.safety_question['question']}")
        return
    if not result.emergency:
        typer.echo("no red flag")
        return
    for h in hits:
        typer.echo(f"{h.category}: {h.rule_id} <- {h.evidence}" + (f" + {', '.join(h.context)}" if h.context else ""))
    typer.echo("")
    typer.echo(result.message)


@cli_errors
def classify(text: str = typer.Argument(..., help="The message to classify (zh or en)."),
             model: Optional[Path] = ModelDirOpt, as_json: bool = JsonOpt) -> None:
    """Intent and emotion of one message, with calibrated scores. JSON:
    {"intent": {"label", "score"}, "emotion": {"label", "score"}}."""
    from chatbot.classifier.labels import EMOTIONS, INTENTS

    result = cli_classifier(model).classify(text)
    data = {"intent": {"label": result.intent.label, "score": result.intent.score},
            "emotion": {"label": result.emotion.label, "score": result.emotion.score}}
    if as_json:
        echo_json(data)
        return
    typer.echo(f"intent:  {data['intent']['label']} ({INTENTS.get(data['intent']['label'], ('',))[0]}) "
               f"{data['intent']['score']:.3f}")
    typer.echo(f"emotion: {data['emotion']['label']} ({EMOTIONS[data['emotion']['label']][0]}) "
               f"{data['emotion']['score']:.3f}")
