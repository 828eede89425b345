"""chatbot.evaluation.gen_metrics: ROUGE-L by hand, one row per answer, the summary."""

from __future__ import annotations

import pytest

from chatbot.evaluation.gen_metrics import (
    answer_length,
    key_fact_recall,
    rouge_l,
    score_answer,
    score_baseline,
    score_model_text,
    summarise,
)
from chatbot.prompts import PromptLibrary

PROMPTS = PromptLibrary()
DISCLAIMER_EN = PROMPTS.text("en", "answer.disclaimer")
DISCLAIMER_ZH = PROMPTS.text("zh", "answer.disclaimer")


@pytest.mark.parametrize("candidate,reference,lang,expected", [
    ("Gout is caused by uric acid.", "gout is caused by URIC acid", "en", 1.0),   # case, punctuation
    ("asthma inhaler", "gout crystals", "en", 0.0),
    # LCS "the cat on the mat" = 5 of 6 tokens each side: P = R = 5/6.
    ("the cat sat on the mat", "the cat lay on the mat", "en", 5 / 6),
    # LCS 3 ("a b d"); P = 3/4, R = 3/6 -> F = 2 * .75 * .5 / 1.25 = 0.6
    ("a b c d", "a x b y d z", "en", 0.6),
    ("高血压要低盐", "高血压要低盐", "zh", 1.0),
    ("糖尿病", "青光眼", "zh", 0.0),
    # CJK characters: LCS 高血压要盐 = 5; P = 5/6, R = 5/8 -> F = 5/7.
    ("高血压要低盐", "高血压要少盐饮食", "zh", 5 / 7),
    ("高血压 low salt 饮食[1]。", "高血压饮食", "zh", 1.0),   # Latin words and markers ignored in zh
    ("Gout [1] is caused by uric acid [2].", "Gout is caused by uric acid.", "en", 1.0),
    ("", "gout", "en", 0.0),
])
def test_rouge_l_by_hand(candidate, reference, lang, expected):
    assert rouge_l(candidate, reference, lang) == pytest.approx(expected)


PASSAGES = {1: "Gout is caused by uric acid crystals in the joints.",
            2: "Asthma is treated with inhaled corticosteroids."}


def _row(**overrides):
    args = dict(question="What causes gout?", lang="en",
                answer_text=f"Gout is caused by uric acid crystals [1].\n\n{DISCLAIMER_EN}",
                passages_by_n=PASSAGES, citations=[1], flags=[], answerable=True,
                reference="Gout is caused by uric acid crystals.", latency_ms=1234.5)
    args.update(overrides)
    return score_answer(**args, prompts=PROMPTS)


def test_score_answer_good_answer():
    row = _row()
    assert row == {
        "question": "What causes gout?", "lang": "en", "language_match": 1, "citation_valid": 1,
        "has_citation": 1, "fallback": 0, "repetition": 0.0, "degenerate": 0,
        "support": 1.0,             # the disclaimer is boilerplate, not an unsupported claim
        "honest_no_source": None,   # only judged for unanswerable questions
        "over_refusal": 0,          # an answerable question, answered
        "answered": 1,              # a usable answer to an answerable question
        "rouge_l": 1.0,             # the disclaimer is not compared with the reference either
        "key_fact_recall": 1.0,
        "answer_length": 7,         # "Gout is caused by uric acid crystals": 7 words, no disclaimer
        "false_emergency": 0,       # no red-flag banner on this ordinary question
        "latency_ms": 1234.5,
    }


@pytest.mark.parametrize("overrides,key,expected", [
    ({"answer_text": "Gout is caused by uric acid crystals [5]."}, "citation_valid", 0),
    ({"answer_text": "Gout is caused by uric acid crystals.", "citations": []}, "citation_valid", 0),
    ({"answer_text": "Gout is caused by uric acid crystals.", "citations": []}, "has_citation", 0),
    ({"answer_text": "痛风是尿酸结晶引起的[1]。", "lang": "en"}, "language_match", 0),
    ({"flags": ["fallback_extractive", "degenerate"]}, "fallback", 1),
    ({"answer_text": "the " * 40}, "degenerate", 1),
    ({"answer_text": "Gout is cured by eating chocolate daily [1]."}, "support", 0.0),
    ({"reference": None}, "rouge_l", None),
    # a no-evidence answer with no passages: there is no citation to validate, nothing to support
    ({"passages_by_n": {}, "citations": [], "answer_text": PROMPTS.text("en", "answer.no_evidence")},
     "citation_valid", None),
    ({"passages_by_n": {}, "citations": [], "answer_text": PROMPTS.text("en", "answer.no_evidence")},
     "support", None),
    ({"passages_by_n": {}, "citations": [], "answer_text": "Tirzepatide starts at 2.5 mg [1]."},
     "citation_valid", 0),
])
def test_score_answer_fields(overrides, key, expected):
    assert _row(**overrides)[key] == expected


@pytest.mark.parametrize("answer_text,flags,lang,honest", [
    (PROMPTS.text("zh", "answer.no_evidence") + "\n\n" + DISCLAIMER_ZH, [], "zh", 1),
    ("anything", ["no_evidence"], "en", 1),
    ("Tirzepatide starts at 2.5 mg once a week [1].", [], "en", 0),
    ("好的，给你讲个笑话。", [], "zh", 0),
])
def test_honest_no_source_for_unanswerable_questions(answer_text, flags, lang, honest):
    row = _row(answer_text=answer_text, flags=flags, lang=lang, answerable=False, reference=None)
    assert row["honest_no_source"] == honest


def test_summarise_means_skip_none_and_split_by_language():
    rows = [
        {"lang": "en", "language_match": 1, "support": 1.0, "rouge_l": None, "latency_ms": 100.0},
        {"lang": "en", "language_match": 0, "support": 0.5, "rouge_l": 0.4, "latency_ms": 300.0},
        {"lang": "zh", "language_match": 1, "support": None, "rouge_l": 0.2, "latency_ms": 200.0},
    ]
    summary = summarise(rows)
    assert summary["n"] == 3
    assert summary["means"]["language_match"] == pytest.approx(2 / 3)
    assert summary["means"]["support"] == pytest.approx(0.75)      # None skipped
    assert summary["counts"]["support"] == 2 and summary["counts"]["rouge_l"] == 2
    assert summary["means"]["rouge_l"] == pytest.approx(0.3)
    assert "lang" not in summary["means"]
    assert summary["latency_ms"] == {"p50": 200.0, "p95": 300.0, "max": 300.0}
    assert set(summary["by_lang"]) == {"en", "zh"}
    assert summary["by_lang"]["en"]["n"] == 2
    assert summary["by_lang"]["en"]["means"]["language_match"] == 0.5
    assert "support" not in summary["by_lang"]["zh"]["means"]        # only None there


def test_summarise_empty():
    assert summarise([]) == {"n": 0, "means": {}, "counts": {}, "by_lang": {}}


@pytest.mark.parametrize("flags,lang", [(["route_out_of_scope"], "en"), (["route_out_of_scope"], "zh")])
def test_an_out_of_scope_refusal_counts_as_honest(flags, lang):
    refusal = PROMPTS.text(lang, "route.out_of_scope")
    row = _row(answer_text=refusal, flags=flags, lang=lang, answerable=False, reference=None)
    assert row["honest_no_source"] == 1


def test_model_text_is_scored_without_the_engines_fallback():
    # The fallback's quotes score perfect support; the model text it replaced is judged on its own.
    invented = "Gout is cured by eating chocolate daily [1]."
    row = score_model_text(question="What causes gout?", lang="en", model_text=invented,
                           passages_by_n={1: "Gout is caused by uric acid crystals in the joints."},
                           answerable=True, reference=None, latency_ms=10.0)
    assert row["support"] == 0.0 and row["fallback"] is None and row["empty"] == 0
    empty = score_model_text(question="痛风是什么原因？", lang="zh", model_text="", passages_by_n={1: "痛风是尿酸结晶引起的。"},
                             answerable=True, reference=None, latency_ms=10.0)
    assert empty["empty"] == 1 and empty["has_citation"] == 0


def test_model_text_saying_no_source_is_honest():
    row = score_model_text(question="zuranolone side effects?", lang="en",
                           model_text=PROMPTS.text("en", "answer.no_evidence"),
                           passages_by_n={1: "Nausea is a side effect of bromocriptine."},
                           answerable=False, reference=None, latency_ms=10.0)
    assert row["honest_no_source"] == 1


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_a_no_source_reply_with_passages_is_not_a_citation_or_support_failure(lang):
    # The model was shown passages and honestly said they do not answer: nothing to cite.
    row = _row(answer_text=PROMPTS.text(lang, "answer.no_evidence"), citations=[], flags=[], lang=lang,
               answerable=False, reference=None)
    assert row["citation_valid"] is None and row["support"] is None and row["honest_no_source"] == 1
    assert row["has_citation"] == 0


def test_over_refusal_is_scored_on_answerable_questions_only():
    no_source = PROMPTS.text("en", "answer.no_evidence")
    assert _row(answer_text=no_source, citations=[], answerable=True)["over_refusal"] == 1
    assert _row(answerable=True)["over_refusal"] == 0
    assert _row(answer_text=no_source, citations=[], answerable=False)["over_refusal"] is None


@pytest.mark.parametrize("candidate,reference,lang,expected", [
    # reference content words {gout, caus(ed), uric, acid, crystal(s)}: the candidate has uric, acid
    ("Uric acid builds up.", "Gout is caused by uric acid crystals.", "en", 2 / 5),
    ("Gout is caused by uric acid crystals, and more besides.", "Gout: uric acid crystals cause it.", "en", 1.0),
    ("Nothing here.", "Gout is caused by uric acid crystals.", "en", 0.0),
    # reference bigrams {高血, 血压, 压要, 要低, 低盐}; candidate has 高血, 血压, 低盐
    ("高血压，低盐", "高血压要低盐", "zh", 3 / 5),
    ("高血压要低盐饮食", "高血压要低盐", "zh", 1.0),
    ("anything", "", "en", 0.0),
])
def test_key_fact_recall_by_hand(candidate, reference, lang, expected):
    assert key_fact_recall(candidate, reference, lang) == pytest.approx(expected)


def test_answer_length_counts_words_or_cjk_characters():
    assert answer_length("Gout is caused by uric acid [1].", "en") == 6
    assert answer_length("痛风由尿酸引起[1]。", "zh") == 7


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_a_refusal_scores_nothing_against_the_reference(lang):
    # Overlap with the reference must not reward "no reliable source" for sharing its words.
    refusal = PROMPTS.text(lang, "answer.no_evidence")
    row = _row(answer_text=refusal, citations=[], lang=lang, answerable=True, reference=refusal)
    assert row["rouge_l"] == 0.0 and row["key_fact_recall"] == 0.0 and row["answer_length"] == 0
    assert row["answered"] == 0


@pytest.mark.parametrize("flags", [["emergency"], ["safety_question"], ["no_evidence"]])
def test_a_banner_or_a_question_back_is_not_an_answer(flags):
    assert _row(flags=flags)["answered"] == 0
    assert _row(flags=flags, answerable=False, reference=None)["answered"] is None


def test_a_banner_on_an_ordinary_question_is_a_false_emergency_not_on_an_expected_one():
    assert _row(flags=["emergency"])["false_emergency"] == 1
    assert _row(flags=["emergency"], expect_emergency=True)["false_emergency"] is None
    assert _row(flags=["safety_question"])["false_emergency"] == 0   # asking is not escalating


def test_the_top_passage_baseline_never_refuses():
    row = score_baseline(lang="en", passage_text="Gout is caused by uric acid crystals.",
                         reference="Gout is caused by uric acid crystals.", answerable=True)
    assert row["answered"] == 1 and row["rouge_l"] == 1.0 and row["key_fact_recall"] == 1.0
    unanswerable = score_baseline(lang="zh", passage_text="痛风是尿酸结晶引起的。", reference=None,
                                  answerable=False)
    assert unanswerable["honest_no_source"] == 0 and unanswerable["rouge_l"] is None
    nothing = score_baseline(lang="en", passage_text=None, reference="gout", answerable=True)
    assert nothing["answered"] == 0 and nothing["answer_length"] == 0
