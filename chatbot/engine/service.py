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
from dataclasses import dataclass, field
from typing import Any, Iterator, Literal

import chatbot.engine.answer as answer_mod
from chatbot.engine.answer.combination import combination_terms, covers_combination
from chatbot.engine.answer.details import asked_detail, covers_detail, focused_query
from chatbot.engine.intake import InputError, check_input, detect_language, rewrite_query
from chatbot.engine.prompt import PromptBuilder
from chatbot.engine.routing import Route, Router
from chatbot.llm.base import ChatMessage, GenerationError, GenerationOptions, GenerationTimeout, Generator
from chatbot.llm.queue import ModelQueue
from chatbot.engine import handoff as handoff_mod
from chatbot.engine import symptom_intake as intake_mod
from chatbot.triage.models import Intake, Vitals
from chatbot.prompts import PromptLibrary
from chatbot.protocols import Classifier, NoClassifier, NoSafetyScreen, SafetyScreen, ScreenResult, Triage
from chatbot.safety.question import parse_answer
from chatbot.settings import TRIAGE_RULES_DIR, ChatSettings, LLMSettings
from chatbot.store import ChatStore, StoredMessage
from knowledge_base.records import Passage
from knowledge_base.retriever import Retriever
from knowledge_base.tokenize import tokenize, translate_terms

log = logging.getLogger(__name__)

# Rejections that carry no sign of the patient's language: answered in both.
BILINGUAL_INPUT_KEYS = frozenset({"input.empty", "input.unreadable", "input.unsupported_language"})

EventKind = Literal["meta", "sources", "queued", "token", "final"]
# How often a turn waiting for the model reports its place in line ("queued" events).
QUEUE_POLL_S = 0.5


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
    # The unsure band: the fixed safety question asked instead of an answer ({category, group,
    # question, options, lang, original}); None otherwise. Flag ``safety_question``.
    safety_question: dict | None = None
    # Symptom intake (chatbot.engine.symptom_intake): {"state", "question" | None, "done"} while
    # the chat asks its follow-up questions, None when there is none. Flags ``intake_question``,
    # ``intake_done``.
    intake: dict | None = None
    # "Talk to a nurse": {"id", "status", "acuity"} of the queued case (flag ``handoff_requested``).
    handoff: dict | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "answer": self.answer, "lang": self.lang, "intent": self.intent,
            "emotion": self.emotion, "red_flag": self.red_flag, "citations": self.citations,
            "passages": self.passages, "flags": self.flags, "timings": self.timings,
            "backend": self.backend, "session_id": self.session_id, "mixed": self.mixed,
            "query": self.query, "message_id": self.message_id, "disposition": self.disposition,
            "safety_question": self.safety_question, "intake": self.intake, "handoff": self.handoff,
        }


@dataclass
class Turn:
    """One patient message on its way through :meth:`ConsultationService.reply`: each step reads
    what the earlier ones wrote (the message is analysed once) and the result is built from it.
    ``answer`` set means settled: the remaining steps are skipped."""

    session_id: str
    text: str                                 # the message as received
    t0: float                                 # perf_counter at arrival (timings)
    cleaned: str = ""                         # after the input checks
    lang: str = "en"
    mixed: bool = False
    flags: list[str] = field(default_factory=list)
    screen: ScreenResult | None = None
    route: Route | None = None
    intent: dict | None = None
    emotion: dict | None = None
    red_flag: dict | None = None              # the screen's findings, emergencies only
    history: list[StoredMessage] = field(default_factory=list)
    query: str = ""                           # the rewritten retrieval query
    passages: list[Passage] = field(default_factory=list)  # retrieved
    evidence: dict | None = None              # evidence_strength of the retrieved passages
    retrieval_ms: float = 0.0
    given: list[Passage] = field(default_factory=list)     # in the prompt, numbered from 1
    ttft_ms: float = 0.0
    model_text: str | None = None
    answer: str | None = None
    citations: list[dict] = field(default_factory=list)
    disposition: dict | None = None
    backend: str = "none"
    store_user: bool = True                   # False for an empty message: nothing to store
    safety_question: dict | None = None       # asked now (the detector's unsure band)
    safety_cleared: bool = False              # a "no" to the question: answer, do not ask again
    intake: dict | None = None                # the symptom intake after this turn
    handoff: dict | None = None               # the nurse case queued by this turn


def evidence_strength(question: str, lang: str, passages: list[Passage]) -> dict[str, float]:
    """Two signals that retrieval found something on topic: the best dense cosine among the top
    passages, and the share of the question's content words found in the best passage (through
    the glossary for a Chinese question read against English text)."""
    if not passages:
        return {"dense": 0.0, "overlap": 0.0}
    dense = max((max(p.scores.get(k, 0.0) for k in ("dense", "dense_en", "dense_en_gloss"))
                 for p in passages[:3]), default=0.0)
    own = set(tokenize(question))
    words = set(own)
    if lang == "zh":
        words |= {t for term in translate_terms(question, "zh") for t in tokenize(term)}
    # Chinese + glossary words are two spellings of one idea: count against the original
    # question's words only, so translation does not dilute the share.
    base = own or words
    overlap = 0.0
    if words:
        for p in passages[:3]:
            found = set(tokenize(f"{p.title} {p.text}"))
            hits = len(words & found) / len(base)
            overlap = max(overlap, min(hits, 1.0))
    return {"dense": round(dense, 4), "overlap": round(overlap, 4)}


class ConsultationService:
    def __init__(self, *, retriever: Retriever, generator: Generator, store: ChatStore,
                 prompts: PromptLibrary, chat: ChatSettings, llm: LLMSettings,
                 safety: SafetyScreen | None = None, classifier: Classifier | None = None,
                 triage: Triage | None = None, router: Router | None = None) -> None:
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
        # one line to the model for every channel of this process (browser, CLI, API)
        self.model_queue = ModelQueue(llm.max_concurrent)

    def warm_up(self) -> None:
        """Load everything the first patient's message would otherwise wait for. Idempotent."""
        self.safety.warm_up()  # the red-flag rules compile here, not on the first message
        self.retriever.warm_up()
        self.generator.warm_up()
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
        """The steps of the module docstring over one :class:`Turn`. A step that settles the
        answer (bad input, emergency, short route, weak evidence) sets ``turn.answer``; the
        remaining steps are skipped and every turn ends in the same final event."""
        t0 = time.perf_counter()
        session_id = self.store.ensure_session(session_id) if session_id else self.store.new_session()
        turn = Turn(session_id=session_id, text=text or "", t0=t0)
        # _intake_answer before _ask: an answer to the chat's own follow-up question ("3 days",
        # "45") is not an ambiguous message for the detector's safety question; the emergency
        # screen (_escalate) has run on it all the same.
        for step in (self._check, self._safety_answer, self._understand, self._escalate, self._handoff,
                     self._intake_answer, self._ask, self._route_short, self._retrieve, self._pair_check,
                     self._detail_check, self._answer):
            yield from step(turn)
            if turn.answer is not None:
                break
        yield ReplyEvent("final", self._close(turn))

    # -- steps ---------------------------------------------------------------------------------
    def _check(self, turn: Turn) -> Iterator[ReplyEvent]:
        """Input checks, then the language of the cleaned message (of the raw one if rejected)."""
        try:
            turn.cleaned = check_input(turn.text, self.chat.max_input_chars)
        except InputError as exc:
            turn.lang = detect_language(turn.text).lang
            turn.answer = self._input_message(exc.key, turn.lang, len(turn.text))
            turn.flags += ["input_rejected", exc.key]
            turn.store_user = bool(turn.text.strip())
            return
        info = detect_language(turn.cleaned)
        turn.lang, turn.mixed = info.lang, info.mixed
        yield from ()

    def _input_message(self, key: str, lang: str, length: int) -> str:
        """The message for a rejected input. An empty, unreadable or foreign-language message
        tells nothing of the patient's language: both languages, Chinese first."""
        if key in BILINGUAL_INPUT_KEYS:
            return "\n".join(self.prompts.text(code, key) for code in ("zh", "en"))
        return self.prompts.text(lang, key, length=length, limit=self.chat.max_input_chars)

    def _safety_answer(self, turn: Turn) -> Iterator[ReplyEvent]:
        """A clear yes / not sure / no to the safety question the last reply asked: yes and not
        sure escalate with the question's category; no answers the original question without
        asking again. Anything else is a new message (the whole screen runs on it)."""
        # The one history read of the turn: the pending question now, the prompt's turns later.
        keep = 2 * self.chat.history_turns
        recent = self.store.history(turn.session_id, limit=max(keep, 1))  # the last reply, always
        turn.history = recent[len(recent) - keep:] if keep else []
        pending = self._pending_question(recent)
        choice = parse_answer(turn.cleaned) if pending else None
        if pending is None or choice is None:
            return
        turn.flags.append(f"safety_answer_{choice}")
        self.store.log_event("safety_answer", {"answer": choice, "category": pending.get("category", ""),
                                               "group": pending.get("group", ""),
                                               "detector": pending.get("detector")},
                             session_id=turn.session_id)
        turn.lang = pending.get("lang", turn.lang)
        if choice == "no":
            turn.safety_cleared = True
            turn.cleaned = pending.get("original") or turn.cleaned
            turn.mixed = detect_language(turn.cleaned).mixed
            return
        turn.screen = screen = self.safety.escalation(
            pending.get("category", ""), turn.lang, f"safety_question:{pending.get('group', 'general')}",
            pending.get("detector"))
        turn.red_flag = self._red_flag(screen)
        turn.intent = {"label": "emergency", "score": 1.0}
        yield from self._escalate(turn)

    @staticmethod
    def _pending_question(history: list[StoredMessage]) -> dict | None:
        if history and history[-1].role == "assistant" and "safety_question" in history[-1].meta.get("flags", []):
            return history[-1].meta.get("safety_question") or None
        return None

    @staticmethod
    def _red_flag(screen: ScreenResult) -> dict:
        return {"category": screen.category, "evidence": screen.evidence, "categories": screen.categories,
                "rule_ids": screen.rule_ids, "number": screen.number, "crisis_line": screen.crisis_line}

    def _ask(self, turn: Turn) -> Iterator[ReplyEvent]:
        """The detector is unsure: one fixed safety question before any retrieval or model."""
        question = turn.screen.safety_question if turn.screen is not None else None
        if question is None or turn.safety_cleared:
            return
        yield self._meta(turn)
        yield ReplyEvent("sources", [])
        turn.safety_question = {**question, "lang": turn.lang, "original": turn.cleaned,
                                "detector": turn.screen.detector}
        labels = " / ".join(o["label"] for o in question["options"])
        turn.answer = f"{question['question']}\n\n{labels}"
        turn.flags.append("safety_question")
        self.store.log_event("safety_question", {"category": question["category"], "group": question["group"],
                                                 "detector": turn.screen.detector, "screen": self.safety.name},
                             session_id=turn.session_id)

    def _understand(self, turn: Turn) -> Iterator[ReplyEvent]:
        """Safety screen, classifier and route: the one analysis every later step reads."""
        turn.screen = screen = self.safety.screen(turn.cleaned, turn.lang)
        if isinstance(self.safety, NoSafetyScreen):
            turn.flags.append(NoSafetyScreen.flag)
        understanding = self.classifier.classify(turn.cleaned, turn.lang)
        if isinstance(self.classifier, NoClassifier):
            turn.flags.append(NoClassifier.flag)
        if screen.emergency:
            turn.red_flag = self._red_flag(screen)
        turn.intent = ({"label": understanding.intent.label, "score": understanding.intent.score}
                       if understanding.intent else None)
        if screen.emergency:  # the screen, not the classifier, decides emergencies
            turn.intent = {"label": "emergency", "score": 1.0}
        turn.route = self.router.decide(understanding, emergency=screen.emergency,
                                        text=turn.cleaned, lang=turn.lang)
        turn.emotion = ({"label": understanding.emotion.label, "score": understanding.emotion.score}
                        if understanding.emotion else None)
        yield from ()

    def _escalate(self, turn: Turn) -> Iterator[ReplyEvent]:
        """Emergency: no retrieval, no generation; the screen's fixed message."""
        screen = turn.screen
        if screen is None or not screen.emergency:
            return
        yield self._meta(turn)
        # the detector's verdict (model version, score, thresholds) is recorded with every event
        self.store.log_event("red_flag", {"category": screen.category, "evidence": screen.evidence,
                                          "categories": screen.categories, "rule_ids": screen.rule_ids,
                                          "number": screen.number, "screen": self.safety.name,
                                          "via": screen.via, "detector": screen.detector},
                             session_id=turn.session_id)
        turn.answer = screen.message
        turn.flags.append("emergency")

    def _route_short(self, turn: Turn) -> Iterator[ReplyEvent]:
        """Greeting / administrative / out of scope: a fixed reply, no retrieval, no model."""
        route = turn.route
        if route is None or not route.short:
            return
        yield self._meta(turn)
        yield ReplyEvent("sources", [])
        turn.answer = self.router.short_reply(route, turn.cleaned, turn.lang)
        turn.flags.append(f"route_{route.kind}")
        if route.scope:
            # the library has no reliable source for such a question: no_evidence keeps its meaning
            turn.flags += [f"scope_{route.scope}", "no_evidence"]

    def _retrieve(self, turn: Turn) -> Iterator[ReplyEvent]:
        """Query rewrite with the earlier turns, retrieval and the evidence gate."""
        previous_user = [m.text for m in turn.history if m.role == "user"]
        turn.query = rewrite_query(turn.cleaned, previous_user, turn.lang)
        if turn.query != turn.cleaned:
            turn.flags.append("query_rewritten")
        yield self._meta(turn)
        t_ret = time.perf_counter()
        hint = {"section_hint": turn.route.section_hint} if turn.route.section_hint else {}
        turn.passages = self.retriever.search(turn.query, k=self.chat.passages, lang=turn.lang, **hint)
        turn.retrieval_ms = (time.perf_counter() - t_ret) * 1000
        turn.evidence = strength = evidence_strength(turn.cleaned, turn.lang, turn.passages)
        min_dense = self.chat.min_dense_evidence_zh if turn.lang == "zh" else self.chat.min_dense_evidence_en
        if strength["dense"] < min_dense and strength["overlap"] < self.chat.min_overlap_evidence:
            message = self.router.with_tone(answer_mod.no_evidence_answer(turn.lang, self.prompts),
                                            turn.route, turn.lang)
            extra = self._disposition_or_intake(turn)
            if extra:
                message = f"{message}\n\n{extra}"
            yield ReplyEvent("sources", [])
            turn.answer = message
            turn.flags.append("no_evidence")

    def _pair_check(self, turn: Turn) -> Iterator[ReplyEvent]:
        """A question about taking two things together, past the evidence gate: the pages of each
        are no answer about the pair (chatbot/engine/answer/combination.py)."""
        combo = combination_terms(turn.cleaned, turn.lang) if self.chat.combination_check else None
        if combo is not None and not covers_combination(combo, turn.passages):
            message = self.prompts.text(turn.lang, "answer.combination_not_covered",
                                        first=combo.first, second=combo.second)
            yield ReplyEvent("sources", [])
            turn.answer = self.router.with_tone(message, turn.route, turn.lang)
            turn.flags += ["combination_not_covered", "no_evidence"]

    def _detail_check(self, turn: Turn) -> Iterator[ReplyEvent]:
        """A question about one detail of a topic (contagion, a missed dose, a drug's side effects,
        when to take it, pregnancy): answered only when a passage sentence speaks of that detail on
        the topic, after one focused second search if the first passages lack it; otherwise the
        reply names the detail the library does not hold (chatbot/engine/answer/details.py)."""
        detail = asked_detail(turn.query, turn.lang) if self.chat.detail_check else None
        if detail is None or covers_detail(detail, turn.passages):
            return
        query = focused_query(detail, turn.query, turn.lang, turn.passages)
        again = self.retriever.search(query, k=self.chat.passages, lang=turn.lang)
        if covers_detail(detail, again):
            turn.passages = again
            turn.flags.append("detail_requery")
            return
        message = self.prompts.text(turn.lang, "answer.detail_not_covered", what=detail.what[turn.lang])
        yield ReplyEvent("sources", [])
        turn.answer = self.router.with_tone(message, turn.route, turn.lang)
        turn.flags += ["detail_not_covered", f"detail_{detail.kind}", "no_evidence"]

    def _answer(self, turn: Turn) -> Iterator[ReplyEvent]:
        """Prompt, streamed generation and finalisation (citations, doses, language, loops)."""
        route, lang = turn.route, turn.lang
        turns = [(m.role, m.text) for m in turn.history if m.role in ("user", "assistant")]
        messages, turn.given, budget_flags = self.prompt_builder.build(
            lang, turn.cleaned, turn.passages, turns, tone=self.router.prompt_tone(route, lang))
        turn.flags += budget_flags
        yield ReplyEvent("sources", [p.to_json() for p in turn.given])

        raw, turn.ttft_ms, gen_flags, queued = yield from self._generate(messages)
        turn.model_text = raw
        if queued:
            turn.flags.append("queued")  # waited for the model: informational, not a failure
        turn.flags += gen_flags
        if gen_flags:
            raw = ""  # a cut-off answer is not trusted: finalisation falls back to the passages
        elif _echoes_prompt(raw, messages[0].content):
            turn.flags.append("prompt_echo")  # small base models recite their instructions
            raw = ""
        # chat.disclaimer_once: only the first answer of a conversation closes with the disclaimer
        # (the browser app, whose footer carries a permanent short one).
        first_answer = not any(m.role == "assistant" for m in turn.history)
        final = answer_mod.finalise(raw, lang, turn.given, self.prompts, question=turn.cleaned,
                                    disclaimer=first_answer or not self.chat.disclaimer_once,
                                    hint=route.section_hint,
                                    # reached only past the evidence gate: the topic is in the library
                                    overrule_refusal=self.chat.overrule_model_refusal,
                                    strong_evidence=self._strong_evidence(turn),
                                    add_extract=self.chat.answer_extract)
        turn.flags += final.flags + ([f"tone_{route.tone}"] if route.tone else [])
        extra = self._disposition_or_intake(turn)
        if extra:
            final.text = _before_disclaimer(final.text, extra, self.prompts.text(lang, "answer.disclaimer"))
        turn.answer = self.router.with_tone(final.text, route, lang)
        turn.citations = [{"n": c.n, "doc_id": c.doc_id, "title": c.title, "url": c.url,
                           "source": c.source} for c in final.citations]
        turn.backend = self.generator.name

    def _strong_evidence(self, turn: Turn) -> bool:
        """Retrieval's best dense cosine reaches the language's ``overrule_refusal_min_dense``:
        the topic is in the library beyond doubt, and a model refusal is overruled even when the
        question does not name a page's title."""
        floor = (self.chat.overrule_refusal_min_dense_zh if turn.lang == "zh"
                 else self.chat.overrule_refusal_min_dense_en)
        return bool(turn.evidence) and turn.evidence["dense"] >= floor

    def _meta(self, turn: Turn) -> ReplyEvent:
        return ReplyEvent("meta", {"lang": turn.lang, "mixed": turn.mixed, "intent": turn.intent,
                                   "emotion": turn.emotion, "red_flag": turn.red_flag,
                                   "query": turn.query})

    def _disposition_or_intake(self, turn: Turn) -> str:
        """What follows the answer when the message describes the patient's own (or a relative's)
        symptoms (non-emergency path only: emergencies already got the screen's message): the first
        follow-up question of a symptom intake when the triage engine lacks facts for a disposition,
        else its one-line disposition; "" for any other message."""
        if self.triage is None:
            return ""
        found = self.triage.chat_assessment(turn.cleaned, turn.lang, unrecognised=True)
        if found is None:
            return ""
        lang = turn.lang
        state = None
        recognised = any(r.kind in ("complaint", "red_flag", "vital") for r in found.reasons)
        if (self.chat.symptom_intake and found.disposition != "emergency" and not intake_mod.asks_a_question(turn.cleaned)
                and (recognised or intake_mod.sounds_like_symptoms(turn.cleaned))):
            state = intake_mod.plan(turn.cleaned, lang, found.understood, found.presentation, self._intake_rules())
        if state is None and not recognised:
            return ""  # no line for a complaint no rule knows, as before the intake existed
        if state is None:
            turn.disposition = {"level": found.disposition,
                                "line": self.prompts.text(lang, f"triage.line.{found.disposition}")}
            return turn.disposition["line"]
        question = intake_mod.question(state, self._intake_rules())
        turn.intake = {"state": state.to_json(), "question": question, "done": False}
        turn.flags.append("intake_question")
        self.store.log_event("intake_started", {"presentation": state.presentation, "questions": state.pending},
                             session_id=turn.session_id)
        intro = self.prompts.text(lang, "intake.intro", total=question["total"])
        return f"{intro}\n{self._question_text(question, lang)}"

    def _question_text(self, question: dict, lang: str) -> str:
        text = self.prompts.text(lang, "intake.question", number=question["number"], total=question["total"],
                                 text=question["text"])
        return f"{text}\n" + " / ".join(question["options"])

    def _intake_rules(self) -> dict:
        return intake_mod.load_intake_rules(self.triage.rules_dir if self.triage is not None else TRIAGE_RULES_DIR)

    def _handoff(self, turn: Turn) -> Iterator[ReplyEvent]:
        """"Talk to a nurse": the session's case is queued for the nurse console (after the
        emergency screen: an emergency is answered first and never waits for a nurse)."""
        if not handoff_mod.is_request(turn.cleaned):
            return
        yield self._meta(turn)
        yield ReplyEvent("sources", [])
        case, created = handoff_mod.request_handoff(self.store, turn.session_id, turn.lang)
        turn.handoff = {"id": case.id, "status": case.status, "acuity": case.acuity}
        turn.flags.append("handoff_requested")
        key = "handoff.queued" if created else "handoff.already"
        turn.answer = self.prompts.text(turn.lang, key, number=self._emergency_number())

    def _intake_answer(self, turn: Turn) -> Iterator[ReplyEvent]:
        """The answer to the intake question the last reply asked: the next question, or the
        disposition on the completed intake with its reasons. A message that is clearly a new
        question ends the intake and is answered as one. Runs after the red-flag screen, so an
        emergency told as an answer has already been escalated."""
        pending = turn.history[-1].meta.get("intake") if turn.history and turn.history[-1].role == "assistant" else None
        if not pending or pending.get("done") or self.triage is None:
            return
        state = intake_mod.IntakeState.from_json(pending["state"])
        if not state.pending or intake_mod.looks_like_a_new_question(turn.cleaned):
            turn.flags.append("intake_abandoned")
            return
        lang = turn.lang = state.lang
        rules = self._intake_rules()
        yield self._meta(turn)
        yield ReplyEvent("sources", [])
        if not intake_mod.parse(state, turn.cleaned):
            question = intake_mod.question(state, rules)
            turn.intake = {"state": state.to_json(), "question": question, "done": False}
            turn.flags.append("intake_question")
            turn.answer = f"{self.prompts.text(lang, 'intake.age_again')}\n{self._question_text(question, lang)}"
            return
        if state.pending:
            question = intake_mod.question(state, rules)
            turn.intake = {"state": state.to_json(), "question": question, "done": False}
            turn.flags.append("intake_question")
            turn.answer = self._question_text(question, lang)
            return
        turn.answer = self._intake_result(turn, state, rules)

    def _intake_result(self, turn: Turn, state: "intake_mod.IntakeState", rules: dict) -> str:
        """The triage engine on the completed intake: the disposition line, the reasons in the
        patient's language, a safety net. An emergency found here is escalated and logged like the
        screen's."""
        lang = state.lang
        vitals = Vitals(pain=state.severity) if state.severity is not None else Vitals()

        def assess(complaint: str):
            return self.triage.assess(Intake(complaint=complaint, age=state.age, onset=state.onset, vitals=vitals),
                                      lang=lang, with_evidence=False, with_opinion=False)

        result = assess(intake_mod.complaint_with_answers(state, rules))
        if state.check_yes and result.acuity >= assess(state.complaint).acuity:
            # "yes, <a sign in words no rule knows>" ("呼吸很急", "叫他也不太理人"): the yes to a list of
            # danger signs still counts, with the check's fixed wording
            result = assess(intake_mod.complaint_with_answers(state, rules, canonical=True))
        reasons = [r.text(lang) for r in result.reasons if r.kind != "uncertainty"][:3]
        turn.disposition = {"level": result.disposition, "acuity": result.acuity,
                            "line": self.prompts.text(lang, f"triage.line.{result.disposition}"),
                            "reasons": reasons, "department": result.department}
        turn.intake = {"state": state.to_json(), "question": None, "done": True}
        turn.flags.append("intake_done")
        self.store.log_event("intake_done", {"presentation": state.presentation, "disposition": result.disposition,
                                             "acuity": result.acuity, "reasons": [r.code for r in result.reasons]},
                             session_id=turn.session_id)
        number = self._emergency_number()
        if result.disposition == "emergency":
            turn.red_flag = {"category": "triage", "evidence": reasons, "categories": ["triage"],
                             "rule_ids": [r.code for r in result.reasons if r.acuity <= 2], "number": number,
                             "crisis_line": ""}
            turn.flags.append("emergency")
            self.store.log_event("red_flag", {"category": "triage", "evidence": reasons, "via": "symptom_intake",
                                              "rule_ids": turn.red_flag["rule_ids"], "number": number},
                                 session_id=turn.session_id)
        lines = [self.prompts.text(lang, "intake.done", line=turn.disposition["line"])]
        if reasons:
            lines.append(self.prompts.text(lang, "intake.why") + "\n" + "\n".join(f"- {r}" for r in reasons))
        lines.append(self.prompts.text(lang, "intake.safety_net", number=number))
        if result.disposition in ("emergency", "urgent"):
            lines.append(self.prompts.text(lang, "intake.nurse_offer"))
        return "\n\n".join(lines)

    def _emergency_number(self) -> str:
        settings = getattr(self.safety, "settings", None)
        return settings.number() if settings is not None and hasattr(settings, "number") else "120"

    def _generate(self, messages: list[ChatMessage]):
        """Stream tokens as events; return (raw text, ttft ms, failure flags, waited in line). A
        failed or timed-out generation returns what was produced so far with a flag; finalisation
        falls back."""
        options = GenerationOptions(max_tokens=self.llm.max_tokens, temperature=self.llm.temperature,
                                    repeat_penalty=self.llm.repeat_penalty, timeout_s=self.llm.timeout_s)
        pieces: list[str] = []
        t0 = time.perf_counter()
        ttft = 0.0
        flags: list[str] = []
        queued = False
        ticket = self.model_queue.join()
        try:
            ahead = self.model_queue.ahead(ticket)
            while ahead:
                # {"ahead": n}: turns generating or earlier in line; the budget has not started
                yield ReplyEvent("queued", {"ahead": ahead})
                ahead = self.model_queue.wait(ticket, QUEUE_POLL_S)
            queued = time.perf_counter() - t0 > QUEUE_POLL_S
            try:
                for piece in self.generator.stream(messages, options):
                    if not pieces:
                        ttft = (time.perf_counter() - t0) * 1000
                    pieces.append(piece)
                    yield ReplyEvent("token", piece)
            except GenerationError as exc:
                log.warning("generation failed: %s", exc)
                flags.append("generation_timeout" if isinstance(exc, GenerationTimeout) else "generation_error")
        finally:
            self.model_queue.leave(ticket)  # also when the page closed mid-wait (generator closed)
        return "".join(pieces), ttft, flags, queued

    def _close(self, turn: Turn) -> ConsultationResult:
        """The turn's result, stored with the user's message (not for an empty message)."""
        assert turn.answer is not None  # every path through reply() settles the answer
        total_ms = (time.perf_counter() - turn.t0) * 1000
        result = ConsultationResult(
            session_id=turn.session_id, answer=turn.answer, lang=turn.lang, mixed=turn.mixed,
            intent=turn.intent, emotion=turn.emotion, red_flag=turn.red_flag,
            citations=turn.citations,
            passages=[{"n": i + 1, **p.to_json()} for i, p in enumerate(turn.given)],
            flags=_dedupe(turn.flags),
            timings={"retrieval_ms": round(turn.retrieval_ms, 1), "ttft_ms": round(turn.ttft_ms, 1),
                     "total_ms": round(total_ms, 1)},
            backend=turn.backend, query=turn.query, disposition=turn.disposition,
            model_text=turn.model_text, safety_question=turn.safety_question, intake=turn.intake,
            handoff=turn.handoff)
        if turn.store_user:
            # a rejected message has no cleaned form: it is stored as received
            text = turn.cleaned if turn.cleaned else turn.text
            result.message_id = self._store(turn.session_id, text, turn.lang, result,
                                            evidence=turn.evidence)
        return result

    def _store(self, session_id: str, text: str, lang: str, result: ConsultationResult,
               evidence: dict | None = None) -> int:
        self.store.add_message(session_id, "user", text, lang=lang)
        meta = {"citations": result.citations, "flags": result.flags, "intent": result.intent,
                "emotion": result.emotion, "red_flag": result.red_flag, "timings": result.timings,
                "backend": result.backend, "query": result.query, "evidence": evidence or {}}
        if result.safety_question:
            meta["safety_question"] = result.safety_question  # read back when the answer comes
        if result.intake:
            meta["intake"] = result.intake  # the symptom intake continues from here
        if result.disposition:
            meta["disposition"] = result.disposition  # what a nurse handoff carries
        if result.handoff:
            meta["handoff"] = result.handoff
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
