"""What one notebook showed, for the report's front page: title, purpose, main figure, checks.

Conventions of the numbered notebooks (``tests/test_notebooks.py`` holds them):

- The first cell is markdown: a ``# N. Title`` heading, then a paragraph saying
  what the notebook is for (the card's purpose).
- Exactly one code cell is tagged :data:`FIGURE_TAG` (``figure``); its last
  image (the figure the cell ends on) is the card's thumbnail.
- Every code cell with an ``assert`` statement (an *assert cell*) starts with a
  one-line ``# Check: <the fact it checks>`` comment (:data:`CHECK_PREFIX`).
  In an executed notebook the cell's papermill status says whether the fact
  held: passed, failed (it raised, or its time ran out), or not run (an earlier
  cell failed).
"""

from __future__ import annotations

import ast
import base64
import io
from dataclasses import dataclass, field
from pathlib import Path

#: cell tag of the code cell whose last image is the notebook's thumbnail
FIGURE_TAG = "figure"
#: first line of every assert cell: ``# Check: <one-line description>``
CHECK_PREFIX = "# Check:"
#: the outcome of a check
CHECK_STATES = ("passed", "failed", "not run")
#: width of a thumbnail in pixels
THUMBNAIL_WIDTH = 480


@dataclass
class Check:
    """One assert cell: its one-line description and whether it held."""

    description: str
    status: str


@dataclass
class NotebookSummary:
    """The front-page card of one notebook.

    Attributes:
        notebook: file name, ``NN_name.ipynb``.
        title: the first heading of the first markdown cell (without ``#``).
        purpose: the first paragraph after that heading (markdown, maths as ``$...$``).
        thumbnail_png: the tagged figure, scaled to :data:`THUMBNAIL_WIDTH` px wide
            (PNG bytes), or ``None`` when the figure cell has no image (not run, or failed).
        checks: the assert cells in order.
    """

    notebook: str
    title: str
    purpose: str
    thumbnail_png: bytes | None
    checks: list[Check] = field(default_factory=list)

    def count(self, status: str) -> int:
        """How many checks have ``status`` (one of :data:`CHECK_STATES`)."""
        if status not in CHECK_STATES:
            raise ValueError(f"status must be one of {CHECK_STATES}, got {status!r}")
        return sum(c.status == status for c in self.checks)


def is_assert_cell(cell) -> bool:
    """A code cell whose source has an ``assert`` statement (IPython magics are skipped)."""
    if cell.get("cell_type") != "code":
        return False
    source = "\n".join(line for line in cell.source.splitlines() if not line.lstrip().startswith(("%", "!")))
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return "assert " in source
    return any(isinstance(node, ast.Assert) for node in ast.walk(tree))


def check_description(source: str) -> str | None:
    """The text after ``# Check:`` on the cell's first line, or ``None`` if it has none."""
    first = source.lstrip("\n").split("\n", 1)[0].strip()
    if not first.startswith(CHECK_PREFIX):
        return None
    return first[len(CHECK_PREFIX):].strip() or None


def cell_status(cell) -> str:
    """``passed``, ``failed`` or ``not run``, from an executed cell's outputs and papermill status."""
    if any(o.get("output_type") == "error" for o in cell.get("outputs", [])):
        return "failed"
    state = cell.get("metadata", {}).get("papermill", {}).get("status")
    if state == "completed":
        return "passed"
    if state in ("failed", "running"):  # running: its time ran out
        return "failed"
    return "not run"


def title_and_purpose(markdown: str) -> tuple[str, str]:
    """The first ``#`` heading and the paragraph after it, from a markdown cell."""
    title, paragraphs, current = "", [], []
    for line in markdown.splitlines():
        if not title and line.startswith("#"):
            title = line.lstrip("#").strip()
            continue
        if line.strip():
            current.append(line.strip())
        elif current:
            paragraphs.append(" ".join(current))
            current = []
    if current:
        paragraphs.append(" ".join(current))
    return title, (paragraphs[0] if paragraphs else "")


def thumbnail(png: bytes, width: int = THUMBNAIL_WIDTH) -> bytes:
    """``png`` scaled down to ``width`` pixels wide (never up), as PNG bytes."""
    from PIL import Image

    with Image.open(io.BytesIO(png)) as im:
        im = im.convert("RGBA") if im.mode in ("P", "LA") else im
        if im.width > width:
            im = im.resize((width, max(1, round(im.height * width / im.width))), Image.LANCZOS)
        out = io.BytesIO()
        im.save(out, format="PNG", optimize=True)
    return out.getvalue()


def _last_png(cell) -> bytes | None:
    for output in reversed(cell.get("outputs", [])):
        data = output.get("data", {}).get("image/png")
        if data:
            return base64.b64decode(data if isinstance(data, str) else "".join(data))
    return None


def summarize_notebook(path: Path | str) -> NotebookSummary:
    """The card of the notebook at ``path``: executed (statuses and figure from its
    outputs) or not (every check ``not run``, no thumbnail)."""
    import nbformat

    path = Path(path)
    nb = nbformat.read(str(path), as_version=4)
    # papermill puts markdown cells tagged papermill-error-cell-tag above and at a failed cell
    first_md = next((c.source for c in nb.cells if c.cell_type == "markdown"
                     and not any(t.startswith("papermill") for t in c.metadata.get("tags", []))), "")
    title, purpose = title_and_purpose(first_md)
    figure = next((c for c in nb.cells if c.cell_type == "code" and FIGURE_TAG in c.metadata.get("tags", [])), None)
    png = _last_png(figure) if figure is not None else None
    checks = [Check(check_description(c.source) or "(no description)", cell_status(c))
              for c in nb.cells if is_assert_cell(c)]
    return NotebookSummary(path.name, title or path.stem, purpose, thumbnail(png) if png else None, checks)
