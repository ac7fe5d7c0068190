"""Classic mistakes in recurrent step backwards, as predictions.

Each ``*_variant`` function computes what a step backward returns when it
makes a named mistake (or none), from the library forward's cache and the
upstream gradients. The checker never grades with these: a learner passes
or fails on the numerical gradient alone. When a check fails, the
diagnosis compares the learner's gradients with these predictions to name
the mistake (`tinyattn.exercises._diagnose`).

Activation-derivative modes ``act``:

- ``"out"``   right: σ' = s(1 − s), tanh' = 1 − y² from the stored output y;
- ``"twice"`` the activation applied again to the stored output before
  taking its derivative, e.g. ``σ(i)(1 − σ(i))`` or ``1 − tanh(g)²``;
- ``"none"``  the activation's derivative left out (factor 1);
- ``"pre"``   (RNN) ``1 − a²`` with ``a`` the pre-activation, recomputed.
"""

from __future__ import annotations

import numpy as np

from tinyattn.functional import sigmoid


def _dsig(s, act):
    """Factor multiplying the gradient of a sigmoid output ``s``."""
    if act == "twice":
        t = sigmoid(s)
        return t * (1.0 - t)
    if act == "none":
        return np.ones_like(s)
    return s * (1.0 - s)


def _dtanh(y, act):
    """Factor multiplying the gradient of a tanh output ``y``."""
    if act == "twice":
        return 1.0 - np.tanh(y) ** 2
    if act == "none":
        return np.ones_like(y)
    return 1.0 - y * y


def rnn_variant(dh, cache, *, act="out", dh_prev_untransposed=False,
                dW_hh_transposed=False):
    """``rnn_step_backward`` with an optional mistake."""
    x_t, h_prev, W_xh, W_hh, h = cache
    if act == "pre":
        a = x_t @ W_xh + h_prev @ W_hh  # what a learner can rebuild from the cache
        da = dh * (1.0 - a * a)
    else:
        da = dh * _dtanh(h, act)
    dh_prev = da @ (W_hh if dh_prev_untransposed else W_hh.T)
    dW_hh = h_prev.T @ da
    return da @ W_xh.T, dh_prev, x_t.T @ da, dW_hh.T if dW_hh_transposed else dW_hh, da.sum(0)


def gru_variant(dh, cache, *, act="out", direct=True, order=(0, 1, 2)):
    """``gru_step_backward`` (both forms) with an optional mistake.

    ``direct=False`` drops the direct path ``z ⊙ dh`` into ``dh_prev``;
    ``order`` permutes the gate blocks (r, z, n) of the pre-activation
    gradients, as a learner who concatenates them in the wrong order does.
    """
    x_t, h_prev, W_x, W_h, r, z, n, hn_or_rh, reset_after = cache
    H = h_prev.shape[1]
    dn = dh * (1.0 - z)  # h = (1 − z) n + z h_prev
    dz = dh * (h_prev - n)
    dh_prev = dh * z if direct else np.zeros_like(dh)
    da_n = dn * _dtanh(n, act)
    da_z = dz * _dsig(z, act)

    def perm(blocks):
        return np.concatenate([blocks[k] for k in order], axis=1)

    if reset_after:
        da_r = da_n * hn_or_rh * _dsig(r, act)  # a_n = ... + r ⊙ (h W_hn + b_hn)
        dax = perm([da_r, da_z, da_n])
        dah = perm([da_r, da_z, da_n * r])
        dh_prev = dh_prev + dah @ W_h.T
        return (dax @ W_x.T, dh_prev, x_t.T @ dax, h_prev.T @ dah, dax.sum(0), dah.sum(0))
    drh = da_n @ W_h[:, 2 * H:].T  # a_n = ... + (r ⊙ h_prev) W_hn
    da_r = drh * h_prev * _dsig(r, act)
    dax = perm([da_r, da_z, da_n])
    dh_prev = dh_prev + drh * r + dax[:, :2 * H] @ W_h[:, :2 * H].T
    dW_h = np.concatenate([h_prev.T @ dax[:, :2 * H], hn_or_rh.T @ dax[:, 2 * H:]], axis=1)
    return dax @ W_x.T, dh_prev, x_t.T @ dax, dW_h, dax.sum(0), dax.sum(0)


def lstm_variant(dh, dc, cache, *, act="out", use_dc=True, forget="f", tanh_c="ok",
                 order=(0, 1, 2, 3)):
    """``lstm_step_backward`` with an optional mistake.

    ``use_dc=False`` ignores the upstream cell gradient (dropped dc_next);
    ``forget`` is how ``dc_prev`` is formed: ``"f"`` right (``dc ⊙ f``),
    ``"zero"`` left at 0, ``"nof"`` without the ``⊙ f``; ``tanh_c`` is the
    path of ``dh`` into ``dc``: ``"ok"``, ``"nod"`` (``dh ⊙ o`` without
    tanh'(c)), ``"missing"`` (not added); ``order`` permutes gate blocks.
    """
    x_t, h_prev, c_prev, W_x, W_h, i, f, g, o, tc = cache
    do = dh * tc  # h = o ⊙ tanh(c)
    dct = dc if use_dc else np.zeros_like(dc)
    if tanh_c == "ok":
        dct = dct + dh * o * (1.0 - tc * tc)
    elif tanh_c == "nod":
        dct = dct + dh * o
    di, dg, df = dct * g, dct * i, dct * c_prev  # c = f ⊙ c_prev + i ⊙ g
    dc_prev = {"f": dct * f, "zero": np.zeros_like(dct), "nof": dct}[forget]
    blocks = [di * _dsig(i, act), df * _dsig(f, act), dg * _dtanh(g, act), do * _dsig(o, act)]
    da = np.concatenate([blocks[k] for k in order], axis=1)
    return (da @ W_x.T, da @ W_h.T, dc_prev, x_t.T @ da, h_prev.T @ da, da.sum(0))
