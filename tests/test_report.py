"""The report runner: no hang at explorer cells, time limits, one retry, a
self-contained folder, and an index that survives a failed notebook."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from pathlib import Path

import jupyter_client.channels
import nbformat
import pytest

from dflib import report as R

#: an interact-style explorer: ipywidgets.interactive draws into an Output widget,
#: the construct at which `make report` hung in notebook 01
EXPLORER = """import ipywidgets as w
import matplotlib.pyplot as plt
import numpy as np
from IPython.display import display

def plot(plane=0):
    fig, ax = plt.subplots(figsize=(4, 3))
    ax.imshow(np.random.default_rng(plane).random((64, 64)))
    display(fig)
    plt.close(fig)

w.interactive(plot, plane=w.IntSlider(value=0, min=0, max=4))"""


def _notebook(path: Path, *sources: str) -> Path:
    """A numbered notebook: a parameters cell (PROFILE, SEED), then one code cell per source."""
    params = nbformat.v4.new_code_cell('PROFILE = "quick"\nSEED = 0')
    params.metadata["tags"] = ["parameters"]
    cells = [params] + [nbformat.v4.new_code_cell(s) for s in sources]
    nb = nbformat.v4.new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python", "name": "python3"}
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, str(path))
    return path


def _cell_seconds(executed: Path) -> list[float]:
    nb = nbformat.read(str(executed), as_version=4)
    return [c.metadata["papermill"]["duration"] for c in nb.cells if c.cell_type == "code"]


def test_runner_sends_nothing_on_the_shell_channel_while_a_cell_runs(tmp_path, monkeypatch):
    # The hang's cause: nbclient's output-widget mimic sent a comm_msg on the shell socket
    # while awaiting the cell's execute_reply there, and the send could swallow the reply's
    # wake-up. The report's client must only ever send requests.
    sent = []
    real_send = jupyter_client.channels.ZMQSocketChannel.send

    def record(channel, msg):
        sent.append(msg["header"]["msg_type"])
        return real_send(channel, msg)

    monkeypatch.setattr(jupyter_client.channels.ZMQSocketChannel, "send", record)
    nb = _notebook(tmp_path / "01_explorer.ipynb", EXPLORER)
    R.run_notebook(nb, tmp_path / "out.ipynb", timeout_s=60)
    assert "execute_request" in sent
    assert set(sent) <= {"execute_request", "kernel_info_request"}, sent
    # the explorer's figure is still in the executed notebook, as a cell output
    cells = nbformat.read(str(tmp_path / "out.ipynb"), as_version=4).cells
    assert any("image/png" in o.get("data", {}) for o in cells[-1].outputs)


@pytest.mark.slow
def test_explorer_notebook_reports_repeatedly_within_bounded_time(tmp_path):
    nb_dir = tmp_path / "nbs"
    _notebook(nb_dir / "01_explorer.ipynb", EXPLORER, EXPLORER, "print('after the explorers')")
    timeout = 60
    t0 = time.monotonic()
    for i in range(3):
        rep = R.build_report(tmp_path / f"report{i}", notebook_dir=nb_dir, cell_timeout_s=timeout)
        assert rep.ok and rep.entries[0].attempts == 1, rep.entries
        # a lost execute_reply is read only at the cell's deadline, without an error:
        # every cell must finish far from it
        seconds = _cell_seconds(tmp_path / f"report{i}" / "executed" / "01_explorer.ipynb")
        assert max(seconds) < timeout / 4, seconds
    assert time.monotonic() - t0 < 3 * timeout


def test_silent_kernel_is_retried_once_then_marked_timed_out(tmp_path):
    nb_dir = tmp_path / "nbs"
    starts = tmp_path / "starts.txt"
    _notebook(nb_dir / "01_silent.ipynb", f"open({str(starts)!r}, 'a').write('start\\n')", "import time\ntime.sleep(60)")
    _notebook(nb_dir / "02_fine.ipynb", "print(6 * 7)")
    t0 = time.monotonic()
    rep = R.build_report(tmp_path / "report", notebook_dir=nb_dir, cell_timeout_s=3)
    assert time.monotonic() - t0 < 100  # not the 2 x 60 s of sleeping
    assert starts.read_text().count("start") == 2  # ran, went silent, ran once more
    silent, fine = rep.entries
    assert silent.status == "timed out" and silent.attempts == 2 and "3 s" in silent.error
    assert fine.ok and not rep.ok
    index = (tmp_path / "report" / "index.html").read_text()
    assert "TIMED OUT" in index and 'href="02_fine.html"' in index
    assert 'href="01_silent.html"' in index  # the partly executed page is kept
    data = json.loads((tmp_path / "report" / "report.json").read_text())
    assert [e["status"] for e in data["entries"]] == ["timed out", "ok"]


def test_failed_notebook_is_marked_and_the_index_still_written(tmp_path):
    nb_dir = tmp_path / "nbs"
    _notebook(nb_dir / "01_broken.ipynb", "raise RuntimeError('deliberately broken')")
    _notebook(nb_dir / "02_fine.ipynb", "print(6 * 7)")
    assert R.main(["--notebooks", str(nb_dir), "--out", str(tmp_path / "report")]) == 1
    index = (tmp_path / "report" / "index.html").read_text()
    assert "FAILED" in index and "deliberately broken" in index
    assert "deliberately broken" in (tmp_path / "report" / "01_broken.html").read_text()
    assert "42" in (tmp_path / "report" / "02_fine.html").read_text()


def _remote_references(page: str) -> list[str]:
    return re.findall(r'(?:src|href)="(https?://[^"]*)"', page)


def test_report_folder_is_self_contained(tmp_path, monkeypatch):
    # the default notebook folder is notebooks/ under the current directory
    _notebook(tmp_path / "notebooks" / "01_maths.ipynb", "print('c = A f |S2 - S1|')")
    nb = nbformat.read(str(tmp_path / "notebooks" / "01_maths.ipynb"), as_version=4)
    nb.cells.insert(0, nbformat.v4.new_markdown_cell(r"The blur is $c = \frac{A f}{S_2}$ and $$\sum_n p_n = 1.$$"))
    nbformat.write(nb, str(tmp_path / "notebooks" / "01_maths.ipynb"))
    monkeypatch.chdir(tmp_path)
    assert R.main(["--profile", "full", "--out", "packed"]) == 0
    shutil.move(tmp_path / "packed", tmp_path / "moved")  # opened elsewhere
    page = (tmp_path / "moved" / "01_maths.html").read_text()
    assert _remote_references(page) == []
    src = re.search(r'<script src="([^"?]*MathJax\.js)\?config=([^"]*)"', page)
    assert src and not src.group(1).startswith(("http", "/"))
    mathjax = tmp_path / "moved" / src.group(1)
    assert mathjax.is_file()
    for config in src.group(2).split(","):  # every configuration MathJax will load is there
        assert (mathjax.parent / "config" / f"{config}.js").is_file(), config
    assert _remote_references((tmp_path / "moved" / "index.html").read_text()) == []


@pytest.mark.skipif(shutil.which("chromium") is None, reason="needs a headless chromium")
def test_maths_renders_offline_in_a_browser(tmp_path):
    out = tmp_path / "report"
    R.install_mathjax(out)
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell(r"Blur $c = \frac{A f}{S_2}$.")])
    nbformat.write(nb, str(tmp_path / "maths.ipynb"))
    R.to_html(tmp_path / "maths.ipynb", out / "maths.html")
    dom = subprocess.run(
        ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=15000",
         "--dump-dom", (out / "maths.html").as_uri()],
        capture_output=True, text=True, timeout=120,
    ).stdout
    assert 'class="MathJax"' in dom  # typeset, not left as $...$
    assert "Math Processing Error" not in dom


def test_cli_rejects_a_missing_notebook_folder(tmp_path, capsys):
    assert R.main(["--notebooks", str(tmp_path / "nope"), "--out", str(tmp_path / "r")]) == 2
    assert "nope" in capsys.readouterr().err


def test_run_notebook_validates_its_limits(tmp_path):
    nb = _notebook(tmp_path / "01_x.ipynb", "1")
    with pytest.raises(ValueError, match="timeout_s"):
        R.run_notebook(nb, tmp_path / "o.ipynb", timeout_s=0)
    with pytest.raises(ValueError, match="retries"):
        R.run_notebook(nb, tmp_path / "o.ipynb", retries=-1)
