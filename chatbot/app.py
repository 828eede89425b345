"""One function wires the application: settings in, services out. Construction is cheap; models
load on ``warm_up()`` or on first use. The CLI and the UI receive these services and hold no
logic of their own."""

from __future__ import annotations

from dataclasses import dataclass

from knowledge_base.embedders import make_embedder
from knowledge_base.retriever import Retriever

from .admin import AdminService
from .auth import NurseAuth
from .hooks import Classifier, NoClassifier, NoSafetyScreen, SafetyScreen
from .llm import make_generator
from .llm.base import Generator
from .nurse import NurseDesk
from .prompts import PromptLibrary
from .routing import Router, RoutingConfig
from .service import ConsultationService
from .settings import Settings, load_settings
from .store import ChatStore
from .triage import TriageEngine, build_engine


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
    retriever = retriever or Retriever(
        s.paths.index_dir, config=s.retrieval, index_config=s.kb.index,
        embedder=None if s.kb.embedder == "use-multilingual" else
        make_embedder(s.kb.embedder, threads=s.retrieval.query_threads, device=s.kb.device))
    generator = generator or make_generator(s.llm)
    store = store or ChatStore(s.paths.database)
    prompts = PromptLibrary()
    safety = make_safety_screen(s, prompts)
    # the triage engine shares the service's red-flag screen (one lexicon, loaded once)
    triage = build_engine(s, retriever=retriever, prompts=prompts,
                          screen=safety if hasattr(safety, "hits") else None)
    classifier = classifier or make_classifier(s)
    router = Router(prompts, RoutingConfig(route_min_score=s.classifier.route_min_score,
                                           tone_min_score=s.classifier.tone_min_score,
                                           section_hint=s.classifier.section_hint))
    service = ConsultationService(retriever=retriever, generator=generator, store=store,
                                  prompts=prompts, chat=s.chat, llm=s.llm, safety=safety,
                                  triage=triage, classifier=classifier, router=router)
    return App(s, retriever, generator, store, prompts, service, safety, triage, classifier)


def make_safety_screen(settings: Settings, prompts: PromptLibrary | None = None) -> SafetyScreen:
    """The red-flag screen of ``settings.safety`` (rules load lazily), or the explicit
    pass-through when ``safety.enabled`` is false."""
    if not settings.safety.enabled:
        return NoSafetyScreen()
    from .safety import RedFlagScreen

    return RedFlagScreen(settings.safety, prompts or PromptLibrary())


def make_classifier(s: Settings) -> Classifier:
    """The trained classifier (loaded on first use) or, when disabled, the pass-through."""
    if not s.classifier.enabled:
        return NoClassifier()
    from .classifier.runtime import TrainedClassifier

    return TrainedClassifier(s.classifier.model_dir, intent_threshold=s.classifier.intent_threshold,
                             emotion_threshold=s.classifier.emotion_threshold)


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
                     password_hash=ui.nurse_password_hash, timeout_s=ui.session_timeout_min * 60)
    return Staff(auth=auth, nurse=NurseDesk(app.store, app.prompts, app.triage),
                 admin=AdminService(app))
