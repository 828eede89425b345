"""The walkthroughs in notebooks/ run top to bottom on the embedded defaults (quick mode), so they
cannot rot. They read the default index that ``medchat setup`` builds (CI builds it first)."""


import pytest

from knowledge_base.paths import PROJECT_ROOT

ROOT = PROJECT_ROOT
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def test_every_walkthrough_is_here():
    assert [p.name[:2] for p in NOTEBOOKS] == ["01", "02", "03", "04"][: len(NOTEBOOKS)] and NOTEBOOKS


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_top_to_bottom(path, monkeypatch):
    import nbformat
    from nbclient import NotebookClient

    from chatbot.settings import load_settings

    index = load_settings().paths.index_dir
    assert (index / "current").exists(), f"no default index at {index}: run `medchat setup` first"
    monkeypatch.setenv("MEDCHAT_NOTEBOOK_QUICK", "1")
    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert not errors
    # every code cell ran and the walkthrough printed or plotted something
    assert all(c.execution_count for c in nb.cells if c.cell_type == "code")
    assert sum(len(c.outputs) for c in nb.cells if c.cell_type == "code") >= 3
