"""Optimisers (SGD, Adam) and global gradient-norm clipping; the lr schedules
that drive an optimiser's ``lr`` are in `tinyattn.training.schedules`.

Optimisers update each ``value`` of `Module.named_parameters` in place and keep
their state by dotted parameter name, in the parameter's dtype.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from tinyattn._validate import (
    NonFiniteError,
    _show,
    as_list,
    check_real,
    non_finite,
)
from tinyattn.module import Module

_INTERVALS = {"lr": "(0, inf)", "eps": "(0, inf)", "max_norm": "(0, inf]", "gamma": "(0, 1]",
              **dict.fromkeys(["momentum", "beta1", "beta2"], "[0, 1)"), "weight_decay": "[0, inf)"}


def _number(name, value, interval=None) -> float:
    """``value`` as a float in ``interval`` (``"(0, 1]"``...); else a ValueError naming it."""
    return check_real(value, name, interval or _INTERVALS[name])


def _param_list(params, name: str) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """Check and listify a Module or an iterable of ``(name, value, grad)``."""
    out = list(params.named_parameters()) if isinstance(params, Module) else as_list(
        params, name, "a Module or an iterable of (name, value, grad) triples "
                      "(model.named_parameters())")
    for item in out:
        ok = isinstance(item, tuple) and len(item) == 3 and isinstance(item[0], str) and all(
            isinstance(a, np.ndarray) and a.dtype in (np.float32, np.float64) for a in item[1:])
        if not ok or item[1].shape != item[2].shape or item[1].dtype != item[2].dtype:
            raise TypeError(f"{name} must yield (name, value, grad) triples of a str and two float "
                            f"ndarrays of one shape and dtype, got {item!r:.100}")
    if len({n for n, _, _ in out}) != len(out):
        raise ValueError(f"{name}: parameter names must be unique, got {[n for n, _, _ in out]}")
    return out


class _Optimizer:
    """Shared bookkeeping: parameter list, ``lr``, zero_grad, state dicts."""

    def __init__(self, params, slots: tuple[str, ...], **hyper):
        self._params = _param_list(params, "params")
        if not self._params:
            raise ValueError("params is empty: the optimiser has nothing to update")
        self._set_hyper(hyper)
        self._hyper = tuple(hyper)  # hyper-parameter names, saved by state_dict
        self.t = 0  # number of step() calls so far
        self.state = {s: {n: np.zeros_like(v) for n, v, _ in self._params} for s in slots}

    lr = property(lambda self: self._lr, lambda self, v: setattr(self, "_lr", _number("lr", v)),
                  doc="Learning rate, > 0 (checked on assignment); schedules change it.")

    def _set_hyper(self, hyper) -> None:
        checked = {k: _number(k, v) for k, v in hyper.items()}  # all checked before any is set
        for key, value in checked.items():
            setattr(self, key, value)

    def zero_grad(self) -> None:
        """Set every gradient this optimiser reads to zero."""
        for _, _, grad in self._params:
            grad.fill(0.0)

    def _check_grads(self) -> None:
        """Before any parameter moves: every gradient must be finite."""
        bad = non_finite((name, grad) for name, _, grad in self._params)
        if bad:
            raise NonFiniteError(
                f"the gradient of {', '.join(map(repr, bad))} contains NaN or inf; "
                f"{type(self).__name__}.step() updated no parameter")

    def state_dict(self) -> dict[str, np.ndarray]:
        """A flat ``str -> ndarray`` copy for `np.savez`: ``"optimizer"`` (class name), ``"t"``,
        each hyper-parameter (``"lr"``, ...) and buffers as ``"m/enc.W_x"`` (slot/name)."""
        d = {"optimizer": np.array(type(self).__name__), "t": np.array(self.t, dtype=np.int64)}
        d.update({h: np.array(getattr(self, h), dtype=np.float64) for h in self._hyper})
        for slot, bufs in self.state.items():
            d.update({f"{slot}/{n}": b.copy() for n, b in bufs.items()})
        return d

    def load_state_dict(self, state) -> None:
        """Restore a `state_dict`; on any mismatch raise ValueError and change nothing.

        ``state`` is a mapping as `state_dict` returns it (or an ``np.load`` of
        one). A key that is missing, unknown, of the wrong shape or dtype, or a
        buffer holding NaN or inf (or, for Adam's ``v``, a negative value) is a
        ValueError naming the key.
        """
        if not isinstance(state, Mapping):
            raise TypeError(f"state must be a mapping from str to ndarray (a state_dict()), "
                            f"got {type(state).__name__}")
        expected, kind = self.state_dict(), str(np.asarray(state.get("optimizer", "?")))
        if kind != type(self).__name__:
            raise ValueError(f"state is the state_dict of optimizer {kind!r}, not of "
                             f"{type(self).__name__!r}")
        missing, unknown = sorted(set(expected) - set(state)), sorted(set(state) - set(expected))
        problems = [f"{what} keys {keys}" for what, keys in (("missing", missing),
                                                             ("unknown", unknown)) if keys]
        for key in sorted(set(expected) & set(state)):  # buffers must keep the param's dtype
            ref, got = expected[key], np.asarray(state[key])
            if got.shape != ref.shape or ("/" in key and got.dtype != ref.dtype) or (
                    key == "t" and (got.dtype.kind not in "iu" or got < 0)):
                problems.append(f"{key}: expected shape {ref.shape} and dtype {ref.dtype}, got "
                                f"shape {got.shape} and dtype {got.dtype}"
                                + (f" (value {_show(got.item())})" if got.ndim == 0 else ""))
            elif "/" in key and not np.isfinite(got).all():
                problems.append(f"{key}: contains NaN or inf")
            elif key.startswith("v/") and (got < 0).any():  # Adam's second moment
                problems.append(f"{key}: holds a negative value (a second moment is >= 0)")
        if problems:
            raise ValueError("state (a state_dict) does not match this optimiser: "
                             + "; ".join(problems))
        try:
            self._set_hyper({h: np.asarray(state[h]).item() for h in self._hyper})
        except ValueError as err:
            raise ValueError(f"state (a state_dict) does not match this optimiser: {err}") \
                from None
        self.t = int(state["t"])
        for slot, bufs in self.state.items():
            for n, buf in bufs.items():
                np.copyto(buf, state[f"{slot}/{n}"])


class SGD(_Optimizer):
    """Stochastic gradient descent with optional momentum and weight decay.

    Parameters
    ----------
    params : iterable of (str, ndarray, ndarray), or Module
        ``model.named_parameters()``; the list is kept.
    lr : float, > 0
    momentum : float in [0, 1)
        0 is plain SGD and keeps no buffers.
    weight_decay : float, >= 0

    Notes
    -----
    Per parameter ``w`` with gradient ``g`` (PyTorch's convention)::

        g = g + weight_decay * w
        b = momentum * b + g     # b starts at 0; only when momentum > 0
        w = w - lr * b           # w - lr * g when momentum == 0
    """

    def __init__(self, params, lr, *, momentum=0.0, weight_decay=0.0):
        slots = ("momentum_buffer",) if _number("momentum", momentum) > 0 else ()
        super().__init__(params, slots, lr=lr, momentum=momentum, weight_decay=weight_decay)

    def step(self) -> None:
        """Update every parameter in place from its current gradient.

        A NaN or inf gradient raises `tinyattn.NonFiniteError` (a ValueError)
        naming the parameter, before any parameter changes.
        """
        self._check_grads()
        bufs = self.state.get("momentum_buffer")
        for name, value, grad in self._params:
            g = grad + self.weight_decay * value if self.weight_decay else grad  # grad untouched
            if bufs is not None:
                g = bufs[name] * self.momentum + g  # b = mu * b + g, in the parameter's dtype
                bufs[name][...] = g
            value -= self.lr * g
        self.t += 1


class Adam(_Optimizer):
    """Adam: per-coordinate steps scaled by running moments of the gradient.

    Parameters
    ----------
    params : iterable of (str, ndarray, ndarray), or Module
    lr : float, > 0
    betas : (float, float), each in [0, 1)
    eps : float, > 0
    weight_decay : float, >= 0

    Notes
    -----
    Kingma & Ba, "Adam: A Method for Stochastic Optimization", ICLR 2015
    (arXiv:1412.6980), Algorithm 1. At step ``t = 1, 2, ...`` from ``m = v = 0``::

        g = g + weight_decay * w      # L2, as PyTorch's Adam (not AdamW)
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g**2
        m_hat = m / (1 - beta1**t)
        v_hat = v / (1 - beta2**t)
        w = w - lr * m_hat / (sqrt(v_hat) + eps)
    """

    def __init__(self, params, lr=1e-3, *, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        if not (isinstance(betas, (tuple, list)) and len(betas) == 2):
            raise ValueError(f"betas must be a pair (beta1, beta2), got {betas!r}")
        for i, beta in enumerate(betas):
            _number(f"betas[{i}]", beta, "[0, 1)")
        super().__init__(params, ("m", "v"), lr=lr, beta1=betas[0], beta2=betas[1], eps=eps,
                         weight_decay=weight_decay)

    def step(self) -> None:
        """Update every parameter in place from its current gradient.

        A NaN or inf gradient raises `tinyattn.NonFiniteError` (a ValueError)
        naming the parameter, before any parameter or moment changes.
        """
        self._check_grads()
        self.t += 1
        b1, b2, eps = self.beta1, self.beta2, self.eps
        c1, c2 = 1.0 - b1**self.t, 1.0 - b2**self.t  # bias corrections, Python floats
        step, a1, a2 = self.lr / c1, 1.0 - b1, 1.0 - b2  # once, not per piece
        for name, value, grad in self._params:
            m_all, v_all = self.state["m"][name], self.state["v"][name]
            s1 = s2 = None  # scratch of the first (largest) piece's size, reused
            # The update of the docstring, piece by piece with in-place operations: the same
            # numbers (each operation as there, in the same order, in the parameter's dtype),
            # but the temporaries stay in the cache instead of being allocated at the size
            # of an embedding or output matrix twelve times a step (tests/test_optim.py).
            for w, g, m, v in _pieces(value, grad, m_all, v_all):
                if self.weight_decay:
                    g = g + self.weight_decay * w  # grad untouched
                if s1 is None:
                    s1, s2 = np.empty(w.size, w.dtype), np.empty(w.size, w.dtype)
                t1, t2 = s1[:w.size].reshape(w.shape), s2[:w.size].reshape(w.shape)
                m *= b1                                    # m = b1 m + (1 − b1) g
                m += np.multiply(g, a1, out=t1)
                v *= b2                                    # v = b2 v + (1 − b2) g²
                np.multiply(g, g, out=t1)
                v += np.multiply(t1, a2, out=t1)
                np.divide(v, c2, out=t1)                   # sqrt(v / c2) + eps
                np.sqrt(t1, out=t1)
                t1 += eps
                np.multiply(m, step, out=t2)               # (lr / c1) m / (...)
                w -= np.divide(t2, t1, out=t2)


_CHUNK = 1 << 15  # elements per piece: 128 KB in float32, so a piece's temporaries stay in L2


def _pieces(*arrays, size=_CHUNK):
    """Matching views of same-shape ``arrays``, at most ``size`` elements each (all of
    each array at once when one of them is not C-contiguous, where a flat view would be
    a copy)."""
    if not all(a.flags.c_contiguous for a in arrays):
        yield arrays
        return
    flat = [a.reshape(-1) for a in arrays]
    for i in range(0, flat[0].size, size):
        yield tuple(f[i:i + size] for f in flat)


def clip_grad_norm(model_or_params, max_norm) -> float:
    """Scale all gradients in place so their global L2 norm is at most ``max_norm``.

    Parameters
    ----------
    model_or_params : Module or iterable of (str, ndarray, ndarray)
    max_norm : float, > 0; ``np.inf`` measures the norm and clips nothing

    Returns
    -------
    float
        The global norm ``sqrt(sum_p ||g_p||^2)`` *before* clipping.

    Notes
    -----
    If ``norm > max_norm`` every gradient is multiplied by ``max_norm / norm``,
    one factor for all so the direction is kept (Pascanu et al., 2013). A NaN or
    inf gradient raises `tinyattn.NonFiniteError` (a ValueError) naming every
    parameter whose gradient is not finite, and changes nothing. Finite gradients
    whose squares overflow float64 are measured scaled down, so their norm is
    still exact. float32 gradients are squared and summed in float32, a piece of
    4,096 at a time with the pieces added in float64 (within about 1e-9 of the
    float64 sum, without a float64 copy of every gradient at every step).
    """
    params = _param_list(model_or_params, "model_or_params")
    max_norm = _number("max_norm", max_norm)
    with np.errstate(over="ignore", invalid="ignore"):  # checked just below
        total = 0.0
        for _, _, grad in params:
            total += _sum_of_squares(grad)
    norm = math.sqrt(total)
    if not math.isfinite(norm):
        bad = non_finite((n, g) for n, _, g in params)
        if bad:
            raise NonFiniteError(f"gradient norm is {norm}: the gradient of "
                                 f"{', '.join(map(repr, bad))} contains NaN or inf; "
                                 f"no gradient was clipped")
        norm = _scaled_norm(params)
    if norm > max_norm:
        scale = max_norm / norm
        for _, _, grad in params:
            grad *= scale
    return norm


def _sum_of_squares(grad) -> float:
    """``Σ g²`` as a Python float (inf or NaN when ``grad`` holds inf or NaN).

    float64: one dot product. float32: one float32 dot product per piece of 4,096
    elements, the pieces' sums added in float64 (about 1e-9 relative to the float64
    sum, without converting the whole array); a piece whose float32 sum overflows
    (|g| above ~1e17) is summed again in float64.
    """
    if grad.dtype == np.float64:
        g = grad.ravel()
        return float(g @ g)
    total = 0.0
    for (piece,) in _pieces(grad, size=4096):
        g = piece.ravel()
        s = float(g @ g)
        if math.isinf(s):
            g = g.astype(np.float64)
            s = float(g @ g)
        total += s
    return total


def _scaled_norm(params) -> float:
    """The global norm of finite gradients whose sum of squares overflows float64:
    ``m · sqrt(Σ ||g / m||²)`` with m the largest ``|g|``."""
    m = max(float(np.abs(g).max(initial=0.0)) for _, _, g in params)
    total = 0.0
    for _, _, grad in params:
        g = grad.astype(np.float64).ravel() / m
        total += float(g @ g)
    norm = m * math.sqrt(total)
    if not math.isfinite(norm):
        raise NonFiniteError("gradient norm overflows float64 (every gradient is finite, "
                             "their norm is not); no gradient was clipped")
    return norm
