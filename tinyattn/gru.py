"""Gated recurrent unit, in both reset-gate forms: step functions, then
the sequence module.

Gates stacked along the last axis in PyTorch's order r, z, n
(EQUATIONS.md §1; Cho et al. 2014)::

    r = σ(x_t @ W_xr + b_xr + h_prev @ W_hr + b_hr)          reset gate
    z = σ(x_t @ W_xz + b_xz + h_prev @ W_hz + b_hz)          update gate
    n = tanh(x_t @ W_xn + b_xn + r ⊙ (h_prev @ W_hn + b_hn))  reset_after=True
    n = tanh(x_t @ W_xn + b_xn + (r ⊙ h_prev) @ W_hn + b_hn)  reset_after=False
    h = (1 − z) ⊙ n + z ⊙ h_prev

``reset_after=True`` is the cuDNN / PyTorch / Keras form: all three
recurrent products come from one (B, H) @ (H, 3H) product per step.
``reset_after=False`` is Cho et al.'s original: the reset gate scales
h_prev before its product, so n needs a second product per step.
"""

from __future__ import annotations

import numpy as np

from tinyattn._recurrent import DeferredGrads, RecurrentLayer
from tinyattn.functional import sigmoid


def gru_step_forward(x_t, h_prev, W_x, W_h, b_x, b_h, *, reset_after=True):
    """One time step of a GRU.

    Parameters
    ----------
    x_t : ndarray of shape (B, D)
    h_prev : ndarray of shape (B, H)
    W_x : ndarray of shape (D, 3H)
        Input weights of gates r, z, n.
    W_h : ndarray of shape (H, 3H)
        Recurrent weights of gates r, z, n.
    b_x, b_h : ndarray of shape (3H,)
    reset_after : bool
        Which form of the candidate n (see the module docstring).

    Returns
    -------
    h : ndarray of shape (B, H)
    cache : tuple
        Pass it to `gru_step_backward`.

    References
    ----------
    .. [1] K. Cho et al., "Learning Phrase Representations using RNN
       Encoder-Decoder for Statistical Machine Translation", 2014.
    """
    H = h_prev.shape[1]
    ax = x_t @ W_x + b_x  # (B, 3H): input part of every gate
    if reset_after:
        ah = h_prev @ W_h + b_h  # (B, 3H): recurrent part of every gate
        r = sigmoid(ax[:, :H] + ah[:, :H])
        z = sigmoid(ax[:, H:2 * H] + ah[:, H:2 * H])
        n = np.tanh(ax[:, 2 * H:] + r * ah[:, 2 * H:])
        hn_or_rh = ah[:, 2 * H:]  # backward needs h_prev @ W_hn + b_hn
    else:
        ah = h_prev @ W_h[:, :2 * H] + b_h[:2 * H]  # (B, 2H): r and z only
        r = sigmoid(ax[:, :H] + ah[:, :H])
        z = sigmoid(ax[:, H:2 * H] + ah[:, H:])
        rh = r * h_prev
        n = np.tanh(ax[:, 2 * H:] + rh @ W_h[:, 2 * H:] + b_h[2 * H:])
        hn_or_rh = rh  # backward needs r ⊙ h_prev
    h = (1.0 - z) * n + z * h_prev
    cache = (x_t, h_prev, W_x, W_h, r, z, n, hn_or_rh, reset_after)
    return h, cache


def gru_step_backward(dh, cache):
    """Backward of `gru_step_forward`.

    Returns
    -------
    dx_t, dh_prev, dW_x, dW_h, db_x, db_h
        One gradient per array argument of the forward, same order/shapes.
    """
    dx_t, dh_prev, dax, dah = gru_gates_backward(dh, cache)
    x_t, h_prev, W_x, W_h, r, z, n, hn_or_rh, reset_after = cache
    H = h_prev.shape[1]
    dW_x = x_t.T @ dax  # ax = x_t @ W_x + b_x
    db_x = dax.sum(axis=0)
    if reset_after:
        dW_h = h_prev.T @ dah  # ah = h_prev @ W_h + b_h
        db_h = dah.sum(axis=0)
    else:  # r, z read h_prev; n reads r ⊙ h_prev
        dW_h = np.concatenate([h_prev.T @ dax[:, :2 * H], hn_or_rh.T @ dax[:, 2 * H:]], axis=1)
        db_h = dax.sum(axis=0)
    return dx_t, dh_prev, dW_x, dW_h, db_x, db_h


def gru_gates_backward(dh, cache):
    """The first half of `gru_step_backward`: gradients of the inputs and of
    the gate pre-activations, from which the weight gradients follow.

    Returns
    -------
    dx_t : ndarray of shape (B, D)
    dh_prev : ndarray of shape (B, H)
    dax : ndarray of shape (B, 3H)
        Gradient of ``x_t @ W_x + b_x``.
    dah : ndarray of shape (B, 3H), or None when ``reset_after=False``
        Gradient of ``h_prev @ W_h + b_h`` (the Cho form's recurrent
        gradients are slices of ``dax``).
    """
    x_t, h_prev, W_x, W_h, r, z, n, hn_or_rh, reset_after = cache
    H = h_prev.shape[1]
    # h = (1 − z) n + z h_prev
    dn = dh * (1.0 - z)
    dz = dh * (h_prev - n)
    dh_prev = dh * z
    da_n = dn * (1.0 - n * n)  # tanh' from the output n
    da_z = dz * z * (1.0 - z)  # σ' from the output z
    if reset_after:
        ah_n = hn_or_rh
        dr = da_n * ah_n  # a_n = ... + r ⊙ ah_n
        da_r = dr * r * (1.0 - r)
        dax = np.concatenate([da_r, da_z, da_n], axis=1)  # (B, 3H)
        dah = np.concatenate([da_r, da_z, da_n * r], axis=1)  # (B, 3H)
        dh_prev += dah @ W_h.T
    else:
        drh = da_n @ W_h[:, 2 * H:].T  # a_n = ... + rh @ W_hn
        dr = drh * h_prev
        dh_prev += drh * r  # rh = r ⊙ h_prev
        da_r = dr * r * (1.0 - r)
        dax = np.concatenate([da_r, da_z, da_n], axis=1)  # (B, 3H)
        dh_prev += dax[:, :2 * H] @ W_h[:, :2 * H].T
        dah = None
    dx_t = dax @ W_x.T
    return dx_t, dh_prev, dax, dah


class GRU(RecurrentLayer):
    """A GRU over a batch of sequences.

    Parameters
    ----------
    input_size : int
        D.
    hidden_size : int
        H.
    reset_after : bool
        True (default): PyTorch/cuDNN form; False: Cho et al. 2014.
    rng : numpy.random.Generator
    dtype : np.float32 or np.float64

    Notes
    -----
    ``hs, h_T = gru(x, h0=None, lengths=None)``;
    ``dx, dh0 = gru.backward(dhs, dh_T=None)``. Parameters ``W_x (D, 3H)``,
    ``W_h (H, 3H)``, ``b_x (3H,)``, ``b_h (3H,)``, gates r, z, n. Variable
    lengths as in `tinyattn.RNN`.
    """

    GATES = ("r", "z", "n")

    def __init__(self, input_size, hidden_size, *, reset_after=True, rng,
                 dtype=np.float64):
        super().__init__(input_size, hidden_size, rng=rng, dtype=dtype)
        if not isinstance(reset_after, bool):
            raise TypeError(f"reset_after must be True or False, got {reset_after!r}")
        self.reset_after = reset_after
        D, H = self.input_size, self.hidden_size
        self.add_param("W_x", self._init(D, 3 * H))
        self.add_param("W_h", self._init(H, 3 * H))
        self.add_param("b_x", self._init(3 * H))
        self.add_param("b_h", self._init(3 * H))
        self._gate_scale = self._scale([True, True, False])  # (3H,)

    def __repr__(self) -> str:
        return super().__repr__()[:-1] + f", reset_after={self.reset_after})"

    def _weights(self):
        p = self.params
        return p["W_x"], p["W_h"], p["b_x"], p["b_h"]

    def step(self, x_t, h_prev):
        """One step with this layer's weights: ``h, cache``."""
        return gru_step_forward(x_t, h_prev, *self._weights(),
                                reset_after=self.reset_after)

    def step_backward(self, dh, cache, defer=None):
        """Backward of `step`; adds the weight gradients, returns ``dx_t, dh_prev``.

        With ``defer`` (a `DeferredGrads`), the weight-gradient products
        are added to it instead, to run as one product after the loop.
        """
        queue = DeferredGrads() if defer is None else defer
        dx_t, dh_prev, dax, dah = gru_gates_backward(dh, cache)
        x_t, h_prev, *_, hn_or_rh, reset_after = cache
        H = self.hidden_size
        queue.add(self, "W_x", dax, x_t)  # the products of gru_step_backward
        queue.add(self, "b_x", dax)
        if reset_after:
            queue.add(self, "W_h", dah, h_prev)
            queue.add(self, "b_h", dah)
        else:
            queue.add(self, "W_h", dax[:, :2 * H], h_prev, cols=(0, 2 * H))
            queue.add(self, "W_h", dax[:, 2 * H:], hn_or_rh, cols=(2 * H, 3 * H))
            queue.add(self, "b_h", dax)
        if defer is None:
            queue.flush()
        return dx_t, dh_prev

    def forward(self, x, h0=None, lengths=None):
        """Run the sequence; returns ``hs (B, T, H)`` and ``h_T (B, H)``."""
        xs, keep, lengths = self._prepare(x, lengths)
        T, B, _ = xs.shape
        H = self.hidden_size
        h0 = self._state(h0, "h0", B)
        W_x, W_h, b_x, b_h = self._weights()
        s = self._gate_scale
        # r, z pre-activations scaled by ½ so one tanh gives both sigmoids.
        gates = self._input_projection(xs, W_x * s, b_x * s)  # (T, B, 3H) -> r, z, n
        W_hs, b_hs = W_h * s, b_h * s
        hs = self._buf("hs", (T + 1, B, H))
        hs[0] = h0
        # reset_after: ah = h W_h + b_h for all gates; else r ⊙ h_prev.
        side = self._buf("side", (T, B, 3 * H if self.reset_after else H))
        diff = self._buf("diff", (B, H))
        for t in range(T):
            g, h_prev = gates[t], hs[t]
            rz, a_n = g[:, :2 * H], g[:, 2 * H:]
            if self.reset_after:
                ah = np.matmul(h_prev, W_hs, out=side[t])  # the one product per step
                ah += b_hs
                rz += ah[:, :2 * H]
            else:
                rz += h_prev @ W_hs[:, :2 * H]
                rz += b_hs[:2 * H]
            np.tanh(rz, out=rz)
            rz *= 0.5
            rz += 0.5  # now σ(a_r), σ(a_z)
            r, z = g[:, :H], g[:, H:2 * H]
            if self.reset_after:
                a_n += np.multiply(r, ah[:, 2 * H:], out=diff)
            else:
                rh = np.multiply(r, h_prev, out=side[t])
                a_n += rh @ W_h[:, 2 * H:]
                a_n += b_h[2 * H:]
            np.tanh(a_n, out=a_n)  # now n
            # h = n + z ⊙ (h_prev − n)
            np.subtract(h_prev, a_n, out=diff)
            diff *= z
            if keep is not None:  # frozen past the length
                diff += a_n
                diff -= h_prev
                diff *= keep[t]
                np.add(h_prev, diff, out=hs[t + 1])
            else:
                np.add(a_n, diff, out=hs[t + 1])
        self._cache = (xs, hs, gates, side, keep)
        return self._batch_first(hs[1:], keep), hs[T].copy()

    def backward(self, dhs, dh_T=None):
        """Backpropagate through time; returns ``dx (B, T, D)``, ``dh0 (B, H)``."""
        xs, hs, gates, side, keep = self._take_cache()
        T, B, D = xs.shape
        H = self.hidden_size
        dhs = self._upstream(dhs, (B, T, H))
        dh = self._state(dh_T, "dh_T", B).copy()
        W_x, W_h, _, _ = self._weights()
        dAx = self._buf("dAx", (T, B, 3 * H))  # gradients of the input pre-activations
        dAh = self._buf("dAh", (T, B, 3 * H)) if self.reset_after else dAx
        dhn = self._buf("dhn", (B, H))
        tmp = self._buf("tmp", (B, H))
        for t in reversed(range(T)):
            g, h_prev = gates[t], hs[t]
            r, z, n = g[:, :H], g[:, H:2 * H], g[:, 2 * H:]
            dax = dAx[t]
            da_r, da_z, da_n = dax[:, :H], dax[:, H:2 * H], dax[:, 2 * H:]
            if keep is None:
                dh += dhs[t]
                dhn[...] = dh
                dh.fill(0.0)  # dh now collects dL/dh_{t-1}
            else:
                dh += dhs[t] * keep[t]
                np.multiply(dh, keep[t], out=dhn)  # only real steps reach the cell
                dh -= dhn  # pads pass dh straight to h_{t-1}
            # h = (1 − z) n + z h_prev
            np.subtract(h_prev, n, out=da_z)
            da_z *= dhn  # dz = dh (h_prev − n)
            np.multiply(z, z, out=tmp)
            np.subtract(z, tmp, out=tmp)
            da_z *= tmp  # σ'(a_z) = z (1 − z)
            np.multiply(dhn, z, out=tmp)
            dh += tmp  # direct path h_prev -> h
            np.subtract(dhn, tmp, out=da_n)  # dn = dh (1 − z)
            np.multiply(n, n, out=tmp)
            np.subtract(1.0, tmp, out=tmp)
            da_n *= tmp  # tanh'(a_n) = 1 − n²
            if self.reset_after:
                np.multiply(da_n, side[t][:, 2 * H:], out=da_r)  # dr = da_n ⊙ ah_n
                dah = dAh[t]
                dah[:, 2 * H:] = da_n * r  # a_n = ... + r ⊙ ah_n
            else:
                drh = da_n @ W_h[:, 2 * H:].T  # a_n = ... + (r ⊙ h_prev) W_hn
                np.multiply(drh, h_prev, out=da_r)
                drh *= r
                dh += drh
            np.multiply(r, r, out=tmp)
            np.subtract(r, tmp, out=tmp)
            da_r *= tmp  # σ'(a_r) = r (1 − r)
            if self.reset_after:
                dah[:, :2 * H] = dax[:, :2 * H]
                dh += dah @ W_h.T  # one product for all three gates
            else:
                dh += dax[:, :2 * H] @ W_h[:, :2 * H].T
        # Weight gradients as one product over all steps.
        hp = hs[:-1].reshape(T * B, H)  # h_{t-1} for every step
        if self.reset_after:
            dah2 = dAh.reshape(T * B, 3 * H)
            self.grads["W_h"] += hp.T @ dah2
            self.grads["b_h"] += dah2.sum(axis=0)
        else:
            dax2 = dAx.reshape(T * B, 3 * H)
            self.grads["W_h"][:, :2 * H] += hp.T @ dax2[:, :2 * H]
            self.grads["W_h"][:, 2 * H:] += side.reshape(T * B, H).T @ dax2[:, 2 * H:]
            self.grads["b_h"] += dax2.sum(axis=0)
        dx = self._input_gradients(xs, dAx, W_x, "W_x", "b_x")
        return dx, dh
