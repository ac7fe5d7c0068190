"""Whole-model parity with PyTorch autograd: an independent oracle for the
hand-written backward passes of `Seq2Seq`.

Each configuration is written again below in plain PyTorch (float64,
autograd): the embeddings, a packed bidirectional ``torch.nn.GRU``/``LSTM``
encoder, the bridge, and the decoder cells, attention scores, local windows
and masked loss by hand, step by step. tinyattn's weights are copied in
(every tinyattn parameter becomes one torch leaf under the same dotted
name); the same ragged batch is run through both, and the loss, the
attention weights and EVERY parameter gradient are compared to 1e-10
absolute (1e-9 relative where gradients are large). ``pytest -s`` prints
the largest error per configuration.

Nothing here uses `tinyattn.interop`: the torch model is built only from
the equations in tinyattn's docstrings.
"""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import torch.nn.functional as F  # noqa: E402
from torch.func import functional_call  # noqa: E402
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence  # noqa: E402

from tinyattn.seq2seq import SIZED_ATTENTIONS, Seq2Seq  # noqa: E402

pytestmark = pytest.mark.torch

ATOL, RTOL = 1e-10, 1e-9
E, H, A, WINDOW, PAD = 5, 4, 6, 1, 0
SRC = np.array([[3, 4, 5, 6, 7], [6, 7, 8, 0, 0], [9, 3, 0, 0, 0]])
SRC_LENGTHS = np.array([5, 3, 2])
TGT = np.array([[1, 8, 9, 10, 11, 2], [1, 10, 12, 2, 0, 0], [1, 3, 2, 0, 0, 0]])
TGT_IN, TGT_OUT, TGT_LENGTHS = TGT[:, :-1], TGT[:, 1:], np.array([5, 3, 2])

# id -> (attention, cell, input_feeding)
CONFIGS = {
    "bahdanau-gru": ("bahdanau", "gru", False),
    "bahdanau-lstm": ("bahdanau", "lstm", False),
    "general-gru": ("general", "gru", False),
    "general-gru-feed": ("general", "gru", True),
    "dot-lstm": ("dot", "lstm", False),
    "concat-gru-feed": ("concat", "gru", True),
    "local-p-gru": ("local-p", "gru", False),
    "local-m-gru": ("local-m", "gru", False),
    "plain-gru": (None, "gru", False),
    "plain-lstm": (None, "lstm", False),
}


# ----- the torch model, one small helper per component --------------------
def gru_cell(x, h, P, pre):
    """GRU, reset_after form, gates r, z, n; row vectors ``x @ W_x``."""
    ax = x @ P[pre + "W_x"] + P[pre + "b_x"]
    ah = h @ P[pre + "W_h"] + P[pre + "b_h"]
    (xr, xz, xn), (hr, hz, hn) = ax.chunk(3, dim=1), ah.chunk(3, dim=1)
    r, z = torch.sigmoid(xr + hr), torch.sigmoid(xz + hz)
    n = torch.tanh(xn + r * hn)
    return (1 - z) * n + z * h


def lstm_cell(x, state, P, pre):
    """LSTM, one bias, gates i, f, g, o."""
    h, c = state
    i, f, g, o = (x @ P[pre + "W_x"] + h @ P[pre + "W_h"] + P[pre + "b"]).chunk(4, dim=1)
    c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
    return torch.sigmoid(o) * torch.tanh(c), c


def cell_step(cell, x, state, P, pre="decoder.cell."):
    if cell == "gru":
        return gru_cell(x, state, P, pre)
    return lstm_cell(x, state, P, pre)


def hid(state):
    return state[0] if isinstance(state, tuple) else state


def encoder(cell, x, lengths, P):
    """Packed bidirectional torch.nn.GRU/LSTM with tinyattn's weights plugged in.

    Returns ``enc_hs (B, S, 2H)`` and the final state ``[fwd ; bwd]``
    (a pair (h, c) for an LSTM).
    """
    cls = torch.nn.GRU if cell == "gru" else torch.nn.LSTM
    rnn = cls(E, H, batch_first=True, bidirectional=True).double()
    weights = {}
    for suffix, d in (("", "fwd"), ("_reverse", "bwd")):
        pre = f"encoder.{d}."
        weights[f"weight_ih_l0{suffix}"] = P[pre + "W_x"].T
        weights[f"weight_hh_l0{suffix}"] = P[pre + "W_h"].T
        if cell == "gru":
            weights[f"bias_ih_l0{suffix}"] = P[pre + "b_x"]
            weights[f"bias_hh_l0{suffix}"] = P[pre + "b_h"]
        else:  # PyTorch adds its two biases: put tinyattn's b in one, 0 in the other
            weights[f"bias_ih_l0{suffix}"] = P[pre + "b"]
            weights[f"bias_hh_l0{suffix}"] = torch.zeros_like(P[pre + "b"])
    packed = pack_padded_sequence(x, torch.as_tensor(lengths), batch_first=True,
                                  enforce_sorted=False)
    out, final = functional_call(rnn, weights, (packed,))
    enc_hs, _ = pad_packed_sequence(out, batch_first=True, total_length=x.shape[1])

    def join(s):  # (2, B, H) -> (B, 2H) = [→h_last ; ←h_first]
        return torch.cat([s[0], s[1]], dim=1)

    final = (join(final[0]), join(final[1])) if cell == "lstm" else join(final)
    return enc_hs, final


def masked_softmax(scores, mask):
    return torch.softmax(scores.masked_fill(~mask, float("-inf")), dim=-1)


def additive(q_proj, k_proj, v):
    """``v · tanh(q_proj + k_proj)``: q (B, A), k (B, S, A) -> (B, S)."""
    return torch.tanh(q_proj[:, None, :] + k_proj) @ v


def bahdanau_attend(q, enc_hs, src_mask, P):
    scores = additive(q @ P["decoder.attn.W_a"], enc_hs @ P["decoder.attn.U_a"],
                      P["decoder.attn.v_a"])
    alpha = masked_softmax(scores, src_mask)
    return (alpha[:, :, None] * enc_hs).sum(1), alpha


def luong_attend(kind, q, enc_hs, src_mask, lengths, t, P):
    """Global (dot/general/concat) or local (local-m/local-p, general score) attention."""
    Hd = q.shape[1]
    if kind == "dot":
        scores = (enc_hs * q[:, None, :]).sum(-1)
    elif kind == "concat":
        W = P["decoder.attn.W_a"]
        scores = additive(q @ W[:Hd], enc_hs @ W[Hd:], P["decoder.attn.v_a"])
    else:  # general, and the local modes' default score: h_t · (h̄_s @ W_a.T)
        scores = ((enc_hs @ P["decoder.attn.W_a"].T) * q[:, None, :]).sum(-1)
    mask = src_mask
    if kind.startswith("local"):
        last = (lengths - 1).to(q.dtype)  # S_b − 1
        if kind == "local-m":
            p = torch.clamp(torch.full_like(last, float(t)), max=last)
        else:
            u = torch.tanh(q @ P["decoder.attn.W_p"]) @ P["decoder.attn.v_p"]
            p = last * torch.sigmoid(u)
        diff = torch.arange(enc_hs.shape[1], dtype=q.dtype)[None, :] - p[:, None]  # (B, S)
        mask = mask & (diff.abs() <= WINDOW)
        if kind == "local-p":
            sigma = WINDOW / 2.0
            scores = scores - diff**2 / (2 * sigma**2)
    alpha = masked_softmax(scores, mask)
    return (alpha[:, :, None] * enc_hs).sum(1), alpha


def torch_loss(config, P):
    """The whole model in torch: loss and attention weights (B, T, S) or None."""
    attention, cell, feed = config
    src, tgt_in = torch.as_tensor(SRC), torch.as_tensor(TGT_IN)
    src_lengths = torch.as_tensor(SRC_LENGTHS)
    B, T = tgt_in.shape
    src_mask = torch.arange(SRC.shape[1])[None, :] < src_lengths[:, None]

    enc_hs, final = encoder(cell, F.embedding(src, P["src_emb.W"], padding_idx=PAD),
                            SRC_LENGTHS, P)
    if cell == "lstm":
        state = (torch.tanh(final[0] @ P["bridge.W"] + P["bridge.b"]),
                 torch.tanh(final[1] @ P["bridge_c.W"] + P["bridge_c.b"]))
    else:
        state = torch.tanh(final @ P["bridge.W"] + P["bridge.b"])
    emb = F.embedding(tgt_in, P["tgt_emb.W"], padding_idx=PAD)  # (B, T, E)

    feats, alphas = [], []
    h_tilde = torch.zeros(B, hid(state).shape[1], dtype=torch.float64)
    for t in range(T):
        if attention is None:  # Cho: the encoder's final h at every step
            c = hid(final)
            state = cell_step(cell, torch.cat([emb[:, t], c], 1), state, P)
            feats.append(torch.cat([hid(state), c, emb[:, t]], 1))
        elif attention == "bahdanau":  # attend with s_{i-1}, then step
            ctx, alpha = bahdanau_attend(hid(state), enc_hs, src_mask, P)
            state = cell_step(cell, torch.cat([emb[:, t], ctx], 1), state, P)
            feats.append(torch.cat([hid(state), ctx, emb[:, t]], 1))
            alphas.append(alpha)
        else:  # Luong: step, then attend with h_t, then h̃_t = tanh([c ; h] W_c)
            x = torch.cat([emb[:, t], h_tilde], 1) if feed else emb[:, t]
            state = cell_step(cell, x, state, P)
            ctx, alpha = luong_attend(attention, hid(state), enc_hs, src_mask, src_lengths,
                                      t, P)
            h_tilde = torch.tanh(torch.cat([ctx, hid(state)], 1) @ P["decoder.W_c"])
            feats.append(h_tilde)
            alphas.append(alpha)
    logits = torch.stack(feats, 1) @ P["decoder.out.W"] + P["decoder.out.b"]  # (B, T, V)

    # mean cross-entropy over the real target tokens
    tgt_mask = torch.arange(T)[None, :] < torch.as_tensor(TGT_LENGTHS)[:, None]
    logp = torch.log_softmax(logits, -1)
    picked = logp.gather(-1, torch.as_tensor(TGT_OUT)[..., None])[..., 0]
    loss = -picked[tgt_mask].sum() / tgt_mask.sum()
    return loss, (torch.stack(alphas, 1) if alphas else None)


# ----- the test --------------------------------------------------------------
def make_model(config):
    attention, cell, feed = config
    return Seq2Seq(11, 13, emb_size=E, hidden_size=H, cell=cell, attention=attention,
                   input_feeding=feed, attn_size=A if attention in SIZED_ATTENTIONS else None,
                   window=WINDOW, pad_id=PAD,
                   rng=np.random.default_rng(0))


def rel_err(a, b):
    """max |a − b|, and that over max(1, max |b|) for the relative test."""
    err = float(np.max(np.abs(a - b))) if a.size else 0.0
    return err, err / max(1.0, float(np.max(np.abs(b))) if b.size else 0.0)


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_seq2seq_gradients_match_torch_autograd(name):
    config = CONFIGS[name]
    model = make_model(config)
    loss = model(SRC, SRC_LENGTHS, TGT_IN, TGT_OUT, TGT_LENGTHS)
    model.zero_grad()
    model.backward()

    P = {n: torch.tensor(v, dtype=torch.float64, requires_grad=True)
         for n, v, _ in model.named_parameters()}
    t_loss, t_alphas = torch_loss(config, P)
    t_loss.backward()

    loss_err = abs(loss - t_loss.item())
    assert loss_err <= ATOL, f"{name}: loss {loss!r} vs torch {t_loss.item()!r}"
    if t_alphas is not None:
        a_err, _ = rel_err(model.attention_weights, t_alphas.detach().numpy())
        assert a_err <= ATOL, f"{name}: attention weights differ by {a_err:.3g}"

    worst, failures = (0.0, ""), []
    for pname, _, grad in model.named_parameters():
        t_grad = P[pname].grad
        assert t_grad is not None, f"{name}: {pname} is unused in the torch model"
        err, rel = rel_err(grad, t_grad.numpy())
        worst = max(worst, (err, pname))
        if err > ATOL and rel > RTOL:
            failures.append(f"{pname}: max abs err {err:.3g} (rel {rel:.3g})")
    # By design the padding rows of both embeddings never receive a gradient.
    for emb in ("src_emb", "tgt_emb"):
        assert not dict((n, g) for n, _, g in model.named_parameters())[f"{emb}.W"][PAD].any()
    print(f"\n[{name}] loss {loss:.6f}  loss err {loss_err:.2e}  "
          f"max grad err {worst[0]:.2e} ({worst[1]})  over {len(P)} parameters")
    assert not failures, f"{name}: gradients differ from torch autograd:\n" + "\n".join(failures)
