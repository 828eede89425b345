"""The emergency detector: a fixed-weight model on disk, its three bands, its OR-combination with
the lexicon inside RedFlagScreen, and the shipped model (slow) on messages the rules miss.

The fast tests use a hand-weighted model: zero dense weights (a zero embedder) and a few n-gram
weights set on purpose, so every expected score is computed here from the weights, not copied
from the implementation's output."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from chatbot.classifier.features import NGramConfig, hashed
from chatbot.safety import RedFlagScreen
from chatbot.safety.detector import DetectorError, DetectorModel, EmergencyDetector
from chatbot.settings import PROJECT_ROOT, SafetySettings

NGRAMS = NGramConfig(hash_dim=1 << 10, cjk_max_n=2, word_max_n=1, latin_char_max_n=0)
DIM = 8


class ZeroEmbedder:
    name, dim = "zero", DIM

    def warm_up(self) -> None:
        pass

    def encode(self, texts):
        return np.zeros((len(texts), DIM), dtype=np.float32)


def _bucket(gram: str) -> int:
    import zlib

    return zlib.crc32(gram.encode("utf-8")) & (NGRAMS.hash_dim - 1)


def hand_model(bias: float = -2.5) -> DetectorModel:
    w = np.zeros(NGRAMS.hash_dim, dtype=np.float32)
    w[_bucket("wzorbly")] = 12.0        # a strong emergency word
    w[_bucket("wblimfy")] = 5.0          # an unsure one
    cats = ["breathing", "cardiac"]
    c_sparse = np.zeros((NGRAMS.hash_dim, 2), dtype=np.float32)
    c_sparse[_bucket("wzorbly"), 0] = 3.0
    return DetectorModel(encoder="zero", dim=DIM, ngrams=NGRAMS, w_dense=np.zeros(DIM, np.float32), w_sparse=w,
                         bias=bias, categories=cats, c_dense=np.zeros((DIM, 2), np.float32), c_sparse=c_sparse,
                         c_bias=np.zeros(2, np.float32), threshold_high=0.7, threshold_low=0.3,
                         version="test-1", meta={"note": "hand weighted"})


def sigmoid_of(text: str, model: DetectorModel) -> float:
    idx, val = hashed(text, model.ngrams)
    z = model.bias + float(sum(v * model.w_sparse[i] for i, v in zip(idx, val)))
    return 1 / (1 + math.exp(-z))


@pytest.fixture
def detector(tmp_path):
    hand_model().save(tmp_path / "m")
    return EmergencyDetector(tmp_path / "m", embedder=ZeroEmbedder())


def test_bands_follow_the_fixed_thresholds(detector):
    m = hand_model()
    strong, unsure, clear = "he is zorbly", "a bit blimfy", "what helps a cold"
    # computed from the weights: 1 / (1 + e^-(bias + w * normalised count))
    assert sigmoid_of(strong, m) >= 0.7 > sigmoid_of(unsure, m) >= 0.3 > sigmoid_of(clear, m)
    assert detector.detect(strong).band == "emergency"
    assert detector.detect(unsure).band == "ask"
    assert detector.detect(clear).band == "clear"
    assert detector.detect(strong).category == "breathing"
    assert detector.detect("   ").band == "clear"
    # too short to stand on meaning alone: at most the question, never the banner
    assert detector.detect("zorbly").band == "ask" and detector.detect("hi").band == "clear"


def test_the_same_text_always_gets_the_same_score(detector):
    scores = {detector.detect("he is zorbly, blimfy").score for _ in range(5)}
    assert len(scores) == 1


def test_round_trip_keeps_weights_thresholds_and_version(tmp_path):
    m = hand_model()
    m.save(tmp_path / "m")
    back = DetectorModel.load(tmp_path / "m")
    assert (back.version, back.threshold_high, back.threshold_low) == ("test-1", 0.7, 0.3)
    assert back.meta == {"note": "hand weighted"}
    assert np.allclose(back.w_sparse, m.w_sparse, atol=1e-2)


@pytest.mark.parametrize("breakage", ["missing", "not_json", "bad_thresholds", "truncated"])
def test_a_broken_model_is_a_clear_domain_error(tmp_path, breakage):
    d = tmp_path / "m"
    hand_model().save(d)
    if breakage == "missing":
        (d / "weights.npz").unlink()
    elif breakage == "not_json":
        (d / "config.json").write_text("{half", encoding="utf-8")
    elif breakage == "bad_thresholds":
        cfg = json.loads((d / "config.json").read_text())
        cfg["threshold_low"] = 0.9
        (d / "config.json").write_text(json.dumps(cfg))
    else:
        (d / "weights.npz").write_bytes((d / "weights.npz").read_bytes()[:100])
    with pytest.raises(DetectorError) as exc:
        DetectorModel.load(d)
    assert exc.value.hint


def test_thresholds_must_be_ordered():
    with pytest.raises(DetectorError):
        DetectorModel(**{**hand_model().__dict__, "threshold_low": 0.8})


def screen_with(detector) -> RedFlagScreen:
    return RedFlagScreen(SafetySettings(), detector=detector)


def test_detector_escalates_what_the_lexicon_misses_and_says_so(detector):
    r = screen_with(detector).screen("he is zorbly", "en")
    assert r.emergency and r.via == "detector" and r.category == "breathing"
    assert r.rule_ids == ["detector:test-1"]
    assert r.detector["version"] == "test-1" and r.detector["threshold_high"] == 0.7
    assert "120" in r.message  # the fixed message of the category, with the number


def test_lexicon_hits_win_and_keep_their_rule_ids(detector):
    r = screen_with(detector).screen("my chest is crushing and I'm sweating, it started 20 minutes ago", "en")
    assert r.emergency and r.via == "lexicon"
    assert all(not rid.startswith("detector:") for rid in r.rule_ids)
    assert r.detector is not None  # the detector's verdict is logged beside the hit


@pytest.mark.parametrize("lang,expected_words", [("en", "breathing"), ("zh", "呼吸")])
def test_the_unsure_band_carries_one_fixed_bilingual_question(detector, lang, expected_words):
    r = screen_with(detector).screen("a bit blimfy", lang)
    assert not r.emergency and r.safety_question is not None
    q = r.safety_question
    assert expected_words in q["question"]
    assert [o["id"] for o in q["options"]] == ["yes", "no", "unsure"]
    assert all(o["label"] for o in q["options"])


def test_without_a_detector_the_screen_is_the_lexicon_alone():
    r = RedFlagScreen(SafetySettings()).screen("he is zorbly", "en")
    assert not r.emergency and r.detector is None and r.safety_question is None


# -- the shipped model ---------------------------------------------------------------------------
SHIPPED = PROJECT_ROOT / "data" / "models" / "emergency"


@pytest.fixture(scope="module")
def shipped():
    # the screen the app builds from the default settings: the shipped detector inside
    from chatbot.app import make_safety_screen
    from chatbot.settings import load_settings

    return make_safety_screen(load_settings()).detector


@pytest.mark.slow
def test_shipped_model_records_its_version_and_training_figures(shipped):
    cfg = json.loads((SHIPPED / "config.json").read_text(encoding="utf-8"))
    assert cfg["version"].startswith("emergency-lr-") and cfg["threshold_high"] > cfg["threshold_low"]
    assert cfg["metrics"]["cross_validated"]["recall"] > cfg["metrics"]["cross_validated"]["lexicon_recall"]


@pytest.mark.slow
@pytest.mark.parametrize("text", [
    "feels like an elephant is sitting on me, jaw aches too and i threw up",
    "my 2yo got into grandma's purse and ate some of her heart pills",
    "15 yo son woke up with sudden severe pain in one testicle and he's vomiting",
    "我爸喝了一口装在饮料瓶里的百草枯",
    "孩子一岁，腹泻一天十几次，现在哭的时候没有眼泪，尿也半天没有了",
])
def test_shipped_screen_escalates_or_asks_on_wording_the_issue_quoted(shipped, text):
    # Quoted in issue 14 as misses of the old lexicon (no training batch holds them verbatim): the
    # screen as the chat runs it, lexicon OR detector, escalates or asks the safety question.
    result = RedFlagScreen(SafetySettings(), detector=shipped).screen(text, "zh")
    assert result.emergency or result.safety_question is not None


@pytest.mark.slow
@pytest.mark.parametrize("text", [
    "What are the treatments for glaucoma?",
    "高血压患者能吃党参吗？",
    "Is there a sleep apnea surgery?",
    "孩子积食了怎么办",
])
def test_shipped_model_leaves_ordinary_questions_alone(shipped, text):
    assert shipped.detect(text).band == "clear"


def test_a_lexicon_hit_the_detector_is_sure_about_asks_instead(tmp_path):
    # bias -6: every message scores sigmoid(-6) = 0.0025, under the 0.05 veto
    hand_model(bias=-6.0).save(tmp_path / "sure")
    screen = screen_with(EmergencyDetector(tmp_path / "sure", embedder=ZeroEmbedder()))
    r = screen.screen("my chest is crushing and I'm sweating, it started 20 minutes ago", "en")
    assert not r.emergency and r.safety_question["group"] == "chest"
    assert r.detector["vetoed_rule_ids"] and r.detector["score"] < 0.05
    # self-harm always escalates: the crisis line is never withheld
    assert screen.screen("I want to end my life tonight", "en").emergency
    # so does a child's ingestion, in either language (minutes matter for batteries and magnets)
    assert screen.screen("孩子误服了老鼠要 吃了一小包", "zh").emergency
    assert screen.screen("my 2 year old swallowed a button battery", "en").emergency
    # the veto is a setting: 0 turns it off
    off = RedFlagScreen(SafetySettings(lexicon_veto_below=0.0),
                        detector=EmergencyDetector(tmp_path / "sure", embedder=ZeroEmbedder()))
    assert off.screen("my chest is crushing and I'm sweating, it started 20 minutes ago", "en").emergency
