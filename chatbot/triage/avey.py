"""Turn the Avey vignettes (MIT repo medaks/symptomcheck-bench; not shipped) into an
``eval triage`` file, labelled by diagnosis with data/eval/avey_triage_labels.yaml::

    python -m chatbot.triage.avey /work/shared/data/avey-vignettes/avey_vignettes.jsonl /tmp/avey_triage.jsonl
    python -m chatbot.cli eval triage /tmp/avey_triage.jsonl
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import yaml

from chatbot.settings import AVEY_LABELS_FILE as LABELS
from chatbot.triage.evaluation import TriageEvalError
from knowledge_base.evaluation.jsonl import read_jsonl


def convert(src: Path, out: Path, labels_path: Path = LABELS) -> int:
    labels = yaml.safe_load(labels_path.read_text(encoding="utf-8"))
    by_dx = {dx.lower(): (level, spec["source"]) for level, spec in labels.items() for dx in spec["diagnoses"]}
    rows = []
    for n, v in read_jsonl(src, TriageEvalError):
        label = by_dx.get(v["correct_diagnosis"].lower())
        if label is None:
            continue
        absent = v.get("absent_findings") or ""
        text = f"{v['demographics']}. {v['chief_complaints']}. {v['presentation']} {absent}".strip()
        history = (v.get("physical_history") or "").strip(" -")
        rows.append({"id": f"avey-{n:03d}", "text": text, "expected": label[0], "source": label[1],
                     "diagnosis": v["correct_diagnosis"],
                     **({"comorbidities": [history]} if history else {})})
    out.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return len(rows)


if __name__ == "__main__":
    print(convert(Path(sys.argv[1]), Path(sys.argv[2])))
