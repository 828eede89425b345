import math

import numpy as np
import pytest

from knowledge_base.index.bm25 import BM25Index
from knowledge_base.text import clean_text, detect_lang
from knowledge_base.tokenize import tokenize, translate_terms


def test_tokenize_english_stems_and_drops_stop_words():
    tokens = tokenize("What are the treatments for asthma attacks?")
    assert "the" not in tokens and "what" not in tokens
    assert "treatment" in tokens and "attack" in tokens and "asthma" in tokens


def test_tokenize_chinese_with_jieba_and_mixed_text():
    tokens = tokenize("我的糖尿病 HbA1c 偏高怎么办")
    assert "糖尿病" in tokens
    assert "hba1c" in tokens
    assert "我" not in tokens and "怎么办" not in tokens  # stop words


def test_bm25_matches_the_okapi_formula():
    docs = [["asthma", "inhaler", "asthma"], ["gout", "diet"], ["asthma", "diet", "exercise", "sleep"]]
    index = BM25Index.build(docs, k1=1.2, b=0.75)
    scores = index.scores(["asthma"])
    n, df, avgdl = 3, 2, (3 + 2 + 4) / 3
    idf = math.log(1 + (n - df + 0.5) / (df + 0.5))

    def bm25(tf, dl):
        return idf * tf * 2.2 / (tf + 1.2 * (1 - 0.75 + 0.75 * dl / avgdl))

    assert scores[0] == pytest.approx(bm25(2, 3), rel=1e-5)
    assert scores[1] == 0
    assert scores[2] == pytest.approx(bm25(1, 4), rel=1e-5)
    assert [i for i, _ in index.search(["asthma"], 5)] == [0, 2]


def test_bm25_query_weights_and_unknown_terms(tmp_path):
    index = BM25Index.build([["a", "b"], ["b", "c"], ["c", "d"]])
    full = index.scores(["c"])
    half = index.scores(["c"], weights=[0.5])
    assert np.allclose(half, full * 0.5)
    assert index.search(["zzz"], 3) == []
    index.save(tmp_path)
    loaded = BM25Index.load(tmp_path)
    assert np.allclose(loaded.scores(["b", "c"]), index.scores(["b", "c"]))


def test_glossary_translates_both_ways():
    en = translate_terms("高血压患者能喝咖啡吗", "zh")
    assert "hypertension" in en or "high blood pressure" in en
    zh = translate_terms("What is asthma?", "en")
    assert "哮喘" in zh


def test_detect_lang_and_clean_text():
    assert detect_lang("高血压怎么治疗？") == "zh"
    assert detect_lang("How is high blood pressure treated?") == "en"
    assert detect_lang("我有 diabetes 吗") == "zh"
    assert clean_text("  a\x00b &amp; Ｃ\r\n\n\n\nd ") == "ab & C\n\nd"
