"""What RNN, GRU and LSTM share: sizes, initialisation, input checks,
masks for variable lengths, reusable buffers and the weight gradients.

The sequence loops themselves live in each layer's own file.
"""

from __future__ import annotations

import numpy as np

from tinyattn._validate import check_array, check_lengths, check_rng, check_size
from tinyattn.module import Module


class RecurrentLayer(Module):
    """Base of the recurrent layers; not used directly.

    Subclasses set ``GATES`` (labels of the gate slices stacked along the
    last axis of the weight matrices, PyTorch's order) and implement
    ``forward``/``backward`` and ``step``/``step_backward``.
    """

    GATES: tuple[str, ...] = ()

    def __init__(self, input_size, hidden_size, *, rng, dtype=np.float64):
        super().__init__(dtype)
        self.input_size = check_size(input_size, "input_size")
        self.hidden_size = check_size(hidden_size, "hidden_size")
        self._rng = check_rng(rng)
        self._buffers: dict[str, np.ndarray] = {}

    def _init(self, *shape) -> np.ndarray:
        # U(−1/√H, 1/√H), PyTorch's initialisation for every recurrent
        # weight and bias, so default models behave alike in both.
        k = 1.0 / np.sqrt(self.hidden_size)
        return self._rng.uniform(-k, k, shape)

    def __repr__(self) -> str:
        dtype = np.dtype(self.dtype).name
        return f"{type(self).__name__}({self.input_size}, {self.hidden_size}, dtype={dtype})"

    # ----- buffers -------------------------------------------------------
    def _buf(self, name: str, shape) -> np.ndarray:
        """A work array reused across calls (no page faults every step).

        Only caches and internals point at buffers; every array returned
        to the caller is a fresh copy, so reuse never leaks out.
        """
        buf = self._buffers.get(name)
        if buf is None or buf.shape != tuple(shape):
            buf = self._buffers[name] = np.empty(shape, dtype=self.dtype)
        return buf

    # ----- input checks --------------------------------------------------
    def _prepare(self, x, lengths):
        """Check ``x (B, T, D)`` and ``lengths``; go time-major.

        Returns
        -------
        xs : ndarray of shape (T, B, D), contiguous
        keep : ndarray of shape (T, B, 1) of 1.0 / 0.0, or None
            1 where step t is a real token of sequence b; None when every
            sequence fills all T steps (the fast path, no masking).
        lengths : int ndarray of shape (B,) or None
        """
        check_array(x, "x", (None, None, self.input_size), self.dtype)
        B, T, _ = x.shape
        if B == 0 or T == 0:
            raise ValueError(f"x must have at least one sequence and one step, got shape {x.shape}")
        lengths = check_lengths(lengths, B, T)
        keep = None
        if lengths is not None and (lengths < T).any():
            # (T, 1) < (1, B) -> (T, B) -> (T, B, 1)
            keep = (np.arange(T)[:, None] < lengths[None, :]).astype(self.dtype)[..., None]
        xs = np.ascontiguousarray(x.transpose(1, 0, 2))  # (B, T, D) -> (T, B, D)
        return xs, keep, lengths

    def _state(self, h, name: str, batch: int) -> np.ndarray:
        """A (B, H) state: zeros for None, else checked."""
        if h is None:
            return np.zeros((batch, self.hidden_size), dtype=self.dtype)
        return check_array(h, name, (batch, self.hidden_size), self.dtype)

    def _upstream(self, dhs, shape) -> np.ndarray:
        """Check ``dhs (B, T, H)`` and return it time-major (a view)."""
        check_array(dhs, "dhs", shape, self.dtype)
        return dhs.transpose(1, 0, 2)  # (B, T, H) -> (T, B, H)

    @staticmethod
    def _batch_first(hs_tm, keep):
        """Outputs (T, B, H) -> (B, T, H), zero at pads, as a fresh array."""
        out = hs_tm.transpose(1, 0, 2)  # (T, B, H) -> (B, T, H)
        if keep is not None:
            return out * keep.transpose(1, 0, 2)  # (B, T, 1) broadcast, a copy
        return np.ascontiguousarray(out)

    def _scale(self, gates_sigmoid) -> np.ndarray:
        """0.5 on sigmoid gates, 1 on tanh gates, one entry per column (G·H,).

        σ(a) = (tanh(a/2) + 1) / 2, so scaling the pre-activations of the
        sigmoid gates by ½ (folded into scaled weight copies, free) lets one
        np.tanh call activate every gate of a step at once.
        """
        # In the layer's dtype: a float64 scale would silently turn every
        # float32 product into a mixed-precision one, twice as slow.
        per_gate = np.where(np.asarray(gates_sigmoid), 0.5, 1.0).astype(self.dtype)
        return per_gate.repeat(self.hidden_size)

    def _input_projection(self, xs, W_x, b):
        """All steps' input projections in one product: (T, B, G·H)."""
        T, B, D = xs.shape
        out = self._buf("proj", (T, B, W_x.shape[1]))
        # (T·B, D) @ (D, G·H) -> (T·B, G·H)
        np.matmul(xs.reshape(T * B, D), W_x, out=out.reshape(T * B, -1))
        out += b
        return out

    def _input_gradients(self, xs, dA, W_x, key_W="W_x", key_b=None):
        """Weight and input gradients of the input projection, one product each.

        ``dA (T, B, G·H)`` holds the pre-activation gradients of all steps;
        returns ``dx (B, T, D)``.
        """
        T, B, D = xs.shape
        dA2 = dA.reshape(T * B, -1)  # (T·B, G·H)
        self.grads[key_W] += xs.reshape(T * B, D).T @ dA2  # dW_x = X^T dA
        if key_b is not None:
            self.grads[key_b] += dA2.sum(axis=0)
        dx = dA2 @ W_x.T  # (T·B, G·H) @ (G·H, D) -> (T·B, D)
        # (T·B, D) -> (T, B, D) -> (B, T, D)
        return np.ascontiguousarray(dx.reshape(T, B, D).transpose(1, 0, 2))


class DeferredGrads:
    """Weight-gradient products postponed until after a step loop (DESIGN.md §4).

    A step's weight gradient is an outer product ``left.T @ right``
    (``dW_x = x_t.T @ da``) and a bias gradient is ``right.sum(axis=0)``.
    A decoder that steps a layer T times hands each step's factors to
    `add` and calls `flush` once after the loop: one product over T·B
    rows instead of T products over B rows, which BLAS runs several times
    faster. The sum is the same; only the rounding order differs.
    """

    def __init__(self):
        self._terms: dict = {}

    def add(self, module, name: str, right, left=None, *, rows=None, cols=None) -> None:
        """Queue ``module.grads[name][r0:r1, c0:c1] += left.T @ right``, or
        ``right.sum(0)`` when ``left`` is None; ``rows``/``cols`` are
        ``(start, stop)`` pairs, None for all."""
        key = (id(module), name, rows, cols)
        entry = self._terms.setdefault(key, (module, name, rows, cols, [], []))
        entry[4].append(left)
        entry[5].append(right)

    def flush(self) -> None:
        """Run every queued product once and add it to the gradients."""
        for module, name, rows, cols, lefts, rights in self._terms.values():
            grad = module.grads[name]
            if rows is not None:
                grad = grad[rows[0]:rows[1]]  # views: += writes through
            if cols is not None:
                grad = grad[..., cols[0]:cols[1]]
            right = np.concatenate(rights, axis=0)  # (T·B, ·)
            if lefts[0] is None:
                grad += right.sum(axis=0)
            else:
                grad += np.concatenate(lefts, axis=0).T @ right  # (·, T·B) @ (T·B, ·)
        self._terms.clear()
