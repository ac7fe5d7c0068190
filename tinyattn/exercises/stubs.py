"""The learner's starting points, one per exercise, all in this one file.

Each stub has the library's signature and unpacks the cache the library
forward builds; the body is yours. `tinyattn.exercises.stub(name)` prints
one; `tinyattn.exercises.check(name, fn)` grades your version.
"""

from __future__ import annotations

import numpy as np  # noqa: F401  (your code will need it)


def rnn_step_backward(dh, cache):
    """Backward of ``h = tanh(x_t @ W_xh + h_prev @ W_hh + b_h)``.

    Returns ``dx_t (B, D), dh_prev (B, H), dW_xh (D, H), dW_hh (H, H), db_h (H,)``.
    """
    x_t, h_prev, W_xh, W_hh, h = cache
    raise NotImplementedError  # your code here


def gru_step_backward(dh, cache):
    """Backward of a GRU step (gates r, z, n; docs/equations.md §1).

    ``reset_after`` tells which candidate form the forward used. Returns
    ``dx_t, dh_prev, dW_x (D, 3H), dW_h (H, 3H), db_x (3H,), db_h (3H,)``.
    For ``reset_after=True``, ``hn_or_rh = h_prev @ W_hn + b_hn``; for
    ``reset_after=False`` it is ``r ⊙ h_prev``.
    """
    x_t, h_prev, W_x, W_h, r, z, n, hn_or_rh, reset_after = cache
    raise NotImplementedError  # your code here


gru_cho_step_backward = gru_step_backward  # the same function, checked on the Cho form


def lstm_step_backward(dh, dc, cache):
    """Backward of an LSTM step (gates i, f, g, o; ``tc = tanh(c)``).

    Returns ``dx_t, dh_prev, dc_prev, dW_x (D, 4H), dW_h (H, 4H), db (4H,)``.
    """
    x_t, h_prev, c_prev, W_x, W_h, i, f, g, o, tc = cache
    raise NotImplementedError  # your code here


def masked_softmax_backward(dalpha, cache):
    """Backward of ``alpha = softmax(where(mask, scores, -inf), axis)``.

    Returns ``dscores``, shaped like ``alpha``.
    """
    alpha, axis = cache
    raise NotImplementedError  # your code here


def additive_score_backward(dscores, cache):
    """Backward of ``scores[b, t, s] = v_a · tanh(q_proj[b, t] + k_proj[b, s])``.

    ``feats (B, T, S, A)`` is the tanh. Returns ``dq_proj (B, T, A),
    dk_proj (B, S, A), dv_a (A,)``.
    """
    feats, v_a = cache
    raise NotImplementedError  # your code here


def luong_general_score_backward(dscores, cache):
    """Backward of ``scores = queries @ (enc_hs @ W_a.T).transpose(0, 2, 1)``.

    ``keys = enc_hs @ W_a.T (B, S, Hq)``. Returns ``dqueries (B, T, Hq),
    denc_hs (B, S, Hk), dW_a (Hq, Hk)``.
    """
    queries, enc_hs, W_a, keys = cache
    raise NotImplementedError  # your code here


STUBS = {
    "rnn_step_backward": rnn_step_backward,
    "gru_step_backward": gru_step_backward,
    "gru_cho_step_backward": gru_cho_step_backward,
    "lstm_step_backward": lstm_step_backward,
    "masked_softmax_backward": masked_softmax_backward,
    "bahdanau_score_backward": additive_score_backward,
    "luong_general_score_backward": luong_general_score_backward,
}
