"""Padding, causality and cached decoding of MultiHeadAttention and the
Transformer layers.

A padded batch gives each example's outputs, attention weights and gradients
as that example run alone, unpadded (the parameter gradients are the sum over
the examples); the decoder's output at position i does not depend on later
positions; `TransformerDecoderLayer.step`, one position at a time with a
key/value cache, equals `forward` on the whole prefix.
"""

import numpy as np
import pytest

from tinyattn.multihead import attention_mask

from .transformer_helpers import (
    LENGTHS,
    MEMORY_LENGTHS,
    B,
    D,
    N,
    S,
    T,
    make_layer,
    make_mha,
    run,
)

ATOL = 1e-12  # same maths, a different batch: only the summation order may differ


def _randn(seed, *shape):
    return np.random.default_rng(seed).standard_normal(shape)


def _close(a, b, what):
    np.testing.assert_allclose(a, b, rtol=0, atol=ATOL, err_msg=what)


def _assert_sum_of_alone(grads, alone_grads):
    """Each parameter's padded-batch gradient is the sum of the examples' own."""
    assert alone_grads and all(g.keys() == grads.keys() for g in alone_grads)
    for name, g in grads.items():
        total = sum(a[name] for a in alone_grads)
        # a gradient that is there; b_k's is 0 up to rounding (q · b_k is the same for
        # every key of a row, and the softmax ignores a shift)
        assert name.endswith("b_k") or np.abs(total).max() > 1e-6, name
        _close(g, total, f"d{name}")


def test_mha_key_padding():
    """Cross-attention, ``key_lengths``: each example against its own keys alone.
    The masked keys get weight exactly 0 and gradients exactly 0; every query row
    is computed (MultiHeadAttention has no query padding)."""
    mha = make_mha(seed=1)
    q, k, v = _randn(2, B, T, D), _randn(3, B, S, D), _randn(4, B, S, D)
    dout, dattn = _randn(5, B, T, D), _randn(6, B, N, T, S)  # dattn random on masked keys too
    (out, attn), (dq, dk, dv), grads = run(mha, (q, k, v), (dout, dattn),
                                           key_lengths=MEMORY_LENGTHS)
    alone_grads = []
    for b, m in enumerate(MEMORY_LENGTHS):
        one = slice(b, b + 1)
        (o1, a1), (dq1, dk1, dv1), g1 = run(mha, (q[one], k[one, :m], v[one, :m]),
                                            (dout[one], dattn[one, :, :, :m]))
        alone_grads.append(g1)
        _close(out[one], o1, f"out[{b}]")
        _close(attn[one, :, :, :m], a1, f"attn[{b}]")
        assert not attn[b, :, :, m:].any()  # masked keys: exactly 0
        _close(dq[one], dq1, f"dquery[{b}]")
        _close(dk[one, :m], dk1, f"dkey[{b}]")
        _close(dv[one, :m], dv1, f"dvalue[{b}]")
        assert not dk[b, m:].any() and not dv[b, m:].any()
    _assert_sum_of_alone(grads, alone_grads)


@pytest.mark.parametrize("norm_first", [False, True], ids=["post_ln", "pre_ln"])
def test_encoder_layer_padding(norm_first):
    layer = make_layer("encoder", norm_first, seed=7)
    x, dy = _randn(8, B, T, D), _randn(9, B, T, D)  # dy random at the pads too
    y, (dx,), grads = run(layer, (x,), (dy,), lengths=LENGTHS)
    w = layer.attn_weights
    alone_grads = []
    for b, n in enumerate(LENGTHS):
        one = slice(b, b + 1)
        y1, (dx1,), g1 = run(layer, (x[one, :n],), (dy[one, :n],))
        alone_grads.append(g1)
        _close(y[one, :n], y1, f"y[{b}]")
        _close(w[one, :, :n, :n], layer.attn_weights, f"attn_weights[{b}]")
        _close(dx[one, :n], dx1, f"dx[{b}]")
        assert not y[b, n:].any() and not dx[b, n:].any()  # pads: exactly 0
        assert not w[b, :, n:].any() and not w[b, :, :, n:].any()  # pad rows and keys
    _assert_sum_of_alone(grads, alone_grads)


@pytest.mark.parametrize("norm_first", [False, True], ids=["post_ln", "pre_ln"])
def test_decoder_layer_padding(norm_first):
    layer = make_layer("decoder", norm_first, seed=10)
    x, memory, dy = _randn(11, B, T, D), _randn(12, B, S, D), _randn(13, B, T, D)
    y, (dx, dmem), grads = run(layer, (x, memory), (dy,), lengths=LENGTHS,
                               memory_lengths=MEMORY_LENGTHS)
    sw, cw = layer.self_weights, layer.cross_weights
    alone_grads = []
    for b, (n, m) in enumerate(zip(LENGTHS, MEMORY_LENGTHS)):
        one = slice(b, b + 1)
        y1, (dx1, dmem1), g1 = run(layer, (x[one, :n], memory[one, :m]), (dy[one, :n],))
        alone_grads.append(g1)
        _close(y[one, :n], y1, f"y[{b}]")
        _close(sw[one, :, :n, :n], layer.self_weights, f"self_weights[{b}]")
        _close(cw[one, :, :n, :m], layer.cross_weights, f"cross_weights[{b}]")
        _close(dx[one, :n], dx1, f"dx[{b}]")
        _close(dmem[one, :m], dmem1, f"dmemory[{b}]")
        assert not y[b, n:].any() and not dx[b, n:].any() and not dmem[b, m:].any()
        assert not sw[b, :, n:].any() and not sw[b, :, :, n:].any()
        assert not cw[b, :, n:].any() and not cw[b, :, :, m:].any()
    _assert_sum_of_alone(grads, alone_grads)


@pytest.mark.parametrize("lengths", [None, LENGTHS], ids=["full", "padded"])
@pytest.mark.parametrize("norm_first", [False, True], ids=["post_ln", "pre_ln"])
def test_decoder_layer_is_causal(norm_first, lengths):
    """Changing x at the positions after i leaves the output at i (and before)
    exactly as it was, and changes the output after i."""
    layer = make_layer("decoder", norm_first, seed=14)
    x, memory = _randn(15, B, T, D), _randn(16, B, S, D)
    kw = {"lengths": lengths, "memory_lengths": MEMORY_LENGTHS}
    y = layer(x, memory, **kw)
    weights = layer.self_weights
    assert not weights[:, :, np.triu(np.ones((T, T), dtype=bool), 1)].any()  # j > i: 0
    for i in range(T - 1):
        later = x.copy()
        later[:, i + 1:] = _randn(17 + i, B, T - i - 1, D)
        y2 = layer(later, memory, **kw)
        np.testing.assert_array_equal(y2[:, :i + 1], y[:, :i + 1])
        ends = np.full((B, 1), T) if lengths is None else lengths[:, None]
        real_after = np.arange(T)[None, i + 1:] < ends  # (B, T − i − 1)
        assert (np.abs(y2 - y)[:, i + 1:].max(axis=-1) > 1e-6)[real_after].all()


def test_mha_causal_mask():
    mha = make_mha(seed=20)
    x = _randn(21, B, T, D)
    out, attn = mha(x, x, x, key_lengths=LENGTHS, causal=True)
    allowed = np.tri(T, dtype=bool)[None, None] & (np.arange(T) < LENGTHS[:, None])[:, None,
                                                                                      None]
    assert not attn[~np.broadcast_to(allowed, attn.shape)].any()
    np.testing.assert_allclose(attn.sum(axis=-1), 1.0, rtol=0, atol=1e-12)
    later = x.copy()
    later[:, 2:] += 1.0
    out2, _ = mha(later, later, later, key_lengths=LENGTHS, causal=True)
    np.testing.assert_array_equal(out2[:, :2], out[:, :2])


@pytest.mark.parametrize("norm_first", [False, True], ids=["post_ln", "pre_ln"])
def test_decoder_step_equals_forward(norm_first):
    """Fed one position at a time with a growing key/value cache (eval mode,
    ``memory_lengths``), `step` gives the rows of `forward` on the prefix so far,
    and the same cross-attention weights, to 1e-12 in float64."""
    layer = make_layer("decoder", norm_first, seed=22, dropout=0.2).eval()
    x, memory = _randn(23, B, T, D), _randn(24, B, S, D)
    y_full = layer(x, memory, memory_lengths=MEMORY_LENGTHS)
    cross_full = layer.cross_weights
    memory_kv = layer.memory_kv(memory)
    allowed = attention_mask(MEMORY_LENGTHS, B, 1, S, False)
    d = D // N
    cache = (np.zeros((B, N, 0, d)), np.zeros((B, N, 0, d)))
    for t in range(T):
        y_t, cache, cross_t = layer.step(x[:, t:t + 1], memory_kv, allowed, cache)
        assert y_t.shape == (B, 1, D) and cross_t.shape == (B, N, 1, S)
        assert cache[0].shape == cache[1].shape == (B, N, t + 1, d)
        prefix = layer(x[:, :t + 1], memory, memory_lengths=MEMORY_LENGTHS)
        _close(y_t, prefix[:, t:t + 1], f"step {t} vs forward on the prefix")
        _close(y_t, y_full[:, t:t + 1], f"step {t} vs forward on the whole")
        _close(cross_t, cross_full[:, :, t:t + 1], f"cross weights at step {t}")
        assert not cross_t[~np.broadcast_to(allowed, cross_t.shape)].any()
