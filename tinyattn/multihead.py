"""`MultiHeadAttention` (Vaswani et al. 2017, §3.2.2) with its backward.

Row-vector form, batch first, n heads of size d = D / n (docs/equations.md §7.1)::

    Q = query @ W_q + b_q     K = key @ W_k + b_k     V = value @ W_v + b_v     (B, ·, D)
    split: (B, T, D) -> (B, T, n, d) -> (B, n, T, d)         head h: columns h·d .. h·d + d
    S = Q_h @ K_hᵀ / √d                                                        (B, n, T, S_k)
    A = masked softmax over keys (pads, and j > i when causal, get exactly 0)
    H = A @ V_h                                                                (B, n, T, d)
    merge: (B, n, T, d) -> (B, T, n, d) -> (B, T, D)
    out = merged @ W_o + b_o

Backward (``s = 1/√d``)::

    dW_o = mergedᵀ dout   db_o = Σ dout   dH = split(dout W_oᵀ)
    dV_h = Aᵀ dH          dA = dH V_hᵀ
    dS = A ⊙ (dA − rowsum(dA ⊙ A))         per row: no Jacobian, no division by the batch
    dQ_h = dS K_h s       dK_h = dSᵀ Q_h s
    dquery = merge(dQ_h) W_qᵀ, dW_q = queryᵀ merge(dQ_h), db_q = Σ merge(dQ_h); same for K, V

All heads are one batched product (``(B, n, T, d) @ (B, n, d, S)``), never
a loop over heads. The weights match ``torch.nn.MultiheadAttention``'s as
``W_q = in_proj_weight[:D].T`` and ``W_o = out_proj.weight.T``
(`tinyattn.interop`).
"""

from __future__ import annotations

import numpy as np

from tinyattn._validate import (
    as_array,
    check_array,
    check_bool,
    check_dim,
    check_lengths,
    check_real,
    check_rng,
)
from tinyattn.functional import length_mask, masked_softmax_backward, masked_softmax_forward
from tinyattn.layers import Dropout
from tinyattn.module import Module


def split_heads(x, n: int) -> np.ndarray:
    """``(B, T, D) -> (B, n, T, D/n)``: head h takes columns ``h·d .. h·d + d``."""
    B, T, D = x.shape
    return x.reshape(B, T, n, D // n).transpose(0, 2, 1, 3)


def merge_heads(x) -> np.ndarray:
    """``(B, n, T, d) -> (B, T, n·d)``, the inverse of `split_heads`."""
    B, n, T, d = x.shape
    return x.transpose(0, 2, 1, 3).reshape(B, T, n * d)


def attention_mask(key_lengths, batch: int, T: int, S: int, causal: bool) -> np.ndarray:
    """``(B or 1, 1, T or 1, S)`` bool, True where query i may read key j.

    Keys at or past ``key_lengths[b]`` are masked; with ``causal``, keys
    ``j > i`` too (T must equal S). Raises when a query row would have
    nothing to read.
    """
    allowed = np.ones((1, 1, 1, S), dtype=bool)
    if key_lengths is not None:
        allowed = length_mask(key_lengths, S)[:, None, None, :]  # (B, 1, 1, S)
    if causal:
        if T != S:
            raise ValueError(f"causal=True needs as many queries as keys (self-attention), "
                             f"got {T} queries and {S} keys")
        allowed = allowed & np.tri(T, dtype=bool)[None, None]  # (·, 1, T, T): j <= i
    return allowed


class MultiHeadAttention(Module):
    """Multi-head scaled dot-product attention (Vaswani et al. 2017, §3.2.2).

    Parameters
    ----------
    d_model : int
        D, the size of queries, keys, values and outputs.
    num_heads : int
        n; must divide D. Each head has size d = D / n.
    dropout : float in [0, 1), default 0
        Inverted dropout on the attention weights in train mode (as
        PyTorch's ``dropout``); the returned weights are the undropped ones.
    rng : numpy.random.Generator
    dtype : np.float32 or np.float64

    Notes
    -----
    ``out, attn = mha(query (B, T, D), key (B, S, D), value (B, S, D),
    key_lengths=None, causal=False)``: ``out (B, T, D)``, ``attn (B, n, T, S)``
    each head's weights; keys at or past ``key_lengths[b]`` get exactly 0;
    ``causal`` masks keys after the query position. Every query row is
    computed (the layers zero the outputs at their pad positions).

    ``dquery, dkey, dvalue = mha.backward(dout, dattn=None)`` (self-attention
    callers add the three) and the parameters' gradients accumulate. Weights start
    uniform in ``±1/√D``, biases at 0.
    """

    def __init__(self, d_model, num_heads, *, dropout=0.0, rng, dtype=np.float64):
        super().__init__(dtype)
        D = self.d_model = check_dim(d_model, "d_model")
        n = self.num_heads = check_dim(num_heads, "num_heads")
        if D % n:
            raise ValueError(f"num_heads must divide d_model (each head has d_model / num_heads "
                             f"columns), got d_model={D}, num_heads={n}")
        self.head_size = D // n
        rng = check_rng(rng)
        dropout = check_real(dropout, "dropout", "[0, 1)")  # named as the caller wrote it
        k = 1.0 / np.sqrt(D)
        for name in ("q", "k", "v", "o"):
            self.add_param("W_" + name, rng.uniform(-k, k, (D, D)))
        for name in ("q", "k", "v", "o"):
            self.add_param("b_" + name, np.zeros(D))
        self.drop = Dropout(dropout, dtype=self.dtype)
        # A Python float: an np.float64 would promote float32 scores to float64.
        self.scale = float(1.0 / np.sqrt(self.head_size))

    def __repr__(self) -> str:
        return (f"MultiHeadAttention(d_model={self.d_model}, num_heads={self.num_heads}, "
                f"dropout={self.drop.p}, dtype={np.dtype(self.dtype).name})")

    # ----- pieces shared by training and cached decoding ---------------------
    def project(self, x, name: str) -> np.ndarray:
        """``split_heads(x @ W_name + b_name)``: ``(B, T, D) -> (B, n, T, d)``."""
        B, T, D = x.shape
        y = x.reshape(B * T, D) @ self.params["W_" + name]  # one product over all B·T rows
        y += self.params["b_" + name]
        return split_heads(y.reshape(B, T, D), self.num_heads)

    def attend(self, Q, K, V, allowed):
        """``(merged (B, T, D), A (B, n, T, S), dropout mask or None, softmax cache)``
        of projected heads; the mask is drawn in train mode with ``dropout > 0``."""
        scores = Q @ K.transpose(0, 1, 3, 2)  # (B, n, T, d) @ (B, n, d, S) -> (B, n, T, S)
        scores *= self.scale
        A, sm_cache = masked_softmax_forward(scores, allowed)
        mask = self.drop.mask(A.shape)  # None in eval mode or with p = 0
        A_used = A if mask is None else A * mask
        return merge_heads(A_used @ V), A, mask, sm_cache  # (B, n, T, S) @ (B, n, S, d)

    def output(self, merged) -> np.ndarray:
        """``merged @ W_o + b_o`` for ``merged (B, T, D)``."""
        B, T, D = merged.shape
        out = merged.reshape(B * T, D) @ self.params["W_o"]
        out += self.params["b_o"]
        return out.reshape(B, T, D)

    # ----- training -----------------------------------------------------------
    def forward(self, query, key, value, key_lengths=None, causal=False):
        """``out (B, T, D)`` and ``attn (B, n, T, S)``; see the class Notes."""
        D = self.d_model
        check_array(query, "query", (None, None, D), self.dtype)
        if key is not query:  # self-attention passes one array three times: check it once
            check_array(key, "key", (None, None, D), self.dtype)
        if value is not key:
            check_array(value, "value", key.shape, self.dtype)
        B, T, _ = query.shape
        S = key.shape[1]
        if key.shape[0] != B:
            raise ValueError(f"query and key must have the same batch size, got "
                             f"{B} and {key.shape[0]}")
        if B == 0 or T == 0 or S == 0:
            raise ValueError(f"query and key need at least one sequence and one step, got "
                             f"shapes {query.shape} and {key.shape}")
        causal = check_bool(causal, "causal")
        lengths = None if key_lengths is None else check_lengths(
            as_array(key_lengths, "key_lengths"), B, S, "key_lengths")
        allowed = attention_mask(lengths, B, T, S, causal)
        Q, K, V = self.project(query, "q"), self.project(key, "k"), self.project(value, "v")
        merged, A, mask, sm_cache = self.attend(Q, K, V, allowed)
        self._cache = (query, key, value, Q, K, V, A, mask, sm_cache, merged)
        return self.output(merged), A

    def backward(self, dout, dattn=None):
        """``dquery (B, T, D), dkey (B, S, D), dvalue (B, S, D)``; adds every weight's
        gradient. ``dattn (B, n, T, S)``, optional: a gradient of the returned weights."""
        query, key, value, Q, K, V, A, mask, sm_cache, merged = self._take_cache()
        B, T, D = query.shape
        check_array(dout, "dout", (B, T, D), self.dtype)
        dout2 = dout.reshape(B * T, D)
        self.grads["W_o"] += merged.reshape(B * T, D).T @ dout2
        self.grads["b_o"] += dout2.sum(axis=0)
        dH = split_heads((dout2 @ self.params["W_o"].T).reshape(B, T, D), self.num_heads)
        A_used = A if mask is None else A * mask  # what the forward multiplied V by
        dV = A_used.transpose(0, 1, 3, 2) @ dH  # (B, n, S, T) @ (B, n, T, d) -> (B, n, S, d)
        dA = dH @ V.transpose(0, 1, 3, 2)  # (B, n, T, d) @ (B, n, d, S) -> (B, n, T, S)
        if mask is not None:
            dA *= mask  # through the dropped weights
        if dattn is not None:
            check_array(dattn, "dattn", A.shape, self.dtype)
            dA += dattn
        dS = masked_softmax_backward(dA, sm_cache)  # row by row, 0 at masked keys
        dS *= self.scale
        dQ = dS @ K  # (B, n, T, S) @ (B, n, S, d)
        dK = dS.transpose(0, 1, 3, 2) @ Q  # (B, n, S, T) @ (B, n, T, d)
        return tuple(self._input_grad(x, d, name)
                     for x, d, name in ((query, dQ, "q"), (key, dK, "k"), (value, dV, "v")))

    def _input_grad(self, x, dheads, name: str) -> np.ndarray:
        """Gradient of x for ``split_heads(x W + b)``; adds ``dW = xᵀ dY``, ``db = Σ dY``."""
        B, T, D = x.shape
        dy = merge_heads(dheads).reshape(B * T, D)
        self.grads["W_" + name] += x.reshape(B * T, D).T @ dy
        self.grads["b_" + name] += dy.sum(axis=0)
        return (dy @ self.params["W_" + name].T).reshape(B, T, D)

