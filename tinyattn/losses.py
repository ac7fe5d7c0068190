"""Sequence cross-entropy that counts only real (unpadded) target tokens."""

from __future__ import annotations

import math

import numpy as np

from tinyattn._validate import NonFiniteError, as_array, check_array, check_ids


def sequence_cross_entropy(logits, targets, mask):
    """Mean cross-entropy over the real tokens of a padded batch.

    Parameters
    ----------
    logits : ndarray of shape (B, T, V)
        float32 or float64, finite (NaN or inf raise `tinyattn.NonFiniteError`).
        Any finite values work, ±``np.finfo(dtype).max`` included: the loss is
        computed without overflow whenever it is itself a finite float.
    targets : int ndarray of shape (B, T)
        Ids in ``0..V-1`` at real tokens; pads may hold any int.
    mask : bool ndarray of shape (B, T)
        True for real target tokens; pads add nothing to the loss.

    Returns
    -------
    loss : float
        ``-(1/N) Σ_{b,t: mask} log softmax(logits[b, t])[targets[b, t]]``
        with N the number of real tokens (docs/equations.md §6).
    dlogits : ndarray of shape (B, T, V)
        ``(softmax(logits) − onehot(targets)) · mask / N``; exactly 0 at pads.
    """
    logits = _check_logits(logits)
    B, T, V = logits.shape
    mask = as_array(mask, "mask")
    if mask.shape != (B, T) or mask.dtype != bool:
        raise ValueError(
            f"mask must be a bool array of shape ({B}, {T}), got "
            f"{mask.dtype.name} {mask.shape}"
        )
    # pads may hold any id: only the real tokens must be in the vocabulary
    targets = check_ids(targets, "targets", V, shape=(B, T), where=mask)
    n_real = int(mask.sum())
    if n_real == 0:
        raise ValueError("mask has no True entry: no real target token to score")
    safe_targets = np.where(mask, targets, 0)[..., None]  # (B, T, 1); pads may hold any id
    # Underflow to 0 is the right answer for a tiny e^z; overflow can happen only in
    # z below (max − x beyond the float range): z = −inf there, and e^z = 0 is exact.
    with np.errstate(over="ignore", under="ignore"):
        # One exp for both the loss and its gradient: log p = z − log Σ e^z and
        # p = e^z / Σ e^z share e^z (z = logits minus the row maximum, for stability).
        m = logits.max(axis=-1, keepdims=True)  # (B, T, 1)
        z = logits - m  # (B, T, V)
        probs = np.exp(z)
        total = probs.sum(axis=-1, keepdims=True)  # (B, T, 1), >= 1: the maximum gives e^0
        log_total = np.log(total)
        probs /= total
        picked = (np.take_along_axis(z, safe_targets, axis=-1) - log_total)[..., 0]  # (B, T)
        loss = _mean_nll(picked[mask], n_real)
        if not math.isfinite(loss):  # a target's z overflowed: redo those few in float64
            x_t = np.take_along_axis(logits, safe_targets, axis=-1)[..., 0][mask]
            picked64 = (x_t.astype(np.float64) - m[..., 0][mask]
                        - log_total[..., 0][mask].astype(np.float64))
            loss = _mean_nll(picked64, n_real)
        # d(-log p_y)/dlogits = softmax − onehot(y); masked rows get 0.
        dlogits = probs
        np.put_along_axis(dlogits, safe_targets,
                          np.take_along_axis(dlogits, safe_targets, axis=-1) - 1.0, axis=-1)
        dlogits *= (mask / n_real)[..., None].astype(logits.dtype)
    if not math.isfinite(loss):
        raise NonFiniteError(
            "logits give an infinite loss: a target's logit lies more than the float64 "
            "range below its row's maximum, so its -log p exceeds 1.8e308")
    return loss + 0.0, dlogits  # + 0.0: a perfect prediction scores 0.0, not -0.0


def _check_logits(logits) -> np.ndarray:
    """(B, T, V) float32 or float64 logits, finite, with V >= 1."""
    if not isinstance(logits, np.ndarray):
        raise TypeError(f"logits must be a numpy ndarray of shape (B, T, V), "
                        f"got {type(logits).__name__}")
    if logits.dtype not in (np.float32, np.float64):
        raise TypeError(f"logits must have dtype float32 or float64, got {logits.dtype.name}")
    check_array(logits, "logits", (None, None, None), logits.dtype)
    if logits.shape[2] == 0:
        raise ValueError(f"logits must have at least one class (V >= 1), got shape "
                         f"{logits.shape}")
    return logits


def _mean_nll(picked: np.ndarray, n: int) -> float:
    """``-Σ picked / n`` as a float; inf when that overflows (callers silence warnings)."""
    loss = -float(picked.sum()) / n
    if math.isinf(loss) and np.isfinite(picked).all():
        # the sum overflowed, not the terms: divide first (each |term| / n <= max / n)
        loss = -float((picked.astype(np.float64) / n).sum())
    return loss
