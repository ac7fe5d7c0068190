"""The bridge: the decoder's first state from the encoder's final one.

docs/equations.md §2 and §3.1::

    s_0 = tanh(final @ W_s + b_s)

``final`` is the encoder's final state ``[→h_S ; ←h_1]`` (each direction's
state after its last real token). An LSTM's cell state gets a bridge of its
own, and with stacked layers each decoder layer starts from the bridge of the
encoder layer below it (`tinyattn.Seq2Seq` holds one `tinyattn.layers.Linear`
per layer and state part, and passes them here).
"""

from __future__ import annotations

import numpy as np


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
