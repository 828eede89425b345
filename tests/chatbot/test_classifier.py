"""The classifier: taxonomy and dataset label names, features, a tiny trained head end to end
(save -> load -> classify), calibration pieces, bad input, missing or corrupt model files."""

from __future__ import annotations

import json

import numpy as np
import pytest

from chatbot.classifier.evaluation import evaluate_file, read_eval_file, score
from chatbot.classifier.features import NGramConfig, hashed, ngrams, normalise_text
from chatbot.classifier.labels import EMOTIONS, INTENTS, KUAKE_QIC, MEDQUAD_QTYPES, LabelError, normalise_label
from chatbot.classifier.model import ClassifierModel, Head, ModelError
from chatbot.classifier.runtime import TrainedClassifier
from finetune.classifier.train import TrainConfig, fit_temperature, pick_threshold, train_classifier
from knowledge_base.embedders import HashEmbedder
from tests.chatbot.classifier_fixtures import tiny_sets, train_tiny


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    out = tmp_path_factory.mktemp("clf") / "model"
    metrics = train_tiny(out)
    return out, metrics


def tiny_classifier(model_dir, **kw):
    return TrainedClassifier(model_dir, embedder=HashEmbedder(32), **kw)


# -- taxonomy ----------------------------------------------------------------------------
def test_kuake_names_map_one_to_one_onto_the_medical_intents():
    assert len(KUAKE_QIC) == 11 and len(set(KUAKE_QIC.values())) == 11
    assert normalise_label("intent", "病情诊断") == "diagnosis"
    assert normalise_label("intent", "其他") == "other"
    assert normalise_label("intent", "医疗费用") == "cost"
    assert normalise_label("intent", "Treatment") == "treatment"


def test_dataset_emotion_names_map_onto_ekman_keys():
    assert normalise_label("emotion", "happy") == "joy"
    assert normalise_label("emotion", "angry") == "anger"
    assert normalise_label("emotion", "sad") == "sadness"
    assert normalise_label("emotion", "fear") == "fear"
    assert normalise_label("emotion", "恐惧/焦虑") == "fear"
    with pytest.raises(LabelError, match="unknown emotion label 'bored'"):
        normalise_label("emotion", "bored")
    with pytest.raises(LabelError):
        normalise_label("intent", "happy")


def test_every_medquad_qtype_maps_to_a_medical_intent():
    assert len(MEDQUAD_QTYPES) == 16
    assert set(MEDQUAD_QTYPES.values()) <= set(INTENTS)
    assert MEDQUAD_QTYPES["treatment"] == "treatment" and MEDQUAD_QTYPES["causes"] == "cause"


# -- features ----------------------------------------------------------------------------
def test_ngrams_cover_chinese_characters_and_english_words():
    grams = ngrams(normalise_text("高血压怎么办? High Blood"), NGramConfig())
    assert {"c高", "c高血", "c高血压", "c怎么办", "whigh", "wblood", "whigh blood", "p?"} <= set(grams)
    # no Latin bigram across a Chinese run
    assert "wa b" not in ngrams(normalise_text("a 中文 b"), NGramConfig())


def test_latin_words_get_character_ngrams_only_when_configured():
    on = ngrams(normalise_text("Sooo annoyed 头痛"), NGramConfig(latin_char_max_n=5))
    # word-boundary marks < >, 3- to 5-grams, only inside Latin words
    assert {"l<so", "looo", "loo>", "l<sooo", "lsooo>", "l<an", "lyed>", "lannoy", "lnoyed"} <= set(on)
    assert "l<annoy" not in on and "lannoyed" not in on  # 6-grams and longer: beyond the 5
    assert not any(g.startswith("l") and ("头" in g or "痛" in g) for g in on)
    off = ngrams(normalise_text("Sooo annoyed 头痛"), NGramConfig())
    assert not any(g.startswith("l") for g in off) and set(off) < set(on)


def test_hashed_features_are_deterministic_and_normalised():
    idx1, val1 = hashed("糖尿病能吃水果吗", NGramConfig(hash_dim=256))
    idx2, val2 = hashed("糖尿病能吃水果吗", NGramConfig(hash_dim=256))
    assert idx1.tolist() == idx2.tolist() and np.allclose(val1, val2)
    assert idx1.max() < 256 and np.isclose(np.linalg.norm(val1), 1.0)
    assert hashed("", NGramConfig())[0].size == 0


def test_ngram_config_rejects_bad_sizes():
    with pytest.raises(ValueError, match="power of two"):
        NGramConfig(hash_dim=1000)
    for n in (2, 7):
        with pytest.raises(ValueError, match="latin_char_max_n"):
            NGramConfig(latin_char_max_n=n)
    with pytest.raises(ValueError, match="latin_char_max_n"):
        TrainConfig(latin_char_max_n=1)


def test_model_saved_before_latin_char_ngrams_loads_without_them(tiny_model, tmp_path):
    """A round-1 config has no latin_char_max_n: it loads with the feature off, so its weights
    see exactly the n-grams they were trained on."""
    out, _ = tiny_model
    assert json.loads((out / "config.json").read_text())["ngrams"]["latin_char_max_n"] == 5
    old = tmp_path / "old"
    old.mkdir()
    (old / "weights.npz").write_bytes((out / "weights.npz").read_bytes())
    cfg = json.loads((out / "config.json").read_text())
    del cfg["ngrams"]["latin_char_max_n"]
    (old / "config.json").write_text(json.dumps(cfg))
    assert ClassifierModel.load(old).ngrams.latin_char_max_n == 0
    assert ClassifierModel.load(out).ngrams.latin_char_max_n == 5


# -- trained head ----------------------------------------------------------------------------
def test_tiny_model_is_saved_with_its_config_and_metrics(tiny_model):
    out, metrics = tiny_model
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["encoder"] == "hash:32" and cfg["heads"]["intent"]["labels"][:1] == ["treatment"]
    assert 0 < cfg["heads"]["intent"]["temperature"] and 0 <= cfg["heads"]["emotion"]["threshold"] < 1
    assert (out / "metrics.json").is_file() and (out / "training_config.json").is_file()
    assert metrics["heads"]["intent"]["n_held_back"] > 0


@pytest.mark.parametrize("text,intent", [
    ("哮喘怎么治疗", "treatment"), ("How is diabetes treated", "treatment"),
    ("拔牙多少钱", "cost"), ("How much does a filling cost", "cost"),
    ("你好，早上好", "greeting"), ("Hi, good morning", "greeting"),
    ("帮我写一首歌", "out_of_scope"), ("Write me a song", "out_of_scope"),
])
def test_tiny_model_classifies_both_languages(tiny_model, text, intent):
    clf = tiny_classifier(tiny_model[0], intent_threshold=0.0)
    assert clf.classify(text).intent.label == intent


def test_emotion_of_worried_and_angry_messages(tiny_model):
    clf = tiny_classifier(tiny_model[0], emotion_threshold=0.0)
    assert clf.classify("我好害怕担心").emotion.label == "fear"
    assert clf.classify("I am so angry, I want to complain").emotion.label == "anger"


def test_threshold_turns_unsure_predictions_into_the_fallback(tiny_model):
    sure = tiny_classifier(tiny_model[0], intent_threshold=0.0).classify("hmm")
    unsure = tiny_classifier(tiny_model[0], intent_threshold=0.99).classify("hmm")
    assert unsure.intent.label == "other"
    assert unsure.intent.score < 0.99
    assert sure.intent.score >= unsure.intent.score or sure.intent.label == "other"


@pytest.mark.parametrize("text", ["", "   ", "😀😀😀", "?!?!", "x" * 100_000,
                                  "def f(x):\n    return x ** 2  # 计算平方",
                                  "我的blood pressure是150/95, is that 高血压?"])
def test_bad_input_gets_a_label_and_never_crashes(tiny_model, text):
    u = tiny_classifier(tiny_model[0]).classify(text)
    assert u.intent.label in INTENTS and u.emotion.label in EMOTIONS
    assert 0.0 <= u.intent.score <= 1.0 and 0.0 <= u.emotion.score <= 1.0


@pytest.mark.parametrize("text", ["", "😀😀😀", "?!?!"])
def test_input_without_words_gets_fallback_labels_with_low_scores(tiny_model, text):
    u = tiny_classifier(tiny_model[0]).classify(text)
    assert (u.intent.label, u.emotion.label) == ("other", "neutral")
    assert u.intent.score < 0.5 and u.emotion.score < 0.5


def test_a_huge_message_costs_no_more_than_a_short_one(tiny_model):
    clf = tiny_classifier(tiny_model[0])
    clf.warm_up()
    import time

    t0 = time.perf_counter()
    clf.classify("头疼" * 50_000)
    assert time.perf_counter() - t0 < 0.5


def test_construction_loads_nothing(tmp_path):
    clf = TrainedClassifier(tmp_path / "missing")  # no error until used
    with pytest.raises(ModelError, match="no classifier model") as err:
        clf.classify("hello")
    assert "medchat train classifier" in err.value.hint


@pytest.mark.parametrize("damage", ["config_garbage", "weights_garbage", "weights_truncated", "wrong_shape"])
def test_corrupt_model_files_give_a_clear_error(tiny_model, tmp_path, damage):
    import shutil

    model = tmp_path / "m"
    shutil.copytree(tiny_model[0], model)
    if damage == "config_garbage":
        (model / "config.json").write_text("{not json")
    elif damage == "weights_garbage":
        (model / "weights.npz").write_bytes(b"not a zip at all")
    elif damage == "weights_truncated":
        data = (model / "weights.npz").read_bytes()
        (model / "weights.npz").write_bytes(data[: len(data) // 2])
    else:
        cfg = json.loads((model / "config.json").read_text())
        cfg["heads"]["intent"]["labels"] = cfg["heads"]["intent"]["labels"][:-1]
        (model / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ModelError) as err:
        ClassifierModel.load(model)
    assert "medchat train classifier" in err.value.hint


@pytest.mark.parametrize("svm_heads", [(), ("intent",), ("intent", "emotion")])
def test_svm_and_logistic_heads_train_into_the_same_numpy_model(tmp_path, svm_heads):
    """Either linear model ends in the same weights-and-temperature head, read by the same
    numpy inference; metrics.json says which one each head is."""
    cfg = TrainConfig(out=tmp_path / "m", cache=None, hash_dim=1024, held_share=0.2, c_grid=(10.0,),
                      svm_c_grid=(1.0,), svm_heads=svm_heads, tune_bias=())
    metrics = train_classifier(cfg, embedder=HashEmbedder(32), sets=tiny_sets(), log=lambda m: None)
    for kind in ("intent", "emotion"):
        want = "linear_svm" if kind in svm_heads else "logistic_regression"
        assert metrics["heads"][kind]["model"] == want
        assert metrics["heads"][kind]["C"] == (1.0 if kind in svm_heads else 10.0)
    clf = tiny_classifier(tmp_path / "m", intent_threshold=0.0, emotion_threshold=0.0)
    assert clf.classify("拔牙多少钱").intent.label == "cost"
    assert clf.classify("How much does a filling cost").intent.label == "cost"
    assert clf.classify("I am so angry, I want to complain").emotion.label == "anger"


def test_train_config_rejects_unknown_svm_heads():
    with pytest.raises(ValueError, match="svm_heads"):
        TrainConfig(svm_heads=("intent", "tone"))
    with pytest.raises(ValueError, match="grids"):
        TrainConfig(svm_c_grid=())


def test_head_rejects_an_invalid_threshold():
    with pytest.raises(ModelError, match="threshold"):
        Head("emotion", ["joy", "neutral"], np.zeros((4, 2)), np.zeros((8, 2)), np.zeros(2), threshold=1.5)


# -- calibration and metrics --------------------------------------------------------------
def test_temperature_scaling_softens_overconfident_logits():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 400)
    logits = rng.normal(size=(400, 3))
    logits[np.arange(400), y] += 1.0  # right 55% of the time ...
    t = fit_temperature(logits * 10, y)  # ... but claimed with near-certainty
    assert t > 3


def test_threshold_choice_prefers_the_fallback_for_unsure_rows():
    head = Head("intent", ["treatment", "other"], np.zeros((2, 2)), np.zeros((16, 2)), np.zeros(2))
    probs = np.array([[0.9, 0.1]] * 5 + [[0.55, 0.45]] * 5)
    y = np.array([0] * 5 + [1] * 5)  # the unsure rows are really "other"
    assert 0.55 < pick_threshold(probs, y, head, "accuracy") <= 0.9


def test_score_counts_macro_f1_over_gold_classes_only():
    s = score(["a", "a", "b", "b"], ["a", "b", "b", "c"], ["a", "b", "c"])
    assert s.accuracy == 0.5
    # a: P 1 R .5 F1 .667; b: P .5 R .5 F1 .5; c has no gold rows and is not averaged
    assert abs(s.macro_f1 - (2 / 3 + 0.5) / 2) < 1e-9
    assert s.confusion == [[1, 1, 0], [0, 1, 1], [0, 0, 0]]


def test_eval_file_accepts_dataset_label_names(tmp_path):
    f = tmp_path / "e.jsonl"
    f.write_text('{"text": "好开心", "label": "happy"}\n{"text": "气死了", "label": "angry"}\n'
                 '{"text": "so sad", "label": "sadness"}\n', encoding="utf-8")
    texts, labels = read_eval_file(f, "emotion")
    assert labels == ["joy", "anger", "sadness"]
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "x"}\n')
    from chatbot.classifier.evaluation import EvalFileError

    with pytest.raises(EvalFileError, match="bad.jsonl:1"):
        read_eval_file(bad, "emotion")


def test_evaluation_restricts_predictions_to_the_file_labels(tiny_model, tmp_path):
    f = tmp_path / "kuake.jsonl"
    rows = [("胃炎怎么治疗", "治疗方案"), ("做核磁多少钱", "医疗费用"), ("眉毛会长吗", "其他"),
            ("How is asthma treated", "治疗方案")]
    f.write_text("".join(json.dumps({"text": t, "label": l}, ensure_ascii=False) + "\n" for t, l in rows),
                 encoding="utf-8")
    out = evaluate_file(tiny_classifier(tiny_model[0]), "intent", f, report_dir=tmp_path / "rep")
    assert out["restricted_to"] == ["cost", "other", "treatment"]
    assert out["n"] == 4 and 0 <= out["accuracy"] <= 1
    assert {"p50", "p95"} <= set(out["latency_ms"])
    for path in out["report"]:
        assert open(path, "rb").read(8) == b"\x89PNG\r\n\x1a\n"


def test_encoder_pool_shares_one_encoder_and_embeds_a_repeated_message_once():
    from chatbot.classifier.runtime import EncoderPool, _LastText

    pool = EncoderPool()
    assert pool("hash:8") is pool("hash:8")  # one model in memory per name

    class Counting:
        name, dim, calls = "counting", 2, 0

        def warm_up(self):
            pass

        def encode(self, texts):
            Counting.calls += 1
            return np.ones((len(texts), 2), dtype=np.float32) * len(texts[0])

    enc = _LastText(Counting())
    first = enc.encode(["胸口痛"])
    assert enc.encode(["胸口痛"]) is first and Counting.calls == 1  # detector, then classifier
    assert enc.encode(["头痛了"]).shape == (1, 2) and Counting.calls == 2
    enc.encode(["a", "b"])
    enc.encode(["a", "b"])
    assert Counting.calls == 4  # batches are never memoised
