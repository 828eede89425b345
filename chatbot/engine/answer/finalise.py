"""Raw model output -> the answer a patient sees (:func:`finalise`): the steps of the other
answer modules in their order, the honest "no reliable source" reply, and the disclaimer."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from chatbot.engine.answer.checks import content_tokens, is_degenerate, remove_unsupported_sentences, validate
from chatbot.engine.answer.citations import Citation, citations_in, clean_citations, find_citations, strip_markers
from chatbot.engine.answer.sentences import fold
from chatbot.engine.answer.doses import remove_dose_sentences
from chatbot.engine.answer.echo import strip_prompt_echo, strip_question_echo
from chatbot.engine.answer.compose import compose_answer, names_the_topic
from chatbot.prompts import PromptError, PromptLibrary
from knowledge_base.records import Passage

# What chatbot.engine.answer re-exports.
__all__ = ["Answer", "finalise", "is_no_evidence_reply", "no_evidence_answer"]

# Prompt templates (data/prompts/<lang>/<name>.txt) whose lines a base model may copy.
PROMPT_TEMPLATES = ("system", "user")
# A reply is the model saying "no reliable source" when at least this share of its content words
# are words of the answer.no_evidence message, and it is short (a refusal, not an answer that
# happens to mention a doctor).
NO_EVIDENCE_WORD_SHARE = 0.5
NO_EVIDENCE_MAX_WORDS = 30


@dataclass
class Answer:
    text: str
    lang: str
    citations: list[Citation]
    flags: list[str] = field(default_factory=list)
    extractive: bool = False


def no_evidence_answer(lang: str, prompts: PromptLibrary) -> str:
    """The ``answer.no_evidence`` message: no reliable source, see a clinician."""
    return prompts.text(lang, "answer.no_evidence")


def is_no_evidence_reply(text: str, lang: str, prompts: PromptLibrary) -> bool:
    """The model followed the system prompt and said it has no reliable source ("I have no
    reliable source for this; please see a clinician." / "没有可靠的资料来源，建议就医。").
    Recognised by its words, compared with the ``answer.no_evidence`` message, so no phrase list
    lives in code. Such a reply must not be replaced by quotes of passages it found irrelevant."""
    words = content_tokens(text)
    if not words or len(words) > NO_EVIDENCE_MAX_WORDS or is_degenerate(text, lang):
        return False
    message = content_tokens(no_evidence_answer(lang, prompts))
    return len(words & message) / len(words) >= NO_EVIDENCE_WORD_SHARE


def _prompt_templates(lang: str, prompts: PromptLibrary) -> list[str]:
    """The system and user prompt texts the model saw, to recognise lines it copies. Optional:
    a library without them (tests, other deployments) just skips that check."""
    out = []
    for name in PROMPT_TEMPLATES:
        try:
            out.append(prompts.template(lang, name))
        except PromptError:
            continue
    return out


def finalise(raw: str, lang: str, passages: Sequence[Passage], prompts: PromptLibrary,
             question: str, disclaimer: bool = True, hint: str | None = None,
             overrule_refusal: bool = False, add_extract: bool = False,
             strong_evidence: bool = False) -> Answer:
    """Raw model output -> the answer a patient sees.

    Order matters: echoed prompt scaffolding goes first; markers are cleaned next (a dose
    sentence removed later may take its marker with it, and citations are read from the final
    text); an honest "no reliable source" reply is recognised before copied instructions are
    removed (it is one of them), and sentences restating the patient's question after them (flag
    "question_echo"); doses are checked before validation (an answer left empty by
    dose removal falls back); then sentences the passages they cite do not support are removed
    (flag "unsupported_removed"); validation runs on the body without notes.
    With no passages at all, or when the model itself says it has no reliable source (and cites
    nothing), the answer is the no-evidence message (flag "no_evidence"); it carries its own
    advice to see a doctor, so the disclaimer is not added to it. With ``overrule_refusal`` (the
    caller's evidence gate passed) and a question naming the topic of a passage (the library
    has its page) or ``strong_evidence`` (retrieval's match is strong), the model's refusal is replaced by the composed answer instead (flags
    "model_refused", "fallback_extractive"). With ``add_extract`` a valid model answer is followed
    by the composed extract (flag "extract_added"): the model's few sentences lead, the sources'
    own sentences on what was asked complete them.
    """
    if not passages:
        return Answer(no_evidence_answer(lang, prompts), lang, [], ["no_evidence"])
    flags: list[str] = []
    text, echoed = strip_prompt_echo(raw or "", passages)
    text, kept, removed = clean_citations(text, len(passages))
    if removed:
        flags.append("citations_removed")
    # Before removing copied instructions: "没有可靠的资料来源，建议就医" is both the honest reply
    # the system prompt asks for and a copy of the system prompt.
    if not kept and is_no_evidence_reply(text, lang, prompts):
        echo = ["prompt_echo"] if echoed else []
        # strong_evidence: the caller's retrieval found the topic beyond doubt (a dense cosine
        # where the model's refusals were wrong more often than right on the dev questions)
        if not (overrule_refusal and (strong_evidence or names_the_topic(question, lang, passages))):
            # The model judged the passages irrelevant: say so in our words, quote nothing.
            return Answer(no_evidence_answer(lang, prompts), lang, [], [*echo, *flags, "no_evidence"])
        text, fallback_flags = _fallback(question, lang, passages, prompts, ["model_refused"], hint)
        return _close(text, lang, passages, prompts, disclaimer, [*echo, *flags, *fallback_flags], True)
    text, copied = strip_prompt_echo(text, passages, _prompt_templates(lang, prompts))
    if echoed or copied:
        flags.insert(0, "prompt_echo")
    text, restated = strip_question_echo(text, question, lang)
    if restated:
        flags.append("question_echo")
    text, doses = remove_dose_sentences(text, passages)
    if doses:
        flags.append("dose_removed")
    problems = validate(text, lang, passages)
    if not problems:  # a wrong-language or looping answer falls back for that reason, first
        text, unsupported = remove_unsupported_sentences(text, passages, lang)
        if unsupported:
            flags.append("unsupported_removed")
            problems = validate(text, lang, passages)
    if problems:
        text, fallback_flags = _fallback(question, lang, passages, prompts, problems, hint)
        flags += fallback_flags
    else:
        if add_extract:
            extract = _extract_beyond(text, question, lang, passages, prompts, hint)
            if extract:
                text = f"{text}\n\n{extract}"
                flags.append("extract_added")
        if doses:
            text = f"{text}\n\n{prompts.text(lang, 'answer.dose_removed')}"
    return _close(text, lang, passages, prompts, disclaimer, flags, bool(problems))


def _close(text: str, lang: str, passages: Sequence[Passage], prompts: PromptLibrary, disclaimer: bool,
           flags: list[str], extractive: bool) -> Answer:
    """The citations read from the final text, and the disclaimer under it."""
    citations = citations_in(text, passages)
    if disclaimer:
        text = f"{text}\n\n{prompts.text(lang, 'answer.disclaimer')}"
    return Answer(text=text, lang=lang, citations=citations, flags=flags, extractive=extractive)


def _extract_beyond(text: str, question: str, lang: str, passages: Sequence[Passage],
                    prompts: PromptLibrary, hint: str | None) -> str:
    """The composed extract without the lines the model's answer already quotes; empty when it
    has nothing more (or nothing at all: the apology is not an extract)."""
    composed = compose_answer(question, lang, passages, prompts, hint=hint, same_language_only=True)
    said = fold(strip_markers(text))
    lines = [line for line in composed.splitlines()
             if not (find_citations(line) and fold(strip_markers(line)) in said)]
    if not any(find_citations(line) for line in lines):
        return ""
    # an intro line left with no quote under it goes too
    blocks = [b for b in "\n".join(lines).split("\n\n") if any(find_citations(x) for x in b.splitlines())]
    return "\n\n".join(blocks)


def _fallback(question: str, lang: str, passages: Sequence[Passage], prompts: PromptLibrary,
              problems: list[str], hint: str | None = None) -> tuple[str, list[str]]:
    """The composed answer (quotes of the sections that answer the question) that replaces a
    failed one, and the flags saying why. ``hint``: the classifier's section for the question."""
    text = compose_answer(question, lang, passages, prompts, hint=hint)
    flags = ["fallback_extractive", *problems]
    if not find_citations(text):
        flags.append("generation_failed")  # nothing to quote: the apology message
    return text, flags
