"""Name the likely mistake behind a failed gradient check, from the numbers.

A learner's backward is never read, only run. When its gradients disagree
with the numerical ones, two kinds of evidence are compared with them:

- **candidate bugs** of the exercise (`Bug`): what the gradients *would*
  be under a classic mistake, predicted from the forward's cache and the
  upstream gradients (e.g. σ' applied to an already-activated value), or a
  direct test on the learner's numbers (e.g. nonzero gradient at pads);
- **generic signatures**, from the true (numerical) gradient alone: the
  learner's array is 0, or −1, a constant times, the transpose of, or a
  gate-block permutation of the true one. (The registered gate-order bugs
  permute the pre-activation gradient everywhere; this signature also
  catches one array stacked in the wrong order, e.g. the Cho GRU's dW_h,
  whose n block is (r ⊙ h_prev)ᵀ da_n and so no permutation of a Bug's.)

A candidate *explains* an array when its prediction differs from the true
gradient and the learner's gradient matches the prediction.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from itertools import permutations

import numpy as np

CLOSE = 1e-5  # relative agreement that counts as "the same array"


@dataclass
class Bug:
    """One classic mistake of an exercise.

    Parameters
    ----------
    label : str
        Short name, printed first (tests match on it).
    hint : str
        What the learner should change.
    predict : callable ``(douts, cache) -> tuple``, optional
        The gradients a backward with this mistake returns, in order.
    test : callable ``(learner, numerical, ctx) -> list of str``, optional
        Names of the gradients whose numbers show this mistake directly.
    """

    label: str
    hint: str
    predict: Callable | None = None
    test: Callable | None = None

    def message(self, names) -> str:
        return f"{self.label} (seen in {', '.join(names)}): {self.hint}"


def close(a, b, rel: float = CLOSE) -> bool:
    """Whether ``a`` and ``b`` have one shape and agree to ``rel`` of their scale."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape:
        return False
    scale = max(float(np.abs(a).max(initial=0.0)), float(np.abs(b).max(initial=0.0)))
    return float(np.abs(a - b).max(initial=0.0)) <= rel * scale + 1e-10


def _generic(name: str, mine, true, gates) -> str | None:
    """A signature of ``mine`` against the true gradient ``true``, or None."""
    if not np.abs(mine).max(initial=0.0) > 0 and np.abs(true).max(initial=0.0) > 1e-8:
        return (f"{name} is all zeros: it is not computed, or every path into it "
                "is missing")
    if close(mine, -true):
        return f"{name} has the wrong sign: a minus sign too many (or too few)"
    if true.ndim == 2 and true.shape[0] == true.shape[1] and close(mine, true.T):
        return (f"{name} is the transpose of the true gradient: for y = a @ W the weight "
                "gradient is a.T @ dy (not dy.T @ a), and da = dy @ W.T")
    if gates:
        k = len(gates)
        blocks = np.split(true, k, axis=-1)
        for order in permutations(range(k)):
            if order != tuple(range(k)) and close(mine, np.concatenate(
                    [blocks[j] for j in order], axis=-1)):
                yours = ", ".join(gates[j] for j in order)
                return (f"{name}: gate blocks in the wrong order: yours hold gates "
                        f"({yours}) where ({', '.join(gates)}) belong (stack them in "
                        "that order)")
    denom = float(np.sum(true * true))
    if denom > 0:
        factor = float(np.sum(mine * true)) / denom
        if abs(factor - 1.0) > 1e-3 and abs(factor) > 1e-3 and close(mine, factor * true):
            return (f"{name} is {factor:.3g} × the true gradient: a constant factor is off "
                    "(a mean instead of a sum, or a factor 2 or ½ too many)")
    return None


def diagnose(bugs, names, learner: dict, numerical: dict, failed, douts, cache,
             ctx=None, gates=None) -> list[str]:
    """Likely mistakes behind the failed gradients, most complete first.

    Parameters
    ----------
    bugs : list of Bug
    names : list of str
        The gradient names, in the order the backward returns them.
    learner, numerical : dict of name -> ndarray
        The learner's gradients and the numerical ones.
    failed : list of str
        Names whose check failed.
    douts : tuple of ndarray
        The upstream gradients the learner's backward received.
    cache : object
        The library forward's cache for this check.
    ctx : dict, optional
        Exercise details a `Bug.test` may need (a mask, sizes).
    gates : dict of name -> tuple of str, optional
        Gate labels of the fused arrays.

    Returns
    -------
    list of str
        One sentence per recognised mistake; empty if none matches.
    """
    explained: list[tuple[Bug, list[str]]] = []
    for bug in bugs:
        hit: list[str] = []
        if bug.predict is not None:
            pred = dict(zip(names, bug.predict(*douts, cache)))
            hit = [n for n in failed if n in pred and not close(pred[n], numerical[n])
                   and close(learner[n], pred[n])]
        if bug.test is not None:
            hit += [n for n in bug.test(learner, numerical, ctx or {}) if n not in hit]
        if hit:
            explained.append((bug, hit))
    full = [(b, h) for b, h in explained if set(h) >= set(failed)]
    chosen = full or sorted(explained, key=lambda bh: -len(bh[1]))
    msgs = [b.message(h) for b, h in chosen]
    covered = {n for _, h in chosen for n in h}
    for n in failed:
        if n not in covered:
            sig = _generic(n, learner[n], numerical[n], (gates or {}).get(n))
            if sig:
                msgs.append(sig)
    return msgs


def shape_message(name: str, arg: str, expected: tuple, got: tuple, batch: int) -> str:
    """A clear message for a gradient of the wrong shape, with a guess why."""
    msg = (f"{name} has the wrong shape: expected {expected} (the shape of {arg}), "
           f"got {got}")
    if len(got) == len(expected) > 1 and got == expected[::-1]:
        msg += "; that is the transposed shape: a transposed weight or product"
    elif got == (batch,) + tuple(expected):
        msg += "; it still has the batch axis: sum over axis 0 (every example adds to it)"
    elif len(got) > len(expected):
        msg += "; an axis that was broadcast in the forward must be summed over here"
    elif len(got) == len(expected):
        msg += ("; summed over the wrong axis, or the product of the wrong arrays "
                "(write each array's shape next to the line)")
    return msg
