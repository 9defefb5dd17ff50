"""Executed notebooks as HTML pages that load nothing from the network, and their maths.

Two ways to typeset the maths of a page:

- ``"mathjax"`` (the report folder): the page loads MathJax 2 from ``mathjax/``
  beside it, a copy of the ``jupyter-server-mathjax`` package's
  (:func:`install_mathjax`).
- ``"mathml"`` (one-file reports): every ``$...$`` and ``$$...$$`` of the
  markdown is converted to MathML with ``latex2mathml`` when the page is
  written; browsers draw MathML themselves, so the page needs no script and no
  font files.
"""

from __future__ import annotations

import html
import re
import shutil
from importlib import resources
from pathlib import Path

#: Folder of the report that holds the local MathJax copy.
MATHJAX_DIR = "mathjax"
MATHS_MODES = ("mathjax", "mathml")
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
_NO_MATHJAX = "{% block html_head_js_mathjax %}{% endblock html_head_js_mathjax %}\n"

# code (fenced or inline) is left alone; maths is $$...$$ (display) or $...$ (inline, not \$)
_CODE = re.compile(r"(```.*?```|`[^`\n]*`)", re.S)
_MATHS = re.compile(r"\$\$(.+?)\$\$|(?<![\\$])\$(?=\S)([^$]+?)(?<=\S)\$(?!\$)", re.S)
_TOKEN = "DFLIBMATHS{}X"
# operators latex2mathml does not know, as what it does know
_REWRITES = ((re.compile(r"\\arg(?![A-Za-z])"), r"\\mathrm{arg}\\,"),)


def latex_to_mathml(tex: str, display: bool = False) -> str:
    """``tex`` as a MathML ``<math>`` element; the TeX in ``<code>`` if it cannot be converted."""
    import latex2mathml.converter

    source = tex.strip()
    for pattern, replacement in _REWRITES:
        source = pattern.sub(replacement, source)
    try:
        return latex2mathml.converter.convert(source, display="block" if display else "inline")
    except Exception:  # latex2mathml raises many kinds on unsupported input: show the source
        delim = "$$" if display else "$"
        return f"<code>{html.escape(delim + tex + delim)}</code>"


def protect_maths(markdown: str, store: dict[str, str]) -> str:
    """``markdown`` with each formula replaced by a token (alphanumeric, so markdown leaves it
    alone); ``store`` maps the tokens to MathML. :func:`restore_maths` puts it back."""
    def one(match: re.Match) -> str:
        token = _TOKEN.format(len(store))
        display = match.group(1) is not None
        store[token] = latex_to_mathml(match.group(1) if display else match.group(2), display)
        return token

    parts = _CODE.split(markdown)
    return "".join(p if i % 2 else _MATHS.sub(one, p) for i, p in enumerate(parts))


def restore_maths(text: str, store: dict[str, str]) -> str:
    """Replace the tokens of :func:`protect_maths` with their MathML."""
    for token, mathml in store.items():
        text = text.replace(token, mathml)
    return text


def markdown_html(markdown: str) -> str:
    """Markdown as HTML, its maths as MathML (for the front page)."""
    from nbconvert.filters.markdown_mistune import markdown2html_mistune

    store: dict[str, str] = {}
    return restore_maths(markdown2html_mistune(protect_maths(markdown, store)), store)


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


def notebook_html(executed: Path, maths: str = "mathjax") -> str:
    """An executed notebook as one HTML page (images embedded) that loads nothing from the
    network. ``maths="mathjax"``: it needs ``mathjax/`` beside it (:func:`install_mathjax`);
    ``"mathml"``: it needs nothing."""
    import nbformat
    from jinja2 import DictLoader
    from nbconvert import HTMLExporter

    if maths not in MATHS_MODES:
        raise ValueError(f"maths must be one of {MATHS_MODES}, got {maths!r}")
    nb = nbformat.read(str(executed), as_version=4)
    nb.metadata.pop("widgets", None)  # saved widget state: dead controls that load a widget manager from a CDN
    store: dict[str, str] = {}
    if maths == "mathml":
        for cell in nb.cells:
            if cell.cell_type == "markdown":
                cell.source = protect_maths(cell.source, store)
    exporter = HTMLExporter(
        template_name="lab",
        extra_loaders=[DictLoader({_TEMPLATE_NAME: _TEMPLATE + (_NO_MATHJAX if maths == "mathml" else "")})],
        template_file=_TEMPLATE_NAME,
        mathjax_url=f"{MATHJAX_DIR}/MathJax.js?config={_MATHJAX_CONFIG}",
    )
    body, _ = exporter.from_notebook_node(nb)
    return restore_maths(body, store)


def to_html(executed: Path, html_path: Path) -> None:
    """Write :func:`notebook_html` of ``executed`` (maths by the local MathJax) to ``html_path``."""
    Path(html_path).write_text(notebook_html(executed), encoding="utf-8")
