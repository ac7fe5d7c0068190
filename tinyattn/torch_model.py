"""`TorchSeq2Seq`: a `tinyattn.Seq2Seq` written in PyTorch, for the learner who
outgrows NumPy (a GPU, distributed data parallel).

Built by `tinyattn.interop.to_torch` from a tinyattn model (weights copied)
and turned back by `tinyattn.interop.from_torch`. It computes the same
function: the same loss, attention weights and (through autograd) the same
gradients as the hand-written backward passes, to 1e-10 in float64
(tests/test_torch_model.py). It is written as a PyTorch user would write
it, from PyTorch's own modules where they exist:

- ``src_emb``, ``tgt_emb``: `torch.nn.Embedding` with ``padding_idx``;
- ``encoder``: a packed `torch.nn.GRU` / `torch.nn.LSTM`, bidirectional or
  not, of ``num_layers`` layers with PyTorch's dropout between them;
- ``bridge`` (and ``bridge_c`` for an LSTM's cell state): `torch.nn.Linear`
  (none with ``bridge=False``: the decoder starts from zeros);
- ``cells``: one `torch.nn.GRUCell` / `torch.nn.LSTMCell` per layer, stepped
  in a Python loop (attention reads the state of the step before, so a
  decoder with attention cannot run as one sequence call); stacked layers
  (``num_layers``) have `torch.nn.Dropout` between them, and one bridge each
  (``bridge``, then ``bridges``);
- the attention's weights as parameters with tinyattn's names and layouts
  (``W_a``, ``U_a``, ``v_a``, ``W_c``, ``W_p``, ``v_p``), used in the
  equations of docs/equations.md §4–§5;
- ``out``: `torch.nn.Linear`; `torch.nn.Dropout` where tinyattn drops
  (the two embeddings and the output features), active in ``train()`` mode
  with PyTorch's own masks.

Importing this module needs PyTorch; `tinyattn.interop` imports it only when
called.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

_DTYPES = {"float64": torch.float64, "float32": torch.float32}


def _param(*shape, dtype):
    return nn.Parameter(torch.zeros(*shape, dtype=dtype))


class TorchSeq2Seq(nn.Module):
    """The model of a `tinyattn.Seq2Seq` configuration (``Seq2Seq.config``),
    in PyTorch; its parameters start at zero (`tinyattn.interop.to_torch` copies
    a tinyattn model's in).

    ``loss = model(src, src_lengths, tgt_in, tgt_out, tgt_lengths)`` takes
    torch tensors or NumPy arrays, as `tinyattn.Seq2Seq` does, and returns the
    mean cross-entropy over the real target tokens (label-smoothed in train
    mode when the configuration says so, never towards ``<pad>``); afterwards
    ``attention_weights`` holds ``(B, T, S)`` (None without attention).
    """

    def __init__(self, config: dict):
        super().__init__()
        self.config = dict(config)
        c = self.config
        L = self.num_layers = c.get("num_layers", 1)
        dtype = _DTYPES[c["dtype"]]
        E, H, V_src, V_tgt = c["emb_size"], c["hidden_size"], c["src_vocab"], c["tgt_vocab"]
        attention, pad, p = c["attention"], c["pad_id"], c["dropout"]
        Hk = Hd = 2 * H if c["bidirectional"] else H
        self.is_lstm = c["cell"] == "lstm"
        kw = {"dtype": dtype}
        self.src_emb = nn.Embedding(V_src, E, padding_idx=pad, **kw)
        self.tgt_emb = nn.Embedding(V_tgt, E, padding_idx=pad, **kw)
        self.src_drop, self.tgt_drop, self.out_drop = (nn.Dropout(p) for _ in range(3))
        rnn = nn.LSTM if self.is_lstm else nn.GRU
        self.encoder = rnn(E, H, num_layers=L, dropout=p if L > 1 else 0.0, batch_first=True,
                           bidirectional=c["bidirectional"], **kw)
        # one bridge per layer: decoder layer l starts from encoder layer l's final state
        self.has_bridge = c.get("bridge", True)
        if self.has_bridge:
            self.bridge = nn.Linear(Hk, Hd, **kw)
            self.bridges = nn.ModuleList(nn.Linear(Hk, Hd, **kw) for _ in range(L - 1))
            if self.is_lstm:
                self.bridge_c = nn.Linear(Hk, Hd, **kw)
                self.bridges_c = nn.ModuleList(nn.Linear(Hk, Hd, **kw) for _ in range(L - 1))
        self.layer_drop = nn.Dropout(p)  # between stacked decoder layers, a fresh mask a step

        def cell(D, Hd, **kw):  # the decoder's L cells: layer 0 reads D, the others Hd
            return nn.ModuleList((nn.LSTMCell if self.is_lstm else nn.GRUCell)(
                D if k == 0 else Hd, Hd, **kw) for k in range(L))
        A = Hd if c["attn_size"] is None else c["attn_size"]
        if attention is None:  # Cho: [E y ; c] in, [s ; c ; E y] out
            self.cells = cell(E + Hk, Hd, **kw)
            self.out = nn.Linear(Hd + Hk + E, V_tgt, **kw)
        elif attention == "bahdanau":
            self.cells = cell(E + Hk, Hd, **kw)
            self.W_a, self.U_a, self.v_a = (_param(Hd, A, **kw), _param(Hk, A, **kw),
                                            _param(A, **kw))
            self.out = nn.Linear(Hd + Hk + E, V_tgt, **kw)
        else:  # Luong: the global scores, or local-m / local-p with the general score
            feed = c["input_feeding"]
            self.cells = cell(E + (Hd if feed else 0), Hd, **kw)
            if attention in ("general", "local-m", "local-p"):
                self.W_a = _param(Hd, Hk, **kw)
            elif attention == "concat":
                self.W_a, self.v_a = _param(Hd + Hk, A, **kw), _param(A, **kw)
            if attention == "local-p":
                self.W_p, self.v_p = _param(Hd, A, **kw), _param(A, **kw)
            self.W_c = _param(Hk + Hd, Hd, **kw)
            self.out = nn.Linear(Hd, V_tgt, **kw)
        self.attention_weights = None

    # ----- pieces -------------------------------------------------------------
    def encode(self, src, src_lengths):
        """``enc_hs (B, S, Hk)``, the decoder's first states (one per layer), the
        context ``c`` (the top encoder layer's final h) and the source mask ``(B, S)``."""
        x = self.src_drop(self.src_emb(src))
        packed = pack_padded_sequence(x, src_lengths.cpu(), batch_first=True,
                                      enforce_sorted=False)
        out, final = self.encoder(packed)
        enc_hs, _ = pad_packed_sequence(out, batch_first=True, total_length=src.shape[1])

        nd = 2 if self.config["bidirectional"] else 1

        def last(s, k):  # layer k of (L·directions, B, H) -> (B, directions·H): [→h_S ; ←h_1]
            return torch.cat(list(s[k * nd:(k + 1) * nd]), dim=1)

        def start(x, k, side=""):  # decoder layer k's first state; zeros without a bridge
            return torch.tanh(self._bridge(k, side)(x)) if self.has_bridge else torch.zeros_like(x)

        states = []
        for k in range(self.num_layers):
            if self.is_lstm:
                h, c = last(final[0], k), last(final[1], k)
                states.append((start(h, k), start(c, k, "_c")))
            else:
                h = last(final, k)
                states.append(start(h, k))
        mask = torch.arange(src.shape[1], device=src.device)[None, :] < src_lengths[:, None]
        return enc_hs, states, h, mask

    def _bridge(self, k, side=""):
        """Layer k's bridge (``side="_c"``: an LSTM's cell-state bridge)."""
        return getattr(self, "bridge" + side) if k == 0 else getattr(self, "bridges" + side)[k - 1]

    def _step(self, x, states):
        """One decoder step through every layer, dropout between them."""
        new = []
        for k, (cell, state) in enumerate(zip(self.cells, states)):
            if k:
                x = self.layer_drop(self._h(new[-1]))
            new.append(cell(x, state))
        return new

    @staticmethod
    def _h(states):
        """The top layer's h: what attention and the output read."""
        state = states[-1] if isinstance(states, list) else states
        return state[0] if isinstance(state, tuple) else state

    def _attend(self, q, enc_hs, keys, mask, lengths, t):
        """Context ``(B, Hk)`` and weights ``(B, S)`` for the query ``q (B, Hd)``."""
        kind = self.config["attention"]
        if kind in ("bahdanau", "concat"):  # v · tanh(q W + k), k projected once
            scores = torch.tanh((q @ self.W_a[: q.shape[1]] if kind == "concat"
                                 else q @ self.W_a)[:, None, :] + keys) @ self.v_a
        else:  # dot, scaled dot; general (and local's score): q · (h̄ W_a^T), keys = h̄ W_a^T
            scores = torch.einsum("bd,bsd->bs", q, keys)
            if kind == "scaled_dot":
                scores = scores / math.sqrt(enc_hs.shape[2])
        if kind in ("local-m", "local-p"):
            last = (lengths - 1).to(q.dtype)  # S_b − 1
            if kind == "local-m":
                p = torch.clamp(torch.full_like(last, float(t)), max=last)
            else:
                p = last * torch.sigmoid(torch.tanh(q @ self.W_p) @ self.v_p)
            w = self.config["window"]
            diff = torch.arange(enc_hs.shape[1], dtype=q.dtype, device=q.device) - p[:, None]
            mask = mask & (diff.abs() <= w)
            if kind == "local-p":  # the Gaussian's log, σ = w / 2
                scores = scores - diff**2 / (2 * (w / 2.0) ** 2)
        alpha = torch.softmax(scores.masked_fill(~mask, float("-inf")), dim=-1)
        return torch.bmm(alpha[:, None, :], enc_hs)[:, 0], alpha

    def _keys(self, enc_hs):
        kind = self.config["attention"]
        if kind == "bahdanau":
            return enc_hs @ self.U_a
        if kind == "concat":
            return enc_hs @ self.W_a[-enc_hs.shape[2]:]
        if kind in ("general", "local-m", "local-p"):
            return enc_hs @ self.W_a.T
        return enc_hs

    # ----- the protocol's loss ---------------------------------------------------
    def forward(self, src, src_lengths, tgt_in, tgt_out, tgt_lengths):
        """Teacher-forced mean cross-entropy over the real target tokens."""
        src, src_lengths, tgt_in, tgt_out, tgt_lengths = as_tensors(
            src, src_lengths, tgt_in, tgt_out, tgt_lengths, device=self.out.weight.device)
        kind = self.config["attention"]
        enc_hs, state, c, mask = self.encode(src, src_lengths)
        emb = self.tgt_drop(self.tgt_emb(tgt_in))  # (B, T, E)
        B, T = tgt_in.shape
        feats, alphas = [], []
        if kind is None:
            for t in range(T):
                state = self._step(torch.cat([emb[:, t], c], 1), state)
                feats.append(torch.cat([self._h(state), c, emb[:, t]], 1))
        elif kind == "bahdanau":  # attend with s_{i-1}, then step on [E y_{i-1} ; c_i]
            keys = self._keys(enc_hs)
            for t in range(T):
                ctx, alpha = self._attend(self._h(state), enc_hs, keys, mask, src_lengths, t)
                state = self._step(torch.cat([emb[:, t], ctx], 1), state)
                feats.append(torch.cat([self._h(state), ctx, emb[:, t]], 1))
                alphas.append(alpha)
        else:  # Luong: step, attend with h_t, h̃_t = tanh([c_t ; h_t] W_c)
            keys = self._keys(enc_hs)
            h_tilde = enc_hs.new_zeros(B, self.W_c.shape[1])
            for t in range(T):
                x = torch.cat([emb[:, t], h_tilde], 1) if self.config["input_feeding"] \
                    else emb[:, t]
                state = self._step(x, state)
                h = self._h(state)
                ctx, alpha = self._attend(h, enc_hs, keys, mask, src_lengths, t)
                h_tilde = torch.tanh(torch.cat([ctx, h], 1) @ self.W_c)
                feats.append(h_tilde)
                alphas.append(alpha)
        logits = self.out(self.out_drop(torch.stack(feats, 1)))  # (B, T, V)
        self.attention_weights = torch.stack(alphas, 1) if alphas else None
        eps = self.config["label_smoothing"] if self.training else 0.0
        return masked_loss(logits, tgt_out, tgt_lengths, eps, self.config["pad_id"])


def as_tensors(*arrays, device=None):
    """Token ids and lengths (torch tensors or NumPy arrays) as long tensors on ``device``."""
    return tuple(torch.as_tensor(np.asarray(a) if not torch.is_tensor(a) else a,
                                 dtype=torch.long, device=device) for a in arrays)


def masked_loss(logits, tgt_out, tgt_lengths, eps: float, pad_id: int):
    """Mean over real tokens of −Σ_v q_v log p_v; q = (1 − ε) onehot + ε u, u
    uniform over every class but ``<pad>`` (docs/equations.md §6.1)."""
    T, V = logits.shape[1], logits.shape[2]
    mask = torch.arange(T, device=logits.device)[None, :] < tgt_lengths[:, None]
    logp = torch.log_softmax(logits[mask], dim=-1)  # (N, V)
    nll = -logp.gather(1, tgt_out[mask][:, None])[:, 0]
    if eps:
        smooth = -(logp.sum(1) - logp[:, pad_id]) / (V - 1)
        nll = (1 - eps) * nll + eps * smooth
    return nll.mean()


# ----- which tinyattn parameter is which torch parameter -------------------------
def _rnn_names(cell: str, prefix: str, suffix: str, torch_prefix: str):
    """(tinyattn name, torch name, how) for one recurrent layer: weights
    transposed; a GRU's two biases map one to one; an LSTM's one bias goes to
    ``bias_ih`` with ``bias_hh`` = 0 (and comes back as their sum)."""
    yield prefix + "W_x", f"{torch_prefix}weight_ih{suffix}", "T"
    yield prefix + "W_h", f"{torch_prefix}weight_hh{suffix}", "T"
    if cell == "lstm":
        yield prefix + "b", (f"{torch_prefix}bias_ih{suffix}", f"{torch_prefix}bias_hh{suffix}"), \
            "sum"
    else:
        yield prefix + "b_x", f"{torch_prefix}bias_ih{suffix}", "copy"
        yield prefix + "b_h", f"{torch_prefix}bias_hh{suffix}", "copy"


def parameter_map(config: dict) -> list[tuple[str, object, str]]:
    """Every tinyattn parameter name of a configuration with its torch
    parameter name(s) and how the arrays relate: ``"copy"``, ``"T"``
    (transposed) or ``"sum"`` (one tinyattn bias = the sum of PyTorch's two)."""
    cell, attention = config["cell"], config["attention"]
    L = config.get("num_layers", 1)
    out = [("src_emb.W", "src_emb.weight", "copy")]
    for k in range(L):  # one layer: encoder.fwd.W_x; a stack: encoder.layers.k.fwd.W_x
        layer = "encoder." if L == 1 else f"encoder.layers.{k}."
        if config["bidirectional"]:
            out += _rnn_names(cell, layer + "fwd.", f"_l{k}", "encoder.")
            out += _rnn_names(cell, layer + "bwd.", f"_l{k}_reverse", "encoder.")
        else:
            out += _rnn_names(cell, layer, f"_l{k}", "encoder.")
    for side in ("", "_c") if cell == "lstm" else ("",):
        for k in range(L if config.get("bridge", True) else 0):
            ours, theirs = (f"bridge{side}.", f"bridge{side}.") if k == 0 else \
                (f"bridges{side}.{k}.", f"bridges{side}.{k - 1}.")
            out += [(ours + "W", theirs + "weight", "T"), (ours + "b", theirs + "bias", "copy")]
    out.append(("tgt_emb.W", "tgt_emb.weight", "copy"))
    for k in range(L):
        layer = "decoder.cell." if L == 1 else f"decoder.cell.layers.{k}."
        out += _rnn_names(cell, layer, "", f"cells.{k}.")
    attn = {"bahdanau": ("W_a", "U_a", "v_a"), "general": ("W_a",), "concat": ("W_a", "v_a"),
            "local-m": ("W_a",), "local-p": ("W_a", "W_p", "v_p")}.get(attention, ())
    out += [(f"decoder.attn.{n}", n, "copy") for n in attn]
    if attention not in (None, "bahdanau"):
        out.append(("decoder.W_c", "W_c", "copy"))
    out += [("decoder.out.W", "out.weight", "T"), ("decoder.out.b", "out.bias", "copy")]
    return out
