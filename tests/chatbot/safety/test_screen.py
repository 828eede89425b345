"""The red-flag screen's context handling (negation, history, information questions), mixed
messages, typos, numbers, the escalation message and its settings. Rule-by-rule examples live in
data/safety/rules.yaml and are checked by test_rules.py."""

from __future__ import annotations

import statistics
import time

import pytest

from chatbot.prompts import PromptLibrary
from chatbot.protocols import ScreenResult
from chatbot.safety import RedFlagHit, RedFlagScreen
from chatbot.settings import SafetySettings

SCREEN = RedFlagScreen(SafetySettings())


def cats(text: str) -> set[str]:
    return {h.category for h in SCREEN.hits(text)}


# -- acute events, first and third person, both languages ------------------------------------
@pytest.mark.parametrize("text,category", [
    ("胸口压着疼出冷汗", "cardiac"),
    ("my dad is having a heart attack", "cardiac"),
    ("半边身子麻", "stroke"),
    ("我妈口角歪斜", "stroke"),
    ("喘不上气，嘴唇发紫", "breathing"),
    ("吃了一整瓶安眠药", "poisoning"),
    ("took 30 pills", "poisoning"),
    ("想死", "self_harm"),
    ("不想活了", "self_harm"),
    ("3个月宝宝发烧38度", "infant_fever"),
    ("my friend says he is going to kill himself", "self_harm"),
])
def test_acute_events_fire(text, category):
    assert category in cats(text)


# -- negation ----------------------------------------------------------------------------------
@pytest.mark.parametrize("text", [
    "no chest pain", "I don't have any chest pain or sweating", "denies shortness of breath",
    "没有胸痛", "没有胸痛，也没有出冷汗", "否认呼吸困难", "我不想死，就是很累",
    "I'm not suicidal", "没有抽搐，也没有口吐白沫",
    # a denied spotty rash is no sepsis sign, even where a fever word stands nearby
    "刷牙时牙龈少量出血，无皮肤瘀斑，无乏力发热",
    # a drug named for the condition it treats is no seizure now (answer dev round 4, a4-076)
    "I missed a dose of my seizure med lamotrigine this morning, should I take two tonight?",
    "are seizure pills safe in pregnancy",
])
def test_negated_red_flags_do_not_fire(text):
    assert SCREEN.hits(text) == []


@pytest.mark.parametrize("text,category", [
    # the negation ends at a comma, "but", or a scope break such as "就" / "then"
    ("no fever, but crushing chest pain right now", "cardiac"),
    ("没有发烧，但是胸口压着疼出冷汗", "cardiac"),
    ("没吃早饭就开始胸口剧痛", "cardiac"),
    # pseudo-negations do not negate
    ("无明显诱因突然晕倒，叫不醒", "consciousness"),
    ("not sure why but I have crushing chest pain", "cardiac"),
    # "never had pain like this" is about intensity
    ("I've never had chest pain like this, it's spreading to my arm", "cardiac"),
    # negation that IS the finding
    ("he's not breathing", "breathing"),
    ("宝宝在肚子里不动了，没有胎动", "obstetric"),
    ("高烧39度，没有尿了", "sepsis"),
    ("fever and he hasnt peed since this morning", "sepsis"),
])
def test_negation_scope(text, category):
    assert category in cats(text)


# -- history and family history ---------------------------------------------------------------
@pytest.mark.parametrize("text", [
    "my father had a heart attack five years ago",
    "I had a stroke in 2019 and I'm doing well",
    "family history of stroke, what should I eat?",
    "我爸五年前得过心梗",
    "我妈去年中风了，现在半边身子还是麻",
    "以前晕倒过一次",
    "I attempted suicide ten years ago and I am doing well now",
    "我爷爷中风后遗症怎么康复",
    # a space between Chinese characters is a clause break: 现在 in a later clause does not
    # bring the earlier one back to the present
    "以前有过想不开的时候 现在好多了 在吃舍曲林",
    "上次过敏性休克是五年前 现在随身带肾上腺素笔",
    # a history marker after the term is still history
    "my dad was confused and had a high fever after surgery last year, what causes that",
])
def test_history_does_not_fire(text):
    assert SCREEN.hits(text) == []


@pytest.mark.parametrize("text,category", [
    ("my dad had a stroke in 2019 and right now his face is drooping again", "stroke"),
    ("我妈三年前中风过，今天早上突然又说不出话了", "stroke"),
    ("我五年前做过支架，刚才胸口突然剧痛", "cardiac"),
    # a strong "now" after the history marker carries to the clauses after it
    ("my dad had surgery last week, now high fever, confused and barely peeing", "sepsis"),
    ("my mom had a stroke last year, today fever and she is confused and not making sense", "sepsis"),
])
def test_a_new_event_after_history_fires(text, category):
    assert category in cats(text)


# -- information questions ----------------------------------------------------------------------
@pytest.mark.parametrize("text", [
    "what are the signs of a stroke?", "What are the symptoms of a heart attack?",
    "how to prevent carbon monoxide poisoning", "what should I do if someone has a seizure?",
    "中风有哪些前兆？", "心梗的症状是什么", "怎么预防脑梗", "如果有人突然晕倒应该怎么急救",
    "what are the signs of a stroke, like face drooping?",
    "what does anaphylaxis look like and when should you use an epipen",
    "看新闻说有人吃河豚中毒了 河豚毒素是什么原理",
])
def test_information_questions_do_not_fire(text):
    assert SCREEN.hits(text) == []


@pytest.mark.parametrize("text,category", [
    ("I think I'm having a stroke, what are the signs?", "stroke"),
    ("我现在胸口压着疼出冷汗，心梗有什么症状", "cardiac"),
    # a lethal-dose question is a risk statement, not an information question
    ("how many sleeping pills would kill me", "self_harm"),
])
def test_information_frame_with_a_present_event_fires(text, category):
    assert category in cats(text)


# -- mild, chronic and colloquial ---------------------------------------------------------------
@pytest.mark.parametrize("text", [
    "a little headache", "有点头疼", "chest pain when I cough for a week", "咳嗽的时候胸口疼，一周了",
    "I get short of breath on the stairs", "想死你了", "笑死我了", "this exam is killing me",
    "眼皮抽搐", "晚上小腿抽筋", "气得我吐血", "吃了两片布洛芬", "8个月宝宝发烧38度",
    "宝宝发烧3天了", "2个月宝宝体温37.5", "痛经疼得受不了",
    # hyperbole and internet slang
    "that puppy is so cute i'm having a heart attack", "尴尬到窒息", "美到窒息的风景",
    "this spicy noodle is so hot i literally can't breathe lol", "我要被我儿子气晕过去了",
    "宝宝两个月 体温三十七点五度",
])
def test_mild_chronic_and_colloquial_messages_do_not_fire(text):
    assert SCREEN.hits(text) == []


# -- mixed language, typos, numbers ------------------------------------------------------------
@pytest.mark.parametrize("text,category", [
    ("我爸突然chest pain，出冷汗", "cardiac"),
    ("my mom 口角歪斜 and can't talk", "stroke"),
    ("宝宝 6 weeks old, fever 38.5", "infant_fever"),
    ("I think Im having a hart attack", "cardiac"),
    ("my son is having a siezure", "seizure"),
    ("he is unconcious", "consciousness"),
    ("my wife is unresponsve", "consciousness"),
    ("i want to kil myself", "self_harm"),   # listed misspelling
    ("honestly i just want to unalive myself", "self_harm"),   # listed slang
    ("我奶奶晕到了叫不醒", "consciousness"),
    ("孩子抽蓄了", "seizure"),
    ("喘不上起来了", "breathing"),
    ("吞了二十多片药", "poisoning"),
    ("swallowed fifteen tablets", "poisoning"),
    ("my 5 week old baby has a temperature of 100.8", "infant_fever"),
    ("宝宝一个半月，发烧了", "infant_fever"),
])
def test_mixed_language_typos_and_numbers(text, category):
    assert category in cats(text)


@pytest.mark.parametrize("text", ["吃了3片药", "took 9 pills over the day", "4个月宝宝发烧38.5度",
                                  "my 6 month old has a fever of 38.2", "newborn, temperature 37.2"])
def test_numbers_below_the_thresholds_do_not_fire(text):
    assert SCREEN.hits(text) == []


# -- the screen result -------------------------------------------------------------------------
def test_hits_carry_category_rule_evidence_and_language():
    hits = SCREEN.hits("我爸突然chest pain，出冷汗")
    assert hits and isinstance(hits[0], RedFlagHit)
    h = hits[0]
    assert h.category == "cardiac" and h.rule_id.startswith("cardiac.")
    assert h.evidence == "chest pain" and h.lang == "en" and "出冷汗" in h.context


def test_most_severe_category_comes_first():
    result = SCREEN.screen("车祸后昏迷不醒，流了很多血", "zh")
    assert result.categories[0] == "consciousness"
    assert {"trauma", "bleeding"} <= set(result.categories) and result.category == "consciousness"
    assert len(result.rule_ids) == len(set(result.rule_ids)) >= 3


@pytest.mark.parametrize("lang,number,text", [
    ("zh", "120", "胸口压着疼出冷汗"), ("en", "120", "crushing chest pain and sweating"),
])
def test_emergency_message_is_fixed_text_in_the_patient_language(lang, number, text):
    result = SCREEN.screen(text, lang)
    prompts = PromptLibrary()
    assert isinstance(result, ScreenResult) and result.emergency and result.number == number
    assert result.message.startswith(prompts.text(lang, "safety.cardiac", number=number))
    assert result.message.endswith(prompts.text(lang, "safety.footer", number=number))
    other = "en" if lang == "zh" else "zh"
    assert prompts.text(other, "safety.cardiac", number=number) not in result.message


def test_mixed_message_gets_both_languages():
    result = SCREEN.screen("我爸突然chest pain，出冷汗", "zh")
    prompts = PromptLibrary()
    assert prompts.text("zh", "safety.cardiac", number="120") in result.message
    assert prompts.text("en", "safety.cardiac", number="120") in result.message


@pytest.mark.parametrize("locale,number", [("cn", "120"), ("us", "911"), ("eu", "112")])
def test_number_by_locale_and_override(locale, number):
    screen = RedFlagScreen(SafetySettings(locale=locale))
    assert f" {number}" in screen.screen("my dad is having a heart attack", "en").message
    override = RedFlagScreen(SafetySettings(locale=locale, emergency_number="999"))
    result = override.screen("我爸心梗了", "zh")
    assert result.number == "999" and "999" in result.message and number not in result.message.replace("999", "")


def test_self_harm_message_names_the_crisis_line():
    screen = RedFlagScreen(SafetySettings(locale="us"))
    result = screen.screen("I want to kill myself", "en")
    assert result.category == "self_harm" and "988" in result.crisis_line and "988" in result.message
    zh = RedFlagScreen(SafetySettings(crisis_line={"cn": "12356"})).screen("不想活了", "zh")
    assert "12356" in zh.message and zh.crisis_line == "12356"
    cardiac = screen.screen("crushing chest pain", "en")
    assert cardiac.crisis_line == "" and "988" not in cardiac.message


def test_no_red_flag_is_a_plain_pass():
    result = SCREEN.screen("糖尿病人能吃水果吗", "zh")
    assert result == ScreenResult(emergency=False)


def test_construction_is_lazy_and_rules_file_errors_are_domain_errors(tmp_path):
    from chatbot.safety import SafetyRulesError

    screen = RedFlagScreen(SafetySettings(rules_file=tmp_path / "missing.yaml"))
    assert screen._rules is None  # nothing read yet
    with pytest.raises(SafetyRulesError, match="missing.yaml"):
        screen.warm_up()


def test_screen_is_fast():
    texts = ["胸口压着疼出冷汗，已经二十分钟了", "I have a little headache since this morning",
             "my 7 week old has a temp of 100.6", "怎么预防脑梗", "吃了两片布洛芬还是头疼"] * 4
    SCREEN.warm_up()
    per = []
    for text in texts:
        runs = []
        for _ in range(5):
            t0 = time.perf_counter()
            SCREEN.hits(text)
            runs.append(time.perf_counter() - t0)
        per.append(min(runs))
    # target < 1 ms per message (measured ~0.2 ms); the bound leaves room for a loaded CI machine
    assert statistics.median(per) < 0.005


@pytest.mark.parametrize("text,lang,denied", [
    # blind triage round 24: a nurse's list of stated negatives runs past its commas to or/nor
    ("day 3 of amoxicillin, itchy hives on trunk, no lip, tongue or throat swelling, breathing normal", "en", True),
    ("allergic to amoxicillin, hives, and my throat is swelling", "en", False),
    ("ate peanuts, no rash, tongue swelling now", "en", False),
    # plain 不 right before the finding denies it; earlier in the message it does not
    ("宝宝出生3周，舌头上有白色斑块，吃奶量和尿量都正常，不发烧。", "zh", True),
    ("宝宝3周，昨天不发烧，今天发烧38.5", "zh", False),
    ("我爸叫不醒了", "zh", False),
])
def test_stated_negatives_of_a_list_and_a_plain_bu(text, lang, denied):
    assert (SCREEN.hits(text, lang) == []) is denied, [h.rule_id for h in SCREEN.hits(text, lang)]
