"""The numbered notebooks: committed clean, parameterised, and runnable with papermill.

nbval runs every notebook in full (``pytest notebooks/``); here the ablation
notebook runs under papermill with overridden parameters, and the report
builder runs on a throwaway two-cell notebook.
"""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import nbformat
import pytest

from dflib.report import build_report, notebooks, run_notebook

NB_DIR = Path(__file__).resolve().parents[1] / "notebooks"
ALL = notebooks(NB_DIR)


def _parameters_cell(nb) -> nbformat.NotebookNode:
    cells = [c for c in nb.cells if c.cell_type == "code" and "parameters" in c.metadata.get("tags", [])]
    assert len(cells) == 1, f"expected one cell tagged 'parameters', found {len(cells)}"
    return cells[0]


def test_numbered_notebooks_exist():
    names = [p.name[:2] for p in ALL]
    assert names == [f"{i:02d}" for i in range(1, len(ALL) + 1)]  # 01, 02, … without gaps
    assert len(ALL) >= 7


@pytest.mark.parametrize("path", ALL, ids=lambda p: p.name)
def test_committed_notebook_is_clean(path):
    nb = nbformat.read(str(path), as_version=4)
    nbformat.validate(nb)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [], f"{path.name}: a code cell has outputs"
            assert cell.execution_count is None, f"{path.name}: a code cell has an execution count"
    assert "widgets" not in nb.metadata, f"{path.name}: widget state saved in the notebook metadata"
    # the parameters cell assigns PROFILE = "quick" by default (papermill overrides it)
    tree = ast.parse(_parameters_cell(nb).source)
    assigned = {t.id: n.value for n in tree.body if isinstance(n, ast.Assign) for t in n.targets if isinstance(t, ast.Name)}
    assert isinstance(assigned.get("PROFILE"), ast.Constant) and assigned["PROFILE"].value == "quick"
    assert "SEED" in assigned


def _installed_kernelspec() -> dict:
    """The kernelspec `make` installs (``ipykernel install --sys-prefix --name python3``)."""
    from ipykernel.kernelspec import get_kernel_dict

    makefile = (NB_DIR.parent / "Makefile").read_text()
    install = re.search(r"ipykernel install (.*)", makefile)
    assert install, "the Makefile installs the notebooks' kernel"
    args = install.group(1).split()
    name = args[args.index("--name") + 1]
    assert "--display-name" not in args  # else ipykernel's default display name below would not apply
    spec = get_kernel_dict()
    return {"display_name": spec["display_name"], "language": spec["language"], "name": name}


@pytest.mark.parametrize("path", ALL, ids=lambda p: p.name)
def test_kernelspec_matches_the_installed_kernel(path):
    # When JupyterLab opens a notebook it writes the kernel's kernelspec and language_info
    # into its metadata; any difference marks the notebook unsaved before the reader did anything.
    from ipykernel.ipkernel import IPythonKernel

    spec = _installed_kernelspec()
    assert spec == {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}
    nb = nbformat.read(str(path), as_version=4)
    assert dict(nb.metadata.get("kernelspec", {})) == spec
    info = dict(nb.metadata.get("language_info", {}))
    kernel_info = dict(IPythonKernel.language_info)
    # the Python version is the reference set-up's (README: Python 3.11); another one is recorded on save
    assert re.fullmatch(r"3\.11\.\d+", info.pop("version", ""))
    kernel_info.pop("version")
    assert info == kernel_info


def test_run_notebook_rejects_unknown_parameter(tmp_path):
    out = tmp_path / "out.ipynb"
    with pytest.raises(ValueError, match="NOT_A_PARAMETER"):
        run_notebook(NB_DIR / "06_ablations.ipynb", out, {"NOT_A_PARAMETER": 1, "PROFILE": "quick"})
    assert not out.exists()  # rejected before anything ran


@pytest.mark.slow
def test_ablation_notebook_with_overridden_parameters(tmp_path):
    results = tmp_path / "results" / "ablation.json"
    out = tmp_path / "06_executed.ipynb"
    run_notebook(NB_DIR / "06_ablations.ipynb", out,
                 {"VARIANTS": ["dualfocus", "dfv"], "STEPS": 3, "LAMBDA_SV": 0.5, "OUT_JSON": str(results)})
    rows = json.loads(results.read_text())
    assert [r["switch"] for r in rows] == ["dualfocus", "dfv"]
    by = {r["switch"]: r for r in rows}
    # the overrides reached the runs: λ_sv of the full model, both switched off for the DFV baseline
    assert by["dualfocus"]["lambda_sv"] == 0.5 and by["dualfocus"]["lambda_fv"] == 1.0
    assert by["dfv"]["lambda_sv"] == 0.0 and by["dfv"]["lambda_fv"] == 0.0
    assert by["dualfocus"]["model"] == "tiny" and by["dfv"]["model"] == "dfv_tiny"
    assert all(r["steps"] == 3 for r in rows)
    assert by["dfv"]["params"] < by["dualfocus"]["params"]
    # the executed notebook carries the injected parameters and no error
    nb = nbformat.read(str(out), as_version=4)
    injected = [c for c in nb.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert len(injected) == 1 and "STEPS = 3" in injected[0].source
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert errors == []


def test_build_report_on_a_tiny_notebook(tmp_path):
    nb_dir = tmp_path / "nbs"
    nb_dir.mkdir()
    params = nbformat.v4.new_code_cell('PROFILE = "quick"\nSEED = 0')
    params.metadata["tags"] = ["parameters"]
    nb = nbformat.v4.new_notebook(cells=[params, nbformat.v4.new_code_cell("print('profile is', PROFILE, 6 * 7)")])
    nb.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python", "name": "python3"}
    nbformat.write(nb, str(nb_dir / "01_tiny.ipynb"))
    (nb_dir / "not_numbered.ipynb").write_text(nbformat.writes(nb))  # ignored: not NN_name

    out = tmp_path / "report"
    report = build_report(out, profile="full", notebook_dir=nb_dir)
    assert report.ok and [e.notebook for e in report.entries] == ["01_tiny.ipynb"]
    index = (out / "index.html").read_text()
    assert 'href="01_tiny.html"' in index
    page = (out / "01_tiny.html").read_text()
    assert "profile is full 42" in page  # the parameter was injected and the cell ran
    env = json.loads((out / "environment.json").read_text())
    assert env["profile"] == "full" and env["git_revision"]
    assert env["packages"]["torch"] and env["packages"]["numpy"]
    assert set(env["run_seconds"]) == {"01_tiny.ipynb"}


# --- what the report's front page reads of each notebook (dflib.notebook_summary) ---

@pytest.mark.parametrize("path", ALL, ids=lambda p: p.name)
def test_notebook_has_a_title_a_purpose_and_one_figure(path):
    from dflib.notebook_summary import FIGURE_TAG, title_and_purpose

    nb = nbformat.read(str(path), as_version=4)
    assert nb.cells[0].cell_type == "markdown", f"{path.name}: the first cell is the title and purpose"
    title, purpose = title_and_purpose(nb.cells[0].source)
    assert re.fullmatch(rf"{int(path.name[:2])}\. \S.*", title), f"{path.name}: title {title!r} is not 'N. Title'"
    assert len(purpose.split()) >= 15 and not purpose.endswith(":"), \
        f"{path.name}: the paragraph after the title says what the notebook is for: {purpose!r}"
    figures = [c for c in nb.cells if FIGURE_TAG in c.metadata.get("tags", [])]
    assert len(figures) == 1 and figures[0].cell_type == "code", \
        f"{path.name}: tag exactly one code cell {FIGURE_TAG!r} (its figure is the report's thumbnail)"
    assert re.search(r"plt\.show\(\)|display\(|fig\b", figures[0].source), f"{path.name}: the figure cell draws nothing"


@pytest.mark.parametrize("path", ALL, ids=lambda p: p.name)
def test_every_assert_cell_says_what_it_checks(path):
    from dflib.notebook_summary import CHECK_PREFIX, check_description, is_assert_cell

    nb = nbformat.read(str(path), as_version=4)
    cells = [c for c in nb.cells if is_assert_cell(c)]
    assert cells, f"{path.name}: a notebook checks what it shows with assert cells"
    for c in cells:
        text = check_description(c.source)
        assert text, f"{path.name}, cell {c.get('id')}: start the assert cell with '{CHECK_PREFIX} <the fact it checks>'"
        assert len(text) <= 150, f"{path.name}, cell {c.get('id')}: keep the description to one line ({len(text)} chars)"


# --- notebooks paired with jupytext percent scripts (notebooks/jupytext.toml) ---

SYNC_COMMAND = ".venv/bin/jupytext --sync notebooks/[0-9][0-9]_*.ipynb"


def pair_differences(ipynb: Path, script: Path) -> list[str]:
    """How the cells of a notebook and its percent script differ: type, source and tags of each
    cell, as jupytext reads them (outputs, ids, other metadata and the script's header do not count)."""
    import jupytext

    def cells(path):
        return [(c.cell_type, c.source.strip(), sorted(c.metadata.get("tags", []))) for c in jupytext.read(str(path)).cells]

    a, b = cells(ipynb), cells(script)
    out = [f"{ipynb.name} has {len(a)} cells, {script.name} {len(b)}"] if len(a) != len(b) else []
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            first = next((lx for lx, ly in zip(x[1].splitlines() + [""], y[1].splitlines() + [""]) if lx != ly), "")
            out.append(f"cell {i}: {x[0]} {x[2]} vs {y[0]} {y[2]}; first differing line of the .ipynb: {first[:80]!r}")
    return out


@pytest.mark.parametrize("path", ALL, ids=lambda p: p.name)
def test_notebook_leaves_no_folder_behind(path):
    # mkdtemp folders outlive the kernel (nbval kills it, so even TemporaryDirectory's exit hook never runs):
    # each run of the report left the training and ablation runs' checkpoints in /tmp, 9 MB a time
    code = [c.source for c in nbformat.read(str(path), as_version=4).cells if c.cell_type == "code"]
    assert not any("mkdtemp" in src for src in code), f"{path.name}: tempfile.mkdtemp is never removed"
    scratch = [m.group(1) for src in code for m in re.finditer(r"^(\w+) = tempfile\.TemporaryDirectory\(", src, re.MULTILINE)]
    for name in scratch:
        assert code[-1].strip().startswith(f"{name}.cleanup()"), f"{path.name}: the last cell must call {name}.cleanup()"


@pytest.mark.parametrize("path", ALL, ids=lambda p: p.name)
def test_notebook_and_its_percent_script_are_in_sync(path):
    script = path.with_suffix(".py")
    assert script.is_file(), f"{script.name} is missing: run {SYNC_COMMAND}"
    assert script.read_text().lstrip().startswith("# ---"), f"{script.name}: not a jupytext script"
    assert "# %%" in script.read_text(), f"{script.name}: not in the percent format"
    diffs = pair_differences(path, script)
    assert not diffs, f"{path.name} and {script.name} differ (run {SYNC_COMMAND}):\n" + "\n".join(diffs)


def test_pair_differences_sees_an_edit_on_either_side(tmp_path):
    import jupytext

    src = ALL[0]
    ipynb, script = tmp_path / src.name, tmp_path / src.with_suffix(".py").name
    ipynb.write_text(src.read_text())
    jupytext.write(jupytext.read(str(src)), str(script), fmt="py:percent")
    assert pair_differences(ipynb, script) == []
    text = script.read_text()
    script.write_text(text.replace('PROFILE = "quick"', 'PROFILE = "full"', 1))  # a code edit in the script only
    assert len(pair_differences(ipynb, script)) == 1
    script.write_text(text.replace('# %% tags=["parameters"]', "# %%", 1))  # a lost tag
    assert any("['parameters']" in d for d in pair_differences(ipynb, script))
    script.write_text(text + '\n# %%\nprint("a new cell")\n')  # a cell added on one side
    assert "cells" in pair_differences(ipynb, script)[0]
