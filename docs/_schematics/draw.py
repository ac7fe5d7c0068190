"""Boxes, circles, arrows and text in data units (1 unit = 1 inch), and an atomic save.

Every schematic is drawn on one axis without ticks whose data units are
inches, so a size given here is the size on the page.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.patches import Circle, FancyArrowPatch, FancyBboxPatch  # noqa: E402

DPI = 150
FWD = "#1f3b73"  # forward computation
BWD = "#c0392b"  # gradients (backward)
ACCENT = "#1e8449"  # a highlighted path
GREY = "#7f8c8d"
FILL = {"in": "#eaf2fb", "state": "#fdf2e0", "gate": "#e8f6ec", "op": "#ffffff",
        "attn": "#f4ecf7", "out": "#fbeaea", "note": "#fcfcf4"}


def canvas(width, height):
    """A white figure ``width × height`` inches with one axis in inch units, no ticks."""
    fig = plt.figure(figsize=(width, height), dpi=DPI, facecolor="white")
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, width)
    ax.set_ylim(0, height)
    ax.set_axis_off()
    return fig, ax


def box(ax, x, y, w, h, text="", *, fc="op", ec=FWD, fs=11, lw=1.3, ls="-", weight="normal",
        family=None, color="black", z=2):
    """A rounded box centred at ``(x, y)``; ``fc`` is a key of FILL or a colour."""
    ax.add_patch(FancyBboxPatch((x - w / 2, y - h / 2), w, h,
                                boxstyle="round,pad=0,rounding_size=0.08",
                                fc=FILL.get(fc, fc), ec=ec, lw=lw, ls=ls, zorder=z))
    if text:
        ax.text(x, y, text, ha="center", va="center", fontsize=fs, weight=weight,
                family=family, color=color, zorder=z + 1)
    return (x, y, w, h)


def node(ax, x, y, text, *, r=0.17, fs=12, ec=FWD, fc="white", z=3):
    """A small circle at ``(x, y)`` holding an operator such as ⊙ or +."""
    ax.add_patch(Circle((x, y), r, fc=fc, ec=ec, lw=1.3, zorder=z))
    ax.text(x, y, text, ha="center", va="center", fontsize=fs, zorder=z + 1)
    return (x, y, 2 * r, 2 * r)


def arrow(ax, start, end, *, color=FWD, lw=1.4, rad=0.0, ls="-", head=12, z=4,
          shrink=(0, 0)):
    """An arrow from point ``start`` to point ``end`` (curved when ``rad`` ≠ 0)."""
    ax.add_patch(FancyArrowPatch(start, end, arrowstyle="-|>", mutation_scale=head,
                                 color=color, lw=lw, ls=ls, zorder=z,
                                 connectionstyle=f"arc3,rad={rad}",
                                 shrinkA=shrink[0], shrinkB=shrink[1]))


def line(ax, xs, ys, *, color=FWD, lw=1.4, ls="-", z=1):
    """A polyline without a head (a wire)."""
    ax.plot(xs, ys, color=color, lw=lw, ls=ls, zorder=z, solid_capstyle="round")


def text(ax, x, y, s, *, fs=10, color="black", ha="center", va="center", **kw):
    """Text at ``(x, y)``."""
    return ax.text(x, y, s, fontsize=fs, color=color, ha=ha, va=va, **kw)


def edge(b, side):
    """The middle of one side (``"l"``, ``"r"``, ``"t"``, ``"b"``) of a box or node."""
    x, y, w, h = b
    return {"l": (x - w / 2, y), "r": (x + w / 2, y),
            "t": (x, y + h / 2), "b": (x, y - h / 2)}[side]


def save_atomic(fig, path):
    """Write ``fig`` as a PNG at ``path`` through a temporary file in the same
    directory, so a reader never sees half a file; close the figure."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".png", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            fig.savefig(f, format="png", dpi=DPI, facecolor="white")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    finally:
        plt.close(fig)
