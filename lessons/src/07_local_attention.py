# Source of lessons/07_local_attention.ipynb (learner) and
# lessons/solutions/07_local_attention.ipynb (instructor): edit here, then run
# `.venv/bin/python lessons/build.py 07` (see lessons/build.py).

# %% [markdown]
# # Lesson 07 — Local attention
#
# **Where this sits.** Lesson 06 scored every source position at every step (Luong's *global*
# attention). Luong, Pham and Manning also proposed **local** attention: each step first picks
# an aligned position $p_t$ and attends only to a window of the source around it. Lesson 08 then
# compares soft attention with hard attention. In this lesson you will
#
# 1. compute local-m attention ($p_t = t$) by hand on tiny arrays, checked against
#    `tinyattn.LocalAttention`;
# 2. write local-p yourself: the predicted position $p_t$, the window on each sentence's real
#    tokens, and the Gaussian;
# 3. see the two places where the library makes a choice the paper leaves open, one of them a
#    departure from the paper's eq. 10, and gradient-check both modes;
# 4. train general (global), local-m and local-p attention on the same dates and look at where
#    the windows sit.
#
# **Sources.** `docs/equations.md` §5.3 (the scores inside the window are those of §5.2 and
# lesson 06). Document 003 (`docs/sources.md`) names global and local attention (全局/局部注意力)
# as the follow-up of Bahdanau's, without their equations. The paper: M.-T. Luong, H. Pham,
# C. D. Manning, *Effective Approaches to Attention-based Neural Machine Translation*, EMNLP 2015
# (arXiv:1508.04025), §3.2 (local attention, eqs. 9–10).

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
from tinyattn.gradcheck import TOL_LAYER, TOL_MODEL, check_gradients, check_module
from tinyattn.local_attention import LocalAttention
from tinyattn.plot import plot_alignment
from tinyattn.training.batching import make_batches

np.set_printoptions(precision=3, suppress=True)
plt.rcParams["figure.dpi"] = 80  # smaller stored figures, still readable

# %% [markdown]
# ## 1. The equations: a window around $p_t$
#
# ![local-p: the window around p_t clipped at the sentence's end, the Gaussian, and the weights](../docs/images/local_window.png)
#
# In the top panel, find the centre $p_t$, the window $[p_t - w, p_t + w]$ and where it is
# clipped at the sentence's last position, and the Gaussian centred at $p_t$. In the bottom
# panel, compare global attention, which gives every position some weight, with local-p, which
# gives exactly 0 outside the window and concentrates the weight inside it.
#
# Global attention scores every source position at every step. Local attention (paper §3.2)
# first picks an **aligned position** $p_t$ and attends only inside the window
# $[p_t - w, p_t + w]$ of half-width $w$:
#
# - **local-m** (monotonic): $p_t = t$, as if source and target were aligned word by word;
# - **local-p** (predictive): $p_t = S \cdot \text{sigmoid}\big(v_p \cdot \tanh(h_t W_p)\big)$
#   (eq. 9), a position the model predicts from its state; and the weights are multiplied by a
#   Gaussian centred at $p_t$ with $\sigma = w/2$ (eq. 10):
#
# $$a_t(s) = \text{align}(h_t, \bar h_s)\,\exp\!\Big(-\frac{(s - p_t)^2}{2\sigma^2}\Big)$$
#
# where align is the softmax of lesson 06, taken over the window. $p_t$ is a real number; the
# window holds the integer positions $s$ with $|s - p_t| \le w$.
#
# **A name.** Luong's paper calls the half-width $D$. In `docs/equations.md` (its Notation) $D$ is
# the input size of a recurrent layer, so this lesson writes $w$, as `tinyattn/local_attention.py`
# does; in the code it is `window`.
#
# | maths | meaning | in the code | shape |
# |---|---|---|---|
# | $w$ | half-width of the window | `window` (Seq2Seq's `window=`, default 3) | int |
# | $\sigma = w/2$ | width of the Gaussian | `attn.sigma` | float |
# | $W_p$, $v_p$ | position predictor (local-p) | `attn.params["W_p"]`, `"v_p"` | (Hq, A), (A,) |
# | $p_t$ | aligned position | `attn.positions` after each call | (B, T) |
# | $S_b$ | example $b$'s real length | `lengths[b]` | int |
#
# **What the library chooses where the paper is open** (`tinyattn/local_attention.py`, module
# docstring; `docs/equations.md` §5.3):
#
# 1. *Positions and S.* The library counts positions from 0 and uses each example's **own real
#    length** $S_b$: $p_t = (S_b - 1)\,\text{sigmoid}(\cdot)$ lies in $[0, S_b - 1]$, so the
#    window always holds a real token, whatever the padding. (With the paper's
#    $S \cdot \text{sigmoid}$ and $S$ the padded length, a short example's window could sit
#    entirely on pads.) local-m clamps $p_t = \min(t, S_b - 1)$ for targets longer than their
#    source.
# 2. *Renormalising.* Eq. 10 multiplies the softmax by the Gaussian *after* normalising, so rows
#    sum to less than 1. The library adds $\log$ Gaussian $= -(s - p_t)^2 / 2\sigma^2$ to the
#    scores *before* the softmax over the window, which is eq. 10 divided by its row sum: the same
#    shape, every row summing to 1 like every other attention in tinyattn.

# %% [markdown]
# ## 2. Tiny arrays and the general score
#
# A batch of B = 2 sources of length S = 7; the second has only 3 real tokens (positions 3..6 are
# padding, and the encoder outputs exactly 0 there). T = 5 decoder states, H = 4 for both the
# query and the encoder states, A = 6 for local-p's predictor. Inside the window, both modes use
# lesson 06's general score $h_t W_a \bar h_s^\top$ (the library's default).

# %%
B, T, S, H, A = 2, 5, 7, 4, 6
rng = np.random.default_rng(0)
lengths = np.array([7, 3])
src_mask = np.arange(S)[None, :] < lengths[:, None]  # (1, S) < (B, 1) -> (B, S): True = real
enc_hs = rng.standard_normal((B, S, H))  # hbar_s
enc_hs[~src_mask] = 0.0
h = rng.standard_normal((B, T, H))  # h_t for t = 0..T-1, the decoder states after each step
W_a = LuongAttention(H, H, score="general", rng=np.random.default_rng(1)).params["W_a"]
e_g = h @ (enc_hs @ W_a.T).transpose(0, 2, 1)  # general scores (B, T, S), lesson 06
s_idx = np.arange(S)  # source positions 0..S-1


def masked_softmax(scores, mask):
    """Softmax over the last axis with exp(-inf) = 0 at masked positions."""
    z = np.where(mask, scores, -np.inf)
    e = np.exp(z - z.max(axis=-1, keepdims=True))  # subtract the row max: no overflow
    return e / e.sum(axis=-1, keepdims=True)


w = 2  # the window's half-width; sigma = w / 2 = 1

# %% [markdown]
# ## 3. local-m by hand
#
# $p_t = t$, clamped to each example's last real token; the window is the real positions with
# $|s - p_t| \le w$, and the weights are the softmax of the general score over the window.
#
# **Predict.** Example 1 has 3 real tokens (positions 0, 1, 2) and T = 5 steps. What are its
# $p_t$ for the five steps, and how many non-zero weights does each of its rows have?

# %%
def local_m_by_hand(h, enc_hs, lengths, W_a, w):
    """local-m: p (B, T) and alpha (B, T, S)."""
    S = enc_hs.shape[1]
    scores = h @ (enc_hs @ W_a.T).transpose(0, 2, 1)  # (B, T, S)
    p = np.minimum(np.arange(h.shape[1])[None, :], lengths[:, None] - 1)  # (1, T) vs (B, 1)
    real = np.arange(S)[None, None, :] < lengths[:, None, None]  # (B, 1, S)
    in_window = np.abs(np.arange(S)[None, None, :] - p[:, :, None]) <= w  # (B, T, S)
    return p, masked_softmax(scores, real & in_window)


p_m, alpha_m = local_m_by_hand(h, enc_hs, lengths, W_a, w)
local_m = LocalAttention(H, H, mode="local-m", window=w, score="general",
                         rng=np.random.default_rng(2))
local_m.params["W_a"][...] = W_a
_, alpha_m_lib = local_m(h, enc_hs, src_mask)
assert np.allclose(local_m.positions, p_m) and np.allclose(alpha_m_lib, alpha_m)
print("local-m p_t:\n", p_m)
print("local-m weights (rows: steps t, columns: source positions s)\nexample 0:\n",
      alpha_m_lib[0], "\nexample 1:\n", alpha_m_lib[1])
print("non-zero weights per row:", (alpha_m_lib > 0).sum(axis=2).tolist())

# %% [markdown]
# Each row of example 0 has at most 2w + 1 = 5 non-zero weights, on a band that moves one
# position per step. In example 1 (3 real tokens), steps 2, 3 and 4 all get $p_t = 2$, the last
# real token, and no row has more than 3 non-zero weights: the window $[p_t - 2, p_t + 2]$
# reaches past position 2, but positions 3..6 are pads and are masked like any pad.

# %% [markdown]
# ## 4. Your turn: local-p
#
# Write `local_p_attention(h, enc_hs, lengths, W_a, W_p, v_p, w)`, returning `p (B, T)` and
# `alpha (B, T, S)` as the library computes them (`docs/equations.md` §5.3, positions from 0):
#
# - the general score inside the window, as in section 3;
# - $p_t = (S_b - 1) \cdot \text{sigmoid}\big(v_p \cdot \tanh(h_t W_p)\big)$, with $S_b$ each
#   sentence's real length;
# - the window: the real positions $s < S_b$ with $|s - p_t| \le w$;
# - the softmax over the window of $\text{score} - (s - p_t)^2 / (2\sigma^2)$, $\sigma = w / 2$:
#   the softmax times the Gaussian, renormalised (section 1, choice 2), 0 outside the window.
#
# `ex.stub("local_p_attention")` prints the same starting point. `ex.check` runs your function
# and the library's `LocalAttention(mode="local-p")` on a padded and an unpadded batch, compares
# both outputs, and when they differ names the known mistake your numbers reproduce: $p_t$
# scaled by the padded length, $\sigma = w$, the Gaussian's 2 missing, eq. 10 without
# renormalising, pads inside the window, no window at all, and more. First, what it says about
# section 3's local-m handed in as local-p:

# %%
def local_m_as_local_p(h, enc_hs, lengths, W_a, W_p, v_p, w):
    return local_m_by_hand(h, enc_hs, lengths, W_a, w)  # BUG: W_p and v_p never used


wrong_mode = ex.check("local_p_attention", local_m_as_local_p)
assert wrong_mode.status == "failed"

# %% [markdown]
# Read it: both outputs are wrong on both batches, and the "likely" line recognises local-m.
# Now yours: replace the `raise` line, then run the cell after it.

# %%
def my_local_p_attention(h, enc_hs, lengths, W_a, W_p, v_p, w):
    """local-p attention weights, as `LocalAttention(mode="local-p", score="general")`.

    h (B, T, Hq) decoder states; enc_hs (B, S, Hk) encoder states, 0 past
    ``lengths[b]``; W_a (Hq, Hk); W_p (Hq, A); v_p (A,); w the window's
    half-width (an int). docs/equations.md §5.3, positions counted from 0:

        score_ts = h_t @ W_a @ h̄_sᵀ                   (lesson 06's general score)
        p_t      = (S_b − 1) · sigmoid(v_p · tanh(h_t @ W_p))      S_b = lengths[b]
        window   the real positions s (0 ≤ s < S_b) with |s − p_t| ≤ w
        a_t(s)   = softmax over the window of [score_ts − (s − p_t)² / (2σ²)],  σ = w / 2

    (the softmax of the window, times the Gaussian, renormalised), 0 outside
    the window. Returns ``p (B, T)`` and ``alpha (B, T, S)``.
    """
    # BEGIN SOLUTION
    positions = np.arange(enc_hs.shape[1])  # s = 0..S-1
    e = h @ (enc_hs @ W_a.T).transpose(0, 2, 1)  # general scores (B, T, S)
    q = np.tanh(h @ W_p) @ v_p  # (B, T, Hq) @ (Hq, A) -> (B, T, A), @ (A,) -> (B, T)
    p_t = (lengths[:, None] - 1) / (1.0 + np.exp(-q))  # (B, 1) * sigmoid (B, T): in [0, S_b - 1]
    dist = positions[None, None, :] - p_t[:, :, None]  # s - p_t: (B, T, S)
    keep = (positions < lengths[:, None])[:, None, :] & (np.abs(dist) <= w)  # real, in window
    log_gauss = -dist**2 / (2 * (w / 2) ** 2)  # sigma = w / 2
    return p_t, masked_softmax(e + log_gauss, keep)
    # END SOLUTION

# %%
mine = ex.check("local_p_attention", my_local_p_attention)
assert mine.status in ("passed", "not implemented"), "read the report above"

# %% [markdown]
# ## 5. local-p in the library, and eq. 10 as printed
#
# From here on the library's `LocalAttention(mode="local-p")` is used. Its $p_t$, computed by
# hand as in the exercise, and its weights set beside the paper's eq. 10 taken literally: the
# softmax over the window times the Gaussian, *not* renormalised.

# %%
attn_p = LocalAttention(H, H, mode="local-p", window=w, score="general", attn_size=A,
                        rng=np.random.default_rng(2))
attn_p.params["W_a"][...] = W_a
W_p, v_p = attn_p.params["W_p"], attn_p.params["v_p"]  # (Hq, A), (A,)
assert W_p.shape == (H, A) and v_p.shape == (A,) and attn_p.sigma == w / 2
u = np.tanh(h @ W_p) @ v_p  # (B, T)
p = (lengths[:, None] - 1) * (1.0 / (1.0 + np.exp(-u)))  # p_t in [0, S_b - 1]
_, alpha_p_lib = attn_p(h, enc_hs, src_mask)
assert np.allclose(attn_p.positions, p)
print("local-p p_t:\n", p)

sigma = w / 2
diff = s_idx[None, None, :] - p[:, :, None]  # s - p_t: (1, 1, S) - (B, T, 1) -> (B, T, S)
window_p = src_mask[:, None, :] & (np.abs(diff) <= w)  # real tokens inside [p_t - w, p_t + w]
gauss = np.exp(-diff**2 / (2 * sigma**2))  # (B, T, S)
align = masked_softmax(e_g, window_p)  # softmax over the window
a_paper = align * gauss  # eq. 10 as printed
assert np.allclose(alpha_p_lib, a_paper / a_paper.sum(axis=2, keepdims=True))  # renormalised
# the same thing, the library's way: the log of the Gaussian added to the scores
assert np.allclose(alpha_p_lib, masked_softmax(e_g - diff**2 / (2 * sigma**2), window_p))

# %% [markdown]
# **Predict.** You know the rows of eq. 10 as printed sum to less than 1. How much less, for a
# window of half-width w = 2 and σ = w/2 = 1: just under 1, or nearer a half?

# %%
print("row sums of eq. 10 as printed (example 0):", a_paper[0].sum(axis=1))
print("row sums in the library:                  ", alpha_p_lib[0].sum(axis=1))

# %% [markdown]
# Nearer a half: each printed sum is a weighted average of the Gaussian's values inside the
# window, all below 1 and most well below it, since σ = w/2 makes the Gaussian fall to
# $e^{-2}$, about a seventh, at the window's edge; a row whose weight sits next to $p_t$ keeps
# the most. Its context vector $c_t = \sum_s a_t(s) \bar h_s$ is then shrunk towards 0 by a factor
# that changes from step to step; the library divides by the row sum, so every row sums to 1 and
# the *shape* of the weights is eq. 10's. One row in pictures: example 0 at step 0, the softmax
# inside the window (align), the Gaussian centred at $p_t$, their product (eq. 10), and the
# library's renormalised product.

# %%
b, t = 0, 0
fig, ax = plt.subplots(figsize=(7.5, 4.0), layout="constrained")
ax.axvspan(p[b, t] - w, p[b, t] + w, color="0.92", label=f"window p$_t$ ± w (w = {w})")
width = 0.2
ax.bar(s_idx - 1.5 * width, align[b, t], width, label="align: softmax over the window")
ax.bar(s_idx - 0.5 * width, gauss[b, t] * window_p[b, t], width,
       label=f"Gaussian exp(−(s − p$_t$)²/2σ²), σ = {sigma:g}")
ax.bar(s_idx + 0.5 * width, a_paper[b, t], width, label="eq. 10: align × Gaussian")
ax.bar(s_idx + 1.5 * width, alpha_p_lib[b, t], width, label="library: renormalised")
ax.axvline(p[b, t], color="black", ls="--", lw=1)
ax.text(p[b, t] + 0.05, 1.02, f"p$_t$ = {p[b, t]:.2f}", fontsize=9)
ax.set_xticks(s_idx)
ax.set_xlim(-0.6, S - 0.4)
ax.set_ylim(0, 1.12)
ax.set_xlabel("source position s")
ax.set_ylabel("weight")
ax.set_title("local-p attention for one step: the window and the Gaussian")
fig.legend(loc="outside lower center", ncols=3, fontsize=8, frameon=False)
plt.show()

# %% [markdown]
# Positions outside the window get exactly 0 (they are masked like pads). Inside it, the
# Gaussian pulls the weight towards $p_t$, and that is what trains $W_p$ and $v_p$: the gradient
# reaches $p_t$ only through the Gaussian term, $\partial\big(-(s - p_t)^2/2\sigma^2\big)/\partial
# p_t = (s - p_t)/\sigma^2$ (`docs/equations.md` §5.3, "Backward of local-p's position"). The
# window's edges have no gradient (a position enters or leaves the window as $p_t$ moves):
# local-p is differentiable almost everywhere, not everywhere.
#
# ## 6. Gradient checks
#
# Both modes against centered differences (`tinyattn.gradcheck`, float64, every entry of the
# queries, the encoder states and every parameter), below the layer tolerance `TOL_LAYER` =
# $10^{-6}$. For local-p the check also covers $W_p$ and $v_p$, whose only gradient path is the
# Gaussian term, and the queries reach the weights twice: through the score and through $p_t$.

# %%
for name, attn in {"local-m": local_m, "local-p": attn_p}.items():
    result = check_module(attn, h, enc_hs, src_mask)
    print(f"{name:8} max error {result.max_error:.1e}   checked: queries, enc_hs, "
          + ", ".join(attn.params))
    assert result.passed and result.max_error < TOL_LAYER
print()
print(check_module(attn_p, h, enc_hs, src_mask))

# %% [markdown]
# And a whole tiny model with local-p attention and lesson 06's input feeding (window w = 1):
# the loss against every parameter, with the looser model tolerance `TOL_MODEL` = $10^{-5}$.

# %%
tiny = ta.Seq2Seq(9, 10, emb_size=3, hidden_size=2, attention="local-p", input_feeding=True,
                  window=1, rng=np.random.default_rng(0))
src = np.array([[3, 4, 5, 6], [6, 7, 8, 0]])
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
# ## 7. Local against global on the same dates
#
# Lesson 06's experiment (the dates task of lesson 05, a date as people write it →
# `YYYY-MM-DD`, one character per token): the same small network (bidirectional GRU encoder,
# E = 32, H = 32 per direction so the decoder state and the keys have 64 entries; float32),
# trained on the same 4,000 dates in the same order (Adam, learning rate 0.005, batches of 64,
# gradient norm clipped at 5, 2 epochs), from the same seed. Three attentions, all
# with the general score: global (lesson 06's general), local-m and local-p, both with w = 3,
# the library's default. Exact match and alignment accuracy on the 1,000 test dates, as in
# lesson 05.

# %%
spec = DataSpec("dates", train_size=4000)
splits, info = load_examples(spec)
src_vocab = Vocab.build([d.src for d in splits["train"]])
tgt_vocab = Vocab.build([d.tgt for d in splits["train"]])
train = encode_pairs(splits["train"], src_vocab, tgt_vocab)
test = splits["test"]
print(info, f"; longest source {max(len(d.src) for d in splits['train'])} characters")

CONFIGS = ["general", "local-m", "local-p"]
OPTIONS = dict(emb_size=32, hidden_size=32, window=3, pad_id=Vocab.pad_id, dtype=np.float32)


def new_model(attention, seed=0):
    model = ta.Seq2Seq(len(src_vocab), len(tgt_vocab), attention=attention,
                       rng=np.random.default_rng(seed), **OPTIONS)
    return model, ta.Adam(model.named_parameters(), lr=0.005)


def train_and_score(attention, seed=0):
    """Train one configuration (seed: initialisation and data order); score it on test."""
    model, opt = new_model(attention, seed)
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
for key in CONFIGS:
    models[key], losses[key], results[key] = train_and_score(key)
print(f"{len(CONFIGS)} models trained and evaluated in {time.perf_counter() - start:.0f} s, "
      f"{len(losses['general'])} updates each")

# %% [markdown]
# The cost of one training step is timed on fresh models, round-robin, as in lesson 06: the
# median over 20 rounds, and the median of each model's time divided by general's in the same
# round.
#
# **Predict.** An ISO date starts with the year; every format of the task writes the year last.
# Which of local-m and local-p will get closer to general's exact match? And since each step
# reads only 2w + 1 = 7 of up to 30 source characters, will local attention be faster per step?

# %%
batches = make_batches(train[:320], 64, pad_id=Vocab.pad_id, sos_id=Vocab.sos_id,
                       eos_id=Vocab.eos_id)
fresh = {key: new_model(key) for key in CONFIGS}
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
ratio = {key: np.median(np.array(v) / np.array(times["general"])) for key, v in times.items()}

print(f"{'attention':10} {'final loss':>10} {'exact match':>12} {'alignment':>10} "
      f"{'ms/step':>8} {'vs general':>10}")
for key, r in results.items():
    print(f"{key:10} {r['final_loss']:10.3f} {r['exact_match']:12.1%} "
          f"{r['alignment_accuracy']:10.1%} {ms[key]:8.1f} {ratio[key]:9.2f}x")

# %% [markdown]
# One seed each. How much would another seed change? general and local-p, each trained twice
# more with seeds 1 and 2 (another initialisation and another data order; lesson 06 did the
# same for general):

# %%
print(f"{'':18} {'final loss':>10} {'exact match':>12} {'alignment':>10}")
for key in ("general", "local-p"):
    for seed in (0, 1, 2):
        r = results[key] if seed == 0 else train_and_score(key, seed)[2]
        print(f"{key:8} seed {seed:<4} {r['final_loss']:10.3f} {r['exact_match']:12.1%} "
              f"{r['alignment_accuracy']:10.1%}")

# %%
fig, ax = plt.subplots(figsize=(7, 3.9), layout="constrained")
for key, curve in losses.items():
    smooth = np.convolve(curve, np.ones(10) / 10, mode="valid")  # moving average over 10
    ax.plot(np.arange(10, len(curve) + 1), smooth, label=key, ls="--" if "local" in key else "-")
ax.set_yscale("log")
ax.set_xlabel("update (batch of 64 dates)")
ax.set_ylabel("training loss (nats per token, log scale)")
ax.set_title("Same data, same updates: global against local attention")
ax.legend(fontsize=8)
plt.show()

# %% [markdown]
# ## 8. Where the windows sit
#
# A test date under the two local attentions: teacher-forced attention (the reference fed in),
# one row per output character plus `<eos>`, red boxes for the gold spans, the window centre
# $p_t$ (orange dots) and the window edges $p_t \pm w$ (magenta dashes) on each row. local-p
# predicts its centre; local-m's is $p_t = t$, clamped to the last source character.

# %%
example = next(d for d in test if re.fullmatch(r"\d{1,2} [a-z]+ \d{4}", "".join(d.src)))
src_tokens, labels = list(example.src), list(example.tgt) + ["<eos>"]
gold = list(example.gold) + [None]
run = Run(directory=None, data=spec, model_options=models["general"].config,
          train_options={"max_decode_len": 15}, src_vocab=src_vocab, tgt_vocab=tgt_vocab)

fig, axes = plt.subplots(1, 2, figsize=(11, 5.2), layout="constrained")
for ax, key in zip(axes, ["local-m", "local-p"]):
    (alpha,), (p_t,) = teacher_forced(models[key], run, [src_tokens], [list(example.tgt)])
    plot_alignment(alpha, src_tokens, labels, gold=gold, positions=p_t,
                   window=models[key].config["window"], ax=ax,
                   title=f"{key}: alignment {results[key]['alignment_accuracy']:.0%} (test)")
    print(f"{key:8} p_t:", np.round(p_t, 1))
handles, names = axes[-1].get_legend_handles_labels()
for ax in axes:  # one legend below the figure instead of two identical ones
    ax.get_legend().remove()
fig.legend(handles, names, loc="outside lower center", ncols=3, fontsize="small", frameon=False)
fig.suptitle(f'"{"".join(example.src)}" → {"".join(example.tgt)}: local attention, w = 3')
plt.show()

# %% [markdown]
# **Could the window even see the right characters?** For every output character with a gold
# span, over all test dates: is at least one of its gold source characters inside the window
# $[p_t - w, p_t + w]$? If not, no score function can attend to it.

# %%
sources, refs = [list(d.src) for d in test], [list(d.tgt) for d in test]
for key in ("local-m", "local-p"):
    _, centres = teacher_forced(models[key], run, sources, refs)
    w_model = models[key].config["window"]
    hits = [max(start, p - w_model) <= min(end - 1, p + w_model)  # span and window overlap
            for d, p_t in zip(test, centres)
            for p, span in zip(p_t, d.gold) if span is not None
            for start, end in [span]]
    year = [max(d.gold[k][0], p_t[k] - w_model) <= min(d.gold[k][1] - 1, p_t[k] + w_model)
            for d, p_t in zip(test, centres) for k in range(4)]
    print(f"{key}: gold span reachable from the window for {np.mean(hits):.1%} of output "
          f"characters ({np.mean(year):.1%} of the year digits)")

# %% [markdown]
# ## 9. What the table tells
#
# - **local-m fails on this task** (exact match 6.6 %, alignment 18.8 %), for a reason that no
#   seed changes. $p_t = t$ assumes the $t$-th output character comes from near the $t$-th
#   source character. An ISO date starts with the year, and every format of the task writes the
#   year last: the window reaches a gold character for only 32.1 % of the output characters and
#   11.2 % of the year digits (short dates such as `25.7.87`, whose year ends within reach of
#   the first rows). No score function can attend outside its window. local-m
#   suits pairs whose alignment runs roughly along the diagonal, like the paper's
#   English–German sentences; date rewriting is not one of them.
# - **local-p learned where to look, but more slowly than global attention.** Its exact match,
#   32.7 % (33.0 % and 35.1 % with seeds 1 and 2), stays far below the worst of general's
#   three seeds (68.6 %), so this gap, unlike the gaps between the global scores in lesson 06,
#   is not one seed's luck. In the heatmap its $p_t$ sits on the year (7.5 to 9.4) for the four
#   year digits, then moves back towards the month (7.4, 4.8) and to the day (1.3, 0.9), and
#   over the test set the window reaches the gold characters of 99.1 % of the year digits
#   (82.7 % of all output characters). But $p_t$ learns only through the Gaussian term
#   (section 5), and until it has learned, the window sits in the wrong place: its loss curve
#   follows general's for the first part of training, then flattens while general's keeps
#   falling.
# - **The window saves no time here.** In the ratio column both local attentions cost about what
#   general costs, within the noise of a shared machine: tinyattn computes all T × S scores and
#   masks the positions outside the window (and local-p adds its position predictor $W_p$,
#   $v_p$). The saving that motivates local attention
#   in the paper, for long sources, needs an implementation that gathers only the 2w + 1 states
#   of each window; the milliseconds themselves depend on the machine and its load.
#
# **To remember.** Local attention keeps only the positions with $|s - p_t| \le w$, with
# $p_t = t$ (local-m) or $p_t = (S_b - 1)\,\text{sigmoid}(v_p \cdot \tanh(h_t W_p))$ and a
# Gaussian of width $\sigma = w/2$ (local-p). The library counts positions from 0, uses each
# sentence's real length, keeps pads out of the window, and renormalises eq. 10 (the Gaussian's
# log added to the scores before the softmax). $p_t$ learns only through the Gaussian term.
#
# **Next.** Lesson 08 compares this soft attention, differentiable almost everywhere, with hard
# attention, which picks one position and needs another way to learn.
#
# **Try it yourself.** Give local-m a window wide enough to reach the year from the first rows
# (`window=15` in `OPTIONS`): what is left of "local"? Give local-p `window=6` and see whether it
# learns faster; train for 4 epochs instead of 2 and see whether local-p catches up with general.
