"""Intent and emotion classifier in front of the LLM (inference only; training is in
``finetune.classifier``). See docs/CLASSIFIER.md."""

from chatbot.classifier.labels import EMOTIONS, FALLBACK, INTENTS, MEDICAL_INTENTS, normalise_label
from chatbot.classifier.model import ClassifierModel, ModelError
from chatbot.classifier.runtime import TrainedClassifier

__all__ = ["EMOTIONS", "FALLBACK", "INTENTS", "MEDICAL_INTENTS", "ClassifierModel", "ModelError",
           "TrainedClassifier", "normalise_label"]
