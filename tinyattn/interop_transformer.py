"""The PyTorch bridge of the Transformer pieces; `tinyattn.interop.to_torch` and
`from_torch` hand these four kinds over to `to_torch` and `from_torch` here.

==========================  ====================================
tinyattn                    PyTorch (``batch_first=True``)
==========================  ====================================
`MultiHeadAttention`        ``nn.MultiheadAttention``
`LayerNorm`                 ``nn.LayerNorm``
`TransformerEncoderLayer`   ``nn.TransformerEncoderLayer``
`TransformerDecoderLayer`   ``nn.TransformerDecoderLayer``
==========================  ====================================

tinyattn is row-vector (``y = x @ W + b``), PyTorch stores ``weight = W.T``::

    in_proj_weight (3D, D) = [W_q.T ; W_k.T ; W_v.T]    in_proj_bias = [b_q ; b_k ; b_v]
    out_proj.weight = W_o.T    out_proj.bias = b_o
    LayerNorm: weight = gamma, bias = beta, eps = eps
    linear1 = ff1 (weight = W.T, bias = b), linear2 = ff2
    self_attn = self_attn, multihead_attn = cross_attn, norm1..3 = norm1..3

Each dropout probability travels with its own use (``dropout``, ``dropout1..3``
and the attentions' ``dropout`` are ``drop_ff``, ``drop1..3`` and ``drop``), each
LayerNorm's eps with its norm, and so do ``norm_first`` and the train/eval mode.
The two draw their dropout masks differently: outputs agree in eval mode or
with dropout 0. PyTorch is imported only inside the functions.

Examples
--------
>>> import numpy as np
>>> from tinyattn.interop import from_torch, to_torch
>>> from tinyattn.transformer_layers import TransformerDecoderLayer
>>> layer = TransformerDecoderLayer(8, 2, 16, dropout=0.1, norm_first=True,
...                                 rng=np.random.default_rng(0))
>>> twin = to_torch(layer)
>>> type(twin).__name__, twin.norm_first, twin.dropout2.p, twin.linear1.weight.shape
('TransformerDecoderLayer', True, 0.1, torch.Size([16, 8]))
>>> back = from_torch(twin)
>>> bool(np.array_equal(back.cross_attn.params["W_k"], layer.cross_attn.params["W_k"]))
True
"""

from __future__ import annotations

import numpy as np

from tinyattn._validate import check_real
from tinyattn.layernorm import LayerNorm
from tinyattn.multihead import MultiHeadAttention
from tinyattn.transformer_layers import TransformerDecoderLayer, TransformerEncoderLayer

KINDS = (MultiHeadAttention, LayerNorm, TransformerEncoderLayer, TransformerDecoderLayer)
TORCH_KINDS = ("MultiheadAttention", "LayerNorm", "TransformerEncoderLayer",
               "TransformerDecoderLayer")
# tinyattn child -> PyTorch child, for the layers (the decoder's cross_attn is last)
_CHILDREN = {"self_attn": "self_attn", "ff1": "linear1", "ff2": "linear2", "norm1": "norm1",
             "norm2": "norm2", "norm3": "norm3", "cross_attn": "multihead_attn"}
_DROPOUTS = {"drop_ff": "dropout", "drop1": "dropout1", "drop2": "dropout2",
             "drop3": "dropout3"}


def torch_kinds(nn) -> tuple:
    """The PyTorch classes `from_torch` takes here."""
    return tuple(getattr(nn, name) for name in TORCH_KINDS)


def _tensor(torch, array, dtype):
    return torch.from_numpy(np.ascontiguousarray(array)).to(dtype)


def _numpy(tensor) -> np.ndarray:
    return tensor.detach().cpu().numpy()


# ----- one piece each way --------------------------------------------------------------------

def _mha_out(torch, mha, tm, dtype):
    p = mha.params
    tm.in_proj_weight.copy_(_tensor(torch, np.concatenate([p["W_q"].T, p["W_k"].T,
                                                           p["W_v"].T]), dtype))
    tm.in_proj_bias.copy_(_tensor(torch, np.concatenate([p["b_q"], p["b_k"], p["b_v"]]), dtype))
    tm.out_proj.weight.copy_(_tensor(torch, p["W_o"].T, dtype))
    tm.out_proj.bias.copy_(_tensor(torch, p["b_o"], dtype))
    tm.dropout = mha.drop.p


def _mha_in(tm, mha, where):
    D = mha.d_model
    W, b = _numpy(tm.in_proj_weight), _numpy(tm.in_proj_bias)
    for k, name in enumerate("qkv"):
        mha.params["W_" + name][...] = W[k * D:(k + 1) * D].T
        mha.params["b_" + name][...] = b[k * D:(k + 1) * D]
    mha.params["W_o"][...] = _numpy(tm.out_proj.weight).T
    mha.params["b_o"][...] = _numpy(tm.out_proj.bias)
    mha.drop.p = check_real(tm.dropout, f"{where}dropout", "[0, 1)")


def _norm_out(torch, norm, tn, dtype):
    tn.weight.copy_(_tensor(torch, norm.params["gamma"], dtype))
    tn.bias.copy_(_tensor(torch, norm.params["beta"], dtype))
    tn.eps = norm.eps


def _norm_in(tn, norm, where):
    norm.params["gamma"][...] = _numpy(tn.weight)
    norm.params["beta"][...] = _numpy(tn.bias)
    norm.eps = check_real(tn.eps, f"{where}eps", "(0, inf)")


def _layer_out(torch, layer, module, dtype):
    for ours, theirs in _CHILDREN.items():
        if not hasattr(layer, ours):  # norm3, cross_attn: the decoder's
            continue
        child, twin = getattr(layer, ours), getattr(module, theirs)
        if isinstance(child, MultiHeadAttention):
            _mha_out(torch, child, twin, dtype)
        elif isinstance(child, LayerNorm):
            _norm_out(torch, child, twin, dtype)
        else:  # Linear
            twin.weight.copy_(_tensor(torch, child.params["W"].T, dtype))
            twin.bias.copy_(_tensor(torch, child.params["b"], dtype))
    for ours, theirs in _DROPOUTS.items():
        if hasattr(layer, ours):
            getattr(module, theirs).p = getattr(layer, ours).p


def _layer_in(module, layer):
    for ours, theirs in _CHILDREN.items():
        if not hasattr(layer, ours):
            continue
        child, twin = getattr(layer, ours), getattr(module, theirs)
        if isinstance(child, MultiHeadAttention):
            _mha_in(twin, child, theirs + ".")
        elif isinstance(child, LayerNorm):
            _norm_in(twin, child, theirs + ".")
        else:
            child.params["W"][...] = _numpy(twin.weight).T
            child.params["b"][...] = _numpy(twin.bias)
    for ours, theirs in _DROPOUTS.items():
        if hasattr(layer, ours):
            getattr(layer, ours).p = check_real(getattr(module, theirs).p, theirs + ".p",
                                                "[0, 1)")


# ----- the two entry points ---------------------------------------------------------------------

def to_torch(layer):
    """`tinyattn.interop.to_torch` of one of `KINDS`: the PyTorch module, same weights,
    same dropout probabilities, eps, ``norm_first`` and mode, ``batch_first=True``,
    ``activation="relu"``; float64 for a float64 layer, float32 otherwise."""
    import torch

    nn = torch.nn
    dtype = torch.float64 if np.dtype(layer.dtype) == np.float64 else torch.float32
    if isinstance(layer, LayerNorm):
        module = nn.LayerNorm(layer.d, eps=layer.eps, dtype=dtype)
        fill = _norm_out
    elif isinstance(layer, MultiHeadAttention):
        module = nn.MultiheadAttention(layer.d_model, layer.num_heads, dropout=layer.drop.p,
                                       bias=True, batch_first=True, dtype=dtype)
        fill = _mha_out
    else:
        cls = (nn.TransformerEncoderLayer if isinstance(layer, TransformerEncoderLayer)
               else nn.TransformerDecoderLayer)
        module = cls(layer.d_model, layer.num_heads, layer.d_ff, dropout=layer.drop1.p,
                     activation="relu", layer_norm_eps=layer.norm1.eps, batch_first=True,
                     norm_first=layer.norm_first, dtype=dtype)
        fill = _layer_out
    with torch.no_grad():
        fill(torch, layer, module, dtype)
    return module.train(layer.training)


def _refuse_mha(tm, where):
    """What tinyattn's MultiHeadAttention cannot hold."""
    if not tm._qkv_same_embed_dim:
        raise ValueError(f"{where}: tinyattn's MultiHeadAttention has kdim = vdim = "
                         f"embed_dim, got kdim={tm.kdim}, vdim={tm.vdim}, "
                         f"embed_dim={tm.embed_dim}")
    if tm.in_proj_bias is None:
        raise ValueError(f"{where}: tinyattn's MultiHeadAttention has biases, got bias=False")
    if tm.bias_k is not None or tm.add_zero_attn:
        raise ValueError(f"{where}: tinyattn's MultiHeadAttention has no add_bias_kv or "
                         f"add_zero_attn, got add_bias_kv={tm.bias_k is not None}, "
                         f"add_zero_attn={tm.add_zero_attn}")


def _refuse_norm(tn, where):
    if len(tn.normalized_shape) != 1:
        raise ValueError(f"{where}: tinyattn's LayerNorm normalises the last axis only, got "
                         f"normalized_shape={tuple(tn.normalized_shape)}")
    if tn.weight is None or tn.bias is None:
        raise ValueError(f"{where}: tinyattn's LayerNorm has a gain and a bias, got "
                         f"elementwise_affine={tn.elementwise_affine}, "
                         f"bias={tn.bias is not None}")


def _refuse(module, nn, kind):
    """What tinyattn has no room for, before anything is built."""
    if isinstance(module, nn.LayerNorm):
        return _refuse_norm(module, kind)
    if isinstance(module, nn.MultiheadAttention):
        return _refuse_mha(module, kind)
    act = module.activation
    if not (act is nn.functional.relu or isinstance(act, nn.ReLU)):
        raise ValueError(f"tinyattn's {kind} uses ReLU, got activation={act!r}")
    if module.linear1.bias is None:
        raise ValueError(f"tinyattn's {kind} has biases, got bias=False")
    for theirs in _CHILDREN.values():
        child = getattr(module, theirs, None)
        if isinstance(child, nn.MultiheadAttention):
            _refuse_mha(child, f"{kind}.{theirs}")
        elif isinstance(child, nn.LayerNorm):
            _refuse_norm(child, f"{kind}.{theirs}")


def from_torch(module, rng):
    """`tinyattn.interop.from_torch` of one of `torch_kinds`: the tinyattn layer, same
    weights, dropout probabilities, eps, ``norm_first`` and mode. ``batch_first`` may
    be either (the weights do not depend on it). Raises ValueError for what tinyattn
    has no room for (another activation, no biases, ``kdim``, ``add_bias_kv``, ...)."""
    import torch

    nn, kind = torch.nn, type(module).__name__
    _refuse(module, nn, kind)
    tdtype = next(module.parameters()).dtype
    if tdtype not in (torch.float32, torch.float64):
        raise ValueError(f"from_torch needs float32 or float64 parameters, got {tdtype}")
    dtype = np.float64 if tdtype == torch.float64 else np.float32
    rng = np.random.default_rng(0) if rng is None else rng
    if isinstance(module, nn.LayerNorm):
        layer = LayerNorm(module.normalized_shape[0], eps=module.eps, dtype=dtype)
        _norm_in(module, layer, "")
    elif isinstance(module, nn.MultiheadAttention):
        layer = MultiHeadAttention(module.embed_dim, module.num_heads, dropout=module.dropout,
                                   rng=rng, dtype=dtype)
        _mha_in(module, layer, "")
    else:
        cls = (TransformerEncoderLayer if isinstance(module, nn.TransformerEncoderLayer)
               else TransformerDecoderLayer)
        attn = module.self_attn
        layer = cls(attn.embed_dim, attn.num_heads, module.linear1.out_features,
                    dropout=module.dropout1.p, norm_first=module.norm_first, rng=rng,
                    dtype=dtype)
        _layer_in(module, layer)
    return layer.train(module.training)
