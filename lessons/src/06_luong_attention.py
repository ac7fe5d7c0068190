# Source of lessons/06_luong_attention.ipynb (learner) and
# lessons/solutions/06_luong_attention.ipynb (instructor): edit here, then run
# `.venv/bin/python lessons/build.py 06` (see lessons/build.py).

# %% [markdown]
# # Lesson 06 — Luong attention: global scores, the attentional state, input feeding
#
# **Where this sits.** Lesson 05 built Bahdanau's additive attention. This lesson takes the
# simplifications Luong, Pham and Manning made in 2015 for **global** attention (every source
# position scored at every step); lesson 07 restricts it to a window (**local** attention), and
# lesson 08 compares soft attention with hard attention. In this lesson you will
#
# 1. write out the four global scores (dot, general, concat, scaled dot) and compute each by hand
#    on tiny arrays, checked against `tinyattn.LuongAttention(score=...)`;
# 2. compute the attentional state $\tilde h_t = \tanh([c_t ; h_t] W_c)$;
# 3. unroll a decoder with input feeding by hand and match the library's `LuongDecoder`;
# 4. write the backward of the general score yourself, then gradient-check every score and a
#    whole model;
# 5. train the four global scores (and general with input feeding) on the same dates, with the
#    same budget, and compare loss, exact match, alignment and speed.
#
# **Sources.** `docs/equations.md` §5 (§5.1 the decoder step and $\tilde h_t$, §5.2 the global
# scores). Document 003 (`docs/sources.md`, "从 Seq2seq 到 Attention 模型到 Self Attention（一）")
# is where the two documents meet this lesson: right after Bahdanau's equations it says that the
# follow-up papers *Effective approaches of the NMT* (Luong et al.) and *Show, Attend and Tell*
# (Xu et al.) introduced **global/local attention** (全局/局部注意力) and **soft/hard attention**
# (软/硬注意力), that the score $e_{ij}$ it just described is of the global, soft kind, and that
# its figure 11 shows three ways to compute the score; it then rewrites $e_{ij}$ as
# $\text{score}(h_t, \bar h_s)$ and picks the dot product "for convenience" (the figure itself is
# lost). Document 000 names the same families in one line: the score "can be additive,
# multiplicative or dot-product" (加性、乘性或者 Dot-product). The paper: M.-T. Luong, H. Pham,
# C. D. Manning, *Effective Approaches to Attention-based Neural Machine Translation*, EMNLP 2015
# (arXiv:1508.04025): §3 for $\tilde h_t$, §3.1 global attention and its scores, §3.3 input
# feeding. The scaled dot product is from A. Vaswani et al., *Attention Is All You Need*,
# NeurIPS 2017, §3.2.1.

# %%
import re
import time

import matplotlib.pyplot as plt
import numpy as np

import tinyattn as ta
import tinyattn.exercises as ex
from tinyattn.attention import LuongAttention
from tinyattn.cli.evaluation import evaluate_examples, teacher_forced
from tinyattn.cli.run import DataSpec, Run, encode_pairs, load_examples
from tinyattn.data import Vocab
from tinyattn.decoders import combine_forward, hidden
from tinyattn.gradcheck import TOL_LAYER, TOL_MODEL, check_gradients, check_module
from tinyattn.plot import plot_alignment
from tinyattn.training.batching import make_batches

np.set_printoptions(precision=3, suppress=True)
plt.rcParams["figure.dpi"] = 80  # smaller stored figures, still readable

# %% [markdown]
# ## 1. The equations
#
# ![Bahdanau scores with the state before the step, Luong with the state after it](../docs/images/bahdanau_vs_luong.png)
#
# Follow the red "query" arrow in each half of the figure: Bahdanau scores with $s_{i-1}$, the
# state before the step, and feeds the context $c_i$ into the step; Luong scores with $h_t$, the
# state after the step, and sends $c_t$ to $\tilde h_t$ (the dashed line is input feeding,
# section 4). Luong's decoder first takes its RNN step, $h_t = f(h_{t-1}, E y_{t-1})$, and only
# then attends, with the **current** state $h_t$ as the query. For every source position
# $s = 1..S$ with encoder state $\bar h_s$:
#
# $$\text{score}(h_t, \bar h_s) = \begin{cases}
# h_t \cdot \bar h_s & \text{dot} \\
# h_t\, W_a\, \bar h_s^\top & \text{general} \\
# v_a \cdot \tanh\big([h_t ; \bar h_s]\, W_a\big) & \text{concat} \\
# h_t \cdot \bar h_s \,/\, \sqrt{H_k} & \text{scaled dot (Vaswani 2017)}
# \end{cases}$$
#
# (§3.1 also lists a *location-based* $a_t = \text{softmax}(h_t W_a)$, which ignores the source
# states; tinyattn does not implement it.)
#
# $$a_t(s) = \frac{\exp \text{score}(h_t, \bar h_s)}{\sum_{s'} \exp \text{score}(h_t, \bar h_{s'})},
# \qquad c_t = \sum_s a_t(s)\, \bar h_s$$
#
# $$\tilde h_t = \tanh\big([c_t ; h_t]\, W_c\big), \qquad
# p(y_t \mid y_{<t}, x) = \text{softmax}(\tilde h_t W_s + b_s)$$
#
# | maths | meaning | in the code | shape |
# |---|---|---|---|
# | $h_t$ | decoder state after step $t$ (the query) | `queries` / `hs` | (B, T, Hq) |
# | $\bar h_s$ | encoder state of source position $s$ | `enc_hs` | (B, S, Hk) |
# | $W_a$ (general) | bilinear weight | `attn.params["W_a"]` | (Hq, Hk) |
# | $W_a$, $v_a$ (concat) | a one-layer scorer | `params["W_a"]`, `"v_a"` | (Hq + Hk, A), (A,) |
# | $a_t(s)$ | attention weights | `alpha` | (B, T, S) |
# | $c_t$ | context vector | `context` | (B, T, Hk) |
# | $W_c$ | combines context and state | `decoder.params["W_c"]` | (Hk + Hd, Hd) |
# | $\tilde h_t$ | attentional hidden state | `h_tilde` | (B, T, Hd) |
# | $W_s$, $b_s$ | output layer | `decoder.out.params["W"]`, `"b"` | (Hd, V), (V,) |
#
# **Row vectors.** The paper writes $h_t^\top W_a \bar h_s$ and $W_c[c_t ; h_t]$ with column
# vectors; tinyattn keeps one example per row: `h_t @ W_a @ hbar_s` and `[c_t ; h_t] @ W_c`.
#
# **Three notes on the documents.**
#
# - Document 003 writes "`h_{t}代表 s_{i-1}`" ($h_t$ stands for $s_{i-1}$) when it moves to
#   Luong's notation. The symbols line up, but the *time* does not: Luong's query $h_t$ is the
#   state after the step, Bahdanau's $s_{i-1}$ the state before it. That is why a Luong decoder
#   without input feeding can run its RNN over the whole target first and attend afterwards, all
#   steps at once (sections 4 and 7).
# - Document 003 calls the context vector also the *attention vector*; in Luong's paper the
#   "attentional vector" is $\tilde h_t$, which mixes the context with $h_t$. This lesson keeps
#   "context" for $c_t$ and "attentional state" for $\tilde h_t$.
# - **Global, local, soft, hard.** Everything in this lesson is *global* attention, and it is
#   *soft*: every source position gets some weight, and everything is differentiable. Lesson 07
#   keeps the softness but only inside a window (Luong's local attention); lesson 08 compares
#   soft attention with Xu et al.'s *hard* attention, which picks one position at random.

# %% [markdown]
# ## 2. The four scores by hand
#
# A batch of B = 2 sources of length S = 7; the second has only 3 real tokens (positions 3..6 are
# padding, and the encoder outputs exactly 0 there). T = 5 decoder states, H = 4 for both the
# query and the encoder states (dot needs $H_q = H_k$), A = 6 for concat. All sizes differ, so a
# transposed matrix cannot pass unnoticed.

# %%
B, T, S, H, A = 2, 5, 7, 4, 6
rng = np.random.default_rng(0)
lengths = np.array([7, 3])
src_mask = np.arange(S)[None, :] < lengths[:, None]  # (1, S) < (B, 1) -> (B, S): True = real
enc_hs = rng.standard_normal((B, S, H))  # hbar_s
enc_hs[~src_mask] = 0.0
h = rng.standard_normal((B, T, H))  # h_t for t = 0..T-1, the decoder states after each step


def masked_softmax(scores, mask):
    """Softmax over the last axis with exp(-inf) = 0 at masked positions."""
    z = np.where(mask, scores, -np.inf)
    w = np.exp(z - z.max(axis=-1, keepdims=True))  # subtract the row max: no overflow
    return w / w.sum(axis=-1, keepdims=True)


attns = {score: LuongAttention(H, H, score=score, attn_size=A if score == "concat" else None,
                               rng=np.random.default_rng(1))
         for score in ("dot", "general", "concat", "scaled_dot")}
print({score: {k: v.shape for k, v in attn.params.items()} for score, attn in attns.items()})

# %% [markdown]
# First each score literally, one number at a time (example 0, step 0, every $s$), then
# vectorised over the whole (B, T, S) block. For general, $h_t W_a \bar h_s^\top$ is computed as
# $h_t \cdot (\bar h_s W_a^\top)$: the projected keys $\bar h_s W_a^\top$ do not depend on $t$, so
# the library computes them once per source batch (`prepare`). For concat, $[h_t ; \bar h_s] W_a$
# splits into $h_t W_a^{(q)} + \bar h_s W_a^{(k)}$ (the top $H_q$ rows and the bottom $H_k$ rows
# of $W_a$): the same additive form as Bahdanau's score.

# %%
W_g = attns["general"].params["W_a"]  # (Hq, Hk)
W_cat, v_cat = attns["concat"].params["W_a"], attns["concat"].params["v_a"]  # (Hq + Hk, A), (A,)
assert W_g.shape == (H, H) and W_cat.shape == (2 * H, A) and v_cat.shape == (A,)

one = {  # example b = 0, step t = 0, every source position s
    "dot": [h[0, 0] @ enc_hs[0, s] for s in range(S)],
    "general": [h[0, 0] @ W_g @ enc_hs[0, s] for s in range(S)],
    "concat": [v_cat @ np.tanh(np.concatenate([h[0, 0], enc_hs[0, s]]) @ W_cat) for s in range(S)],
    "scaled_dot": [h[0, 0] @ enc_hs[0, s] / np.sqrt(H) for s in range(S)],
}

keys_T = enc_hs.transpose(0, 2, 1)  # (B, S, Hk) -> (B, Hk, S)
q_proj = h @ W_cat[:H]  # (B, T, Hq) @ (Hq, A) -> (B, T, A)
k_proj = enc_hs @ W_cat[H:]  # (B, S, Hk) @ (Hk, A) -> (B, S, A)
scores = {
    "dot": h @ keys_T,  # (B, T, H) @ (B, H, S) -> (B, T, S)
    "general": h @ (enc_hs @ W_g.T).transpose(0, 2, 1),  # keys hbar W_a^T: (B, S, Hq)
    # (B, T, 1, A) + (B, 1, S, A) -> (B, T, S, A), tanh, then @ (A,) -> (B, T, S)
    "concat": np.tanh(q_proj[:, :, None, :] + k_proj[:, None, :, :]) @ v_cat,
    "scaled_dot": h @ keys_T / np.sqrt(H),
}
print("scores of example 0, step 0 (columns: source positions s)")
for score, e in scores.items():
    assert e.shape == (B, T, S)
    assert np.allclose(e[0, 0], one[score])
    print(f"  {score:10}", e[0, 0])

# %% [markdown]
# Now softmax with the pads masked, the context, and the library's result for each score
# (`context, alpha = attn(queries, enc_hs, src_mask)`, all T steps in one call).
#
# **Predict.** Scaled dot is dot with every score divided by $\sqrt{H_k} = 2$. The cell prints,
# for each score, the weights of example 1 at step 0 and the largest weight over all rows. Will
# scaled dot's largest weight be half of dot's, the same, or something else, and will its rows
# be flatter or sharper?

# %%
for score, attn in attns.items():
    alpha = masked_softmax(scores[score], src_mask[:, None, :])  # mask (B, 1, S), over T
    context = alpha @ enc_hs  # (B, T, S) @ (B, S, Hk) -> (B, T, Hk)
    context_lib, alpha_lib = attn(h, enc_hs, src_mask)
    assert alpha_lib.shape == (B, T, S) and context_lib.shape == (B, T, H)
    assert np.allclose(alpha_lib, alpha) and np.allclose(context_lib, context)
    assert np.all(alpha_lib[1, :, 3:] == 0.0)  # pads: exactly 0
    print(f"{score:10} a_0(s) of example 1: {alpha_lib[1, 0]}   "
          f"max weight over all rows {alpha_lib.max():.2f}")

# %% [markdown]
# Dot and scaled dot differ only by the factor $1/\sqrt{H_k}$ = 1/2 here, yet the largest weight
# does not halve: it drops from 0.85 to 0.64, and the scaled rows are flatter. Dividing the
# scores divides their *differences*, the softmax depends only on differences, and the result is
# a flatter row that still sums to 1. Vaswani et al. added the factor because dot products of
# $H_k$-dimensional vectors grow like $\sqrt{H_k}$, and large scores saturate the softmax (one
# weight near 1, gradients near 0).

# %% [markdown]
# ## 3. The attentional hidden state $\tilde h_t$
#
# The context does not go to the output layer alone: Luong concatenates it with $h_t$ and passes
# both through one tanh layer, $\tilde h_t = \tanh([c_t ; h_t] W_c)$ (paper §3, eq. 5), and the
# prediction is $\text{softmax}(\tilde h_t W_s + b_s)$ (eq. 6). In the library this is
# `tinyattn.decoders.combine_forward`, used by `LuongDecoder` for all steps at once.

# %%
context_g, alpha_g = attns["general"](h, enc_hs, src_mask)
W_c = rng.uniform(-0.5, 0.5, (H + H, H))  # (Hk + Hd, Hd)
cat = np.concatenate([context_g, h], axis=2)  # (B, T, Hk) ; (B, T, Hd) -> (B, T, Hk + Hd)
h_tilde = np.tanh(cat @ W_c)  # (B, T, Hk + Hd) @ (Hk + Hd, Hd) -> (B, T, Hd)
h_tilde_lib, _ = combine_forward(context_g, h, W_c)
assert h_tilde.shape == (B, T, H) and np.allclose(h_tilde_lib, h_tilde)
print("h~_t of example 0:\n", h_tilde[0])


# %% [markdown]
# ## 4. Input feeding
#
# Attention decisions in this decoder are made independently at each step: nothing tells step
# $t$ where the model looked at step $t - 1$. Input feeding (paper §3.3, `docs/equations.md`
# §5.1) concatenates the previous attentional state to the next input:
#
# $$h_t = f\big(h_{t-1}, [E y_{t-1} ; \tilde h_{t-1}]\big), \qquad \tilde h_0 = 0.$$
#
# In tinyattn it is `Seq2Seq(..., input_feeding=True)` (Luong attentions only), implemented in
# `LuongDecoder.forward` (`tinyattn/decoders.py`): the decoder cell's input grows from E to
# E + Hd, and the RNN can no longer run as one sequence call before the attention; it runs step
# by step, because $\tilde h_{t-1}$ is needed before step $t$. Here is that loop by hand, with the
# library's own pieces (`cell.step`, `attn.step`, `combine_forward`, the output layer), on a tiny
# model with the general score, matched against the model's decoder:

# %%
tiny = ta.Seq2Seq(9, 10, emb_size=3, hidden_size=2, attention="general", input_feeding=True,
                  rng=np.random.default_rng(0))
dec = tiny.decoder
src = np.array([[3, 4, 5, 6], [6, 7, 8, 0]])
tgt_in = np.array([[1, 5, 6, 7], [1, 8, 0, 0]])  # <sos> y_1 y_2 ...
enc_out, state0, _, mask = tiny.encode(src, [4, 3])
keys = dec.attn.prepare(enc_out, mask)
emb = tiny.tgt_emb(tgt_in)  # (B, T, E)
Hd = dec.cell.hidden_size
assert dec.cell.input_size == 3 + Hd  # E + Hd: room for h~_{t-1}

state, h_tilde_t, logits = state0, np.zeros((2, Hd)), []
for t in range(tgt_in.shape[1]):
    x_t = np.concatenate([emb[:, t], h_tilde_t], axis=1)  # [E y_{t-1} ; h~_{t-1}]: (B, E + Hd)
    state, _ = dec.cell.step(x_t, state)  # h_t
    c_t, _, _ = dec.attn.step(hidden(state), keys, t)  # attend with h_t
    h_tilde_t, _ = combine_forward(c_t, hidden(state), dec.params["W_c"])  # h~_t
    logits.append(dec.out.apply(h_tilde_t))  # h~_t W_s + b_s
logits = np.stack(logits, axis=1)  # (B, T, V)

logits_lib, _ = dec(emb, keys, state0)
assert np.allclose(logits_lib, logits)
print("decoder cell:", dec.cell.params["W_x"].shape, "(E + Hd rows);  logits", logits.shape)

# %% [markdown]
# ## 5. Your turn: the backward of the general score
#
# Write the backward of `scores = queries @ (enc_hs @ W_a.T).transpose(0, 2, 1)`
# (`docs/equations.md` §5.2). The cache is `(queries, enc_hs, W_a, keys)` with
# `keys = enc_hs @ W_a.T` of shape (B, S, Hq); return
# `dqueries (B, T, Hq), denc_hs (B, S, Hk), dW_a (Hq, Hk)`. Hints: `scores` is a batched matrix
# product, so each factor's gradient is `dscores` times the other factor, transposed where the
# shapes say so; `keys` depends on `enc_hs` and `W_a` through one more product; `W_a` is shared
# by every example, so its gradient is a sum over the batch.
#
# `ex.stub("luong_general_score_backward")` prints the same starting point. `ex.check` grades
# your function with the gradient checker alone (never against a hidden solution) and names
# likely mistakes. First, what it says about a first try that gets the query's gradient (the
# first hint) and stops there:

# %%
def general_backward_first_try(dscores, cache):
    queries, enc_hs, W_a, keys = cache
    dq = dscores @ keys  # scores = queries @ keys^T, so dqueries = dscores @ keys
    return dq, np.zeros_like(enc_hs), np.zeros_like(W_a)  # BUG: the keys' path is missing


first_try = ex.check("luong_general_score_backward", general_backward_first_try)
assert first_try.status == "failed"

# %% [markdown]
# Read it: each gradient is graded on its own, so `dqueries` passes while the other two fail,
# and the report says why they fail (all zeros: no path into them). Now yours: replace the
# `raise` line, then run the cell after it.

# %%
def my_luong_general_score_backward(dscores, cache):
    """Backward of ``scores = queries @ (enc_hs @ W_a.T).transpose(0, 2, 1)``.

    ``keys = enc_hs @ W_a.T (B, S, Hq)``. Returns ``dqueries (B, T, Hq),
    denc_hs (B, S, Hk), dW_a (Hq, Hk)``.
    """
    queries, enc_hs, W_a, keys = cache
    # BEGIN SOLUTION
    dqueries = dscores @ keys  # (B, T, S) @ (B, S, Hq) -> (B, T, Hq)
    dkeys = dscores.transpose(0, 2, 1) @ queries  # (B, S, T) @ (B, T, Hq) -> (B, S, Hq)
    denc_hs = dkeys @ W_a  # keys = enc_hs W_a^T -> denc_hs = dkeys W_a: (B, S, Hk)
    dW_a = np.einsum("bsq,bsk->qk", dkeys, enc_hs)  # Σ_b dkeys_b^T enc_hs_b: (Hq, Hk)
    return dqueries, denc_hs, dW_a
    # END SOLUTION

# %%
mine = ex.check("luong_general_score_backward", my_luong_general_score_backward)
assert mine.status in ("passed", "not implemented"), "read the report above"

# %% [markdown]
# ## 6. Gradient checks
#
# From here on the library's backward of the general score (`general_score_backward` in
# `tinyattn/attention.py`) is used, inside `LuongAttention.backward`. The backward of every
# score, against centered differences (`tinyattn.gradcheck`, float64, every entry of the
# queries, the encoder states and every parameter). **What to expect:** a correct attention
# backward lands well below the layer tolerance `TOL_LAYER` = $10^{-6}$; a wrong one is off by
# about the gradient's own size.

# %%
for name, attn in attns.items():
    result = check_module(attn, h, enc_hs, src_mask)
    params = ", ".join(attn.params) or "(no parameters)"
    print(f"{name:10} max error {result.max_error:.1e}   checked: queries, enc_hs, {params}")
    assert result.passed and result.max_error < TOL_LAYER

# %% [markdown]
# The same for a whole model with the general score *and* input feeding (the tiny one above):
# the loss against every parameter of embeddings, encoder, bridge, decoder cell, attention,
# $W_c$ and output layer. Errors add up over the steps and through the model's many products,
# so the tolerance is looser, `TOL_MODEL` = $10^{-5}$.

# %%
tgt = np.array([[1, 5, 6, 7, 2], [1, 8, 2, 0, 0]])  # <sos> y ... <eos>, then padding


def tiny_loss():
    return np.array(tiny(src, [4, 3], tgt[:, :-1], tgt[:, 1:], [4, 2]))


def tiny_grads(dloss):
    tiny.zero_grad()
    tiny_loss()
    tiny.backward()
    return {n: g * dloss for n, _, g in tiny.named_parameters()}


model_check = check_gradients(tiny_loss, tiny_grads,
                              {n: v for n, v, _ in tiny.named_parameters()}, tol=TOL_MODEL)
print(f"{len(model_check.reports)} parameter arrays, max error {model_check.max_error:.1e}")
assert model_check.passed

# %% [markdown]
# ## 7. Four scores, and input feeding, on the same dates
#
# The task of lesson 05 (`tinyattn.data`, `"dates"`): a date as people write it → `YYYY-MM-DD`,
# one character per token, with gold spans for scoring the attention. Every model below is the
# same small network (bidirectional GRU encoder, E = 32, H = 32 per direction so the decoder
# state and the keys have 64 entries; float32), trained on the same 4,000 dates in the same
# order (Adam, learning rate 0.005, batches of 64, gradient norm clipped at 5, 2 epochs; the
# cell prints the number of updates), from the same seed. Only the attention changes: the four
# global scores, and general with input feeding. Exact match and alignment accuracy are
# measured on the 1,000 test dates as in lesson 05.

# %%
spec = DataSpec("dates", train_size=4000)
splits, info = load_examples(spec)
src_vocab = Vocab.build([d.src for d in splits["train"]])
tgt_vocab = Vocab.build([d.tgt for d in splits["train"]])
train = encode_pairs(splits["train"], src_vocab, tgt_vocab)
test = splits["test"]
print(info, f"; longest source {max(len(d.src) for d in splits['train'])} characters")

CONFIGS = [("dot", False), ("general", False), ("concat", False), ("scaled_dot", False),
           ("general", True)]
OPTIONS = dict(emb_size=32, hidden_size=32, pad_id=Vocab.pad_id, dtype=np.float32)


def label(attention, feed):
    return attention + (" + feeding" if feed else "")


def new_model(attention, feed, seed=0):
    model = ta.Seq2Seq(len(src_vocab), len(tgt_vocab), attention=attention, input_feeding=feed,
                       rng=np.random.default_rng(seed), **OPTIONS)
    return model, ta.Adam(model.named_parameters(), lr=0.005)


def train_and_score(attention, feed, seed=0):
    """Train one configuration (seed: initialisation and data order); score it on test."""
    model, opt = new_model(attention, feed, seed)
    trainer = ta.Trainer(model, opt, pad_id=Vocab.pad_id, sos_id=Vocab.sos_id,
                         eos_id=Vocab.eos_id, batch_size=64, clip=5.0,
                         rng=np.random.default_rng(seed), show_progress=False)
    trainer.fit(train, epochs=2)
    run = Run(directory=None, data=spec, model_options=model.config,
              train_options={"max_decode_len": 15}, src_vocab=src_vocab, tgt_vocab=tgt_vocab)
    metrics = evaluate_examples(model, run, test)
    metrics["final_loss"] = trainer.history[-1].train_loss
    return model, trainer.batch_losses, metrics


models, losses, results = {}, {}, {}
start = time.perf_counter()
for attention, feed in CONFIGS:
    key = label(attention, feed)
    models[key], losses[key], results[key] = train_and_score(attention, feed)
print(f"{len(CONFIGS)} models trained and evaluated in {time.perf_counter() - start:.0f} s, "
      f"{len(losses['general'])} updates each")

# %% [markdown]
# **Speed.** Timing the training above model by model would mix the attention's cost with
# whatever else the machine was doing at that moment. So the cost of one training step (forward,
# backward, clipping, Adam update) is measured separately, on fresh models of each
# configuration, **round-robin**: each round times one step of every model on the same batch.
# The table gives the median time per step over 20 rounds and, in the last column, the median
# over rounds of each model's time divided by general's in the same round, so that a busy moment
# slows the numerator and the denominator alike.
#
# **Predict.** Section 2 showed that scaled dot makes every row flatter than dot's. After the
# same 126 updates, which of the four scores has the lowest final loss, and where does scaled
# dot land? And which configuration will be the slowest per step?

# %%
batches = make_batches(train[:320], 64, pad_id=Vocab.pad_id, sos_id=Vocab.sos_id,
                       eos_id=Vocab.eos_id)
fresh = {label(a, f): new_model(a, f) for a, f in CONFIGS}
times = {key: [] for key in fresh}
for batch in batches * 4:  # 20 rounds
    for key, (model, opt) in fresh.items():
        t0 = time.perf_counter()
        model.zero_grad()
        model(*batch)
        model.backward()
        ta.clip_grad_norm(model, 5.0)
        opt.step()
        times[key].append(time.perf_counter() - t0)
ms = {key: 1000 * np.median(v) for key, v in times.items()}
# the ratio to general within each round, then the median: a busy moment cancels out
ratio = {key: np.median(np.array(v) / np.array(times["general"])) for key, v in times.items()}

print(f"{'attention':20} {'final loss':>10} {'exact match':>12} {'alignment':>10} "
      f"{'ms/step':>8} {'vs general':>10}")
for key, r in results.items():
    print(f"{key:20} {r['final_loss']:10.3f} {r['exact_match']:12.1%} "
          f"{r['alignment_accuracy']:10.1%} {ms[key]:8.1f} {ratio[key]:9.2f}x")

# %% [markdown]
# Final loss is the mean cross-entropy per target token over the second epoch; exact match is
# greedy decoding on the 1,000 test dates; alignment is lesson 05's alignment accuracy (the share
# of output characters whose attention peak lies in their gold span, with the reference fed in).
# The models are float32, and the number of threads the BLAS library uses changes its rounding:
# rebuilt on another machine, these numbers can move in their last digit.
#
# **One seed.** How much of that would another seed change? The same configuration, general,
# trained twice more with seeds 1 and 2 (another initialisation and another data order; same
# data, same number of updates):

# %%
print(f"{'general':10} {'final loss':>10} {'exact match':>12} {'alignment':>10}")
for seed in (0, 1, 2):
    r = results["general"] if seed == 0 else train_and_score("general", False, seed)[2]
    print(f"seed {seed:<5} {r['final_loss']:10.3f} {r['exact_match']:12.1%} "
          f"{r['alignment_accuracy']:10.1%}")

# %% [markdown]
# The training curves, one loss per update (a moving average over 10 updates, to see the trend):

# %%
fig, ax = plt.subplots(figsize=(7, 3.9), layout="constrained")
for key, curve in losses.items():
    smooth = np.convolve(curve, np.ones(10) / 10, mode="valid")
    ax.plot(np.arange(10, len(curve) + 1), smooth, label=key,
            ls="--" if "feeding" in key else "-")
ax.set_yscale("log")
ax.set_xlabel("update (batch of 64 dates)")
ax.set_ylabel("training loss (nats per token, log scale)")
ax.set_title("Same data, same updates: how fast each score learns")
ax.legend(fontsize=8)
plt.show()

# %% [markdown]
# ## 8. Where each model looks
#
# The same test date under the four global scores: teacher-forced attention (the reference fed
# in, so every model has the same rows), one row per output character plus `<eos>`, red boxes for
# the gold spans.

# %%
example = next(d for d in test if re.fullmatch(r"\d{1,2} [a-z]+ \d{4}", "".join(d.src)))
src_tokens, labels = list(example.src), list(example.tgt) + ["<eos>"]
gold = list(example.gold) + [None]
run = Run(directory=None, data=spec, model_options=models["general"].config,
          train_options={"max_decode_len": 15}, src_vocab=src_vocab, tgt_vocab=tgt_vocab)

fig, axes = plt.subplots(2, 2, figsize=(10, 8.6), layout="constrained")
for ax, key in zip(axes.flat, ["dot", "general", "concat", "scaled_dot"]):
    (alpha,), _ = teacher_forced(models[key], run, [src_tokens], [list(example.tgt)])
    plot_alignment(alpha, src_tokens, labels, gold=gold, ax=ax,
                   title=f"{key}: alignment {results[key]['alignment_accuracy']:.0%} (test)")
handles, names = axes.flat[-1].get_legend_handles_labels()
for ax in axes.flat:  # one legend below the figure instead of four identical ones
    ax.get_legend().remove()
fig.legend(handles, names, loc="outside lower center", ncols=3, fontsize="small", frameon=False)
fig.suptitle(f'"{"".join(example.src)}" → {"".join(example.tgt)}: global attention')
plt.show()

# %% [markdown]
# ## 9. What the table can and cannot tell
#
# **The yardstick** is general's own spread over three seeds: exact match 68.6–84.6 %,
# alignment 83.6–95.9 %, final loss 0.136–0.194.
#
# - **Scaled dot most likely lags the three other global scores.** Its exact match (63.8 %) is
#   not far below general's worst seed (68.6 %), but its final loss (0.380) is about twice
#   general's worst (0.194), and its heatmap is still diffuse after 126 updates while dot's rows
#   are close to one-hot. At initialisation every row of every global score is nearly flat;
#   dividing by $\sqrt{64} = 8$ means the dot products must grow eight times larger than dot's
#   to make a row as sharp. The factor protects large models from softmaxes saturated by huge
#   scores; in this small model, at this budget, it mostly slows the sharpening down (section 2
#   showed the same flattening on random arrays).
# - **One seed cannot rank the other four**: dot (90.5 %), general (84.6 %), concat (82.7 %) and
#   general with input feeding (80.8 %). General alone, with seeds 1 and 2, scored 68.6 % and
#   79.7 % exact match: one configuration moves by more than the gaps between these four. The
#   final losses hint at more (dot's 0.103 lies below general's range, concat's 0.281 above
#   it), but with one seed each and the spread measured for general only, a hint is all it is.
#   And every curve is still falling in the second epoch, so the table says how fast each score
#   learns with this budget, not which is best once trained (Luong et al. report, on WMT
#   English–German, that dot works well for global attention and general for local attention).
# - **Input feeding gives no visible gain here.** Dates are short and each output character can
#   find its source without knowing where the previous one looked; a single seed could not show
#   a gain of a few points anyway.
#
# **Speed does not depend on the seed, but on the implementation.** Read the ratio column:
#
# - concat is the slowest score: its tanh runs over a (B, T, S, A) block, like Bahdanau's;
#   dot, general and scaled dot are one batched matrix product each, and their ratios stay
#   close to 1.
# - Input feeding costs more than general without it: the decoder RNN runs step by step with
#   one attention call per step, instead of one sequence call followed by one batched product
#   for all T × S scores.
# - The milliseconds depend on the machine and its load; the ratios are what carries over.
#
# **To remember.** Luong attends with the state *after* the step, $h_t$; scores dot
# $h_t \cdot \bar h_s$, general $h_t W_a \bar h_s^\top$, concat
# $v_a \cdot \tanh([h_t ; \bar h_s] W_a)$, scaled dot $h_t \cdot \bar h_s / \sqrt{H_k}$; then
# $\tilde h_t = \tanh([c_t ; h_t] W_c)$ feeds the output layer. Input feeding puts
# $\tilde h_{t-1}$ into the next step's input, and makes the decoder run step by step. The
# general score's backward is two batched products and one more for the key projection, with
# $W_a$'s gradient summed over the batch.
#
# **Next.** Lesson 07 keeps these scores but lets each step read only a window of the source
# (local attention), and lesson 08 compares this soft attention with hard attention.
#
# **Try it yourself.** Train everything for 4 epochs instead of 2 and see which differences in
# the table survive; run `train_and_score` for dot and concat with seeds 1 and 2; try
# `input_feeding=True` with `"dot"`.
