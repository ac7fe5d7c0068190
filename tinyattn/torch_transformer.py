"""`TorchTransformer`: a `tinyattn.Transformer` written in PyTorch.

Built by `tinyattn.interop.to_torch` from a tinyattn model (weights copied)
and turned back by `tinyattn.interop.from_torch`. It computes the same loss
and, through autograd, the same gradients as the hand-written backward
passes, to 1e-10 in float64 (tests/test_torch_transformer.py), from
PyTorch's own modules: ``nn.Embedding`` (``padding_idx``), the sinusoidal
table as a buffer, ``nn.TransformerEncoderLayer`` / ``nn.TransformerDecoderLayer``
(``batch_first=True``, ``activation="relu"``, with key-padding masks and the
causal mask), ``nn.LayerNorm`` after each stack when pre-LN, ``nn.Linear`` (or
the tied target embedding) and the loss of `tinyattn.torch_model.masked_loss`.

Importing this module needs PyTorch; `tinyattn.interop` imports it only when
called.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from tinyattn.layernorm import sinusoid_table
from tinyattn.torch_model import as_tensors, masked_loss

_DTYPES = {"float64": torch.float64, "float32": torch.float32}


class TorchTransformer(nn.Module):
    """The model of a `tinyattn.Transformer` configuration, in PyTorch; parameters
    as PyTorch initialises them (`tinyattn.interop.to_torch` copies tinyattn's in).

    ``loss = model(src, src_lengths, tgt_in, tgt_out, tgt_lengths)`` takes torch
    tensors or NumPy arrays and returns the mean cross-entropy over the real target
    tokens (label-smoothed in train mode when the configuration says so).
    """

    def __init__(self, config: dict):
        super().__init__()
        self.config = dict(config)
        c, dtype = self.config, _DTYPES[config["dtype"]]
        D, p = c["d_model"], c["dropout"]
        kw = dict(dtype=dtype)
        self.src_emb = nn.Embedding(c["src_vocab"], D, padding_idx=c["pad_id"], **kw)
        self.tgt_emb = nn.Embedding(c["tgt_vocab"], D, padding_idx=c["pad_id"], **kw)
        self.register_buffer("pe", torch.from_numpy(sinusoid_table(c["max_len"], D)).to(dtype))
        self.src_drop, self.tgt_drop = nn.Dropout(p), nn.Dropout(p)
        layer_kw = dict(dropout=p, activation="relu", batch_first=True,
                        norm_first=c["norm_first"], **kw)
        self.encoder = nn.ModuleList(
            nn.TransformerEncoderLayer(D, c["num_heads"], c["d_ff"], **layer_kw)
            for _ in range(c["num_encoder_layers"]))
        self.decoder = nn.ModuleList(
            nn.TransformerDecoderLayer(D, c["num_heads"], c["d_ff"], **layer_kw)
            for _ in range(c["num_decoder_layers"]))
        if c["norm_first"]:
            self.encoder_norm, self.decoder_norm = nn.LayerNorm(D, **kw), nn.LayerNorm(D, **kw)
        if c["tie_embeddings"]:
            self.b_out = nn.Parameter(torch.zeros(c["tgt_vocab"], **kw))
        else:
            self.out = nn.Linear(D, c["tgt_vocab"], **kw)

    def forward(self, src, src_lengths, tgt_in, tgt_out, tgt_lengths):
        """Teacher-forced mean cross-entropy over the real target tokens."""
        device = self.pe.device  # where the model is (to("cuda"), say)
        src, src_lengths, tgt_in, tgt_out, tgt_lengths = as_tensors(
            src, src_lengths, tgt_in, tgt_out, tgt_lengths, device=device)
        c, scale = self.config, math.sqrt(self.config["d_model"])
        S, T = src.shape[1], tgt_in.shape[1]
        src_pad = torch.arange(S, device=device)[None, :] >= src_lengths[:, None]  # True: pad
        tgt_pad = torch.arange(T, device=device)[None, :] >= tgt_lengths[:, None]
        x = self.src_drop(self.src_emb(src) * scale + self.pe[:S])
        for layer in self.encoder:
            x = layer(x, src_key_padding_mask=src_pad)
        if c["norm_first"]:
            x = self.encoder_norm(x)
        memory = x.masked_fill(src_pad[:, :, None], 0.0)
        # True where a query may not read a key (j > i), as the padding masks' True
        causal = torch.ones(T, T, dtype=torch.bool, device=device).triu(1)
        y = self.tgt_drop(self.tgt_emb(tgt_in) * scale + self.pe[:T])
        for layer in self.decoder:
            y = layer(y, memory, tgt_mask=causal, tgt_is_causal=True,
                      tgt_key_padding_mask=tgt_pad, memory_key_padding_mask=src_pad)
        if c["norm_first"]:
            y = self.decoder_norm(y)
        if c["tie_embeddings"]:
            logits = y @ self.tgt_emb.weight.T + self.b_out
        else:
            logits = self.out(y)
        eps = c["label_smoothing"] if self.training else 0.0
        return masked_loss(logits, tgt_out, tgt_lengths, eps, c["pad_id"])


def copy_in(twin: TorchTransformer, model) -> None:
    """Copy a `tinyattn.Transformer`'s weights and dropout into its twin."""
    from tinyattn.interop_transformer import _layer_out, _norm_out

    dtype = _DTYPES[model.config["dtype"]]
    t = lambda a: torch.from_numpy(np.ascontiguousarray(a)).to(dtype)  # noqa: E731
    with torch.no_grad():
        twin.src_emb.weight.copy_(t(model.src_emb.params["W"]))
        twin.tgt_emb.weight.copy_(t(model.tgt_emb.params["W"]))
        for ours, theirs in zip(list(model.encoder) + list(model.decoder),
                                list(twin.encoder) + list(twin.decoder)):
            _layer_out(torch, ours, theirs, dtype)
        if model.config["norm_first"]:
            _norm_out(torch, model.encoder_norm, twin.encoder_norm, dtype)
            _norm_out(torch, model.decoder_norm, twin.decoder_norm, dtype)
        if model.config["tie_embeddings"]:
            twin.b_out.copy_(t(model.params["b_out"]))
        else:
            twin.out.weight.copy_(t(model.out.params["W"].T))
            twin.out.bias.copy_(t(model.out.params["b"]))


def copy_out(twin: TorchTransformer, model) -> None:
    """Copy a twin's weights and dropout back into a `tinyattn.Transformer`."""
    from tinyattn.interop_transformer import _layer_in, _norm_in

    def n(x):
        return x.detach().cpu().numpy()
    model.src_emb.params["W"][...] = n(twin.src_emb.weight)
    model.tgt_emb.params["W"][...] = n(twin.tgt_emb.weight)
    for ours, theirs in zip(list(model.encoder) + list(model.decoder),
                            list(twin.encoder) + list(twin.decoder)):
        _layer_in(theirs, ours)
    if model.config["norm_first"]:
        _norm_in(twin.encoder_norm, model.encoder_norm, "encoder_norm.")
        _norm_in(twin.decoder_norm, model.decoder_norm, "decoder_norm.")
    if model.config["tie_embeddings"]:
        model.params["b_out"][...] = n(twin.b_out)
    else:
        model.out.params["W"][...] = n(twin.out.weight).T
        model.out.params["b"][...] = n(twin.out.bias)
