"""The model's messages for one turn: system and user templates of the question's language
(data/prompts/<lang>/), the numbered, fenced passages and the history that fits the context.

One unit for train and serve: the engine renders every prompt with :class:`PromptBuilder`, and the
LoRA data builder (``finetune.lora.data``) renders its training examples with the same one, so the
fine-tuned model sees the serve format byte for byte.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

from chatbot.engine.intake import fit_budget
from chatbot.llm.base import ChatMessage
from chatbot.prompts import PromptLibrary
from chatbot.settings import ChatSettings, LLMSettings
from knowledge_base.records import Passage

_FENCE = re.compile(r"<<<|>>>")


class Prompt(NamedTuple):
    """What :meth:`PromptBuilder.build` returns (a tuple: ``messages, given, flags = ...``)."""

    messages: list[ChatMessage]
    passages: list[Passage]  # the passages that fit, possibly cut: numbered [1].. in the prompt
    flags: list[str]         # what the budget left out (passage_cut, passages_dropped, ...)


@dataclass(frozen=True)
class PromptBuilder:
    """Renders prompts within a token budget: ``n_ctx`` minus the answer's ``max_new_tokens``,
    each passage cut to ``passage_tokens``, token counts by ``count`` (the serving model's own
    tokenizer, so the budget is the model's)."""

    prompts: PromptLibrary
    count: Callable[[str], int]
    n_ctx: int
    max_new_tokens: int
    passage_tokens: int

    @classmethod
    def from_settings(cls, prompts: PromptLibrary, count: Callable[[str], int],
                      chat: ChatSettings, llm: LLMSettings) -> PromptBuilder:
        return cls(prompts=prompts, count=count, n_ctx=llm.n_ctx, max_new_tokens=llm.max_tokens,
                   passage_tokens=chat.passage_tokens)

    def build(self, lang: str, question: str, passages: list[Passage],
              turns: list[tuple[str, str]], tone: str = "") -> Prompt:
        """``turns``: earlier (role, text) exchanges, oldest first; ``tone``: the classifier's
        instruction for a worried, sad or angry patient (chatbot.engine.routing), or empty."""
        system = self.prompts.template(lang, "system")
        user_tpl = self.prompts.template(lang, "user")
        count = self.count
        fixed = count(system) + count(user_tpl) + count(question) + (count(tone) if tone else 0)
        budget = fit_budget(fixed_tokens=fixed, passages=passages, history=turns,
                            n_ctx=self.n_ctx, max_new_tokens=self.max_new_tokens, count=count,
                            passage_cap_tokens=self.passage_tokens)
        user = user_tpl.format(passages=self.passage_blocks(lang, budget.passages), question=question,
                               tone=f"{tone}\n\n" if tone else "")
        messages = [ChatMessage("system", system)]
        for role, text in budget.history:
            messages.append(ChatMessage("user" if role == "user" else "assistant", text))
        messages.append(ChatMessage("user", user))
        return Prompt(messages, budget.passages, budget.flags)

    def passage_blocks(self, lang: str, passages: list[Passage]) -> str:
        """The numbered passages as the user template's ``{passages}``."""
        blocks = []
        for n, p in enumerate(passages, 1):
            header = self.prompts.text(lang, "passage.header", n=n, title=p.title or p.doc_id,
                                       source=p.source or "-")
            # Passages are quoted data: fenced, so text inside cannot pose as instructions.
            blocks.append(f"{header}\n<<<\n{defang(p.text)}\n>>>")
        return "\n\n".join(blocks)


def defang(text: str) -> str:
    """Passage text cannot close its own fence: the fence marks are removed from it."""
    return _FENCE.sub("", text)
