"""Long short-term memory: step functions, then the sequence module.

Gates stacked along the last axis in PyTorch's order i, f, g, o
(EQUATIONS.md §1, document 003)::

    a = x_t @ W_x + h_prev @ W_h + b            (B, 4H), split into a_i a_f a_g a_o
    i = σ(a_i)   f = σ(a_f)   g = tanh(a_g)   o = σ(a_o)
    c = f ⊙ c_prev + i ⊙ g
    h = o ⊙ tanh(c)
"""

from __future__ import annotations

import numpy as np

from tinyattn._recurrent import DeferredGrads, RecurrentLayer
from tinyattn.functional import sigmoid


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
        Pass it to `lstm_step_backward`.

    References
    ----------
    .. [1] S. Hochreiter and J. Schmidhuber, "Long Short-Term Memory", 1997.
    """
    H = h_prev.shape[1]
    a = x_t @ W_x + h_prev @ W_h + b  # (B, 4H)
    i = sigmoid(a[:, :H])
    f = sigmoid(a[:, H:2 * H])
    g = np.tanh(a[:, 2 * H:3 * H])
    o = sigmoid(a[:, 3 * H:])
    c = f * c_prev + i * g
    tc = np.tanh(c)
    h = o * tc
    cache = (x_t, h_prev, c_prev, W_x, W_h, i, f, g, o, tc)
    return (h, c), cache


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
    dx_t, dh_prev, dc_prev, da = lstm_gates_backward(dh, dc, cache)
    x_t, h_prev = cache[:2]
    dW_x = x_t.T @ da  # a = x_t @ W_x + h_prev @ W_h + b
    dW_h = h_prev.T @ da
    db = da.sum(axis=0)
    return dx_t, dh_prev, dc_prev, dW_x, dW_h, db


def lstm_gates_backward(dh, dc, cache):
    """The first half of `lstm_step_backward`: gradients of the inputs and
    of the gate pre-activations, from which the weight gradients follow.

    Returns
    -------
    dx_t, dh_prev, dc_prev : ndarrays of shape (B, D), (B, H), (B, H)
    da : ndarray of shape (B, 4H)
        Gradient of the pre-activations ``a``.
    """
    x_t, h_prev, c_prev, W_x, W_h, i, f, g, o, tc = cache
    do = dh * tc  # h = o ⊙ tanh(c)
    dc = dc + dh * o * (1.0 - tc * tc)  # c reaches the loss directly and through h
    di = dc * g  # c = f ⊙ c_prev + i ⊙ g
    dg = dc * i
    df = dc * c_prev
    dc_prev = dc * f  # the forget-gate path to c_prev
    da = np.concatenate(
        [di * i * (1.0 - i),  # σ' from the output
         df * f * (1.0 - f),
         dg * (1.0 - g * g),  # tanh' from the output
         do * o * (1.0 - o)],
        axis=1,
    )  # (B, 4H)
    dx_t = da @ W_x.T
    dh_prev = da @ W_h.T
    return dx_t, dh_prev, dc_prev, da


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

    def __init__(self, input_size, hidden_size, *, rng, dtype=np.float64):
        super().__init__(input_size, hidden_size, rng=rng, dtype=dtype)
        D, H = self.input_size, self.hidden_size
        self.add_param("W_x", self._init(D, 4 * H))
        self.add_param("W_h", self._init(H, 4 * H))
        self.add_param("b", self._init(4 * H))
        self._gate_scale = self._scale([True, True, False, True])  # (4H,)

    def _weights(self):
        return self.params["W_x"], self.params["W_h"], self.params["b"]

    def _pair(self, state, name: str, batch: int):
        if state is None:
            state = (None, None)
        if not isinstance(state, tuple) or len(state) != 2:
            raise TypeError(f"{name} must be a tuple (h, c) or None, got {type(state).__name__}")
        h, c = state
        return self._state(h, f"{name}[0] (h)", batch), self._state(c, f"{name}[1] (c)", batch)

    def step(self, x_t, state_prev):
        """One step: ``(h, c), cache`` from ``x_t`` and ``(h_prev, c_prev)``."""
        h_prev, c_prev = state_prev
        return lstm_step_forward(x_t, h_prev, c_prev, *self._weights())

    def step_backward(self, dstate, cache, defer=None):
        """Backward of `step`: ``dx_t, (dh_prev, dc_prev)``; adds weight grads.

        With ``defer`` (a `DeferredGrads`), the weight-gradient products
        are added to it instead, to run as one product after the loop.
        """
        queue = DeferredGrads() if defer is None else defer
        dx_t, dh_prev, dc_prev, da = lstm_gates_backward(*dstate, cache)
        queue.add(self, "W_x", da, cache[0])  # the products of lstm_step_backward
        queue.add(self, "W_h", da, cache[1])
        queue.add(self, "b", da)
        if defer is None:
            queue.flush()
        return dx_t, (dh_prev, dc_prev)

    def forward(self, x, state0=None, lengths=None):
        """Run the sequence; returns ``hs (B, T, H)`` and ``(h_T, c_T)``."""
        xs, keep, lengths = self._prepare(x, lengths)
        T, B, _ = xs.shape
        H = self.hidden_size
        h0, c0 = self._pair(state0, "state0", B)
        W_x, W_h, b = self._weights()
        s = self._gate_scale
        # i, f, o pre-activations scaled by ½: one tanh then gives all gates.
        gates = self._input_projection(xs, W_x * s, b * s)  # (T, B, 4H)
        W_hs = W_h * s
        hs = self._buf("hs", (T + 1, B, H))
        cs = self._buf("cs", (T + 1, B, H))
        tcs = self._buf("tcs", (T, B, H))  # tanh(c_new), reused by backward
        hs[0], cs[0] = h0, c0
        rec = self._buf("rec", (B, 4 * H))
        c_new = self._buf("c_new", (B, H)) if keep is not None else None
        tmp = self._buf("tmp", (B, H))
        for t in range(T):
            a = gates[t]
            a += np.matmul(hs[t], W_hs, out=rec)  # the one product per step
            np.tanh(a, out=a)
            for sl in (slice(0, 2 * H), slice(3 * H, 4 * H)):  # i, f and o
                a[:, sl] *= 0.5
                a[:, sl] += 0.5  # σ(x) = (tanh(x/2) + 1) / 2
            i, f, g, o = a[:, :H], a[:, H:2 * H], a[:, 2 * H:3 * H], a[:, 3 * H:]
            c = cs[t + 1] if keep is None else c_new
            np.multiply(f, cs[t], out=c)
            c += np.multiply(i, g, out=tmp)  # c = f ⊙ c_prev + i ⊙ g
            np.tanh(c, out=tcs[t])
            if keep is None:
                np.multiply(o, tcs[t], out=hs[t + 1])  # h = o ⊙ tanh(c)
            else:  # frozen past the length: both h and c keep their value
                np.multiply(o, tcs[t], out=tmp)
                for new, old, out in ((tmp, hs[t], hs[t + 1]), (c, cs[t], cs[t + 1])):
                    np.subtract(new, old, out=out)
                    out *= keep[t]
                    out += old
        self._cache = (xs, hs, cs, tcs, gates, keep)
        return self._batch_first(hs[1:], keep), (hs[T].copy(), cs[T].copy())

    def backward(self, dhs, dstate_T=None):
        """Backpropagate through time: ``dx (B, T, D)``, ``(dh0, dc0)``."""
        xs, hs, cs, tcs, gates, keep = self._take_cache()
        T, B, D = xs.shape
        H = self.hidden_size
        dhs = self._upstream(dhs, (B, T, H))
        dh, dc = (s.copy() for s in self._pair(dstate_T, "dstate_T", B))
        W_x, W_h, _ = self._weights()
        dA = self._buf("dA", (T, B, 4 * H))
        dhn = self._buf("dhn", (B, H))
        dcn = self._buf("dcn", (B, H))
        tmp = self._buf("tmp", (B, H))
        for t in reversed(range(T)):
            a, da, tc = gates[t], dA[t], tcs[t]
            i, f, g, o = a[:, :H], a[:, H:2 * H], a[:, 2 * H:3 * H], a[:, 3 * H:]
            da_i, da_f, da_g, da_o = da[:, :H], da[:, H:2 * H], da[:, 2 * H:3 * H], da[:, 3 * H:]
            if keep is None:
                dh += dhs[t]
                dhn, dcn = dh, dc  # every step is real: no copies needed
            else:
                dh += dhs[t] * keep[t]
                np.multiply(dh, keep[t], out=dhn)  # only real steps reach the cell
                np.multiply(dc, keep[t], out=dcn)
                dh -= dhn  # pads pass the state's gradient straight through
                dc -= dcn
            # h = o ⊙ tanh(c)
            np.multiply(dhn, tc, out=da_o)  # do
            np.multiply(tc, tc, out=tmp)
            np.subtract(1.0, tmp, out=tmp)
            tmp *= o
            tmp *= dhn
            dcn += tmp  # dc += dh ⊙ o ⊙ (1 − tanh(c)²)
            np.multiply(dcn, g, out=da_i)  # di = dc ⊙ g
            np.multiply(dcn, cs[t], out=da_f)  # df = dc ⊙ c_prev
            np.multiply(dcn, i, out=da_g)  # dg = dc ⊙ i
            if keep is None:
                dcn *= f  # dc_prev = dc ⊙ f, the forget-gate path (dc is dcn)
            else:
                dc += dcn * f
            for dgate, gate in ((da_i, i), (da_f, f), (da_o, o)):
                np.multiply(gate, gate, out=tmp)
                np.subtract(gate, tmp, out=tmp)
                dgate *= tmp  # σ'(a) = s (1 − s) from the output s
            np.multiply(g, g, out=tmp)
            np.subtract(1.0, tmp, out=tmp)
            da_g *= tmp  # tanh'(a_g) = 1 − g²
            if keep is None:
                np.matmul(da, W_h.T, out=dh)  # dh_{t-1} = da W_h^T
            else:
                dh += da @ W_h.T
        dA2 = dA.reshape(T * B, 4 * H)
        self.grads["W_h"] += hs[:-1].reshape(T * B, H).T @ dA2  # one product, all steps
        dx = self._input_gradients(xs, dA, W_x, "W_x", "b")
        return dx, (dh, dc)
