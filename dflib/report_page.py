"""The report's front page (``index.html``) and the one-file report.

The front page is the summary of a run: what the kit is, one card per notebook
(title, purpose, thumbnail of its main figure, the facts it checked and whether
they held, its run time and status), the headline results recorded in
``benchmarks/results/`` and the environment as a table. Everything it shows is
embedded (thumbnails as data URIs, maths as MathML), so it needs no other file.

:func:`single_file_html` puts the front page and every notebook page into one
HTML file: each page sits in an ``<iframe srcdoc>`` shown when its card's link
is followed (CSS ``:target``, no script), its maths converted to MathML.
"""

from __future__ import annotations

import base64
import html
import math
from pathlib import Path
from typing import Callable, Protocol, Sequence

from dflib.notebook_summary import NotebookSummary
from dflib.report_html import markdown_html, notebook_html
from dflib.report_results import Headlines

INTRO = (
    "dflib is an open teaching and research kit for <b>depth from focus</b>: recovering depth from a focal "
    "stack, images of one scene focused at different distances. It implements DualFocus (Woo &amp; Lee, "
    "NeurIPS 2025) with its baselines, and everything needed to train and evaluate them on a laptop CPU. "
    "This report is one run of its numbered notebooks, in reading order: each card says what the notebook "
    "is for, shows its main figure and lists the facts it checked. The notebooks' own pages hold the "
    "figures, the code and the explanations."
)
_ICON = {"passed": "✓", "failed": "✗", "not run": "–"}
_CSS = """
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#222;max-width:76em;margin:1.5em auto;padding:0 1em}
h1{margin-bottom:.2em}h2{margin-top:1.6em;border-bottom:1px solid #ddd;padding-bottom:.2em}
code{background:#f3f3f3;padding:0 .2em;border-radius:3px;font-size:.92em}
.run{font-size:1.05em;padding:.6em .9em;border-radius:6px;background:#eef7ee;border:1px solid #b9dcb9}
.run.bad{background:#fbeeee;border-color:#e3b3b3}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(26em,1fr));gap:1em;margin-top:1em}
.card{border:1px solid #d5d5d5;border-radius:8px;padding:.8em 1em;display:flex;flex-direction:column;background:#fff}
.card.bad{border-color:#d88;box-shadow:0 0 0 2px #f3caca}
.card h3{margin:.1em 0 .4em;font-size:1.08em}.card h3 a{color:#0b4f9c;text-decoration:none}
.card h3 a:hover{text-decoration:underline}
.thumb{display:block;width:100%;max-height:22em;object-fit:contain;background:#fafafa;border:1px solid #eee;border-radius:4px}
.nothumb{padding:2em 0;text-align:center;color:#888;background:#fafafa;border-radius:4px}
.purpose{font-size:.93em;color:#333}.purpose p{margin:.5em 0}
details.checks{font-size:.9em;margin:.3em 0}details.checks summary{cursor:pointer;font-weight:600}
ul.checks{list-style:none;padding-left:0;margin:.3em 0}ul.checks li{padding-left:1.4em;text-indent:-1.4em;margin:.15em 0}
.passed{color:#17752f}.failed{color:#b00;font-weight:600}.not-run{color:#888}
.foot{margin-top:auto;padding-top:.5em;font-size:.88em;color:#555;border-top:1px solid #eee}
.status{font-weight:600}.status.ok{color:#17752f}.status.bad{color:#b00}
.error{color:#b00;font-size:.88em;word-break:break-word}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #d5d5d5;padding:.25em .6em;text-align:left;vertical-align:top}
th{background:#f5f5f5}td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.meta{font-size:.88em;color:#555;margin:.2em 0 1em}
.env{display:flex;flex-wrap:wrap;gap:1.5em;align-items:flex-start}
.dirty{color:#b00;font-weight:600}
math{font-size:1.05em}
"""
_PAGE_CSS = """
.nbpage{display:none}.nbpage:target{display:block;position:fixed;inset:0;background:#fff;z-index:10}
.nbpage .bar{height:2.4em;line-height:2.4em;padding:0 1em;background:#f3f3f3;border-bottom:1px solid #ccc}
.nbpage iframe{width:100%;height:calc(100% - 2.5em);border:0}
"""


class Entry(Protocol):
    """What the front page reads of a notebook's run (``dflib.report.ReportEntry``)."""

    notebook: str
    html: str | None
    seconds: float
    status: str
    error: str
    attempts: int


def _e(text: object) -> str:
    return html.escape(str(text))


def _inline(markdown: str) -> str:
    """One line of markdown as inline HTML (without the paragraph around it)."""
    out = markdown_html(markdown).strip()
    return out[3:-4] if out.startswith("<p>") and out.endswith("</p>") else out


def _seconds(s: float) -> str:
    if s != s:  # NaN: did not finish
        return "–"
    return f"{s:.0f} s" if s < 120 else f"{s / 60:.1f} min"


def card_html(entry: Entry, summary: NotebookSummary, href: str | None) -> str:
    """One notebook's card; ``href`` is where its page is (``None``: it has none)."""
    title = _e(summary.title)
    heading = f'<a href="{_e(href)}">{title}</a>' if href else title
    if summary.thumbnail_png:
        data = base64.b64encode(summary.thumbnail_png).decode("ascii")
        img = f'<img class="thumb" alt="main figure of {_e(summary.notebook)}" src="data:image/png;base64,{data}">'
        thumb = f'<a href="{_e(href)}">{img}</a>' if href else img
    else:
        thumb = '<div class="nothumb">no figure (the notebook did not get that far)</div>'
    n, passed = len(summary.checks), summary.count("passed")
    items = "".join(f'<li class="{c.status.replace(" ", "-")}">{_ICON[c.status]} {_inline(c.description)}'
                    f'{"" if c.status == "passed" else f" <i>({_e(c.status)})</i>"}</li>' for c in summary.checks)
    checks = (f'<details class="checks" open><summary>{passed} of {n} checks passed</summary>'
              f'<ul class="checks">{items}</ul></details>') if n else '<p class="meta">no checks</p>'
    ok = entry.status == "ok"
    status = "ok" + (f" after {entry.attempts} attempts" if ok and entry.attempts > 1 else "") if ok else entry.status.upper()
    error = f'<div class="error">{_e(entry.error[:300])}</div>' if entry.error else ""
    return (f'<div class="card{"" if ok and passed == n else " bad"}" id="card-{_e(Path(summary.notebook).stem)}">'
            f'<h3>{heading}</h3>{thumb}<div class="purpose">{markdown_html(summary.purpose)}</div>{checks}'
            f'<div class="foot"><span class="status {"ok" if ok else "bad"}">{_e(status)}</span> · '
            f'{_seconds(entry.seconds)} · <code>{_e(summary.notebook)}</code>{error}</div></div>')


def _table(columns: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    head = "".join(f"<th>{_e(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f'<td{" class=num" if i else ""}>{_e(v)}</td>' for i, v in enumerate(r)) + "</tr>"
                   for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def headlines_html(headlines: Headlines) -> str:
    """The headline results: a table per results file, with machine, command and revision."""
    parts = []
    for i, t in enumerate(headlines.tables):
        meta = [f"from <code>{_e(t.source)}</code>", f"revision {_e(t.revision)}"]
        if t.machine:
            meta.insert(1, f"measured on {_e(t.machine)}")
        notes = "".join(f"<br>{_e(n)}" for n in t.notes)
        command = f"<code>{_e(t.command)}</code>" + ("" if t.command_recorded else " (the script that writes the file; "
                                                                                "its arguments were not recorded)")
        parts.append(f"<h3>{_e(t.title)}</h3>{_table(t.columns, t.rows)}")
        last_of_file = i + 1 == len(headlines.tables) or headlines.tables[i + 1].source != t.source
        parts.append(f'<p class="meta">{"; ".join(meta)}<br>command: {command}{notes}</p>' if last_of_file
                     else f'<p class="meta">{notes[4:]}</p>')
    if headlines.missing:
        parts.append(f'<p class="meta">Not found (not measured yet here): {", ".join(f"<code>{_e(m)}</code>" for m in headlines.missing)}</p>')
    for source, why in headlines.unreadable.items():
        parts.append(f'<p class="meta">Could not read <code>{_e(source)}</code>: {_e(why)}</p>')
    return "".join(parts) or '<p class="meta">No results files found.</p>'


def environment_html(env: dict) -> str:
    """The environment of the run as two tables: the machine and run, and package versions."""
    rev = str(env.get("git_revision", "unknown"))
    if rev.endswith("+dirty"):
        rev_html = f'<code>{_e(rev[:-6])}</code> <span class="dirty">dirty: the working tree had uncommitted changes</span>'
    else:
        rev_html = f"<code>{_e(rev)}</code>"
    cores = env.get("logical_cpus")
    rows = [
        ("processor", _e(env.get("processor", "unknown"))),
        ("cores and threads", _e(f"{cores} logical CPUs available, torch uses {env.get('torch_threads', '?')} threads")
         if cores else _e(f"torch uses {env.get('torch_threads', '?')} threads")),
        ("device", _e(env.get("device", "unknown"))),
        ("profile", _e(env.get("profile", "?"))),
        ("cell time limit", _e(f"{env['cell_timeout_s']} s" if env.get("cell_timeout_s") else "none")),
        ("revision", rev_html),
        ("date (UTC)", _e(env.get("date_utc", "?"))),
        ("Python", _e(env.get("python", "?"))),
        ("platform", _e(env.get("platform", "?"))),
    ]
    machine = "".join(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in rows)
    packages = "".join(f"<tr><td>{_e(k)}</td><td>{_e(v or 'not installed')}</td></tr>"
                       for k, v in env.get("packages", {}).items())
    return (f'<div class="env"><table>{machine}</table>'
            f"<table><tr><th>package</th><th>version</th></tr>{packages}</table></div>")


def index_html(environment: dict, entries: Sequence[Entry], summaries: Sequence[NotebookSummary],
               headlines: Headlines, href: Callable[[Entry], str | None] = lambda e: e.html,
               extra_css: str = "", after_body: str = "", footer: str = "") -> str:
    """The front page. ``href`` gives each card's link (its page in the folder by default)."""
    n_ok = sum(e.status == "ok" for e in entries)
    n_checks = sum(len(s.checks) for s in summaries)
    n_passed = sum(s.count("passed") for s in summaries)
    total = sum(e.seconds for e in entries if not math.isnan(e.seconds))
    good = n_ok == len(entries) and n_passed == n_checks
    run = (f'<p class="run{"" if good else " bad"}"><b>{n_ok} of {len(entries)} notebooks ran</b>; '
           f"<b>{n_passed} of {n_checks} checks passed</b>. Profile <b>{_e(environment.get('profile', '?'))}</b>, "
           f"{_seconds(total)} in all, revision <code>{_e(environment.get('git_revision', '?'))}</code>, "
           f"{_e(environment.get('date_utc', ''))}.</p>")
    cards = "".join(card_html(e, s, href(e)) for e, s in zip(entries, summaries))
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>dflib report</title><style>{_CSS}{extra_css}</style></head><body id="top">
<h1>dflib: the executed notebooks</h1>
<p>{INTRO}</p>
{run}
<h2>The notebooks</h2>
<div class="cards">{cards}</div>
<h2>Headline results</h2>
<p>What the benchmarks in <code>benchmarks/</code> recorded when they were last run (not by this report):
the accuracy ladder of the ablation study and the speed figures.</p>
{headlines_html(headlines)}
<h2>Environment of this run</h2>
{environment_html(environment)}
{footer}
{after_body}
</body></html>
"""


def single_file_html(environment: dict, entries: Sequence[Entry], summaries: Sequence[NotebookSummary],
                     headlines: Headlines, out_dir: Path) -> str:
    """The front page and every notebook page of the report in ``out_dir`` as one HTML file.

    A page is taken from ``out_dir/executed/<notebook>`` with its maths as MathML; a card
    links to ``#page-<name>``, which shows that page over the front page.
    """
    pages, linked = [], set()
    for e in entries:
        executed = Path(out_dir) / "executed" / e.notebook
        if e.html is None or not executed.is_file():
            continue
        doc = notebook_html(executed, maths="mathml")
        name = Path(e.notebook).stem
        linked.add(name)
        pages.append(f'<section class="nbpage" id="page-{_e(name)}"><div class="bar"><a href="#card-{_e(name)}">'
                     f'← back to the summary</a> · <b>{_e(e.notebook)}</b></div>'
                     f'<iframe title="{_e(e.notebook)}" srcdoc="{html.escape(doc, quote=True)}"></iframe></section>')
    return index_html(environment, entries, summaries, headlines,
                      href=lambda e: f"#page-{Path(e.notebook).stem}" if Path(e.notebook).stem in linked else None,
                      extra_css=_PAGE_CSS, after_body="".join(pages),
                      footer='<p class="meta">One-file report: every notebook page is inside this file.</p>')
