"""Shared fixtures and deterministic fakes.

The hash embedder (``knowledge_base.embedders.HashEmbedder``) is the fake embedder: texts that
share words get similar vectors, so ranking tests are meaningful without a model.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from knowledge_base.embedders import HashEmbedder

# A small bilingual corpus: English guideline-like texts and Chinese QA, each with a clear topic.
EN_DOCS = [
    {"id": "asthma", "title": "Asthma", "question": "How is asthma treated?", "section": "treatment",
     "text": "Asthma is treated with inhaled corticosteroids that control airway inflammation. "
             "A rescue inhaler with albuterol relieves sudden wheezing and shortness of breath."},
    {"id": "gout", "title": "Gout", "question": "What causes gout?", "section": "causes",
     "text": "Gout is caused by uric acid crystals that build up in a joint, often the big toe. "
             "Red meat, seafood and alcohol raise uric acid levels."},
    {"id": "glaucoma", "title": "Glaucoma", "question": "What are the symptoms of glaucoma?",
     "section": "symptoms",
     "text": "Glaucoma slowly damages the optic nerve. Early glaucoma has no symptoms; later, side "
             "vision is lost. Regular eye exams with eye pressure tests find it early."},
    {"id": "hypertension", "title": "High Blood Pressure", "section": "treatment",
     "question": "What are the treatments for high blood pressure?",
     "text": "High blood pressure (hypertension) is treated with lifestyle changes such as less "
             "salt, regular exercise and weight loss, and with blood pressure medicines."},
]
ZH_DOCS = [
    {"id": "zh_diabetes", "title": "糖尿病饮食", "question": "糖尿病人能吃水果吗？", "lang": "zh",
     "text": "糖尿病患者可以适量吃含糖量低的水果，比如苹果、柚子，应在两餐之间吃，并监测血糖。"},
    {"id": "zh_gastritis", "title": "胃炎", "question": "慢性胃炎怎么治疗？", "lang": "zh",
     "text": "慢性胃炎要规律饮食，少吃辛辣刺激食物，幽门螺杆菌阳性者需要根除治疗。"},
]


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture
def corpus_dir(tmp_path: Path) -> Path:
    root = tmp_path / "corpus"
    root.mkdir()
    write_jsonl(root / "en.jsonl", [dict(d, source="Test/EN", url=f"https://example.org/{d['id']}")
                                    for d in EN_DOCS])
    write_jsonl(root / "zh.jsonl", [dict(d, source="Test/ZH") for d in ZH_DOCS])
    return root


@pytest.fixture
def hash_embedder() -> HashEmbedder:
    return HashEmbedder(64)


@pytest.fixture
def built_index(tmp_path: Path, corpus_dir: Path, hash_embedder: HashEmbedder) -> Path:
    from knowledge_base.builder import build_index

    index = tmp_path / "index"
    build_index([corpus_dir], index, hash_embedder, progress=False)
    return index


# -- the store on both engines (see tests/postgres.py) -----------------------------------------
@pytest.fixture
def postgres_url(request: pytest.FixtureRequest) -> str:
    """A real Postgres URL whose search_path is a new, empty schema."""
    from tests.postgres import fresh_schema_url

    return fresh_schema_url(request)


@pytest.fixture(params=["sqlite", "postgres"])
def store_target(request: pytest.FixtureRequest, tmp_path: Path) -> Path | str:
    """Where a ChatStore lives: an SQLite file, then a Postgres schema — every test that takes
    this fixture runs on both engines."""
    if request.param == "sqlite":
        return tmp_path / "chat.sqlite"
    return request.getfixturevalue("postgres_url")
