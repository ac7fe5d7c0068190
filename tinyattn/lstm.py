"""Long short-term memory: step functions, then the sequence module.

Gates stacked along the last axis in PyTorch's order i, f, g, o
(docs/equations.md §1, document 003)::

    a = x_t @ W_x + h_prev @ W_h + b            (B, 4H), split into a_i a_f a_g a_o
    i = σ(a_i)   f = σ(a_f)   g = tanh(a_g)   o = σ(a_o)
    c = f ⊙ c_prev + i ⊙ g
    h = o ⊙ tanh(c)

The step is split where the layer needs it: ``ax = x_t @ W_x + b`` (the
input projection, for all steps at once in the layer) and the gates pair,
which reads the previous state.
"""

from __future__ import annotations

import numpy as np

from tinyattn.functional import sigmoid, sigmoid_backward, tanh_backward
from tinyattn.recurrent import RecurrentLayer


def lstm_gates_forward(ax, h_prev, c_prev, W_h):
    """The LSTM cell given its input projection ``ax = x_t @ W_x + b (B, 4H)``.

    Returns ``(h, c)`` and the cache ``(h_prev, c_prev, W_h, i, f, g, o, tc)``
    with ``tc = tanh(c)``.
    """
    H = h_prev.shape[1]
    a = ax + h_prev @ W_h  # (B, 4H) + (B, H) @ (H, 4H): the one recurrent product
    i, f = np.split(sigmoid(a[:, :2 * H]), 2, axis=1)  # input and forget gates
    g = np.tanh(a[:, 2 * H:3 * H])  # candidate
    o = sigmoid(a[:, 3 * H:])  # output gate
    c = f * c_prev + i * g
    tc = np.tanh(c)
    h = o * tc
    return (h, c), (h_prev, c_prev, W_h, i, f, g, o, tc)


def lstm_gates_backward(dh, dc, cache):
    """Backward of `lstm_gates_forward`.

    Parameters
    ----------
    dh, dc : ndarray of shape (B, H)
        Gradients of the step's outputs h and c.

    Returns
    -------
    dh_prev, dc_prev : ndarrays of shape (B, H)
    da : ndarray of shape (B, 4H)
        Gradient of the pre-activations ``a`` (and so of ``ax``).
    """
    h_prev, c_prev, W_h, i, f, g, o, tc = cache
    do = dh * tc  # h = o ⊙ tanh(c)
    dc = dc + tanh_backward(dh * o, tc)  # c reaches the loss directly and through h
    di = dc * g  # c = f ⊙ c_prev + i ⊙ g
    dg = dc * i
    df = dc * c_prev
    dc_prev = dc * f  # the forget-gate path to c_prev
    da = np.concatenate(
        [sigmoid_backward(di, i),  # σ' = s (1 − s) from the output s
         sigmoid_backward(df, f),
         tanh_backward(dg, g),  # tanh' = 1 − g² from the output g
         sigmoid_backward(do, o)],
        axis=1,
    )  # (B, 4H), gates i, f, g, o
    dh_prev = da @ W_h.T  # a = ... + h_prev @ W_h
    return dh_prev, dc_prev, da


def lstm_weight_grads(x, da, h_prev):
    """``dW_x, dW_h, db`` from the rows of one step (B) or many (T·B)."""
    return x.T @ da, h_prev.T @ da, da.sum(axis=0)  # a = x @ W_x + h_prev @ W_h + b


def lstm_step_forward(x_t, h_prev, c_prev, W_x, W_h, b):
    """One time step of an LSTM.

    Parameters
    ----------
    x_t : ndarray of shape (B, D)
    h_prev, c_prev : ndarray of shape (B, H)
    W_x : ndarray of shape (D, 4H)
    W_h : ndarray of shape (H, 4H)
    b : ndarray of shape (4H,)

    Returns
    -------
    (h, c) : ndarrays of shape (B, H)
    cache : tuple
        ``(x_t, h_prev, c_prev, W_x, W_h, i, f, g, o, tc)``; pass it to
        `lstm_step_backward`.

    References
    ----------
    .. [1] S. Hochreiter and J. Schmidhuber, "Long Short-Term Memory", 1997.
    """
    ax = x_t @ W_x + b  # (B, D) @ (D, 4H)
    state, (_, _, _, *gates) = lstm_gates_forward(ax, h_prev, c_prev, W_h)
    return state, (x_t, h_prev, c_prev, W_x, W_h, *gates)


def lstm_step_backward(dh, dc, cache):
    """Backward of `lstm_step_forward`.

    Parameters
    ----------
    dh, dc : ndarray of shape (B, H)
        Gradients of the step's outputs h and c.

    Returns
    -------
    dx_t, dh_prev, dc_prev, dW_x, dW_h, db
        One gradient per array argument of the forward, same order/shapes.
    """
    x_t, h_prev, c_prev, W_x, W_h, *gates = cache
    dh_prev, dc_prev, da = lstm_gates_backward(dh, dc, (h_prev, c_prev, W_h, *gates))
    dx_t = da @ W_x.T  # a = x_t @ W_x + ...
    return (dx_t, dh_prev, dc_prev, *lstm_weight_grads(x_t, da, h_prev))


class LSTM(RecurrentLayer):
    """An LSTM over a batch of sequences.

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
    ``hs, (h_T, c_T) = lstm(x, state0=None, lengths=None)`` with
    ``state0 = (h0, c0)``; ``dx, (dh0, dc0) = lstm.backward(dhs,
    (dh_T, dc_T))``. Parameters ``W_x (D, 4H)``, ``W_h (H, 4H)``,
    ``b (4H,)``, gates i, f, g, o. One bias, where PyTorch has two that
    always appear summed (`tinyattn.interop` adds them). Variable lengths
    as in `tinyattn.RNN`: both h and c freeze after the last real token.
    """

    GATES = ("i", "f", "g", "o")
    X_PARAMS = ("W_x", "b")
    STATE = "state0"

    def __init__(self, input_size, hidden_size, *, rng, dtype=np.float64):
        super().__init__(input_size, hidden_size, rng=rng, dtype=dtype)
        D, H = self.input_size, self.hidden_size
        self.add_param("W_x", self._init(D, 4 * H))
        self.add_param("W_h", self._init(H, 4 * H))
        self.add_param("b", self._init(4 * H))

    def step(self, x_t, state_prev):
        """One step: ``(h, c), cache`` from ``x_t`` and ``(h_prev, c_prev)``
        (`lstm_step_forward`)."""
        h_prev, c_prev = state_prev
        p = self.params
        return lstm_step_forward(x_t, h_prev, c_prev, p["W_x"], p["W_h"], p["b"])

    def forward(self, x, state0=None, lengths=None):
        """Run the sequence: ``hs (B, T, H)`` and ``(h_T, c_T)``; ``state0 = (h0, c0)``."""
        return super().forward(x, state0, lengths)

    def backward(self, dhs, dstate_T=None):
        """Backpropagate through time: ``dx (B, T, D)`` and ``(dh0, dc0)``."""
        return super().backward(dhs, dstate_T)

    @staticmethod
    def _split_cache(cache):
        x_t, h_prev, c_prev, _, W_h, *gates = cache
        return x_t, (h_prev, c_prev, W_h, *gates)

    def _gates(self, ax_t, state):
        return lstm_gates_forward(ax_t, *state, self.params["W_h"])

    def _gates_backward(self, dstate, cache):
        dh_prev, dc_prev, da = lstm_gates_backward(*dstate, cache)
        return (dh_prev, dc_prev), da, (cache[0],)  # rows: h_prev

    def accumulate_grads(self, x, da, h_prev):
        """Add ``dW_x, dW_h, db`` for stacked rows (see `lstm_weight_grads`)."""
        for key, grad in zip(("W_x", "W_h", "b"), lstm_weight_grads(x, da, h_prev)):
            self.grads[key] += grad
