"""Post-processing of a generated answer: make it safe and honest before a patient sees it.

The generator is a very small model (Gemma-3-270M / SmolLM2-135M). It loops, drifts into the
wrong language, invents citation numbers and, worst, invents doses. This module:

- removes what a base model echoes from its prompt (template tokens, passage fences and headers,
  copied instructions);
- recognises an honest "I have no reliable source" reply and answers with the no-evidence message,
  unless the question names the topic of a passage (the library has its page): then the composed
  answer;
- normalises citation markers (``【1】``, ``［1］``, ``[1, 2]`` -> ``[1][2]``) and drops markers that
  point to no passage;
- removes every sentence holding a dose (number + unit) that no passage states;
- validates the rest (empty, wrong language, degenerate, no citation) and, on any problem, replaces
  the answer with the composed one: the sentences of the sections that answer the question's type,
  quoted verbatim from the passages, with their [n];
- maps the kept markers to :class:`Citation` records and appends the one-line disclaimer.

Every patient-facing string comes from ``data/prompts/<lang>/answer.yaml`` (keys ``answer.*``).
Passages are numbered [1]..[n] in the order given, as in the prompt.

Modules: ``sentences`` (splitting, span surgery), ``citations`` (markers, :class:`Citation`),
``echo`` (prompt and question echo), ``checks`` (language, loops, support, validation), ``doses``,
``extractive`` (sentence quoting), ``compose`` (the fallback: the sections that answer the
question's type) and ``finalise`` (the pipeline). The names below are re-exported so
``chatbot.engine.answer.finalise`` and friends keep working.
"""

# ruff: noqa: F405 (every name in __all__ comes from a submodule's __all__)
from chatbot.engine.answer.checks import *  # noqa: F403 (the facade: checks.__all__)
from chatbot.engine.answer.citations import *  # noqa: F403 (the facade: citations.__all__)
from chatbot.engine.answer.compose import *  # noqa: F403 (the facade: compose.__all__)
from chatbot.engine.answer.doses import *  # noqa: F403 (the facade: doses.__all__)
from chatbot.engine.answer.echo import *  # noqa: F403 (the facade: echo.__all__)
from chatbot.engine.answer.extractive import *  # noqa: F403 (the facade: extractive.__all__)
from chatbot.engine.answer.finalise import *  # noqa: F403 (the facade: finalise.__all__)
from chatbot.engine.answer.sentences import *  # noqa: F403 (the facade: sentences.__all__)

__all__ = [
    "DEGENERATE_REPETITION", "Answer", "Citation", "clean_citations", "compose_answer", "content_tokens",
    "dose_mentions", "extractive_answer", "finalise", "find_citations", "is_degenerate",
    "is_no_evidence_reply", "language_ok", "names_the_topic", "no_evidence_answer", "normalise_markers",
    "question_types", "remove_unsupported_sentences",
    "render_sources", "repetition_rate", "sentence_spans", "split_sentences", "strip_markers",
    "strip_prompt_echo", "strip_question_echo", "strip_unsupported_doses", "supported_share",
    "unsupported_doses", "validate",
]
