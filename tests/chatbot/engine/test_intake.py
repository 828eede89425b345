import pytest

from chatbot.engine.intake import InputError, check_input, detect_language, fit_budget, is_follow_up, rewrite_query
from knowledge_base.records import Passage


@pytest.mark.parametrize("text,lang,mixed", [
    ("高血压怎么治疗？", "zh", False),
    ("How is high blood pressure treated?", "en", False),
    ("我的 HbA1c 是 7.5，需要吃 metformin 吗", "zh", False),
    ("我最近 blood pressure 很高 and headache 头疼 every morning 怎么办", "zh", True),
    ("What does 高血压 mean?", "en", False),
])
def test_detect_language(text, lang, mixed):
    info = detect_language(text)
    assert (info.lang, info.mixed) == (lang, mixed)


@pytest.mark.parametrize("text,key", [
    ("", "input.empty"), ("   \n\t", "input.empty"), ("\x00\x01\x02", "input.unreadable"),
    ("。。。！！", "input.unreadable"), ("x" * 5000, "input.too_long"),
    # review (h): a pasted terminal escape or underscores are not a question
    ("\x1b[31m\x1b[0m", "input.unreadable"), ("___", "input.unreadable"), ("\ufffd\ufffd", "input.unreadable"),
    # review (h): Japanese, Korean, Arabic, Russian get "Chinese or English, please"
    ("こんにちは、頭が痛いです", "input.unsupported_language"), ("머리가 아파요", "input.unsupported_language"),
    ("مرحبا عندي صداع", "input.unsupported_language"), ("Привет, у меня болит голова", "input.unsupported_language"),
])
def test_bad_input_is_named(text, key):
    with pytest.raises(InputError) as info:
        check_input(text, 4000)
    assert info.value.key == key


@pytest.mark.parametrize("text,cleaned", [
    ("\ud800 headache", "\ufffd headache"),          # review (e): a lone surrogate from a terminal
    ("头痛\udcff怎么办", "头痛\ufffd怎么办"),
    ("Is Но-шпа safe in pregnancy?", "Is Но-шпа safe in pregnancy?"),  # a foreign drug name stays English
    ("7", "7"),                                       # a number can answer a follow-up question
])
def test_input_that_is_kept(text, cleaned):
    out = check_input(text, 4000)
    assert out == cleaned
    out.encode("utf-8")  # encodable: the tokenizers and the store can take it


def test_markup_stays_text():
    text = "<img src=x onerror=alert(1)> what is asthma?"
    assert check_input(text, 4000) == text  # never executed or stripped into something else


@pytest.mark.parametrize("text,lang,expected", [
    ("What about for children?", "en", True), ("那孩子呢？", "zh", True),
    ("Is it contagious?", "en", True), ("它会遗传吗？", "zh", True), ("多久能好？", "zh", True),
    ("What is gout?", "en", False), ("糖尿病能吃西瓜吗", "zh", False),
    ("How is asthma treated in adults?", "en", False),
])
def test_follow_up_detection(text, lang, expected):
    assert is_follow_up(text, lang) is expected


def test_rewrite_query_uses_previous_question():
    assert rewrite_query("What about for children?", ["How is asthma treated?"], "en") == \
        "How is asthma treated? What about for children?"
    assert rewrite_query("那孩子呢？", ["哮喘怎么治疗？"], "zh") == "哮喘怎么治疗？ 那孩子呢？"
    assert rewrite_query("What is gout?", ["How is asthma treated?"], "en") == "What is gout?"
    assert rewrite_query("Is it contagious?", [], "en") == "Is it contagious?"


def _p(i, text):
    return Passage(id=f"d{i}#c0", doc_id=f"d{i}", text=text, title="t", url="", source="s", lang="en", score=1.0)


def test_budget_keeps_rank_order_and_names_what_it_drops():
    count = lambda t: len(t) // 4 + 1  # noqa: E731
    passages = [_p(i, "word " * 300) for i in range(6)]  # ~376 tokens each
    history = [("user", "old question " * 20), ("assistant", "old answer " * 20)] * 5
    b = fit_budget(fixed_tokens=300, passages=passages, history=history, n_ctx=2048,
                   max_new_tokens=320, count=count)
    assert [p.doc_id for p in b.passages] == [f"d{i}" for i in range(len(b.passages))]
    assert 0 < len(b.passages) < 6 and "passages_dropped" in b.flags
    used = 300 + 320 + sum(count(p.text) + 16 for p in b.passages) + sum(count(t) + 8 for _, t in b.history)
    assert used <= 2048
    assert "history_truncated" in b.flags


def test_budget_cuts_an_oversized_passage():
    count = lambda t: len(t) // 4 + 1  # noqa: E731
    b = fit_budget(fixed_tokens=100, passages=[_p(0, "x" * 8000)], history=[], n_ctx=4096,
                   max_new_tokens=300, count=count, passage_cap_tokens=400)
    assert count(b.passages[0].text) <= 401 and b.flags == ["passage_cut"]


def test_budget_keeps_the_newest_history():
    count = lambda t: len(t) // 4 + 1  # noqa: E731
    history = [("user", f"turn {i} " * 30) for i in range(10)]
    b = fit_budget(fixed_tokens=100, passages=[], history=history, n_ctx=600, max_new_tokens=200, count=count)
    assert b.history and b.history[-1] == history[-1]
    assert b.history == history[-len(b.history):]
