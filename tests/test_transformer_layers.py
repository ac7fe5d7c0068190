"""LayerNorm, MultiHeadAttention and the Transformer encoder and decoder layers:
float64 gradient checks of every input and parameter (with and without padding,
both norm placements, dropout with fixed masks), the same checks failing on a
deliberately wrong backward, and how the layers use dropout.

Padding, causality and cached decoding: test_transformer_padding.py; bad input
and the positional encoding: test_transformer_inputs.py.
"""

import numpy as np
import pytest

from tinyattn import multihead
from tinyattn.functional import softmax_backward
from tinyattn.gradcheck import TOL_LAYER, check_module
from tinyattn.layernorm import LayerNorm
from tinyattn.layers import Dropout
from tinyattn.transformer_layers import _Block

from .transformer_helpers import (
    LENGTHS,
    MEMORY_LENGTHS,
    B,
    D,
    FixedMasks,
    S,
    T,
    make_layer,
    make_mha,
    make_norm,
    run,
    seed_dropouts,
)

MHA_PARAMS = {f"{p}_{n}" for p in "Wb" for n in "qkvo"}


def _inputs(seed, *shapes):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(s) for s in shapes]


def _layer_args(kind, seed, padded):
    """The positional inputs and keyword arguments of an encoder or decoder layer."""
    x, memory = _inputs(seed, (B, T, D), (B, S, D))
    if kind == "encoder":
        return [x], {"lengths": LENGTHS} if padded else {}
    kw = {"lengths": LENGTHS, "memory_lengths": MEMORY_LENGTHS} if padded else {}
    return [x, memory], kw


def _assert_passed(result, names):
    assert {r.name for r in result.reports} == set(names)
    assert result.passed and result.max_error <= TOL_LAYER, str(result)


# ----- LayerNorm ------------------------------------------------------------------------

@pytest.mark.parametrize("shape", [(6, D), (B, T, D)], ids=["2d", "3d"])
def test_layernorm_gradcheck(shape):
    norm = make_norm(seed=1)
    assert np.abs(norm.params["gamma"] - 1).min() > 1e-3  # a non-unit gain everywhere
    x, = _inputs(2, shape)
    _assert_passed(check_module(norm, 3.0 * x + 1.0), {"x", "gamma", "beta"})


def test_layernorm_check_fails_with_the_gain_outside_the_means(monkeypatch):
    """dx = γ ⊙ (dy − mean(dy) − x̂ mean(dy x̂)) / σ is wrong: the means must see γ ⊙ dy.
    With γ = 1 the two agree, which is why the layers are checked with a jiggled γ."""
    def gain_outside(self, dy):
        xhat, rstd = self._take_cache()
        dy2 = dy.reshape(-1, self.d)
        self.grads["gamma"] += np.einsum("nd,nd->d", dy2, xhat.reshape(-1, self.d))
        self.grads["beta"] += dy2.sum(axis=0)
        g = dy  # the mistake: the gain multiplies the result instead
        return (g - g.mean(axis=-1, keepdims=True)
                - xhat * np.mean(g * xhat, axis=-1, keepdims=True)) * rstd * self.params["gamma"]

    x, = _inputs(3, (B, T, D))
    unit_gain = LayerNorm(D)
    unit_gain.params["beta"][...] = 0.5
    monkeypatch.setattr(LayerNorm, "backward", gain_outside)
    assert check_module(unit_gain, x).passed  # γ = 1 hides the mistake
    result = check_module(make_norm(seed=1), x)
    assert result.failed == ["x"], str(result)  # dγ and dβ do not go through it


# ----- MultiHeadAttention -----------------------------------------------------------------

def _mha_cross_args(seed):
    q, k, v = _inputs(seed, (B, T, D), (B, S, D), (B, S, D))
    return (q, k, v), {"key_lengths": MEMORY_LENGTHS}


def _mha_self_args(seed):
    x, = _inputs(seed, (B, T, D))
    # three copies: the checker perturbs arrays by name, and one array under three
    # names would move query, key and value at once
    return (x, x.copy(), x.copy()), {"key_lengths": LENGTHS, "causal": True}


@pytest.mark.parametrize("make_args", [_mha_cross_args, _mha_self_args],
                         ids=["cross_key_lengths", "self_causal"])
def test_mha_gradcheck(make_args):
    """Every input and parameter, with random upstream gradients of both outputs
    (``dout`` and ``dattn``)."""
    mha = make_mha(seed=4)
    args, kw = make_args(5)
    result = check_module(mha, *args, **kw)
    _assert_passed(result, {"query", "key", "value"} | MHA_PARAMS)
    assert len(result.douts) == 2 and result.douts[1].shape == (B, 2, T, args[1].shape[1])


def test_mha_gradcheck_without_dattn():
    """``backward(dout)`` is ``backward(dout, zeros)``; and a check with ``dattn``
    alone (``dout = 0``) passes, so that path is checked by itself."""
    mha = make_mha(seed=4)
    (q, k, v), kw = _mha_cross_args(6)
    dout, dattn = _inputs(7, (B, T, D), (B, 2, T, S))
    _, without, grads = run(mha, (q, k, v), (dout,), **kw)
    _, with_zero, grads0 = run(mha, (q, k, v), (dout, np.zeros_like(dattn)), **kw)
    for a, b in zip(without + tuple(grads.values()), with_zero + tuple(grads0.values())):
        np.testing.assert_array_equal(a, b)
    _, only_attn, _ = run(mha, (q, k, v), (np.zeros_like(dout), dattn), **kw)
    assert np.abs(only_attn[0]).max() > 1e-3  # the weights' gradient reaches the query


def _drop_rowsum(dA, cache):
    return cache[0] * dA  # A ⊙ dA: the − A ⊙ rowsum(dA ⊙ A) term is gone


@pytest.mark.parametrize("mistake", ["no_rowsum", "no_scale"])
def test_mha_check_fails_on_a_wrong_backward(monkeypatch, mistake):
    mha = make_mha(seed=4)
    if mistake == "no_rowsum":
        monkeypatch.setattr(multihead, "masked_softmax_backward", _drop_rowsum)
    else:  # undo the backward's `dS *= scale`: dS without 1/√d
        monkeypatch.setattr(multihead, "masked_softmax_backward",
                            lambda dA, cache: softmax_backward(dA, cache) / mha.scale)
    args, kw = _mha_cross_args(5)
    result = check_module(mha, *args, **kw)
    failed = set(result.failed)
    assert {"query", "key", "W_q", "W_k"} <= failed, str(result)
    assert not failed & {"value", "W_v", "b_v", "W_o", "b_o"}, str(result)  # not on the V path


# ----- encoder and decoder layers ---------------------------------------------------------

def _layer_param_names(layer, prefix=""):
    return {prefix + n for n, _, _ in layer.named_parameters()}


@pytest.mark.parametrize("padded", [False, True], ids=["full", "padded"])
@pytest.mark.parametrize("norm_first", [False, True], ids=["post_ln", "pre_ln"])
@pytest.mark.parametrize("kind", ["encoder", "decoder"])
def test_layer_gradcheck(kind, norm_first, padded):
    layer = make_layer(kind, norm_first, seed=8)
    args, kw = _layer_args(kind, 9, padded)
    result = check_module(layer, *args, **kw)
    inputs = {"x"} if kind == "encoder" else {"x", "memory"}
    names = _layer_param_names(layer)
    assert len(names) == (16 if kind == "encoder" else 26)  # 8 per MHA, 2 per LN and Linear
    _assert_passed(result, inputs | names)


def _residual_dropped(self, dy, norm, drop, sublayer_backward):
    """Post-LN `_block_backward` that forgets the residual path around the sublayer."""
    if self.norm_first:
        return dy + norm.backward(sublayer_backward(drop.backward(dy)))
    return sublayer_backward(drop.backward(norm.backward(dy)))


def _relu_forgotten(self, df):
    dh = self.drop_ff.backward(self.ff2.backward(df))  # the mistake: no ReLU mask
    return self.ff1.backward(dh)


@pytest.mark.parametrize("mistake", [_residual_dropped, _relu_forgotten],
                         ids=["no_residual", "no_relu_mask"])
@pytest.mark.parametrize("kind", ["encoder", "decoder"])
def test_layer_check_fails_on_a_wrong_backward(monkeypatch, kind, mistake):
    layer = make_layer(kind, norm_first=False, seed=8)
    args, kw = _layer_args(kind, 9, padded=True)
    attr = "_block_backward" if mistake is _residual_dropped else "_feed_forward_backward"
    monkeypatch.setattr(_Block, attr, mistake)
    result = check_module(layer, *args, **kw)
    # wrong before the feed-forward block's hidden layer (the residual: before its input)
    upstream = "ff1.W" if mistake is _relu_forgotten else "self_attn.W_v"
    assert {"x", upstream} <= set(result.failed), str(result)
    assert "ff2.W" not in result.failed, str(result)  # right after it


# ----- dropout inside the layers ------------------------------------------------------------

@pytest.mark.parametrize("what", ["mha", "encoder", "decoder_pre_ln"])
def test_gradcheck_with_dropout_and_fixed_masks(what):
    """Train mode, dropout 0.3: the checker's forwards all draw the same masks
    (`FixedMasks` reseeds the dropouts each time), so the check is exact."""
    if what == "mha":
        layer = make_mha(seed=10, dropout=0.3)
        args, kw = _mha_self_args(11)
        names = ["query", "key", "value"]
    else:
        kind = what.split("_")[0]
        layer = make_layer(kind, norm_first=what.endswith("pre_ln"), seed=10, dropout=0.3)
        args, kw = _layer_args(kind, 11, padded=True)
        names = ["x", "memory"][: len(args)]
    wrapped = FixedMasks(layer, seed=12)
    result = check_module(wrapped, *args, names=names, **kw)
    _assert_passed(result, set(names) | _layer_param_names(layer, "layer."))
    # the masks were there: the train-mode output differs from the eval-mode one
    seed_dropouts(layer, 12)
    y_train = np.asarray(layer(*args, **kw)[0] if what == "mha" else layer(*args, **kw))
    layer.eval()
    y_eval = np.asarray(layer(*args, **kw)[0] if what == "mha" else layer(*args, **kw))
    assert np.abs(y_train - y_eval).max() > 1e-2


@pytest.mark.parametrize("norm_first", [False, True], ids=["post_ln", "pre_ln"])
@pytest.mark.parametrize("kind", ["encoder", "decoder"])
def test_eval_mode_is_dropout_zero(kind, norm_first):
    """A dropout-0.4 layer in eval mode computes exactly what the same weights
    compute with dropout 0 (in train mode), gradients included."""
    layer = make_layer(kind, norm_first, seed=13, dropout=0.4).eval()
    plain = make_layer(kind, norm_first, seed=13, dropout=0.0)
    args, kw = _layer_args(kind, 14, padded=True)
    dy, = _inputs(15, (B, T, D))
    y, dins, grads = run(layer, args, (dy,), **kw)
    y0, dins0, grads0 = run(plain, args, (dy,), **kw)
    np.testing.assert_array_equal(y, y0)
    for a, b in zip(dins, dins0):
        np.testing.assert_array_equal(a, b)
    for name in grads0:
        np.testing.assert_array_equal(grads[name], grads0[name], err_msg=name)


@pytest.mark.parametrize("kind, expected", [
    ("encoder", ["self_attn.drop", "drop_ff", "drop1", "drop2"]),
    ("decoder", ["self_attn.drop", "cross_attn.drop", "drop_ff", "drop1", "drop2", "drop3"]),
])
def test_each_use_of_dropout_is_its_own_layer(monkeypatch, kind, expected):
    """Distinct Dropout objects, and none draws two masks in one forward (a second
    draw would overwrite the mask the backward needs)."""
    layer = make_layer(kind, seed=16, dropout=0.3)
    drops = {name[:-1]: m for name, m in layer.named_modules() if isinstance(m, Dropout)}
    assert sorted(drops) == sorted(expected)
    assert len({id(m) for m in drops.values()}) == len(expected)
    assert all(m.p == 0.3 for m in drops.values())
    draws = []
    original = Dropout.mask

    def counting(self, shape):
        draws.append(id(self))
        return original(self, shape)

    monkeypatch.setattr(Dropout, "mask", counting)
    seed_dropouts(layer, 17)
    args, kw = _layer_args(kind, 18, padded=True)
    layer(*args, **kw)
    assert sorted(draws) == sorted(id(m) for m in drops.values())  # each exactly once
