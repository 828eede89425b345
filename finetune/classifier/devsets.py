"""Write the dev evaluation files of the classifier (JSONL ``{"text", "label"}`` with each source
dataset's own label names, as ``medchat eval intent|emotion`` reads them)::

    python -m finetune.classifier.devsets /tmp/clf_dev

- ``kuake_heldback.jsonl``: the KUAKE-QIC rows the shipped model did NOT train on (the same seeded
  stratified split as ``medchat train classifier``), with KUAKE's Chinese label names;
- ``goemotions_ekman_dev.jsonl``: GoEmotions' dev split, single-label comments, Ekman names;
- ``ewect_usual_eval.jsonl``, ``ewect_virus_eval.jsonl``: SMP2020-EWECT evaluation files, EWECT
  names (research only: never trained on).

The files are derived from non-commercial / research-only data: they are written outside the
repository and never committed.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from chatbot.classifier.labels import KUAKE_QIC
from finetune.classifier import data as D
from finetune.classifier.train import TrainConfig, load_sets, split_sets

_EWECT_NAMES = {"joy": "happy", "anger": "angry", "sadness": "sad", "fear": "fear",
                "surprise": "surprise", "neutral": "neutral"}


def _write(path: Path, rows: list[tuple[str, str]]) -> None:
    path.write_text("".join(json.dumps({"text": t, "label": l}, ensure_ascii=False) + "\n" for t, l in rows),
                    encoding="utf-8")
    print(f"written: {path} ({len(rows)} rows)")


def main(out: Path, cfg: TrainConfig | None = None) -> None:
    cfg = cfg or TrainConfig()
    out.mkdir(parents=True, exist_ok=True)
    zh_name = {key: zh for zh, key in KUAKE_QIC.items()}
    _, held = split_sets(load_sets(cfg), cfg)["intent"]
    _write(out / "kuake_heldback.jsonl", [(e.text, zh_name[e.label]) for e in held if e.source == "kuake-qic"])
    S = cfg.shared_data
    _write(out / "goemotions_ekman_dev.jsonl",
           [(e.text, e.label) for e in D.goemotions_ekman(S / "goemotions/ekman/dev.tsv")])
    for name in ("usual", "virus"):
        _write(out / f"ewect_{name}_eval.jsonl",
               [(e.text, _EWECT_NAMES[e.label]) for e in D.ewect(S / f"smp2020-ewect/{name}_eval_labeled.json")])


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/clf_dev"))
