"""Optional PyTorch bridge: a tinyattn RNN, GRU or LSTM layer (one layer, a
`Bidirectional` pair, or a `tinyattn.stacked.StackedRNN` of them: PyTorch's
``num_layers``), a Transformer piece (`MultiHeadAttention`, `LayerNorm`,
`TransformerEncoderLayer`, `TransformerDecoderLayer`) or a whole
`tinyattn.Seq2Seq`, to and from PyTorch.

`to_torch` builds the PyTorch module computing the same function and copies
the weights in; `from_torch` takes one (trained there, say) back. A recurrent
layer becomes `torch.nn.RNN`/`GRU`/`LSTM`; a Transformer piece its namesake in
``torch.nn`` (`tinyattn.interop_transformer` maps those); a `Seq2Seq` becomes a
`tinyattn.torch_model.TorchSeq2Seq`, whose ``model(src, src_lengths,
tgt_in, tgt_out, tgt_lengths)`` is the same loss.

PyTorch is imported only inside the functions, so ``import tinyattn.interop``
works without it; calling `to_torch` or `from_torch` then raises ImportError.
"""

from __future__ import annotations

import numpy as np

from tinyattn import interop_transformer
from tinyattn.bidirectional import Bidirectional
from tinyattn.gru import GRU
from tinyattn.lstm import LSTM
from tinyattn.rnn import RNN
from tinyattn.stacked import StackedRNN

_TORCH_NAMES = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
_SUFFIXES = ("", "_reverse")  # forward direction, then PyTorch's reverse one


def _torch():
    try:
        import torch
    except ImportError as err:
        raise ImportError("tinyattn.interop needs PyTorch: pip install torch") from err
    return torch


def _export(layer):
    """Tinyattn params -> (weight_ih (G·H, D), weight_hh (G·H, H), bias_ih, bias_hh)."""
    p = layer.params
    if isinstance(layer, RNN):
        return p["W_xh"].T, p["W_hh"].T, p["b_h"], np.zeros_like(p["b_h"])
    if isinstance(layer, GRU):
        return p["W_x"].T, p["W_h"].T, p["b_x"], p["b_h"]
    return p["W_x"].T, p["W_h"].T, p["b"], np.zeros_like(p["b"])  # LSTM


def _import(layer, w_ih, w_hh, b_ih, b_hh):
    """Write PyTorch's four arrays into ``layer.params`` in place."""
    p = layer.params
    if isinstance(layer, RNN):
        p["W_xh"][...], p["W_hh"][...], p["b_h"][...] = w_ih.T, w_hh.T, b_ih + b_hh
    elif isinstance(layer, GRU):
        p["W_x"][...], p["W_h"][...], p["b_x"][...], p["b_h"][...] = w_ih.T, w_hh.T, b_ih, b_hh
    else:  # LSTM
        p["W_x"][...], p["W_h"][...], p["b"][...] = w_ih.T, w_hh.T, b_ih + b_hh


def to_torch(layer):
    """Build the PyTorch module computing the same function as a tinyattn layer
    or model.

    Parameters
    ----------
    layer : RNN, GRU, LSTM, Bidirectional, a StackedRNN of them, MultiHeadAttention,
            LayerNorm, TransformerEncoderLayer, TransformerDecoderLayer or Seq2Seq
        A ``GRU`` must have ``reset_after=True``.

    Returns
    -------
    torch.nn.RNN, GRU, LSTM, MultiheadAttention, LayerNorm, TransformerEncoderLayer,
    TransformerDecoderLayer or tinyattn.torch_model.TorchSeq2Seq
        For a layer: ``batch_first=True``, ``num_layers=1`` (L and the stack's
        ``dropout`` for a `StackedRNN` of L layers), ``bias=True``
        (``nonlinearity='tanh'`` for RNN), ``bidirectional=True`` for a
        `Bidirectional`; dtype float64 for a float64 layer, float32 otherwise.
        Takes ``x (B, T, D)`` and states of shape ``(num_layers · num_directions,
        B, H)``. A Transformer piece: ``batch_first=True``, ``activation="relu"``,
        each dropout probability and LayerNorm eps, ``norm_first`` and the mode
        carried (`tinyattn.interop_transformer`). For a `Seq2Seq`: the same model in
        PyTorch, in the tinyattn model's mode (``train()`` or ``eval()``), its loss
        and gradients equal to tinyattn's (in eval mode, or without dropout: the two
        draw their dropout masks differently).

    Raises
    ------
    TypeError
        If ``layer`` is not one of the classes above.
    ValueError
        For ``GRU(reset_after=False)``, which PyTorch does not implement.

    Notes
    -----
    tinyattn computes ``x @ W_x`` with ``W_x (D, G·H)``; PyTorch stores
    ``weight_ih_l0 (G·H, D) = W_x.T`` and ``weight_hh_l0 (G·H, H) = W_h.T``.
    Gate orders agree (LSTM i, f, g, o; GRU r, z, n). PyTorch has two biases;
    RNN and LSTM have one, copied to ``bias_ih`` with ``bias_hh = 0``. A GRU's
    ``b_x`` and ``b_h`` map onto ``bias_ih`` and ``bias_hh`` exactly.
    The backward direction of a `Bidirectional` goes to the ``_reverse`` parameters,
    layer k of a stack to the ``_l{k}`` ones. Both put dropout on every layer's
    output but the top one's, in train mode (the masks are not shared).

    Examples
    --------
    >>> import numpy as np, tinyattn as ta
    >>> from tinyattn.interop import to_torch
    >>> gru = to_torch(ta.GRU(4, 6, rng=np.random.default_rng(0)))
    >>> gru.weight_ih_l0.shape, gru.weight_ih_l0.dtype
    (torch.Size([18, 4]), torch.float64)
    """
    torch = _torch()
    from tinyattn.seq2seq import Seq2Seq
    from tinyattn.transformer import Transformer

    if isinstance(layer, Seq2Seq):
        return _seq2seq_to_torch(layer)
    if isinstance(layer, Transformer):
        from tinyattn.torch_transformer import TorchTransformer, copy_in

        twin = TorchTransformer(layer.config)
        copy_in(twin, layer)
        return twin.train(layer.training)
    if isinstance(layer, interop_transformer.KINDS):
        return interop_transformer.to_torch(layer)
    stacked = isinstance(layer, StackedRNN)
    layers = list(layer.layers) if stacked else [layer]
    bidirectional = isinstance(layers[0], Bidirectional)
    directions = [(lay.fwd, lay.bwd) if bidirectional else (lay,) for lay in layers]
    inner = directions[0][0]
    if not isinstance(inner, (RNN, GRU, LSTM)):
        raise TypeError(f"to_torch needs a tinyattn RNN, GRU, LSTM, Bidirectional, "
                        f"StackedRNN, MultiHeadAttention, LayerNorm, TransformerEncoderLayer, "
                        f"TransformerDecoderLayer or Seq2Seq, got {type(layer).__name__}")
    kwargs = {}
    if stacked and len(layers) > 1:
        kwargs["dropout"] = layer.dropout
    if isinstance(inner, GRU):
        if not all(child.reset_after for pair in directions for child in pair):
            raise ValueError("to_torch cannot convert GRU(reset_after=False): PyTorch only has "
                             "the reset-after form (r ⊙ (h @ W_hn + b_hn)); train with "
                             "reset_after=True to export")
        cls = torch.nn.GRU
    elif isinstance(inner, LSTM):
        cls = torch.nn.LSTM
    else:
        cls, kwargs = torch.nn.RNN, {**kwargs, "nonlinearity": "tanh"}
    dtype = torch.float64 if np.dtype(inner.dtype) == np.float64 else torch.float32
    module = cls(inner.input_size, inner.hidden_size, num_layers=len(layers), bias=True,
                 batch_first=True, bidirectional=bidirectional, dtype=dtype, **kwargs)
    with torch.no_grad():
        for k, pair in enumerate(directions):
            for suffix, child in zip(_SUFFIXES, pair):
                for name, array in zip(_TORCH_NAMES, _export(child)):
                    getattr(module, f"{name}_l{k}{suffix}").copy_(
                        torch.from_numpy(np.ascontiguousarray(array)))
    return module


def from_torch(module, *, rng=None):
    """Build the tinyattn layer computing the same function as a PyTorch module.

    Parameters
    ----------
    module : torch.nn.RNN, GRU, LSTM, MultiheadAttention, LayerNorm,
             TransformerEncoderLayer, TransformerDecoderLayer or TorchSeq2Seq
        With biases, a tanh RNN, no LSTM projection, any ``num_layers``; a
        Transformer piece with ``activation="relu"``, ``kdim = vdim = d_model``,
        no ``add_bias_kv`` or ``add_zero_attn``, a LayerNorm over one axis with
        its gain and bias.
        ``batch_first`` may be either value: the weights do not depend on it
        (tinyattn is batch-first). A `tinyattn.torch_model.TorchSeq2Seq` (from
        `to_torch`, trained in PyTorch, say) gives back a `Seq2Seq` of its
        configuration.
    rng : numpy.random.Generator, optional
        Passed to the layer constructors; the values it draws are overwritten.
        Default ``np.random.default_rng(0)``.

    Returns
    -------
    RNN, GRU, LSTM, Bidirectional, StackedRNN, MultiHeadAttention, LayerNorm,
    TransformerEncoderLayer, TransformerDecoderLayer or Seq2Seq
        A Transformer piece keeps each dropout probability and eps, ``norm_first``
        and the mode (`tinyattn.interop_transformer`). A ``Bidirectional(fwd, bwd)``
        when ``module.bidirectional``; a ``GRU`` has
        ``reset_after=True``; with ``num_layers = L > 1``, a `StackedRNN` of L such
        layers with the module's ``dropout``. dtype float64 for float64 parameters,
        else float32.

    Raises
    ------
    ValueError
        For anything else: another module, ``proj_size != 0``,
        ``nonlinearity='relu'``, ``bias=False``, another activation, ``kdim``, or a
        parameter dtype other than float32 or float64.

    Notes
    -----
    The inverse of `to_torch`: ``W_x = weight_ih_l0.T (D, G·H)`` and
    ``W_h = weight_hh_l0.T (H, G·H)``. RNN and LSTM have a single bias, so
    ``b = bias_ih + bias_hh`` (both are added to the same pre-activation); a GRU
    keeps both, since ``bias_hh``'s n part sits inside the reset gate.

    Examples
    --------
    >>> import torch
    >>> from tinyattn.interop import from_torch
    >>> lstm = from_torch(torch.nn.LSTM(4, 6, batch_first=True, bidirectional=True))
    >>> lstm.hidden_size, lstm.fwd.params["W_x"].shape, lstm.dtype
    (12, (4, 24), <class 'numpy.float32'>)
    """
    torch = _torch()
    nn = torch.nn
    from tinyattn.torch_model import TorchSeq2Seq
    from tinyattn.transformer import Transformer

    if isinstance(module, TorchSeq2Seq):
        return _seq2seq_from_torch(module, rng)
    from tinyattn.torch_transformer import TorchTransformer, copy_out

    if isinstance(module, TorchTransformer):
        c = module.config
        model = Transformer(**{**c, "rng": np.random.default_rng(0) if rng is None else rng,
                               "dtype": np.dtype(c["dtype"]).type})
        copy_out(module, model)
        return model.train(module.training)
    if isinstance(module, interop_transformer.torch_kinds(nn)):
        return interop_transformer.from_torch(module, rng)
    if not isinstance(module, (nn.RNN, nn.GRU, nn.LSTM)):
        raise ValueError(f"from_torch needs a torch.nn.RNN, GRU, LSTM, MultiheadAttention, "
                         f"LayerNorm, TransformerEncoderLayer, TransformerDecoderLayer or a "
                         f"TorchSeq2Seq, got {type(module).__name__}")
    kind = type(module).__name__
    if getattr(module, "proj_size", 0) != 0:
        raise ValueError(f"tinyattn's LSTM has no projection, got proj_size={module.proj_size}")
    if getattr(module, "nonlinearity", "tanh") != "tanh":
        raise ValueError(f"tinyattn's RNN is tanh only, got nonlinearity="
                         f"{module.nonlinearity!r}")
    if not module.bias:
        raise ValueError(f"tinyattn layers always have biases, got {kind} with bias=False")
    tdtype = module.weight_ih_l0.dtype
    if tdtype not in (torch.float32, torch.float64):
        raise ValueError(f"from_torch needs float32 or float64 parameters, got {tdtype}")
    dtype = np.float64 if tdtype == torch.float64 else np.float32
    rng = np.random.default_rng(0) if rng is None else rng
    H, nd = module.hidden_size, 2 if module.bidirectional else 1
    if isinstance(module, nn.GRU):
        def make(D):
            return GRU(D, H, reset_after=True, rng=rng, dtype=dtype)
    else:
        cls = LSTM if isinstance(module, nn.LSTM) else RNN

        def make(D):
            return cls(D, H, rng=rng, dtype=dtype)
    stack = []
    for k in range(module.num_layers):
        D = module.input_size if k == 0 else nd * H  # layer k reads layer k−1's outputs
        pair = [make(D) for _ in range(nd)]
        for suffix, layer in zip(_SUFFIXES, pair):
            arrays = [getattr(module, f"{name}_l{k}{suffix}").detach().cpu().numpy()
                      for name in _TORCH_NAMES]
            _import(layer, *arrays)
        stack.append(Bidirectional(*pair) if module.bidirectional else pair[0])
    return stack[0] if len(stack) == 1 else StackedRNN(stack, dropout=module.dropout)


def _seq2seq_to_torch(model):
    """`to_torch` of a `Seq2Seq`: a TorchSeq2Seq with the model's weights and mode."""
    torch = _torch()
    from tinyattn.torch_model import TorchSeq2Seq, parameter_map

    if model.config["cell"] == "gru" and any(
            not m.reset_after for _, m in model.named_modules() if isinstance(m, GRU)):
        raise ValueError("to_torch cannot convert GRU(reset_after=False) (see to_torch)")
    twin = TorchSeq2Seq(model.config)
    params = dict((n, v) for n, v, _ in model.named_parameters())
    theirs = dict(twin.named_parameters())
    mapping = parameter_map(model.config)
    assert sorted(n for n, _, _ in mapping) == sorted(params), "parameter_map is incomplete"
    with torch.no_grad():
        for name, target, how in mapping:
            value = torch.from_numpy(np.array(params[name]))
            if how == "sum":  # one bias: all of it in bias_ih, bias_hh = 0
                theirs[target[0]].copy_(value)
                theirs[target[1]].zero_()
            else:
                theirs[target].copy_(value.T if how == "T" else value)
    return twin.train(model.training)


def _seq2seq_from_torch(twin, rng):
    """`from_torch` of a TorchSeq2Seq: a Seq2Seq with its weights and mode."""
    from tinyattn.seq2seq import Seq2Seq
    from tinyattn.torch_model import parameter_map

    rng = np.random.default_rng(0) if rng is None else rng
    model = Seq2Seq(**{**twin.config, "rng": rng,
                       "dtype": np.dtype(twin.config["dtype"]).type})
    params = dict((n, v) for n, v, _ in model.named_parameters())
    theirs = {n: p.detach().cpu().numpy() for n, p in twin.named_parameters()}
    for name, source, how in parameter_map(twin.config):
        if how == "sum":
            value = theirs[source[0]] + theirs[source[1]]
        else:
            value = theirs[source].T if how == "T" else theirs[source]
        if value.shape != params[name].shape:
            raise ValueError(f"{source}: shape {value.shape} does not fit {name} "
                             f"{params[name].shape} of the configuration")
        params[name][...] = value
    return model.train(twin.training)
