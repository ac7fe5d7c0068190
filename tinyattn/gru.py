"""Gated recurrent unit, in both reset-gate forms: its maths as pure
functions, then the layer.

Gates stacked along the last axis in PyTorch's order r, z, n
(docs/equations.md §1; Cho et al. 2014)::

    ax = x_t @ W_x + b_x                                   (B, 3H): input part of r, z, n
    r = σ(ax_r + h_prev @ W_hr + b_hr)                     reset gate
    z = σ(ax_z + h_prev @ W_hz + b_hz)                     update gate
    n = tanh(ax_n + r ⊙ (h_prev @ W_hn + b_hn))            reset_after=True
    n = tanh(ax_n + (r ⊙ h_prev) @ W_hn + b_hn)            reset_after=False
    h = (1 − z) ⊙ n + z ⊙ h_prev

``reset_after=True`` is the cuDNN / PyTorch / Keras form: all three
recurrent products come from one (B, H) @ (H, 3H) product per step.
``reset_after=False`` is Cho et al.'s original: the reset gate scales
h_prev before its product, so n needs a second product per step.

In both forms the recurrent part of each gate is ``left @ W_h + b_h``
with ``left = h_prev``, except n in Cho's form where ``left = r ⊙ h_prev``.
The backward returns ``dah``, the gradient of that recurrent part, so one
`gru_weight_grads` serves both forms.
"""

from __future__ import annotations

import numpy as np

from tinyattn._validate import check_bool
from tinyattn.functional import sigmoid, sigmoid_backward, tanh_backward
from tinyattn.fused import FusedGRU
from tinyattn.recurrent import RecurrentLayer


def gru_gates_forward(ax, h_prev, W_h, b_h, *, reset_after=True):
    """The GRU cell given its input projection ``ax = x_t @ W_x + b_x (B, 3H)``.

    Returns ``h (B, H)`` and the cache ``(h_prev, W_h, r, z, n, hn_or_rh,
    reset_after)``: ``hn_or_rh`` is ``h_prev @ W_hn + b_hn`` when
    ``reset_after``, else ``r ⊙ h_prev``.
    """
    H = h_prev.shape[1]
    if reset_after:
        ah = h_prev @ W_h + b_h  # (B, H) @ (H, 3H): the one recurrent product
        rz = sigmoid(ax[:, :2 * H] + ah[:, :2 * H])  # r and z side by side, (B, 2H)
        r, z = rz[:, :H], rz[:, H:]
        hn_or_rh = ah[:, 2 * H:]  # h_prev @ W_hn + b_hn
        n = np.tanh(ax[:, 2 * H:] + r * hn_or_rh)
    else:
        ah = h_prev @ W_h[:, :2 * H] + b_h[:2 * H]  # (B, H) @ (H, 2H): r and z only
        rz = sigmoid(ax[:, :2 * H] + ah)
        r, z = rz[:, :H], rz[:, H:]
        hn_or_rh = r * h_prev
        n = np.tanh(ax[:, 2 * H:] + hn_or_rh @ W_h[:, 2 * H:] + b_h[2 * H:])
    h = (1.0 - z) * n + z * h_prev
    return h, (h_prev, W_h, r, z, n, hn_or_rh, reset_after)


def gru_gates_backward(dh, cache):
    """Backward of `gru_gates_forward`.

    Returns
    -------
    dh_prev : ndarray of shape (B, H)
    dax : ndarray of shape (B, 3H)
        Gradient of the input projection ``ax``.
    dah : ndarray of shape (B, 3H)
        Gradient of the recurrent parts ``left @ W_h + b_h`` (see the
        module docstring).
    """
    h_prev, W_h, r, z, n, hn_or_rh, reset_after = cache
    H = h_prev.shape[1]
    # h = (1 − z) ⊙ n + z ⊙ h_prev
    dn = dh * (1.0 - z)
    dz = dh * (h_prev - n)
    dh_prev = dh * z  # the direct path h_prev -> h
    da_n = tanh_backward(dn, n)  # tanh' = 1 − n²: reuse the output n
    da_z = sigmoid_backward(dz, z)  # σ' = z (1 − z): reuse the output z
    if reset_after:
        dr = da_n * hn_or_rh  # a_n = ax_n + r ⊙ (h_prev @ W_hn + b_hn)
        dah_n = da_n * r
    else:
        dah_n = da_n  # a_n = ax_n + (r ⊙ h_prev) @ W_hn + b_hn
        drh = da_n @ W_h[:, 2 * H:].T  # (B, H) @ (H, H)
        dr = drh * h_prev
        dh_prev += drh * r  # rh = r ⊙ h_prev
    da_r = sigmoid_backward(dr, r)  # σ' = r (1 − r)
    dax = np.concatenate([da_r, da_z, da_n], axis=1)  # (B, 3H), gates r, z, n
    dah = np.concatenate([da_r, da_z, dah_n], axis=1)  # (B, 3H)
    if reset_after:
        dh_prev += dah @ W_h.T  # one product for all three gates
    else:
        dh_prev += dah[:, :2 * H] @ W_h[:, :2 * H].T  # r and z read h_prev
    return dh_prev, dax, dah


def gru_weight_grads(x, dax, h_prev, hn_or_rh, dah, reset_after):
    """``dW_x, dW_h, db_x, db_h`` from the rows of one step (B) or many (T·B)."""
    H = h_prev.shape[1]
    if reset_after:
        dW_h = h_prev.T @ dah  # ah = h_prev @ W_h + b_h
    else:  # r, z read h_prev; n reads r ⊙ h_prev
        dW_h = np.concatenate([h_prev.T @ dah[:, :2 * H], hn_or_rh.T @ dah[:, 2 * H:]], axis=1)
    return x.T @ dax, dW_h, dax.sum(axis=0), dah.sum(axis=0)


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
        ``(x_t, h_prev, W_x, W_h, r, z, n, hn_or_rh, reset_after)``; pass
        it to `gru_step_backward`.

    References
    ----------
    .. [1] K. Cho et al., "Learning Phrase Representations using RNN
       Encoder-Decoder for Statistical Machine Translation", 2014.
    """
    ax = x_t @ W_x + b_x  # (B, D) @ (D, 3H): input part of every gate
    h, (_, _, *gates) = gru_gates_forward(ax, h_prev, W_h, b_h, reset_after=reset_after)
    return h, (x_t, h_prev, W_x, W_h, *gates)


def gru_step_backward(dh, cache):
    """Backward of `gru_step_forward`.

    Returns
    -------
    dx_t, dh_prev, dW_x, dW_h, db_x, db_h
        One gradient per array argument of the forward, same order/shapes.
    """
    x_t, h_prev, W_x, W_h, r, z, n, hn_or_rh, reset_after = cache
    dh_prev, dax, dah = gru_gates_backward(dh, (h_prev, W_h, r, z, n, hn_or_rh, reset_after))
    dx_t = dax @ W_x.T  # ax = x_t @ W_x + b_x
    dW_x, dW_h, db_x, db_h = gru_weight_grads(x_t, dax, h_prev, hn_or_rh, dah, reset_after)
    return dx_t, dh_prev, dW_x, dW_h, db_x, db_h


class GRU(FusedGRU, RecurrentLayer):
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
    fused : bool
        True (default): run the sequence with the in-place loop of
        `tinyattn.fused` (measured faster); False: the plain loop over
        the gates functions above. Both give the same numbers.

    Notes
    -----
    ``hs, h_T = gru(x, h0=None, lengths=None)``;
    ``dx, dh0 = gru.backward(dhs, dh_T=None)``. Parameters ``W_x (D, 3H)``,
    ``W_h (H, 3H)``, ``b_x (3H,)``, ``b_h (3H,)``, gates r, z, n. Variable
    lengths as in `tinyattn.RNN`.
    """

    GATES = ("r", "z", "n")

    def __init__(self, input_size, hidden_size, *, reset_after=True, rng, dtype=np.float64,
                 fused=True):
        super().__init__(input_size, hidden_size, rng=rng, dtype=dtype, fused=fused)
        self.reset_after = check_bool(reset_after, "reset_after")
        D, H = self.input_size, self.hidden_size
        self.add_param("W_x", self._init(D, 3 * H))
        self.add_param("W_h", self._init(H, 3 * H))
        self.add_param("b_x", self._init(3 * H))
        self.add_param("b_h", self._init(3 * H))

    def __repr__(self) -> str:
        return super().__repr__()[:-1] + f", reset_after={self.reset_after})"

    def step(self, x_t, h_prev):
        """One step with this layer's weights: ``h, cache`` (`gru_step_forward`)."""
        p = self.params
        return gru_step_forward(x_t, h_prev, p["W_x"], p["W_h"], p["b_x"], p["b_h"],
                                reset_after=self.reset_after)

    @staticmethod
    def _split_cache(cache):
        x_t, h_prev, _, W_h, *gates = cache
        return x_t, (h_prev, W_h, *gates)

    def _gates(self, ax_t, state):
        h, cache = gru_gates_forward(ax_t, state[0], self.params["W_h"], self.params["b_h"],
                                     reset_after=self.reset_after)
        return (h,), cache

    def _gates_backward(self, dstate, cache):
        dh_prev, dax, dah = gru_gates_backward(dstate[0], cache)
        h_prev, hn_or_rh = cache[0], cache[5]
        return (dh_prev,), dax, (h_prev, None if self.reset_after else hn_or_rh, dah)

    def accumulate_grads(self, x, dax, h_prev, rh, dah):
        """Add ``dW_x, dW_h, db_x, db_h`` for stacked rows (see `gru_weight_grads`)."""
        grads = gru_weight_grads(x, dax, h_prev, rh, dah, self.reset_after)
        for key, grad in zip(("W_x", "W_h", "b_x", "b_h"), grads):
            self.grads[key] += grad
