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
