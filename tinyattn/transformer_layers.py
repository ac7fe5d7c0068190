"""The Transformer's encoder and decoder layers (Vaswani et al. 2017, §3.1, §3.3).

Every sublayer — self-attention, cross-attention, the feed-forward network —
sits in a residual block with a LayerNorm (docs/equations.md §7.5)::

    post-LN (norm_first=False, the paper's):  y = LN(x + Dropout(Sublayer(x)))
    pre-LN  (norm_first=True):                y = x + Dropout(Sublayer(LN(x)))
    FFN(x) = ReLU(x W_1 + b_1) W_2 + b_2      (dropout after the ReLU, as PyTorch's)

The encoder layer is self-attention then FFN; the decoder layer is causal
self-attention, cross-attention over the encoder's output (the memory),
then FFN. Children and their order follow ``torch.nn.TransformerEncoderLayer``
and ``TransformerDecoderLayer`` (``batch_first=True``, ``activation="relu"``),
so `tinyattn.interop` maps the weights one to one.

Padding: ``lengths (B,)`` masks the keys of self-attention (and
``memory_lengths`` those of cross-attention); the layer's output at a pad
position is exactly 0 and the pad query rows of the attention weights it
keeps are 0, as everywhere in tinyattn. Each use of dropout is its own
`tinyattn.layers.Dropout` with its own mask.
"""

from __future__ import annotations

import numpy as np

from tinyattn._validate import (
    as_array,
    check_array,
    check_bool,
    check_dim,
    check_lengths,
    check_real,
    check_rng,
)
from tinyattn.functional import length_mask
from tinyattn.layernorm import LayerNorm
from tinyattn.layers import Dropout, Linear
from tinyattn.module import Module
from tinyattn.multihead import MultiHeadAttention


class _Block(Module):
    """What the two layers share: sizes, residual blocks, the feed-forward sublayer."""

    def _setup(self, d_model, num_heads, d_ff, dropout, norm_first, rng):
        self.d_model = check_dim(d_model, "d_model")
        self.num_heads = check_dim(num_heads, "num_heads")
        self.d_ff = check_dim(d_ff, "d_ff")
        self.norm_first = check_bool(norm_first, "norm_first")
        check_real(dropout, "dropout", "[0, 1)")  # not Dropout's own "p must be ..."
        check_rng(rng)
        return dict(rng=rng, dtype=self.dtype), dict(dtype=self.dtype)

    def _feed_forward_modules(self, kw, dropout):
        self.ff1 = Linear(self.d_model, self.d_ff, **kw)
        self.ff2 = Linear(self.d_ff, self.d_model, **kw)
        self.drop_ff = Dropout(dropout, dtype=self.dtype)

    # ----- the residual block, both placements of the norm ----------------------
    def _block(self, x, norm, drop, sublayer):
        """``LN(x + drop(sub(x)))`` (post-LN) or ``x + drop(sub(LN(x)))`` (pre-LN)."""
        if self.norm_first:
            return x + drop(sublayer(norm(x)))
        return norm(x + drop(sublayer(x)))

    def _block_backward(self, dy, norm, drop, sublayer_backward):
        """The gradient of `_block`'s input; ``sublayer_backward(dout) -> dinput``."""
        if self.norm_first:
            return dy + norm.backward(sublayer_backward(drop.backward(dy)))
        dz = norm.backward(dy)  # dz flows to x directly and through the sublayer
        return dz + sublayer_backward(drop.backward(dz))

    def _block_apply(self, x, norm, sublayer):
        """`_block` for decoding: eval mode (no dropout), no caches."""
        if self.norm_first:
            return x + sublayer(norm.apply(x))
        return norm.apply(x + sublayer(x))

    # ----- the feed-forward sublayer ----------------------------------------------
    def _feed_forward(self, x):
        h = self.ff1(x)
        np.maximum(h, 0.0, out=h)  # ReLU in place: h > 0 is where it passed
        self._ff_mask = h > 0
        return self.ff2(self.drop_ff(h))

    def _feed_forward_backward(self, df):
        dh = self.drop_ff.backward(self.ff2.backward(df))
        dh = dh * self._ff_mask  # ReLU' = 1 where the unit was positive
        self._ff_mask = None
        return self.ff1.backward(dh)

    def _feed_forward_apply(self, x):
        return self.ff2.apply(np.maximum(self.ff1.apply(x), 0.0))

    # ----- padding ------------------------------------------------------------------
    @staticmethod
    def _lengths(lengths, name, B, T):
        return None if lengths is None else check_lengths(as_array(lengths, name), B, T, name)

    def _keep(self, lengths, B, T):
        """``(B, T, 1)`` of 1 at real positions and 0 at pads (all 1 without lengths)."""
        if lengths is None:
            return None
        return length_mask(lengths, T)[:, :, None].astype(self.dtype)


class TransformerEncoderLayer(_Block):
    """Self-attention and a feed-forward network, each in a residual block.

    Parameters
    ----------
    d_model : int
        D.
    num_heads : int
        Must divide D.
    d_ff : int
        Width of the feed-forward network's hidden layer.
    dropout : float in [0, 1), default 0
        On the attention weights, after each sublayer and after the ReLU.
    norm_first : bool, default False
        False: post-LN, the paper's; True: pre-LN.
    rng : numpy.random.Generator
    dtype : np.float32 or np.float64

    Notes
    -----
    ``y = layer(x (B, T, D), lengths=None)``, ``dx = layer.backward(dy)``.
    After a forward ``layer.attn_weights (B, n, T, T)`` holds each head's
    self-attention weights (0 on pad query rows). Children: ``self_attn``,
    ``ff1``, ``ff2``, ``norm1``, ``norm2`` (and the dropouts ``drop1``,
    ``drop_ff``, ``drop2``).
    """

    def __init__(self, d_model, num_heads, d_ff, *, dropout=0.0, norm_first=False, rng,
                 dtype=np.float64):
        super().__init__(dtype)
        kw, dkw = self._setup(d_model, num_heads, d_ff, dropout, norm_first, rng)
        self.self_attn = MultiHeadAttention(self.d_model, self.num_heads, dropout=dropout, **kw)
        self._feed_forward_modules(kw, dropout)
        self.norm1 = LayerNorm(self.d_model, **dkw)
        self.norm2 = LayerNorm(self.d_model, **dkw)
        self.drop1 = Dropout(dropout, **dkw)
        self.drop2 = Dropout(dropout, **dkw)
        self.attn_weights = None

    def __repr__(self) -> str:
        return (f"TransformerEncoderLayer(d_model={self.d_model}, num_heads={self.num_heads}, "
                f"d_ff={self.d_ff}, dropout={self.drop1.p}, norm_first={self.norm_first})")

    def forward(self, x, lengths=None):
        """``y (B, T, D)``, exactly 0 at pad positions."""
        check_array(x, "x", (None, None, self.d_model), self.dtype)
        B, T, _ = x.shape
        lengths = self._lengths(lengths, "lengths", B, T)
        keep = self._keep(lengths, B, T)

        def attend(z):
            out, self.attn_weights = self.self_attn(z, z, z, key_lengths=lengths)
            return out

        y = self._block(x, self.norm1, self.drop1, attend)
        y = self._block(y, self.norm2, self.drop2, self._feed_forward)
        if keep is not None:
            y *= keep
            self.attn_weights = self.attn_weights * keep[:, None]  # (B, 1, T, 1): pad rows 0
        self._cache = (keep, y.shape)  # a tuple: keep is None without lengths
        return y

    def backward(self, dy):
        """``dx (B, T, D)``; adds every parameter's gradient."""
        keep, shape = self._take_cache()
        check_array(dy, "dy", shape, self.dtype)  # (B, T, D): (1, T, D) would broadcast
        if keep is not None:
            dy = dy * keep  # the output was 0 at pads whatever x was

        def attend_backward(dout):
            dq, dk, dv = self.self_attn.backward(dout)
            return dq + dk + dv  # the same z was query, key and value

        d = self._block_backward(dy, self.norm2, self.drop2, self._feed_forward_backward)
        return self._block_backward(d, self.norm1, self.drop1, attend_backward)


class TransformerDecoderLayer(_Block):
    """Causal self-attention, cross-attention over the memory, a feed-forward network.

    Parameters
    ----------
    As `TransformerEncoderLayer`.

    Notes
    -----
    ``y = layer(x (B, T, D), memory (B, S, D), lengths=None, memory_lengths=None)``;
    ``dx, dmemory = layer.backward(dy)``. After a forward ``self_weights
    (B, n, T, T)`` and ``cross_weights (B, n, T, S)`` hold each head's weights
    (0 on pad query rows). Children: ``self_attn``, ``cross_attn``, ``ff1``,
    ``ff2``, ``norm1``, ``norm2``, ``norm3`` (dropouts ``drop1``, ``drop2``,
    ``drop_ff``, ``drop3``). `step` is one position with a key/value cache.
    """

    def __init__(self, d_model, num_heads, d_ff, *, dropout=0.0, norm_first=False, rng,
                 dtype=np.float64):
        super().__init__(dtype)
        kw, dkw = self._setup(d_model, num_heads, d_ff, dropout, norm_first, rng)
        self.self_attn = MultiHeadAttention(self.d_model, self.num_heads, dropout=dropout, **kw)
        self.cross_attn = MultiHeadAttention(self.d_model, self.num_heads, dropout=dropout, **kw)
        self._feed_forward_modules(kw, dropout)
        self.norm1 = LayerNorm(self.d_model, **dkw)
        self.norm2 = LayerNorm(self.d_model, **dkw)
        self.norm3 = LayerNorm(self.d_model, **dkw)
        self.drop1 = Dropout(dropout, **dkw)
        self.drop2 = Dropout(dropout, **dkw)
        self.drop3 = Dropout(dropout, **dkw)
        self.self_weights = self.cross_weights = None

    def __repr__(self) -> str:
        return (f"TransformerDecoderLayer(d_model={self.d_model}, num_heads={self.num_heads}, "
                f"d_ff={self.d_ff}, dropout={self.drop1.p}, norm_first={self.norm_first})")

    def forward(self, x, memory, lengths=None, memory_lengths=None):
        """``y (B, T, D)``, exactly 0 at pad positions."""
        check_array(x, "x", (None, None, self.d_model), self.dtype)
        check_array(memory, "memory", (x.shape[0], None, self.d_model), self.dtype)
        B, T, _ = x.shape
        lengths = self._lengths(lengths, "lengths", B, T)
        memory_lengths = self._lengths(memory_lengths, "memory_lengths", B, memory.shape[1])
        keep = self._keep(lengths, B, T)

        def self_attend(z):
            out, self.self_weights = self.self_attn(z, z, z, key_lengths=lengths, causal=True)
            return out

        def cross_attend(z):
            out, self.cross_weights = self.cross_attn(z, memory, memory,
                                                      key_lengths=memory_lengths)
            return out

        y = self._block(x, self.norm1, self.drop1, self_attend)
        y = self._block(y, self.norm2, self.drop2, cross_attend)
        y = self._block(y, self.norm3, self.drop3, self._feed_forward)
        if keep is not None:
            y *= keep
            self.self_weights = self.self_weights * keep[:, None]
            self.cross_weights = self.cross_weights * keep[:, None]
        self._cache = (keep, y.shape)
        return y

    def backward(self, dy):
        """``dx (B, T, D), dmemory (B, S, D)``; adds every parameter's gradient."""
        keep, shape = self._take_cache()
        check_array(dy, "dy", shape, self.dtype)  # (B, T, D): (1, T, D) would broadcast
        if keep is not None:
            dy = dy * keep
        dmemory = []

        def self_backward(dout):
            dq, dk, dv = self.self_attn.backward(dout)
            return dq + dk + dv

        def cross_backward(dout):
            dq, dk, dv = self.cross_attn.backward(dout)
            dmemory.append(dk + dv)  # the memory is both key and value
            return dq

        d = self._block_backward(dy, self.norm3, self.drop3, self._feed_forward_backward)
        d = self._block_backward(d, self.norm2, self.drop2, cross_backward)
        d = self._block_backward(d, self.norm1, self.drop1, self_backward)
        return d, dmemory[0]

    # ----- decoding: one position at a time, keys and values cached -------------------
    def memory_kv(self, memory):
        """The cross-attention's keys and values of the memory, ``(B, n, S, d)`` each,
        projected once per source batch."""
        return self.cross_attn.project(memory, "k"), self.cross_attn.project(memory, "v")

    def step(self, x_t, memory_kv, memory_allowed, cache):
        """One position: ``x_t (B, 1, D)`` -> ``(y_t (B, 1, D), new cache, cross weights
        (B, n, 1, S))``. ``cache = (K, V)``, each ``(B, n, t, d)``: the self-attention's
        keys and values of the positions before; the new one appends position t.
        Equal to row t of `forward` on the whole prefix (eval mode)."""
        K_prev, V_prev = cache
        sa, ca = self.self_attn, self.cross_attn
        new = {}

        def self_attend(z):
            K = np.concatenate([K_prev, sa.project(z, "k")], axis=2)  # (B, n, t + 1, d)
            V = np.concatenate([V_prev, sa.project(z, "v")], axis=2)
            new["cache"] = (K, V)
            everything = np.ones((1, 1, 1, K.shape[2]), dtype=bool)  # the past, no pads
            merged, _, _, _ = sa.attend(sa.project(z, "q"), K, V, everything)
            return sa.output(merged)

        def cross_attend(z):
            merged, new["weights"], _, _ = ca.attend(ca.project(z, "q"), *memory_kv,
                                                     memory_allowed)
            return ca.output(merged)

        y = self._block_apply(x_t, self.norm1, self_attend)
        y = self._block_apply(y, self.norm2, cross_attend)
        y = self._block_apply(y, self.norm3, self._feed_forward_apply)
        return y, new["cache"], new["weights"]
