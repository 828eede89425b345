"""Where the project's data lives: the one place that finds the project root.

The root is ``$MEDCHAT_HOME`` when set, else the nearest folder above this package that holds the
project's ``pyproject.toml`` and ``data/`` (a source checkout or an editable install), else the
working directory (a wheel installed elsewhere runs against the folder it is started in).
Modules never count their own folder depth: moving a module must not move its data.
"""

from __future__ import annotations

import os
from pathlib import Path


def find_project_root(start: Path | None = None) -> Path:
    env = os.environ.get("MEDCHAT_HOME")
    if env:
        return Path(env).expanduser().resolve()
    here = (start or Path(__file__)).resolve()
    for folder in [here, *here.parents]:
        if (folder / "pyproject.toml").is_file() and (folder / "data").is_dir():
            return folder
    return Path.cwd()


PROJECT_ROOT = find_project_root()
DATA_DIR = PROJECT_ROOT / "data"
EVAL_DIR = DATA_DIR / "eval"
