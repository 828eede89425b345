"""One settings object for the whole application.

Read in this order, later wins: defaults in code -> ``settings.yaml`` -> environment variables
``MEDCHAT_<SECTION>__<FIELD>`` (e.g. ``MEDCHAT_KB__EMBEDDER=minilm``,
``MEDCHAT_RETRIEVAL__METHOD=bm25``) -> explicit overrides (CLI options).

The YAML file is ``$MEDCHAT_SETTINGS`` when set, else ``./settings.yaml`` when present, else the
project's own ``settings.yaml``. Relative paths inside are resolved against the project root.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from knowledge_base.config import ChunkerConfig, IndexConfig, RetrievalConfig
from knowledge_base.paths import DATA_DIR, EVAL_DIR, PROJECT_ROOT

# Every shipped data file the code reads by default, in one place (see knowledge_base.paths).
PROMPTS_DIR = DATA_DIR / "prompts"
SAFETY_RULES_FILE = DATA_DIR / "safety" / "rules.yaml"
TRIAGE_RULES_DIR = DATA_DIR / "triage"
DEPARTMENTS_FILE = DATA_DIR / "classifier" / "departments.yaml"
AVEY_LABELS_FILE = EVAL_DIR / "avey_triage_labels.yaml"


def project_relative(path: Path) -> str:
    """A path as written from the project root (``data/...``, ``../shared/data``), so that files
    committed with paths in them (model cards, the report) read the same on every machine."""
    # As given first: ../shared is often a symlink, and resolving it would leave the project.
    for candidate in (Path(path).absolute(), Path(path).resolve()):
        for base, prefix in ((PROJECT_ROOT, ""), (PROJECT_ROOT.parent, "../")):
            try:
                return prefix + str(candidate.relative_to(base))
            except ValueError:
                continue
    return str(path)


def settings_file() -> Path | None:
    env = os.environ.get("MEDCHAT_SETTINGS")
    if env:
        return Path(env)
    for candidate in (Path.cwd() / "settings.yaml", PROJECT_ROOT / "settings.yaml"):
        if candidate.is_file():
            return candidate
    return None


class PathSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    corpus: list[Path] = Field(default_factory=lambda: [Path("data/corpus")], description=(
        "Source files or directories of the default knowledge base (read recursively)."))
    index_dir: Path = Field(default=Path("data/index/default"), description=(
        "Index directory used when a command gets no --index."))
    database: Path = Field(default=Path("data/medchat.sqlite"), description=(
        "SQLite file of sessions, messages, feedback, events and triage records (WAL mode)."))

    @field_validator("corpus", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, (str, Path)) else value

    def resolved(self, root: Path) -> "PathSettings":
        def fix(p: Path) -> Path:
            p = p.expanduser()
            return p if p.is_absolute() else (root / p)

        return PathSettings(corpus=[fix(p) for p in self.corpus], index_dir=fix(self.index_dir),
                            database=fix(self.database))


class StoreSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: SecretStr = Field(default=SecretStr(""), description=(
        "Database of sessions, messages, feedback, events, triage records, staff accounts and (with "
        "Postgres) API keys. Empty (the default): the embedded SQLite file paths.database. "
        "postgresql://user:password@host:5432/dbname for a deployment whose replicas share one store "
        "(needs psycopg: pip install -e \".[postgres]\"); tables are created and migrated on start. "
        "It holds a password: set it as MEDCHAT_STORE__URL rather than in settings.yaml."))

    @field_validator("url")
    @classmethod
    def _postgres_only(cls, value: SecretStr) -> SecretStr:
        url = value.get_secret_value()
        if url and url.split(":", 1)[0].lower() not in ("postgresql", "postgres"):
            raise ValueError("store.url must be empty (SQLite at paths.database) or a postgresql:// URL")
        return value

    @property
    def postgres(self) -> bool:
        return bool(self.url.get_secret_value())


class KBSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    embedder: str = Field(default="use-multilingual", description=(
        "use-multilingual (default, zh+en, offline) | minilm (English, offline) | "
        "st:<HF id or local path> | hash (tests only)."))
    device: str = Field(default="cpu", description="Device for sentence-transformers embedders (cpu, cuda).")
    chunker: ChunkerConfig = Field(default_factory=ChunkerConfig)
    index: IndexConfig = Field(default_factory=IndexConfig)


class LLMSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    backend: Literal["llamacpp", "transformers", "openai", "fake"] = Field(default="llamacpp", description=(
        "llamacpp: GGUF on CPU via llama-cpp-python (fast default) | transformers: any HF causal "
        "LM (+ peft adapter) | openai: an OpenAI-compatible server (vLLM, TGI, Ollama, "
        "llama.cpp server) | fake: deterministic, tests only."))
    model: str = Field(default="gemma3-270m", description=(
        "gemma3-270m | smollm2-135m (models shipped in PyPI packages), a local path (directory or "
        ".gguf file) or an HF id (needs network or a filled cache). For openai: the served model name."))
    gguf_file: str = Field(default="", description="transformers backend: GGUF file inside the model directory, dequantised on load.")
    adapter: str = Field(default="auto", description=(
        "LoRA adapter: auto = the project's finetuned adapter of the model when it ships one "
        "(gemma3-270m: data/models/lora-gemma3-270m), none (or empty) = the base model, or a path: "
        "GGUF LoRA file (llamacpp) / peft directory (transformers); relative to the project root."))
    device: str = Field(default="cpu", description="transformers: cpu | cuda | auto (device_map).")
    dtype: Literal["float32", "bfloat16", "float16"] = Field(default="float32", description="transformers: weights dtype (bfloat16/float16 on GPU).")
    load_in_4bit: bool = Field(default=False, description="transformers: 4-bit via bitsandbytes; needs CUDA and the [gpu] extra.")
    n_ctx: int = Field(default=4096, ge=512, description="Context window used for prompts (tokens); history and passages are budgeted to fit.")
    n_threads: int = Field(default=0, ge=0, description="llamacpp: CPU threads, 0 = all cores.")
    extra_buffers: bool = Field(default=False, description=(
        "llamacpp: let llama.cpp use its extra CPU buffer types (AMX tiles, repacked weights). Off by "
        "default: in a VM that reports AMX without enabling it the first generation kills the "
        "process (general protection fault in ggml_backend_amx_mul_mat). Turn on on bare metal."))
    base_url: str = Field(default="http://127.0.0.1:8080/v1", description="openai: server base URL.")
    api_key: str = Field(default="", description="openai: API key (prefer the MEDCHAT_LLM__API_KEY variable).")
    max_tokens: int = Field(default=256, ge=16, description="Longest answer in tokens (~150 English words or ~250 Chinese characters, as the prompts ask).")
    temperature: float = Field(default=0.0, ge=0.0, le=2.0, description="0 = greedy: reproducible answers.")
    repeat_penalty: float = Field(default=1.1, ge=1.0, description="Discourages the loops small models fall into.")
    timeout_s: float = Field(default=60.0, gt=0, description="Wall-clock budget of one generation; past it the extractive fallback answers.")
    max_concurrent: int = Field(default=1, ge=1, le=256, description=(
        "Answers the model generates at once in one process; further turns wait in line, are told "
        "how many are ahead of them (the chat shows it) and start their timeout_s budget when their "
        "turn comes. 1 for the in-process CPU model, which generates one answer at a time anyway; "
        "raise it for an openai server that batches (vLLM). Emergencies never wait: they do not "
        "reach the model."))


class ChatSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    symptom_intake: bool = Field(default=True, description=(
        "When a message describes the patient's own (or a relative's) symptoms and the triage engine "
        "lacks facts for a disposition, ask one to three fixed follow-up questions (the complaint's "
        "red-flag check, age, onset, severity; data/triage/intake.yaml) before giving it. false: the "
        "one-line disposition from the first message only."))
    passages: int = Field(default=3, ge=1, le=20, description=(
        "Passages given to the model. 3 x 160 tokens keeps the prompt near 700 tokens, which "
        "llama.cpp prefills in ~1.4 s on 2 cores (the 1.5 s first-token target); the top 3 "
        "hold the answer for most dev questions (retrieval recall@3 vs @5 in docs/EVALUATION.md)."))
    passage_tokens: int = Field(default=160, ge=32, le=2000, description=(
        "Each passage is cut to this many tokens in the prompt (whole passages stay in the "
        "sources list). ~160 tokens is one MedQuAD paragraph or ~250 Chinese characters."))
    disclaimer_once: bool = Field(default=False, description=(
        "Close only the first answer of a conversation with the disclaimer instead of every "
        "answer. `medchat serve` turns it on: its footer shows a short disclaimer all the time, "
        "and one repeated under every answer becomes noise that patients learn to skip."))
    history_turns: int = Field(default=6, ge=0, description="Earlier exchanges considered for the prompt (then budgeted).")
    max_input_chars: int = Field(default=4000, ge=100, description=(
        "Longer messages are refused with a clear message: a pasted record of 100k characters "
        "cannot be answered well, and the patient is asked for the main question."))
    min_dense_evidence_en: float = Field(default=0.47, ge=0, le=1, description=(
        "An English question whose best dense cosine among the top passages is below this gets "
        "'no reliable source' instead of a generated answer (unless every content word of the "
        "question appears in a top passage). Calibrated on 160 answerable dev questions vs 30 "
        "unanswerable: 1.2% answerable refused, 83% unanswerable refused (docs/EVALUATION.md)."))
    min_dense_evidence_zh: float = Field(default=0.58, ge=0, le=1, description=(
        "The same for Chinese questions; USE cosines run higher for Chinese text. Calibrated: "
        "0.7% answerable refused, 90% unanswerable refused."))
    min_overlap_evidence: float = Field(default=1.0, ge=0, le=1, description=(
        "Share of the question's content words found in one top passage that counts as evidence "
        "on its own. Partial overlap did not separate answerable from unanswerable questions "
        "(short off-topic questions share words by chance), so only full overlap rescues."))
    overrule_model_refusal: bool = Field(default=True, description=(
        "When retrieval passed the evidence gate and the model still says it has no reliable "
        "source, answer with the composed extract of the passages instead (flag "
        "`model_refused`). The gate decides whether the library covers the topic; small models "
        "refuse questions their passages answer (the shipped LoRA learned to). false = trust the "
        "model's refusal. Measured in docs/EVALUATION.md."))
    overrule_refusal_min_dense_en: float = Field(default=0.62, ge=0, le=1.01, description=(
        "With overrule_model_refusal: an English question whose best dense cosine reaches this "
        "has its model refusal overruled even when it does not name a page's title. On blind "
        "answer round 3 the model's refusals past the evidence gate at >= 0.62 were wrong 5 "
        "times out of 7 (answerable questions); below it, right 7 times out of 11."))
    overrule_refusal_min_dense_zh: float = Field(default=1.01, ge=0, le=1.01, description=(
        "The same for Chinese questions; 1.01 = never: on round 3 the cosine did not separate "
        "the model's right refusals from its wrong ones (4 and 4)."))
    answer_extract: bool = Field(default=True, description=(
        "Follow the model's (checked) answer with the composed extract: the sentences of the "
        "passages whose section answers the question's type, each cited (flag `extract_added`). "
        "A small model's answer is one or two sentences; the extract makes it complete. false = "
        "the model's text alone. Measured in docs/EVALUATION.md."))
    combination_check: bool = Field(default=True, description=(
        "A question about taking two things together (\"ibuprofen with warfarin\", \"头孢和酒\") is "
        "answered only when a passage speaks of the pair; otherwise the reply names the pair the "
        "library does not cover and sends the patient to a pharmacist (flags "
        "`combination_not_covered`, `no_evidence`). false = answer from what the passages say of "
        "each. Measured in docs/EVALUATION.md."))
    detail_check: bool = Field(default=True, description=(
        "A question about one detail of a topic (contagion, a missed dose, a drug's side effects, "
        "when to take it, safety in pregnancy; cues in data/prompts/details.yaml) is answered only "
        "when a passage sentence speaks of that detail on the topic, after one focused second "
        "search (flag `detail_requery`); otherwise the reply says the library does not hold that "
        "detail (flags `detail_not_covered`, `detail_<kind>`, `no_evidence`). false = answer from "
        "the topic's pages. Measured in docs/EVALUATION.md."))


class UISettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    host: str = Field(default="127.0.0.1", description=(
        "Address `medchat serve` listens on. 127.0.0.1 keeps it local; 0.0.0.0 exposes it (put "
        "it behind TLS first: the nurse login travels in clear otherwise)."))
    port: int = Field(default=7860, ge=1, le=65535, description="Port of `medchat serve` (Gradio's usual 7860).")
    nurse_user: str = Field(default="nurse", min_length=1, description="User name of the nurse triage console.")
    nurse_password: SecretStr = Field(default=SecretStr(""), description=(
        "Nurse console password in clear; set it only through the MEDCHAT_UI__NURSE_PASSWORD "
        "variable, never in settings.yaml. There is no default: with neither this nor "
        "nurse_password_hash set, the console stays closed and says how to configure it."))
    nurse_password_hash: str = Field(default="", description=(
        "Alternative to nurse_password: a pbkdf2_sha256$iterations$salt$hash string printed by "
        "`medchat hash-password` (safe to keep in settings.yaml)."))
    session_timeout_min: float = Field(default=30.0, gt=0, description=(
        "A nurse login expires after this many minutes without console activity."))
    concurrency_limit: int = Field(default=8, ge=1, description=(
        "Chat turns handled at once (Gradio queue workers). Turns inside wait for the model in "
        "MedChat's own line (llm.max_concurrent), which tells the patient in their language how "
        "many are ahead and does not eat the llm.timeout_s budget; an emergency among them is "
        "answered at once (it never reaches the model). Turns beyond this wait in Gradio's queue "
        "(numbers only). Before that line existed, 4 workers on a busy 2-core machine made 24 of "
        "40 answers run out of time waiting in the model lock (docs/UI.md)."))
    max_queue: int = Field(default=100, ge=1, description=(
        "Requests allowed to wait in the queue; beyond it a user is told the service is busy."))

class APISettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    host: str = Field(default="127.0.0.1", min_length=1, description=(
        "Address `medchat api` listens on. 127.0.0.1 keeps it local; 0.0.0.0 exposes it (put it "
        "behind TLS first: API keys travel in the Authorization header)."))
    port: int = Field(default=8000, ge=1, le=65535, description="Port of `medchat api`.")
    keys_db: Path = Field(default=Path("data/api_keys.sqlite"), description=(
        "SQLite file of the API keys (only their SHA-256, never the key itself) and of which key "
        "opened which chat session, when store.url is empty (with Postgres the keys live in the store, "
        "shared by the replicas); created owner-only (0600). `medchat api key create|list|revoke` "
        "manage it."))
    rate_limit_per_minute: int = Field(default=60, ge=0, description=(
        "Requests one key may make per minute (token bucket: bursts up to this many, refilled "
        "evenly); over it the API answers 429 with Retry-After. 0 = no limit. Counted per server "
        "process: with `workers` > 1 a key may get up to workers x this."))
    max_request_bytes: int = Field(default=262_144, ge=1024, le=64 * 1024 * 1024, description=(
        "Largest request body accepted (413 beyond it), checked before the body is parsed. "
        "256 KiB holds a long conversation (a message is at most chat.max_input_chars, 4000 "
        "characters, about 12 KB of UTF-8 Chinese) with room to spare."))
    cors_origins: list[str] = Field(default_factory=list, description=(
        "Browser origins allowed to call the API (CORS), e.g. [\"https://portal.example.org\"] "
        "(as an environment variable a JSON list: MEDCHAT_API__CORS_ORIGINS='[\"https://...\"]'); "
        "\"*\" allows any. Empty (the default) = CORS off: browsers on other sites cannot call it."))
    workers: int = Field(default=1, ge=1, le=32, description=(
        "Server processes. Each loads its own models (~1 GB RSS with the default model), and the "
        "CPU model answers one question at a time per process, so more than one only helps with "
        "several cores or the `openai` backend."))

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @field_validator("cors_origins")
    @classmethod
    def _origins(cls, value: list[str]) -> list[str]:
        # An origin is scheme://host[:port], nothing after it: a path or a trailing slash never
        # matches the browser's Origin header, which would turn CORS off without a word.
        for origin in value:
            if origin != "*" and not re.fullmatch(r"https?://[^/\s:]+(:[0-9]{1,5})?", origin):
                raise ValueError(f"cors origin {origin!r} must be '*' or scheme://host[:port] "
                                 "(no path, no trailing slash)")
        return value

    def resolved(self, root: Path) -> "APISettings":
        path = self.keys_db.expanduser()
        return self.model_copy(update={"keys_db": path if path.is_absolute() else root / path})


class TriageSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    rules_dir: Path = Field(default=Path("data/triage"), description=(
        "Folder of the triage rule files (vitals.yaml, presentations.yaml, modifiers.yaml, "
        "departments.yaml); relative paths are resolved against the project root."))
    evidence_passages: int = Field(default=3, ge=0, le=10, description=(
        "Supporting guideline passages retrieved per triage (0 = none). Three fit on the nurse "
        "console next to the reasons and cost one retrieval (~10-50 ms)."))
    chat_disposition: bool = Field(default=True, description=(
        "Add a one-line disposition (\"see a doctor today\" / \"可在家观察\") to patient-chat answers "
        "when the message describes the patient's own current symptoms."))
    opinion_dir: Optional[Path] = Field(default=Path("data/models/triage"), description=(
        "The learned second opinion (`medchat train triage`): labelled vignettes over USE "
        "embeddings. It only raises a case the rules did not call an emergency to acuity 2 when "
        "P(emergency) reaches its fixed threshold (reason kind `learned`), and shows the nearest "
        "labelled cases; it never lowers a level. Empty = the rules alone. Measured in docs/TRIAGE.md."))
    similar_cases: int = Field(default=3, ge=0, le=10, description=(
        "Nearest labelled vignettes shown with a triage as \"similar cases\" (0 = none)."))

    @field_validator("opinion_dir", mode="before")
    @classmethod
    def _empty_is_off(cls, value: Any) -> Any:
        return None if value in ("", None) else value

EMERGENCY_NUMBERS = {"cn": "120", "us": "911", "eu": "112"}
# Crisis lines, checked against public notices (docs/SAFETY_SOURCES.md): China's national
# psychological assistance line 12356 (NHC notice of Dec 2024, connected nationwide by 1 May 2025;
# Beijing's former lines now route to it); 988 Suicide & Crisis Lifeline (US, since 2022). The EU
# has no single crisis line: 116 123 is the harmonised emotional-support number where a member
# state runs it, and 112 always works.
DEFAULT_CRISIS_LINES = {
    "cn": "12356（全国统一心理援助热线 / national psychological assistance line）",
    "us": "988 (Suicide & Crisis Lifeline, call or text)",
    "eu": "116 123 (emotional support, where available) or 112",
}


class SafetySettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    enabled: bool = Field(default=True, description=(
        "Run the deterministic red-flag screen on every patient message before retrieval. "
        "false = the explicit pass-through (replies carry the flag safety_screen_off)."))
    locale: Literal["cn", "us", "eu"] = Field(default="cn", description=(
        "Where the service runs; picks the default emergency number (cn 120, us 911, eu 112) "
        "and crisis line."))
    emergency_number: str = Field(default="", description=(
        "Overrides the locale's emergency number in escalation messages (empty = by locale)."))
    crisis_line: dict[str, str] = Field(default_factory=lambda: dict(DEFAULT_CRISIS_LINES), description=(
        "Crisis line per locale, shown for self-harm (and overdose) hits. Keys cn, us, eu; "
        "sources in docs/SAFETY_SOURCES.md."))
    rules_file: Path = Field(default=Path("data/safety/rules.yaml"), description=(
        "The red-flag rules and lexicon (YAML; docs/SAFETY.md explains the format)."))
    detector_dir: Optional[Path] = Field(default=Path("data/models/emergency"), description=(
        "The meaning-based emergency detector beside the lexicon (OR-combined; its unsure band asks "
        "one fixed safety question), written by `medchat train safety`; empty = the lexicon alone."))
    lexicon_veto_below: float = Field(default=0.05, ge=0.0, lt=0.3, description=(
        "A lexicon hit whose detector score is below this asks the safety question instead of "
        "escalating (self-harm hits and a child's ingestions always escalate); 0 = every lexicon hit escalates. On six blind "
        "rounds 0.05 turned 1 of 828 caught emergencies into a question and 27 of 55 false alarms."))

    @field_validator("emergency_number")
    @classmethod
    def _dialable(cls, value: str) -> str:
        value = value.strip()
        if value and not re.fullmatch(r"[0-9+][0-9 \-]{1,19}", value):
            raise ValueError(f"emergency_number must be a dialable number, got {value!r}")
        return value

    def number(self) -> str:
        """The emergency number shown to patients."""
        return self.emergency_number or EMERGENCY_NUMBERS[self.locale]

    def crisis(self) -> str:
        """The crisis line for self-harm messages (the emergency number if none is set)."""
        return self.crisis_line.get(self.locale, "").strip() or self.number()

    @field_validator("detector_dir", mode="before")
    @classmethod
    def _empty_is_off(cls, value: Any) -> Any:
        return None if value in ("", None) else value

    def resolved(self, root: Path) -> "SafetySettings":
        def fix(path: Path) -> Path:
            path = path.expanduser()
            return path if path.is_absolute() else root / path

        return self.model_copy(update={"rules_file": fix(self.rules_file),
                                       "detector_dir": fix(self.detector_dir) if self.detector_dir else None})
class ClassifierSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    enabled: bool = Field(default=True, description=(
        "Run the intent/emotion classifier on every message (routing and tone). Off: the "
        "pass-through, and replies carry the flag classifier_off."))
    model_dir: Path = Field(default=Path("data/models/classifier"), description=(
        "Trained classifier directory (config.json + weights.npz), written by "
        "`medchat train classifier`; relative to the project root."))
    intent_threshold: Optional[float] = Field(default=None, ge=0, lt=1, description=(
        "Calibrated intent probability below which the intent is `other`; empty = the value "
        "chosen on held-back data at training time (config.json)."))
    emotion_threshold: Optional[float] = Field(default=None, ge=0, lt=1, description=(
        "Calibrated emotion probability below which the emotion is `neutral`; empty = the "
        "trained value."))
    route_min_score: float = Field(default=0.6, ge=0, le=1, description=(
        "A greeting / administrative / out_of_scope intent takes its short route (no retrieval, "
        "no model) only at this score or above; below it the message is answered as a medical "
        "question. A medical question wrongly refused costs more than a greeting answered "
        "from the library."))
    tone_min_score: float = Field(default=0.5, ge=0, le=1, description=(
        "Emotion score from which fear / sadness / anger set the answer's tone (opening line "
        "and prompt instruction)."))
    section_hint: bool = Field(default=True, description=(
        "Pass the medical intent to retrieval as a section hint (treatment -> MedQuAD "
        "'treatment' sections, cause -> 'causes', ...), which reorders near-ties only. On the "
        "retrieval dev sets recall@5 was unchanged and MRR@10 rose by 0.000-0.008 "
        "(docs/CLASSIFIER.md)."))


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MEDCHAT_", env_nested_delimiter="__",
                                      extra="forbid")
    paths: PathSettings = Field(default_factory=PathSettings)
    store: StoreSettings = Field(default_factory=StoreSettings)
    kb: KBSettings = Field(default_factory=KBSettings)
    retrieval: RetrievalConfig = Field(default_factory=RetrievalConfig)
    llm: LLMSettings = Field(default_factory=LLMSettings)
    chat: ChatSettings = Field(default_factory=ChatSettings)
    triage: TriageSettings = Field(default_factory=TriageSettings)
    safety: SafetySettings = Field(default_factory=SafetySettings)
    classifier: ClassifierSettings = Field(default_factory=ClassifierSettings)
    ui: UISettings = Field(default_factory=UISettings)
    api: APISettings = Field(default_factory=APISettings)

    @classmethod
    def settings_customise_sources(cls, settings_cls, init_settings, env_settings, dotenv_settings,
                                   file_secret_settings) -> tuple[PydanticBaseSettingsSource, ...]:
        from pydantic_settings import YamlConfigSettingsSource

        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        path = settings_file()
        if path is not None:
            sources.append(YamlConfigSettingsSource(settings_cls, yaml_file=path))
        return tuple(sources)


def load_settings(**overrides: Any) -> Settings:
    """Settings from YAML + environment, with relative paths resolved against the project root."""
    settings = Settings(**overrides)
    settings.paths = settings.paths.resolved(PROJECT_ROOT)
    settings.safety = settings.safety.resolved(PROJECT_ROOT)
    settings.api = settings.api.resolved(PROJECT_ROOT)
    if not settings.classifier.model_dir.is_absolute():
        settings.classifier.model_dir = PROJECT_ROOT / settings.classifier.model_dir.expanduser()
    return settings


def reference_markdown() -> str:
    """docs/CONFIGURATION.md, generated from the field descriptions so the docs cannot drift
    (a test compares the file with this output)."""
    import dataclasses

    lines = ["# Configuration reference", "",
             "Generated from the code by `python -m chatbot.settings > docs/CONFIGURATION.md`.",
             "Set a field in `settings.yaml` or with an environment variable "
             "`MEDCHAT_<SECTION>__<FIELD>` (nested sections joined with `__`), e.g. "
             "`MEDCHAT_KB__INDEX__USE_GPU=true`.", ""]

    def table(title: str, env: str, rows: list[tuple[str, object, str]]) -> None:
        lines.extend([f"## `{title}`", "", "| field | default | env | meaning |", "|---|---|---|---|"])
        for name, default, help_text in rows:
            cell = help_text.replace("|", "\\|")  # a bare | would split the Markdown cell
            lines.append(f"| `{name}` | `{default}` | `{env}__{name.upper()}` | {cell} |")
        lines.append("")

    def model_rows(model: type[BaseModel]) -> list[tuple[str, object, str]]:
        rows = []
        for name, f in model.model_fields.items():
            if dataclasses.is_dataclass(f.annotation):
                continue
            default = f.get_default(call_default_factory=True)
            if isinstance(default, list):
                default = [str(p) for p in default]
            rows.append((name, default, f.description or ""))
        return rows

    def dc_rows(cls) -> list[tuple[str, object, str]]:
        return [(f.name, f.default, f.metadata.get("help", "")) for f in dataclasses.fields(cls)]

    table("paths", "MEDCHAT_PATHS", model_rows(PathSettings))
    table("store", "MEDCHAT_STORE", model_rows(StoreSettings))
    table("kb", "MEDCHAT_KB", model_rows(KBSettings))
    table("kb.chunker", "MEDCHAT_KB__CHUNKER", dc_rows(ChunkerConfig))
    table("kb.index", "MEDCHAT_KB__INDEX", dc_rows(IndexConfig))
    table("retrieval", "MEDCHAT_RETRIEVAL", dc_rows(RetrievalConfig))
    table("llm", "MEDCHAT_LLM", model_rows(LLMSettings))
    table("chat", "MEDCHAT_CHAT", model_rows(ChatSettings))
    table("triage", "MEDCHAT_TRIAGE", model_rows(TriageSettings))
    table("safety", "MEDCHAT_SAFETY", model_rows(SafetySettings))
    table("classifier", "MEDCHAT_CLASSIFIER", model_rows(ClassifierSettings))
    table("ui", "MEDCHAT_UI", model_rows(UISettings))
    table("api", "MEDCHAT_API", model_rows(APISettings))
    return "\n".join(lines)


if __name__ == "__main__":
    print(reference_markdown())
