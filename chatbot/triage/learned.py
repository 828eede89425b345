"""The learned second opinion of nurse triage: labelled vignettes over sentence embeddings.

A complaint becomes its USE-multilingual embedding (the encoder the classifier and the emergency
detector share); a multinomial logistic-regression head gives P(em), P(ne), P(sc), and the nearest
labelled vignettes are shown to the nurse as "similar cases". The engine uses it one way only:
when P(em) reaches the model's fixed ``threshold_em``, at least ``min_em_neighbours`` of the
``neighbours`` nearest labelled cases are emergencies, and the rules said "see a doctor" (acuity 3
or 4), a ``learned`` reason raises the case to acuity 2. The neighbour check keeps the head from
acting alone on wording it never saw: "burning when I pee, call me" scored P(em) 0.79 (the head
reads "call" as an ambulance) while its nearest cases are urinary infections. It never lowers a level and leaves a
rules' self-care result alone: the rules keep the final word on emergencies and on sending home.

Why one-way: on blind clinical vignettes the rule lexicon missed emergencies described in words
it lacks (round 8 at freeze: emergency recall 0.72), while the learned head, trained on earlier
rounds, recognised most of them; lowering levels was not measured to be safe. Trained by
``medchat train triage`` (``finetune.triage``); deterministic numpy inference, one thread.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from chatbot.classifier.model import CONFIG_FILE, WEIGHTS_FILE, read_artifact
from chatbot.classifier.runtime import LazyEncoderModel
from chatbot.errors import MedChatError

FORMAT_VERSION = 1
CLASSES = ("em", "ne", "sc")
CASES_FILE = "cases.jsonl"
TRAIN_HINT = "train it with `medchat train triage`, or set triage.opinion_dir to an empty value for the rules alone"
# Complaints are cut here before embedding: USE reads the first few hundred words, and an Avey-length
# history must not cost more than a message.
MAX_CHARS = 2000


class TriageModelError(MedChatError):
    """The learned triage model is missing or broken."""


@dataclass(frozen=True)
class SimilarCase:
    id: str
    expected: str          # em | ne | sc, the case's label
    text: str
    similarity: float      # cosine of the two embeddings

    def to_json(self) -> dict:
        return {"id": self.id, "expected": self.expected, "text": self.text,
                "similarity": round(self.similarity, 3)}


@dataclass(frozen=True)
class Opinion:
    probabilities: dict[str, float]     # em / ne / sc
    similar: list[SimilarCase]          # the nearest cases shown to the nurse
    version: str
    threshold_em: float
    em_neighbours: int = 0              # emergencies among the model's decision neighbours
    min_em_neighbours: int = 0
    threshold_sc: float = 1.0           # 1.0: this model never calls a case self-care
    sc_neighbours: int = 0              # self-care cases among the decision neighbours
    min_sc_neighbours: int = 0

    @property
    def emergency(self) -> bool:
        return self.probabilities["em"] >= self.threshold_em and self.em_neighbours >= self.min_em_neighbours

    @property
    def self_care(self) -> bool:
        """Labelled cases like this were self-care: P(sc) at the fixed threshold, enough self-care
        neighbours and no emergency among them."""
        return (self.probabilities["sc"] >= self.threshold_sc and self.sc_neighbours >= self.min_sc_neighbours
                and self.em_neighbours == 0)

    def to_json(self) -> dict:
        return {"probabilities": {k: round(v, 4) for k, v in self.probabilities.items()},
                "emergency": self.emergency, "threshold_em": self.threshold_em,
                "em_neighbours": self.em_neighbours, "min_em_neighbours": self.min_em_neighbours,
                "self_care": self.self_care, "threshold_sc": self.threshold_sc,
                "sc_neighbours": self.sc_neighbours, "min_sc_neighbours": self.min_sc_neighbours,
                "version": self.version, "similar_cases": [c.to_json() for c in self.similar]}


@dataclass
class TriageOpinionModel:
    encoder: str
    dim: int
    weights: np.ndarray        # (dim, 3) in CLASSES order
    bias: np.ndarray           # (3,)
    case_vectors: np.ndarray   # (N, dim), unit length
    cases: list[dict]          # {"id", "expected", "text"} per row of case_vectors
    threshold_em: float
    version: str
    meta: dict
    neighbours: int = 3          # nearest cases the decision looks at
    min_em_neighbours: int = 1   # of which at least this many must be emergencies
    threshold_sc: float = 1.0    # P(sc) from which a "routine" rules result may become self-care
    min_sc_neighbours: int = 0   # self-care cases needed among the neighbours for that

    def __post_init__(self) -> None:
        if not 0.0 < self.threshold_em < 1.0:
            raise TriageModelError(f"threshold_em must be in (0, 1), got {self.threshold_em}", hint=TRAIN_HINT)
        if not 0 <= self.min_em_neighbours <= self.neighbours or not 0 <= self.min_sc_neighbours <= self.neighbours:
            raise TriageModelError("min_em_neighbours and min_sc_neighbours must be between 0 and neighbours",
                                   hint=TRAIN_HINT)
        if not 0.0 < self.threshold_sc <= 1.0:
            raise TriageModelError(f"threshold_sc must be in (0, 1], got {self.threshold_sc}", hint=TRAIN_HINT)
        if self.weights.shape != (self.dim, len(CLASSES)) or self.bias.shape != (len(CLASSES),):
            raise TriageModelError("triage model weights do not match its config", hint=TRAIN_HINT)
        if self.case_vectors.shape != (len(self.cases), self.dim):
            raise TriageModelError("triage model cases do not match their vectors", hint=TRAIN_HINT)

    def probabilities(self, vector: np.ndarray) -> dict[str, float]:
        z = vector @ self.weights + self.bias
        p = np.exp(z - z.max())
        p = p / p.sum()
        return {c: float(v) for c, v in zip(CLASSES, p)}

    def similar(self, vector: np.ndarray, k: int) -> list[SimilarCase]:
        if k <= 0 or not self.cases:
            return []
        norm = float(np.linalg.norm(vector)) or 1.0
        sims = self.case_vectors @ (vector / norm)
        # ties broken by row order: the same text always shows the same cases
        order = np.argsort(-sims, kind="stable")[:k]
        return [SimilarCase(str(self.cases[i]["id"]), str(self.cases[i]["expected"]),
                            str(self.cases[i]["text"]), float(sims[i])) for i in order]

    def opinion(self, vector: np.ndarray, shown: int) -> Opinion:
        """The opinion on one embedded complaint, ``shown`` nearest cases kept for the nurse.
        The one place the decision rule lives: the engine and the training figures both use it."""
        near = self.similar(vector, max(self.neighbours, shown))
        em_near = sum(c.expected == "em" for c in near[:self.neighbours])
        sc_near = sum(c.expected == "sc" for c in near[:self.neighbours])
        return Opinion(self.probabilities(vector), near[:shown], self.version, self.threshold_em,
                       em_near, self.min_em_neighbours, self.threshold_sc, sc_near, self.min_sc_neighbours)

    def save(self, out_dir: Path) -> None:
        out_dir.mkdir(parents=True, exist_ok=True)
        tmp = out_dir / (WEIGHTS_FILE + ".tmp.npz")
        np.savez_compressed(tmp, weights=self.weights.astype(np.float32), bias=self.bias.astype(np.float32),
                            case_vectors=self.case_vectors.astype(np.float16))
        tmp.replace(out_dir / WEIGHTS_FILE)
        with (out_dir / CASES_FILE).open("w", encoding="utf-8") as f:
            for c in self.cases:
                f.write(json.dumps(c, ensure_ascii=False) + "\n")
        cfg = {"format_version": FORMAT_VERSION, "version": self.version, "encoder": self.encoder,
               "dim": self.dim, "classes": list(CLASSES), "threshold_em": self.threshold_em,
               "neighbours": self.neighbours, "min_em_neighbours": self.min_em_neighbours,
               "threshold_sc": self.threshold_sc, "min_sc_neighbours": self.min_sc_neighbours, **self.meta}
        (out_dir / CONFIG_FILE).write_text(json.dumps(cfg, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, model_dir: Path) -> TriageOpinionModel:
        model_dir = Path(model_dir)
        cfg, a = read_artifact(model_dir, FORMAT_VERSION, TriageModelError, "learned triage", TRAIN_HINT)
        try:
            if tuple(cfg["classes"]) != CLASSES:
                raise ValueError(f"classes {cfg['classes']} are not {list(CLASSES)}")
            cases = [json.loads(line) for line in
                     (model_dir / CASES_FILE).read_text(encoding="utf-8").splitlines() if line.strip()]
            known = {"format_version", "version", "encoder", "dim", "classes", "threshold_em", "neighbours",
                     "min_em_neighbours", "threshold_sc", "min_sc_neighbours"}
            return cls(encoder=str(cfg["encoder"]), dim=int(cfg["dim"]), weights=a["weights"], bias=a["bias"],
                       case_vectors=a["case_vectors"].astype(np.float32), cases=cases,
                       threshold_em=float(cfg["threshold_em"]), version=str(cfg["version"]),
                       meta={k: v for k, v in cfg.items() if k not in known},
                       neighbours=int(cfg.get("neighbours", 3)), min_em_neighbours=int(cfg.get("min_em_neighbours", 1)),
                       # models saved before the self-care opinion existed never lower a result
                       threshold_sc=float(cfg.get("threshold_sc", 1.0)),
                       min_sc_neighbours=int(cfg.get("min_sc_neighbours", 0)))
        except (KeyError, TypeError, ValueError, OSError) as exc:
            raise TriageModelError(f"incomplete learned triage model in {model_dir}: {exc!r}",
                                   hint=TRAIN_HINT) from exc


class LearnedTriage(LazyEncoderModel):
    """Lazy: construction reads nothing; the model and its encoder load on :meth:`warm_up` or
    the first complaint."""

    def __init__(self, model_dir: str | Path, *, similar_cases: int = 3, **kw) -> None:
        super().__init__(model_dir, **kw)
        self.similar_cases = similar_cases

    def _load_model(self) -> TriageOpinionModel:
        return TriageOpinionModel.load(self.model_dir)

    def opinion(self, text: str) -> Opinion:
        model = self.model  # first: loading the model is what brings its encoder
        vector = self._embedder.encode([(text or " ")[:MAX_CHARS]])[0]
        return model.opinion(vector, self.similar_cases)
