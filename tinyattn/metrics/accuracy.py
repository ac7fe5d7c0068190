"""Evaluation metrics: exact match, token accuracy, corpus BLEU, alignment accuracy, entropy.

Sentences are token lists (``["the", "cat"]`` or token ids), never raw
strings: tokenisation is the caller's job, so every metric here sees
exactly the tokens the model produced. `corpus_bleu` reproduces
sacrebleu's corpus BLEU (Post 2018) with ``tokenize="none"`` on the
space-joined tokens, smoothing included, without importing it.
"""

from __future__ import annotations

import numpy as np

from tinyattn._validate import as_array, as_list, as_real_array, check_span
from tinyattn.metrics.bleu import (
    SMOOTH_METHODS,
    BleuScore,
    _corpus,
    _parallel,
    _tokens,
    corpus_bleu,
)

__all__ = ["exact_match", "token_accuracy", "corpus_bleu", "BleuScore", "SMOOTH_METHODS",
           "alignment_accuracy", "attention_entropy"]

_ROW_SUM_TOL = 1e-6
def exact_match(hyps, refs) -> float:
    """Share of hypotheses equal to their reference, token for token.

    Parameters
    ----------
    hyps : list of N token lists
    refs : list of N token lists
        One reference per hypothesis.

    Returns
    -------
    float
        ``(1/N) Σ_i [hyps[i] == refs[i]]``, in [0, 1].
    """
    hyps, refs = _corpus(hyps, refs)
    hits = sum(
        _tokens(h, f"hyps[{i}]") == _tokens(r, f"refs[{i}]")
        for i, (h, r) in enumerate(zip(hyps, refs))
    )
    return hits / len(hyps)


def token_accuracy(hyps, refs) -> float:
    """Position-wise accuracy over all reference tokens of a corpus.

    Parameters
    ----------
    hyps : list of N token lists
    refs : list of N token lists
        One reference per hypothesis; together they must hold at least one token.

    Returns
    -------
    float
        ``Σ_i Σ_{t < len(refs[i])} [hyps[i][t] == refs[i][t]] / Σ_i len(refs[i])``.

    Notes
    -----
    Positions are compared as they stand, without alignment: a hypothesis
    shorter than its reference scores the missing positions as wrong, and
    tokens a hypothesis has past the end of its reference are ignored (so
    over-long output is not penalised here; `exact_match` and BLEU's
    precisions do penalise it).
    """
    hyps, refs = _corpus(hyps, refs)
    correct = total = 0
    for i, (h, r) in enumerate(zip(hyps, refs)):
        h, r = _tokens(h, f"hyps[{i}]"), _tokens(r, f"refs[{i}]")
        correct += sum(a == b for a, b in zip(h, r))  # zip stops at the shorter one
        total += len(r)
    if total == 0:
        raise ValueError("refs contain no tokens; token accuracy is undefined")
    return correct / total



def alignment_accuracy(alphas, golds) -> float:
    """Share of gold-aligned target tokens whose attention peak lies in the gold span.

    Parameters
    ----------
    alphas : list of B ndarrays, each of shape (T_b, S_b)
        Attention weights of one example, one row per target token.
    golds : list of B lists
        ``golds[b][t]`` is the half-open source span ``(start, end)`` that
        target token t aligns to, or None for a token without gold alignment.

    Returns
    -------
    float
        ``hits / counted``: counted = target tokens with a gold span; hit =
        ``start <= argmax_s alpha[t, s] < end``.

    Notes
    -----
    Tokens with gold None are skipped. A gold token past the last row of its
    alpha (the model stopped early) counts as wrong; rows past the end of
    the gold list are ignored. Ties go to the first maximum (``np.argmax``).
    """
    alphas, golds = _parallel(alphas, golds, ("alphas", "golds"), "list")
    hits = counted = 0
    for b, (alpha, gold) in enumerate(zip(alphas, golds)):
        alpha = as_real_array(alpha, f"alphas[{b}]")  # real numbers, no NaN or inf
        if alpha.ndim != 2:
            raise ValueError(f"alphas[{b}] must have shape (T, S), got {alpha.shape}")
        gold = as_list(gold, f"golds[{b}]", "a list of spans")
        T_b, S_b = alpha.shape
        peak = alpha.argmax(axis=1) if alpha.size else None  # (T_b,)
        for t, span in enumerate(gold):
            if span is None:
                continue
            start, end = check_span(span, f"golds[{b}][{t}]", S_b)
            counted += 1
            hits += bool(t < T_b and start <= peak[t] < end)
    if counted == 0:
        raise ValueError("golds holds no gold span (all None); alignment accuracy is undefined")
    return hits / counted


def attention_entropy(alpha, *, mask=None) -> np.ndarray:
    """Entropy in nats of each attention distribution (the last axis).

    Parameters
    ----------
    alpha : ndarray of shape (..., S)
        Non-negative weights; each row sums to 1 over its real positions.
    mask : bool ndarray of shape (..., S), optional
        True for real positions. Masked entries are not read at all.

    Returns
    -------
    ndarray of shape alpha.shape[:-1]
        ``H = -Σ_s alpha[..., s] log alpha[..., s]`` over real positions, with
        ``0 · log 0 = 0``: 0 for a one-hot row, ``log n`` for a uniform row
        over n positions. A fully masked row (e.g. a padded target step) gets
        0. Float dtypes are kept; integer input gives float64.

    Raises
    ------
    ValueError
        If a real entry is negative or not finite, or a row with a real
        position does not sum to 1 within 1e-6 over its real positions.
    """
    a = as_real_array(alpha, "alpha", finite=False)  # NaN at a masked position is allowed
    if a.ndim < 1:
        raise ValueError(f"alpha must have shape (..., S) with at least one axis, got {a.shape}")
    out_dtype = a.dtype if a.dtype.kind == "f" else np.dtype(np.float64)
    a = a.astype(np.float64)  # why: the 1e-6 row-sum check must not see float32 summation noise
    real_rows = np.ones(a.shape[:-1], dtype=bool)
    if mask is not None:
        m = as_array(mask, "mask")
        if m.dtype != bool:
            raise TypeError(f"mask must be a bool array (True = real), got dtype {m.dtype.name}")
        if m.shape != a.shape:
            raise ValueError(f"mask must have alpha's shape {a.shape}, got {m.shape}")
        a = np.where(m, a, 0.0)  # masked entries drop out of the sum and the checks
        real_rows = m.any(axis=-1)
    if not np.isfinite(a).all():
        raise ValueError("alpha contains NaN or inf at a real position")
    if (a < 0).any():
        idx = tuple(int(i) for i in np.argwhere(a < 0)[0])
        raise ValueError(f"alpha must be non-negative, got alpha{list(idx)} = {a[idx]:.6g}")
    sums = a.sum(axis=-1)  # (...,)
    bad = real_rows & (np.abs(sums - 1.0) > _ROW_SUM_TOL)
    if bad.any():
        idx = tuple(int(i) for i in np.argwhere(bad)[0])
        where = f"row {idx}" if idx else "the row"
        raise ValueError(
            f"each row of alpha must sum to 1 (within {_ROW_SUM_TOL:g}) over its real "
            f"positions, got {where} summing to {sums[idx]:.9g}"
        )
    # 0 · log 0 = 0: take the log only where alpha > 0, leave 0 elsewhere
    log_a = np.log(a, out=np.zeros_like(a), where=a > 0)
    entropy = -(a * log_a).sum(axis=-1) + 0.0  # + 0.0 turns -0.0 into 0.0
    return entropy.astype(out_dtype)
