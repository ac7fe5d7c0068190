"""Training curves from a `tinyattn.training.Trainer` history (matplotlib, imported lazily)."""

from __future__ import annotations

from dataclasses import asdict, is_dataclass

import numpy as np

from tinyattn._validate import as_list, as_real_array, is_real
from tinyattn.plot.figures import check_figure_path, check_title, save_figure
from tinyattn.plot.figures import mpl as _mpl

_HISTORY_KEYS = ("epoch", "train_loss", "valid_loss", "seconds", "grad_norm", "lr")
_ACCURACY_WORDS = ("acc", "match", "f1")


def _record_dicts(records) -> list[dict]:
    rows = []
    records = as_list(records, "records", "a list of EpochRecords or dicts (Trainer.history)")
    for k, rec in enumerate(records):
        if is_dataclass(rec) and not isinstance(rec, type):
            rec = asdict(rec)
        if not hasattr(rec, "keys"):
            raise TypeError(f"records[{k}] must be an EpochRecord or a dict, "
                            f"got {type(rec).__name__}")
        for key in ("epoch", "train_loss"):
            if rec.get(key) is None:
                raise ValueError(f"records[{k}] needs a value for {key!r}, got keys {list(rec)}")
        for key, value in rec.items():
            plotted = key in _HISTORY_KEYS or any(w in str(key).lower() for w in _ACCURACY_WORDS)
            if plotted and value is not None and not is_real(value):
                raise TypeError(f"records[{k}][{key!r}] must be a number, got {value!r:.60}")
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

    path = check_figure_path(path)
    check_title(title)
    rows = _record_dicts(records)
    if batch_losses is not None:
        batch_losses = as_real_array(batch_losses, "batch_losses", finite=False)
        if batch_losses.ndim != 1:
            raise ValueError(f"batch_losses must be a 1-D sequence of losses, got shape "
                             f"{batch_losses.shape}")
    extra = sorted({k for r in rows for k in r if k not in _HISTORY_KEYS})
    accuracy = [k for k in extra if any(w in k.lower() for w in _ACCURACY_WORDS)
                and all(0 <= v <= 1 for v in _series(rows, k)[1])]
    if not accuracy and any(r.get("grad_norm") is None for r in rows):
        raise ValueError("records need 'grad_norm' on every epoch (or an accuracy key such "
                         "as 'valid_exact_match')")
    marker = "o" if len(rows) <= 30 else None

    fig, (ax_loss, ax_right) = plt.subplots(1, 2, figsize=(10, 4), layout="constrained")
    if batch_losses is not None and len(batch_losses):
        losses = batch_losses.astype(np.float64)
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
            ax_right.plot(*_series(rows, key), marker=marker, label=key.replace("_", " "))
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
