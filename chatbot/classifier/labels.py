"""The classifier's taxonomy and the label names of the datasets it is trained and scored on.

Intent keys are English snake_case; every key has a Chinese name (docs/CLASSIFIER.md). The eleven
medical-query intents map one-to-one onto KUAKE-QIC's labels, so public Chinese data trains and
scores them. ``greeting``, ``administrative`` and ``out_of_scope`` are learned from examples the
project wrote; ``emergency`` is never learned: the red-flag screen sets it.

Emotions are Ekman's six plus neutral, as in GoEmotions' Ekman grouping; SMP2020-EWECT's names map
onto them (happy -> joy, angry -> anger, sad -> sadness).
"""

from __future__ import annotations

from typing import Literal

from chatbot.errors import MedChatError

Kind = Literal["intent", "emotion"]

# key -> (Chinese name, English description); order is the model's class order on training.
MEDICAL_INTENTS: dict[str, tuple[str, str]] = {
    "diagnosis": ("病情诊断", "what illness the symptoms point to"),
    "cause": ("病因分析", "why it happens"),
    "treatment": ("治疗方案", "how to treat it"),
    "care_advice": ("就医建议", "whether / where to see a doctor, which hospital"),
    "indicator_interpretation": ("指标解读", "what a test value or report means"),
    "disease_description": ("疾病表述", "what a disease is, its symptoms and course"),
    "consequence": ("后果表述", "what follows: outcome, complications, harm"),
    "precautions": ("注意事项", "what to watch out for, diet, prevention"),
    "efficacy": ("功效作用", "what a drug, food or treatment does"),
    "cost": ("医疗费用", "price of care"),
    "other": ("其他", "medical but none of the above"),
}
CONVERSATION_INTENTS: dict[str, tuple[str, str]] = {
    "greeting": ("问候/闲聊", "greetings, thanks, small talk"),
    "administrative": ("就诊事务", "appointments, registration, opening hours, which department"),
    "out_of_scope": ("非医疗请求", "requests that are not about health"),
}
# Set by the red-flag screen, never predicted by the model.
EMERGENCY = "emergency"
SCREEN_INTENTS: dict[str, tuple[str, str]] = {EMERGENCY: ("紧急情况", "red-flag screen fired")}

INTENTS: dict[str, tuple[str, str]] = {**MEDICAL_INTENTS, **CONVERSATION_INTENTS}
EMOTIONS: dict[str, tuple[str, str]] = {
    "anger": ("愤怒", "angry, annoyed, complaining"),
    "disgust": ("厌恶", "disgusted, repelled"),
    "fear": ("恐惧/焦虑", "afraid, anxious, worried"),
    "joy": ("喜悦", "glad, relieved, thankful"),
    "sadness": ("悲伤", "sad, grieving, hopeless"),
    "surprise": ("惊讶", "surprised, astonished"),
    "neutral": ("中性", "no marked emotion"),
}
# The label given below the confidence threshold.
FALLBACK = {"intent": "other", "emotion": "neutral"}

KUAKE_QIC = {zh: key for key, (zh, _) in MEDICAL_INTENTS.items()}
EWECT = {"happy": "joy", "angry": "anger", "sad": "sadness", "fear": "fear",
         "surprise": "surprise", "neutral": "neutral"}
# GoEmotions' Ekman grouping uses the project's keys already (labels.txt order below).
GOEMOTIONS_EKMAN = ["anger", "disgust", "fear", "joy", "neutral", "sadness", "surprise"]

# MedQuAD's 16 question types onto the taxonomy (reasons in docs/CLASSIFIER.md).
MEDQUAD_QTYPES = {
    "information": "disease_description",
    "symptoms": "disease_description",
    "frequency": "disease_description",
    "stages": "disease_description",
    "causes": "cause",
    "genetic changes": "cause",
    "inheritance": "cause",
    "susceptibility": "cause",
    "exams and tests": "diagnosis",
    "treatment": "treatment",
    "research": "treatment",
    "prevention": "precautions",
    "considerations": "precautions",
    "outlook": "consequence",
    "complications": "consequence",
    "support groups": "care_advice",
}


class LabelError(MedChatError):
    """A label in an evaluation or training file is not one the classifier knows."""


def keys(kind: Kind) -> list[str]:
    return list(INTENTS if kind == "intent" else EMOTIONS)


def normalise_label(kind: Kind, label: str) -> str:
    """The project's key for ``label``: a key itself, or a source dataset's own name (KUAKE-QIC
    Chinese names, EWECT names, GoEmotions Ekman names, MedQuAD qtypes, the Chinese names of the
    taxonomy). Raises :class:`LabelError` for anything else."""
    raw = str(label).strip()
    low = raw.lower()
    if kind == "intent":
        if low in INTENTS or low == EMERGENCY:
            return low
        if raw in KUAKE_QIC:
            return KUAKE_QIC[raw]
        if low in MEDQUAD_QTYPES:
            return MEDQUAD_QTYPES[low]
        for key, (zh, _) in {**CONVERSATION_INTENTS, **SCREEN_INTENTS}.items():
            if raw == zh:
                return key
        known = ", ".join(list(INTENTS) + list(KUAKE_QIC))
    else:
        if low in EMOTIONS:
            return low
        if low in EWECT:
            return EWECT[low]
        for key, (zh, _) in EMOTIONS.items():
            if raw == zh:
                return key
        known = ", ".join(list(EMOTIONS) + list(EWECT))
    raise LabelError(f"unknown {kind} label {raw!r}", hint=f"use one of: {known}")
