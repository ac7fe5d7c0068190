"""Attention heatmaps: one alignment, and one panel per beam hypothesis.

matplotlib is an optional extra (``pip install "tinyattn[viz]"``), imported
inside each function, so ``import tinyattn`` never needs it. Every plot
function returns the `matplotlib.figure.Figure` (created with pyplot, so
``plt.show()`` and notebooks display it) and, given ``path``, also saves it
as ``.png`` (150 dpi) or ``.svg``.

Tokens from Chinese (or any CJK) text need a font with those glyphs:
every plot that draws tokens calls `tinyattn.plot.figures.setup_fonts` first.
"""

from __future__ import annotations

import math
import unicodedata

import numpy as np

from tinyattn._validate import as_list, as_real_array, check_size, check_span
from tinyattn.plot.figures import (
    check_ax,
    check_cmap,
    check_figure_path,
    check_title,
    is_cjk,
    save_figure,
    setup_fonts,
)
from tinyattn.plot.figures import mpl as _mpl


def _show_token(token) -> str:
    """Tick label for a token: spaces become a visible "␣", empty becomes "∅"."""
    text = str(token).replace(" ", "␣").replace("\t", "⇥").replace("\n", "↵")
    return text or "∅"


def _text_width(text: str) -> float:
    """Approximate width in ems (CJK glyphs are about twice as wide as Latin)."""
    return sum(1.0 if unicodedata.east_asian_width(c) in "WF" else 0.6 for c in text)


def _check_alpha(alpha, name: str, heads_hint: bool = False) -> np.ndarray:
    alpha = as_real_array(alpha, name, finite=False)  # complex, str, bool: a TypeError
    if alpha.ndim != 2 or 0 in alpha.shape:
        hint = ("; per-head weights (n, T, S) or (L, n, T, S) are drawn by "
                "tinyattn.plot.plot_heads" if heads_hint and alpha.ndim in (3, 4) else "")
        raise ValueError(f"{name} must be a non-empty 2-D array of shape (T, S), "
                         f"got shape {alpha.shape}{hint}")
    alpha = alpha.astype(np.float64)
    if not np.all(np.isfinite(alpha)):
        raise ValueError(f"{name} must be finite, got NaN or inf")
    # why the tolerance: float32 softmax rows may exceed 1 by a rounding error
    if alpha.min() < -1e-6 or alpha.max() > 1 + 1e-6:
        raise ValueError(f"{name} must hold attention weights in [0, 1], got values in "
                         f"[{alpha.min():.3g}, {alpha.max():.3g}]")
    return alpha


def _check_tokens(tokens, n: int, name: str, axis: str, of: str = "alpha") -> list[str]:
    tokens = as_list(tokens, name, "a sequence of tokens (a list, not a str)")
    if len(tokens) != n:
        raise ValueError(f"{name} must have one token per {axis} of {of} ({n}), "
                         f"got {len(tokens)}")
    return [_show_token(t) for t in tokens]


def _check_gold(gold, T: int, S: int) -> list:
    gold = as_list(gold, "gold", "a sequence of (start, end) spans or None")
    if len(gold) != T:
        raise ValueError(f"gold must have one span (or None) per target token ({T}), "
                         f"got {len(gold)}")
    # each a half-open source span (start, end) of ints: check_span's TypeError or ValueError
    return [None if span is None else check_span(span, f"gold[{t}]", S)
            for t, span in enumerate(gold)]


def _heatmap(ax, alpha, src, tgt, cmap, fontsize, cell=None):
    """Draw one T×S heatmap with token tick labels; return the image.

    ``cell`` is a column's width in inches (measured from ``ax`` if None).
    """
    T, S = alpha.shape
    im = ax.imshow(alpha, cmap=cmap, vmin=0.0, vmax=1.0, aspect="auto",
                   interpolation="nearest")
    import matplotlib

    # The family explicitly: an ``ax`` made before `setup_fonts` ran would give its tick
    # labels the family of that time, without the CJK fallback.
    family = matplotlib.rcParams["font.family"]
    ax.set_xticks(range(S), src, fontsize=fontsize, fontfamily=family)
    ax.set_yticks(range(T), tgt, fontsize=fontsize, fontfamily=family)
    # a label wider than its column would run into the next one: turn the row upright
    cell = _cell_inches(ax, S) if cell is None else cell
    if max(_text_width(s) for s in src) * fontsize / 72 > 0.9 * cell:
        ax.tick_params(axis="x", labelrotation=90)
    ax.set_xlabel("source")
    ax.set_ylabel("target")
    ax.tick_params(length=0)
    ax.set_xlim(-0.5, S - 0.5)
    ax.set_ylim(T - 0.5, -0.5)  # row 0 at the top
    return im


def _cell_inches(ax, S: int) -> float:
    fig = ax.get_figure()
    return fig.get_figwidth() * ax.get_position().width / S


def _alignment_size(S: int, T: int, src, tgt):
    """Figure size (inches), tick font size and column width (inches).

    Each cell gets about 0.42 in, within a figure clamped to 4.5..16 × 3.5..14 in.
    """
    left = 1.0 + 0.09 * max(_text_width(t) for t in tgt)
    bottom = 1.2 + 0.09 * max(_text_width(s) for s in src)
    width = min(max(left + 1.4 + 0.42 * S, 4.5), 16.0)
    height = min(max(bottom + 0.9 + 0.42 * T, 3.5), 14.0)
    cell_w, cell_h = (width - left - 1.4) / S, (height - bottom - 0.9) / T
    fontsize = float(np.clip(min(cell_w, cell_h) * 72 * 0.6, 5.0, 11.0))
    return (width, height), fontsize, cell_w


def plot_alignment(alpha, src_tokens, tgt_tokens, *, gold=None, positions=None, window=None,
                   ax=None, title=None, path=None, cmap="viridis", gold_label="gold span"):
    """Heatmap of one example's attention weights, target rows × source columns.

    Parameters
    ----------
    alpha : array_like of shape (T, S)
        Attention weights in [0, 1]; row t is the distribution over source
        positions when the t-th target token was produced. One matrix only:
        a Transformer's per-head weights (n, T, S) or (L, n, T, S) are a
        ValueError that points to `tinyattn.plot.heads.plot_heads`, which
        draws them as a grid (this function stays one heatmap, whose
        ``gold``, ``positions`` and ``ax`` mean one matrix).
    src_tokens : sequence of length S
        Column labels (x axis). A space token is shown as "␣".
    tgt_tokens : sequence of length T
        Row labels (y axis, top to bottom).
    gold : sequence of length T of (start, end) or None, optional
        Gold half-open source span per target token, outlined in red.
    gold_label : str
        The legend's name for those outlines (e.g. "hand alignment").
    positions : array_like of shape (T,), optional
        Local attention's window centres p_t (predicted by local-p; t itself
        for local-m), in source index units.
    window : int, optional
        Half-width D of local attention's window; draws p_t ± D. Needs
        ``positions``.
    ax : matplotlib.axes.Axes, optional
        Draw here instead of in a new figure.
    title : str, optional
    path : str or os.PathLike, optional
        Also save the figure here (``.png`` or ``.svg``).
    cmap : str

    Returns
    -------
    matplotlib.figure.Figure
    """
    plt = _mpl()
    path = check_figure_path(path)
    alpha = _check_alpha(alpha, "alpha", heads_hint=True)
    T, S = alpha.shape
    src = _check_tokens(src_tokens, S, "src_tokens", "column")
    tgt = _check_tokens(tgt_tokens, T, "tgt_tokens", "row")
    gold = None if gold is None else _check_gold(gold, T, S)
    if not isinstance(gold_label, str):
        raise TypeError(f"gold_label must be a str, got {type(gold_label).__name__}")
    check_title(title)
    check_ax(ax)
    check_cmap(cmap)
    if positions is not None:
        positions = as_real_array(positions, "positions", finite=False)
        if positions.shape != (T,):
            raise ValueError(f"positions must be a finite array of shape ({T},), "
                             f"got shape {positions.shape}")
        positions = positions.astype(np.float64)
        bad = np.flatnonzero(~np.isfinite(positions))
        if bad.size:
            raise ValueError(f"positions must be a finite array of shape ({T},), "
                             f"got NaN or inf at positions{bad.tolist()}")
    if window is not None:
        window = check_size(window, "window")
        if positions is None:
            raise ValueError("window needs positions (the centres p_t it is drawn around)")
    setup_fonts(warn=is_cjk("".join(src + tgt)))

    (width, height), fontsize, cell = _alignment_size(S, T, src, tgt)
    if ax is None:
        fig, ax = plt.subplots(figsize=(width, height), layout="constrained")
        own = True
    else:
        fig, own, cell = ax.get_figure(), False, None
        fontsize = min(fontsize, 10.0)
    im = _heatmap(ax, alpha, src, tgt, cmap, fontsize, cell)
    fig.colorbar(im, ax=ax, label="attention weight", fraction=0.05, pad=0.03)

    if gold is not None:
        from matplotlib.patches import Rectangle

        label = gold_label
        for t, span in enumerate(gold):
            if span is not None:
                # cell j spans j - 0.5 .. j + 0.5 in data coordinates
                ax.add_patch(Rectangle((span[0] - 0.5, t - 0.5), span[1] - span[0], 1.0,
                                       fill=False, edgecolor="red", linewidth=2.0, label=label))
                label = "_nolegend_"
    rows = np.arange(T)
    if window is not None:
        edges = np.concatenate([positions - window, positions + window])  # (2T,)
        ax.vlines(edges, np.tile(rows - 0.45, 2), np.tile(rows + 0.45, 2), colors="magenta",
                  linewidths=1.5, linestyles="dashed", label=f"window p$_t$ ± {window}")
    if positions is not None:
        ax.plot(positions, rows, color="orange", marker="o", markersize=5, linewidth=1.0,
                markeredgecolor="black", label="window centre p$_t$")
    if title is not None:
        import matplotlib

        # the family explicitly, as for the tick labels (`_heatmap`): a given ``ax``'s title
        # keeps the family of the axes' creation, which may predate `setup_fonts`
        ax.set_title(title, fontfamily=matplotlib.rcParams["font.family"])
    if ax.get_legend_handles_labels()[0]:
        if own:
            fig.legend(loc="outside lower center", ncols=3, fontsize="small", frameon=False)
        else:
            ax.legend(loc="best", fontsize="small", framealpha=0.8)
    if path is not None:
        save_figure(fig, path)
    return fig


def plot_hypotheses(hypotheses, src_tokens, tgt_tokens_per_hyp, *, path=None, title=None):
    """One attention heatmap per beam hypothesis, on a shared 0..1 colour scale.

    Parameters
    ----------
    hypotheses : sequence of Hypothesis
        From `tinyattn.decoding.beam_search` for one example; each needs
        ``.attention`` of shape (len(tokens), S) and ``.score``, ``.logprob``.
    src_tokens : sequence of length S
    tgt_tokens_per_hyp : sequence of sequences
        One token list per hypothesis, of length ``len(hyp.attention)``.
    path : str or os.PathLike, optional
    title : str, optional

    Returns
    -------
    matplotlib.figure.Figure
        Subplot k is titled "#k score s" (k from 1, in the given order).
    """
    plt = _mpl()
    path = check_figure_path(path)
    check_title(title)
    hypotheses = as_list(hypotheses, "hypotheses")
    tgt_lists = as_list(tgt_tokens_per_hyp, "tgt_tokens_per_hyp")
    if not hypotheses:
        raise ValueError("hypotheses must hold at least one Hypothesis, got none")
    if len(tgt_lists) != len(hypotheses):
        raise ValueError(f"tgt_tokens_per_hyp must have one token list per hypothesis "
                         f"({len(hypotheses)}), got {len(tgt_lists)}")
    maps, tgts = [], []
    for k, hyp in enumerate(hypotheses):
        if getattr(hyp, "attention", None) is None:
            raise ValueError(f"hypotheses[{k}].attention is None; decode with attention kept")
        alpha = _check_alpha(hyp.attention, f"hypotheses[{k}].attention")
        maps.append(alpha)
        tgts.append(_check_tokens(tgt_lists[k], alpha.shape[0], f"tgt_tokens_per_hyp[{k}]",
                                  "row"))
    S = maps[0].shape[1]
    for k, alpha in enumerate(maps):
        if alpha.shape[1] != S:
            raise ValueError(f"every hypothesis must attend over the same {S} source positions, "
                             f"hypotheses[{k}].attention has {alpha.shape[1]}")
    src = _check_tokens(src_tokens, S, "src_tokens", "column")
    setup_fonts(warn=is_cjk("".join(src + [t for tgt in tgts for t in tgt])))

    n = len(maps)
    ncols = n if n <= 4 else 3  # a beam of 4 in one row; more wrap at 3 per row
    nrows = math.ceil(n / ncols)
    T_max = max(a.shape[0] for a in maps)
    (width, height), fontsize, _ = _alignment_size(S, T_max, src, [t for g in tgts for t in g])
    fig, axes = plt.subplots(nrows, ncols, squeeze=False, layout="constrained",
                             figsize=(min(width * ncols * 0.8, 18.0), min(height * nrows, 16.0)))
    for k, ax in enumerate(axes.flat):
        if k >= n:
            ax.set_axis_off()
            continue
        im = _heatmap(ax, maps[k], src, tgts[k], "viridis", min(fontsize, 10.0))
        # every panel spans T_max rows, so cells are the same size and lengths compare
        ax.set_ylim(T_max - 0.5, -0.5)
        hyp = hypotheses[k]
        ax.set_title(f"#{k + 1} score {float(hyp.score):.2f}\n"
                     f"log p {float(hyp.logprob):.2f}", fontsize="medium")
    fig.colorbar(im, ax=axes, label="attention weight", shrink=0.8)
    if title is not None:
        fig.suptitle(title)
    if path is not None:
        save_figure(fig, path)
    return fig
