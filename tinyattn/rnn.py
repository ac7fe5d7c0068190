"""Vanilla (Elman) RNN: step functions, then the sequence module.

Row-vector maths, one example per row (EQUATIONS.md §1, document 003)::

    h_t = tanh(x_t @ W_xh + h_{t-1} @ W_hh + b_h)
"""

from __future__ import annotations

import numpy as np

from tinyattn._recurrent import DeferredGrads, RecurrentLayer


def rnn_step_forward(x_t, h_prev, W_xh, W_hh, b_h):
    """One time step of a vanilla RNN.

    Parameters
    ----------
    x_t : ndarray of shape (B, D)
    h_prev : ndarray of shape (B, H)
    W_xh : ndarray of shape (D, H)
    W_hh : ndarray of shape (H, H)
    b_h : ndarray of shape (H,)

    Returns
    -------
    h : ndarray of shape (B, H)
    cache : tuple
        Pass it to `rnn_step_backward`.

    Notes
    -----
    ::

        h = tanh(x_t @ W_xh + h_prev @ W_hh + b_h)

    References
    ----------
    .. [1] J. L. Elman, "Finding structure in time", 1990.
    """
    h = np.tanh(x_t @ W_xh + h_prev @ W_hh + b_h)
    cache = (x_t, h_prev, W_xh, W_hh, h)
    return h, cache


def rnn_step_backward(dh, cache):
    """Backward of `rnn_step_forward`.

    Returns
    -------
    dx_t, dh_prev, dW_xh, dW_hh, db_h
        One gradient per array argument of the forward, same order/shapes.
    """
    dx_t, dh_prev, da = rnn_gates_backward(dh, cache)
    x_t, h_prev = cache[:2]
    dW_xh = x_t.T @ da  # a = x_t W_xh + h_prev W_hh + b_h
    dW_hh = h_prev.T @ da
    db_h = da.sum(axis=0)
    return dx_t, dh_prev, dW_xh, dW_hh, db_h


def rnn_gates_backward(dh, cache):
    """The first half of `rnn_step_backward`: ``dx_t, dh_prev`` and ``da (B, H)``,
    the gradient of the pre-activation, from which the weight gradients follow."""
    x_t, h_prev, W_xh, W_hh, h = cache
    da = dh * (1.0 - h * h)  # tanh'(a) = 1 − tanh(a)²; reuse h
    dx_t = da @ W_xh.T  # a = x_t W_xh + ...  ->  da/dx_t = W_xh^T
    dh_prev = da @ W_hh.T
    return dx_t, dh_prev, da


class RNN(RecurrentLayer):
    """A vanilla tanh RNN over a batch of sequences.

    Parameters
    ----------
    input_size : int
        D.
    hidden_size : int
        H.
    rng : numpy.random.Generator
    dtype : np.float32 or np.float64

    Notes
    -----
    ``hs, h_T = rnn(x, h0=None, lengths=None)`` with ``x (B, T, D)``;
    ``dx, dh0 = rnn.backward(dhs, dh_T=None)``. With ``lengths``, a
    sequence's state is frozen after its last real token, its outputs
    there are 0 and no gradient flows through its pads (PyTorch's packed
    sequences). Parameters: ``W_xh (D, H)``, ``W_hh (H, H)``, ``b_h (H,)``.
    """

    def __init__(self, input_size, hidden_size, *, rng, dtype=np.float64):
        super().__init__(input_size, hidden_size, rng=rng, dtype=dtype)
        D, H = self.input_size, self.hidden_size
        self.add_param("W_xh", self._init(D, H))
        self.add_param("W_hh", self._init(H, H))
        self.add_param("b_h", self._init(H))

    def _weights(self):
        return self.params["W_xh"], self.params["W_hh"], self.params["b_h"]

    def step(self, x_t, h_prev):
        """One step with this layer's weights: ``h, cache``."""
        return rnn_step_forward(x_t, h_prev, *self._weights())

    def step_backward(self, dh, cache, defer=None):
        """Backward of `step`; adds the weight gradients, returns ``dx_t, dh_prev``.

        With ``defer`` (a `DeferredGrads`), the weight-gradient products
        are added to it instead, to run as one product after the loop.
        """
        queue = DeferredGrads() if defer is None else defer
        dx_t, dh_prev, da = rnn_gates_backward(dh, cache)
        queue.add(self, "W_xh", da, cache[0])  # the products of rnn_step_backward
        queue.add(self, "W_hh", da, cache[1])
        queue.add(self, "b_h", da)
        if defer is None:
            queue.flush()
        return dx_t, dh_prev

    def forward(self, x, h0=None, lengths=None):
        """Run the sequence; returns ``hs (B, T, H)`` and ``h_T (B, H)``."""
        xs, keep, lengths = self._prepare(x, lengths)
        T, B, _ = xs.shape
        h0 = self._state(h0, "h0", B)
        W_xh, W_hh, b_h = self._weights()
        hs = self._buf("hs", (T + 1, B, self.hidden_size))  # hs[0] = h0
        hs[0] = h0
        act = self._input_projection(xs, W_xh, b_h)  # (T, B, H), becomes tanh(a)
        rec = self._buf("rec", (B, self.hidden_size))
        for t in range(T):
            a = act[t]
            a += np.matmul(hs[t], W_hh, out=rec)  # the only per-step product
            np.tanh(a, out=a)  # a now holds the new state
            if keep is None:
                hs[t + 1] = a
            else:  # frozen past the length: h_t = h_{t-1} + keep·(h_new − h_{t-1})
                np.subtract(a, hs[t], out=hs[t + 1])
                hs[t + 1] *= keep[t]
                hs[t + 1] += hs[t]
        self._cache = (xs, hs, act, keep)
        return self._batch_first(hs[1:], keep), hs[T].copy()

    def backward(self, dhs, dh_T=None):
        """Backpropagate through time; returns ``dx (B, T, D)``, ``dh0 (B, H)``."""
        xs, hs, act, keep = self._take_cache()
        T, B, D = xs.shape
        H = self.hidden_size
        dhs = self._upstream(dhs, (B, T, H))
        dh = self._state(dh_T, "dh_T", B).copy()  # dL/dh_t, carried backwards
        W_xh, W_hh, _ = self._weights()
        dA = self._buf("dA", (T, B, H))
        tmp = self._buf("tmp", (B, H))
        for t in reversed(range(T)):
            da = dA[t]
            if keep is None:
                dh += dhs[t]  # h_t feeds the output and step t+1
                da[...] = dh
            else:  # pads: the output is the constant 0 and the state passes through
                dh += dhs[t] * keep[t]
                np.multiply(dh, keep[t], out=da)
                dh -= da
            np.multiply(act[t], act[t], out=tmp)
            np.subtract(1.0, tmp, out=tmp)
            da *= tmp  # tanh'(a) = 1 − h²; reuse the stored activation
            if keep is None:
                np.matmul(da, W_hh.T, out=dh)  # dh_{t-1} = da W_hh^T
            else:
                dh += da @ W_hh.T
        # Weight gradients as one product over all steps, not one per step.
        dA2 = dA.reshape(T * B, H)
        self.grads["W_hh"] += hs[:-1].reshape(T * B, H).T @ dA2
        dx = self._input_gradients(xs, dA, W_xh, "W_xh", "b_h")
        return dx, dh
