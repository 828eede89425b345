"""Two things taken together: which questions ask it, and when the passages speak of the pair."""

from __future__ import annotations

import pytest

from chatbot.engine.answer.combination import Combination, combination_terms, covers_combination
from knowledge_base.records import Passage


def passage(title: str, text: str, doc_id: str = "d") -> Passage:
    return Passage(id=f"{doc_id}#0", doc_id=doc_id, title=title, text=text, url="", source="test",
                   lang="en", score=1.0)


@pytest.mark.parametrize("question,lang,pair", [
    ("can i take ibuprofin with warfarin", "en", ("ibuprofin", "warfarin")),
    ("is it ok to take tylenol and advil together for a bad headache", "en", ("tylenol", "advil")),
    ("Can I drink alcohol while taking metronidazole?", "en", ("alcohol", "metronidazole")),
    ("can you take antibiotics with the pill, does it stop it working", "en", ("antibiotics", "pill")),
    ("阿莫西林和头孢能一起吃吗", "zh", ("阿莫西林", "头孢")),
    ("吃完头孢能喝酒吗，要隔多久", "zh", ("头孢", "酒")),
    ("阿莫西林和头孢有什么区别，能一起吃吗", "zh", ("阿莫西林", "头孢")),
])
def test_the_two_things_a_question_asks_to_combine(question, lang, pair):
    assert combination_terms(question, lang) == Combination(*pair)


@pytest.mark.parametrize("question,lang", [
    ("How is asthma treated with an inhaler?", "en"),
    ("I have asthma, when should I use the brown inhaler and when the blue one", "en"),
    ("what are the side effects of ibuprofen", "en"),
    ("how do I take care of my mum with dementia", "en"),
    ("糖尿病人能吃水果吗", "zh"),
    ("布洛芬吃多了会怎么样", "zh"),
])
def test_other_questions_are_not_combinations(question, lang):
    assert combination_terms(question, lang) is None


def test_a_sentence_naming_both_beside_a_combining_word_covers_the_pair():
    combo = Combination("ibuprofen", "warfarin")
    said = passage("Blood thinners", "Do not take ibuprofen with warfarin unless your doctor says so.")
    assert covers_combination(combo, [said])
    listed = passage("Pain relievers", "Pain relievers include ibuprofen. Warfarin is a blood thinner.")
    assert not covers_combination(combo, [listed])          # each named, the pair never


def test_the_page_of_one_naming_the_other_covers_the_pair_through_synonyms_and_the_glossary():
    lisinopril = passage("Lisinopril", "Tell your doctor if you take NSAIDs such as naproxen.")
    assert covers_combination(Combination("advil", "lisinopril"), [lisinopril])     # advil -> NSAIDs
    warfarin = passage("Warfarin", "Aspirin can raise the risk of bleeding.")
    assert covers_combination(Combination("华法林", "阿司匹林"), [warfarin])          # glossary
    assert not covers_combination(Combination("华法林", "西柚"), [warfarin])
