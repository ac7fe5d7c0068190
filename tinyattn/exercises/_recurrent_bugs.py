"""Classic mistakes in recurrent step backwards, as predictions.

Each ``*_variant`` function computes what a step backward returns when it
makes a named mistake (or none), from the library forward's cache and the
upstream gradients. The checker never grades with these: a learner passes
or fails on the numerical gradient alone. When a check fails, the
diagnosis compares the learner's gradients with these predictions to name
the mistake (`tinyattn.exercises._diagnose`).

A variant is the library's own backward with one term patched, never a
second copy of the maths: the cell's ``*_gates_backward`` runs with its
activation derivatives (``sigmoid_backward``, ``tanh_backward``, looked up
in the cell's module) replaced, or its outputs are recombined by the cell's
own ``*_weight_grads`` after one term is changed.

Activation-derivative modes ``act``:

- ``"out"``   right: σ' = s(1 − s), tanh' = 1 − y² from the stored output y;
- ``"twice"`` the activation applied again to the stored output before
  taking its derivative, e.g. ``σ(i)(1 − σ(i))`` or ``1 − tanh(g)²``;
- ``"none"``  the activation's derivative left out (factor 1);
- ``"pre"``   (RNN) ``1 − a²`` with ``a`` the pre-activation, recomputed.
"""

from __future__ import annotations

from unittest import mock

import numpy as np

from tinyattn import gru, lstm, rnn
from tinyattn.functional import sigmoid, sigmoid_backward, tanh_backward

# The derivative each act mode uses, given the upstream dy and the stored output y.
_SIGMOID = {"out": sigmoid_backward,
            "twice": lambda dy, y: sigmoid_backward(dy, sigmoid(y)),
            "none": lambda dy, y: dy}
_TANH = {"out": tanh_backward,
         "twice": lambda dy, y: tanh_backward(dy, np.tanh(y)),
         "none": lambda dy, y: dy}


def _activations(module, act, *, tanh=None):
    """Patch the activation derivatives the cell module uses for one ``act``
    mode (``tanh``, if given, replaces the tanh one)."""
    patches = {"tanh_backward": tanh or _TANH[act]}
    if hasattr(module, "sigmoid_backward"):  # the RNN has no sigmoid
        patches["sigmoid_backward"] = _SIGMOID[act]
    return mock.patch.multiple(module, **patches)


def _permute(blocks_of, order):
    """The (B, G·H) array with its G gate blocks in ``order``."""
    blocks = np.split(blocks_of, len(order), axis=1)
    return np.concatenate([blocks[k] for k in order], axis=1)


def rnn_variant(dh, cache, *, act="out", dh_prev_untransposed=False,
                dW_hh_transposed=False):
    """``rnn_step_backward`` with an optional mistake."""
    x_t, h_prev, W_xh, W_hh, h = cache
    tanh = None
    if act == "pre":  # 1 − a², a rebuilt from the cache (no bias there)
        a = x_t @ W_xh + h_prev @ W_hh
        tanh = lambda dy, y: dy * (1.0 - a * a)  # noqa: E731
    with _activations(rnn, act, tanh=tanh):
        dh_prev, da = rnn.rnn_gates_backward(dh, (h_prev, W_hh, h))
    if dh_prev_untransposed:
        dh_prev = da @ W_hh  # instead of da @ W_hh.T
    dW_xh, dW_hh, db_h = rnn.rnn_weight_grads(x_t, da, h_prev)
    return da @ W_xh.T, dh_prev, dW_xh, dW_hh.T if dW_hh_transposed else dW_hh, db_h


def gru_variant(dh, cache, *, act="out", direct=True, order=(0, 1, 2)):
    """``gru_step_backward`` (both forms) with an optional mistake.

    ``direct=False`` drops the direct path ``z ⊙ dh`` into ``dh_prev``;
    ``order`` permutes the gate blocks (r, z, n) of the pre-activation
    gradients, as a learner who concatenates them in the wrong order does.
    """
    x_t, h_prev, W_x, W_h, r, z, n, hn_or_rh, reset_after = cache
    H = h_prev.shape[1]
    with _activations(gru, act):
        dh_prev, dax, dah = gru.gru_gates_backward(
            dh, (h_prev, W_h, r, z, n, hn_or_rh, reset_after))
    if not direct:
        dh_prev = dh_prev - dh * z
    dax_p, dah_p = _permute(dax, order), _permute(dah, order)
    # the recurrent product reads the permuted blocks: all three gates, or r and z (Cho)
    k = 3 * H if reset_after else 2 * H
    dh_prev = dh_prev + (dah_p - dah)[:, :k] @ W_h[:, :k].T
    dW_x, dW_h, db_x, db_h = gru.gru_weight_grads(x_t, dax_p, h_prev, hn_or_rh, dah_p,
                                                  reset_after)
    return dax_p @ W_x.T, dh_prev, dW_x, dW_h, db_x, db_h


def lstm_variant(dh, dc, cache, *, act="out", use_dc=True, forget="f", tanh_c="ok",
                 order=(0, 1, 2, 3)):
    """``lstm_step_backward`` with an optional mistake.

    ``use_dc=False`` ignores the upstream cell gradient (dropped dc_next);
    ``forget`` is how ``dc_prev`` is formed: ``"f"`` right (``dc ⊙ f``),
    ``"zero"`` left at 0, ``"nof"`` without the ``⊙ f``; ``tanh_c`` is the
    path of ``dh`` into ``dc``: ``"ok"``, ``"nod"`` (``dh ⊙ o`` without
    tanh'(c)), ``"missing"`` (not added); ``order`` permutes gate blocks.
    ``act`` applies to the gates i, f, g, o only, not to tanh(c).
    """
    x_t, h_prev, c_prev, W_x, W_h, i, f, g, o, tc = cache
    path = {"ok": tanh_backward, "nod": lambda dy, y: dy,
            "missing": lambda dy, y: np.zeros_like(dy)}[tanh_c]

    def tanh(dy, y):  # tanh(c)'s derivative follows tanh_c, the gate g's follows act
        return path(dy, y) if y is tc else _TANH[act](dy, y)

    with _activations(lstm, act, tanh=tanh):
        dh_prev, dc_prev, da = lstm.lstm_gates_backward(
            dh, dc if use_dc else np.zeros_like(dc), (h_prev, c_prev, W_h, i, f, g, o, tc))
    if forget == "zero":
        dc_prev = np.zeros_like(dc_prev)
    elif forget == "nof":
        dc_prev = dc_prev / f  # the cell gradient passed on without the ⊙ f
    da = _permute(da, order)
    return (da @ W_x.T, da @ W_h.T, dc_prev, *lstm.lstm_weight_grads(x_t, da, h_prev))
