"""Lesson 13's exercise: the backward pass of two-head self-attention.

The forward is lesson 13's (one sequence X (T, D), no batch, no mask):
head h uses columns ``h·d_k .. (h+1)·d_k`` of W_q, W_k, W_v, the heads'
outputs are concatenated and projected by W_o (Vaswani et al. 2017,
§3.2.2; docs/equations.md §7 for one head). The learner's backward is
graded by the library's gradient checker; the known mistakes below predict
what a backward with each of them returns.
"""

from __future__ import annotations

from functools import partial

import numpy as np

from tinyattn.exercises._diagnose import Bug
from tinyattn.exercises._registry import Exercise
from tinyattn.functional import softmax

N_HEADS = 2
_T, _D, _DK = 4, 5, 3  # 2·d_k = 6: every size different


def multi_head_forward(X, W_q, W_k, W_v, W_o):
    """Two-head self-attention of one sequence X (T, D); returns ``(Y (T, D), cache)``."""
    T, _ = X.shape
    dk = W_q.shape[1] // N_HEADS
    # (T, D) @ (D, h·dk) -> (T, h·dk) -> (T, h, dk) -> (h, T, dk): one slice per head
    Qh, Kh, Vh = ((X @ W).reshape(T, N_HEADS, dk).transpose(1, 0, 2) for W in (W_q, W_k, W_v))
    Ah = softmax(Qh @ Kh.transpose(0, 2, 1) / np.sqrt(dk), axis=-1)  # (h, T, T)
    heads = Ah @ Vh  # (h, T, dk)
    concat = heads.transpose(1, 0, 2).reshape(T, N_HEADS * dk)  # (T, h·dk)
    return concat @ W_o, (X, W_q, W_k, W_v, W_o, Qh, Kh, Vh, Ah, concat)


def _backward(dY, cache, *, scale=True, heads_by_reshape=False, row_sum=True,
              dk_transposed=True, paths=("q", "k", "v")):
    """The backward, or, with a flag changed, the backward with one known mistake."""
    X, W_q, W_k, W_v, W_o, Qh, Kh, Vh, Ah, concat = cache
    n, T, dk = Qh.shape
    dW_o = concat.T @ dY
    dconcat = dY @ W_o.T  # (T, h·dk)
    if heads_by_reshape:
        dheads = dconcat.reshape(n, T, dk)
    else:
        dheads = dconcat.reshape(T, n, dk).transpose(1, 0, 2)
    dVh = Ah.transpose(0, 2, 1) @ dheads
    dAh = dheads @ Vh.transpose(0, 2, 1)
    dSh = Ah * (dAh - np.sum(dAh * Ah, axis=-1, keepdims=True)) if row_sum else Ah * dAh
    c = 1.0 / np.sqrt(dk) if scale else 1.0
    dQh = dSh @ Kh * c
    dKh = (dSh.transpose(0, 2, 1) if dk_transposed else dSh) @ Qh * c

    def merge(g):
        if heads_by_reshape:
            return g.reshape(T, n * dk)
        return g.transpose(1, 0, 2).reshape(T, n * dk)

    dQ, dK, dV = merge(dQh), merge(dKh), merge(dVh)
    dX = sum(d @ W.T for key, d, W in (("q", dQ, W_q), ("k", dK, W_k), ("v", dV, W_v))
             if key in paths)
    return dX, X.T @ dQ, X.T @ dK, X.T @ dV, dW_o


def multi_head_backward(dY, cache):
    """Gradients of the two-head forward.

    dY (T, D); cache = ``(X, W_q, W_k, W_v, W_o, Qh, Kh, Vh, Ah, concat)`` with Qh, Kh, Vh
    (h, T, d_k) the heads' slices, Ah (h, T, T) their weights, concat (T, h·d_k) = [head_1 ;
    head_2]. Y = concat W_o; head_h = softmax(Q_h K_hᵀ / √d_k) V_h.
    Returns ``dX (T, D), dW_q, dW_k, dW_v (D, h·d_k), dW_o (h·d_k, D)``.
    """
    raise NotImplementedError  # your code here


_PATH_NAMES = {"q": "Q", "k": "K", "v": "V"}

MULTI_HEAD = Exercise(
    "multi_head_backward",
    "dX, dW_q, dW_k, dW_v, dW_o = multi_head_backward(dY, cache)",
    multi_head_forward,
    {"X": (_T, _D), "W_q": (_D, N_HEADS * _DK), "W_k": (_D, N_HEADS * _DK),
     "W_v": (_D, N_HEADS * _DK), "W_o": (N_HEADS * _DK, _D)},
    "docs/equations.md §7 (one head); Vaswani et al. 2017 §3.2.2: "
    "MultiHead(X) = [head_1 ; head_2] W_o, head_h = softmax(Q_h K_hᵀ / √d_k) V_h",
    [
        Bug("the 1/√d_k missing from dQ and dK",
            "S = Q Kᵀ / √d_k: both dQ = dS K / √d_k and dK = dSᵀ Q / √d_k keep the factor",
            partial(_backward, scale=False)),
        Bug("heads split and merged with reshape alone, without the transpose",
            "the forward reshapes (T, h·d_k) to (T, h, d_k) and then transposes to "
            "(h, T, d_k); undo exactly that: dconcat.reshape(T, h, d_k).transpose(1, 0, 2), "
            "and transpose back before reshaping to (T, h·d_k)",
            partial(_backward, heads_by_reshape=True)),
        Bug("softmax backward without the row sum",
            "dS = A ⊙ (dA − Σ_k dA_k A_k) row by row; A ⊙ dA leaves out the second term "
            "(the Jacobian of a softmax row is diag(a) − a aᵀ)",
            partial(_backward, row_sum=False)),
        Bug("dK computed from dS instead of its transpose",
            "key j is read by every query i: dK = dSᵀ Q / √d_k (dS.transpose(0, 2, 1))",
            partial(_backward, dk_transposed=False)),
    ] + [
        Bug(f"dX misses the path through {_PATH_NAMES[p]}",
            "X feeds Q, K and V: dX = dQ W_qᵀ + dK W_kᵀ + dV W_vᵀ",
            partial(_backward, paths=tuple(k for k in "qkv" if k != p)))
        for p in "qkv"
    ],
    starter=multi_head_backward,
    solution=_backward,
)

EXERCISES = [MULTI_HEAD]
