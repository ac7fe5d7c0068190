"""What RNN, GRU and LSTM share: the time loop, variable lengths, input
checks, and the queue that runs weight-gradient products after a loop.

Each cell's maths lives once, in its own file, as two pure pairs:

- ``*_gates_forward(ax, state_prev, ...)`` / ``*_gates_backward(dstate, cache)``:
  the cell given its input projection ``ax = x_t @ W_x + b`` (everything
  that reads the previous state);
- ``*_step_forward`` / ``*_step_backward``: one whole step, the pair the
  lessons and exercises use (the gates pair plus the input projection).

`RecurrentLayer.forward` runs the gates pair in a plain loop over time,
with the input projection of every step as one product before the loop
and the weight gradients as one product after it (docs/equations.md §1;
lesson 12 shows why that recipe is the fast one).
"""

from __future__ import annotations

import numpy as np

from tinyattn._validate import check_array, check_bool, check_dim, check_lengths, check_rng
from tinyattn.module import Module


class StackState(tuple):
    """The state of a stack of recurrent layers (`tinyattn.stacked.StackedRNN`):
    one state per layer, bottom layer first.

    Each layer's state is what that layer's own state is: ``h (B, H)`` for
    an RNN or GRU, the pair ``(h, c)`` for an LSTM. A plain tuple already
    means an LSTM's pair, so a stack's state is this tuple subclass, and
    `hidden`, `add_hidden` and `zeros_like_state` tell the two apart by
    type, never by length. Functions that rebuild a state must keep the
    type (``type(state)(parts)``), as beam search's row selection does.

    Examples
    --------
    >>> h = np.zeros((2, 3)); top = (np.ones((2, 3)), np.zeros((2, 3)))
    >>> state = StackState([(h, h), top])  # two LSTM layers
    >>> hidden(state) is top[0]  # the top layer's h
    True
    """

    __slots__ = ()

    def __repr__(self) -> str:
        return f"StackState({tuple.__repr__(self)})"


def hidden(state):
    """The h that a decoder reads of a state: the state itself (RNN, GRU), the
    h of an LSTM's ``(h, c)``, the top layer's h of a `StackState`."""
    if isinstance(state, StackState):
        return hidden(state[-1])
    return state[0] if isinstance(state, tuple) else state


def add_hidden(dstate, dh):
    """``dstate`` with ``dh`` added to the part `hidden` reads (a new object;
    for a `StackState`, the top layer's h)."""
    if isinstance(dstate, StackState):
        return StackState((*dstate[:-1], add_hidden(dstate[-1], dh)))
    if isinstance(dstate, tuple):
        return (dstate[0] + dh, dstate[1])
    return dstate + dh


def zeros_like_state(state):
    """Zeros shaped like a state: an array, a pair of arrays, or a `StackState`."""
    if isinstance(state, StackState):
        return StackState(zeros_like_state(s) for s in state)
    if isinstance(state, tuple):
        return tuple(np.zeros_like(s) for s in state)
    return np.zeros_like(state)


class DeferredGrads:
    """Gradient products postponed until after a step loop.

    A weight's gradient over T steps is a sum of per-step products
    (``dW_x = Σ_t x_t.T @ dax_t``). Summed after the loop as one product
    over the stacked T·B rows (``X.T @ dAx``), it runs several times faster
    on BLAS than T products over B rows; the sum is the same, only the
    rounding order differs.

    ``add(accumulate, *rows)`` queues a call; ``flush()`` concatenates
    each argument of the queued calls of one ``accumulate`` along axis 0
    (None stays None) and calls it once. ``accumulate`` adds into a
    module's ``grads`` and is usually a bound method, e.g. a recurrent
    layer's ``accumulate_grads(x, h_prev, ..., dax, dah)``.

    Examples
    --------
    >>> grads = {"W": np.zeros((2, 3))}
    >>> def add_W(x, dy):
    ...     grads["W"] += x.T @ dy  # (2, N) @ (N, 3)
    >>> queue = DeferredGrads()
    >>> for t in range(4):  # four steps of one row each
    ...     queue.add(add_W, np.ones((1, 2)), np.ones((1, 3)))
    >>> queue.flush(); grads["W"]
    array([[4., 4., 4.],
           [4., 4., 4.]])
    """

    def __init__(self):
        self._calls: dict = {}  # accumulate -> list of argument tuples

    def add(self, accumulate, *rows) -> None:
        """Queue ``accumulate(*rows)``; rows are stacked with other steps' on flush."""
        self._calls.setdefault(accumulate, []).append(rows)

    def flush(self) -> None:
        """Run every queued ``accumulate`` once, over all queued rows."""
        for accumulate, calls in self._calls.items():
            stacked = [None if parts[0] is None else np.concatenate(parts, axis=0)
                       for parts in zip(*calls)]  # each argument: (T·B, ·)
            accumulate(*stacked)
        self._calls.clear()


class RecurrentLayer(Module):
    """Base of RNN, GRU and LSTM: the sequence loop over a cell's gates pair.

    A subclass sets ``GATES`` (labels of the gate blocks stacked along the
    last axis of its weights, PyTorch's order), ``X_PARAMS`` (the names of
    its input weight and bias) and ``STATE`` (``"h0"``, or ``"state0"``
    for a state pair), and implements

    - ``_gates(ax_t, state)``: ``(new_state, cache)`` from the step's input
      projection and the previous state (a tuple: ``(h,)`` or ``(h, c)``);
    - ``_gates_backward(dstate, cache)``: ``(dstate_prev, dax, rows)``, with
      ``rows`` the arguments of ``accumulate_grads`` except x and dax;
    - ``accumulate_grads(x, dax, *rows)``: add the weight gradients for
      any number of stacked rows (one step, or all T·B at once);
    - ``step`` (the cell's ``*_step_forward``) and ``_split_cache``, which
      splits that function's cache into ``x_t`` and the gates cache;
    - optionally ``_fused_forward``/``_fused_backward`` (`tinyattn.fused`):
      the same loop in place, used when ``fused=True`` (RNN and GRU).
    """

    GATES: tuple[str, ...] = ()
    X_PARAMS: tuple[str, str] = ("W_x", "b_x")
    STATE = "h0"

    def __init__(self, input_size, hidden_size, *, rng, dtype=np.float64, fused=False):
        super().__init__(dtype)
        self.input_size = check_dim(input_size, "input_size")
        self.hidden_size = check_dim(hidden_size, "hidden_size")
        self._rng = check_rng(rng)
        self.fused = check_bool(fused, "fused")  # only RNN and GRU have one (tinyattn.fused)

    def _init(self, *shape) -> np.ndarray:
        # U(−1/√H, 1/√H), PyTorch's initialisation for every recurrent
        # weight and bias, so default models behave alike in both.
        k = 1.0 / np.sqrt(self.hidden_size)
        return self._rng.uniform(-k, k, shape)

    def __repr__(self) -> str:
        dtype = np.dtype(self.dtype).name
        return f"{type(self).__name__}({self.input_size}, {self.hidden_size}, dtype={dtype})"

    # ----- states: (B, H), or a pair (h, c) for an LSTM --------------------
    def _state_in(self, state, name: str, batch: int) -> tuple:
        """A public state (None for zeros) as a checked tuple ``(h,)`` or ``(h, c)``."""
        if self.STATE == "h0":
            return (self._state(state, name, batch),)
        if state is None:
            state = (None, None)
        if not isinstance(state, tuple) or len(state) != 2:
            raise TypeError(f"{name} must be a tuple (h, c) or None, got {type(state).__name__}")
        h, c = state
        return self._state(h, f"{name}[0] (h)", batch), self._state(c, f"{name}[1] (c)", batch)

    def _state_out(self, state: tuple):
        """The internal tuple as the public state: ``h``, or ``(h, c)``."""
        return state[0] if self.STATE == "h0" else tuple(state)

    def _state(self, h, name: str, batch: int) -> np.ndarray:
        """A (B, H) array: zeros for None, else checked."""
        if h is None:
            return np.zeros((batch, self.hidden_size), dtype=self.dtype)
        return check_array(h, name, (batch, self.hidden_size), self.dtype)

    # ----- one step, for decoders ------------------------------------------
    def step(self, x_t, state_prev):
        """One step with this layer's weights: ``(state, cache)``, the cell's
        ``*_step_forward`` (its cache is that function's).

        ``state_prev`` and the returned state are ``h (B, H)``, or ``(h, c)``
        for an LSTM.
        """
        raise NotImplementedError

    def step_backward(self, dstate, cache, defer=None):
        """Backward of `step`: ``dx_t, dstate_prev``; adds the weight gradients.

        With ``defer`` (a `DeferredGrads`) the weight-gradient products are
        queued there instead, to run as one product after the decoder's loop.
        """
        x_t, gates_cache = self._split_cache(cache)
        dstate_prev, dax, rows = self._gates_backward(self._as_tuple(dstate), gates_cache)
        if defer is None:
            self.accumulate_grads(x_t, dax, *rows)
        else:
            defer.add(self.accumulate_grads, x_t, dax, *rows)
        dx_t = dax @ self.params[self.X_PARAMS[0]].T  # ax = x_t @ W_x + b
        return dx_t, self._state_out(dstate_prev)

    def _as_tuple(self, state) -> tuple:
        return (state,) if self.STATE == "h0" else tuple(state)

    # ----- whole sequences ------------------------------------------------
    def _prepare(self, x, lengths):
        """Check ``x (B, T, D)`` and ``lengths``; go time-major.

        Returns
        -------
        xs : ndarray of shape (T, B, D), contiguous
        keep : ndarray of shape (T, B, 1) of 1.0 / 0.0, or None
            1 where step t is a real token of sequence b; None when every
            sequence fills all T steps (no masking needed).
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
        return xs, keep

    def forward(self, x, h0=None, lengths=None):
        """Run the sequence: ``hs (B, T, H)`` and the final state ``h_T (B, H)``
        (`tinyattn.LSTM`: the initial and final states are pairs ``(h, c)``).

        With ``lengths``, a sequence's state is frozen after its last real
        token, its outputs there are 0 and no gradient flows through its
        pads (PyTorch's packed sequences).
        """
        state0 = h0  # (h, c) for an LSTM
        if self.fused:  # the same numbers, in place (tinyattn.fused)
            out = self._fused_forward(x, state0, lengths)
            self._cache = ("fused", self._cache)
            return out
        xs, keep = self._prepare(x, lengths)
        T, B, D = xs.shape
        state = self._state_in(state0, self.STATE, B)
        W_x, b = (self.params[k] for k in self.X_PARAMS)
        # Every step's input projection in one product, before the loop:
        # (T·B, D) @ (D, G·H) -> (T, B, G·H)
        ax = (xs.reshape(T * B, D) @ W_x + b).reshape(T, B, -1)
        hs = np.empty((T, B, self.hidden_size), self.dtype)
        caches = []
        for t in range(T):
            new, cache = self._gates(ax[t], state)
            if keep is not None:  # past its length a sequence keeps its state
                new = tuple(s + keep[t] * (n - s) for n, s in zip(new, state))
            caches.append(cache)
            state = new
            hs[t] = state[0]
        self._cache = ("plain", (xs, keep, caches))
        out = hs.transpose(1, 0, 2)  # (T, B, H) -> (B, T, H)
        out = out * keep.transpose(1, 0, 2) if keep is not None else np.ascontiguousarray(out)
        return out, self._state_out(state)

    def backward(self, dhs, dh_T=None):
        """Backpropagate through time: ``dx (B, T, D)`` and the initial state's gradient."""
        dstate_T = dh_T  # (dh, dc) for an LSTM
        path, cache = self._take_cache()
        if path == "fused":
            self._cache = cache
            return self._fused_backward(dhs, dstate_T)
        xs, keep, caches = cache
        T, B, D = xs.shape
        check_array(dhs, "dhs", (B, T, self.hidden_size), self.dtype)
        dhs = dhs.transpose(1, 0, 2)  # (B, T, H) -> (T, B, H)
        name = "dh_T" if self.STATE == "h0" else "dstate_T"
        dstate = self._state_in(dstate_T, name, B)
        dAx, rows = [None] * T, [None] * T
        for t in reversed(range(T)):
            # h_t fed the output and step t+1 (a pad's output is the constant 0)
            dh = dstate[0] + (dhs[t] if keep is None else dhs[t] * keep[t])
            dstate = (dh,) + dstate[1:]
            if keep is not None:  # pads pass the state's gradient straight to step t−1
                passed = tuple(d * (1.0 - keep[t]) for d in dstate)
                dstate = tuple(d * keep[t] for d in dstate)
            dstate, dAx[t], rows[t] = self._gates_backward(dstate, caches[t])
            if keep is not None:
                dstate = tuple(d + p for d, p in zip(dstate, passed))
        # Weight gradients, and x's, as one product over all T·B rows.
        stacked = [None if parts[0] is None else np.concatenate(parts, axis=0)
                   for parts in zip(*rows)]
        dAx = np.concatenate(dAx, axis=0)  # T steps of (B, G·H) -> (T·B, G·H)
        self.accumulate_grads(xs.reshape(T * B, D), dAx, *stacked)
        dx = dAx @ self.params[self.X_PARAMS[0]].T  # (T·B, G·H) @ (G·H, D)
        # (T·B, D) -> (T, B, D) -> (B, T, D)
        dx = np.ascontiguousarray(dx.reshape(T, B, D).transpose(1, 0, 2))
        return dx, self._state_out(dstate)
