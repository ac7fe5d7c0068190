"""`LayerNorm` and `PositionalEncoding`: the two per-position pieces of a Transformer.

Layer normalisation (Ba et al. 2016) over the last axis, row-vector form
(docs/equations.md §7.3)::

    μ = mean(x)        σ² = mean((x − μ)²)          biased: divided by d, not d − 1
    x̂ = (x − μ) / √(σ² + ε)
    y = γ ⊙ x̂ + β

and its backward, with ``g = γ ⊙ dy`` (the gain applied *before* the
reductions)::

    dx = (g − mean(g) − x̂ ⊙ mean(g ⊙ x̂)) / √(σ² + ε)
    dγ = Σ_rows dy ⊙ x̂        dβ = Σ_rows dy

The sinusoidal positional encoding of Vaswani et al. 2017, §3.5
(docs/equations.md §7.4)::

    PE[p, 2i] = sin(p / 10000^(2i/D))      PE[p, 2i+1] = cos(p / 10000^(2i/D))
"""

from __future__ import annotations

import numpy as np

from tinyattn._validate import check_array, check_dim, check_real
from tinyattn.module import Module


class LayerNorm(Module):
    """Normalise each vector over its last axis, then scale and shift.

    Parameters
    ----------
    d : int
        Size of the last axis.
    eps : float, default 1e-5
        Added to the variance inside the square root (PyTorch's default).
    dtype : np.float32 or np.float64

    Notes
    -----
    ``y = ln(x)`` for ``x (..., d)``; ``dx = ln.backward(dy)`` adds ``dγ``
    and ``dβ`` to the grads. γ starts at 1 and β at 0, as in
    ``torch.nn.LayerNorm``. The variance is the biased one (divided by d),
    as in the paper and in PyTorch. Module docstring: the equations.
    """

    def __init__(self, d, *, eps=1e-5, dtype=np.float64):
        super().__init__(dtype)
        self.d = check_dim(d, "d")
        self.eps = check_real(eps, "eps", "(0, inf)")
        self.add_param("gamma", np.ones(self.d))
        self.add_param("beta", np.zeros(self.d))

    def __repr__(self) -> str:
        return f"LayerNorm({self.d}, eps={self.eps}, dtype={np.dtype(self.dtype).name})"

    def normalize(self, x):
        """``(x̂, 1/√(σ² + ε))`` of ``x (..., d)``: no checks, no cache."""
        mu = x.mean(axis=-1, keepdims=True)  # (..., 1)
        xc = x - mu
        var = np.mean(xc * xc, axis=-1, keepdims=True)  # biased: / d
        rstd = 1.0 / np.sqrt(var + self.eps)  # ε inside the root
        return xc * rstd, rstd

    def apply(self, x):
        """``γ ⊙ x̂ + β`` without checks or cache (decoding uses it per step)."""
        xhat, _ = self.normalize(x)
        return xhat * self.params["gamma"] + self.params["beta"]

    def forward(self, x):
        """``y (..., d)`` for ``x (..., d)``; keeps x̂ and 1/√(σ² + ε) for the backward."""
        check_array(x, "x", (None,) * (np.ndim(x) - 1) + (self.d,), self.dtype)
        xhat, rstd = self.normalize(x)
        self._cache = (xhat, rstd)
        return xhat * self.params["gamma"] + self.params["beta"]

    def backward(self, dy):
        """``dx (..., d)``; adds ``dγ = Σ dy ⊙ x̂`` and ``dβ = Σ dy`` over all rows."""
        xhat, rstd = self._take_cache()
        check_array(dy, "dy", xhat.shape, self.dtype)
        dy2 = dy.reshape(-1, self.d)
        self.grads["gamma"] += np.einsum("nd,nd->d", dy2, xhat.reshape(-1, self.d))
        self.grads["beta"] += dy2.sum(axis=0)
        g = dy * self.params["gamma"]  # through y = γ ⊙ x̂ first: the gain is inside the means
        return (g - g.mean(axis=-1, keepdims=True)
                - xhat * np.mean(g * xhat, axis=-1, keepdims=True)) * rstd


def sinusoid_table(max_len: int, d_model: int) -> np.ndarray:
    """``(max_len, d_model)`` float64: row p is position p's encoding (module docstring)."""
    pos = np.arange(max_len)[:, None]  # (L, 1)
    rates = 10000.0 ** (-np.arange(0, d_model, 2) / d_model)  # (⌈D/2⌉,): 1 / 10000^(2i/D)
    angles = pos * rates[None, :]  # (L, ⌈D/2⌉)
    table = np.empty((max_len, d_model))
    table[:, 0::2] = np.sin(angles)
    table[:, 1::2] = np.cos(angles[:, : d_model // 2])  # an odd D has one more sine
    return table


class PositionalEncoding(Module):
    """Add the sinusoidal encoding of each position (Vaswani et al. 2017, §3.5).

    Parameters
    ----------
    d_model : int
    max_len : int
        Longest sequence it encodes; a longer one is an error.
    dtype : np.float32 or np.float64

    Notes
    -----
    No parameters. ``y = pe(x)`` for ``x (B, T, D)`` is ``x + PE[:T]``;
    ``pe.backward(dy)`` is ``dy``; ``pe.table (max_len, D)`` holds the rows.
    Why sines: for every offset k, ``PE[p + k]`` is a fixed rotation of
    ``PE[p]`` in each (sin, cos) pair, the same rotation whatever p, so a
    linear map can read relative positions (lesson 14 shows it).
    """

    def __init__(self, d_model, max_len=512, *, dtype=np.float64):
        super().__init__(dtype)
        self.d_model = check_dim(d_model, "d_model")
        self.max_len = check_dim(max_len, "max_len")
        self.table = sinusoid_table(self.max_len, self.d_model).astype(self.dtype)

    def __repr__(self) -> str:
        return f"PositionalEncoding({self.d_model}, max_len={self.max_len})"

    def rows(self, start: int, stop: int) -> np.ndarray:
        """``PE[start:stop]``, after checking ``stop <= max_len``."""
        if stop > self.max_len:
            raise ValueError(f"sequence of {stop} positions is longer than the positional "
                             f"encoding's max_len = {self.max_len}; build the model with a "
                             f"larger max_len")
        return self.table[start:stop]

    def forward(self, x):
        """``x + PE[:T]`` for ``x (B, T, D)``."""
        check_array(x, "x", (None, None, self.d_model), self.dtype)
        out = x + self.rows(0, x.shape[1])[None]
        self._cache = x.shape
        return out

    def backward(self, dy):
        """The positions are constants: ``dx = dy`` (of the forward's shape)."""
        check_array(dy, "dy", self._take_cache(), self.dtype)
        return dy
