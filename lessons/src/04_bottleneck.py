# Lesson 04 source, in the percent format of lessons/build.py (no solution blocks).
# Built and executed by lessons/build.py into lessons/04_bottleneck.ipynb.

# %% [markdown]
# # Lesson 04 — Seq2seq with one context vector: the bottleneck
#
# **Goal.** The plain encoder–decoder reads the whole source, keeps **one** vector $c$ (the context
# vector, document 000's 上下文向量 C), and writes the whole target from it. In this lesson you will
#
# 1. write out its equations;
# 2. write the backward of the bridge and the decoder yourself (exercise
#    `plain_decoder_backward`, graded by the gradient checker): $c$ reaches the output by three
#    paths, and its gradient is their sum;
# 3. compute the forward by hand on tiny arrays, checked against
#    `tinyattn.Seq2Seq(..., attention=None)`;
# 4. find out what the decoder reads of the source: swap in another source's encoder states
#    and keep $c$, and watch the output; compare $c$'s size for 3 tokens and for 30;
# 5. gradient-check the library's decoder, whose $c$ is used at every step;
# 6. train a plain model and a Bahdanau attention model with the same layer sizes on the same
#    task, copying strings of 3 to 20 letters (plus a plain model with more parameters than the
#    attention one, as a control), and plot accuracy against source length: the shape of
#    Bahdanau et al.'s figure 2.
#
# **Sources.** `docs/equations.md` §2. Document 003 (`docs/sources.md`, "从 Seq2seq 到 Attention
# 模型到 Self Attention（一）"), section "Seq2seq" with its figures 6–7 (the images are lost): the
# decoder is an RNN like the encoder, "plus a C", the context vector, which is the encoder's **last
# hidden state**; the encoder compresses the sentence into a fixed-length vector, and "if the
# sentence is long, a fixed-length context vector works badly". Document 000 (`docs/sources.md`),
# section "模型结构": the encoder builds "a context vector of fixed dimension"
# (固定维度的上下文向量) and hands it to the decoder. The papers: K. Cho et al., *Learning Phrase
# Representations using RNN Encoder–Decoder for Statistical Machine Translation*, EMNLP 2014
# (arXiv:1406.1078), §2.2 (the decoder equations used here); I. Sutskever, O. Vinyals, Q. V. Le,
# *Sequence to Sequence Learning with Neural Networks*, NIPS 2014 (arXiv:1409.3215), §2 ($c$ = the
# encoder LSTM's last state); and, for the length experiment, D. Bahdanau, K. Cho, Y. Bengio,
# *Neural Machine Translation by Jointly Learning to Align and Translate*, ICLR 2015
# (arXiv:1409.0473), §2 and figure 2.
#
# The whole notebook runs in well under a minute on two quiet CPU cores.

# %%
import time

import matplotlib.pyplot as plt
import numpy as np

import tinyattn as ta
import tinyattn.exercises as ex
from tinyattn.data import Vocab, make_task
from tinyattn.cli.evaluation import decode
from tinyattn.gradcheck import TOL_LAYER, check_gradients
from tinyattn.gru import gru_step_backward, gru_step_forward
from tinyattn.metrics import exact_match, token_accuracy
from tinyattn.cli.run import DataSpec, Run, encode_pairs
from tinyattn.seq2seq import ATTENTIONS

np.set_printoptions(precision=3, suppress=True)
print("attention options of Seq2Seq:", ATTENTIONS)

# %% [markdown]
# `attention=None`, the first of the options, is the plain model of this lesson; `"bahdanau"` is
# lesson 05's. Everything else (embeddings, the bidirectional GRU encoder, the bridge to the
# decoder's first state, the output layer) is the same in both.
#
# ## 1. The equations
#
# Source positions $j = 1..S$, target steps $i = 1..T$. The encoder reads the source
# (`docs/equations.md` §2; Bahdanau 2015 §2 writes it in this general form):
#
# $$h_j = f(x_j, h_{j-1}), \qquad c = q(h_1, \dots, h_S).$$
#
# Sutskever et al. take $q$ = the last state, $c = h_S$; so does document 003. tinyattn's
# encoder is bidirectional (lesson 03), so the "last state" is each direction's state after it
# has read the whole sentence: $c = [\overrightarrow{h}_S ; \overleftarrow{h}_1]$, of size
# $2H$. The decoder (Cho et al. 2014, §2.2) reads $c$ **at every step**:
#
# $$s_0 = \tanh(c\, W_s + b_s), \qquad s_i = f(s_{i-1}, [E y_{i-1} ; c]),$$
#
# $$p(y_i \mid y_{<i}, x) = g(s_i, y_{i-1}, c) = \text{softmax}([s_i ; c ; E y_{i-1}] W_o + b_o).$$
#
# (Sutskever et al. give $c$ to the decoder only once, as its first state; Cho et al. start from
# $s_0 = \tanh(V' c)$, their appendix A, *and* feed $c$ to every step and to the output, as
# here. Document 000 starts its decoder from zeros and feeds it C. Cho et al.'s $g$ has a layer
# of maxout units between these inputs and the softmax; tinyattn uses the single linear layer
# written above.)
#
# | maths | meaning | in the code | shape |
# |---|---|---|---|
# | $x_j$ | source token $j$ | `src[:, j]` | (B, S) ids |
# | $h_j$ | encoder state at $j$, both directions | `enc_hs[:, j]` | (B, S, 2H) for all $j$ |
# | $c = [\overrightarrow{h}_S ; \overleftarrow{h}_1]$ | the context vector | `c` | (B, 2H) |
# | $W_s$, $b_s$ | the bridge | `model.bridge.params["W"]`, `"b"` | (2H, Hd), (Hd,) |
# | $s_0$ | decoder's first state | `state0` | (B, Hd) |
# | $E y_{i-1}$ | embedding of the previous target token | `model.tgt_emb(tgt_in)[:, i]` | (B, E) |
# | $f$ | the decoder's GRU step | `model.decoder.cell` | input E + 2H, state Hd |
# | $s_i$ | decoder state after step $i$ | | (B, Hd) |
# | $W_o$, $b_o$ | output layer of $g$ | `model.decoder.out.params` | (Hd + 2H + E, V), (V,) |
# | logits | scores of the next token | `logits` | (B, T, V) |
#
# ![the plain encoder-decoder: the whole source squeezed into one context vector c, which the decoder reads](../docs/images/encoder_decoder.png)
#
# In the schematic, look at the one vector $c$ between the encoder and the decoder: everything
# the decoder learns about the source passes through it, whatever the source's length. In
# tinyattn it enters the decoder in three places: the bridge to $s_0$, each step's cell input
# and each step's output layer; those are the paths its gradient comes back along (section 2).
#
# The decoder state has the size of $c$: Hd = 2H. **Row vectors**, as everywhere in tinyattn:
# `c @ W_s` with `W_s` of shape (2H, Hd) is the papers' $W_s c$ transposed.
#
# **What the documents say, and one correction.** Both documents describe this model correctly:
# the encoder squeezes the sentence into one fixed-size vector, the decoder unfolds it. Document
# 000 goes on to call the *decoder* bidirectional (`docs/sources.md`): it cannot be, since it
# writes left to right and has no future tokens to read. Only the encoder is bidirectional.

# %% [markdown]
# ## 2. Your turn: the backward of the bridge and the decoder
#
# Before the library's decoder appears, write its backward. The exercise's forward is
# `plain_decoder_forward` in `tinyattn/exercises/_ex_plain_decoder.py`: the equations above, in
# order, on tiny float64 arrays:
#
# ```python
# s0 = np.tanh(c @ W_s + b_s)                                   # the bridge, (B, Hd)
# for i in range(T):                                            # lesson 02's GRU step
#     s, steps[i] = gru_step_forward(np.concatenate([emb[:, i], c], axis=1), s, W_x, W_h, b_x, b_h)
# logits = np.concatenate([states, c_all, emb], axis=2) @ W_o + b_o   # c_all: c at every step
# ```
#
# which is exactly what `tinyattn/bridge.py` and `PlainDecoder` compute (the exercise's tests check
# it). The GRU's own weights are fixed here, since their gradients were lesson 02's exercise: you
# call `gru_step_backward(ds_i, steps[i])` once per step, last step first, and use its first two
# returns, `dx (B, E + C)` and `dh_prev (B, Hd)`. Return the gradients of `emb, c, W_s, b_s, W_o,
# b_o`. Sizes: B = 2, T = 3, E = 4, C = Hd = 6 (the bridge is square, as in the library), V = 7.
# Hints:
#
# - **The output layer first**, for all steps at once: `dfeat = dlogits @ W_o.T` is
#   $[\partial s_i ; \partial c ; \partial (E y_{i-1})]$ from the output layer at every step.
# - **The state.** The gradient of $s_i$ is the output layer's share *plus* what step $i+1$ sent
#   back (its `dh_prev`); what reaches $s_0$ goes into the bridge.
# - **$c$ has three paths** to the logits: the output layer at every step, the cell's input
#   $[E y_{i-1} ; c]$ at every step, and the bridge once. Its gradient is the sum of all of them.
# - **The bridge**: $s_0 = \tanh(z)$, $z = c W_s + b_s$; `s0` is in the cache.
#
# `ex.stub("plain_decoder_backward")` prints the starting point with the cache's contents.
# `ex.check` grades your function with the gradient checker alone and names likely mistakes.
# First, what it says about a half-written backward, which has done only the output layer's
# weights so far and returns zeros for the rest:

# %%
ex.stub("plain_decoder_backward")


def half_written(dlogits, cache):
    emb, c, s0, W_s, W_o, states, steps = cache
    B, T, V = dlogits.shape
    feats = np.concatenate([states, np.repeat(c[:, None], T, axis=1), emb], axis=2)
    dW_o = feats.reshape(B * T, -1).T @ dlogits.reshape(B * T, V)  # (Hd + C + E, V)
    db_o = dlogits.sum(axis=0).sum(axis=0)  # (V,)
    not_yet = [np.zeros_like(a) for a in (emb, c, W_s, s0[0])]  # demb, dc, dW_s, db_s
    return (*not_yet, dW_o, db_o)


half = ex.check("plain_decoder_backward", half_written)
assert half.status == "failed" and half.errors["dW_o"] < 1e-7

# %% [markdown]
# The two gradients it has written pass (relative errors 5.4e-09 and 1.1e-10); the four it has
# not are wrong by 1.0e+00, the size of the gradient itself, and the report says they are all
# zeros. Now yours: replace the `raise` line, then run the cell after it.

# %%
def my_plain_decoder_backward(dlogits, cache):
    """Backward of the bridge and the plain decoder (docs/equations.md §2).

    dlogits (B, T, V). cache = (emb, c, s0, W_s, W_o, states, steps):
    emb (B, T, E) the embeddings of y_0..y_{T-1}, c (B, C), s0 (B, Hd),
    W_s (C, Hd), W_o (Hd + C + E, V), states (B, T, Hd) = s_1..s_T, steps
    the T caches of gru_step_forward (give steps[i] to
    tinyattn.gru.gru_step_backward, whose first two returns are dx (B, E + C)
    and dh_prev (B, Hd)).
    Forward: s_0 = tanh(c W_s + b_s); s_i = GRU(s_{i-1}, [E y_{i-1} ; c]);
    logits_i = [s_i ; c ; E y_{i-1}] W_o + b_o.
    Returns demb, dc, dW_s, db_s, dW_o, db_o, each the shape of its array.
    """
    emb, c, s0, W_s, W_o, states, steps = cache
    # BEGIN SOLUTION
    B, T, E = emb.shape
    Hd, C = states.shape[2], c.shape[1]
    dfeat = dlogits @ W_o.T  # (B, T, Hd + C + E): the output layer's shares, every step
    feat = np.concatenate([states, np.broadcast_to(c[:, None], (B, T, C)), emb], axis=2)
    dW_o = np.einsum("btf,btv->fv", feat, dlogits)
    db_o = dlogits.sum(axis=(0, 1))
    demb = dfeat[..., Hd + C:].copy()
    dc = dfeat[..., Hd:Hd + C].sum(axis=1)  # c in the output layer at every step
    ds = np.zeros_like(s0)  # what step i + 1 sends back to s_i
    for i in reversed(range(T)):
        dx, ds = gru_step_backward(dfeat[:, i, :Hd] + ds, steps[i])[:2]
        demb[:, i] += dx[:, :E]  # the cell's input is [E y_{i-1} ; c]
        dc += dx[:, E:]  # c in the cell's input at every step
    dz = ds * (1.0 - s0 * s0)  # s_0 = tanh(z)
    dc += dz @ W_s.T  # c in the bridge
    return demb, dc, c.T @ dz, dz.sum(axis=0), dW_o, db_o
    # END SOLUTION

# %%
mine = ex.check("plain_decoder_backward", my_plain_decoder_backward)
assert mine.status in ("passed", "not implemented"), "read the report above"

# %% [markdown]
# ## 3. The encoder and $c$, by hand
#
# A tiny plain model in float64 (sizes different wherever the model allows, so that most
# transposed matrices fail on their shape: E = 4, H = 5, 11 source and 13 target tokens; the
# bridge is square, 2H = Hd = 10, and there the value check does the work) and a batch of two
# sources of length 6, the second padded after 4 real tokens (id 0 is `<pad>`, 1 `<sos>`,
# 2 `<eos>`).

# %%
V_src, V_tgt, E, H = 11, 13, 4, 5
plain = ta.Seq2Seq(V_src, V_tgt, emb_size=E, hidden_size=H, attention=None,
                   rng=np.random.default_rng(0))  # float64 by default
src = np.array([[4, 5, 6, 7, 8, 9],
                [3, 4, 5, 6, 0, 0]])
src_lengths = np.array([6, 4])
B, S = src.shape

enc_hs, state0, c, src_mask = plain.encode(src, src_lengths)
assert enc_hs.shape == (B, S, 2 * H) and c.shape == (B, 2 * H) and state0.shape == (B, 2 * H)

# c = [→h_S ; ←h_1]: the forward half at each source's last *real* token, the backward half at
# position 0, where the backward direction ends
for b, L in enumerate(src_lengths):
    assert np.array_equal(c[b, :H], enc_hs[b, L - 1, :H])
    assert np.array_equal(c[b, H:], enc_hs[b, 0, H:])

W_s, b_s = plain.bridge.params["W"], plain.bridge.params["b"]
assert np.allclose(state0, np.tanh(c @ W_s + b_s))  # (B, 2H) @ (2H, Hd) -> (B, Hd)
print("enc_hs", enc_hs.shape, "-> c", c.shape, "-> s_0", state0.shape)
print("c:\n", c)

# %% [markdown]
# ## 4. The decoder, by hand
#
# Teacher forcing (`docs/equations.md` §6): step $i$ reads the true previous token $y_{i-1}$,
# starting from `<sos>`. We run the GRU step function of lesson 02 on $[E y_{i-1} ; c]$, then the
# output layer on $[s_i ; c ; E y_{i-1}]$, and compare with the library's `PlainDecoder`.

# %%
tgt_in = np.array([[1, 5, 6, 7, 8],   # <sos> y_1 .. y_4
                   [1, 9, 10, 0, 0]])
T = tgt_in.shape[1]
emb = plain.tgt_emb(tgt_in)  # (B, T, E)
cell, out = plain.decoder.cell, plain.decoder.out
W_o, b_o = out.params["W"], out.params["b"]
assert W_o.shape == (2 * H + 2 * H + E, V_tgt)

s = state0
rows = []
for i in range(T):
    x_i = np.concatenate([emb[:, i], c], axis=1)  # [E y_{i-1} ; c]: (B, E + 2H)
    s, _ = gru_step_forward(x_i, s, cell.params["W_x"], cell.params["W_h"], cell.params["b_x"],
                            cell.params["b_h"], reset_after=cell.reset_after)
    feat = np.concatenate([s, c, emb[:, i]], axis=1)  # [s_i ; c ; E y_{i-1}]: (B, Hd + 2H + E)
    rows.append(feat @ W_o + b_o)  # (B, V)
logits_hand = np.stack(rows, axis=1)  # T x (B, V) -> (B, T, V)

memory = plain.decoder.prepare(enc_hs, src_mask, c)  # what the plain decoder reads: c
logits_lib, alphas = plain.decoder(emb, memory, state0)
assert alphas is None  # no attention weights: there is nothing to attend to
assert logits_lib.shape == (B, T, V_tgt)
assert np.allclose(logits_hand, logits_lib)
print("logits", logits_lib.shape, "; first step of example 0:\n", logits_lib[0, 0])

# %% [markdown]
# Look at what `plain.decoder(emb, memory, state0)` reads: the target embeddings, $s_0$ (itself a
# function of $c$) and, from the memory, only `memory.context`, which is $c$. Every decoder gets a
# `Memory` (`tinyattn/memory.py`, `docs/models.md`); the plain one never reads its
# `annotations`, the encoder states. Compare the attention decoder of lesson 05, whose memory's
# `keys` come from all S encoder states.
#
# **The two layers with weights.** The output layer `out` is a `ta.Linear` and the target
# embedding `tgt_emb` a `ta.Embedding` (`docs/equations.md` §8.3):
#
# $$\text{Linear: } y = x W + b, \quad dW = X^\top dY, \quad db = \textstyle\sum_\text{rows} dY,
# \quad dX = dY\, W^\top \qquad \text{Embedding: } y = W[\text{id}], \quad
# dW[\text{id}] \mathrel{+}= dy \text{ for every occurrence of id},$$
#
# where $X$ and $dY$ have all leading axes flattened into rows, and the embedding's padding row
# gets no gradient and stays 0. Both by hand on tiny arrays, forward and backward:

# %%
rng_l = np.random.default_rng(3)
lin = ta.Linear(4, 3, rng=rng_l)
x_l, dy_l = rng_l.standard_normal((2, 5, 4)), rng_l.standard_normal((2, 5, 3))  # (B, T, in/out)
W_l, b_l = lin.params["W"], lin.params["b"]
assert np.allclose(lin(x_l), x_l @ W_l + b_l)
dx_l = lin.backward(dy_l)
X2, dY2 = x_l.reshape(-1, 4), dy_l.reshape(-1, 3)  # leading axes flattened: (10, 4), (10, 3)
assert np.allclose(lin.grads["W"], X2.T @ dY2) and np.allclose(lin.grads["b"], dY2.sum(axis=0))
assert np.allclose(dx_l, dy_l @ W_l.T)

emb_l = ta.Embedding(6, 3, rng=rng_l, pad_id=0)
ids_l = np.array([[2, 5, 2, 0],
                  [1, 2, 0, 0]])  # id 2 three times, two pads
dy_e = rng_l.standard_normal((2, 4, 3))
assert np.array_equal(emb_l(ids_l), emb_l.params["W"][ids_l]) and not emb_l.params["W"][0].any()
emb_l.backward(dy_e)
dW_hand = np.zeros((6, 3))
for b in range(2):
    for t in range(4):
        if ids_l[b, t] != 0:  # the padding row gets nothing
            dW_hand[ids_l[b, t]] += dy_e[b, t]  # a repeated id: the gradients add up
assert np.allclose(emb_l.grads["W"], dW_hand) and not emb_l.grads["W"][0].any()
wrong_dW = np.zeros((6, 3))
wrong_dW[ids_l] += dy_e  # fancy-index +=: a repeated id keeps only its last gradient
print("row 2 (id 2 read 3 times): summed", dW_hand[2], " fancy-index +=", wrong_dW[2])

# %% [markdown]
# The printout is the one trap of the embedding's backward: `dW[ids] += dy` writes each row once,
# so a token read three times in a batch gets one of its three gradients; the sum needs
# `np.add.at` (or the loop above). Without the padding rule, `<pad>` would get a gradient from
# every pad of every batch, and its embedding would learn something from positions that are not
# there.
#
# ## 5. The decoder sees the source only through $c$
#
# Change one token in the *middle* of the first source (position 2: 6 → 10) and follow the
# change. For a fair contrast, build a Bahdanau model of the same sizes and seed.
#
# The experiment: let the encoder of each model return a *mixture*, source b's encoder states
# $h_1..h_S$ with source a's $s_0$ and $c$, and let the library do everything after the encoder
# (`start` picks what the decoder reads, the decoder runs). If a decoder read any $h_j$ other
# than through $c$, the mixture would give a different output from source a's.
#
# **Predict.** For each of the two models, how far will the mixture's logits be from source a's:
# as far as source b's own logits, a little, or not at all?

# %%
attn_model = ta.Seq2Seq(V_src, V_tgt, emb_size=E, hidden_size=H, attention="bahdanau",
                        rng=np.random.default_rng(0))
src_b = src.copy()
src_b[0, 2] = 10  # a different token in the middle of example 0

enc_a, _, c_a, _ = plain.encode(src, src_lengths)
enc_b, _, c_b, _ = plain.encode(src_b, src_lengths)
moved = np.abs(enc_b - enc_a)[0] > 0  # (S, 2H): which entries of example 0's h_j changed
print("forward half  of h_j changed at positions", np.flatnonzero(moved[:, :H].any(axis=1)))
print("backward half of h_j changed at positions", np.flatnonzero(moved[:, H:].any(axis=1)))
print(f"|c_b - c_a| max: {np.abs(c_b - c_a).max():.3f}")


def logits_with(model, encoding):
    """The model's logits for tgt_in when its encoder returns `encoding`, a tuple
    (enc_hs, s_0, c, src_mask); everything after the encoder is the library's code."""
    model.encode = lambda src, src_lengths: encoding  # on this object only
    try:
        memory, carry = model.start(src, src_lengths)  # plain reads c; attention, all h_j
        return model.decoder(model.tgt_emb(tgt_in), memory, carry)[0]
    finally:
        del model.encode  # the class's own encode again


for name, model in (("plain", plain), ("attention", attn_model)):
    code_a, code_b = model.encode(src, src_lengths), model.encode(src_b, src_lengths)
    out_a, out_b = logits_with(model, code_a), logits_with(model, code_b)
    assert np.array_equal(out_a, model.decoder(model.tgt_emb(tgt_in),
                                               *model.start(src, src_lengths))[0])  # no-op swap
    mixed = logits_with(model, (code_b[0],) + code_a[1:])  # b's h_1..h_S; a's s_0, c, mask
    gap = np.abs(mixed - out_a).max()
    print(f"{name:9} |logits_b - logits_a| max {np.abs(out_b - out_a).max():.3f};  "
          f"states of b with s_0, c of a: |logits - logits_a| max {gap:.3f}")
    if model is plain:
        assert gap == 0.0  # exactly source a's output: b's states never reach the decoder
    else:
        assert gap > 1e-3  # the attention decoder reads the changed states itself

# %% [markdown]
# Position 2 moved every encoder state: the forward direction from position 2 on, the backward
# direction up to position 2. In the plain model that change reaches the logits through one door,
# $c$ (and $s_0$, a function of $c$): given source a's $c$ and $s_0$, the decoder writes source a's
# output *exactly* (a difference of 0.000), however different the other states are. In the
# attention model, source b's states change the output even with source a's $s_0$: the decoder
# reads all $h_j$ itself.
#
# **The size of $c$ does not depend on the source length.** Encode a source of 3 tokens and one
# of 30:

# %%
for L in (3, 30):
    x = np.random.default_rng(L).integers(4, V_src, size=(1, L))  # no pads, no specials
    hs, _, c_L, mask = plain.encode(x, [L])
    keys = attn_model.decoder.attn.prepare(attn_model.encode(x, [L])[0], mask)
    assert c_L.shape == (1, 2 * H) and hs.shape == (1, L, 2 * H)
    print(f"S = {L:2}: encoder states {hs.shape}, plain decoder reads c {c_L.shape}; "
          f"attention decoder reads keys {keys.keys.shape}")

# %% [markdown]
# Thirty tokens, or three hundred, must fit into the same 2H = 10 numbers. An attention model's
# memory grows with the source: one key per position.
#
# ## 6. Gradient check: $c$ is used at every step
#
# Because $c$ enters every decoder step (and every output), its gradient is a **sum over the
# steps**: each step's error sends a share back to the same vector, and the encoder receives
# their total as the gradient of its final state. The library's backward returns
# `demb, dmemory, dstate0` (the mirror of `forward(emb, memory, state0)`; `dmemory.context` is
# the gradient of c): the two paths of section 2 that run through the decoder; `tinyattn.bridge.bridge_backward` turns `dstate0` into the third.
# Together they compute what you wrote in section 2 (the exercise's tests check it). We check
# all three and every decoder parameter, the GRU's included, against centered differences.
# **What to expect:** relative errors far below the tolerance for a layer, $10^{-6}$
# (`TOL_LAYER`), with the recurrent weights, used at every step, collecting the most round-off;
# a wrong backward is off by the size of the gradient itself, as the half-written backward of
# section 2 was.

# %%
dec = plain.decoder
arrays = {"emb": emb.copy(), "c": c.copy(), "state0": state0.copy()}
arrays.update({name: value for name, value, _ in dec.named_parameters()})  # cell.W_x, out.W, ...


def forward():
    memory = dec.prepare(enc_hs, src_mask, arrays["c"])  # the plain decoder reads only c
    return dec(arrays["emb"], memory, arrays["state0"])[0]


def backward(dlogits):
    dec.zero_grad()
    forward()
    demb, dmemory, dstate0 = dec.backward(dlogits)  # dmemory.context is dc
    grads = {"emb": demb, "c": dmemory.context, "state0": dstate0}
    grads.update({name: grad.copy() for name, _, grad in dec.named_parameters()})
    return grads


result = check_gradients(forward, backward, arrays, tol=TOL_LAYER)
print(result)
print(f"largest relative error: {result.max_error:.2e}")
assert result.passed and result.max_error < TOL_LAYER

# %% [markdown]
# And the sum over steps, seen directly: send an upstream gradient into one step $i$ at a time;
# the $T$ gradients of $c$ add up to the full one.

# %%
dlogits = np.random.default_rng(1).standard_normal((B, T, V_tgt))
dec(emb, memory, state0)
dc_full = dec.backward(dlogits)[1].context
dc_steps = []
for i in range(T):
    only_i = np.zeros_like(dlogits)
    only_i[:, i] = dlogits[:, i]
    dec(emb, memory, state0)
    dc_steps.append(dec.backward(only_i)[1].context)
assert np.allclose(sum(dc_steps), dc_full)
print("|dc| of each step's share (example 0):", np.array([np.linalg.norm(d[0]) for d in dc_steps]))
dec.zero_grad()

# %% [markdown]
# ## 7. The experiment: accuracy against source length
#
# **What Bahdanau et al. showed.** Their figure 2 (the image is not reproduced here) plots BLEU
# on the English→French test set against sentence length (0 to 60 words) for four models: RNNenc
# (the plain encoder–decoder of this lesson) and RNNsearch (with attention), each trained on
# sentences of up to 30 or up to 50 words. Both RNNenc curves drop sharply as sentences grow
# longer; RNNsearch-50 stays roughly level even past 50 words. Their conclusion, in the
# abstract: the fixed-length vector is a bottleneck. Document 003 makes the same argument in
# words.
#
# **Our version, at the scale of a notebook.** The task is `copy` from `tinyattn.data`: write a
# random string of letters a–t back out. It needs no knowledge of language, every output token is
# either right or wrong, and the length is ours to choose: we draw sources of 3 to 20 letters
# (`make_splits` uses 3–10, so we call `make_task` with `max_len=20`). 4,000 training strings; a
# test set of 50 new strings for each length (none seen in training).

# %%
MIN_LEN, MAX_LEN = 3, 20
train = make_task("copy", 4000, seed=0, min_len=MIN_LEN, max_len=MAX_LEN)
seen = {item.src for item in train}
test = {}
for L in range(MIN_LEN, MAX_LEN + 1):
    fresh = [item for item in make_task("copy", 80, seed=100 + L, min_len=L, max_len=L)
             if item.src not in seen]
    test[L] = fresh[:50]
    assert len(test[L]) == 50
for item in train[:3]:
    print(f'{"".join(item.src):22} -> {"".join(item.tgt)}')

vocab = Vocab.build([item.src for item in train])  # the 20 letters + 4 specials, both sides
pairs = encode_pairs(train, vocab, vocab)
print(f"{len(train)} training strings, {len(vocab)} tokens in the vocabulary, "
      f"{sum(len(v) for v in test.values())} test strings")

# %% [markdown]
# **Two models with the same layer sizes.** E = 16, H = 32 per encoder direction (so $c$ and the
# decoder state have 64 numbers), GRU cells, float32, the same seed. The attention model has in
# addition Bahdanau's $W_a$ and $U_a$ (64 × 64 each, A = 64) and $v_a$ (64): 8,256 more
# parameters (the third cell prints the share). So that those extra parameters cannot be the
# explanation, a third model, the **control**, is a plain model with H = 36, which has *more*
# parameters than the attention model. All three get exactly the same training: the same batches
# in the same order (the trainer's `rng` has the same seed), Adam with learning rate 0.01
# multiplied by 0.7 after every epoch (`StepDecay`), batches of 64, gradient norm clipped at 5,
# 6 epochs (378 updates). The cells print each training's time; it depends on the machine.
#
# **Predict.** Before you run the three trainings: the test strings have 3 to 20 letters. For
# each model, what happens to its token accuracy from 3 to 20 letters? Does the plain model fall
# steadily, or hold and then collapse, and where? Does attention stay level? Does the control's
# extra size buy it much?

# %%
def train_model(name, attention, hidden_size=32):
    model = ta.Seq2Seq(len(vocab), len(vocab), emb_size=16, hidden_size=hidden_size,
                       attention=attention, pad_id=Vocab.pad_id, rng=np.random.default_rng(0),
                       dtype=np.float32)
    opt = ta.Adam(model.named_parameters(), lr=0.01)
    trainer = ta.Trainer(model, opt, pad_id=Vocab.pad_id, sos_id=Vocab.sos_id,
                         eos_id=Vocab.eos_id, batch_size=64, clip=5.0,
                         schedule=ta.StepDecay(opt, step_size=1, gamma=0.7),
                         rng=np.random.default_rng(0), show_progress=False)
    start = time.perf_counter()
    trainer.fit(pairs, epochs=6)
    seconds = time.perf_counter() - start
    n_params = sum(v.size for _, v, _ in model.named_parameters())
    print(f"{name:9} {n_params:6,} parameters, {len(trainer.batch_losses)} updates, "
          "loss by epoch " + " ".join(f"{r.train_loss:.3f}" for r in trainer.history) + ", "
          f"{seconds:.1f} s")
    return model, trainer


models = {"plain": train_model("plain", None)}

# %%
models["attention"] = train_model("attention", "bahdanau")

# %%
models["control"] = train_model("control", None, hidden_size=36)
n_params = {name: sum(v.size for _, v, _ in model.named_parameters())
            for name, (model, _) in models.items()}
assert n_params["attention"] - n_params["plain"] == 2 * 64 * 64 + 64  # W_a, U_a, v_a
assert n_params["control"] > n_params["attention"]
extra = n_params["attention"] - n_params["plain"]
print(f"attention has {extra:,} parameters more than plain, "
      f"{extra / n_params['plain']:.1%} more; the control {n_params['control']:,}")

# %% [markdown]
# **Scoring.** Greedy decoding (`tinyattn.cli.evaluation.decode`), then, per source length,
# `token_accuracy` (the share of reference letters that the output has at the same position)
# and `exact_match` (the share of outputs equal to the reference). Token accuracy compares
# position by position, so an output that drops one letter is also wrong at every position after
# it; exact match has no such subtlety, but it is harsh: one wrong letter in 20 scores 0.
# In symbols (`docs/equations.md` §11.1), over N sentences,
#
# $$\text{exact match} = \frac{1}{N} \sum_i [\text{hyp}_i = \text{ref}_i], \qquad
# \text{token accuracy} = \frac{\sum_i \sum_{t < |\text{ref}_i|} [\text{hyp}_i[t] =
# \text{ref}_i[t]]}{\sum_i |\text{ref}_i|},$$
#
# a missing position counting as wrong and letters past the end of the reference ignored. By
# hand on three made-up outputs (a right one, one a letter short, one a letter long):

# %%
refs_toy = [list("abc"), list("hello"), list("xy")]
hyps_toy = [list("abc"), list("helo"), list("xyz")]
em_hand = sum(h == r for h, r in zip(hyps_toy, refs_toy)) / len(refs_toy)
right = sum(t < len(h) and h[t] == r[t] for h, r in zip(hyps_toy, refs_toy) for t in range(len(r)))
acc_hand = right / sum(len(r) for r in refs_toy)
n_ref = sum(len(r) for r in refs_toy)
print(f"exact match {em_hand:.4f} (library {exact_match(hyps_toy, refs_toy):.4f}), token "
      f"accuracy {right}/{n_ref} = {acc_hand:.4f} (library {token_accuracy(hyps_toy, refs_toy):.4f})")
assert em_hand == exact_match(hyps_toy, refs_toy) == 1 / 3
assert acc_hand == token_accuracy(hyps_toy, refs_toy) == 8 / 10

# %% [markdown]
# "helo" loses two positions of "hello" for one missing letter (the "o" sits where the second "l"
# should be, and position 5 is empty); "xyz" scores full token accuracy but no exact match. That
# is why the table below reports both.

# %%
def scores(model):
    run = Run(directory=None, data=DataSpec("copy"), model_options=model.config,
              train_options={"max_decode_len": MAX_LEN + 5}, src_vocab=vocab, tgt_vocab=vocab)
    outputs, acc, em = {}, {}, {}
    for L, exs in test.items():
        outputs[L] = [words for ((words, _),) in decode(model, run, [list(e.src) for e in exs])]
        refs = [list(e.tgt) for e in exs]
        acc[L], em[L] = token_accuracy(outputs[L], refs), exact_match(outputs[L], refs)
    return outputs, acc, em


results = {name: scores(model) for name, (model, _) in models.items()}
lengths = list(test)

fig, (ax_acc, ax_em) = plt.subplots(1, 2, figsize=(10, 4), dpi=90, sharey=True,
                                     layout="constrained")
styles = {"plain": dict(color="tab:red", marker="o"),
          "attention": dict(color="tab:blue", marker="s"),
          "control": dict(color="tab:orange", marker="^", ls="--")}
labels = {"plain": f"one context vector c, H = 32 ({n_params['plain']:,} parameters)",
          "attention": f"Bahdanau attention, H = 32 ({n_params['attention']:,})",
          "control": f"control: one c, H = 36 ({n_params['control']:,})"}
for name, (_, acc, em) in results.items():
    ax_acc.plot(lengths, [acc[L] for L in lengths], ms=4, label=labels[name], **styles[name])
    ax_em.plot(lengths, [em[L] for L in lengths], ms=4, label=labels[name], **styles[name])
for ax, what in ((ax_acc, "token accuracy"), (ax_em, "exact match")):
    ax.set_xlabel("source length S (letters)")
    ax.set_title(f"{what} against source length")
    ax.set_xticks(range(MIN_LEN - 1, MAX_LEN + 1, 2))
    ax.set_ylim(-0.02, 1.02)
    ax.grid(alpha=0.3)
ax_acc.set_ylabel("fraction correct (50 test strings per length)")
ax_acc.legend(loc="lower left", fontsize=9)
fig.suptitle("copy task: same data, same 378 updates")
plt.show()

# %% [markdown]
# The table, in buckets of three lengths (150 test strings each; token accuracy over all the
# letters of the bucket, exact match over its strings):

# %%
names = ("plain", "attention", "control")
print(f"{'source length':14}{'token accuracy':^33}   {'exact match':^33}")
print(f"{'':14}" + "".join(f"{n:>11}" for n in names) + "   " + "".join(f"{n:>11}" for n in names))
gains = []
for lo in range(MIN_LEN, MAX_LEN + 1, 3):
    bucket = [L for L in lengths if lo <= L < lo + 3]
    refs = [list(item.tgt) for L in bucket for item in test[L]]
    outs = {n: [o for L in bucket for o in results[n][0][L]] for n in names}
    acc = [token_accuracy(outs[n], refs) for n in names]
    em = [exact_match(outs[n], refs) for n in names]
    print(f"{f'{bucket[0]}-{bucket[-1]}':14}" + "".join(f"{v:11.1%}" for v in acc) + "   "
          + "".join(f"{v:11.1%}" for v in em))
    gains.append(acc[2] - acc[0])  # control - plain, token accuracy
print("control - plain, token accuracy by bucket, in points:",
      " ".join(f"{g * 100:+.1f}" for g in gains))
em_attn = results["attention"][2]
print("attention, exact match at S = 17..20:",
      " ".join(f"{em_attn[L]:.0%}" for L in range(17, MAX_LEN + 1)))
letters = len(vocab) - len(Vocab.SPECIALS)  # the letters a-t
print(f"one letter right by pure chance: 1 / {letters} = {1 / letters:.1%}")

acc_plain, acc_attn, acc_ctrl = (results[n][1] for n in names)
assert min(acc_attn.values()) > 0.9  # attention: high at every length
for acc in (acc_plain, acc_ctrl):  # plain, with 32 or 36: falls with length
    assert acc[MIN_LEN] > 0.9 and acc[MAX_LEN] < 0.4

# %% [markdown]
# What the mistakes look like: the first three test strings of 20 letters. Under each output, a
# `·` marks every position where it differs from the source (or has no letter), the way
# `token_accuracy` counts.

# %%
def marks(out, ref):
    return "".join(" " if t < len(out) and out[t] == r else "·" for t, r in enumerate(ref))


for k in range(3):
    ref = list(test[MAX_LEN][k].tgt)
    print(f"source     {''.join(ref)}")
    for name in ("plain", "attention"):
        out = results[name][0][MAX_LEN][k]
        print(f"{name:10} {''.join(out)}\n{'':10} {marks(out, ref)}")
    print()

# %% [markdown]
# **The losses.** Left: the training loss of every update (`Trainer.batch_losses`, small points)
# and each epoch's mean (`Trainer.history`, line with markers); the control's per-batch points
# are left out, to keep the panel readable. Right: the same cross-entropy on the test strings of
# each length, with the reference fed in (teacher forcing, `Trainer.evaluate`), so it does not
# depend on greedy decoding. (`tinyattn.plot.plot_history` draws one model's curves; here we
# want several models on one axis.)

# %%
fig, (ax_train, ax_len) = plt.subplots(1, 2, figsize=(11, 4), dpi=90, layout="constrained")
test_loss = {}
for name, (_, trainer) in models.items():
    losses = np.array(trainer.batch_losses)
    per_epoch = len(losses) / len(trainer.history)
    if name != "control":
        ax_train.plot((np.arange(len(losses)) + 1) / per_epoch, losses, ".", ms=2, alpha=0.6,
                      color=styles[name]["color"])
    ax_train.plot([r.epoch for r in trainer.history], [r.train_loss for r in trainer.history],
                  label=labels[name], **styles[name])
    test_loss[name] = [trainer.evaluate(encode_pairs(test[L], vocab, vocab)) for L in lengths]
    ax_len.plot(lengths, test_loss[name], ms=4, label=labels[name], **styles[name])
ax_train.set_xlabel("epoch")
ax_train.set_title("training loss: each batch (points), epoch mean (line)")
ax_len.set_xlabel("source length S (letters)")
ax_len.set_title("test loss against source length (teacher forced)")
ax_len.set_xticks(range(MIN_LEN - 1, MAX_LEN + 1, 2))
for ax in (ax_train, ax_len):
    ax.set_yscale("log")
    ax.set_ylabel("cross-entropy per target token (nats)")
    ax.grid(alpha=0.3)
ax_len.legend(fontsize=8, loc="center right")
plt.show()
for name in models:
    print(f"{name:9} test loss at S = {MIN_LEN}: {test_loss[name][0]:.3f}   "
          f"at S = {MAX_LEN}: {test_loss[name][-1]:.3f} nats per token, "
          f"{test_loss[name][-1] / test_loss[name][0]:.1f} times higher")
print(f"at S = {MAX_LEN}, the plain model's test loss is "
      f"{test_loss['plain'][-1] / test_loss['attention'][-1]:.1f} times the attention model's")
first, last = (models["attention"][1].history[k].train_loss for k in (0, -1))
print(f"attention's training loss, epoch 1 to 6: {first:.3f} -> {last:.3f}, "
      f"{first / last:.0f} times lower")

# %% [markdown]
# ## 8. What the experiment shows
#
# The numbers below are those of the run stored in this notebook (the asserts above hold the
# main ones).
#
# - **The plain model degrades with length.** It copies strings of 3 to 5 letters almost
#   perfectly (95.5 % of the letters, 91.3 % of the strings exactly); from 9 letters on it copies
#   not a single test string exactly, and its token accuracy keeps falling, to 20.6 % for 18–20
#   letters (one letter right by pure chance would be 5.0 %). The samples show how: the
#   output often starts right, then drifts into letters that are plausible but wrong, and it may
#   be a letter short or long, which shifts everything after it. Everything it writes must come
#   from the 64 numbers of $c$, and a string of 20 random letters is more than it has learned to
#   pack into them.
# - **More parameters do not explain the gap.** The control, a plain model with H = 36 and more
#   parameters than the attention model (56,544 against 54,296), draws nearly the same curve as
#   the plain model: +3.5, +3.7 and +5.3 points of token accuracy at 6–8, 9–11 and 12–14
#   letters, −0.3, −0.5 and +1.4 in the other buckets, 21.9 % at 18–20; exact match 4.0 % at
#   9–11 letters, 0.7 % at 12–14, none from 15 on. Its $c$ has
#   72 numbers instead of 64; that is not enough to change the picture.
# - **The attention model stays high, but it is not perfect at length 19–20.** With the same
#   layer sizes, data and updates, its token accuracy is 96.9 % or more in every bucket. Exact
#   match slips from 99.3 % (3–5 letters) to 82.7 % (18–20), and to 76 % and 80 % at 19 and 20
#   letters: it gets a fifth or more of those strings wrong. Some of that is how exact match
#   counts (one slip in 20 letters loses the whole string; the third sample goes wrong from the
#   14th letter on, in a stretch where letters repeat, "…mhmshnpph", and comes out two letters
#   too long), but not all: its test loss also rises with length, from 0.021 to 0.091 nats per
#   token, 4.2 times higher. At 20 letters the plain model's (1.778) is still 19.6 times
#   higher. At each step the attention model reads the encoder states directly, so a longer string does not crowd a fixed memory; it adds states to
#   choose from, and more steps at which to choose wrongly.
# - **The training curves.** With attention, the epoch-mean loss of epoch 6 is 47 times lower
#   than that of epoch 1 (2.352 → 0.050); the plain model's is still 1.101 after 6 epochs and falling
#   slowly, the control's 1.048. The plain model's batch losses split into low and high values
#   because the trainer groups strings of similar length into the same batch (`bucket=True`): a
#   batch of short strings has a low loss, a batch of long ones a high loss. It is the
#   right-hand panel again, seen during training.
# - **The shape is that of figure 2**: a curve that falls with length for the one-vector model,
#   one that stays nearly level with attention. Bahdanau et al.'s figure also shows that
#   attention does not make length free (RNNsearch-30 also declines on the longest sentences,
#   though less than the RNNenc models), as our exact match at 19–20 letters does. Our task is
#   easier than translation (the alignment is the diagonal) and our models are tiny, so the
#   effect shows from 6 letters on rather than at 30–60 words.
# - **Honest limits.** This is one seed and one small budget. A bigger plain model trained
#   longer does better: Sutskever et al. (abstract and conclusion) found that their large
#   4-layer LSTM, with the source reversed, "did not have difficulty on long sentences". The
#   bottleneck is a matter of how much one vector can be trained to hold, not an absolute wall;
#   attention removes most of it at a modest cost (here, the 8,256 parameters of $W_a$, $U_a$,
#   $v_a$ and a decoder loop that runs step by step; compare the training times printed above,
#   which depend on the machine).
#
# **To remember.** Plain seq2seq: $c = q(h_1..h_S)$ (here $[\overrightarrow{h}_S ;
# \overleftarrow{h}_1]$), $s_i = f(s_{i-1}, [E y_{i-1} ; c])$,
# $p(y_i \mid y_{<i}, x) = \text{softmax}([s_i ; c ; E y_{i-1}] W_o + b_o)$. The decoder sees
# the source only through $c$, whose size is fixed, whatever the length of the source; the
# gradient of $c$ is a sum over all decoder steps. Attention (lesson 05) replaces the one $c$ by
# a new $c_i$ at every step, read from all the encoder states.
#
# ## What to try
#
# - **A much bigger H for the plain model**:
#   `model, _ = train_model("plain", None, hidden_size=64)`, then 128, and score it with
#   `scores(model)`. How much does the curve rise for each doubling, does it still fall with
#   length, and how fast does the training time grow? Try more epochs too.
# - **A smaller H for the attention model** (16, or 8). How small can it go and still copy 20
#   letters? Its memory grows with the source, so each vector may need to hold far less.
# - **A one-directional encoder** (`bidirectional=False`): then $c = h_S$ exactly as in document
#   003. Which letters does the plain model now lose first, the early ones or the late ones?
#   Then try the `reverse` task, or reverse the source strings yourself (Sutskever et al.'s
#   trick).
# - **Longer strings than in training:** test on 25 or 30 letters (`make_task(..., min_len=25,
#   max_len=25)`) with `max_decode_len` raised. Neither model has seen such lengths; which one
#   fails more gracefully?
#
# **Next.** Lesson 05: Bahdanau attention, a new context vector $c_i$ at every output step.
