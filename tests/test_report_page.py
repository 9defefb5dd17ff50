"""The report's front page: cards from executed notebooks, headline results from the
benchmarks' JSON, the environment table, and the one-file report."""

from __future__ import annotations

import base64
import io
import json
import re

import nbformat
import pytest
from PIL import Image

from dflib import report as R
from dflib.notebook_summary import check_description, summarize_notebook, title_and_purpose
from dflib.report_html import markdown_html, protect_maths, restore_maths
from dflib.report_page import environment_html
from dflib.report_results import headline_results
from dflib.utils import cpu_model

FIGURE = """import matplotlib.pyplot as plt
from IPython.display import display
fig, ax = plt.subplots(figsize=(8, 4), dpi=100)  # about 800 x 400 px
ax.plot([0, 1], [0, 1])
display(fig)
plt.close(fig)"""


def _checks_notebook(path):
    """A notebook with a purpose, a tagged figure and three checks: one holds, one fails, one never runs."""
    params = nbformat.v4.new_code_cell('PROFILE = "quick"\nSEED = 0')
    params.metadata["tags"] = ["parameters"]
    figure = nbformat.v4.new_code_cell(FIGURE)
    figure.metadata["tags"] = ["figure"]
    cells = [
        nbformat.v4.new_markdown_cell("# 1. Checks\n\nThis notebook checks that $6 \\cdot 7 = 42$ and more.\n\nDetails."),
        params,
        nbformat.v4.new_code_cell("# Check: six times seven is `42`\nassert 6 * 7 == 42"),
        figure,
        nbformat.v4.new_code_cell("# Check: one equals two\nassert 1 == 2, 'deliberately false'"),
        nbformat.v4.new_code_cell("# Check: never reached\nassert True"),
    ]
    nb = nbformat.v4.new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python", "name": "python3"}
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, str(path))
    return path


@pytest.fixture(scope="module")
def checks_report(tmp_path_factory):
    root = tmp_path_factory.mktemp("checks")
    _checks_notebook(root / "nbs" / "01_checks.ipynb")
    report = R.build_report(root / "report", notebook_dir=root / "nbs", cell_timeout_s=120)
    return root, report


def test_title_purpose_and_check_description():
    assert title_and_purpose("# 3. Title\n\nFirst line\nsecond line.\n\nMore.") == ("3. Title", "First line second line.")
    assert check_description("# Check: blur is zero in focus\nassert x") == "blur is zero in focus"
    assert check_description("# a comment\nassert x") is None
    assert check_description("# Check:\nassert x") is None


def test_card_of_an_executed_notebook(checks_report):
    root, report = checks_report
    assert report.entries[0].status == "failed"
    s = summarize_notebook(root / "report" / "executed" / "01_checks.ipynb")
    assert s.title == "1. Checks" and s.purpose.startswith("This notebook checks")
    assert [(c.description, c.status) for c in s.checks] == [
        ("six times seven is `42`", "passed"), ("one equals two", "failed"), ("never reached", "not run")]
    nb = nbformat.read(str(root / "report" / "executed" / "01_checks.ipynb"), as_version=4)
    png = next(o.data["image/png"] for c in nb.cells for o in c.get("outputs", []) if "image/png" in o.get("data", {}))
    with Image.open(io.BytesIO(base64.b64decode(png))) as full, Image.open(io.BytesIO(s.thumbnail_png)) as im:
        assert full.width > 480 and im.size == (480, round(full.height * 480 / full.width))  # scaled, same shape
    # the same notebook not executed: every check not run, no thumbnail
    s0 = summarize_notebook(root / "nbs" / "01_checks.ipynb")
    assert {c.status for c in s0.checks} == {"not run"} and s0.thumbnail_png is None


def test_front_page_shows_cards_checks_and_environment(checks_report):
    root, _ = checks_report
    page = (root / "report" / "index.html").read_text()
    assert "1 of 3 checks passed" in page and "0 of 1 notebooks ran" in page
    assert re.search(r'<li class="failed">✗ one equals two <i>\(failed\)</i></li>', page)
    assert re.search(r'<li class="not-run">– never reached <i>\(not run\)</i></li>', page)
    assert "six times seven is <code>42</code>" in page
    assert '<img class="thumb"' in page and "data:image/png;base64," in page
    assert "<math" in page and "$" not in page.split("<h2>The notebooks</h2>")[1].split("</div>")[0]
    assert f"<td>{cpu_model()}</td>" in page  # the processor model, not "x86_64"
    assert re.findall(r'(?:src|href)="(https?://[^"]*)"', page) == []


def test_environment_table_marks_a_dirty_tree():
    env = {"git_revision": "abc1234+dirty", "processor": "AMD EPYC 7B13", "logical_cpus": 2, "torch_threads": 2,
           "packages": {"torch": "2.13.0", "nbval": None}}
    page = environment_html(env)
    assert "<code>abc1234</code>" in page and "dirty: the working tree had uncommitted changes" in page
    assert "2 logical CPUs available, torch uses 2 threads" in page and "AMD EPYC 7B13" in page
    assert "<td>nbval</td><td>not installed</td>" in page
    assert "dirty" not in environment_html({**env, "git_revision": "abc1234"})


def test_headline_results_from_the_benchmark_files(tmp_path):
    ladder = {
        "study": "ladder", "split": "test", "test_stacks": 96, "steps": 2000, "cpu": "AMD EPYC 7B13",
        "command": "python benchmarks/bench_ablation.py --seeds 0 1", "revision": "abc1234",
        "variants": {"dfv": {"seeds": [0, 1], "params": [10, 10], "rmse": [0.1, 0.3], "delta1": [0.5, 0.7]}},
        "paired": {"dualfocus-dfv": {"mean": -0.01, "ci95": [-0.03, 0.01], "seeds": [0, 1], "metric": "rmse"},
                   "dualfocus-dfv:bump": {"mean": 0.1, "ci95": [0.0, 0.2], "seeds": [0, 1], "metric": "bump"}},
    }
    (tmp_path / "ablation.json").write_text(json.dumps(ladder))
    (tmp_path / "render.json").write_text(json.dumps({"results": {"nyu_480x640": {"median_s": 0.7728}}, "torch_threads": 2}))
    (tmp_path / "integrate.json").write_text(json.dumps({"vs_rfft2": [{"shape": 5}]}))  # not the layout it reads
    h = headline_results(tmp_path)
    assert [t.source for t in h.tables] == ["benchmarks/results/ablation.json"] * 2 + ["benchmarks/results/render.json"]
    assert h.missing == ["benchmarks/results/model.json", "benchmarks/results/predict.json"]
    assert list(h.unreadable) == ["benchmarks/results/integrate.json"]
    rungs, paired, render = h.tables
    # mean ± sample std of [0.1, 0.3]: 0.2 ± sqrt(0.02); of [0.5, 0.7]: 0.6 ± sqrt(0.02)
    assert rungs.rows == [["dfv", "2", "10", "0.2000 ± 0.1414", "–", "0.600 ± 0.141"]]
    assert paired.rows == [["dualfocus-dfv", "2", "-0.0100 [-0.0300, +0.0100]", "–"]]  # the Bump difference is no headline
    for t in (rungs, paired):
        assert t.command == ladder["command"] and t.command_recorded and t.revision == "abc1234"
        assert t.machine == "AMD EPYC 7B13"
    assert render.rows == [["nyu 480x640", "0.77 s"]] and render.machine == "2 threads"
    assert render.command == "python benchmarks/bench_render.py" and not render.command_recorded
    assert render.revision == "unknown"  # recorded nowhere, and not in a git checkout


def test_maths_become_mathml_and_code_is_left_alone():
    store: dict[str, str] = {}
    text = protect_maths(r"Blur $c = \frac{A}{S}$, costs \$5, code `$HOME` and $$\sum_n p_n = 1$$", store)
    assert len(store) == 2 and "`$HOME`" in text and r"\$5" in text
    out = restore_maths(text, store)
    assert out.count("<math") == 2 and 'display="block"' in out and "<mfrac>" in out
    argmin = re.sub(r"<[^>]+>", "", restore_maths(protect_maths(r"$\arg\min_z f$", store), store))
    assert "\\" not in argmin and "arg" in argmin  # an operator latex2mathml lacks, written out
    page = markdown_html("The focus $f_n$ of plane $n$.")
    assert "<msub>" in page and "$" not in page


def test_single_file_report_needs_no_other_file(checks_report, tmp_path):
    root, _ = checks_report
    assert R.main(["--out", str(root / "report"), "--no-run", "--single-file", "--notebooks", str(root / "nbs")]) == 1
    page = (root / "report" / R.SINGLE_FILE).read_text()
    # every reference is inside the file: in-page anchors and data URIs only
    refs = re.findall(r'(?:src|href)="([^"]*)"', page)
    assert refs and all(r.startswith(("#", "data:")) for r in refs), [r for r in refs if not r.startswith(("#", "data:"))]
    assert 'href="#page-01_checks"' in page and 'id="page-01_checks"' in page
    frame = re.search(r'<iframe title="01_checks.ipynb" srcdoc="([^"]*)"', page)
    import html as _html
    inner = _html.unescape(frame.group(1))
    assert "MathJax.js" not in inner and "<math" in inner and "deliberately false" in inner
    assert re.findall(r'<script[^>]*\bsrc=', inner) == []
    img = re.search(r'data:image/png;base64,([A-Za-z0-9+/=]+)', inner)
    assert img and base64.b64decode(img.group(1))[:4] == b"\x89PNG"
