"""Execute the numbered notebooks and render them into one HTML report.

``python -m dflib.report --profile quick --out reports`` (what ``make report``
runs, from the repository root) executes ``notebooks/NN_*.ipynb`` in order with
papermill, converts each executed notebook to HTML, and writes
``reports/index.html`` linking them, with the environment the run used (git
revision, package versions, device, profile, seed, run times) also saved as
``reports/environment.json``.

The report folder is self-contained: the pages load MathJax from the copy in
``reports/mathjax/`` (taken from the ``jupyter-server-mathjax`` package) and
nothing from the network, so the folder can be zipped and opened elsewhere.

Reliability:

- Notebooks run with nbclient's output-widget mimic switched off
  (``widget_registry={}``). With it on, nbclient answers every output that an
  ipywidgets ``Output`` widget captures (``interact``-style explorers) by
  sending a ``comm_msg`` on the shell channel while it awaits the cell's
  ``execute_reply`` on that same socket. jupyter_client sends through a
  synchronous shadow of the asyncio socket, which bypasses pyzmq's
  edge-triggered bookkeeping: when the reply has just arrived, the send
  swallows its wake-up and the reply is read only when the cell's timeout
  expires. The report hung for the whole per-cell timeout (then 30 min) at
  notebook 01's explorer cell, with the kernel idle.
- Every cell has a time limit fitting the profile (:data:`CELL_TIMEOUT_S`).
- A notebook whose kernel went silent (a cell ran over its limit) is run once
  more from the start.
- A notebook that fails or times out is marked in the index, which is written
  after every notebook, and the report goes on with the next one.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import functools
import html
import json
import logging
import platform
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from importlib import metadata, resources
from pathlib import Path

PROFILES = ("quick", "full")
#: Per-cell time limit (seconds) of each profile, ``None`` for none. Quick cells take
#: seconds; the longest measured, notebook 03's dense least-squares timing, took 116 s
#: on two cores shared with three training runs. Full-profile cells train for hours.
CELL_TIMEOUT_S: dict[str, int | None] = {"quick": 600, "full": None}
#: How many times a notebook whose kernel went silent is run again.
RETRIES = 1
#: Folder of the report that holds the local MathJax copy.
MATHJAX_DIR = "mathjax"
_MATHJAX_CONFIG = "TeX-AMS-MML_HTMLorMML-full,Safe,local/dflib"
# jupyter-server-mathjax ships MathJax 2.7 with the STIX-Web fonts only (MathJax's default is TeX)
_MATHJAX_LOCAL_CONFIG = """MathJax.Hub.Config({"HTML-CSS": {availableFonts: [], preferredFont: null, webFont: "STIX-Web", imageFont: null}});
MathJax.Ajax.loadComplete("[MathJax]/config/local/dflib.js");
"""
# nbconvert's lab template without what it loads from CDNs: require.js, the widget manager
# (saved widget state is dead in a static page) and mermaid (no notebook draws diagrams)
_TEMPLATE_NAME = "dflib_report.html.j2"
_TEMPLATE = """{%- extends 'index.html.j2' -%}
{% block html_head_js_requirejs %}{% endblock html_head_js_requirejs %}
{% block jupyter_widgets %}{% endblock jupyter_widgets %}
{% block html_head_js_mermaidjs %}{% endblock html_head_js_mermaidjs %}
"""
_PACKAGES = ("dflib", "torch", "numpy", "scipy", "scikit-image", "matplotlib", "papermill", "nbclient", "nbconvert",
             "ipykernel", "ipywidgets", "pyzmq")

log = logging.getLogger(__name__)


def default_notebook_dir() -> Path:
    """The repository's notebooks: ``notebooks/`` under the current directory, where
    ``make report`` runs (an installed dflib carries no notebooks)."""
    return Path.cwd() / "notebooks"


def notebooks(directory: Path | str | None = None) -> list[Path]:
    """The numbered notebooks ``NN_name.ipynb`` of ``directory`` (default:
    :func:`default_notebook_dir`), in reading order."""
    directory = Path(directory) if directory is not None else default_notebook_dir()
    return sorted(p for p in directory.glob("[0-9][0-9]_*.ipynb"))


def check_parameters(path: Path, parameters: dict) -> None:
    """Raise ``ValueError`` if ``parameters`` names anything the notebook's
    ``parameters`` cell does not declare (papermill itself only warns)."""
    import papermill

    declared = set(papermill.inspect_notebook(str(path)))
    unknown = sorted(set(parameters) - declared)
    if unknown:
        raise ValueError(
            f"unknown parameter(s) {unknown} for {path.name}; its parameters cell declares {sorted(declared)}"
        )


def check_namespace(namespace: dict, known: set[str] | tuple[str, ...]) -> None:
    """In a notebook, right after its ``parameters`` cell: raise ``ValueError`` if an
    upper-case name other than the declared ``known`` parameters was injected
    (papermill run directly only warns about unknown parameters)."""
    unknown = sorted(k for k in namespace if k.isupper() and not k.startswith("_") and k not in set(known))
    if unknown:
        raise ValueError(f"unknown parameters {unknown}; this notebook takes {sorted(known)}")


@functools.cache
def _engine_name() -> str:
    """Register (once per process) and name the papermill engine the report runs notebooks
    with: papermill's nbclient engine, its client without the output-widget mimic."""
    import papermill.engines as pe
    from papermill.clientwrap import PapermillNotebookClient

    class Client(PapermillNotebookClient):
        """nbclient that leaves ipywidgets ``Output`` widgets alone: their captured
        outputs stay cell outputs and nothing is sent on the shell socket mid-cell."""

        def __init__(self, nb_man, **kw):
            super().__init__(nb_man, **kw)
            self.widget_registry = {}  # a plain attribute, set in __init__: no constructor argument reaches it

    class Engine(pe.NBClientEngine):
        """papermill's nbclient engine (same arguments) running :class:`Client`."""

        @classmethod
        def execute_managed_notebook(cls, nb_man, kernel_name, log_output=False, stdout_file=None, stderr_file=None,
                                     start_timeout=60, execution_timeout=None, **kwargs):
            kwargs = pe.remove_args(["input_path", "timeout", "startup_timeout"], **kwargs)
            return Client(nb_man, timeout=execution_timeout, startup_timeout=start_timeout, kernel_name=kernel_name,
                          log=pe.logger, log_output=log_output, stdout_file=stdout_file, stderr_file=stderr_file,
                          **kwargs).execute()

    pe.papermill_engines.register("dflib-nbclient", Engine)
    return "dflib-nbclient"


@dataclass
class NotebookRun:
    """How one notebook ran: seconds of the successful attempt, and attempts made."""

    seconds: float
    attempts: int


def run_notebook(
    path: Path,
    out_path: Path,
    parameters: dict | None = None,
    *,
    timeout_s: int | None = CELL_TIMEOUT_S["quick"],
    retries: int = RETRIES,
) -> NotebookRun:
    """Execute one notebook with papermill (cwd = its folder).

    Args:
        path: the notebook.
        out_path: where the executed notebook is written (also when it fails).
        parameters: papermill parameters; each must be declared by the notebook's
            ``parameters`` cell (``ValueError`` otherwise, before anything runs).
        timeout_s: per-cell time limit in seconds, ``None`` for none.
        retries: how many times to run the notebook again, from a fresh kernel,
            after a cell ran over ``timeout_s`` (a silent kernel).

    Raises:
        nbclient.exceptions.CellTimeoutError: a cell ran over ``timeout_s`` in every attempt.
        papermill.PapermillExecutionError: a cell raised.
    """
    import papermill
    from nbclient.exceptions import CellTimeoutError

    if timeout_s is not None and timeout_s <= 0:
        raise ValueError(f"timeout_s must be positive seconds or None, got {timeout_s!r}")
    if retries < 0:
        raise ValueError(f"retries must be >= 0, got {retries!r}")
    parameters = dict(parameters or {})
    check_parameters(path, parameters)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    for attempt in range(1, retries + 2):
        t0 = time.perf_counter()
        try:
            papermill.execute_notebook(
                str(path),
                str(out_path),
                parameters=parameters,
                cwd=str(path.parent),
                kernel_name="python3",
                progress_bar=False,
                execution_timeout=timeout_s,
                # no output-widget mimic: it sends on the shell socket mid-cell and can lose
                # the execute_reply until the timeout (see the module docstring)
                engine_name=_engine_name(),
            )
        except CellTimeoutError:
            if attempt > retries:
                raise
            log.warning("%s: a cell ran over %s s (kernel silent); running the notebook again", path.name, timeout_s)
            continue
        return NotebookRun(time.perf_counter() - t0, attempt)
    raise AssertionError("unreachable")  # pragma: no cover


def mathjax_source() -> Path:
    """The MathJax 2 folder that the ``jupyter-server-mathjax`` package ships."""
    try:
        root = resources.files("jupyter_server_mathjax") / "static"
    except ModuleNotFoundError as exc:
        raise ModuleNotFoundError(
            "the report needs a local MathJax from the jupyter-server-mathjax package: "
            "pip install 'dflib[notebooks]'"
        ) from exc
    path = Path(str(root))
    if not (path / "MathJax.js").is_file():
        raise FileNotFoundError(f"no MathJax.js in {path}; reinstall jupyter-server-mathjax")
    return path


def install_mathjax(out_dir: Path) -> Path:
    """Copy MathJax into ``out_dir/mathjax`` (with dflib's font configuration); returns the folder."""
    dest = Path(out_dir) / MATHJAX_DIR
    shutil.copytree(mathjax_source(), dest, dirs_exist_ok=True)
    (dest / "config" / "local").mkdir(parents=True, exist_ok=True)
    (dest / "config" / "local" / "dflib.js").write_text(_MATHJAX_LOCAL_CONFIG, encoding="utf-8")
    return dest


def to_html(executed: Path, html_path: Path) -> None:
    """Convert an executed notebook to an HTML page that loads nothing from the
    network; its maths needs ``mathjax/`` beside it (:func:`install_mathjax`)."""
    import nbformat
    from jinja2 import DictLoader
    from nbconvert import HTMLExporter

    nb = nbformat.read(str(executed), as_version=4)
    nb.metadata.pop("widgets", None)  # saved widget state: dead controls that load a widget manager from a CDN
    exporter = HTMLExporter(
        template_name="lab",
        extra_loaders=[DictLoader({_TEMPLATE_NAME: _TEMPLATE})],
        template_file=_TEMPLATE_NAME,
        mathjax_url=f"{MATHJAX_DIR}/MathJax.js?config={_MATHJAX_CONFIG}",
    )
    body, _ = exporter.from_notebook_node(nb)
    html_path.write_text(body, encoding="utf-8")


def _git_revision(directory: Path) -> str:
    """Short revision of the git checkout holding ``directory`` (``+dirty`` if modified)."""
    try:
        rev = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=directory, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain"], cwd=directory, capture_output=True, text=True).stdout
        return rev + ("+dirty" if dirty.strip() else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def environment_record(profile: str, notebook_dir: Path | None = None) -> dict:
    """What a reader needs to reproduce the report: revision, versions, device, profile."""
    import torch

    versions = {}
    for name in _PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return {
        "date_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "git_revision": _git_revision(Path(notebook_dir) if notebook_dir is not None else Path.cwd()),
        "profile": profile,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else f"CPU ({platform.processor() or platform.machine()})",
        "torch_threads": torch.get_num_threads(),
        "packages": versions,
    }


#: the states of a notebook in the report
STATUSES = ("ok", "failed", "timed out")


@dataclass
class ReportEntry:
    """One notebook of the report: its page (None if it never ran), time and status."""

    notebook: str
    html: str | None
    seconds: float
    status: str
    error: str = ""
    attempts: int = 1

    @property
    def ok(self) -> bool:
        return self.status == "ok"


@dataclass
class Report:
    out_dir: Path
    environment: dict
    entries: list[ReportEntry] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(e.ok for e in self.entries)


def _index_html(report: Report) -> str:
    rows = []
    for e in report.entries:
        link = f'<a href="{html.escape(e.html)}">{html.escape(e.notebook)}</a>' if e.html else html.escape(e.notebook)
        if e.ok:
            status = "ok" + (f" (after {e.attempts} attempts)" if e.attempts > 1 else "")
        else:
            status = f'<b class="bad">{html.escape(e.status.upper())}</b>: {html.escape(e.error[:300])}'
        seconds = "–" if e.seconds != e.seconds else f"{e.seconds:.1f}"  # NaN: did not finish
        rows.append(f'<tr class="{e.status.replace(" ", "-")}"><td>{link}</td><td>{seconds}</td><td>{status}</td></tr>')
    env = html.escape(json.dumps(report.environment, indent=2))
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>dflib report</title>
<style>body{{font-family:sans-serif;max-width:60em;margin:2em auto}}
table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:.3em .8em}}
.bad{{color:#b00}}pre{{background:#f6f6f6;padding:1em}}</style></head><body>
<h1>dflib: executed notebooks</h1>
<p>Profile <b>{html.escape(report.environment['profile'])}</b>, revision
<code>{html.escape(report.environment['git_revision'])}</code>, {html.escape(report.environment['date_utc'])}.</p>
<table><tr><th>notebook</th><th>seconds</th><th>status</th></tr>
{''.join(rows)}
</table>
<h2>Environment</h2><pre>{env}</pre>
</body></html>
"""


def _write_index(report: Report) -> None:
    out_dir = report.out_dir
    report.environment["run_seconds"] = {e.notebook: e.seconds for e in report.entries}
    (out_dir / "environment.json").write_text(json.dumps(report.environment, indent=2))
    (out_dir / "index.html").write_text(_index_html(report), encoding="utf-8")
    (out_dir / "report.json").write_text(
        json.dumps({"environment": report.environment, "entries": [asdict(e) for e in report.entries]}, indent=2)
    )


def _cell_preview(exc: Exception) -> str:
    """``": <first line of the cell>"`` from nbclient's timeout message, or ``""``."""
    parts = str(exc).split("-------------------\n")
    lines = [line for line in (parts[1] if len(parts) > 1 else "").splitlines() if line.strip()]
    return f": the cell starting {lines[0].strip()[:80]!r}" if lines else ""


def _describe(exc: Exception) -> str:
    """One line for the index: the failing cell's exception, or the runner's."""
    from papermill.exceptions import PapermillExecutionError

    if isinstance(exc, PapermillExecutionError):
        return f"cell {exc.exec_count}: {exc.ename}: {exc.evalue}"
    return f"{type(exc).__name__}: {exc}"


def build_report(
    out_dir: Path | str = "reports",
    profile: str = "quick",
    only: list[str] | None = None,
    notebook_dir: Path | str | None = None,
    cell_timeout_s: int | None | str = "profile",
    retries: int = RETRIES,
) -> Report:
    """Execute the notebooks (all, or those whose name contains one of ``only``)
    with ``PROFILE=profile`` and write ``out_dir/index.html``.

    Args:
        out_dir: the report folder (created; self-contained).
        profile: ``quick`` or ``full``, passed to each notebook as ``PROFILE``.
        only: run only the notebooks whose file name contains one of these.
        notebook_dir: folder of the numbered notebooks (default: :func:`default_notebook_dir`).
        cell_timeout_s: per-cell limit in seconds, ``None`` for none, or ``"profile"``
            for :data:`CELL_TIMEOUT_S` of ``profile``.
        retries: runs again of a notebook whose kernel went silent (see :func:`run_notebook`).

    A notebook that fails or times out is marked in the index, with its partly
    executed page when there is one, and the next notebook runs; the index is
    rewritten after every notebook.
    """
    from nbclient.exceptions import CellTimeoutError

    if profile not in PROFILES:
        raise ValueError(f"profile must be one of {PROFILES}, got {profile!r}")
    if cell_timeout_s == "profile":
        cell_timeout_s = CELL_TIMEOUT_S[profile]
    notebook_dir = Path(notebook_dir) if notebook_dir is not None else default_notebook_dir()
    if not notebook_dir.is_dir():
        raise FileNotFoundError(f"notebook folder {str(notebook_dir)!r} does not exist (run from the repository root, or pass it)")
    chosen = [p for p in notebooks(notebook_dir) if not only or any(o in p.name for o in only)]
    if not chosen:
        raise ValueError(f"no notebooks matched {only!r} in {notebook_dir}")
    out_dir = Path(out_dir)
    (out_dir / "executed").mkdir(parents=True, exist_ok=True)
    install_mathjax(out_dir)
    report = Report(out_dir, environment_record(profile, notebook_dir))
    report.environment["cell_timeout_s"] = cell_timeout_s
    from tqdm.auto import tqdm

    from dflib.viz import static_explorers

    for path in tqdm(chosen, desc="notebooks", unit="nb"):
        executed = out_dir / "executed" / path.name
        executed.unlink(missing_ok=True)  # a page is only ever from this run
        html_name = path.with_suffix(".html").name
        seconds, status, error, attempts = float("nan"), "ok", "", retries + 1
        try:
            with static_explorers():  # kernels inherit it: explorers pre-render self-contained HTML
                run = run_notebook(path, executed, {"PROFILE": profile}, timeout_s=cell_timeout_s, retries=retries)
            seconds, attempts = run.seconds, run.attempts
        except CellTimeoutError as exc:
            status = "timed out"
            error = f"a cell ran over {cell_timeout_s} s in each of {attempts} attempts{_cell_preview(exc)}"
        except Exception as exc:  # the report records failures and goes on
            status, attempts, error = "failed", 1, _describe(exc)
        page = None
        if executed.exists():
            to_html(executed, out_dir / html_name)
            page = html_name
        report.entries.append(ReportEntry(path.name, page, seconds, status, error, attempts))
        _write_index(report)
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dflib.report", description=__doc__.splitlines()[0])
    parser.add_argument("--profile", choices=PROFILES, default="quick", help="quick (CI, minutes) or full (paper-like)")
    parser.add_argument("--out", default="reports", help="output folder (default: reports/)")
    parser.add_argument("--notebooks", default=None,
                        help="folder of the numbered notebooks (default: notebooks/ under the current directory)")
    parser.add_argument("--only", nargs="*", help="run only notebooks whose file name contains one of these")
    parser.add_argument("--cell-timeout", type=int, default=None,
                        help="per-cell time limit in seconds, 0 for none (default: "
                        + ", ".join(f"{p} {t or 'none'}" for p, t in CELL_TIMEOUT_S.items()) + ")")
    parser.add_argument("--retries", type=int, default=RETRIES,
                        help=f"runs again of a notebook whose kernel went silent (default {RETRIES})")
    args = parser.parse_args(argv)
    if args.cell_timeout is not None and args.cell_timeout < 0:
        parser.error(f"--cell-timeout: must be >= 0 seconds, got {args.cell_timeout}")
    if args.retries < 0:
        parser.error(f"--retries: must be >= 0, got {args.retries}")
    timeout: int | None | str = "profile" if args.cell_timeout is None else (args.cell_timeout or None)
    logging.basicConfig(level=logging.WARNING, format="%(name)s: %(message)s")
    try:
        report = build_report(args.out, args.profile, args.only, args.notebooks, cell_timeout_s=timeout, retries=args.retries)
    except (ValueError, FileNotFoundError, ModuleNotFoundError) as exc:
        print(f"python -m dflib.report: error: {exc}", file=sys.stderr)
        return 2
    print(f"report: {Path(args.out) / 'index.html'}")
    for e in report.entries:
        print(f"  {e.status.upper():9s} {e.notebook} ({e.seconds:.1f} s) {e.error}")
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
