"""Questions no health library answers by their nature (chatbot.engine.scope): each category in
both languages, the clause rule ("…and how much does it cost" beside a clinical question is
answered), the unless cues (a dog bite is a human question), and the engine's honest reply."""

from __future__ import annotations

import pytest

from chatbot.engine.scope import CATEGORIES, LibraryScope, ScopeError
from chatbot.llm.fake import FakeGenerator

from tests.chatbot.engine.test_routing import PROMPTS, FixedClassifier, SpyRetriever, service_with

SCOPE = LibraryScope()


@pytest.mark.parametrize("text,lang,category", [
    # blind answer round 6: a named health system, reviews, paperwork, brands compared
    ("Can I book an appointment with a dermatologist at Johns Hopkins online?", "en", "provider"),
    ("How do I get a copy of my medical records from Kaiser?", "en", "provider"),
    ("Any reviews of Dr. Sarah Klein, orthopedic surgeon in Denver?", "en", "provider"),
    ("How do I fill out FMLA paperwork for my mother's surgery?", "en", "provider"),
    ("Nature Made vs Kirkland vitamin D, which brand is better?", "en", "product"),
    ("怎么开病假证明？单位要求医院盖章", "zh", "provider"),
    ("有没有靠谱的治疗白癜风的医院推荐，最好是北京的", "zh", "provider"),
    ("上海瑞金医院内分泌科哪个医生看得好？", "zh", "provider"),
    ("请问同仁堂的六味地黄丸和九芝堂的哪个效果好", "zh", "product"),
    ("汤臣倍健的蛋白粉好不好，值得买吗", "zh", "product"),
    # blind answer round 5: hours, booking at a named clinic, a doctor's note, a named doctor
    ("What time does the CVS pharmacy on Main Street close on Sundays?", "en", "provider"),
    ("How do I book an appointment with a cardiologist at Mayo Clinic Rochester?", "en", "provider"),
    ("Can I get a doctor's note for work online today?", "en", "provider"),
    ("华西医院的张教授看甲状腺怎么样，靠谱吗", "zh", "provider"),
    ("楼下药店几点关门", "zh", "provider"),
    ("How much does Botox for forehead lines cost in Los Angeles?", "en", "cost"),
    ("Does Blue Cross PPO cover LASIK eye surgery?", "en", "cost"),
    ("Is lecanemab covered by Medicare and how much does each infusion cost?", "en", "cost"),
    ("割双眼皮手术大概多少钱？", "zh", "cost"),
    ("异地就医医保怎么报销？报销比例是多少？", "zh", "cost"),
    ("What are the visiting hours at the general hospital?", "en", "provider"),
    ("Who is the best rated dermatologist in Chicago that takes walk-ins?", "en", "provider"),
    ("治胰腺癌哪家医院好", "zh", "provider"),
    ("深圳哪里有24小时营业的药店？", "zh", "provider"),
    ("My dog ate some grapes an hour ago, how many are toxic?", "en", "veterinary"),
    ("猫咪一直呕吐不吃东西怎么办？", "zh", "veterinary"),
    ("Can you recommend a good laptop for medical school?", "en", "product"),
    ("推荐一款适合大学生的笔记本电脑", "zh", "product"),
    # from the answerer's blind round 2 (after its report): a clause without a question cue asks
    # nothing on its own, so "…多少钱，社区医院可以打吗" is refused as a whole
    ("九价HPV疫苗多少钱，社区医院可以打吗", "zh", "cost"),
    ("哪里可以买到司美格鲁肽，减肥针多少钱一支", "zh", "cost"),
    ("Walgreens pharmacy hours on Sunday?", "en", "provider"),
    ("Is Dr. Smith at Mayo Clinic Rochester taking new patients?", "en", "provider"),
    ("Which brand of protein powder is best for building muscle?", "en", "product"),
    # blind round 3 (dev data after its report): a fee, a named hospital's booking and clinic days
    ("how do I get my medical records transferred from my old GP, is there a fee", "en", "cost"),
    ("北京协和医院挂号怎么挂，周末有门诊吗", "zh", "provider"),
])
def test_out_of_library_questions_are_named(text, lang, category):
    verdict = SCOPE.check(text, lang)
    assert verdict is not None and verdict.category == category


@pytest.mark.parametrize("text,lang", [
    ("what time of day should I take my thyroid pill", "en"),
    ("张医生说我要复查，这正常吗", "zh"),
    ("云南白药能止血吗", "zh"),                       # a brand named alone in a medical question
    ("How do I get a copy of my medical records?", "en"),   # the administrative reply's own
    # doses and amounts are medical, not prices
    ("How much ibuprofen can I give my 3 year old?", "en"),
    ("How much water should I drink a day with kidney stones?", "en"),
    # a clinical question in another clause keeps the message medical
    ("What is prednisone used for, and how much does it cost?", "en"),
    ("高血压吃什么药好？费用高吗", "zh"),
    # an animal involved in a human health question
    ("My dog bit me yesterday and the wound is red, do I need a rabies shot?", "en"),
    ("被猫抓伤了要打狂犬疫苗吗？", "zh"),
    ("I'm pregnant, is it safe to clean my cat's litter box?", "en"),
    ("我对猫过敏，一直打喷嚏怎么办", "zh"),
    # ordinary questions
    ("What are the symptoms of glaucoma?", "en"),
    ("孩子发烧38.5度怎么办？", "zh"),
    ("My eyes hurt after using my phone all day, what can I do?", "en"),
    ("挂什么科？最近总是头晕", "zh"),
    ("医院的发热门诊看什么病", "zh"),
    ("what are the side effects of prednisone and how long do they last", "en"),
])
def test_medical_questions_are_not_refused(text, lang):
    assert SCOPE.check(text, lang) is None


def test_every_category_has_a_reply_in_both_languages():
    for category in CATEGORIES:
        for lang in ("zh", "en"):
            assert PROMPTS.text(lang, f"route.scope.{category}").strip()


def test_a_broken_cue_file_is_a_domain_error(tmp_path):
    bad = tmp_path / "scope.yaml"
    bad.write_text("cost:\n  en: ['(unclosed']\n", encoding="utf-8")
    with pytest.raises(ScopeError):
        LibraryScope(bad).check("how much is it", "en")
    bad.write_text("prices: {en: [cost]}\n", encoding="utf-8")
    with pytest.raises(ScopeError):
        LibraryScope(bad).warm_up()


@pytest.mark.parametrize("text,lang,category", [
    ("How much does a knee replacement cost?", "en", "cost"),
    ("我家狗狗吃了巧克力，会中毒吗？", "zh", "veterinary"),
])
def test_engine_answers_honestly_without_retrieval_or_model(built_index, tmp_path, text, lang, category):
    gen = FakeGenerator()
    retriever = SpyRetriever(built_index)
    # the classifier calls it medical; the scope decides it is not the library's to answer
    service = service_with(built_index, tmp_path, FixedClassifier("treatment"), gen=gen, retriever=retriever)
    result = service.ask(text)
    assert gen.calls == [] and not hasattr(retriever, "hints")
    assert result.answer == PROMPTS.text(lang, f"route.scope.{category}")
    assert {"route_out_of_scope", f"scope_{category}", "no_evidence"} <= set(result.flags)
    assert result.citations == [] and result.passages == []


def test_an_administrative_question_beyond_the_library_keeps_its_reply_and_says_no_source(built_index, tmp_path):
    # blind round 2: "Walgreens pharmacy hours on Sunday?" got the administrative reply, unflagged
    service = service_with(built_index, tmp_path, FixedClassifier("administrative"))
    result = service.ask("Walgreens pharmacy hours on Sunday?")
    assert PROMPTS.text("en", "route.administrative") in result.answer
    assert {"route_administrative", "scope_provider", "no_evidence"} <= set(result.flags)
    plain = service.ask("How do I get a copy of my medical records?")
    assert "no_evidence" not in plain.flags and "route_administrative" in plain.flags
