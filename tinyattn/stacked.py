"""Stacked recurrent layers: layer l reads layer l − 1's outputs.

docs/equations.md §3.1::

    h^0_t = x_t
    h^l_t = f_l(h^{l-1}_t ⊙ m^l_t, h^l_{t-1})     l = 1..L; m^1 = 1, m^l a dropout mask

`StackedRNN` holds L layers (RNN, GRU, LSTM, or `Bidirectional` for an
encoder) and presents the interface of one: ``forward(x, h0, lengths)``
and ``backward(dhs, dh_T)`` for whole sequences, ``step`` and
``step_backward`` for a decoder's loop, ``input_size`` (the bottom
layer's) and ``hidden_size`` (the top layer's). So the decoders and
`tinyattn.Seq2Seq` run a stack as they run one layer; the maths stays in
the layers, the stack only wires them.

A stack's state is a `tinyattn.recurrent.StackState`, one state per
layer, bottom first; `tinyattn.recurrent.hidden` of it is the top
layer's h. Inverted dropout (`tinyattn.layers.Dropout`) sits between
layers, each gap with its own module and so its own mask, and none after
the top layer (the decoders drop their output features themselves).
"""

from __future__ import annotations

from tinyattn._validate import _show, check_real
from tinyattn.bidirectional import Bidirectional
from tinyattn.layers import Dropout
from tinyattn.module import Module, ModuleList
from tinyattn.recurrent import RecurrentLayer, StackState, add_hidden, hidden


def _kind(layer) -> tuple:
    """What two layers of one stack must share: class (and the wrapped class)."""
    if isinstance(layer, Bidirectional):
        return Bidirectional, type(layer.fwd)
    return (type(layer),)


class StackedRNN(Module):
    """L recurrent layers, each reading the one below, with dropout between them.

    Parameters
    ----------
    layers : sequence of RNN, GRU, LSTM or Bidirectional
        At least one; separate objects of one class (a `Bidirectional` of
        one class), one dtype, each layer's ``input_size`` the
        ``hidden_size`` of the layer below (2H below a `Bidirectional`).
        Children ``layers.0``, ``layers.1``, ...
    dropout : float in [0, 1), default 0
        p of the inverted dropout on each layer's input but the bottom
        one's, in train mode; children ``drops.0`` (between layers 0 and
        1), ... Masks come from each `Dropout`'s ``rng``, which the owner
        sets (`tinyattn.Seq2Seq.seed_dropout`).

    Notes
    -----
    ``hs, final = stack(x, h0=None, lengths=None)``: ``hs (B, T, H_top)``
    are the top layer's outputs, ``final`` a `StackState` of each layer's
    final state (after each sequence's last real token with ``lengths``:
    every layer runs with the same lengths, so padding behaves exactly as
    in one layer). ``h0`` is None (zeros) or a `StackState` of L per-layer
    states, each None or what that layer takes (a plain tuple is refused:
    two arrays could be one LSTM's ``(h, c)``).
    ``dx, dstate0 = stack.backward(dhs, dh_T=None)`` mirrors it.

    ``state, cache = stack.step(x_t, state_prev, dropout=True)`` runs one time step
    through every layer (not for `Bidirectional` layers, which read whole
    sequences); ``dx_t, dstate_prev = stack.step_backward(dstate, cache,
    defer=None)``. A step draws its own dropout masks and keeps them in its
    cache, so a decoder may run many steps before their backwards.

    Examples
    --------
    >>> import tinyattn as ta
    >>> rng = np.random.default_rng(0)
    >>> stack = StackedRNN([ta.GRU(3, 4, rng=rng), ta.GRU(4, 4, rng=rng)])
    >>> hs, final = stack(rng.standard_normal((2, 5, 3)), None, np.array([5, 2]))
    >>> hs.shape, len(final), type(final).__name__
    ((2, 5, 4), 2, 'StackState')
    """

    def __init__(self, layers, *, dropout=0.0):
        layers = list(layers) if isinstance(layers, (list, tuple)) else layers
        if not isinstance(layers, list) or not layers:
            raise TypeError(f"layers must be a non-empty list of recurrent layers, "
                            f"got {_show(layers)}")
        for k, layer in enumerate(layers):
            if not isinstance(layer, (RecurrentLayer, Bidirectional)):
                raise TypeError(f"layers[{k}] must be an RNN, GRU, LSTM or Bidirectional, "
                                f"got {type(layer).__name__}")
            if any(layer is other for other in layers[:k]):
                raise ValueError(f"layers[{k}] is the same object as an earlier layer; "
                                 "each layer of a stack has its own weights")
            if _kind(layer) != _kind(layers[0]) or layer.dtype != layers[0].dtype:
                raise ValueError(f"every layer of a stack must be of one class and dtype, "
                                 f"got {layers[0]!r} and layers[{k}] = {layer!r}")
            if k and layer.input_size != layers[k - 1].hidden_size:
                raise ValueError(
                    f"layers[{k}].input_size must be the output size of layers[{k - 1}], "
                    f"{layers[k - 1].hidden_size}, got {layer.input_size}")
        super().__init__(layers[0].dtype)
        self.dropout = check_real(dropout, "dropout", "[0, 1)")
        self.layers = ModuleList(layers)
        if len(layers) > 1:
            self.drops = ModuleList(Dropout(self.dropout, dtype=self.dtype)
                                    for _ in layers[1:])
        self.num_layers = len(layers)
        self.input_size = layers[0].input_size
        self.hidden_size = layers[-1].hidden_size  # the output features: the top layer's
        self._steps = not isinstance(layers[0], Bidirectional)

    def __repr__(self) -> str:
        return f"StackedRNN({list(self.layers)!r}, dropout={self.dropout})"

    def _per_layer(self, state, name: str) -> list:
        """A stack's state (None, or a StackState of L) as a list of L entries.

        Only a `StackState`: a plain tuple of two could be one LSTM's (h, c)."""
        if state is None:
            return [None] * self.num_layers
        if not isinstance(state, StackState) or len(state) != self.num_layers:
            raise TypeError(f"{name} must be None or a StackState of {self.num_layers} "
                            f"per-layer states (bottom layer first), got {_show(state)}")
        return list(state)

    @staticmethod
    def _name_layer(err: Exception, k: int) -> None:
        """Say which layer refused its input (the message names the argument)."""
        err.add_note(f"(raised by layers[{k}] of the StackedRNN)")

    # ----- whole sequences ------------------------------------------------
    def forward(self, x, h0=None, lengths=None):
        """``hs (B, T, H_top)`` and the `StackState` of every layer's final state."""
        states = self._per_layer(h0, "h0")
        out, finals = x, []
        for k, layer in enumerate(self.layers):
            if k:  # each gap has its own Dropout module: its own mask
                out = self.drops[k - 1](out)
            try:
                out, final = layer(out, states[k], lengths)
            except (TypeError, ValueError) as err:
                self._name_layer(err, k)
                raise
            finals.append(final)
        self._cache = "sequence"
        return out, StackState(finals)

    def backward(self, dhs, dh_T=None):
        """``dx (B, T, D)`` and the `StackState` of every layer's initial-state gradient."""
        self._take_cache()
        dfinals = self._per_layer(dh_T, "dh_T")
        dstate0 = [None] * self.num_layers
        d = dhs
        for k in reversed(range(self.num_layers)):
            try:
                d, dstate0[k] = self.layers[k].backward(d, dfinals[k])
            except (TypeError, ValueError) as err:
                self._name_layer(err, k)
                raise
            if k:
                d = self.drops[k - 1].backward(d)
        return d, StackState(dstate0)

    # ----- one step, for decoders -----------------------------------------
    def step(self, x_t, state_prev, *, dropout=True):
        """One time step through every layer: the new `StackState` and a cache.

        Each gap draws a fresh dropout mask (in train mode) and keeps it in
        the cache, not in its `Dropout` module. ``dropout=False`` draws none
        in any mode (a decoder's inference step,
        `tinyattn.decoders.inference_step`).
        """
        if not self._steps:
            raise TypeError("a stack of Bidirectional layers has no step: the backward "
                            "direction needs the whole sequence")
        news, caches, masks = [], [], [None]
        x = x_t
        for k, layer in enumerate(self.layers):
            if k:
                mask = self.drops[k - 1].mask(x.shape) if dropout else None
                masks.append(mask)
                if mask is not None:
                    x = x * mask
            new, cache = layer.step(x, state_prev[k])
            news.append(new)
            caches.append(cache)
            x = hidden(new)  # layer k's output h^k_t feeds layer k + 1
        return StackState(news), (caches, masks)

    def step_backward(self, dstate, cache, defer=None):
        """Backward of `step`: ``dx_t`` and the `StackState` of the previous
        states' gradients; adds (or, with ``defer``, queues) the weight gradients."""
        caches, masks = cache
        dprev = [None] * self.num_layers
        dout = None  # the gradient of the output h^k_t from the layer above
        for k in reversed(range(self.num_layers)):
            d = dstate[k] if dout is None else add_hidden(dstate[k], dout)
            dout, dprev[k] = self.layers[k].step_backward(d, caches[k], defer)
            if masks[k] is not None:
                dout = dout * masks[k]
        return dout, StackState(dprev)
