"""The bridge: the decoder's first state from the encoder's final one.

docs/equations.md §2 and §3.1::

    s_0 = tanh(final @ W_s + b_s)

``final`` is the encoder's final state ``[→h_S ; ←h_1]`` (each direction's
state after its last real token). An LSTM's cell state gets a bridge of its
own, and with stacked layers each decoder layer starts from the bridge of the
encoder layer below it (`tinyattn.Seq2Seq` holds one `tinyattn.layers.Linear`
per layer and state part, built by `bridge_modules`, and passes them here).
"""

from __future__ import annotations

import numpy as np

from tinyattn.layers import Linear
from tinyattn.module import ModuleList


def bridge_forward(linears, final):
    """``tanh(final @ W_s + b_s)`` for one layer: ``linears`` is ``(W_s,)``, or
    ``(W_s, W_c)`` for an LSTM whose ``final`` is the pair ``(h, c)``."""
    if len(linears) == 2:
        return tuple(np.tanh(linear(f)) for linear, f in zip(linears, final))
    return np.tanh(linears[0](final))


def bridge_backward(linears, dstate0, state0):
    """The gradient of the encoder's final state from that of ``state0``, the
    output of `bridge_forward` (adds the Linears' weight gradients)."""
    # s_0 = tanh(z): dz = ds_0 (1 − s_0²)
    if len(linears) == 2:
        return tuple(linear.backward(d * (1.0 - s**2))
                     for linear, d, s in zip(linears, dstate0, state0))
    return linears[0].backward(dstate0 * (1.0 - state0**2))


def bridge_modules(Hk, Hd, L, lstm, kw) -> dict:
    """The bridge Linears by attribute name, in the order they draw their weights:
    ``bridge`` (and ``bridge_c`` for an LSTM's cell state) for layer 0, then
    ``bridges`` (``bridges_c``) holding ``bridges.1``, ... for the layers above."""
    out = {"bridge": Linear(Hk, Hd, **kw)}
    if lstm:
        out["bridge_c"] = Linear(Hk, Hd, **kw)
    if L > 1:  # one bridge per layer: layer 0's is `bridge`, as with one layer
        out["bridges"] = ModuleList((Linear(Hk, Hd, **kw) for _ in range(1, L)), start=1)
        if lstm:
            out["bridges_c"] = ModuleList((Linear(Hk, Hd, **kw) for _ in range(1, L)), start=1)
    return out
