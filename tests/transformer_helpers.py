"""What the Transformer layer tests share: sizes, factories with parameters moved
away from their initial values, fixed dropout masks, one forward and backward."""

import numpy as np

from tinyattn.layernorm import LayerNorm
from tinyattn.layers import Dropout
from tinyattn.module import Module
from tinyattn.multihead import MultiHeadAttention
from tinyattn.transformer_layers import TransformerDecoderLayer, TransformerEncoderLayer

# Distinct sizes, so a swapped axis fails loudly: batch, target steps, source steps,
# model width, heads (head size 4), feed-forward width.
B, T, S, D, N, DFF = 3, 4, 5, 8, 2, 7
LENGTHS = np.array([4, 2, 3])  # of T; one full row
MEMORY_LENGTHS = np.array([2, 5, 1])  # of S; one full row, one of a single key


def jiggle(module, seed, scale=0.3):
    """Move every parameter by N(0, scale²) noise (in place): at init the biases
    are 0 and γ is 1, which would hide a gradient that drops them or swaps them."""
    rng = np.random.default_rng(seed)
    for _, value, _ in module.named_parameters():
        value += scale * rng.standard_normal(value.shape)
    return module


def make_norm(seed=0, dtype=np.float64):
    return jiggle(LayerNorm(D, dtype=dtype), seed + 100)


def make_mha(seed=0, dropout=0.0, dtype=np.float64):
    return jiggle(MultiHeadAttention(D, N, dropout=dropout, rng=np.random.default_rng(seed),
                                     dtype=dtype), seed + 100)


def make_layer(kind, norm_first=False, seed=0, dropout=0.0, dtype=np.float64):
    """A jiggled encoder (``kind="encoder"``) or decoder layer."""
    cls = TransformerEncoderLayer if kind == "encoder" else TransformerDecoderLayer
    layer = cls(D, N, DFF, dropout=dropout, norm_first=norm_first,
                rng=np.random.default_rng(seed), dtype=dtype)
    return jiggle(layer, seed + 100)


def seed_dropouts(module, seed):
    """Every Dropout of ``module`` draws from one new generator, in the order they
    run (as `tinyattn.Seq2Seq.seed_dropout`): the same seed, the same masks."""
    rng = np.random.default_rng(seed)
    for _, m in module.named_modules():
        if isinstance(m, Dropout):
            m.rng = rng


class FixedMasks(Module):
    """Wraps a layer for `check_module`: reseeds its dropouts before every forward,
    so the checker's many forwards and its one backward all see the same masks."""

    def __init__(self, layer, seed=0):
        super().__init__(layer.dtype)
        self.layer, self.seed = layer, seed

    def forward(self, *args, **kwargs):
        seed_dropouts(self.layer, self.seed)
        return self.layer(*args, **kwargs)

    def backward(self, *douts):
        return self.layer.backward(*douts)


def grads_of(module):
    """Copies of every parameter gradient, by dotted name."""
    return {n: g.copy() for n, _, g in module.named_parameters()}


def run(module, args, douts, **kwargs):
    """Zero the grads, forward, backward: ``(outputs, input grads (a tuple), param grads)``."""
    module.zero_grad()
    outs = module(*args, **kwargs)
    dins = module.backward(*douts)
    return outs, dins if isinstance(dins, tuple) else (dins,), grads_of(module)
