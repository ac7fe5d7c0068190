"""Lesson 03's exercise: a bidirectional encoder on a padded batch.

The learner writes the reversal (each sequence within its own length, pads
left where they are) and picks the two final states; the library's GRU
layers do the recurrences. Graded by outputs against `tinyattn.Bidirectional`
(docs/equations.md §3).
"""

from __future__ import annotations

import numpy as np

from tinyattn.bidirectional import Bidirectional
from tinyattn.exercises._diagnose import Bug
from tinyattn.exercises._outputs import OutputExercise
from tinyattn.gru import GRU

_B, _T, _D, _H = 3, 5, 4, 2


def _solution(x, lengths, fwd, bwd):
    return Bidirectional(fwd, bwd)(x, None, lengths)


def _cases(rng):
    fwd = GRU(_D, _H, rng=rng)
    bwd = GRU(_D, _H, rng=rng)
    x = rng.standard_normal((_B, _T, _D))
    padded = np.array([_T, 3, 1])
    for b, n in enumerate(padded):
        x[b, n:] = 0.0  # pads are zero vectors, as an embedding of <pad> would be
    return [("a padded batch, lengths [5, 3, 1]", (x, padded, fwd, bwd)),
            ("no padding, lengths [5, 5, 5]", (rng.standard_normal((_B, _T, _D)),
                                                np.full(_B, _T), fwd, bwd))]


def _flip(with_lengths):
    def predict(x, lengths, fwd, bwd):
        hs_f, last_f = fwd(x, None, lengths)
        hs_b, last_b = bwd(np.flip(x, axis=1).copy(), None, lengths if with_lengths else None)
        hs = np.concatenate([hs_f, np.flip(hs_b, axis=1)], axis=2)
        return hs, np.concatenate([last_f, last_b], axis=1)
    return predict


def _reverse(x, lengths):
    T = x.shape[1]
    t = np.arange(T)[None, :]
    idx = np.where(t < lengths[:, None], lengths[:, None] - 1 - t, t)
    return np.take_along_axis(x, idx[:, :, None], axis=1)


def _final_at_last_row(which):
    def predict(x, lengths, fwd, bwd):
        hs_f, last_f = fwd(x, None, lengths)
        hs_b_rev, last_b = bwd(_reverse(x, lengths), None, lengths)
        hs_b = _reverse(hs_b_rev, lengths)
        if which == "backward":
            last_b = hs_b[:, -1]
        else:
            last_f = hs_f[:, -1]
        return np.concatenate([hs_f, hs_b], axis=2), np.concatenate([last_f, last_b], axis=1)
    return predict


def _outputs_not_put_back(x, lengths, fwd, bwd):
    hs_f, last_f = fwd(x, None, lengths)
    hs_b_rev, last_b = bwd(_reverse(x, lengths), None, lengths)
    return np.concatenate([hs_f, hs_b_rev], axis=2), np.concatenate([last_f, last_b], axis=1)


def bidirectional_encode(x, lengths, fwd, bwd):
    """A bidirectional encoder from two GRU layers, on a padded batch.

    x (B, T, D), pads past ``lengths[b]``; ``fwd(x, None, lengths)`` returns
    ``(hs (B, T, H), h_last (B, H))`` and so does ``bwd``.
    Returns ``hs (B, T, 2H) = [→h_j ; ←h_j]`` and ``h_last (B, 2H) = [→h_L ; ←h_1]``.
    """
    raise NotImplementedError  # your code here


BIDIRECTIONAL = OutputExercise(
    "bidirectional_encode",
    "hs, h_last = bidirectional_encode(x, lengths, fwd, bwd)",
    _solution,
    _cases,
    ("hs", "h_last"),
    "docs/equations.md §3: →h_j = f(x_j, →h_{j-1}), ←h_j = f(x_j, ←h_{j+1}), "
    "h_j = [→h_j ; ←h_j]; each sequence reversed within its own length",
    [
        Bug("np.flip over the padded time axis (with lengths)",
            "np.flip(x, axis=1) puts each short sequence's pads first; told to stop after "
            "L_b steps, the backward layer reads those pads and never reaches the real "
            "first tokens. Reverse positions 0..L_b−1 of each row and leave the pads",
            _flip(True)),
        Bug("reversal that moves the pads to the front",
            "np.flip(x, axis=1) without lengths: the backward layer starts by reading pads, "
            "so every backward state of a short sequence has seen zeros first. Reverse "
            "within each length, so the backward direction starts at the last real token",
            _flip(False)),
        Bug("the backward outputs left in reading order",
            "the backward layer's output p is ←h at position L_b − 1 − p: reverse its "
            "outputs back (with the same per-sequence index) before joining them to the "
            "forward ones, so that position j holds [→h_j ; ←h_j]",
            _outputs_not_put_back),
        Bug("the backward direction's final state taken at T−1",
            "after reversing its outputs back, the backward direction ends at each "
            "sequence's *first* position: ←h_1 = hs_b[:, 0], the layer's final state "
            "(not hs_b[:, -1], which it computed first)",
            _final_at_last_row("backward")),
        Bug("the forward direction's final state taken at T−1",
            "a padded sequence ends at position L_b − 1, not T − 1: use the final state "
            "the layer returns for each length",
            _final_at_last_row("forward")),
    ],
    starter=bidirectional_encode,
)

EXERCISES = [BIDIRECTIONAL]
