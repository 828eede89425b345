"""MODEL_CARD.md of a trained classifier, written beside the weights from its metrics and config
so the card cannot drift from the model."""

from __future__ import annotations

from chatbot.classifier.labels import EMOTIONS, INTENTS

LICENCES = """\
| data | language | used for | licence | what it implies |
|---|---|---|---|---|
| KUAKE-QIC train (CBLUE) | zh | intent head (11 medical intents) | CC BY-NC-SA 4.0 | the intent weights are a derivative: **non-commercial use only, share-alike (CC BY-NC-SA 4.0), attribute CBLUE**. A commercial deployment must retrain the intent head without KUAKE-QIC (`medchat train classifier` with a different `--data`). |
| MedQuAD question types (NIH, Ben Abacha & Demner-Fushman 2019) | en | intent head (qtypes mapped, docs/CLASSIFIER.md) | CC BY 4.0 | attribution |
| GoEmotions, Ekman grouping (Demszky et al. 2020) | en | emotion head | CC BY 4.0 | attribution |
| MedChat examples (`data/classifier/*.jsonl`) | zh + en | conversation intents, patient-style emotions, English medical intents | written by the project (project licence, MIT) | none |
| SMP2020-EWECT | zh | **evaluation only** — never trained on | research only | not in the weights |

Because of KUAKE-QIC the shipped weights as a whole are under **CC BY-NC-SA 4.0**."""


def model_card(config: dict, metrics: dict) -> str:
    heads = metrics["heads"]
    lines = [
        "# MedChat intent and emotion classifier", "",
        "Two linear softmax heads over `[USE-multilingual sentence embedding (512-d) ⊕ hashed "
        "character/word n-grams]`, temperature-scaled, with a confidence threshold each (below it the "
        "label is `other` / `neutral`). Inference is numpy only (`chatbot.classifier`); training is "
        "`finetune.classifier` (scikit-learn: one-vs-rest linear SVM or multinomial logistic "
        "regression per head, see the table below). Design and label maps: docs/CLASSIFIER.md.", "",
        f"- encoder: `{config['encoder']}` ({config['dim']}-d); n-grams: {config['ngrams']}",
        f"- trained: {config.get('trained_at', '?')} in {config.get('train_seconds', '?')} s",
        f"- exact command: `{config.get('train_command', 'medchat train classifier')}` "
        "(training options in `training_config.json`)", "",
        "## Labels", "",
        "Intents: " + ", ".join(f"`{k}` {zh}" for k, (zh, _) in INTENTS.items()) +
        " (`emergency` is set by the red-flag screen, not learned).", "",
        "Emotions: " + ", ".join(f"`{k}` {zh}" for k, (zh, _) in EMOTIONS.items()) + ".", "",
        "## Training data and licences", "", LICENCES, "",
        "## Figures on the held-back part (stratified 15 %, never trained on)", "",
        "| head | model | n train | n held back | accuracy | macro-F1 | ECE | temperature | threshold | C | dense scale |",
        "|---|---|---|---|---|---|---|---|---|---|---|"]
    for kind, info in heads.items():
        hb = info["held_back"]
        model = info.get("model", "logistic_regression").replace("_", " ")
        lines.append(f"| {kind} | {model} | {info['n_train']} | {info['n_held_back']} | {hb['accuracy']:.4f} | "
                     f"{hb['macro_f1']:.4f} | {hb['ece']:.4f} | {info['temperature']} | {info['threshold']} | "
                     f"{info['C']} | {info['dense_scale']} |")
    refit = [k for k, info in heads.items() if info.get("refit_on_held_back")]
    if refit:
        lines += ["", f"Refitted after calibration: {', '.join(refit)} — once C, temperature and "
                  "threshold were chosen, the head was trained again on train + held back (more "
                  "data for the shipped weights). Its figures above are those of the model before "
                  "the refit, which never saw the held-back part."]
    lines += ["", "Per source of the held-back part:", "", "| head | source | n | accuracy | macro-F1 |",
              "|---|---|---|---|---|"]
    for kind, info in heads.items():
        for src, m in info["held_back_by_source"].items():
            lines.append(f"| {kind} | {src} | {m['n']} | {m['accuracy']:.4f} | {m['macro_f1']:.4f} |")
    lines += ["", "Scores on the public dev / evaluation files (GoEmotions dev, SMP2020-EWECT) and "
              "latency: docs/CLASSIFIER.md.", "",
              "## Intended use and limits", "",
              "Routing a patient's message (medical question / greeting / administrative / out of scope) "
              "and choosing the answer's tone. Not a diagnostic tool. The Chinese emotion head learned "
              "from about 1,100 project-written Chinese examples plus cross-lingual transfer from English "
              "Reddit comments: it is weaker on Chinese social-media text (EWECT figures in "
              "docs/CLASSIFIER.md). Messages are read up to their first 512 characters.", ""]
    return "\n".join(lines)
