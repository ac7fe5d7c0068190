"""Parity with PyTorch for the Transformer pieces, and their bridge.

`MultiHeadAttention`, `LayerNorm` and the encoder and decoder layers next to the
`tinyattn.interop.to_torch` copy (``nn.MultiheadAttention``, ``nn.LayerNorm``,
``nn.TransformerEncoderLayer``, ``nn.TransformerDecoderLayer``) on a padded
float64 batch: outputs at real positions, attention weights, every input and
parameter gradient to 1e-10. PyTorch runs in train mode with dropout 0 and
gradients on (its eval-mode "fast path" is another implementation); it computes
the pad positions too, so it gets an upstream gradient that is 0 there. The
parameters are read back from PyTorch by this file's own map of the layouts
(`as_tiny`), independent of the bridge's. Then `from_torch` of `to_torch`.
"""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import tinyattn as ta  # noqa: E402
from tinyattn.functional import length_mask  # noqa: E402
from tinyattn.interop import from_torch, to_torch  # noqa: E402
from tinyattn.layernorm import LayerNorm  # noqa: E402
from tinyattn.layers import Dropout  # noqa: E402
from tinyattn.transformer_layers import (  # noqa: E402
    TransformerDecoderLayer,
    TransformerEncoderLayer,
)

from .transformer_helpers import (  # noqa: E402
    LENGTHS,
    MEMORY_LENGTHS,
    B,
    D,
    N,
    S,
    T,
    make_layer,
    make_mha,
    make_norm,
    run,
)

pytestmark = pytest.mark.torch
ATOL = 1e-10
CHILDREN = {"self_attn": "self_attn", "cross_attn": "multihead_attn", "ff1": "linear1",
            "ff2": "linear2", "norm1": "norm1", "norm2": "norm2", "norm3": "norm3"}


def _randn(seed, *shape):
    return np.random.default_rng(seed).standard_normal(shape)


def as_tiny(module, read, prefix=""):
    """PyTorch's parameters (``read(p)``: values or gradients) in tinyattn's names and
    layouts: ``W = weight.T``, the in-projection split into q, k, v."""
    nn = torch.nn
    if isinstance(module, nn.MultiheadAttention):
        W, b = read(module.in_proj_weight), read(module.in_proj_bias)
        out = {}
        for k, name in enumerate("qkv"):
            out[f"{prefix}W_{name}"] = W[k * D:(k + 1) * D].T
            out[f"{prefix}b_{name}"] = b[k * D:(k + 1) * D]
        out[prefix + "W_o"], out[prefix + "b_o"] = (read(module.out_proj.weight).T,
                                                    read(module.out_proj.bias))
        return out
    if isinstance(module, nn.LayerNorm):
        return {prefix + "gamma": read(module.weight), prefix + "beta": read(module.bias)}
    if isinstance(module, nn.Linear):
        return {prefix + "W": read(module.weight).T, prefix + "b": read(module.bias)}
    out = {}
    for ours, theirs in CHILDREN.items():
        if hasattr(module, theirs):
            out.update(as_tiny(getattr(module, theirs), read, prefix + ours + "."))
    return out


def values(p):
    return p.detach().numpy()


def grads(p):
    return p.grad.numpy()


def leaf(a):
    return torch.tensor(a, requires_grad=True)


def pad_mask(lengths, steps):
    """PyTorch's key_padding_mask: True where a position is ignored."""
    return None if lengths is None else torch.tensor(~length_mask(lengths, steps))


def causal_mask(steps):
    return torch.triu(torch.ones(steps, steps, dtype=torch.bool), 1)  # True: j > i masked


def param_errors(ours, module, errors):
    theirs = as_tiny(module, grads)
    assert sorted(theirs) == sorted(ours)
    for name, g in ours.items():
        errors["d" + name] = float(np.abs(g - theirs[name]).max())


def assert_within(errors):
    worst = max(errors, key=errors.get)
    assert errors[worst] <= ATOL, f"largest error {errors[worst]:.2e} in {worst}: {errors}"
    return errors[worst]


# ----- the parity runs (a function each, so a script can print their errors) -------------------

def mha_errors(case):
    """Cross-attention with ``key_lengths`` or causal self-attention (with lengths)."""
    mha = make_mha(seed=1)
    if case == "cross":
        q, k, v = _randn(2, B, T, D), _randn(3, B, S, D), _randn(4, B, S, D)
        kw, masks = {"key_lengths": MEMORY_LENGTHS}, {
            "key_padding_mask": pad_mask(MEMORY_LENGTHS, S)}
    else:
        x = _randn(2, B, T, D)
        q, k, v = x, x.copy(), x.copy()
        kw = {"key_lengths": LENGTHS, "causal": True}
        masks = {"key_padding_mask": pad_mask(LENGTHS, T), "attn_mask": causal_mask(T)}
    dout, dattn = _randn(5, B, T, D), _randn(6, B, N, T, k.shape[1])
    (out, attn), dins, ours = run(mha, (q, k, v), (dout, dattn), **kw)
    module = to_torch(mha)
    ins = [leaf(a) for a in (q, k, v)]
    out_t, attn_t = module(*ins, need_weights=True, average_attn_weights=False, **masks)
    ((out_t * torch.tensor(dout)).sum() + (attn_t * torch.tensor(dattn)).sum()).backward()
    errors = {"out": np.abs(out - values(out_t)).max(), "attn": np.abs(attn - values(attn_t)).max()}
    for name, d, t in zip(("dquery", "dkey", "dvalue"), dins, ins):
        errors[name] = np.abs(d - grads(t)).max()
    param_errors(ours, module, errors)
    return errors


def norm_errors():
    norm = make_norm(seed=7)
    norm.eps = 1e-3  # not the default: to_torch carries it
    x, dy = 2.0 * _randn(8, B, T, D) + 1.0, _randn(9, B, T, D)
    y, (dx,), ours = run(norm, (x,), (dy,))
    module = to_torch(norm)
    assert module.eps == 1e-3
    x_t = leaf(x)
    y_t = module(x_t)
    (y_t * torch.tensor(dy)).sum().backward()
    errors = {"out": np.abs(y - values(y_t)).max(), "dx": np.abs(dx - grads(x_t)).max()}
    param_errors(ours, module, errors)
    return errors


def layer_errors(kind, norm_first, padded):
    """An encoder or decoder layer next to PyTorch's, with every padding mask."""
    layer = make_layer(kind, norm_first, seed=10)
    x, memory, dy = _randn(11, B, T, D), _randn(12, B, S, D), _randn(13, B, T, D)
    lengths, memory_lengths = (LENGTHS, MEMORY_LENGTHS) if padded else (None, None)
    module = to_torch(layer)
    x_t, mem_t = leaf(x), leaf(memory)
    if kind == "encoder":
        y, dins, ours = run(layer, (x,), (dy,), lengths=lengths)
        y_t = module(x_t, src_key_padding_mask=pad_mask(lengths, T))
        ins_t = (x_t,)
    else:
        y, dins, ours = run(layer, (x, memory), (dy,), lengths=lengths,
                            memory_lengths=memory_lengths)
        y_t = module(x_t, mem_t, tgt_mask=causal_mask(T),
                     tgt_key_padding_mask=pad_mask(lengths, T),
                     memory_key_padding_mask=pad_mask(memory_lengths, S))
        ins_t = (x_t, mem_t)
    real = np.ones((B, T, 1)) if lengths is None else length_mask(lengths, T)[:, :, None]
    (y_t * torch.tensor(dy * real)).sum().backward()  # PyTorch's pad outputs: no gradient
    errors = {"out": np.abs((y - values(y_t)) * real).max()}
    for name, d, t in zip(("dx", "dmemory"), dins, ins_t):
        errors[name] = np.abs(d - grads(t)).max()
    param_errors(ours, module, errors)
    return errors


@pytest.mark.parametrize("case", ["cross", "causal_self"])
def test_mha_parity(case):
    assert_within(mha_errors(case))


def test_layernorm_parity():
    assert_within(norm_errors())


@pytest.mark.parametrize("padded", [False, True], ids=["full", "padded"])
@pytest.mark.parametrize("norm_first", [False, True], ids=["post_ln", "pre_ln"])
@pytest.mark.parametrize("kind", ["encoder", "decoder"])
def test_layer_parity(kind, norm_first, padded):
    errors = layer_errors(kind, norm_first, padded)
    assert len(errors) == (18 if kind == "encoder" else 29)  # out, inputs, every parameter
    assert_within(errors)


# ----- the bridge both ways --------------------------------------------------------------------

def _pieces(dtype=np.float64):
    """One of each kind, jiggled, with dropout and eps away from their defaults."""
    enc = make_layer("encoder", norm_first=True, seed=20, dropout=0.25, dtype=dtype)
    dec = make_layer("decoder", norm_first=False, seed=21, dropout=0.1, dtype=dtype)
    dec.norm2.eps, dec.drop3.p, enc.self_attn.drop.p = 1e-3, 0.3, 0.05
    norm = make_norm(seed=22, dtype=dtype)
    norm.eps = 1e-6
    return {"mha": make_mha(seed=23, dropout=0.2, dtype=dtype), "norm": norm,
            "encoder": enc, "decoder": dec}


def _settings(layer):
    """Everything but the weights that must survive the trip."""
    found = {"type": type(layer), "dtype": layer.dtype, "training": layer.training,
             "norm_first": getattr(layer, "norm_first", None)}
    for name, m in layer.named_modules():
        if isinstance(m, Dropout):
            found[name + "p"] = m.p
        if isinstance(m, LayerNorm):
            found[name + "eps"] = m.eps
    return found


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("name", ["mha", "norm", "encoder", "decoder"])
def test_round_trip(name, dtype):
    """to_torch keeps the documented layout (read back by `as_tiny`), the dtype,
    dropouts, eps, norm_first and mode; from_torch of it gives identical parameters."""
    layer = _pieces(dtype)[name].eval()
    module = to_torch(layer)
    want = torch.float64 if dtype is np.float64 else torch.float32
    assert all(p.dtype == want for p in module.parameters()) and not module.training
    theirs = as_tiny(module, values)
    ours = {n: v for n, v, _ in layer.named_parameters()}
    assert sorted(theirs) == sorted(ours)
    for n, v in ours.items():
        np.testing.assert_array_equal(theirs[n], v, err_msg=n)
    back = from_torch(module)
    assert _settings(back) == _settings(layer)
    for (n, a, _), (m, b, _) in zip(layer.named_parameters(), back.named_parameters()):
        assert n == m
        np.testing.assert_array_equal(a, b, err_msg=n)


@pytest.mark.parametrize("kind", ["encoder", "decoder"])
def test_from_torch_of_a_native_layer(kind):
    """A layer PyTorch built and initialised itself (dropout on, eval mode, eps and
    norm_first not the defaults) computes the same in tinyattn."""
    torch.manual_seed(0)
    cls = torch.nn.TransformerEncoderLayer if kind == "encoder" else \
        torch.nn.TransformerDecoderLayer
    native = cls(D, N, 7, dropout=0.2, layer_norm_eps=1e-6, batch_first=True, norm_first=True,
                 dtype=torch.float64).eval()
    layer = from_torch(native)
    want_cls = TransformerEncoderLayer if kind == "encoder" else TransformerDecoderLayer
    assert type(layer) is want_cls and not layer.training
    assert layer.norm_first and layer.norm1.eps == 1e-6 and layer.drop_ff.p == 0.2
    x, memory = _randn(30, B, T, D), _randn(31, B, S, D)
    args = (x,) if kind == "encoder" else (x, memory)
    kw = {} if kind == "encoder" else {"tgt_mask": causal_mask(T)}
    want = values(native(*(torch.tensor(a) for a in args), **kw))  # grad on: no fast path
    np.testing.assert_allclose(layer(*args), want, rtol=0, atol=ATOL)
    assert from_torch(torch.nn.MultiheadAttention(D, N)).dtype is np.float32


@pytest.mark.parametrize("make, match", [
    (lambda: torch.nn.MultiheadAttention(D, N, kdim=5), "kdim=5"),
    (lambda: torch.nn.MultiheadAttention(D, N, add_bias_kv=True), "add_bias_kv=True"),
    (lambda: torch.nn.MultiheadAttention(D, N, bias=False), "bias=False"),
    (lambda: torch.nn.MultiheadAttention(D, N, dtype=torch.float16), "float32 or float64"),
    (lambda: torch.nn.LayerNorm((2, 4)), r"normalized_shape=\(2, 4\)"),
    (lambda: torch.nn.LayerNorm(D, elementwise_affine=False), "elementwise_affine=False"),
    (lambda: torch.nn.TransformerEncoderLayer(D, N, 7, activation="gelu"), "uses ReLU"),
    (lambda: torch.nn.TransformerDecoderLayer(D, N, 7, bias=False), "bias=False"),
    (lambda: torch.nn.Linear(D, D), "TransformerEncoderLayer, TransformerDecoderLayer or a "
                                    "TorchSeq2Seq, got Linear"),
], ids=["kdim", "bias_kv", "mha_no_bias", "float16", "2d_norm", "no_affine", "gelu",
        "layer_no_bias", "linear"])
def test_from_torch_refuses(make, match):
    with pytest.raises(ValueError, match=match):
        from_torch(make())


def test_to_torch_refuses_another_kind():
    with pytest.raises(TypeError, match="StackedRNN, MultiHeadAttention, LayerNorm, "
                                        "TransformerEncoderLayer, TransformerDecoderLayer or "
                                        "Seq2Seq, got Linear"):
        to_torch(ta.Linear(D, D, rng=np.random.default_rng(0)))
