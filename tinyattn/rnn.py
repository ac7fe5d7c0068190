"""Vanilla (Elman) RNN: its maths as pure functions, then the layer.

Row-vector maths, one example per row (docs/equations.md §1, document 003)::

    a_t = x_t @ W_xh + h_{t-1} @ W_hh + b_h        (B, H)
    h_t = tanh(a_t)

The step is split where the layer needs it: ``ax = x_t @ W_xh + b_h``
(the input projection, for all steps at once in the layer) and the gates
pair, which reads the previous state.
"""

from __future__ import annotations

import numpy as np

from tinyattn.functional import tanh_backward
from tinyattn.fused import FusedRNN
from tinyattn.recurrent import RecurrentLayer


def rnn_gates_forward(ax, h_prev, W_hh):
    """The RNN cell given its input projection ``ax = x_t @ W_xh + b_h (B, H)``.

    Returns ``h (B, H)`` and the cache ``(h_prev, W_hh, h)``.
    """
    h = np.tanh(ax + h_prev @ W_hh)  # (B, H) + (B, H) @ (H, H)
    return h, (h_prev, W_hh, h)


def rnn_gates_backward(dh, cache):
    """Backward of `rnn_gates_forward`: ``dh_prev (B, H)`` and ``da (B, H)``,
    the gradient of the pre-activation (and so of ``ax``)."""
    h_prev, W_hh, h = cache
    da = tanh_backward(dh, h)  # tanh'(a) = 1 − h²: reuse the output h
    dh_prev = da @ W_hh.T  # a = ... + h_prev @ W_hh
    return dh_prev, da


def rnn_weight_grads(x, da, h_prev):
    """``dW_xh, dW_hh, db_h`` from the rows of one step (B) or many (T·B).

    ``a = x @ W_xh + h_prev @ W_hh + b_h``, so each weight's gradient is
    its input transposed times ``da``, summed over the rows.
    """
    return x.T @ da, h_prev.T @ da, da.sum(axis=0)


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
        ``(x_t, h_prev, W_xh, W_hh, h)``; pass it to `rnn_step_backward`.

    Notes
    -----
    ::

        h = tanh(x_t @ W_xh + h_prev @ W_hh + b_h)

    References
    ----------
    .. [1] J. L. Elman, "Finding structure in time", 1990.
    """
    h, _ = rnn_gates_forward(x_t @ W_xh + b_h, h_prev, W_hh)  # (B, D) @ (D, H)
    return h, (x_t, h_prev, W_xh, W_hh, h)


def rnn_step_backward(dh, cache):
    """Backward of `rnn_step_forward`.

    Returns
    -------
    dx_t, dh_prev, dW_xh, dW_hh, db_h
        One gradient per array argument of the forward, same order/shapes.
    """
    x_t, h_prev, W_xh, W_hh, h = cache
    dh_prev, da = rnn_gates_backward(dh, (h_prev, W_hh, h))
    dx_t = da @ W_xh.T  # a = x_t @ W_xh + ...
    return (dx_t, dh_prev, *rnn_weight_grads(x_t, da, h_prev))


class RNN(FusedRNN, RecurrentLayer):
    """A vanilla tanh RNN over a batch of sequences.

    Parameters
    ----------
    input_size : int
        D.
    hidden_size : int
        H.
    rng : numpy.random.Generator
    dtype : np.float32 or np.float64
    fused : bool
        True (default): run the sequence with the in-place loop of
        `tinyattn.fused` (measured faster); False: the plain loop over
        the gates functions above. Both give the same numbers.

    Notes
    -----
    ``hs, h_T = rnn(x, h0=None, lengths=None)`` with ``x (B, T, D)``;
    ``dx, dh0 = rnn.backward(dhs, dh_T=None)``. With ``lengths``, a
    sequence's state is frozen after its last real token, its outputs
    there are 0 and no gradient flows through its pads (PyTorch's packed
    sequences). Parameters: ``W_xh (D, H)``, ``W_hh (H, H)``, ``b_h (H,)``.

    Examples
    --------
    >>> rnn = RNN(3, 4, rng=np.random.default_rng(0))
    >>> hs, h_T = rnn(np.ones((2, 5, 3)), lengths=[5, 2])
    >>> hs.shape, h_T.shape, bool((hs[1, 2:] == 0).all())
    ((2, 5, 4), (2, 4), True)
    """

    X_PARAMS = ("W_xh", "b_h")

    def __init__(self, input_size, hidden_size, *, rng, dtype=np.float64,
                 fused=True):
        super().__init__(input_size, hidden_size, rng=rng, dtype=dtype, fused=fused)
        D, H = self.input_size, self.hidden_size
        self.add_param("W_xh", self._init(D, H))
        self.add_param("W_hh", self._init(H, H))
        self.add_param("b_h", self._init(H))

    def step(self, x_t, h_prev):
        """One step with this layer's weights: ``h, cache`` (`rnn_step_forward`)."""
        p = self.params
        return rnn_step_forward(x_t, h_prev, p["W_xh"], p["W_hh"], p["b_h"])

    @staticmethod
    def _split_cache(cache):
        x_t, h_prev, _, W_hh, h = cache
        return x_t, (h_prev, W_hh, h)

    def _gates(self, ax_t, state):
        h, cache = rnn_gates_forward(ax_t, state[0], self.params["W_hh"])
        return (h,), cache

    def _gates_backward(self, dstate, cache):
        dh_prev, da = rnn_gates_backward(dstate[0], cache)
        return (dh_prev,), da, (cache[0],)  # rows: h_prev

    def accumulate_grads(self, x, da, h_prev):
        """Add ``dW_xh, dW_hh, db_h`` for stacked rows (see `rnn_weight_grads`)."""
        for key, grad in zip(("W_xh", "W_hh", "b_h"), rnn_weight_grads(x, da, h_prev)):
            self.grads[key] += grad
