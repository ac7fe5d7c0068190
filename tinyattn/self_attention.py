"""Scaled dot-product self-attention over one sequence, with its backward.

Queries, keys and values all come from the same sequence ``x (B, T, D)``
(docs/equations.md §7; document 003's closing section announces it; Vaswani
et al. 2017, §3.2.1)::

    Q = x @ W_q      K = x @ W_k      V = x @ W_v        (B, T, d_k), (B, T, d_k), (B, T, d_v)
    S = Q @ K^T / sqrt(d_k)                              (B, T, T)  scores, query rows × key columns
    A = masked_softmax(S)                                (B, T, T)  masked keys get exactly 0
    out = A @ V                                          (B, T, d_v)

One head, no output projection, no positions: the building block, not a
Transformer layer.
"""

from __future__ import annotations

import numpy as np

from tinyattn._validate import check_array, check_dim, check_lengths, check_mask, check_rng
from tinyattn.functional import (
    length_mask,
    masked_softmax_backward,
    masked_softmax_forward,
    matmul_last,
)
from tinyattn.module import Module


def _real_tokens(mask, lengths, batch: int, steps: int):
    """``(B, T)`` bool, True at real tokens, from ``mask`` or ``lengths`` (or None: all real)."""
    if mask is not None and lengths is not None:
        raise ValueError("give mask or lengths, not both (lengths (B,) is the same as "
                         "mask = np.arange(T) < lengths[:, None])")
    if lengths is not None:
        return length_mask(check_lengths(lengths, batch, steps), steps)
    if mask is None:
        return np.ones((batch, steps), dtype=bool)
    return check_mask(mask, "mask", batch, steps, "sequence")


class SelfAttention(Module):
    """One head of scaled dot-product self-attention (Vaswani et al. 2017).

    Parameters
    ----------
    d_model : int
        D, the size of each input vector.
    d_k : int
        Size of queries and keys.
    d_v : int, optional
        Size of values and of the output (default ``d_k``).
    rng : numpy.random.Generator
    dtype : np.float32 or np.float64

    Notes
    -----
    Call ``out, alpha = sa(x, mask=None, lengths=None, causal=False)``:

    - ``x (B, T, D)``; ``mask (B, T)`` bool, True at real tokens, or
      ``lengths (B,)`` (not both). A masked position is a pad: as a key its
      score is ``-inf`` before the softmax, so its weight is exactly 0; as a
      query its row of ``alpha`` and its output are exactly 0 (the library's
      rule for pads, docs/design.md §3), and no gradient flows into it.
    - ``causal=True`` also masks every key after the query (``j > i``):
      position i sees positions 0..i only, as a decoder must.
    - ``out (B, T, d_v)``; ``alpha (B, T, T)``, query rows × key columns,
      each real row summing to 1.

    ``dx = sa.backward(dout, dalpha=None)`` returns ``dx (B, T, D)`` (the
    mask has no gradient) and adds the gradients of ``W_q``, ``W_k``,
    ``W_v``. Row-vector form of the backward, ``s = 1/sqrt(d_k)``::

        dV = A^T dO          dA = dO V^T (+ dalpha)
        dS = A ⊙ (dA − rowsum(dA ⊙ A))              softmax backward
        dQ = dS K s          dK = dS^T Q s
        dW_q = x^T dQ   dW_k = x^T dK   dW_v = x^T dV
        dx = dQ W_q^T + dK W_k^T + dV W_v^T         x feeds all three

    Weights start uniform in ``±1/sqrt(D)``, as `Linear`'s. Why divide by
    ``sqrt(d_k)``: with unit-variance entries a dot product of d_k terms
    has variance d_k, and large scores saturate the softmax (Vaswani et
    al., §3.2.1, footnote 4).

    References
    ----------
    .. [1] A. Vaswani et al., "Attention Is All You Need", NeurIPS 2017,
       arXiv:1706.03762, §3.2.1.
    """

    def __init__(self, d_model, d_k, d_v=None, *, rng, dtype=np.float64):
        super().__init__(dtype)
        self.d_model = check_dim(d_model, "d_model")
        self.d_k = check_dim(d_k, "d_k")
        self.d_v = check_dim(self.d_k if d_v is None else d_v, "d_v")
        rng = check_rng(rng)
        k = 1.0 / np.sqrt(self.d_model)
        self.add_param("W_q", rng.uniform(-k, k, (self.d_model, self.d_k)))
        self.add_param("W_k", rng.uniform(-k, k, (self.d_model, self.d_k)))
        self.add_param("W_v", rng.uniform(-k, k, (self.d_model, self.d_v)))
        # A Python float: an np.float64 scalar would promote float32 scores to float64.
        self.scale = float(1.0 / np.sqrt(self.d_k))

    def __repr__(self) -> str:
        return (f"SelfAttention(d_model={self.d_model}, d_k={self.d_k}, d_v={self.d_v}, "
                f"dtype={np.dtype(self.dtype).name})")

    def forward(self, x, mask=None, lengths=None, causal=False):
        """``out (B, T, d_v)`` and ``alpha (B, T, T)``; see the class Notes."""
        check_array(x, "x", (None, None, self.d_model), self.dtype)
        B, T, _ = x.shape
        if B == 0 or T == 0:
            raise ValueError(f"x must have at least one sequence and one step, got shape {x.shape}")
        if not isinstance(causal, (bool, np.bool_)):
            raise TypeError(f"causal must be a bool, got {type(causal).__name__}")
        real = _real_tokens(mask, lengths, B, T)  # (B, T)
        allowed = real[:, None, :]  # keys: (B, 1, T), broadcast over query rows
        if causal:
            # (1, T, T): query i may see key j only when j <= i
            allowed = allowed & np.tri(T, dtype=bool)[None]
        # A pad query's row would be thrown away below; open it fully so that no
        # row of the softmax is empty (a causal pad row may see only pads).
        allowed = allowed | ~real[:, :, None]  # (B, T, T)

        W_q, W_k, W_v = self.params["W_q"], self.params["W_k"], self.params["W_v"]
        Q = matmul_last(x, W_q)  # (B, T, D) @ (D, d_k) -> (B, T, d_k)
        K = matmul_last(x, W_k)  # (B, T, d_k)
        V = matmul_last(x, W_v)  # (B, T, d_v)
        scores = Q @ K.transpose(0, 2, 1)  # (B, T, d_k) @ (B, d_k, T) -> (B, T, T)
        scores *= self.scale
        weights, sm_cache = masked_softmax_forward(scores, allowed)
        query_keep = real[:, :, None].astype(self.dtype)  # (B, T, 1): 0 on pad query rows
        alpha = weights * query_keep  # (B, T, T) * (B, T, 1), a new array: the cache keeps weights
        out = alpha @ V  # (B, T, T) @ (B, T, d_v) -> (B, T, d_v)
        self._cache = (x, Q, K, V, alpha, sm_cache, query_keep)
        return out, alpha.copy()

    def backward(self, dout, dalpha=None):
        """``dx (B, T, D)``; adds ``dW_q``, ``dW_k``, ``dW_v`` to the grads."""
        x, Q, K, V, alpha, sm_cache, query_keep = self._take_cache()
        B, T, D = x.shape
        check_array(dout, "dout", (B, T, self.d_v), self.dtype)
        # out = alpha @ V
        dV = alpha.transpose(0, 2, 1) @ dout  # (B, T, T)^T @ (B, T, d_v) -> (B, T, d_v)
        dA = dout @ V.transpose(0, 2, 1)  # (B, T, d_v) @ (B, d_v, T) -> (B, T, T)
        if dalpha is not None:
            check_array(dalpha, "dalpha", (B, T, T), self.dtype)
            dA += dalpha
        dA *= query_keep  # alpha was zeroed on pad query rows: nothing flows back there
        # softmax backward; masked entries have alpha = 0, so they get 0
        dS = masked_softmax_backward(dA, sm_cache)  # (B, T, T)
        dS *= self.scale  # scores = Q K^T · scale
        dQ = dS @ K  # (B, T, T) @ (B, T, d_k) -> (B, T, d_k)
        dK = dS.transpose(0, 2, 1) @ Q  # (B, T, T)^T @ (B, T, d_k) -> (B, T, d_k)
        # Q = x W_q, K = x W_k, V = x W_v: one product per weight over all B·T rows
        x2 = x.reshape(B * T, D)
        dx = np.zeros_like(x2)
        for name, d in (("W_q", dQ), ("W_k", dK), ("W_v", dV)):
            d2 = d.reshape(B * T, -1)  # (B·T, d_k or d_v)
            self.grads[name] += x2.T @ d2  # dW = x^T dY
            dx += d2 @ self.params[name].T  # x feeds Q, K and V: the three paths add
        return dx.reshape(B, T, D)
