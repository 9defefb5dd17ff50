"""Execute the numbered notebooks and render them into one HTML report.

``python -m dflib.report --profile quick --out reports`` (what ``make report``
runs, from the repository root) executes ``notebooks/NN_*.ipynb`` in order with
papermill, converts each executed notebook to HTML, and writes
``reports/index.html``, the summary of the run (:mod:`dflib.report_page`): a
card per notebook with its purpose, main figure and the facts it checked, the
headline results recorded in ``benchmarks/results/`` and the environment (git
revision, processor, package versions, device, profile, run times; also saved
as ``reports/environment.json``). ``--single-file`` also writes the whole
report as one HTML file, ``reports/dflib_report.html``.

The report folder is self-contained: the pages embed their images and load
MathJax from the copy in ``reports/mathjax/`` (taken from the
``jupyter-server-mathjax`` package) and nothing from the network, so the folder
can be zipped and opened elsewhere (:mod:`dflib.report_html`).

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
import functools
import json
import logging
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from dflib.notebook_summary import NotebookSummary, summarize_notebook
from dflib.report_environment import environment_record
from dflib.report_html import MATHJAX_DIR, install_mathjax, mathjax_source, to_html  # noqa: F401 (public here too)
from dflib.report_page import index_html, single_file_html
from dflib.report_results import Headlines, headline_results

PROFILES = ("quick", "full")
#: Per-cell time limit (seconds) of each profile, ``None`` for none. Quick cells take
#: seconds; the longest measured, notebook 03's dense least-squares timing, took 116 s
#: on two cores shared with three training runs. Full-profile cells train for hours.
CELL_TIMEOUT_S: dict[str, int | None] = {"quick": 600, "full": None}
#: How many times a notebook whose kernel went silent is run again.
RETRIES = 1
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
    """A report folder: where it is, the run's environment, the notebooks' runs, and where
    the source notebooks and the benchmarks' results files are (the front page reads both)."""

    out_dir: Path
    environment: dict
    entries: list[ReportEntry] = field(default_factory=list)
    notebook_dir: Path | None = None
    results_dir: Path | None = None

    @property
    def ok(self) -> bool:
        return all(e.ok for e in self.entries)

    def summaries(self) -> list[NotebookSummary]:
        """The front-page card of each notebook: from its executed copy when there is one."""
        out = []
        for e in self.entries:
            executed = self.out_dir / "executed" / e.notebook
            source = Path(self.notebook_dir or default_notebook_dir()) / e.notebook
            out.append(summarize_notebook(executed if executed.is_file() else source))
        return out

    def headlines(self) -> Headlines:
        """The headline results in :attr:`results_dir` (default ``benchmarks/results`` beside the notebooks)."""
        results = self.results_dir or Path(self.notebook_dir or default_notebook_dir()).parent / "benchmarks" / "results"
        return headline_results(results)


#: file name of the one-file report inside the report folder
SINGLE_FILE = "dflib_report.html"


def _write_index(report: Report) -> None:
    out_dir = report.out_dir
    report.environment["run_seconds"] = {e.notebook: e.seconds for e in report.entries}
    (out_dir / "environment.json").write_text(json.dumps(report.environment, indent=2))
    footer = ('<p class="meta">In this folder: <a href="environment.json">environment.json</a>, '
              '<a href="report.json">report.json</a> (run times, statuses), <code>executed/</code> (the executed '
              'notebooks). <code>python -m dflib.report --single-file</code> writes the whole report as one file.</p>')
    page = index_html(report.environment, report.entries, report.summaries(), report.headlines(), footer=footer)
    (out_dir / "index.html").write_text(page, encoding="utf-8")
    (out_dir / "report.json").write_text(
        json.dumps({"environment": report.environment, "entries": [asdict(e) for e in report.entries]}, indent=2)
    )


def load_report(out_dir: Path | str, notebook_dir: Path | str | None = None) -> Report:
    """The report that ``build_report`` wrote into ``out_dir`` (from its ``report.json``)."""
    out_dir = Path(out_dir)
    path = out_dir / "report.json"
    if not path.is_file():
        raise FileNotFoundError(f"no report in {str(out_dir)!r} (no report.json): run python -m dflib.report first")
    data = json.loads(path.read_text())
    return Report(out_dir, data["environment"], [ReportEntry(**e) for e in data["entries"]],
                  Path(notebook_dir) if notebook_dir is not None else None)


def write_single_file(report: Report, path: Path | str | None = None) -> Path:
    """Write the whole report (front page and every notebook page) as one HTML file that
    needs nothing else; default ``<report folder>/dflib_report.html``. Returns its path."""
    path = Path(path) if path is not None else report.out_dir / SINGLE_FILE
    page = single_file_html(report.environment, report.entries, report.summaries(), report.headlines(), report.out_dir)
    path.write_text(page, encoding="utf-8")
    return path


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
    report = Report(out_dir, environment_record(profile, notebook_dir), notebook_dir=notebook_dir)
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
    parser.add_argument("--single-file", action="store_true",
                        help=f"also write the whole report as one HTML file, OUT/{SINGLE_FILE} (maths as MathML)")
    parser.add_argument("--no-run", action="store_true",
                        help="execute nothing: rewrite the front page (and with --single-file the one file) "
                        "of the report already in OUT")
    args = parser.parse_args(argv)
    if args.cell_timeout is not None and args.cell_timeout < 0:
        parser.error(f"--cell-timeout: must be >= 0 seconds, got {args.cell_timeout}")
    if args.retries < 0:
        parser.error(f"--retries: must be >= 0, got {args.retries}")
    timeout: int | None | str = "profile" if args.cell_timeout is None else (args.cell_timeout or None)
    logging.basicConfig(level=logging.WARNING, format="%(name)s: %(message)s")
    try:
        if args.no_run:
            report = load_report(args.out, args.notebooks)
            _write_index(report)
        else:
            report = build_report(args.out, args.profile, args.only, args.notebooks, cell_timeout_s=timeout,
                                  retries=args.retries)
    except (ValueError, FileNotFoundError, ModuleNotFoundError) as exc:
        print(f"python -m dflib.report: error: {exc}", file=sys.stderr)
        return 2
    print(f"report: {Path(args.out) / 'index.html'}")
    if args.single_file:
        print(f"one file: {write_single_file(report)}")
    for e in report.entries:
        print(f"  {e.status.upper():9s} {e.notebook} ({e.seconds:.1f} s) {e.error}")
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
