"""Does the intent help retrieval as a section hint? Runs the retrieval dev sets twice on the
default index — without a hint, and with the hint the router would pass
(``chatbot.engine.routing.SECTION_HINTS`` of the classified intent) — and prints recall@5 and MRR@10::

    python -m finetune.classifier.hint_eval data/eval/retrieval_en_consumer.jsonl ...
"""

from __future__ import annotations

import sys
from collections import Counter

from chatbot.classifier.runtime import TrainedClassifier
from chatbot.engine.routing import SECTION_HINTS
from chatbot.settings import load_settings
from knowledge_base.evaluation.metrics import evaluate, load_questions
from knowledge_base.retriever import Retriever


def main(files: list[str]) -> None:
    s = load_settings()
    retriever = Retriever(s.paths.index_dir, config=s.retrieval, index_config=s.kb.index)
    clf = TrainedClassifier(s.classifier.model_dir)
    k = 10
    print(f"{'file':<40}{'n':>5}{'hinted':>8}{'R@5 off':>9}{'R@5 on':>9}{'MRR off':>9}{'MRR on':>9}")
    for f in files:
        qs = load_questions(f)
        hints = {q.question: SECTION_HINTS.get(clf.classify(q.question).intent.label) for q in qs}
        off = evaluate(lambda text: retriever.search(text, k=k), qs)
        on = evaluate(lambda text: retriever.search(text, k=k, section_hint=hints[text]), qs)
        hinted = Counter(h for h in hints.values() if h)
        print(f"{f.split('/')[-1]:<40}{off['n']:>5}{sum(hinted.values()):>8}"
              f"{off['recall@5']:>9.4f}{on['recall@5']:>9.4f}{off['mrr@10']:>9.4f}{on['mrr@10']:>9.4f}"
              f"   {dict(hinted)}")


if __name__ == "__main__":
    main(sys.argv[1:])
