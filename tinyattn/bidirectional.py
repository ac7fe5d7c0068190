"""A bidirectional wrapper: one layer reads left to right, another right
to left, and their outputs are concatenated per position.

docs/equations.md §3 (documents 000 and 003)::

    →h_j = f(x_j, →h_{j-1})      ←h_j = f(x_j, ←h_{j+1})      h_j = [→h_j ; ←h_j]

Each direction runs independently from its own initial state; the two
are joined only afterwards. (Document 000 says the states are merged at
every step; they are not.)
"""

from __future__ import annotations

import numpy as np

from tinyattn._validate import check_array, check_lengths
from tinyattn.lstm import LSTM
from tinyattn.module import Module


def reverse_index(lengths, batch: int, steps: int) -> np.ndarray:
    """Indices that reverse each sequence within its own length.

    Returns ``idx (B, T)`` with ``idx[b, t] = L_b − 1 − t`` for ``t < L_b``
    and ``t`` on pads, so pads stay where they are. Applying it twice is
    the identity.
    """
    t = np.arange(steps)[None, :]  # (1, T)
    if lengths is None:
        return np.broadcast_to(steps - 1 - t, (batch, steps))
    L = lengths[:, None]  # (B, 1)
    return np.where(t < L, L - 1 - t, t)  # (B, T)


def _take(x, idx):
    # x (B, T, F), idx (B, T) -> (B, T, F): gather along time per sequence
    return np.take_along_axis(x, idx[:, :, None], axis=1)


class Bidirectional(Module):
    """Run ``forward_layer`` on x and ``backward_layer`` on x reversed.

    Parameters
    ----------
    forward_layer, backward_layer : RNN, GRU or LSTM
        Two separate layers (not one object twice) of the same class, sizes,
        options and dtype; children named ``fwd`` and ``bwd``.

    Notes
    -----
    Same call signatures as the wrapped layers, with 2H features:
    ``hs, h_T = bi(x, h0=None, lengths=None)`` gives ``hs (B, T, 2H)`` and
    ``h_T = [→h_T ; ←h_1] (B, 2H)``: the backward direction's final state
    belongs to each sequence's first position. For LSTMs the state is a
    pair ``(h, c)`` of such concatenations. With ``lengths``, the backward
    direction reverses each sequence within its own length and so starts
    at the last real token, never at a pad.
    """

    def __init__(self, forward_layer, backward_layer):
        for name, layer in (("forward_layer", forward_layer), ("backward_layer", backward_layer)):
            if not hasattr(layer, "GATES") or not hasattr(layer, "hidden_size"):
                raise TypeError(f"{name} must be an RNN, GRU or LSTM, got {type(layer).__name__}")
        super().__init__(forward_layer.dtype)
        if forward_layer is backward_layer:
            # one layer cannot hold two forward caches: the second backward would fail
            raise ValueError("forward_layer and backward_layer must be two separate layers "
                             "(each direction has its own weights), got the same "
                             f"{type(forward_layer).__name__} object twice")
        same = (type(forward_layer) is type(backward_layer)
                and forward_layer.input_size == backward_layer.input_size
                and forward_layer.hidden_size == backward_layer.hidden_size
                and forward_layer.dtype == backward_layer.dtype
                and getattr(forward_layer, "reset_after", None)
                == getattr(backward_layer, "reset_after", None))
        if not same:
            raise ValueError(
                f"forward_layer and backward_layer must match in class, sizes, "
                f"options and dtype, got {forward_layer!r} and {backward_layer!r}"
            )
        self.fwd = forward_layer
        self.bwd = backward_layer
        self.input_size = forward_layer.input_size
        self.hidden_size = 2 * forward_layer.hidden_size  # output features
        self._lstm = isinstance(forward_layer, LSTM)

    def __repr__(self) -> str:
        return f"Bidirectional({self.fwd!r}, {self.bwd!r})"

    def _split(self, state, name: str, batch: int):
        """A (B, 2H) state, or a pair of them for LSTMs -> (fwd, bwd) parts."""
        if state is None:
            return None, None
        H = self.fwd.hidden_size
        if self._lstm:
            if not isinstance(state, tuple) or len(state) != 2:
                raise TypeError(
                    f"{name} must be a tuple (h, c) for an LSTM, got {type(state).__name__}")
            parts = [check_array(s, f"{name}[{k}]", (batch, 2 * H), self.dtype)
                     for k, s in enumerate(state)]
            return (parts[0][:, :H], parts[1][:, :H]), (parts[0][:, H:], parts[1][:, H:])
        check_array(state, name, (batch, 2 * H), self.dtype)
        return state[:, :H], state[:, H:]

    def _join(self, a, b):
        if self._lstm:
            return tuple(np.concatenate([x, y], axis=1) for x, y in zip(a, b))
        return np.concatenate([a, b], axis=1)  # (B, H) + (B, H) -> (B, 2H)

    def forward(self, x, h0=None, lengths=None):
        """``hs (B, T, 2H)`` and the joined final state (see class Notes).

        ``h0`` is ``(B, 2H)``, or for LSTMs the pair ``(h0, c0)``.
        """
        check_array(x, "x", (None, None, self.input_size), self.dtype)
        B, T, _ = x.shape
        lengths = check_lengths(lengths, B, T)
        s_f, s_b = self._split(h0, "h0", B)
        idx = reverse_index(lengths, B, T)
        hs_f, last_f = self.fwd(x, s_f, lengths)
        hs_b_rev, last_b = self.bwd(_take(x, idx), s_b, lengths)
        hs = np.concatenate([hs_f, _take(hs_b_rev, idx)], axis=2)  # (B, T, 2H)
        self._cache = idx
        return hs, self._join(last_f, last_b)

    def backward(self, dhs, dh_T=None):
        """``dx (B, T, D)`` and the initial state's gradient, joined like h0."""
        idx = self._take_cache()
        B, T = idx.shape
        H = self.fwd.hidden_size
        check_array(dhs, "dhs", (B, T, 2 * H), self.dtype)
        d_f, d_b = self._split(dh_T, "dh_T", B)
        dx_f, ds_f = self.fwd.backward(dhs[:, :, :H], d_f)
        dx_b_rev, ds_b = self.bwd.backward(_take(dhs[:, :, H:], idx), d_b)
        dx = dx_f + _take(dx_b_rev, idx)  # x fed both directions
        return dx, self._join(ds_f, ds_b)
