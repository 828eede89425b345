"""Passages and prompts the chatbot.engine.answer tests share."""

from __future__ import annotations

from chatbot.prompts import PromptLibrary
from knowledge_base.records import Passage

PROMPTS = PromptLibrary()


def passage(n: int, text: str, lang: str = "en", question: str = "", title: str = "") -> Passage:
    return Passage(id=f"doc{n}#c0", doc_id=f"doc{n}", text=text, title=title or f"Title {n}",
                   url=f"https://example.org/{n}", source="TestSource", lang=lang, score=1.0,
                   question=question)


GOUT = passage(1, "What causes gout?\nGout is caused by uric acid crystals that build up in a joint, "
                  "often the big toe. Red meat, seafood and alcohol raise uric acid levels. "
                  "A sudden attack is treated with NSAIDs or corticosteroids.",
               question="What causes gout?", title="Gout")

GLAUCOMA = passage(2, "Glaucoma slowly damages the optic nerve. Early glaucoma has no symptoms; later, "
                      "side vision is lost. Regular eye exams with eye pressure tests find it early.",
                   title="Glaucoma")

ASTHMA = passage(3, "Asthma is treated with inhaled corticosteroids that control airway inflammation. "
                    "A rescue inhaler relieves sudden wheezing. The usual adult dose is 200 mg twice "
                    "a day.", title="Asthma")

ZH_HBP = passage(1, "高血压饮食上要注意什么？\n高血压患者要低盐饮食，每天食盐不超过六克。多吃新鲜蔬菜和水果，"
                    "少吃咸菜和腌制食品。血压控制不好时，要在医生指导下服用降压药。",
                 lang="zh", question="高血压饮食上要注意什么？", title="高血压饮食")

ZH_DM = passage(2, "糖尿病患者可以适量吃含糖量低的水果，比如苹果、柚子，应在两餐之间吃，并监测血糖。"
                   "每次服用二甲双胍2片。", lang="zh", title="糖尿病饮食")


def quoted_lines(text: str) -> list[tuple[str, int]]:
    """(sentence without its marker, n) for every quoted line of an extractive or composed answer."""
    from chatbot.engine.answer.citations import find_citations

    out = []
    for line in text.splitlines():
        found = find_citations(line)
        if found:
            out.append((line.rsplit("[", 1)[0].strip(), found[0]))
    return out
