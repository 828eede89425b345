"""A question about one detail of a topic: which questions ask one, and when passages hold it."""

from __future__ import annotations

import pytest

from chatbot.engine.answer.details import asked_detail, covers_detail, focused_query
from knowledge_base.records import Passage


def passage(title: str, text: str, lang: str = "en", doc_id: str = "d") -> Passage:
    return Passage(id=f"{doc_id}#0", doc_id=doc_id, title=title, text=text, url="", source="test",
                   lang=lang, score=1.0)


@pytest.mark.parametrize("question,lang,kind", [
    ("how long is the flu contagious", "en", "contagious_duration"),
    ("chickenpox - how long does my kid have to stay home from school", "en", "contagious_duration"),
    ("小孩得了手足口病多久能好，会传染给大人吗", "zh", "contagious_duration"),
    ("Is psoriasis contagious? what treatments are there?", "en", "contagious"),
    ("牛皮癣怎么治疗，会传染吗", "zh", "contagious"),
    ("I missed a dose of my warfarin yesterday, should I take double today?", "en", "missed_dose"),
    ("漏服避孕药怎么办 忘了一天", "zh", "missed_dose"),
    ("二甲双瓜饭前吃还是饭后吃", "zh", "meal_timing"),
    ("what is the best time of day to take levothyroxin", "en", "meal_timing"),
    ("side effects of metformn", "en", "side_effects"),
    ("二甲双胍有什么副作用", "zh", "side_effects"),
    ("Is it safe to take ibuprophen while pregnant? I'm 20 weeks", "en", "pregnancy_safety"),
    ("哺乳期可以吃头孢吗", "zh", "pregnancy_safety"),
    ("Can you get the HPV vaccine after 26?", "en", "age_limit"),
    ("HPV疫苗多大年龄可以打？", "zh", "age_limit"),
])
def test_the_detail_a_question_asks_for(question, lang, kind):
    detail = asked_detail(question, lang)
    assert detail is not None and detail.kind == kind


@pytest.mark.parametrize("question,lang", [
    ("What are the symptoms of type 2 diabetes?", "en"),
    ("空腹血糖7.2算糖尿病吗", "zh"),            # a fasting glucose, not when to take a drug
    ("做胃镜痛不痛，要空腹多久", "zh"),          # a test's preparation
    ("孩子发烧38.5度怎么办？", "zh"),
    ("How is asthma treated?", "en"),
    ("How often should a woman over 50 get a mammogram?", "en"),   # an age, not of a vaccine
])
def test_other_questions_ask_for_no_detail(question, lang):
    assert asked_detail(question, lang) is None


def test_the_detail_must_be_said_of_the_topic():
    detail = asked_detail("how long is the flu contagious", "en")
    spread = passage("Flu", "Flu spreads when people cough or sneeze. Most people recover in a week.")
    said = passage("Flu", "People with flu are contagious from one day before symptoms until 5 to 7 days after.")
    other = passage("Measles", "Measles is contagious for 4 days after the rash appears.")
    assert not covers_detail(detail, [spread])        # contagion without its duration
    assert covers_detail(detail, [said])
    assert not covers_detail(detail, [other])         # another disease's contagious period


def test_side_effects_must_be_those_of_the_drug_named():
    detail = asked_detail("what are the side effects of the new Alzheimer's drug lecanemab?", "en")
    general = passage("Alzheimer's Disease", "All of these medicines have possible side effects.")
    assert not covers_detail(detail, [general])
    drug = passage("Alzheimer's Disease", "Lecanemab can cause side effects such as brain swelling.")
    assert covers_detail(detail, [drug])


def test_a_chinese_question_is_checked_on_english_and_chinese_pages():
    detail = asked_detail("幽门螺杆菌阳性要治疗吗？会传染吗", "zh")
    forum = passage("幽门螺杆菌阳性吃饭传染吗？", "建议家人分餐，使用公筷。", lang="zh")
    assert covers_detail(detail, [forum])             # the forum question is on exactly this
    unrelated = passage("乙肝哺乳会传染给宝宝吗？", "乙肝病毒可以通过母婴传播。", lang="zh")
    assert not covers_detail(detail, [unrelated])


def test_a_question_with_no_topic_word_is_not_judged():
    detail = asked_detail("is it contagious?", "en")
    assert detail is not None and covers_detail(detail, [passage("Asthma", "Asthma is treated with inhalers.")])


def test_the_focused_query_is_the_topic_page_and_the_detail_words():
    detail = asked_detail("Shingles. My dad has a painful rash, is it contagious to my kids?", "en")
    pages = [passage("Shingles", "Shingles is a painful rash caused by the chickenpox virus.")]
    assert focused_query(detail, "Shingles. My dad has a painful rash, is it contagious to my kids?", "en",
                         pages) == "Shingles contagious"


def test_a_vaccine_age_must_be_stated_on_the_vaccine():
    detail = asked_detail("Can you get the HPV vaccine after 26?", "en")
    generic = passage("HPV", "Vaccines can protect against several types of HPV.")
    stated = passage("HPV", "HPV vaccines are recommended for people aged 9 through 26.")
    assert not covers_detail(detail, [generic]) and covers_detail(detail, [stated])
