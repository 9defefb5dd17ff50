"""Headline results for the report's front page, read from ``benchmarks/results/*.json``.

Each results file the benchmarks write (``ablation.json``: the accuracy ladder;
``integrate.json``, ``render.json``, ``model.json``, ``predict.json``: speed)
becomes a :class:`Headline`: a small table, the machine it was measured on, the
command that wrote it and the revision. A file that is missing is listed as
such; one whose layout is not understood is named with the reason, and the
others still show. Nothing here measures anything: it only reads what the
benchmarks recorded.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

#: ``paired`` metrics of the ladder shown on the front page (RMSE and RMSE at depth edges, metres)
LADDER_PAIRED_METRICS = ("rmse", "rmse_edge")


@dataclass
class Headline:
    """One table of headline results.

    Attributes:
        title: what the table shows.
        source: the results file (relative to the repository root).
        columns: column names.
        rows: one list of cell strings per row.
        command: the command that wrote the file as recorded, else the script that writes it
            (``command_recorded`` False: its arguments are not known).
        revision: the git revision that measured it (as recorded), else the commit that last
            changed the file, else ``"uncommitted"``/``"unknown"``.
        machine: the processor and threads the file records, ``""`` if it records none.
        notes: short remarks (the split, what ± means, a file's own note).
    """

    title: str
    source: str
    columns: list[str]
    rows: list[list[str]]
    command: str = ""
    command_recorded: bool = True
    revision: str = ""
    machine: str = ""
    notes: list[str] = field(default_factory=list)


@dataclass
class Headlines:
    """The headline tables, and the results files that were missing or not understood."""

    tables: list[Headline]
    missing: list[str]
    unreadable: dict[str, str]


def _mean_std(values: list[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for a single value)."""
    n = len(values)
    mean = sum(values) / n
    std = (sum((v - mean) ** 2 for v in values) / (n - 1)) ** 0.5 if n > 1 else 0.0
    return mean, std


def _pm(values: Any, digits: int = 4) -> str:
    """``mean ± std`` of a list of numbers, ``–`` when there are none."""
    if not isinstance(values, list) or not values:
        return "–"
    mean, std = _mean_std([float(v) for v in values])
    return f"{mean:.{digits}f} ± {std:.{digits}f}" if len(values) > 1 else f"{mean:.{digits}f}"


def _machine(d: dict) -> str:
    """The processor and thread count a results file records (its keys differ by benchmark)."""
    cpu = next((str(d[k]) for k in ("cpu", "processor", "cpu_model") if d.get(k)), "")
    threads = next((d[k] for k in ("torch_threads", "threads") if d.get(k)), None)
    parts = [cpu] if cpu else []
    if d.get("cuda_device"):
        parts.append(str(d["cuda_device"]))
    if threads:
        parts.append(f"{threads} threads")
    return ", ".join(parts)


def _ladder(d: dict) -> list[Headline]:
    """The rungs (mean ± std over seeds) and their seed-paired differences (mean and 95 % CI)."""
    columns = ["variant", "seeds", "parameters", "RMSE (m)", "RMSE at depth edges (m)", "δ1"]
    rows = []
    for name, v in d["variants"].items():
        params = v.get("params") or ["–"]
        rows.append([name, str(len(v["seeds"])), str(params[0]), _pm(v["rmse"]), _pm(v.get("rmse_edge")),
                     _pm(v.get("delta1"), 3)])
    sff = d.get("best_sff")
    if sff:
        rows.append([f"classical SFF ({sff['method']})", "–", "0", f"{sff['rmse']:.4f}", "–",
                     f"{sff['delta1']:.3f}" if "delta1" in sff else "–"])
    notes = [f"{d.get('test_stacks', '?')} stacks of the {d.get('split', '?')} split, {d.get('steps', '?')} training steps "
             "per run; mean ± sample std over seeds"]
    tables = [Headline("Accuracy ladder (embedded benchmark)", "", columns, rows, notes=notes)]
    paired: dict[str, list[str]] = {}
    for key, p in d.get("paired", {}).items():
        if p.get("metric") in LADDER_PAIRED_METRICS:
            lo, hi = p["ci95"]
            row = paired.setdefault(key.split(":")[0], [key.split(":")[0], str(len(p.get("seeds", []))), "–", "–"])
            row[2 + LADDER_PAIRED_METRICS.index(p["metric"])] = f"{p['mean']:+.4f} [{lo:+.4f}, {hi:+.4f}]"
    if paired:
        tables.append(Headline("Differences between rungs (seed-paired)", "",
                               ["a − b", "seeds", "RMSE (m): mean [95 % CI]", "RMSE at depth edges (m): mean [95 % CI]"],
                               list(paired.values()),
                               notes=["negative: a is better; an interval that straddles 0 does not separate a from b "
                                      "(Student-t over seeds)"]))
    return tables


def _integrate(d: dict) -> list[Headline]:
    rows = []
    for r in d.get("vs_rfft2", []):
        shape = "×".join(map(str, r["shape"]))
        threads = f", {r['threads']} thread{'s' if r['threads'] > 1 else ''}" if "threads" in r else ""
        rows.append([f"integrable projection ÷ one rfft2 of [{shape}]{threads}",
                     f"{r['projection_over_rfft2']:.1f}× (solve {r['solve_over_rfft2']:.1f}×)"])
    if "vs_dense_torch_solve" in d:
        r = d["vs_dense_torch_solve"]
        rows.append([f"DCT projection vs dense normal equations, {'×'.join(map(str, r['grid']))} grid",
                     f"{r['speedup']:.0f}× faster"])
    if "vs_scipy_sparse" in d:
        r = d["vs_scipy_sparse"]
        grid = "×".join(map(str, r["grid"]))
        rows.append([f"DCT projection vs scipy spsolve / lsqr, {grid} grid",
                     f"{r['spsolve_speedup']:.0f}× / {r['lsqr_speedup']:.0f}× faster"])
    return [Headline("Speed: the integrable projection", "", ["what", "measured"], rows)]


def _render(d: dict) -> list[Headline]:
    rows = [[name.replace("_", " "), f"{r['median_s']:.2f} s"] for name, r in d["results"].items()]
    return [Headline("Speed: rendering a focal stack (median)", "", ["what", "measured"], rows)]


def _model(d: dict) -> list[Headline]:
    rows = [[f"{r['preset']} ({r['parameters']:,} parameters) {r['mode'].replace('_', '+')}, "
             f"[{','.join(map(str, r['shape']))}]", f"{r['time_s_median']:.3f} s, peak {r['peak_mem_mib']:.0f} MiB"]
            for r in d["results"]]
    return [Headline("Speed: DualFocus forward and backward (median)", "", ["what", "measured"], rows)]


def _predict(d: dict) -> list[Headline]:
    rows = [[f"dflib predict, {r['frames']} frames of {r['megapixels']} MP {' '.join(r.get('options', []))}".strip(),
             f"{r['seconds']:.1f} s, peak {r['peak_rss_mib']} MiB"] for r in d["results"]]
    return [Headline("Speed: depth from a user's stack", "", ["what", "measured"], rows)]


#: results file stem -> how to read it, in the order of the front page
READERS: dict[str, Callable[[dict], list[Headline]]] = {
    "ablation": _ladder, "integrate": _integrate, "render": _render, "model": _model, "predict": _predict,
}


def _git(args: list[str], cwd: Path) -> str:
    try:
        return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return ""


def file_revision(path: Path) -> str:
    """The commit that last changed ``path`` (short hash), ``"uncommitted"`` if the file
    differs from it or is not tracked, ``"unknown"`` outside a git checkout."""
    path = Path(path)
    rev = _git(["log", "-1", "--format=%h", "--", path.name], path.parent)
    if not _git(["rev-parse", "--is-inside-work-tree"], path.parent):
        return "unknown"
    if not rev or _git(["status", "--porcelain", "--", path.name], path.parent):
        return "uncommitted"
    return rev


def headline_results(results_dir: Path | str) -> Headlines:
    """Read every results file of :data:`READERS` present in ``results_dir``.

    A file's own ``command`` and ``revision`` (or ``git_revision``) are used when it
    records them; otherwise the command names the benchmark script that writes the file,
    and the revision is the commit that last changed the file ("committed in").
    """
    results_dir = Path(results_dir)
    tables, missing, unreadable = [], [], {}
    for stem, read in READERS.items():
        path = results_dir / f"{stem}.json"
        source = f"benchmarks/results/{path.name}"
        if not path.is_file():
            missing.append(source)
            continue
        try:
            d = json.loads(path.read_text())
            found = [t for t in read(d) if t.rows]
        except (ValueError, KeyError, TypeError, IndexError, AttributeError) as exc:
            unreadable[source] = f"{type(exc).__name__}: {exc}"
            continue
        if not found:
            unreadable[source] = "no results in it"
            continue
        script = "bench_ablation.py" if stem in ("ablation", "levers") else f"bench_{stem}.py"
        recorded = d.get("revision") or d.get("git_revision")
        committed = file_revision(path)
        for table in found:
            table.source = source
            table.command = d.get("command") or f"python benchmarks/{script}"
            table.command_recorded = bool(d.get("command"))
            table.revision = str(recorded) if recorded else (
                committed if committed in ("uncommitted", "unknown") else f"committed in {committed}")
            table.machine = _machine(d)
            if d.get("note"):
                table.notes.append(str(d["note"]))
        tables += found
    return Headlines(tables, missing, unreadable)
