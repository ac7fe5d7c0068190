"""Figures: attention heatmaps, training curves and beam hypotheses.

matplotlib is an optional extra (``pip install "tinyattn[viz]"``), imported
inside each function, so ``import tinyattn`` never needs it. Every plot
function returns the `matplotlib.figure.Figure` (created with pyplot, so
``plt.show()`` and notebooks display it) and, given ``path``, also saves it
as ``.png`` (150 dpi) or ``.svg``.

Tokens from Chinese (or any CJK) text need a font with those glyphs.
`setup_fonts` lists an installed CJK font in ``rcParams["font.family"]``
right *after* the default font; since matplotlib 3.6 text falls back glyph
by glyph along that list, so Latin text keeps its usual look and only the
characters DejaVu Sans lacks come from the CJK font.
"""

from __future__ import annotations

import functools
import math
import pathlib
import unicodedata
import warnings
from dataclasses import asdict, is_dataclass

import numpy as np

from tinyattn._validate import check_size

_INSTALL_HINT = 'matplotlib is needed for tinyattn.viz: pip install "tinyattn[viz]"'
_NO_CJK_HINT = ("no CJK font found; Chinese tokens will show as boxes. Install one: "
                "apt-get install fonts-wqy-microhei (Debian/Ubuntu) or any Noto Sans CJK font")

# Most-preferred first: the font CI installs, then the common Linux, macOS and Windows ones.
CJK_FONTS = (
    "WenQuanYi Micro Hei", "WenQuanYi Zen Hei",
    "Noto Sans CJK SC", "Noto Sans CJK JP", "Noto Sans CJK TC", "Noto Sans CJK KR",
    "Noto Sans SC", "Source Han Sans SC", "Source Han Sans CN", "Source Han Sans",
    "SimHei", "Microsoft YaHei", "PingFang SC", "Heiti SC", "Heiti TC", "STHeiti",
    "Hiragino Sans GB", "Arial Unicode MS",
)
# Lower-case file-name fragments of those fonts, for files matplotlib's cache has not seen.
_CJK_FILE_HINTS = ("wqy", "notosanscjk", "notosanssc", "sourcehansans", "simhei", "msyh",
                   "pingfang", "stheiti", "hiragino")
# Unicode blocks that DejaVu Sans does not cover: CJK radicals .. unified ideographs,
# Hangul syllables, compatibility ideographs, full-width forms.
_CJK_RANGES = ((0x2E80, 0x9FFF), (0xAC00, 0xD7AF), (0xF900, 0xFAFF), (0xFF00, 0xFFEF))
_SUFFIXES = {".png": "png", ".svg": "svg"}
_warned_no_cjk = False


class CJKFontWarning(UserWarning):
    """No CJK font is installed, so CJK tokens would render as empty boxes."""


def _mpl():
    """Import matplotlib lazily, with an install hint when it is missing."""
    try:
        import matplotlib  # noqa: F401
        import matplotlib.pyplot as plt
    except ImportError as err:
        raise ImportError(_INSTALL_HINT) from err
    return plt


@functools.cache
def cjk_font() -> str | None:
    """Name of an installed CJK font, or None; the search runs once.

    Looks through matplotlib's font list for the names in `CJK_FONTS`, in
    that order. A font installed after matplotlib built its font cache is
    not in that list, so the system's font files with a known CJK file name
    are then registered (``font_manager.fontManager.addfont``) and the list
    is searched again.

    Returns
    -------
    str or None
        A family name usable in ``rcParams["font.family"]``.
    """
    _mpl()
    from matplotlib import font_manager

    def search():
        installed = {entry.name for entry in font_manager.fontManager.ttflist}
        return next((name for name in CJK_FONTS if name in installed), None)

    found = search()
    if found is not None:
        return found
    for file in font_manager.findSystemFonts():
        if any(hint in pathlib.Path(file).name.lower() for hint in _CJK_FILE_HINTS):
            try:
                font_manager.fontManager.addfont(file)
            except (OSError, RuntimeError, ValueError):  # unreadable or unsupported file
                continue
    return search()


def setup_fonts(*, warn: bool = True) -> str | None:
    """Make CJK glyphs render by adding a CJK font as a fallback; idempotent.

    matplotlib (>= 3.6) falls back glyph by glyph along the *families listed
    in* ``rcParams["font.family"]``; a generic entry such as "sans-serif"
    resolves to one font only, so the CJK font must be listed there
    itself. The first family is replaced by the font it currently resolves
    to (DejaVu Sans by default) and the CJK font is put right after it::

        ["sans-serif"]  ->  ["DejaVu Sans", "WenQuanYi Micro Hei", "sans-serif"]

    Latin text keeps the default font; only glyphs it lacks come from the
    CJK font. This changes global rcParams, so later figures get it too;
    inside ``matplotlib.rc_context`` the change ends with the context.

    Parameters
    ----------
    warn : bool
        When no CJK font is installed, emit `CJKFontWarning` (once per
        session). The plot functions pass False when no token is CJK.

    Returns
    -------
    str or None
        The CJK font's name, or None when none is installed.
    """
    global _warned_no_cjk
    _mpl()
    import matplotlib
    from matplotlib import font_manager

    name = cjk_font()
    if name is None:
        if warn and not _warned_no_cjk:
            _warned_no_cjk = True
            warnings.warn(_NO_CJK_HINT, CJKFontWarning, stacklevel=2)
        return None
    families = list(matplotlib.rcParams["font.family"])
    if name in families:
        return name
    first = font_manager.findfont(font_manager.FontProperties(family=families[:1]))
    primary = font_manager.get_font(first).family_name  # e.g. "sans-serif" -> "DejaVu Sans"
    rest = [f for f in families if f != primary]
    matplotlib.rcParams["font.family"] = [primary, name] + rest
    return name


def _is_cjk(text: str) -> bool:
    return any(lo <= ord(c) <= hi for c in text for lo, hi in _CJK_RANGES)


def _show_token(token) -> str:
    """Tick label for a token: spaces become a visible "␣", empty becomes "∅"."""
    text = str(token).replace(" ", "␣").replace("\t", "⇥").replace("\n", "↵")
    return text or "∅"


def _text_width(text: str) -> float:
    """Approximate width in ems (CJK glyphs are about twice as wide as Latin)."""
    return sum(1.0 if unicodedata.east_asian_width(c) in "WF" else 0.6 for c in text)


def _check_path(path) -> pathlib.Path | None:
    if path is None:
        return None
    path = pathlib.Path(path)
    if path.suffix.lower() not in _SUFFIXES:
        got = repr(path.suffix) if path.suffix else "no suffix"
        raise ValueError(f"path must end in .png or .svg, got {got} ({str(path)!r})")
    return path


def save_figure(fig, path) -> pathlib.Path:
    """Save ``fig`` as PNG (150 dpi) or SVG, chosen by the suffix of ``path``.

    Parent directories are created. The figure stays open.

    Parameters
    ----------
    fig : matplotlib.figure.Figure
    path : str or os.PathLike
        Ending in ``.png`` or ``.svg``; anything else is a ValueError.

    Returns
    -------
    pathlib.Path
        The path written.
    """
    path = _check_path(path)
    if path is None:
        raise ValueError("path must be a file path ending in .png or .svg, got None")
    if not callable(getattr(fig, "savefig", None)):
        raise TypeError(f"fig must be a matplotlib Figure, got {type(fig).__name__}")
    path.parent.mkdir(parents=True, exist_ok=True)
    fmt = _SUFFIXES[path.suffix.lower()]
    fig.savefig(path, format=fmt, dpi=150, bbox_inches="tight")
    return path


def _check_alpha(alpha, name: str) -> np.ndarray:
    alpha = np.asarray(alpha, dtype=np.float64)
    if alpha.ndim != 2 or 0 in alpha.shape:
        raise ValueError(f"{name} must be a non-empty 2-D array of shape (T, S), "
                         f"got shape {alpha.shape}")
    if not np.all(np.isfinite(alpha)):
        raise ValueError(f"{name} must be finite, got NaN or inf")
    # why the tolerance: float32 softmax rows may exceed 1 by a rounding error
    if alpha.min() < -1e-6 or alpha.max() > 1 + 1e-6:
        raise ValueError(f"{name} must hold attention weights in [0, 1], got values in "
                         f"[{alpha.min():.3g}, {alpha.max():.3g}]")
    return alpha


def _check_tokens(tokens, n: int, name: str, axis: str) -> list[str]:
    tokens = list(tokens)
    if len(tokens) != n:
        raise ValueError(f"{name} must have one token per {axis} of alpha ({n}), "
                         f"got {len(tokens)}")
    return [_show_token(t) for t in tokens]


def _check_gold(gold, T: int, S: int) -> list:
    gold = list(gold)
    if len(gold) != T:
        raise ValueError(f"gold must have one span (or None) per target token ({T}), "
                         f"got {len(gold)}")
    for t, span in enumerate(gold):
        if span is None:
            continue
        if len(span) != 2 or not 0 <= span[0] < span[1] <= S:
            raise ValueError(f"gold[{t}] must be a half-open source span (start, end) with "
                             f"0 <= start < end <= {S}, got {span!r}")
    return gold


def _heatmap(ax, alpha, src, tgt, cmap, fontsize, cell=None):
    """Draw one T×S heatmap with token tick labels; return the image.

    ``cell`` is a column's width in inches (measured from ``ax`` if None).
    """
    T, S = alpha.shape
    im = ax.imshow(alpha, cmap=cmap, vmin=0.0, vmax=1.0, aspect="auto",
                   interpolation="nearest")
    ax.set_xticks(range(S), src, fontsize=fontsize)
    ax.set_yticks(range(T), tgt, fontsize=fontsize)
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
                   ax=None, title=None, path=None, cmap="viridis"):
    """Heatmap of one example's attention weights, target rows × source columns.

    Parameters
    ----------
    alpha : array_like of shape (T, S)
        Attention weights in [0, 1]; row t is the distribution over source
        positions when the t-th target token was produced.
    src_tokens : sequence of length S
        Column labels (x axis). A space token is shown as "␣".
    tgt_tokens : sequence of length T
        Row labels (y axis, top to bottom).
    gold : sequence of length T of (start, end) or None, optional
        Gold half-open source span per target token, outlined in red.
    positions : array_like of shape (T,), optional
        Local attention's predicted centres p_t, in source index units.
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
    path = _check_path(path)
    alpha = _check_alpha(alpha, "alpha")
    T, S = alpha.shape
    src = _check_tokens(src_tokens, S, "src_tokens", "column")
    tgt = _check_tokens(tgt_tokens, T, "tgt_tokens", "row")
    gold = None if gold is None else _check_gold(gold, T, S)
    if positions is not None:
        positions = np.asarray(positions, dtype=np.float64)
        if positions.shape != (T,) or not np.all(np.isfinite(positions)):
            raise ValueError(f"positions must be a finite array of shape ({T},), "
                             f"got shape {positions.shape}")
    if window is not None:
        window = check_size(window, "window")
        if positions is None:
            raise ValueError("window needs positions (the centres p_t it is drawn around)")
    setup_fonts(warn=_is_cjk("".join(src + tgt)))

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

        label = "gold span"
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
                markeredgecolor="black", label="predicted centre p$_t$")
    if title is not None:
        ax.set_title(title)
    if ax.get_legend_handles_labels()[0]:
        if own:
            fig.legend(loc="outside lower center", ncols=3, fontsize="small", frameon=False)
        else:
            ax.legend(loc="best", fontsize="small", framealpha=0.8)
    if path is not None:
        save_figure(fig, path)
    return fig


_HISTORY_KEYS = ("epoch", "train_loss", "valid_loss", "seconds", "grad_norm", "lr")
_ACCURACY_WORDS = ("acc", "match", "f1")


def _record_dicts(records) -> list[dict]:
    rows = []
    for k, rec in enumerate(records):
        if is_dataclass(rec) and not isinstance(rec, type):
            rec = asdict(rec)
        if not hasattr(rec, "keys"):
            raise TypeError(f"records[{k}] must be an EpochRecord or a dict, "
                            f"got {type(rec).__name__}")
        for key in ("epoch", "train_loss"):
            if rec.get(key) is None:
                raise ValueError(f"records[{k}] needs a value for {key!r}, got keys {list(rec)}")
        rows.append(dict(rec))
    if not rows:
        raise ValueError("records must hold at least one epoch, got none")
    return rows


def _series(rows, key):
    """(epochs, values) where ``key`` has a value (valid_loss may be None)."""
    pairs = [(r["epoch"], r[key]) for r in rows if r.get(key) is not None]
    return [e for e, _ in pairs], [float(v) for _, v in pairs]


def plot_history(records, *, batch_losses=None, path=None, title=None):
    """Training curves: loss per epoch, and accuracy (or gradient norm).

    Parameters
    ----------
    records : sequence of EpochRecord or dict
        ``Trainer.fit``'s history, or dicts with the same keys (``epoch``,
        ``train_loss``, ``valid_loss`` (may be None), ``grad_norm`` ...)
        plus optional metrics. An extra key naming an accuracy (containing
        "acc", "match" or "f1", e.g. ``valid_exact_match``) with values in
        0..1 is drawn in the right panel instead of the gradient norm.
    batch_losses : sequence of float, optional
        The training loss of every batch (``Trainer.batch_losses``), drawn
        as a thin line against fractional epochs; with few epochs this
        shows the learning curve that per-epoch points cannot.
    path : str or os.PathLike, optional
    title : str, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    plt = _mpl()
    from matplotlib.ticker import MaxNLocator

    path = _check_path(path)
    rows = _record_dicts(records)
    extra = sorted({k for r in rows for k in r if k not in _HISTORY_KEYS})
    accuracy = [k for k in extra if any(w in k.lower() for w in _ACCURACY_WORDS)
                and all(0 <= v <= 1 for v in _series(rows, k)[1])]
    if not accuracy and any(r.get("grad_norm") is None for r in rows):
        raise ValueError("records need 'grad_norm' on every epoch (or an accuracy key such "
                         "as 'valid_exact_match')")
    marker = "o" if len(rows) <= 30 else None

    fig, (ax_loss, ax_right) = plt.subplots(1, 2, figsize=(10, 4), layout="constrained")
    if batch_losses is not None and len(batch_losses):
        losses = np.asarray(batch_losses, dtype=np.float64)
        per_epoch = len(losses) / len(rows)
        # batch k (0-based) ends at epoch (k + 1) / batches per epoch
        ax_loss.plot((np.arange(len(losses)) + 1) / per_epoch, losses, lw=0.8, alpha=0.6,
                     color="tab:blue", label="train (each batch)")
        if losses.min() > 0 and losses.max() / losses.min() > 100:
            ax_loss.set_yscale("log")  # why: the loss falls by orders of magnitude
    train_label = "train" if batch_losses is None else "train (epoch mean)"
    for key, label in (("train_loss", train_label), ("valid_loss", "valid")):
        epochs, values = _series(rows, key)
        if values:
            ax_loss.plot(epochs, values, marker=marker, label=label)
    ax_loss.set_xlabel("epoch")
    ax_loss.set_ylabel("cross-entropy per token (nats)")
    ax_loss.set_title("loss")
    ax_loss.legend()
    if accuracy:
        for key in accuracy:
            ax_right.plot(*_series(rows, key), marker=marker, label=key)
        ax_right.set_ylim(0, 1.02)
        ax_right.set_ylabel("accuracy (fraction, 0–1)")
        ax_right.set_title("accuracy")
        ax_right.legend()
    else:
        epochs, norms = _series(rows, "grad_norm")
        ax_right.plot(epochs, norms, marker=marker, color="tab:green")
        # why log: norms can span orders of magnitude early in training
        if min(norms) > 0 and max(norms) / min(norms) > 30:
            ax_right.set_yscale("log")
        ax_right.set_ylabel("global gradient L2 norm (before clipping)")
        ax_right.set_title("gradient norm")
    for ax in (ax_loss, ax_right):
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
    if len(rows) == 1:  # one point: centre it instead of zooming into fractions of an epoch
        ax_right.set_xlim(rows[0]["epoch"] - 1, rows[0]["epoch"] + 1)
    if title is not None:
        fig.suptitle(title)
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
    path = _check_path(path)
    hypotheses, tgt_lists = list(hypotheses), list(tgt_tokens_per_hyp)
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
    setup_fonts(warn=_is_cjk("".join(src + [t for tgt in tgts for t in tgt])))

    n = len(maps)
    ncols = min(n, 3)
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
