"""``tinyattn plot RUN --layer L --head H | --heads [--self]``: a Transformer's heads.

The plain ``tinyattn plot`` draws what decoding returns, the last decoder
layer's cross-attention averaged over its heads. These flags draw the heads
themselves, for each ``--index`` example: the example is decoded greedily
(as plain ``plot`` does), then the emitted tokens are fed back (teacher
forcing, which gives the same rows as the cached decode) and every layer's
per-head weights are read from the model.

- ``--layer L --head H``: decoder layer L's head H cross-attention, one
  heatmap (`tinyattn.plot.heatmaps.plot_alignment`, gold spans outlined when
  the output is the reference), ``<split>_<index>_layer<L>_head<H>.png``;
- ``--heads``: every decoder layer × head in one grid
  (`tinyattn.plot.heads.plot_heads`), ``<split>_<index>_heads.png``;
- ``--self`` with either: the encoder's self-attention (source × source)
  instead, ``..._self_layer<L>_head<H>.png`` or ``..._self_heads.png``.

Bad flags are refused by `head_request` with one line (a ``CLIError``)
before anything is drawn.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tinyattn.cli.evaluation import greedy_view, references_by_source, teacher_forced
from tinyattn.transformer import Transformer

_FLAGS = ("--layer", "--head", "--heads", "--self")


def add_head_arguments(parser) -> None:
    """Add ``--layer``, ``--head``, ``--heads`` and ``--self`` to the ``plot`` parser."""
    g = parser.add_argument_group("per-head attention (--arch transformer runs, greedy output)")
    g.add_argument("--layer", type=int, metavar="L",
                   help="a layer, from 0 (give --head too)")
    g.add_argument("--head", type=int, metavar="H",
                   help="draw head H (from 0) of --layer L alone, "
                   "<split>_<index>_layer<L>_head<H>.png")
    g.add_argument("--heads", action="store_true",
                   help="a grid of every layer x head, <split>_<index>_heads.png")
    g.add_argument("--self", dest="self_attention", action="store_true",
                   help="with --heads or --layer/--head: the encoder's self-attention "
                   "instead of the decoder's cross-attention (file names get _self)")


def _cli_error(message: str) -> Exception:
    # commands.py imports this module, so its CLIError is imported when needed
    from tinyattn.cli.commands import CLIError

    return CLIError(message)


@dataclass(frozen=True)
class HeadRequest:
    """What to draw: ``layer`` and ``head`` (both None for the grid of all),
    of the encoder's self-attention (``self_attention``) or the decoder's
    cross-attention."""

    layer: int | None
    head: int | None
    self_attention: bool

    def paths(self, out_dir, prefix: str, indices) -> list[Path]:
        """The PNG paths `plot` writes, one per index."""
        what = "heads" if self.layer is None else f"layer{self.layer}_head{self.head}"
        what = "self_" + what if self.self_attention else what
        return [Path(out_dir) / f"{prefix}_{i}_{what}.png" for i in indices]

    def plot(self, model, run, examples, indices, out_dir, *, prefix: str, beam: int = 1):
        """One PNG per chosen example; returns the paths written.

        Same call as `tinyattn.cli.evaluation.plot_examples`; ``beam`` must
        be 1 (`head_request` refuses more).
        """
        import matplotlib.pyplot as plt

        from tinyattn.plot.figures import save_figure
        from tinyattn.plot.heads import plot_heads
        from tinyattn.plot.heatmaps import plot_alignment

        if beam != 1:
            raise ValueError(f"beam must be 1: the heads of the greedy output are drawn, "
                             f"got {beam}")
        references = references_by_source(examples)
        stack = "encoder self-attention" if self.self_attention else "decoder cross-attention"
        paths = []
        for i, path in zip(indices, self.paths(out_dir, prefix, indices)):
            src, hyp, labels, gold, title = greedy_view(model, run, examples[i], i,
                                                        prefix=prefix, references=references)
            weights = head_weights(model, run, src, hyp.tokens[:-1],
                                   self_attention=self.self_attention)
            rows, axes = (src, ("source (key)", "source (query)")) if self.self_attention \
                else (labels, ("source", "target"))
            if self.layer is None:
                fig = plot_heads(weights, src, rows, axis_labels=axes, path=path,
                                 title=f"{title}\n{stack}, every layer and head")
            else:
                fig = plot_alignment(weights[self.layer, self.head], src, rows,
                                     gold=None if self.self_attention else gold,
                                     title=f"{title}\n{stack}: layer {self.layer}, "
                                     f"head {self.head}")
                ax = fig.axes[0]
                ax.set_xlabel(axes[0])
                ax.set_ylabel(axes[1])
                save_figure(fig, path)
            plt.close(fig)
            paths.append(path)
        return paths


def head_weights(model, run, src, tgt_ids, *, self_attention: bool = False) -> np.ndarray:
    """Every layer's per-head attention on one example, the model fed ``tgt_ids``.

    Parameters
    ----------
    model : Transformer
    run : Run
        For the source vocabulary.
    src : sequence of str
        The source tokens (S of them).
    tgt_ids : sequence of int
        The target ids fed after ``<sos>`` (the emitted ids without the last,
        so that the T = ``len(tgt_ids) + 1`` rows are those of the decode).
    self_attention : bool
        The encoder's self-attention instead of the decoder's cross-attention.

    Returns
    -------
    ndarray of shape (L, n, T, S), or (L, n, S, S) with ``self_attention``
    """
    # teacher_forced runs the model on this one example and leaves each layer's weights
    targets = [run.tgt_vocab.decode([int(t) for t in tgt_ids], strip_special=False)]
    teacher_forced(model, run, [list(src)], targets)
    if self_attention:
        weights = [layer.attn_weights[0] for layer in model.encoder]
    else:
        weights = [layer.cross_weights[0] for layer in model.decoder]
    return np.stack(weights).astype(np.float64)


def head_request(args, model) -> HeadRequest | None:
    """The per-head picture the flags ask for, or None without any of them.

    Raises a one-line ``CLIError`` for a run that is not a Transformer,
    ``--layer`` without ``--head`` (or the reverse), ``--heads`` with
    either, ``--self`` alone, ``--beam`` > 1, or a layer or head out of range.
    """
    given = [f for f, v in zip(_FLAGS, (args.layer is not None, args.head is not None,
                                        args.heads, args.self_attention)) if v]
    if not given:
        return None
    if not isinstance(model, Transformer):
        raise _cli_error(f"{given[0]}: {args.run} is an --arch rnn run, whose attention has "
                         "no heads; per-head pictures need a run trained with --arch transformer")
    if args.heads and (args.layer is not None or args.head is not None):
        raise _cli_error("--heads draws every layer and head: give either --heads or "
                         "--layer L --head H, not both")
    if (args.layer is None) != (args.head is None):
        raise _cli_error("--layer needs --head (which of its heads to draw)" if args.head is None
                         else "--head needs --layer (which layer's head to draw)")
    if args.self_attention and not args.heads and args.layer is None:
        raise _cli_error("--self needs --heads (every layer and head) or --layer L --head H")
    if args.beam > 1:
        raise _cli_error(f"{given[0]} draws the heads of the greedy output: drop --beam "
                         f"{args.beam}")
    stack = "encoder" if args.self_attention else "decoder"
    layers = model.config[f"num_{stack}_layers"]
    heads = model.config["num_heads"]
    if args.layer is not None and not 0 <= args.layer < layers:
        raise _cli_error(f"--layer {args.layer} is out of range: the {stack} has {layers} "
                         f"layers (0..{layers - 1})")
    if args.head is not None and not 0 <= args.head < heads:
        raise _cli_error(f"--head {args.head} is out of range: each layer has {heads} heads "
                         f"(0..{heads - 1})")
    return HeadRequest(args.layer, args.head, args.self_attention)
