"""Execute the numbered notebooks and render them into one HTML report.

``python -m dflib.report --profile quick --out reports`` (what ``make report``
runs) executes ``notebooks/NN_*.ipynb`` in order with papermill, converts each
executed notebook to HTML, and writes ``reports/index.html`` linking them, with
the environment the run used (git revision, package versions, device, profile,
seed, run times) also saved as ``reports/environment.json``.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import html
import json
import platform
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK_DIR = ROOT / "notebooks"
PROFILES = ("quick", "full")
_PACKAGES = ("dflib", "torch", "numpy", "scipy", "scikit-image", "matplotlib", "papermill", "nbconvert")


def notebooks(directory: Path = NOTEBOOK_DIR) -> list[Path]:
    """The numbered notebooks ``NN_name.ipynb`` of ``directory``, in reading order."""
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


def run_notebook(path: Path, out_path: Path, parameters: dict | None = None, *, timeout_s: int = 1800) -> float:
    """Execute one notebook with papermill (cwd = its folder); returns seconds taken."""
    import papermill

    parameters = dict(parameters or {})
    check_parameters(path, parameters)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    papermill.execute_notebook(
        str(path),
        str(out_path),
        parameters=parameters,
        cwd=str(path.parent),
        kernel_name="python3",
        progress_bar=False,
        execution_timeout=timeout_s,
    )
    return time.perf_counter() - t0


def to_html(executed: Path, html_path: Path) -> None:
    """Convert an executed notebook to a standalone HTML page."""
    import nbformat
    from nbconvert import HTMLExporter

    nb = nbformat.read(str(executed), as_version=4)
    nb.metadata.pop("widgets", None)  # saved widget state: dead controls that load a widget manager from a CDN
    body, _ = HTMLExporter(template_name="lab").from_notebook_node(nb)
    html_path.write_text(body, encoding="utf-8")


def _git_revision() -> str:
    try:
        rev = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain"], cwd=ROOT, capture_output=True, text=True).stdout
        return rev + ("+dirty" if dirty.strip() else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def environment_record(profile: str) -> dict:
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
        "git_revision": _git_revision(),
        "profile": profile,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else f"CPU ({platform.processor() or platform.machine()})",
        "torch_threads": torch.get_num_threads(),
        "packages": versions,
    }


@dataclass
class ReportEntry:
    notebook: str
    html: str | None
    seconds: float
    ok: bool
    error: str = ""


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
        status = "ok" if e.ok else f"FAILED: {html.escape(e.error[:300])}"
        rows.append(f"<tr><td>{link}</td><td>{e.seconds:.1f}</td><td>{status}</td></tr>")
    env = html.escape(json.dumps(report.environment, indent=2))
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>dflib report</title>
<style>body{{font-family:sans-serif;max-width:60em;margin:2em auto}}
table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:.3em .8em}}
pre{{background:#f6f6f6;padding:1em}}</style></head><body>
<h1>dflib: executed notebooks</h1>
<p>Profile <b>{html.escape(report.environment['profile'])}</b>, revision
<code>{html.escape(report.environment['git_revision'])}</code>, {html.escape(report.environment['date_utc'])}.</p>
<table><tr><th>notebook</th><th>seconds</th><th>status</th></tr>
{''.join(rows)}
</table>
<h2>Environment</h2><pre>{env}</pre>
</body></html>
"""


def build_report(
    out_dir: Path | str = ROOT / "reports",
    profile: str = "quick",
    only: list[str] | None = None,
    notebook_dir: Path = NOTEBOOK_DIR,
) -> Report:
    """Execute the notebooks (all, or those whose name contains one of ``only``)
    with ``PROFILE=profile`` and write ``out_dir/index.html``."""
    if profile not in PROFILES:
        raise ValueError(f"profile must be one of {PROFILES}, got {profile!r}")
    out_dir = Path(out_dir)
    (out_dir / "executed").mkdir(parents=True, exist_ok=True)
    report = Report(out_dir, environment_record(profile))
    chosen = [p for p in notebooks(notebook_dir) if not only or any(o in p.name for o in only)]
    if not chosen:
        raise ValueError(f"no notebooks matched {only!r} in {notebook_dir}")
    from tqdm.auto import tqdm

    from dflib.viz import static_explorers

    for path in tqdm(chosen, desc="notebooks", unit="nb"):
        executed = out_dir / "executed" / path.name
        html_name = path.with_suffix(".html").name
        try:
            with static_explorers():  # kernels inherit it: explorers pre-render self-contained HTML
                seconds = run_notebook(path, executed, {"PROFILE": profile})
            ok, error = True, ""
        except Exception as exc:  # the report records failures and goes on
            seconds, ok, error = float("nan"), False, f"{type(exc).__name__}: {exc}"
        if executed.exists():
            to_html(executed, out_dir / html_name)
        report.entries.append(ReportEntry(path.name, html_name if executed.exists() else None, seconds, ok, error))
        report.environment["run_seconds"] = {e.notebook: e.seconds for e in report.entries}
        (out_dir / "environment.json").write_text(json.dumps(report.environment, indent=2))
        (out_dir / "index.html").write_text(_index_html(report), encoding="utf-8")
    (out_dir / "report.json").write_text(
        json.dumps({"environment": report.environment, "entries": [asdict(e) for e in report.entries]}, indent=2)
    )
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dflib.report", description=__doc__.splitlines()[0])
    parser.add_argument("--profile", choices=PROFILES, default="quick", help="quick (CI, minutes) or full (paper-like)")
    parser.add_argument("--out", default=str(ROOT / "reports"), help="output folder (default: reports/)")
    parser.add_argument("--only", nargs="*", help="run only notebooks whose file name contains one of these")
    args = parser.parse_args(argv)
    report = build_report(args.out, args.profile, args.only)
    print(f"report: {Path(args.out) / 'index.html'}")
    for e in report.entries:
        print(f"  {'ok    ' if e.ok else 'FAILED'} {e.notebook} ({e.seconds:.1f} s) {e.error}")
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
