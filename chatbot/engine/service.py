"""The consultation engine: a patient's message in, a grounded, cited, streamed answer out.

``ConsultationService.reply(session_id, text)`` yields :class:`ReplyEvent` s in this order::

    meta     {"lang", "mixed", "intent", "emotion", "red_flag", "query"}
    sources  [Passage.to_json() ...]            the passages the model is given, numbered from 1
    token*   "text piece"                       streamed model output (absent on emergencies)
    final    ConsultationResult                 the checked answer; its text replaces the stream

The steps are those of docs/ARCHITECTURE.md: language -> safety screen -> classifier -> query
rewrite -> retrieval -> evidence check -> prompt (template files) -> generation -> finalisation
(citations, doses, language, loops; extractive fallback) -> SQLite.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any, Iterator, Literal

import chatbot.engine.answer as answer_mod
from chatbot.engine.intake import (
    InputError,
    check_input,
    detect_language,
    rewrite_query,
)
from chatbot.engine.prompt import PromptBuilder
from chatbot.engine.routing import Router
from chatbot.llm.base import (
    ChatMessage,
    GenerationError,
    GenerationOptions,
    GenerationTimeout,
    Generator,
)
from chatbot.prompts import PromptLibrary
from chatbot.protocols import Classifier, NoClassifier, NoSafetyScreen, SafetyScreen
from chatbot.settings import ChatSettings, LLMSettings
from chatbot.store import ChatStore
from knowledge_base.records import Passage
from knowledge_base.retriever import Retriever
from knowledge_base.tokenize import tokenize, translate_terms

log = logging.getLogger(__name__)

EventKind = Literal["meta", "sources", "token", "final"]


@dataclass
class ReplyEvent:
    kind: EventKind
    data: Any


@dataclass
class ConsultationResult:
    """What ``medchat ask --json`` prints (see docs/CLI.md) and the UI renders."""

    session_id: str
    answer: str
    lang: str
    mixed: bool
    intent: dict | None
    emotion: dict | None
    red_flag: dict | None
    citations: list[dict]
    passages: list[dict]
    flags: list[str]
    timings: dict[str, float]
    backend: str
    query: str = ""
    message_id: int | None = None
    disposition: dict | None = None  # {"level", "line"} from the triage engine, own symptoms only
    # What the model itself generated, before finalisation (None: no model call). Not part of
    # ``to_json``: patients see ``answer``; ``eval generation`` scores both to compare models.
    model_text: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "answer": self.answer, "lang": self.lang, "intent": self.intent,
            "emotion": self.emotion, "red_flag": self.red_flag, "citations": self.citations,
            "passages": self.passages, "flags": self.flags, "timings": self.timings,
            "backend": self.backend, "session_id": self.session_id, "mixed": self.mixed,
            "query": self.query, "message_id": self.message_id, "disposition": self.disposition,
        }


def evidence_strength(question: str, lang: str, passages: list[Passage]) -> dict[str, float]:
    """Two signals that retrieval found something on topic: the best dense cosine among the top
    passages, and the share of the question's content words found in the best passage (through
    the glossary for a Chinese question read against English text)."""
    if not passages:
        return {"dense": 0.0, "overlap": 0.0}
    dense = max((max(p.scores.get(k, 0.0) for k in ("dense", "dense_en", "dense_en_gloss"))
                 for p in passages[:3]), default=0.0)
    words = set(tokenize(question))
    if lang == "zh":
        words |= {t for term in translate_terms(question, "zh") for t in tokenize(term)}
    overlap = 0.0
    if words:
        for p in passages[:3]:
            found = set(tokenize(f"{p.title} {p.text}"))
            # Chinese + glossary words are two spellings of one idea: count against the original
            # question's words only, so translation does not dilute the share.
            base = set(tokenize(question)) or words
            hits = len((words & found)) / len(base)
            overlap = max(overlap, min(hits, 1.0))
    return {"dense": round(dense, 4), "overlap": round(overlap, 4)}


class ConsultationService:
    def __init__(self, *, retriever: Retriever, generator: Generator, store: ChatStore,
                 prompts: PromptLibrary, chat: ChatSettings, llm: LLMSettings,
                 safety: SafetyScreen | None = None, classifier: Classifier | None = None,
                 triage: Any = None, router: Router | None = None) -> None:
        self.retriever = retriever
        self.generator = generator
        self.store = store
        self.prompts = prompts
        self.chat = chat
        self.llm = llm
        self.safety = safety or NoSafetyScreen()
        self.classifier = classifier or NoClassifier()
        self.triage = triage  # chatbot.triage.TriageEngine (optional): disposition line in answers
        self.router = router or Router(prompts)
        self.prompt_builder = PromptBuilder.from_settings(prompts, generator.count_tokens, chat, llm)

    def warm_up(self) -> None:
        warm = getattr(self.safety, "warm_up", None)
        if warm is not None:
            warm()  # the red-flag rules compile here, not on the first patient's message
        self.retriever.warm_up()
        self.generator.warm_up()
        if hasattr(self.classifier, "warm_up"):
            self.classifier.warm_up()

    # -- public --------------------------------------------------------------------------------
    def ask(self, text: str, session_id: str | None = None) -> ConsultationResult:
        """Run :meth:`reply` to the end and return the result (CLI ``ask``, evaluation)."""
        result = None
        for event in self.reply(session_id, text):
            if event.kind == "final":
                result = event.data
        assert result is not None  # reply always ends with a final event or raises
        return result

    def reply(self, session_id: str | None, text: str) -> Iterator[ReplyEvent]:
        t0 = time.perf_counter()
        session_id = self.store.ensure_session(session_id) if session_id else self.store.new_session()
        raw_lang = detect_language(text or "").lang
        try:
            cleaned = check_input(text, self.chat.max_input_chars)
        except InputError as exc:
            message = self.prompts.text(raw_lang, exc.key, length=len(text or ""), limit=self.chat.max_input_chars)
            yield from self._finish_short(session_id, text or "", raw_lang, False, message,
                                          ["input_rejected", exc.key], t0, store_user=bool((text or "").strip()))
            return
        info = detect_language(cleaned)
        lang = info.lang
        flags: list[str] = []

        screen = self.safety.screen(cleaned, lang)
        if isinstance(self.safety, NoSafetyScreen):
            flags.append(NoSafetyScreen.flag)
        understanding = self.classifier.classify(cleaned, lang)
        if isinstance(self.classifier, NoClassifier):
            flags.append(NoClassifier.flag)
        red_flag = ({"category": screen.category, "evidence": screen.evidence,
                     "categories": screen.categories, "rule_ids": screen.rule_ids,
                     "number": screen.number, "crisis_line": screen.crisis_line}
                    if screen.emergency else None)
        intent = ({"label": understanding.intent.label, "score": understanding.intent.score}
                  if understanding.intent else None)
        if screen.emergency:  # the screen, not the classifier, decides emergencies
            intent = {"label": "emergency", "score": 1.0}
        route = self.router.decide(understanding, emergency=screen.emergency, text=cleaned, lang=lang)
        emotion = ({"label": understanding.emotion.label, "score": understanding.emotion.score}
                   if understanding.emotion else None)

        if screen.emergency:
            # Deterministic path: no retrieval, no generation; the screen's fixed message.
            yield ReplyEvent("meta", {"lang": lang, "mixed": info.mixed, "intent": intent,
                                      "emotion": emotion, "red_flag": red_flag, "query": ""})
            self.store.log_event("red_flag", {"category": screen.category, "evidence": screen.evidence,
                                              "categories": screen.categories, "rule_ids": screen.rule_ids,
                                              "number": screen.number, "screen": self.safety.name},
                                 session_id=session_id)
            yield from self._finish_short(session_id, cleaned, lang, info.mixed, screen.message,
                                          flags + ["emergency"], t0, red_flag=red_flag,
                                          intent=intent, emotion=emotion)
            return

        if route.short:
            # greeting / administrative / out of scope: a fixed reply, no retrieval, no model
            yield ReplyEvent("meta", {"lang": lang, "mixed": info.mixed, "intent": intent,
                                      "emotion": emotion, "red_flag": None, "query": ""})
            yield ReplyEvent("sources", [])
            yield from self._finish_short(session_id, cleaned, lang, info.mixed,
                                          self.router.short_reply(route, cleaned, lang),
                                          flags + [f"route_{route.kind}"], t0, intent=intent,
                                          emotion=emotion)
            return

        history = self.store.history(session_id, limit=2 * self.chat.history_turns)
        previous_user = [m.text for m in history if m.role == "user"]
        query = rewrite_query(cleaned, previous_user, lang)
        if query != cleaned:
            flags.append("query_rewritten")
        yield ReplyEvent("meta", {"lang": lang, "mixed": info.mixed, "intent": intent,
                                  "emotion": emotion, "red_flag": None, "query": query})

        t_ret = time.perf_counter()
        hint = {"section_hint": route.section_hint} if route.section_hint else {}
        passages = self.retriever.search(query, k=self.chat.passages, lang=lang, **hint)
        retrieval_ms = (time.perf_counter() - t_ret) * 1000
        strength = evidence_strength(cleaned, lang, passages)
        min_dense = self.chat.min_dense_evidence_zh if lang == "zh" else self.chat.min_dense_evidence_en
        weak = strength["dense"] < min_dense and strength["overlap"] < self.chat.min_overlap_evidence
        if weak:
            message = self.router.with_tone(answer_mod.no_evidence_answer(lang, self.prompts), route, lang)
            disposition = self._disposition(cleaned, lang)
            if disposition:
                message = f"{message}\n\n{disposition['line']}"
            yield ReplyEvent("sources", [])
            yield from self._finish_short(session_id, cleaned, lang, info.mixed, message,
                                          flags + ["no_evidence"], t0, retrieval_ms=retrieval_ms,
                                          intent=intent, emotion=emotion, query=query,
                                          evidence=strength, disposition=disposition)
            return

        turns = [(m.role, m.text) for m in history if m.role in ("user", "assistant")]
        messages, given, budget_flags = self.prompt_builder.build(
            lang, cleaned, passages, turns, tone=self.router.prompt_tone(route, lang))
        flags += budget_flags
        yield ReplyEvent("sources", [p.to_json() for p in given])

        raw, ttft_ms, gen_flags = yield from self._generate(messages)
        model_text = raw
        flags += gen_flags
        if gen_flags:
            raw = ""  # a cut-off answer is not trusted: finalisation falls back to the passages
        elif _echoes_prompt(raw, messages[0].content):
            flags.append("prompt_echo")  # small base models recite their instructions
            raw = ""
        # chat.disclaimer_once: only the first answer of a conversation closes with the disclaimer
        # (the browser app, whose footer carries a permanent short one).
        first_answer = not any(m.role == "assistant" for m in history)
        final = answer_mod.finalise(raw, lang, given, self.prompts, question=cleaned,
                                    disclaimer=first_answer or not self.chat.disclaimer_once)
        flags += final.flags + ([f"tone_{route.tone}"] if route.tone else [])
        disposition = self._disposition(cleaned, lang)
        if disposition:
            final.text = _before_disclaimer(final.text, disposition["line"],
                                            self.prompts.text(lang, "answer.disclaimer"))
        total_ms = (time.perf_counter() - t0) * 1000
        result = ConsultationResult(
            session_id=session_id, answer=self.router.with_tone(final.text, route, lang),
            lang=lang, mixed=info.mixed, intent=intent,
            emotion=emotion, red_flag=None,
            citations=[{"n": c.n, "doc_id": c.doc_id, "title": c.title, "url": c.url,
                        "source": c.source} for c in final.citations],
            passages=[{"n": i + 1, **p.to_json()} for i, p in enumerate(given)],
            flags=_dedupe(flags),
            timings={"retrieval_ms": round(retrieval_ms, 1), "ttft_ms": round(ttft_ms, 1),
                     "total_ms": round(total_ms, 1)},
            backend=self.generator.name, query=query, disposition=disposition, model_text=model_text)
        result.message_id = self._store(session_id, cleaned, lang, result, evidence=strength)
        yield ReplyEvent("final", result)

    def _disposition(self, text: str, lang: str) -> dict | None:
        """The triage engine's one-line disposition when the message describes the patient's own
        symptoms (non-emergency path only: emergencies already got the screen's message)."""
        return self.triage.chat_disposition(text, lang) if self.triage is not None else None

    # -- steps ---------------------------------------------------------------------------------
    def _generate(self, messages: list[ChatMessage]):
        """Stream tokens as events; return (raw text, ttft ms, flags). A failed or timed-out
        generation returns what was produced so far with a flag; finalisation falls back."""
        options = GenerationOptions(max_tokens=self.llm.max_tokens, temperature=self.llm.temperature,
                                    repeat_penalty=self.llm.repeat_penalty, timeout_s=self.llm.timeout_s)
        pieces: list[str] = []
        t0 = time.perf_counter()
        ttft = 0.0
        flags: list[str] = []
        try:
            for piece in self.generator.stream(messages, options):
                if not pieces:
                    ttft = (time.perf_counter() - t0) * 1000
                pieces.append(piece)
                yield ReplyEvent("token", piece)
        except GenerationError as exc:
            log.warning("generation failed: %s", exc)
            flags.append("generation_timeout" if isinstance(exc, GenerationTimeout) else "generation_error")
        return "".join(pieces), ttft, flags

    def _finish_short(self, session_id: str, text: str, lang: str, mixed: bool, message: str,
                      flags: list[str], t0: float, *, store_user: bool = True, red_flag=None,
                      intent=None, emotion=None, retrieval_ms: float = 0.0, query: str = "",
                      evidence: dict | None = None, disposition: dict | None = None) -> Iterator[ReplyEvent]:
        total_ms = (time.perf_counter() - t0) * 1000
        result = ConsultationResult(
            session_id=session_id, answer=message, lang=lang, mixed=mixed, intent=intent,
            emotion=emotion, red_flag=red_flag, citations=[], passages=[], flags=_dedupe(flags),
            timings={"retrieval_ms": round(retrieval_ms, 1), "ttft_ms": 0.0, "total_ms": round(total_ms, 1)},
            backend="none", query=query, disposition=disposition)
        if store_user:
            result.message_id = self._store(session_id, text, lang, result, evidence=evidence)
        yield ReplyEvent("final", result)

    def _store(self, session_id: str, text: str, lang: str, result: ConsultationResult,
               evidence: dict | None = None) -> int:
        self.store.add_message(session_id, "user", text, lang=lang)
        meta = {"citations": result.citations, "flags": result.flags, "intent": result.intent,
                "emotion": result.emotion, "red_flag": result.red_flag, "timings": result.timings,
                "backend": result.backend, "query": result.query, "evidence": evidence or {}}
        return self.store.add_message(session_id, "assistant", result.answer, lang=lang, meta=meta)


def _before_disclaimer(text: str, line: str, disclaimer: str) -> str:
    """Insert ``line`` after the answer and before the closing disclaimer (if there is one)."""
    if disclaimer and text.endswith(disclaimer):
        head = text[: -len(disclaimer)].rstrip()
        return f"{head}\n\n{line}\n\n{disclaimer}"
    return f"{text}\n\n{line}"


def _echoes_prompt(raw: str, system: str, probe: int = 24) -> bool:
    """True when the output recites a line of the system prompt (the first ``probe`` characters of
    any instruction line of at least that length): an answer never needs to."""
    flat = " ".join(raw.split())
    return any(len(line) >= probe and " ".join(line.split())[:probe] in flat
               for line in system.splitlines())


def _dedupe(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))
