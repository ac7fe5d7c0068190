"""`Linear` and `Embedding`, the two stateless-looking layers with weights, and `Dropout`."""

from __future__ import annotations

import numpy as np

from tinyattn._validate import (
    check_array,
    check_bool,
    check_dim,
    check_id,
    check_ids,
    check_real,
    check_rng,
)
from tinyattn.functional import matmul_last
from tinyattn.module import Module


class Linear(Module):
    """Affine map over the last axis: ``y = x @ W + b``.

    Parameters
    ----------
    in_size, out_size : int
    rng : numpy.random.Generator
    bias : bool
        Whether to learn ``b``.
    dtype : np.float32 or np.float64

    Notes
    -----
    Works on any number of leading dims: ``x (..., in_size) -> y (...,
    out_size)``; backward flattens them into one matrix product each for
    ``dW = X^T dY`` and ``dX = dY W^T``. Weights start uniform in
    ``±1/sqrt(in_size)``, as PyTorch's ``nn.Linear``.
    """

    def __init__(self, in_size, out_size, *, rng, bias=True, dtype=np.float64):
        super().__init__(dtype)
        self.in_size = check_dim(in_size, "in_size")
        self.out_size = check_dim(out_size, "out_size")
        rng = check_rng(rng)
        bias = check_bool(bias, "bias")
        k = 1.0 / np.sqrt(self.in_size)
        self.add_param("W", rng.uniform(-k, k, (self.in_size, self.out_size)))
        if bias:
            self.add_param("b", rng.uniform(-k, k, (self.out_size,)))

    def apply(self, x):
        """``x @ W + b`` without checks or cache (decoders use it per step)."""
        y = matmul_last(x, self.params["W"])  # (..., in) @ (in, out) -> (..., out)
        if "b" in self.params:
            y += self.params["b"]
        return y

    def forward(self, x):
        """``y = x @ W + b`` for ``x (..., in)``; keeps x for the backward."""
        check_array(x, "x", (None,) * (np.ndim(x) - 1) + (self.in_size,), self.dtype)
        self._cache = x
        return self.apply(x)

    def backward(self, dy):
        """``dx = dy @ W.T``; adds ``dW = x.T @ dy`` and ``db = Σ dy`` over all rows."""
        x = self._take_cache()
        check_array(dy, "dy", x.shape[:-1] + (self.out_size,), self.dtype)
        x2 = x.reshape(-1, self.in_size)  # (N, in), N = product of leading dims
        dy2 = dy.reshape(-1, self.out_size)  # (N, out)
        self.grads["W"] += x2.T @ dy2  # dW = X^T dY, one product for all rows
        if "b" in self.params:
            self.grads["b"] += dy2.sum(axis=0)
        return (dy2 @ self.params["W"].T).reshape(x.shape)  # dX = dY W^T


class Embedding(Module):
    """Lookup table: token ids ``(...)`` to vectors ``(..., E)``.

    Parameters
    ----------
    num_embeddings : int
        Vocabulary size V.
    embedding_dim : int
        E.
    rng : numpy.random.Generator
    pad_id : int in 0..num_embeddings-1, or None
        Row kept at zero that never receives a gradient (PyTorch's
        ``padding_idx``), so padding cannot learn anything; None (the
        default): no such row.
    dtype : np.float32 or np.float64
    """

    def __init__(self, num_embeddings, embedding_dim, *, rng, pad_id=None,
                 dtype=np.float64):
        super().__init__(dtype)
        self.num_embeddings = check_dim(num_embeddings, "num_embeddings")
        self.embedding_dim = check_dim(embedding_dim, "embedding_dim")
        pad_id = check_id(pad_id, "pad_id", self.num_embeddings, none_ok=True)
        self.pad_id = pad_id
        W = check_rng(rng).standard_normal((self.num_embeddings, self.embedding_dim))
        if pad_id is not None:
            W[pad_id] = 0.0
        self.add_param("W", W)

    def forward(self, ids):
        """Rows of ``W`` for ``ids (...)``: ``(..., E)``."""
        ids = check_ids(ids, "ids", self.num_embeddings)
        self._cache = ids
        return self.params["W"][ids]  # (...) -> (..., E)

    def backward(self, dy):
        """Adds ``dy`` into the rows of ``dW`` the ids read (the pad row stays 0)."""
        ids = self._take_cache()
        check_array(dy, "dy", ids.shape + (self.embedding_dim,), self.dtype)
        flat_ids = ids.reshape(-1)
        dy2 = dy.reshape(-1, self.embedding_dim)  # (N, E)
        if self.pad_id is not None:
            keep = flat_ids != self.pad_id  # the padding row gets no gradient
            flat_ids, dy2 = flat_ids[keep], dy2[keep]
        # A token that appears several times gets the sum of its gradients;
        # plain fancy-index += would keep only one of them.
        np.add.at(self.grads["W"], flat_ids, dy2)
        return None  # integer ids have no gradient


class Dropout(Module):
    """Inverted dropout: in train mode each unit is kept with probability ``1 − p``
    and scaled by ``1/(1 − p)``; in eval mode (and with ``p = 0``) the identity.

    Parameters
    ----------
    p : float in [0, 1)
        The probability of dropping a unit.
    dtype : np.float32 or np.float64

    Notes
    -----
    ``y = x ⊙ m``, ``m_i = [u_i ≥ p] / (1 − p)`` with ``u_i`` uniform in [0, 1),
    so ``E[y] = x`` and eval mode needs no rescaling (Srivastava et al. 2014;
    the "inverted" scaling at training time). ``dx = dy ⊙ m``. Each call draws
    a new mask from ``rng``, which its owner sets (`tinyattn.Seq2Seq.seed_dropout`);
    a layer used twice before a backward would keep only the last mask, so
    every use of dropout is its own layer.
    """

    def __init__(self, p, *, dtype=np.float64):
        super().__init__(dtype)
        self.p = check_real(p, "p", "[0, 1)")
        self.rng = None  # a numpy Generator, set by the owner before training

    def forward(self, x):
        """``x ⊙ m`` in train mode (a fresh mask), else ``x`` itself."""
        mask = self.mask(np.shape(x))
        if mask is None:
            self._cache = "identity"
            return x
        self._cache = mask
        return x * mask

    def mask(self, shape):
        """A fresh mask ``m`` for an input of ``shape``, or None where dropout is
        the identity (eval mode, ``p = 0``). Nothing is cached: for a caller that
        applies the mask and keeps it itself, such as a stacked decoder's
        per-step dropout (`tinyattn.stacked.StackedRNN.step`)."""
        if not self.training or self.p == 0.0:
            return None
        if self.rng is None:
            raise ValueError("Dropout.rng is not set: seed the model's dropout first "
                             "(model.seed_dropout(seed))")
        mask = self._keep(shape).astype(self.dtype)
        mask /= 1.0 - self.p
        return mask

    def _keep(self, shape) -> np.ndarray:
        """Which units to keep: a bool array, each True with probability 1 − p."""
        return self.rng.random(shape) >= self.p

    def backward(self, dy):
        """``dy ⊙ m``: the gradient passes where the unit was kept."""
        mask = self._take_cache()
        return dy if isinstance(mask, str) else dy * mask
