"""Sequence cross-entropy that counts only real (unpadded) target tokens."""

from __future__ import annotations

import numpy as np

from tinyattn._validate import check_ids


def sequence_cross_entropy(logits, targets, mask):
    """Mean cross-entropy over the real tokens of a padded batch.

    Parameters
    ----------
    logits : ndarray of shape (B, T, V)
    targets : int ndarray of shape (B, T)
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
    if not isinstance(logits, np.ndarray) or logits.ndim != 3:
        raise ValueError(
            f"logits must be an ndarray of shape (B, T, V), got "
            f"{getattr(logits, 'shape', type(logits).__name__)}"
        )
    B, T, V = logits.shape
    mask = np.asarray(mask)
    if mask.shape != (B, T) or mask.dtype != bool:
        raise ValueError(
            f"mask must be a bool array of shape ({B}, {T}), got "
            f"{mask.dtype.name} {mask.shape}"
        )
    # pads may hold any id: only the real tokens must be in the vocabulary
    targets = check_ids(targets, "targets", V, shape=(B, T), where=mask)
    real = targets[mask]
    if real.size == 0:
        raise ValueError("mask has no True entry: no real target token to score")
    n_real = real.size
    # One exp for both the loss and its gradient: log p = z − log Σ e^z and
    # p = e^z / Σ e^z share e^z (z = logits minus the row maximum, for stability).
    z = logits - logits.max(axis=-1, keepdims=True)  # (B, T, V)
    probs = np.exp(z)
    total = probs.sum(axis=-1, keepdims=True)  # (B, T, 1)
    logp = z - np.log(total)
    probs /= total
    safe_targets = np.where(mask, targets, 0)  # pads may hold any id
    picked = np.take_along_axis(logp, safe_targets[..., None], axis=-1)[..., 0]
    loss = -float(picked[mask].sum()) / n_real
    # d(-log p_y)/dlogits = softmax − onehot(y); masked rows get 0.
    dlogits = probs
    np.put_along_axis(
        dlogits, safe_targets[..., None],
        np.take_along_axis(dlogits, safe_targets[..., None], axis=-1) - 1.0, axis=-1,
    )
    dlogits *= (mask / n_real)[..., None].astype(logits.dtype)
    return loss, dlogits
