"""The static copy of an :class:`~dflib.explorers.Explorer`: figures drawn to pixels,
encoded as PNG or JPEG, and assembled with plain HTML controls and a few lines of
inline JavaScript into self-contained HTML (no kernel, nothing from the network).
"""

from __future__ import annotations

import html
import io
import json
import textwrap
from typing import Any, Sequence

import numpy as np

from dflib.controls import ChoiceControl, Control

__all__ = ["encode_image", "error_figure", "figure_pixels", "pyplot", "static_html"]


def pyplot():
    """matplotlib.pyplot, imported when first needed."""
    import matplotlib.pyplot as plt

    return plt


def figure_pixels(fig: Any, dpi: float) -> np.ndarray:
    """``fig`` drawn once by Agg at ``dpi``: ``[H, W, 3]`` uint8 on white."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    fig.set_dpi(dpi)
    fig.patch.set_facecolor("white")
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()


def encode_image(rgb: np.ndarray, fmt: str) -> bytes:
    """``[H, W, 3]`` uint8 as PNG or JPEG (quality 85) bytes."""
    import matplotlib.image

    if fmt not in ("png", "jpeg"):
        raise ValueError(f"fmt must be 'png' or 'jpeg', got {fmt!r}")
    buf = io.BytesIO()
    kw = {"pil_kwargs": {"quality": 85}} if fmt == "jpeg" else {"metadata": {"Software": None}}
    matplotlib.image.imsave(buf, rgb, format=fmt, **kw)
    return buf.getvalue()


def error_figure(message: str) -> Any:
    """A small figure that shows ``message`` (wrapped) in red: the frame for a setting the plot cannot draw."""
    fig = pyplot().figure(figsize=(6, 1.2))
    fig.text(0.02, 0.5, textwrap.fill(message, 90), va="center", fontsize=9, color="#b00020")
    return fig


_PLAYER_JS = """
(function () {
  var root = document.currentScript.parentNode;
  var data = JSON.parse(root.querySelector("script.dflib-explorer-data").textContent);
  var img = root.querySelector("img.dflib-explorer-figure");
  var state = data.defaults.slice();
  function show() {
    for (var i = 0; i < state.length; i++) {
      root.querySelector('[data-control="' + i + '"]').value = String(state[i]);
      var out = root.querySelector('[data-readout="' + i + '"]');
      if (out) { out.textContent = data.labels[i][state[i]]; }
    }
    var f = data.index[state.join(",")];
    img.src = data.frames[f];
    img.alt = data.alts[f];
    img.setAttribute("data-frame", String(f));
  }
  root.querySelectorAll("[data-control]").forEach(function (el) {
    function moved() {
      var i = Number(el.getAttribute("data-control"));
      if (data.oneAtATime) { state = data.defaults.slice(); }
      state[i] = Number(el.value);
      show();
    }
    el.addEventListener("input", moved);
    el.addEventListener("change", moved);
  });
})();
"""



def static_html(controls: Sequence[Control], grids: Sequence[Sequence[Any]], keys: Sequence[tuple[int, ...]],
                default: tuple[int, ...], frames: Sequence[str], alts: Sequence[str], one_at_a_time: bool) -> str:
    """The explorer's HTML: ``frames`` (data URIs, one per key of ``keys``, with ``alts``), a
    control per entry of ``controls`` over its values ``grids``, set to ``default`` (indices)."""
    payload = {
        "frames": list(frames),
        "alts": list(alts),
        "index": {",".join(map(str, k)): i for i, k in enumerate(keys)},
        "defaults": list(default),
        "labels": [[c.format(v) for v in g] for c, g in zip(controls, grids)],
        "oneAtATime": one_at_a_time,
    }
    label_w = f"{max(len(c.description) for c in controls) * 0.6 + 1:.1f}em"
    rows = []
    for i, (c, g) in enumerate(zip(controls, grids)):
        desc = f'<span style="display:inline-block;width:{label_w}">{html.escape(c.description)}</span>'
        if isinstance(c, ChoiceControl):
            opts = "".join(f'<option value="{j}"{" selected" if j == default[i] else ""}>{html.escape(c.format(v))}'
                           f"</option>" for j, v in enumerate(g))
            field = f'<select data-control="{i}" aria-label="{html.escape(c.description)}">{opts}</select>'
        else:
            field = (f'<input type="range" data-control="{i}" min="0" max="{len(g) - 1}" step="1" '
                     f'value="{default[i]}" style="width:16em" aria-label="{html.escape(c.description)}"> '
                     f'<output data-readout="{i}">{html.escape(c.format(g[default[i]]))}</output>')
        rows.append(f'<div style="margin:0.15em 0">{desc}{field}</div>')
    n = len(keys)
    note = f"Pre-rendered copy: {n} settings, no kernel needed."
    if one_at_a_time:
        note += " Its controls move one at a time: moving one puts the others back to their defaults."
    elif len(controls) > 1:
        note += " Every combination of its controls' values is drawn."
    d0 = keys.index(default)
    return (
        '<div class="dflib-explorer">\n'
        + "\n".join(rows)
        + f'\n<div style="font-size:85%;color:#555;margin:0.2em 0">{html.escape(note)}</div>\n'
        + f'<img class="dflib-explorer-figure" data-frame="{d0}" src="{frames[d0]}" '
        + f'alt="{html.escape(alts[d0])}" style="max-width:100%;height:auto">\n'
        + '<script type="application/json" class="dflib-explorer-data">'
        + json.dumps(payload).replace("</", "<\\/")
        + "</script>\n<script>" + _PLAYER_JS + "</script>\n</div>"
    )
