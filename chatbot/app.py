"""THE wiring: settings in, services out. Every part the application is made of is built from
``Settings`` here and nowhere else (the CLI, the UI, the evaluation harness and the LangChain
adapters call these factories). Construction is cheap; models load on ``warm_up()`` or on first
use. The CLI and the UI receive these services and hold no logic of their own."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable

from chatbot.classifier.runtime import EncoderPool
from chatbot.engine.routing import Router, RoutingConfig
from chatbot.engine.service import ConsultationService
from chatbot.llm import make_generator
from chatbot.llm.base import Generator
from chatbot.prompts import PromptLibrary
from chatbot.protocols import Classifier, NoClassifier, NoSafetyScreen, SafetyScreen
from chatbot.settings import PROJECT_ROOT, Settings, load_settings
from chatbot.staff.admin import AdminService
from chatbot.staff.accounts import AccountStore
from chatbot.staff.auth import NurseAuth
from chatbot.staff.nurse import NurseDesk
from chatbot.store import ChatStore
from chatbot.triage import TriageEngine
from knowledge_base.embedders import make_embedder
from knowledge_base.retriever import Retriever


def settings_with(settings: Settings | None = None, **sections: dict[str, Any]) -> Settings:
    """A copy of ``settings`` (default: loaded) with per-section overrides, e.g.
    ``settings_with(llm={"backend": "fake"}, paths={"index_dir": p})``; ``None`` values are
    skipped, so CLI options that were not given change nothing."""
    s = (settings or load_settings()).model_copy(deep=True)
    for section, fields in sections.items():
        target = getattr(s, section)
        for name, value in fields.items():
            if value is not None:
                setattr(target, name, value)
    return s


def make_retriever(s: Settings, index: Path | None = None, embedder: str | None = None,
                   method: str | None = None) -> Retriever:
    """The hybrid retriever over ``index`` (default ``paths.index_dir``). ``embedder`` names a
    query embedder other than the index's own; ``method`` overrides ``retrieval.method``."""
    config = replace(s.retrieval, method=method) if method else s.retrieval
    if embedder is None and s.kb.embedder != "use-multilingual":
        embedder = s.kb.embedder
    emb = make_embedder(embedder, threads=config.query_threads, device=s.kb.device) if embedder else None
    return Retriever(index if index is not None else s.paths.index_dir, embedder=emb, config=config,
                     index_config=s.kb.index)


def build_index_from_settings(s: Settings, sources: list[Path] | None = None, index: Path | None = None,
                              embedder: str | None = None, full: bool = False, progress: bool | None = None,
                              on_progress: Callable[[str, int, int], None] | None = None) -> Any:
    """Build or update an index with the settings' chunker, index and embedder (``medchat setup``,
    ``kb build`` and the operator panel's rebuild all come here)."""
    from knowledge_base.builder import build_index

    emb = make_embedder(embedder or s.kb.embedder, threads=s.kb.index.threads, device=s.kb.device)
    return build_index(sources if sources is not None else s.paths.corpus,
                       index if index is not None else s.paths.index_dir, emb, s.kb.chunker, s.kb.index,
                       full=full, progress=progress, on_progress=on_progress)


def store_target(s: Settings) -> Path | str:
    """Where the store lives: ``store.url`` (Postgres) when set, else the file ``paths.database``."""
    return s.store.url.get_secret_value() or s.paths.database


def make_store(s: Settings) -> ChatStore:
    """The conversation store: Postgres at ``store.url``, else SQLite at ``paths.database``."""
    return ChatStore(store_target(s))


def keys_target(s: Settings) -> Path | str:
    """Where the API keys live: in the Postgres store (shared by replicas), else ``api.keys_db``."""
    return s.store.url.get_secret_value() or s.api.keys_db


def make_safety_screen(settings: Settings, prompts: PromptLibrary | None = None,
                       enabled: bool | None = None, detector: bool = True,
                       encoders: EncoderPool | None = None) -> SafetyScreen:
    """The red-flag screen of ``settings.safety`` (rules load lazily), or the explicit
    pass-through when ``safety.enabled`` is false. ``enabled=True`` gives the real screen
    whatever the setting (``medchat safety check`` and ``eval safety`` test the screen itself);
    ``detector=False`` the lexicon alone (training the detector needs it as its partner)."""
    if not (settings.safety.enabled if enabled is None else enabled):
        return NoSafetyScreen()
    from chatbot.safety import RedFlagScreen

    model = None
    if detector and settings.safety.detector_dir:
        from chatbot.safety.detector import EmergencyDetector

        model = EmergencyDetector(settings.safety.detector_dir, encoders=encoders)
    return RedFlagScreen(settings.safety, prompts or PromptLibrary(), detector=model)


def make_triage_engine(s: Settings, retriever: Retriever | None = None, prompts: PromptLibrary | None = None,
                       screen: SafetyScreen | None = None, encoders: EncoderPool | None = None) -> TriageEngine:
    """The triage engine with the project's red-flag screen (``screen`` shares an already built
    one: one lexicon, loaded once), the learned second opinion when ``triage.opinion_dir`` is set
    (its encoder from ``encoders``, shared with the classifier and the detector) and the triage
    settings. Without a retriever it gives no evidence passages."""
    prompts = prompts or PromptLibrary()
    encoders = encoders or EncoderPool()  # the detector and the opinion share one USE
    screen = screen or make_safety_screen(s, prompts, encoders=encoders)
    opinion = None
    if s.triage.opinion_dir:  # an empty setting is None (TriageSettings)
        from chatbot.triage.learned import LearnedTriage

        folder = Path(s.triage.opinion_dir)
        opinion = LearnedTriage(folder if folder.is_absolute() else PROJECT_ROOT / folder,
                                similar_cases=s.triage.similar_cases, encoders=encoders)
    return TriageEngine(screen=None if isinstance(screen, NoSafetyScreen) else screen,
                        retriever=retriever, prompts=prompts, settings=s.triage, opinion=opinion)


def make_classifier(s: Settings, encoders: EncoderPool | None = None) -> Classifier:
    """The trained classifier (loaded on first use) or, when disabled, the pass-through."""
    if not s.classifier.enabled:
        return NoClassifier()
    from chatbot.classifier.runtime import TrainedClassifier

    return TrainedClassifier(s.classifier.model_dir, intent_threshold=s.classifier.intent_threshold,
                             emotion_threshold=s.classifier.emotion_threshold, encoders=encoders)


@dataclass
class App:
    settings: Settings
    retriever: Retriever
    generator: Generator
    store: ChatStore
    prompts: PromptLibrary
    service: ConsultationService
    safety: SafetyScreen | None = None
    triage: TriageEngine | None = None
    classifier: Classifier | None = None


def build_app(settings: Settings | None = None, *, generator: Generator | None = None,
              retriever: Retriever | None = None, store: ChatStore | None = None,
              classifier: Classifier | None = None) -> App:
    s = settings or load_settings()
    retriever = retriever or make_retriever(s)
    generator = generator or make_generator(s.llm)
    store = store or make_store(s)
    prompts = PromptLibrary()
    # One pool: the detector and the classifier share USE (loaded once, one encoding a message).
    encoders = EncoderPool()
    safety = make_safety_screen(s, prompts, encoders=encoders)
    triage = make_triage_engine(s, retriever=retriever, prompts=prompts, screen=safety, encoders=encoders)
    classifier = classifier or make_classifier(s, encoders)
    router = Router(prompts, RoutingConfig(route_min_score=s.classifier.route_min_score,
                                           tone_min_score=s.classifier.tone_min_score,
                                           section_hint=s.classifier.section_hint))
    service = ConsultationService(retriever=retriever, generator=generator, store=store,
                                  prompts=prompts, chat=s.chat, llm=s.llm, safety=safety,
                                  triage=triage, classifier=classifier, router=router)
    return App(s, retriever, generator, store, prompts, service, safety, triage, classifier)


@dataclass
class Staff:
    """The staff side of the browser app: nurse login, triage console, operator panel."""

    auth: NurseAuth
    nurse: NurseDesk
    admin: AdminService


def build_staff(app: App) -> Staff:
    """Wire the staff services on top of ``app`` (cheap: nothing loads here)."""
    ui = app.settings.ui
    auth = NurseAuth(ui.nurse_user, password=ui.nurse_password.get_secret_value(),
                     password_hash=ui.nurse_password_hash, timeout_s=ui.session_timeout_min * 60,
                     # failures, lockouts and logins go to the audit events (review finding a)
                     on_event=lambda kind, payload: app.store.log_event(kind, payload),
                     # individual accounts (`medchat staff add`), shared by every replica
                     accounts=AccountStore(app.store.db))
    return Staff(auth=auth, nurse=NurseDesk(app.store, app.prompts, app.triage),
                 admin=AdminService(app, build=lambda full, on_progress: build_index_from_settings(
                     app.settings, full=full, progress=False, on_progress=on_progress)))
