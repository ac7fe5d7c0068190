"""Lesson 01's exercises: the output layer's loss, and BPTT over a whole sequence.

Both are backwards graded by the gradient checker on a forward built from
library pieces:

- ``rnn_output_loss_backward``: ``o_t = softmax(h_t W_hy + b_y)`` and the
  cross-entropy of the target token, averaged over the batch as
  `tinyattn.losses.sequence_cross_entropy` averages over tokens
  (docs/equations.md §1.1 and §6);
- ``rnn_backward``: `tinyattn.rnn.rnn_step_forward` run over T steps, and
  the backward of the whole sequence (docs/equations.md §1.1).
"""

from __future__ import annotations

from functools import partial

import numpy as np

from tinyattn.exercises._diagnose import Bug
from tinyattn.exercises._registry import Exercise
from tinyattn.functional import softmax
from tinyattn.losses import sequence_cross_entropy
from tinyattn.rnn import rnn_gates_backward, rnn_step_forward, rnn_weight_grads

# sizes pairwise distinct, so a transposed product fails on its shape
_B, _H, _V = 2, 4, 7  # B as in every exercise (_registry.B): a batch axis left is recognised
_TARGETS = np.array([5, 2])  # one target token per example
_T, _D, _HR = 4, 5, 6  # the BPTT exercise: B = 2, T = 4, D = 5, H = 6
_BR = 2


# ---------------------------------------------------------------- output layer and loss

def output_loss_forward(h, W_hy, b_y, targets=_TARGETS):
    """``loss = −(1/B) Σ_b log o[b, targets[b]]`` with ``o = softmax(h W_hy + b_y)``.

    Returns the loss as a 0-d array and the cache ``(h, W_hy, o, targets)``.
    """
    logits = h @ W_hy + b_y  # (B, H) @ (H, V) + (V,)
    mask = np.ones(targets.shape + (1,), dtype=bool)
    loss, _ = sequence_cross_entropy(logits[:, None, :], targets[:, None], mask)
    return np.array(loss), (h, W_hy, softmax(logits, axis=-1), targets)


def _output_grads(dloss, cache, *, sign=1.0, count="mean", use_dloss=True, onehot=True):
    """The output layer's backward, right by default, or with one mistake."""
    h, W_hy, o, targets = cache
    B, V = o.shape
    y = np.eye(V)[targets] if onehot else 0.0
    dlogits = sign * (o - y)
    if count == "mean":
        dlogits = dlogits / B  # the loss is the mean over the batch
    if use_dloss:
        dlogits = dlogits * dloss
    return dlogits @ W_hy.T, h.T @ dlogits, dlogits.sum(axis=0)


def rnn_output_loss_backward(dloss, cache):
    """Backward of ``loss = −(1/B) Σ_b log softmax(h W_hy + b_y)[b, target_b]``.

    ``dloss`` is the upstream gradient of the scalar loss (a 0-d array; 1 when
    the loss is the end of the graph); ``o (B, V)`` is the softmax, cached.
    Returns ``dh (B, H), dW_hy (H, V), db_y (V,)``.
    """
    h, W_hy, o, targets = cache
    raise NotImplementedError  # your code here


OUTPUT_LOSS = Exercise(
    "rnn_output_loss_backward",
    "dh, dW_hy, db_y = rnn_output_loss_backward(dloss, cache)",
    output_loss_forward,
    {"h": (_B, _H), "W_hy": (_H, _V), "b_y": (_V,)},
    "docs/equations.md §1.1 (o_t = softmax(h_t W_hy + b_y)) and §6 (cross-entropy, mean "
    "over the tokens): dlogits = (o − onehot(target)) / B",
    [
        Bug("softmax gradient with the wrong sign (onehot − o)",
            "d(−log o_y)/dlogits = o − onehot(y): the probability minus the target, "
            "positive on every wrong class",
            partial(_output_grads, sign=-1.0)),
        Bug("a sum over the batch instead of the mean",
            "the loss is the mean over the B examples (as sequence_cross_entropy averages "
            "over tokens): divide dlogits by B",
            partial(_output_grads, count="sum")),
        Bug("the upstream gradient dloss ignored",
            "the loss may be scaled by whatever comes after it: multiply by dloss "
            "(it is 1 only when the loss is the end of the graph)",
            partial(_output_grads, use_dloss=False)),
        Bug("the target's −1 left out (o instead of o − onehot)",
            "−log o_y has gradient o − onehot(y): subtract 1 at the target class of "
            "each row",
            partial(_output_grads, onehot=False)),
    ],
    starter=rnn_output_loss_backward,
    solution=_output_grads,
)


# ---------------------------------------------------------------- BPTT over a sequence

def rnn_sequence_forward(x, h0, W_xh, W_hh, b_h):
    """`rnn_step_forward` over x (B, T, D) from h0 (B, H).

    Returns ``(hs (B, T, H), h_T (B, H))`` and the cache ``(x, h0, hs, W_xh, W_hh)``.
    """
    h, hs = h0, []
    for t in range(x.shape[1]):
        h, _ = rnn_step_forward(x[:, t], h, W_xh, W_hh, b_h)
        hs.append(h)
    hs = np.stack(hs, axis=1)
    return (hs, h), (x, h0, hs, W_xh, W_hh)


def _bptt(dhs, dh_T, cache, *, carry=True, use_dh_T=True, weights="all", slope="h_t"):
    """BPTT of `rnn_sequence_forward`, right by default, or with one mistake.

    ``carry=False`` drops dh_next; ``use_dh_T=False`` ignores dh_T; ``weights``
    ``"first"``/``"last"`` keeps one step's weight gradients; ``slope``
    ``"h_prev"`` takes tanh' at h_{t-1}, ``"twice"`` as 1 − tanh(h_t)².
    """
    x, h0, hs, W_xh, W_hh = cache
    T = hs.shape[1]
    h_prevs = np.concatenate([h0[:, None], hs[:, :-1]], axis=1)  # h_0 .. h_{T-1}
    dA = np.empty_like(hs)
    dh_next = dh_T if use_dh_T else np.zeros_like(dh_T)
    for t in reversed(range(T)):
        dh = dhs[:, t] + dh_next
        at = {"h_t": hs[:, t], "h_prev": h_prevs[:, t], "twice": np.tanh(hs[:, t])}[slope]
        dh_prev, dA[:, t] = rnn_gates_backward(dh, (h_prevs[:, t], W_hh, at))
        dh_next = dh_prev if carry else np.zeros_like(dh_prev)
    if not carry:  # dh0 is still what step 1 hands back
        dh_next = dA[:, 0] @ W_hh.T
    steps = {"all": slice(None), "first": slice(0, 1), "last": slice(T - 1, T)}[weights]
    rows = lambda a: a[:, steps].reshape(-1, a.shape[-1])  # noqa: E731  (B·T', ·)
    dW_xh, dW_hh, db_h = rnn_weight_grads(rows(x), rows(dA), rows(h_prevs))
    return dA @ W_xh.T, dh_next, dW_xh, dW_hh, db_h



def rnn_backward(dhs, dh_T, cache):
    """BPTT of ``h_t = tanh(x_t W_xh + h_{t-1} W_hh + b_h)`` over a whole sequence.

    ``dhs (B, T, H)``: the upstream gradient of every state; ``dh_T (B, H)``:
    one more for the final state. The cache holds ``x (B, T, D)``, ``h0 (B, H)``,
    ``hs (B, T, H)`` = h_1 .. h_T and the weights.
    Returns ``dx (B, T, D), dh0 (B, H), dW_xh (D, H), dW_hh (H, H), db_h (H,)``.
    """
    x, h0, hs, W_xh, W_hh = cache
    raise NotImplementedError  # your code here


BPTT = Exercise(
    "rnn_backward",
    "dx, dh0, dW_xh, dW_hh, db_h = rnn_backward(dhs, dh_T, cache)",
    rnn_sequence_forward,
    {"x": (_BR, _T, _D), "h0": (_BR, _HR), "W_xh": (_D, _HR), "W_hh": (_HR, _HR),
     "b_h": (_HR,)},
    "docs/equations.md §1.1: dL/dh_t = δ_t + dL/da_{t+1} W_hhᵀ, dL/da_t = dL/dh_t ⊙ "
    "(1 − h_t²); the weight gradients are sums over the steps",
    [
        Bug("dropped dh_next",
            "h_t feeds step t+1 as well as its own output: the gradient reaching h_t is "
            "dhs[:, t] plus what step t+1 hands back, dL/da_{t+1} @ W_hh.T",
            partial(_bptt, carry=False)),
        Bug("dh_T ignored",
            "the final state h_T is an output of its own (an encoder's summary, a "
            "decoder's initial state): its gradient dh_T starts the carried dh_next",
            partial(_bptt, use_dh_T=False)),
        Bug("weight gradients from one step only (the first)",
            "the same weights are used at every step, so their gradients add up over "
            "t = 1..T: accumulate with +=, or sum over the stacked steps after the loop",
            partial(_bptt, weights="first")),
        Bug("weight gradients from one step only (the last)",
            "the same weights are used at every step, so their gradients add up over "
            "t = 1..T, not only the last step's",
            partial(_bptt, weights="last")),
        Bug("tanh' at the wrong point: 1 − h_{t-1}² instead of 1 − h_t²",
            "h_t = tanh(a_t), so tanh'(a_t) = 1 − h_t², with the state this step "
            "computed, hs[:, t], not the one it read",
            partial(_bptt, slope="h_prev")),
        Bug("tanh' at the wrong point: 1 − tanh(h_t)²",
            "hs already holds tanh(a_t): its derivative is 1 − h_t², without applying "
            "tanh again",
            partial(_bptt, slope="twice")),
    ],
    starter=rnn_backward,
    solution=_bptt,
)

EXERCISES = [OUTPUT_LOSS, BPTT]
