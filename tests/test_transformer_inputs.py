"""The Transformer pieces' argument checks, their one-forward-one-backward rule,
and the sinusoidal positional encoding (values, and why it is built of sines)."""

import math
import re

import numpy as np
import pytest

from tinyattn.layernorm import LayerNorm, PositionalEncoding, sinusoid_table
from tinyattn.multihead import MultiHeadAttention
from tinyattn.transformer_layers import TransformerDecoderLayer, TransformerEncoderLayer

from .transformer_helpers import LENGTHS, MEMORY_LENGTHS, B, D, S, T, make_layer, make_mha

RNG = np.random.default_rng(0)
X, MEM = RNG.standard_normal((B, T, D)), RNG.standard_normal((B, S, D))


def _mha(**kw):
    return MultiHeadAttention(D, 2, rng=np.random.default_rng(0), **kw)


def _enc(**kw):
    return TransformerEncoderLayer(D, 2, 7, rng=np.random.default_rng(0), **kw)


def _dec(**kw):
    return TransformerDecoderLayer(D, 2, 7, rng=np.random.default_rng(0), **kw)


CONSTRUCTORS = {
    "heads_mha": (lambda: MultiHeadAttention(D, 3, rng=np.random.default_rng(0)),
                  ValueError, r"num_heads must divide d_model.*d_model=8, num_heads=3"),
    "heads_enc": (lambda: TransformerEncoderLayer(10, 4, 7, rng=np.random.default_rng(0)),
                  ValueError, r"d_model=10, num_heads=4"),
    "heads_dec": (lambda: TransformerDecoderLayer(6, 4, 7, rng=np.random.default_rng(0)),
                  ValueError, r"d_model=6, num_heads=4"),
    "dropout_mha": (lambda: _mha(dropout=1.0), ValueError,
                    r"dropout must be a number in \[0, 1\), got 1.0"),
    "dropout_enc": (lambda: _enc(dropout=-0.1), ValueError, r"dropout must be .*got -0.1"),
    "dropout_dec": (lambda: _dec(dropout="0.1"), ValueError, r"dropout must be .*got '0.1'"),
    "eps_zero": (lambda: LayerNorm(D, eps=0.0), ValueError,
                 r"eps must be a number in \(0, inf\), got 0.0"),
    "eps_negative": (lambda: LayerNorm(D, eps=-1e-5), ValueError, r"eps must be .*got -1e-05"),
    "norm_first": (lambda: _enc(norm_first="yes"), TypeError,
                   r"norm_first must be True or False, got 'yes'"),
    "d_ff": (lambda: TransformerDecoderLayer(D, 2, 0, rng=np.random.default_rng(0)),
             ValueError, r"d_ff must be a positive int, got 0"),
    "rng": (lambda: MultiHeadAttention(D, 2, rng=0), TypeError,
            r"rng must be a numpy.random.Generator"),
    "max_len": (lambda: PositionalEncoding(D, max_len=0), ValueError, r"max_len must be"),
}


@pytest.mark.parametrize("name", sorted(CONSTRUCTORS))
def test_bad_constructor_arguments(name):
    make, error, match = CONSTRUCTORS[name]
    with pytest.raises(error, match=match):
        make()


def _q(**over):
    """MHA cross-attention arguments with some replaced."""
    kw = {"query": X, "key": MEM, "value": MEM, **over}
    return lambda: _mha()(**kw)


MHA_CALLS = {
    "query_dtype": (_q(query=X.astype(np.float32)), TypeError,
                    r"query must have dtype float64 \(the layer's dtype\), got float32"),
    "query_2d": (_q(query=X[0]), ValueError, r"query must have shape \(\?, \?, 8\), got \(4, 8\)"),
    "key_width": (_q(key=np.zeros((B, S, D + 1))), ValueError,
                  r"key must have shape \(\?, \?, 8\), got \(3, 5, 9\)"),
    "value_steps": (_q(value=MEM[:, :2]), ValueError,
                    r"value must have shape \(3, 5, 8\), got \(3, 2, 8\)"),
    "key_batch": (_q(key=MEM[:2], value=MEM[:2]), ValueError,
                  r"query and key must have the same batch size, got 3 and 2"),
    "empty": (_q(key=MEM[:, :0], value=MEM[:, :0]), ValueError, r"at least one .* step"),
    "lengths_zero": (_q(key_lengths=np.array([0, 1, 1])), ValueError,
                     r"key_lengths must be in 1..5 .*key_lengths\[0\] = 0"),
    "lengths_long": (_q(key_lengths=np.array([1, 6, 1])), ValueError,
                     r"key_lengths must be in 1..5 .*key_lengths\[1\] = 6"),
    "lengths_shape": (_q(key_lengths=np.array([1, 2])), ValueError,
                      r"key_lengths must have shape \(3,\), got \(2,\)"),
    "lengths_float": (_q(key_lengths=np.array([1.0, 2.0, 3.0])), TypeError,
                      r"key_lengths must hold integers, got dtype float64"),
    "causal_cross": (_q(causal=True), ValueError,
                     r"causal=True needs as many queries as keys .* 4 queries and 5 keys"),
    "causal_type": (_q(causal=1), TypeError, r"causal must be True or False, got 1"),
}


@pytest.mark.parametrize("name", sorted(MHA_CALLS))
def test_mha_bad_input(name):
    call, error, match = MHA_CALLS[name]
    with pytest.raises(error, match=match):
        call()


def _layer_call(kind, **over):
    def call():
        layer = make_layer(kind)
        if kind == "encoder":
            return layer(**{"x": X, **over})
        return layer(**{"x": X, "memory": MEM, **over})
    return call


LAYER_CALLS = {
    "enc_dtype": (_layer_call("encoder", x=X.astype(np.float32)), TypeError,
                  r"x must have dtype float64"),
    "enc_width": (_layer_call("encoder", x=X[..., :5]), ValueError,
                  r"x must have shape \(\?, \?, 8\), got \(3, 4, 5\)"),
    "enc_lengths": (_layer_call("encoder", lengths=np.array([4, 5, 1])), ValueError,
                    r"lengths must be in 1..4 .*lengths\[1\] = 5"),
    "dec_memory_dtype": (_layer_call("decoder", memory=MEM.astype(np.float32)), TypeError,
                         r"memory must have dtype float64"),
    "dec_memory_batch": (_layer_call("decoder", memory=MEM[:1]), ValueError,
                         r"memory must have shape \(3, \?, 8\), got \(1, 5, 8\)"),
    "dec_lengths_shape": (_layer_call("decoder", lengths=LENGTHS[:, None]), ValueError,
                          r"lengths must have shape \(3,\), got \(3, 1\)"),
    "dec_memory_lengths": (_layer_call("decoder", memory_lengths=np.array([1, 0, 2])),
                           ValueError, r"memory_lengths must be in 1..5 .*\[1\] = 0"),
    "norm_width": (lambda: LayerNorm(D)(X[..., :3]), ValueError,
                   r"x must have shape \(\?, \?, 8\), got \(3, 4, 3\)"),
    "norm_dtype": (lambda: LayerNorm(D)(X.astype(np.float32)), TypeError,
                   r"x must have dtype float64"),
    "pe_too_long": (lambda: PositionalEncoding(D, max_len=3)(X), ValueError,
                    r"sequence of 4 positions is longer than .* max_len = 3"),
    "pe_rows": (lambda: PositionalEncoding(D, max_len=3).rows(1, 5), ValueError,
                r"max_len = 3"),
    "pe_width": (lambda: PositionalEncoding(D + 1)(X), ValueError,
                 r"x must have shape \(\?, \?, 9\), got \(3, 4, 8\)"),
}


@pytest.mark.parametrize("name", sorted(LAYER_CALLS))
def test_layer_bad_input(name):
    call, error, match = LAYER_CALLS[name]
    with pytest.raises(error, match=match):
        call()


def _forwards():
    """name -> (module, forward callable, an upstream gradient of the right shape)."""
    mha = make_mha()
    enc, dec = make_layer("encoder"), make_layer("decoder")
    norm, pe = LayerNorm(D), PositionalEncoding(D)
    return {
        "mha": (mha, lambda: mha(X, MEM, MEM), (X, np.zeros((B, 2, T, S)))),
        "encoder": (enc, lambda: enc(X), (X,)),
        "encoder_padded": (enc, lambda: enc(X, lengths=LENGTHS), (X,)),
        "decoder": (dec, lambda: dec(X, MEM), (X,)),
        "decoder_padded": (dec, lambda: dec(X, MEM, LENGTHS, MEMORY_LENGTHS), (X,)),
        "layernorm": (norm, lambda: norm(X), (X,)),
        "positional": (pe, lambda: pe(X), (X,)),
    }


@pytest.mark.parametrize("name", list(_forwards()))
def test_one_forward_one_backward(name):
    """A backward before any forward, or a second one after a single forward, is an
    error; one forward then one backward works, with or without lengths (the layers
    once cached nothing without lengths and refused that backward)."""
    module, forward, douts = _forwards()[name]
    with pytest.raises(RuntimeError, match=r"backward\(\) called without a forward pass"):
        module.backward(*douts)
    forward()
    grads = module.backward(*douts)
    assert grads is not None
    with pytest.raises(RuntimeError, match=r"backward\(\) called without a forward pass"):
        module.backward(*douts)


@pytest.mark.parametrize("name, dy_shape", [
    ("encoder_padded", (1, T, D)), ("encoder", (B, T + 1, D)),
    ("decoder_padded", (1, T, D)), ("decoder", (B, T, D + 1)),
    ("layernorm", (1, T, D)), ("positional", (B, 1, D)), ("mha", (B, T - 1, D)),
])
def test_backward_refuses_an_upstream_gradient_of_another_shape(name, dy_shape):
    """Nothing is broadcast: a (1, T, D) dy for a batch of 3 with lengths used to
    pass (dy * keep broadcast it to (B, T, D))."""
    module, forward, douts = _forwards()[name]
    forward()
    wrong = (np.ones(dy_shape),) + douts[1:]
    with pytest.raises(ValueError, match=r"(dy|dout) must have shape \(.*\), got "
                       + re.escape(str(dy_shape))):
        module.backward(*wrong)


def test_mha_backward_refuses_a_dattn_of_another_shape():
    mha = make_mha()
    mha(X, MEM, MEM)
    with pytest.raises(ValueError, match=r"dattn must have shape \(3, 2, 4, 5\), got"):
        mha.backward(X, np.zeros((B, 2, T, S - 1)))


# ----- the positional encoding ---------------------------------------------------------------

@pytest.mark.parametrize("d_model", [8, 7], ids=["even", "odd"])
def test_sinusoid_table_against_the_formula(d_model):
    """PE[p, 2i] = sin(p / 10000^(2i/D)), PE[p, 2i+1] = cos(p / 10000^(2i/D)); an odd
    D ends with a sine."""
    L = 40
    table = sinusoid_table(L, d_model)
    want = np.empty((L, d_model))
    for p in range(L):
        for j in range(d_model):
            angle = p / 10000 ** ((j - j % 2) / d_model)
            want[p, j] = math.sin(angle) if j % 2 == 0 else math.cos(angle)
    np.testing.assert_allclose(table, want, rtol=0, atol=1e-12)
    pe = PositionalEncoding(d_model, max_len=L)
    np.testing.assert_array_equal(pe.table, table)
    x = np.random.default_rng(1).standard_normal((2, 6, d_model))
    np.testing.assert_array_equal(pe(x), x + table[None, :6])
    assert pe.backward(x) is x  # the positions are constants
    assert PositionalEncoding(d_model, dtype=np.float32).table.dtype == np.float32


def _offset_matrix(k, d_model):
    """M_k, block-diagonal: a 2x2 rotation by k·ω_i for each (sin, cos) column pair,
    so that [sin(pω), cos(pω)] @ block = [sin((p+k)ω), cos((p+k)ω)]."""
    M = np.zeros((d_model, d_model))
    for i in range(d_model // 2):
        a = k / 10000 ** (2 * i / d_model)
        c, s = math.cos(a), math.sin(a)
        M[2 * i:2 * i + 2, 2 * i:2 * i + 2] = [[c, -s], [s, c]]
    return M


def test_relative_offset_is_linear():
    """For each offset k one fixed matrix M_k maps every position's encoding to the
    encoding k positions later: PE[p + k] = PE[p] @ M_k for all p."""
    L, d_model = 60, 8
    pe = sinusoid_table(L, d_model)
    for k in range(0, 12):
        M = _offset_matrix(k, d_model)
        np.testing.assert_allclose(pe[:L - k] @ M, pe[k:], rtol=0, atol=1e-12,
                                   err_msg=f"offset {k}")
        if k:  # and it is M_k's own offset it encodes, not any other
            assert np.abs(pe[:L - k - 1] @ M - pe[k + 1:]).max() > 1e-2
    # an odd D: the (sin, cos) pairs rotate the same way; the last, lone sine cannot
    odd = sinusoid_table(L, 7)
    M = _offset_matrix(3, 7)
    np.testing.assert_allclose((odd[:L - 3] @ M)[:, :6], odd[3:, :6], rtol=0, atol=1e-12)
