"""Per-head attention: a grid of heatmaps, one row per layer, one column per head.

A Transformer's attention is ``n`` heads in each of ``L`` layers; the one
matrix `tinyattn.plot.heatmaps.plot_alignment` draws (and decoding returns)
is the last decoder layer's cross-attention averaged over its heads.
`plot_heads` shows what that average hides: which heads look where, layer
by layer. Same conventions as `plot_alignment`: weights in [0, 1] on one
fixed 0..1 colour scale, target rows top to bottom, source columns left to
right, a space token shown as "␣", a CJK font set up for Chinese tokens.
"""

from __future__ import annotations

import numpy as np

from tinyattn._validate import as_list, as_real_array
from tinyattn.plot.figures import (
    check_cmap,
    check_figure_path,
    check_title,
    is_cjk,
    save_figure,
    setup_fonts,
)
from tinyattn.plot.figures import mpl as _mpl
from tinyattn.plot.heatmaps import _check_tokens, _heatmap, _text_width

_MAX_WIDTH, _MAX_HEIGHT = 30.0, 30.0  # inches: 4500 pixels at 150 dpi


def _check_weights(weights) -> tuple[np.ndarray, bool]:
    """``weights`` as a float64 (L, n, T, S) array (a 3-D one gets L = 1), and
    whether it was 3-D."""
    weights = as_real_array(weights, "weights", finite=False)  # complex, str, bool: TypeError
    if weights.ndim not in (3, 4) or 0 in weights.shape:
        raise ValueError(f"weights must be a non-empty array of shape (L, n, T, S) (layers, "
                         f"heads, target, source) or (n, T, S) (one layer's heads), got shape "
                         f"{weights.shape}")
    weights = weights.astype(np.float64)
    if not np.all(np.isfinite(weights)):
        raise ValueError("weights must be finite, got NaN or inf")
    # the tolerance of plot_alignment: float32 softmax rows may exceed 1 by a rounding error
    if weights.min() < -1e-6 or weights.max() > 1 + 1e-6:
        raise ValueError(f"weights must hold attention weights in [0, 1], got values in "
                         f"[{weights.min():.3g}, {weights.max():.3g}]")
    return (weights, False) if weights.ndim == 4 else (weights[None], True)


def _check_names(layer_names, L: int, one_layer: bool) -> list[str]:
    if layer_names is None:
        return [""] if one_layer else [f"layer {l}" for l in range(L)]
    names = as_list(layer_names, "layer_names", "a sequence of str, one per layer")
    if len(names) != L:
        raise ValueError(f"layer_names must have one name per layer of weights ({L}), "
                         f"got {len(names)}")
    for l, name in enumerate(names):
        if not isinstance(name, str):
            raise TypeError(f"layer_names[{l}] must be a str, got {type(name).__name__}")
    return names


def _check_axis_labels(axis_labels) -> tuple[str, str]:
    labels = as_list(axis_labels, "axis_labels", "a pair of str (x label, y label)")
    if len(labels) != 2 or not all(isinstance(s, str) for s in labels):
        raise ValueError(f"axis_labels must be a pair of str (x label, y label), "
                         f"got {axis_labels!r}")
    return labels[0], labels[1]


def _grid_size(L: int, n: int, T: int, S: int, src, tgt, titled: bool):
    """Figure size (inches), tick font size and cell side (inches) of an L×n grid.

    A cell is 0.3 in when the panels fit in 16 × 12 in, smaller (down to
    0.1 in) when they would not; the margins make room for the longest token.
    """
    cell = float(np.clip(min(16.0 / (n * S), 12.0 / (L * T)), 0.1, 0.3))
    fontsize = float(np.clip(cell * 72 * 0.6, 5.0, 10.0))
    em = fontsize / 72  # inches
    left = 0.7 + em * max(_text_width(t) for t in tgt)
    bottom = 0.6 + em * max(_text_width(s) for s in src)  # room for upright labels
    width = left + n * (cell * S + 0.25) + 1.1  # 1.1 in: the colour bar and its label
    height = bottom + L * (cell * T + 0.4) + (0.5 if titled else 0.1)  # 0.4: panel titles
    return (min(width, _MAX_WIDTH), min(height, _MAX_HEIGHT)), fontsize, cell


def plot_heads(weights, src_tokens, tgt_tokens, *, layer_names=None, path=None, title=None,
               cmap="viridis", axis_labels=("source", "target")):
    """A grid of attention heatmaps: one row per layer, one column per head.

    Parameters
    ----------
    weights : array_like of shape (L, n, T, S), or (n, T, S) for one layer
        Attention weights in [0, 1]: ``weights[l, h, t]`` is head h of layer
        l's distribution over the S keys for query t. For a `Transformer`
        after a forward, ``np.stack([layer.cross_weights[b] for layer in
        model.decoder])`` (example b's rows, pads cut off) is the
        cross-attention of every decoder layer.
    src_tokens : sequence of length S
        Column labels (x axis). A space token is shown as "␣".
    tgt_tokens : sequence of length T
        Row labels (y axis, top to bottom).
    layer_names : sequence of L str, optional
        Each row's name in its panels' titles, "<name>, head h". Default
        "layer 0" .. "layer L-1" (so "layer l, head h"); for a 3-D
        ``weights`` the panels are titled "head h" alone, since which layer
        they come from is the caller's to say (``layer_names=["layer 3"]``).
    path : str or os.PathLike, optional
        Also save the figure here (``.png`` or ``.svg``).
    title : str, optional
        The figure's title, above the grid.
    cmap : str or matplotlib Colormap
    axis_labels : pair of str
        The x and y axis labels, ("source", "target") by default; for
        self-attention e.g. ("key", "query"). Drawn on the outer panels only
        (the bottom row's x axis, the left column's y axis), as are the
        token tick labels: the panels share their axes.

    Returns
    -------
    matplotlib.figure.Figure
        Axes ``fig.axes[l * n + h]`` is layer l, head h (row-major), each
        with one image of ``weights[l, h]`` on the 0..1 scale; the last axes
        is the shared colour bar, labelled "attention weight".

    Examples
    --------
    >>> from tinyattn.plot import plot_heads
    >>> w = np.full((2, 3, 4, 5), 0.2)  # 2 layers, 3 heads, 4 targets, 5 sources
    >>> fig = plot_heads(w, list("abcde"), list("wxyz"))
    >>> [ax.get_title() for ax in fig.axes[:4]]
    ['layer 0, head 0', 'layer 0, head 1', 'layer 0, head 2', 'layer 1, head 0']
    >>> len(fig.axes)  # 6 panels and the colour bar
    7
    """
    plt = _mpl()
    path = check_figure_path(path)
    weights, one_layer = _check_weights(weights)
    L, n, T, S = weights.shape
    src = _check_tokens(src_tokens, S, "src_tokens", "column", of="weights")
    tgt = _check_tokens(tgt_tokens, T, "tgt_tokens", "row", of="weights")
    names = _check_names(layer_names, L, one_layer)
    xlabel, ylabel = _check_axis_labels(axis_labels)
    check_title(title)
    check_cmap(cmap)
    setup_fonts(warn=is_cjk("".join(src + tgt + names + [title or "", xlabel, ylabel])))

    import matplotlib

    family = matplotlib.rcParams["font.family"]  # CJK fallback for titles too (`setup_fonts`)
    figsize, fontsize, cell = _grid_size(L, n, T, S, src, tgt, title is not None)
    fig, axes = plt.subplots(L, n, squeeze=False, layout="constrained", figsize=figsize)
    for l in range(L):
        for h in range(n):
            ax = axes[l, h]
            im = _heatmap(ax, weights[l, h], src, tgt, cmap, fontsize, cell)
            name = f"{names[l]}, head {h}" if names[l] else f"head {h}"
            ax.set_title(name, fontsize=min(fontsize + 1.0, 10.0), fontfamily=family)
            bottom, left = l == L - 1, h == 0
            ax.set_xlabel(xlabel if bottom else "", fontfamily=family)
            ax.set_ylabel(ylabel if left else "", fontfamily=family)
            ax.tick_params(labelbottom=bottom, labelleft=left)
    # a bar about 0.2 in wide, whatever the figure's width
    fig.colorbar(im, ax=axes, label="attention weight", shrink=min(1.0, 0.6 + 0.2 * L),
                 fraction=0.2 / figsize[0], pad=0.01, aspect=max(8.0, 6.0 * L))
    if title is not None:
        fig.suptitle(title, fontfamily=family)
    if path is not None:
        save_figure(fig, path)
    return fig
