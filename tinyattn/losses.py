"""Sequence cross-entropy that counts only real (unpadded) target tokens."""

from __future__ import annotations

import math

import numpy as np

from tinyattn._validate import (
    NonFiniteError,
    as_array,
    check_array,
    check_id,
    check_ids,
    check_real,
)


def sequence_cross_entropy(logits, targets, mask, *, label_smoothing=0.0, pad_id=None):
    """Mean cross-entropy over the real tokens of a padded batch, optionally label-smoothed.

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
    label_smoothing : float, default 0.0
        ε in [0, 1): the weight moved from the target to the uniform
        distribution ``u`` (Szegedy et al. 2016, §7). 0 is the plain
        cross-entropy, computed exactly as without this argument.
    pad_id : int or None, default None
        The padding class, which no smoothed target gives any mass to: ``u``
        is uniform over the other V − 1 classes. None spreads ε over all V
        classes (the target included), as PyTorch's
        ``torch.nn.functional.cross_entropy(..., label_smoothing=ε)`` does.
        Given, ``pad_id`` must not be the target of a real token.

    Returns
    -------
    loss : float
        ``-(1/N) Σ_{b,t: mask} Σ_v q_bt[v] · log softmax(logits[b, t])[v]``
        with N the number of real tokens and the target distribution
        ``q_bt = (1 − ε) · onehot(targets[b, t]) + ε · u`` (docs/equations.md
        §6 and §6.1). With ε = 0 this is
        ``-(1/N) Σ_{b,t: mask} log softmax(logits[b, t])[targets[b, t]]``.
    dlogits : ndarray of shape (B, T, V)
        ``(softmax(logits) − q) · mask / N``; exactly 0 at pads.

    Raises
    ------
    NonFiniteError
        When the loss exceeds the float64 range (with ε = 0, also when one
        token's ``-log p`` does, though the mean over N tokens would not).

    Notes
    -----
    With ``log p_v = z_v − log Σ_w e^{z_w}`` (z = logits minus the row's
    maximum), the smoothing term of a token is ``Σ_v u_v log p_v = mean_u(z) −
    log Σ_w e^{z_w}``. When some z overflows to −inf (logits more than the float
    range apart) while the loss itself is finite, the loss is recomputed in
    float64 as ``m + log Σ_w e^{z_w} − Σ_v q_v x_v`` (m the row maximum, x the
    logits), every term divided by 4 so that no intermediate overflows.
    """
    logits = _check_logits(logits)
    B, T, V = logits.shape
    eps = check_real(label_smoothing, "label_smoothing", "[0, 1)")
    pad_id = check_id(pad_id, "pad_id", V, none_ok=True)
    mask = as_array(mask, "mask")
    if mask.shape != (B, T) or mask.dtype != bool:
        raise ValueError(
            f"mask must be a bool array of shape ({B}, {T}), got "
            f"{mask.dtype.name} {mask.shape}"
        )
    # pads may hold any id: only the real tokens must be in the vocabulary
    targets = check_ids(targets, "targets", V, shape=(B, T), where=mask)
    on_pad = None if pad_id is None else mask & (targets == pad_id)
    if on_pad is not None and on_pad.any():
        b, t = (int(i) for i in np.argwhere(on_pad)[0])
        raise ValueError(f"targets must not be pad_id ({pad_id}) at a real token (mask True), "
                         f"got targets[{b}, {t}] = {pad_id}")
    n_real = int(mask.sum())
    if n_real == 0:
        raise ValueError("mask has no True entry: no real target token to score")
    safe_targets = np.where(mask, targets, 0)[..., None]  # (B, T, 1); pads may hold any id
    # the classes u covers: all V, or all but pad_id
    keep = True if pad_id is None else np.arange(V) != pad_id
    k = V if pad_id is None else V - 1
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
        if eps:
            # Σ_v q_v log p_v = (1 − ε) log p_y + ε Σ_v u_v log p_v, and
            # Σ_v u_v log p_v = mean_u(z) − log Σ e^z. A z of −inf makes it −inf
            # (never NaN): the loss is then infinite here and redone below.
            mean_z = z.sum(axis=-1, where=keep) / k  # (B, T)
            picked = (1.0 - eps) * picked + eps * (mean_z - log_total[..., 0])
        loss = _mean_nll(picked[mask], n_real)
        if not math.isfinite(loss) and eps:
            loss = _smoothed_loss_in_quarters(logits, m, log_total, safe_targets, mask, eps,
                                              keep, k)
        elif not math.isfinite(loss):  # a target's z overflowed: redo those few in float64
            x_t = np.take_along_axis(logits, safe_targets, axis=-1)[..., 0][mask]
            picked64 = (x_t.astype(np.float64) - m[..., 0][mask]
                        - log_total[..., 0][mask].astype(np.float64))
            loss = _mean_nll(picked64, n_real)
        dlogits = probs
        if eps:
            # d(−Σ_v q_v log p_v)/dlogits = softmax − q, q = (1 − ε) onehot(y) + ε u
            u = np.full(V, eps / k, dtype=logits.dtype)
            if pad_id is not None:
                u[pad_id] = 0.0
            dlogits -= u
            np.put_along_axis(dlogits, safe_targets, np.take_along_axis(
                dlogits, safe_targets, axis=-1) - (1.0 - eps), axis=-1)
        else:
            # d(-log p_y)/dlogits = softmax − onehot(y); masked rows get 0.
            np.put_along_axis(dlogits, safe_targets,
                              np.take_along_axis(dlogits, safe_targets, axis=-1) - 1.0,
                              axis=-1)
        dlogits *= (mask / n_real)[..., None].astype(logits.dtype)
    if not math.isfinite(loss) and eps:
        raise NonFiniteError(
            "logits give an infinite loss: the label-smoothed loss, the mean over real "
            "tokens of −Σ_v q_v log p_v, exceeds the float64 range (1.8e308)")
    if not math.isfinite(loss):
        raise NonFiniteError(
            "logits give an infinite loss: a target's logit lies more than the float64 "
            "range below its row's maximum, so its -log p exceeds 1.8e308")
    return loss + 0.0, dlogits  # + 0.0: a perfect prediction scores 0.0, not -0.0


def _smoothed_loss_in_quarters(logits, m, log_total, safe_targets, mask, eps, keep, k):
    """The label-smoothed loss in float64, without overflow (callers silence underflow).

    Per real token ``−Σ_v q_v log p_v = m + log Σ e^z − Σ_v q_v x_v`` (Σ_v q_v = 1),
    with x the logits and m their maximum. ``Σ_v q_v x_v`` is a weighted mean of
    the x, so in [−max, max]; the difference with m is in [0, 2·max] and may
    overflow where the mean over tokens would not. Every term is therefore
    divided by 4 (m/4 − Σ q x/4 ≤ max/2), the mean taken, and only the result
    multiplied back: it is inf only when the loss exceeds the float range.
    """
    n = int(mask.sum())
    x = logits[mask].astype(np.float64)  # (N, V)
    x_y = np.take_along_axis(logits, safe_targets, axis=-1)[..., 0][mask].astype(np.float64)
    mean_x4 = np.sum(x / (4.0 * k), axis=-1, where=keep)  # mean_u(x) / 4, each term small
    qx4 = (1.0 - eps) * (x_y / 4.0) + eps * mean_x4  # Σ_v q_v x_v / 4
    m4 = m[..., 0][mask].astype(np.float64) / 4.0
    lt4 = log_total[..., 0][mask].astype(np.float64) / 4.0
    loss4 = ((m4 - qx4) + lt4) / n  # each −Σ_v q_v log p_v / (4N) >= 0
    return 4.0 * float(loss4.sum())


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
