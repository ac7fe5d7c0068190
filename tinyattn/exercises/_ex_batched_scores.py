"""Lesson 12's exercise: the backward of the batched dot-product scores.

``scores[b, t, s] = queries[b, t] · keys[b, s]`` for all decoder steps at
once, ``queries @ keys.transpose(0, 2, 1)`` (Luong's general score on
projected keys, docs/equations.md §5). The learner writes its backward
with one batched product per gradient, no loop over t; graded by the
library's gradient checker on `tinyattn.attention.dot_score_forward`
(scale 1), whose backward is `tinyattn.attention.dot_score_backward`.
"""

from __future__ import annotations

from functools import partial

from tinyattn.attention import dot_score_backward, dot_score_forward
from tinyattn.exercises._diagnose import Bug
from tinyattn.exercises._registry import Exercise

_B, _T, _S, _K = 2, 3, 4, 5  # every size different: a wrong transpose fails on shapes


def _last_step_only(dscores, cache):
    """A loop over t that overwrites dkeys at every step (= where += belongs)."""
    queries, keys, _ = cache
    dqueries = dscores @ keys
    dkeys = dscores[:, -1, :, None] * queries[:, -1, None, :]  # only t = T-1 survives
    return dqueries, dkeys


def scores_backward_batched(dscores, cache):
    """Backward of ``scores = queries @ keys.transpose(0, 2, 1)``, with no loop.

    dscores (B, T, S); cache = ``(queries (B, T, K), keys (B, S, K), scale)``, scale = 1 here.
    Returns ``dqueries (B, T, K)`` and ``dkeys (B, S, K)``, one batched product each.
    """
    raise NotImplementedError  # your code here


BATCHED_SCORES = Exercise(
    "batched_scores_backward",
    "dqueries, dkeys = scores_backward_batched(dscores, cache)",
    partial(dot_score_forward, scale=1.0),
    {"queries": (_B, _T, _K), "keys": (_B, _S, _K)},
    "docs/equations.md §5: scores = queries @ keys.transpose(0, 2, 1); for Y = Q Kᵀ, "
    "dQ = dY K and dK = dYᵀ Q (per example)",
    [Bug("dkeys from the last step only (= where += belongs)",
         "every step t reads every key, so dkeys is the sum over t of every step's "
         "contribution: accumulate it in a loop, or let one product over the T axis sum it",
         _last_step_only)],
    starter=scores_backward_batched,
    solution=dot_score_backward,
)

EXERCISES = [BATCHED_SCORES]
