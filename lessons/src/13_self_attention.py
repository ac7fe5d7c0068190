# Source of lessons/13_self_attention.ipynb (learner) and
# lessons/solutions/13_self_attention.ipynb (instructor): edit here, then run
# `.venv/bin/python lessons/build.py 13` (see lessons/build.py).

# %% [markdown]
# # Lesson 13 — From attention to self-attention
#
# **Goal.** In lessons 05 and 06 a decoder *queried* the encoder: each output step compared its
# state with every source annotation and took a weighted average of them. Self-attention (自注意力)
# turns the same machinery on a single sequence: every position queries every position of its own
# sentence. In this lesson you will
#
# 1. write scaled dot-product self-attention, $\text{softmax}(QK^\top/\sqrt{d_k})\,V$, and see that
#    it is Luong's scaled dot score with queries, keys and values all taken from one sequence;
# 2. measure why the scores are divided by $\sqrt{d_k}$: their variance grows with $d_k$ and the
#    softmax saturates, and its gradient vanishes;
# 3. compute it by hand on tiny arrays and check every number against `tinyattn.SelfAttention`;
# 4. derive its backward pass by hand, check it against the module, and gradient-check the module;
# 5. mask the future (the causal mask) and look at self-attention matrices of a Chinese sentence;
# 6. list what is still missing for a Transformer; and, as an exercise, write the backward pass
#    of multi-head self-attention.
#
# **Sources.** `docs/equations.md` §7. Document 003 (`docs/sources.md`, "从 Seq2seq 到 Attention
# 模型到 Self Attention（一）") is part 1 of a series; its closing paragraphs, after the
# bidirectional encoder, are where it looks ahead: the attention model still has two problems — (1)
# its context vectors relate the input sentence to the target sentence, but ignore the relations
# *among the words of the input sentence* and *among the words of the target sentence*; (2) it is
# built on RNNs, which cannot be parallelised, so training is slow — and in 2017 Google's
# Transformer solved both with self-attention and multi-head attention, dropping RNNs and CNNs
# altogether. It announces self-attention and multi-head attention for part 2 (not among our
# sources), citing A. Vaswani et al., *Attention Is All You Need*, NeurIPS 2017 (arXiv:1706.03762;
# its reference [6]); its reference list also has He et al. 2015 [10] and Ba et al. 2016 [11], the
# residual connections and layer normalisation a Transformer is built with. The equations here are
# Vaswani et al.'s §3.2.1 (scaled dot-product attention, its equation (1) and footnote 4) and
# §3.2.3 (the decoder's mask).
#
# The whole notebook runs in a few seconds.

# %%
import matplotlib.pyplot as plt
import numpy as np

import tinyattn as ta
from tinyattn.attention import LuongAttention
from tinyattn.data import Vocab, tokenize
from tinyattn.functional import masked_softmax_forward, softmax, softmax_backward
from tinyattn.gradcheck import TOL_LAYER, check_module
import tinyattn.exercises as ex
from tinyattn.plot import plot_alignment, setup_fonts

np.set_printoptions(precision=3, suppress=True)
_ = setup_fonts()  # before any figure: a CJK font as fallback, so Chinese labels render

# %% [markdown]
# ## 1. Queries, keys and values from one sequence
#
# In Luong's dot attention (`docs/equations.md` §5) the decoder state $h_t$ is the **query**; the
# encoder states $\bar h_s$ are both the **keys** it is compared with and the **values** that are
# averaged. Vaswani et al. separate the three roles and give each its own projection. Self-attention
# takes all three from the same sequence $X$ (one row $x_i$ per position, size $D$):
#
# $$Q = X W_q, \qquad K = X W_k, \qquad V = X W_v$$
#
# $$\text{Attention}(Q, K, V) = \text{softmax}\!\left(\frac{Q K^\top}{\sqrt{d_k}}\right) V$$
#
# Row $i$ of the $T \times T$ weight matrix $A = \text{softmax}(QK^\top/\sqrt{d_k})$ says how much
# position $i$ reads from each position $j$ of the *same* sentence; output $o_i = \sum_j A_{ij} v_j$
# is position $i$'s own context vector. This is document 003's first point: the relations among
# the words of one sentence, which encoder–decoder attention never looks at.
#
# | maths | meaning | in the code | shape |
# |---|---|---|---|
# | $X$ | the sequence (embeddings, or a previous layer's outputs) | `x` | (B, T, D) |
# | $W_q$, $W_k$, $W_v$ | projections to queries, keys, values | `sa.params["W_q"]`, `"W_k"`, `"W_v"` | (D, d_k), (D, d_k), (D, d_v) |
# | $Q$, $K$, $V$ | one query, key and value per position | `Q`, `K`, `V` | (B, T, d_k), (B, T, d_k), (B, T, d_v) |
# | $S = QK^\top/\sqrt{d_k}$ | scores, query rows × key columns | `scores` | (B, T, T) |
# | $A = \text{softmax}(S)$ | weights; each row sums to 1 | `alpha` | (B, T, T) |
# | $O = AV$ | outputs, one context per position | `out` | (B, T, d_v) |
#
# Row vectors, as everywhere in tinyattn: `Q = x @ W_q` with `W_q` of shape (D, d_k). Pads are
# masked like in every attention of the library: a pad **key** gets score $-\infty$, so weight
# exactly 0; a pad **query** has nothing to say, so its row of $A$ and its output are exactly 0.
#
# **The same attention as Luong's.** With $W_v = W_k$ (values equal to keys), self-attention is
# `LuongAttention(score="scaled_dot")` with queries $Q$ and "encoder states" $K$. The library
# agrees:

# %%
B, T, D, d_k, d_v = 2, 4, 5, 3, 6  # small and all different: a transposed shape cannot hide
lengths = np.array([4, 3])  # the second sequence has one pad, at position 3
real = np.arange(T)[None, :] < lengths[:, None]  # (1, T) < (B, 1) -> (B, T): True = real token
rng = np.random.default_rng(0)
x = rng.standard_normal((B, T, D))
x[~real] = 0.0  # what an embedding of <pad> gives; any value would do

sa_kv = ta.SelfAttention(D, d_k, d_k, rng=rng)  # d_v = d_k for this comparison
sa_kv.params["W_v"][...] = sa_kv.params["W_k"]  # values = keys
out_sa, alpha_sa = sa_kv(x, lengths=lengths)

luong = LuongAttention(d_k, d_k, score="scaled_dot", rng=rng)
Q_kv, K_kv = x @ sa_kv.params["W_q"], x @ sa_kv.params["W_k"]  # (B, T, D) @ (D, d_k)
context, alpha_luong = luong(Q_kv, K_kv, real)  # queries (B, T, d_k), keys = values (B, T, d_k)
assert np.allclose(out_sa[real], context[real]) and np.allclose(alpha_sa[real], alpha_luong[real])
print("self-attention = Luong's scaled dot attention of the sequence to itself:",
      np.allclose(out_sa[real], context[real]))

# %% [markdown]
# (Only the real query rows are compared: Luong's attention has no notion of a pad *query*; a
# decoder's outputs at padded target steps are simply ignored by the loss.)
#
# ## 2. Why divide by $\sqrt{d_k}$
#
# Vaswani et al. (§3.2.1, footnote 4): if the entries of $q$ and $k$ are independent with mean 0
# and variance 1, then $q \cdot k = \sum_{m=1}^{d_k} q_m k_m$ is a sum of $d_k$ terms of variance 1,
# so it has variance $d_k$. Large scores push the softmax towards a one-hot vector, where its
# gradient is almost zero: $\partial a_i / \partial s_j = a_i(\delta_{ij} - a_j)$ vanishes when one
# $a_i \approx 1$ and the others $\approx 0$. Dividing by $\sqrt{d_k}$ brings the variance back to 1
# for any $d_k$.
#
# Measured: 1,000 queries, each against 10 keys, entries drawn from $N(0, 1)$, for $d_k$ from 1 to
# 512. For each $d_k$: the variance of the scores, the largest weight in each row (1 = saturated),
# and the size of the gradient that reaches the scores through the softmax (the library's
# `softmax_backward` applied to a random upstream gradient), without and with the scaling.
#
# **Predict.** Without the scaling, what will the variance of the scores be at $d_k = 64$? Will
# the mean largest weight of a row at $d_k = 512$ be nearer to 1 (one-hot) or to its value at
# $d_k = 1$? And with the scaling?

# %%
n_q, n_keys = 1000, 10
d_ks = 2 ** np.arange(10)  # 1, 2, 4, ..., 512
stats = {"raw": [], "scaled": []}
rng_exp = np.random.default_rng(1)
for dk in d_ks:
    q = rng_exp.standard_normal((n_q, dk))
    k = rng_exp.standard_normal((n_q, n_keys, dk))
    raw = np.einsum("nd,nsd->ns", q, k)  # (n_q, 10): q · k for every key
    dA = rng_exp.standard_normal(raw.shape)  # a random upstream gradient dL/dA
    for name, scores in (("raw", raw), ("scaled", raw / np.sqrt(dk))):
        a = softmax(scores, axis=-1)
        dS = softmax_backward(dA, (a, -1))  # dL/dscores through the softmax
        stats[name].append((scores.var(), a.max(axis=1).mean(),
                            np.linalg.norm(dS, axis=1).mean() / np.linalg.norm(dA, axis=1).mean()))
stats = {name: np.array(v) for name, v in stats.items()}  # (10, 3) each

print(f"{'d_k':>5} | {'score variance':>21} | {'mean largest weight':>21} | "
      f"{'gradient size ratio':>21}")
print(f"{'':>5} | {'raw':>10} {'scaled':>10} | {'raw':>10} {'scaled':>10} | "
      f"{'raw':>10} {'scaled':>10}")
for dk, r, s in zip(d_ks, stats["raw"], stats["scaled"]):
    print(f"{dk:5d} | {r[0]:10.1f} {s[0]:10.2f} | {r[1]:10.3f} {s[1]:10.3f} | "
          f"{r[2]:10.3f} {s[2]:10.3f}")
assert np.allclose(stats["raw"][:, 0] / d_ks, 1.0, atol=0.15)  # variance ≈ d_k
assert np.allclose(stats["scaled"][:, 0], 1.0, atol=0.15)  # ≈ 1 for every d_k

# %%
fig, axes = plt.subplots(1, 3, figsize=(12, 3.6), layout="constrained")
titles = ("variance of the scores", "mean largest weight of a row", "gradient reaching the scores")
ylabels = ("Var(score)", "max_j a_ij (1 = one-hot)", "‖dL/dS‖ / ‖dL/dA‖ (mean over rows)")
for col, (ax, title, ylabel) in enumerate(zip(axes, titles, ylabels)):
    ax.plot(d_ks, stats["raw"][:, col], "o-", label="q·k")
    ax.plot(d_ks, stats["scaled"][:, col], "s-", label="q·k / √d_k")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("d_k")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
axes[0].set_yscale("log", base=2)
axes[0].plot(d_ks, d_ks, "k:", lw=1, label="d_k")
axes[0].legend()
axes[2].set_ylim(bottom=0)
fig.suptitle("Why Vaswani et al. divide by √d_k: 1,000 random queries, 10 keys each, N(0, 1) entries")
plt.show()

# %% [markdown]
# Unscaled, the variance follows $d_k$ as the footnote says (62.1 at $d_k = 64$, 509.1 at
# $d_k = 512$; the code asserts it is within 15 % of $d_k$ at every size), the rows become nearly
# one-hot (a mean largest weight of 0.870 at $d_k = 64$ and 0.955 at $d_k = 512$, against 0.269
# at $d_k = 1$), and the gradient that gets through the softmax shrinks from 0.100 to 0.015 of
# the upstream gradient's size: $W_q$ and $W_k$, whose gradients pass through the scores, would
# learn slowly, or not at all. Scaled, all three stay close to their values at $d_k = 1$
# (variance 0.94–1.00, largest weight 0.269–0.319, gradient ratio 0.100–0.105). (Real
# queries and keys are not independent $N(0, 1)$ vectors, but their dot products grow with $d_k$
# in the same way at initialisation, which is when it matters most.)

# %% [markdown]
# ## 3. The forward pass by hand
#
# The library's module on our tiny batch (B = 2, T = 4, D = 5, d_k = 3, d_v = 6; the second
# sequence has 3 real tokens). We copy its weights and recompute everything in plain NumPy.

# %%
sa = ta.SelfAttention(D, d_k, d_v, rng=np.random.default_rng(2))  # float64 by default
W_q, W_k, W_v = (sa.params[name].copy() for name in ("W_q", "W_k", "W_v"))
assert W_q.shape == (D, d_k) and W_k.shape == (D, d_k) and W_v.shape == (D, d_v)

Q = x @ W_q  # (B, T, D) @ (D, d_k) -> (B, T, d_k)
K = x @ W_k  # (B, T, d_k)
V = x @ W_v  # (B, T, d_v)
assert Q.shape == (B, T, d_k) and K.shape == (B, T, d_k) and V.shape == (B, T, d_v)

scores_loop = np.zeros((B, T, T))
for b in range(B):
    for i in range(T):
        for j in range(T):
            scores_loop[b, i, j] = Q[b, i] @ K[b, j] / np.sqrt(d_k)  # one number
scores = Q @ K.transpose(0, 2, 1) / np.sqrt(d_k)  # (B, T, d_k) @ (B, d_k, T) -> (B, T, T)
assert scores.shape == (B, T, T) and np.allclose(scores, scores_loop)
print("scores of sequence 1 (rows: queries i, columns: keys j):\n", scores[1])

# %% [markdown]
# Mask the pad key (column 3 of sequence 1) with $-\infty$, softmax each row, zero the pad query's
# row, and take the weighted average of the values:

# %%
s_masked = np.where(real[:, None, :], scores, -np.inf)  # (B, 1, T) mask broadcast over rows
w = np.exp(s_masked - s_masked.max(axis=2, keepdims=True))  # exp(-inf) = 0 exactly
A = w / w.sum(axis=2, keepdims=True)  # (B, T, T), every row sums to 1
A = A * real[:, :, None]  # (B, T, 1): a pad query's row becomes 0
out = A @ V  # (B, T, T) @ (B, T, d_v) -> (B, T, d_v)
assert A.shape == (B, T, T) and out.shape == (B, T, d_v)
print("weights of sequence 1:\n", A[1])

# the library's masked softmax gives the same weights on the real rows
A_lib_sm, _ = masked_softmax_forward(scores, real[:, None, :])
assert np.allclose(A_lib_sm[real], A[real])

out_lib, alpha_lib = sa(x, lengths=lengths)
assert out_lib.shape == (B, T, d_v) and alpha_lib.shape == (B, T, T)
assert np.allclose(alpha_lib, A) and np.allclose(out_lib, out)
assert (alpha_lib[1, :, 3] == 0.0).all() and (alpha_lib[1, 3] == 0.0).all()
assert not out_lib[1, 3].any()  # the pad's output is exactly 0
print("output of sequence 1:\n", out_lib[1])

# %% [markdown]
# Row 3 and column 3 of sequence 1 are exactly 0: the pad neither reads nor is read. The other
# rows sum to 1 over the 3 real positions. Note the diagonal: nothing forces a position to attend
# to itself; $q_i \cdot k_i$ is just one more score, because $W_q \ne W_k$.
#
# ## 4. The backward pass by hand
#
# Given the upstream gradient $dO = \partial L / \partial O$ (shape (B, T, d_v)), walk the forward
# pass in reverse. Each line is the derivative of one line of the forward pass:
#
# | forward | backward |
# |---|---|
# | $O = AV$ | $dV = A^\top dO$, $\quad dA = dO\, V^\top$ |
# | $A = \text{softmax}(S)$, row by row | $dS_{ij} = A_{ij}\,(dA_{ij} - \sum_k dA_{ik} A_{ik})$ |
# | $S = QK^\top / \sqrt{d_k}$ | $dQ = dS\, K / \sqrt{d_k}$, $\quad dK = dS^\top Q / \sqrt{d_k}$ |
# | $Q = XW_q$, $K = XW_k$, $V = XW_v$ | $dW_q = X^\top dQ$, $dW_k = X^\top dK$, $dW_v = X^\top dV$ |
# | $X$ feeds all three | $dX = dQ\, W_q^\top + dK\, W_k^\top + dV\, W_v^\top$ |
#
# Two remarks. The softmax line is the row-wise Jacobian-vector product: the Jacobian of a
# softmax row is $\text{diag}(a) - a a^\top$. And the mask needs **no special case**: a masked
# entry has $A_{ij} = 0$, so its $dS_{ij}$ is 0 by the same formula (and a pad query's row was
# multiplied by 0 after the softmax, so the gradient reaching the softmax there is 0: the line
# `dA = dA * real[:, :, None]` below). $dK$ has a transpose because key $j$ is used by
# every query $i$: its gradient sums over the rows of $dS$.

# %%
dO = np.random.default_rng(3).standard_normal((B, T, d_v))

dV = A.transpose(0, 2, 1) @ dO  # (B, T, T) @ (B, T, d_v) -> (B, T, d_v)
dA = dO @ V.transpose(0, 2, 1)  # (B, T, d_v) @ (B, d_v, T) -> (B, T, T)
dA = dA * real[:, :, None]  # the pad query's row of A was zeroed: no gradient
dS = A * (dA - (dA * A).sum(axis=2, keepdims=True))  # softmax backward, row by row
assert np.allclose(dS, softmax_backward(dA, (A, -1)))  # the library's softmax backward
dQ = dS @ K / np.sqrt(d_k)  # (B, T, T) @ (B, T, d_k) -> (B, T, d_k)
dK = dS.transpose(0, 2, 1) @ Q / np.sqrt(d_k)  # (B, T, T)^T @ (B, T, d_k) -> (B, T, d_k)
dW_q = np.einsum("btd,btk->dk", x, dQ)  # Σ over b and t of x^T dQ -> (D, d_k)
dW_k = np.einsum("btd,btk->dk", x, dK)
dW_v = np.einsum("btd,btv->dv", x, dV)  # (D, d_v)
dX = dQ @ W_q.T + dK @ W_k.T + dV @ W_v.T  # (B, T, D)
assert dX.shape == x.shape and dW_q.shape == W_q.shape and dW_v.shape == W_v.shape

sa.zero_grad()
sa(x, lengths=lengths)
dX_lib = sa.backward(dO)
assert np.allclose(dX_lib, dX)
for name, mine in (("W_q", dW_q), ("W_k", dW_k), ("W_v", dW_v)):
    assert np.allclose(sa.grads[name], mine), name
assert not dX_lib[1, 3].any()  # nothing flows into the pad
print("dX of sequence 1:\n", dX_lib[1])

# %% [markdown]
# **Gradient check.** `check_module` perturbs every entry of $X$, $W_q$, $W_k$ and $W_v$ in float64
# and compares with centered differences of $\sum O \odot dO + \sum A \odot dA$ for random
# $dO$, $dA$ (the module also returns $A$, so its gradient path is checked too). **What to
# expect:** relative errors between about $10^{-10}$ and $10^{-7}$ for a correct backward (this
# run: at most 5.16e-08), far below the layer tolerance $10^{-6}$ (`TOL_LAYER`); a wrong one is off
# by roughly the size of the gradient.
# We check it with the padding and with the causal mask of section 5.

# %%
for causal in (False, True):
    result = check_module(sa, x, lengths=lengths, causal=causal)
    print(f"causal={causal}: {result}")
    assert result.passed and result.max_error < TOL_LAYER

# %% [markdown]
# And the checker can fail: a backward that forgets the $1/\sqrt{d_k}$ in $dQ$ and $dK$ is caught,
# in exactly the arrays whose gradient goes through the scores ($X$, $W_q$, $W_k$), while $W_v$,
# whose path does not, passes.

# %%
class ForgotTheScale(ta.SelfAttention):
    def backward(self, dout, dalpha=None):
        scale, self.scale = self.scale, 1.0  # pretend the forward had no 1/√d_k
        try:
            return super().backward(dout, dalpha)
        finally:
            self.scale = scale


bad = ForgotTheScale(D, d_k, d_v, rng=np.random.default_rng(2))
bad_result = check_module(bad, x, lengths=lengths)
print(bad_result)
assert sorted(bad_result.failed) == ["W_k", "W_q", "x"]

# %% [markdown]
# ## 5. The causal mask
#
# An encoder may let every position read every other. A decoder may not: it generates left to
# right, so position $i$ must not read positions after it (the reason document 000's
# "bidirectional decoder" cannot exist, lesson 03). Vaswani et al. (§3.2.3) mask those scores with
# $-\infty$ before the softmax; the weight matrix becomes lower-triangular. `causal=True` does it:

# %%
out_c, alpha_c = sa(x, lengths=lengths, causal=True)
allowed = np.tri(T, dtype=bool)  # (T, T): True where j <= i
by_hand = np.where(allowed[None] & real[:, None, :], scores, -np.inf)  # (1,T,T) & (B,1,T)
by_hand = softmax(by_hand, axis=-1) * real[:, :, None]
assert np.allclose(alpha_c, by_hand)
assert (alpha_c[:, ~allowed] == 0.0).all()  # nothing above the diagonal
print("causal weights of sequence 0:\n", alpha_c[0])

x_future = x.copy()
x_future[0, 3] += 5.0  # change the last token of sequence 0
out_f, _ = sa(x_future, lengths=lengths, causal=True)
assert np.array_equal(out_f[0, :3], out_c[0, :3]) and not np.allclose(out_f[0, 3], out_c[0, 3])
print("changing token 3 changes no earlier output:", np.array_equal(out_f[0, :3], out_c[0, :3]))

# %% [markdown]
# Position 0 can only read itself (weight 1). Changing a later token leaves every earlier output
# unchanged, bit for bit. That is what lets a Transformer decoder be **trained on all positions
# at once**, in one batch of matrix products, instead of step by step as an RNN decoder is:
# document 003's second point, parallelism.
#
# **Back to 苹果** (lesson 03). Without the mask, self-attention is "bidirectional": position $i$
# reads the whole sentence. With it, it is "forward-only", like a left-to-right RNN. We embed the
# two sentences of lesson 03 (random weights, E = 16) and compare the outputs at 苹 and 果.
#
# **Predict.** The two sentences share their first eight tokens, 我喜欢苹果，因为 (苹果 is the
# fourth and fifth). Without the mask, will the outputs at 苹 and 果 be the same in both
# sentences? With it?

# %%
fruit, phone = tokenize("我喜欢苹果，因为它很好吃", "zh"), tokenize("我喜欢苹果，因为他比安卓稳定", "zh")
vocab = Vocab.build([fruit, phone])
rng_zh = np.random.default_rng(4)
E = 16
emb = ta.Embedding(len(vocab), E, rng=rng_zh, pad_id=Vocab.pad_id)
sa_zh = ta.SelfAttention(E, 8, 8, rng=rng_zh)
x_fruit = emb(np.array([vocab.encode(fruit)]))  # (1, 12, E)
x_phone = emb(np.array([vocab.encode(phone)]))  # (1, 14, E)
for causal in (False, True):
    o_fruit, _ = sa_zh(x_fruit, causal=causal)
    o_phone, _ = sa_zh(x_phone, causal=causal)
    gap = np.abs(o_fruit[0, 3:5] - o_phone[0, 3:5]).max()  # positions of 苹 and 果
    print(f"causal={causal!s:5}: max |fruit − phone| of the outputs at 苹果 = {gap:.2e}")
    assert (gap < 1e-12) == causal  # equal (up to rounding) exactly when the future is masked

# %% [markdown]
# Without the mask the outputs at 苹果 differ (2.42e-01): every position reads the whole
# sentence, and the two sentences differ after their first eight tokens. With the mask they
# agree exactly (0.00e+00): position $i$ reads only positions $j \le i$, which the two sentences
# share, like the forward direction of an RNN.
#
# **Heatmaps.** The weight matrices of the fruit sentence, without and with the mask. These
# weights are **random**: nothing was trained, so which character reads which means nothing here.
# A trained model's heads learn patterns (the previous word, a verb's object, a pronoun's
# antecedent, such as 它/他 → 苹果); with random weights we can only see the structure the
# masks impose, and how flat random attention is.

# %%
o_full, a_full = sa_zh(x_fruit)
o_causal, a_causal = sa_zh(x_fruit, causal=True)
print(f"largest weight in any row: {a_full[0].max():.3f} without the mask "
      f"(uniform would be {1 / len(fruit):.3f}); row of 吃 (the last): max {a_full[0, -1].max():.3f}")
fig, axes = plt.subplots(1, 2, figsize=(12, 5.2), layout="constrained")
for ax, a, title in ((axes[0], a_full, "self-attention, no mask"),
                     (axes[1], a_causal, "causal mask (j ≤ i)")):
    plot_alignment(a[0], fruit, fruit, ax=ax, title=title + ", random weights")
    ax.set_xlabel("key position j (read from)")
    ax.set_ylabel("query position i (reading)")
fig.suptitle("A_ij for 我喜欢苹果，因为它很好吃 (untrained: the pattern is not meaningful)")
plt.show()

# %% [markdown]
# Left: every row is spread over all 12 characters, with no weight above 0.184 (uniform would be
# 0.083): small random projections give scores near 0 and a nearly flat softmax. Right: the
# upper triangle is exactly 0; row 0 puts all its weight on itself, row 1 splits it over two
# characters, and so on: early rows look sharp only because they have few positions to share the
# weight among.
#
# **No positions.** One more property of what we built: it has no idea of word order. Shuffle the
# sentence and the outputs are shuffled the same way, nothing else changes:

# %%
perm = np.random.default_rng(5).permutation(len(fruit))
o_perm, a_perm = sa_zh(x_fruit[:, perm])
assert np.allclose(o_perm, o_full[:, perm]) and np.allclose(a_perm, a_full[:, perm][:, :, perm])
print("shuffled input -> same outputs, shuffled:", np.allclose(o_perm, o_full[:, perm]))

# %% [markdown]
# For self-attention without a mask, "我喜欢苹果" and "苹果喜欢我" are the same bag of characters. An
# RNN knows order because it reads step by step; self-attention must be *told* the positions.
#
# ## 6. What is missing for a Transformer
#
# Document 003 ends by announcing "self attention、multi-head 等概念" for its part 2. Our module is
# the single attention head at the heart of it; a Transformer layer (Vaswani et al. §3) adds:
# **multi-head attention** (§3.2.2: $h$ heads with their own $W_q, W_k, W_v$ of size
# $d_k = d_{model}/h$, run in parallel, their outputs concatenated and projected by $W_o$, so
# different heads can attend to different things; the exercise below); **positional encodings**
# (§3.5: sines and cosines of the position added to the embeddings, because of the permutation
# property just shown); a position-wise **feed-forward network** (§3.3: two linear layers with a
# ReLU, applied to every position); a **residual connection** around each sub-layer followed by
# **layer normalisation** (document 003's references [10] and [11]), so that a stack of $N = 6$
# such layers trains; and in the decoder, besides causal self-attention, an **encoder–decoder
# attention** whose queries come from the decoder and keys and values from the encoder: exactly
# the attention of lessons 05 and 06, with scaled dot scores.
#
# ## 7. Exercise: the backward pass of multi-head self-attention
#
# Two heads over one sequence $X$ (T, D) (no batch, no mask, to keep the indices simple). Head
# $h = 1, 2$ uses its own block of $d_k$ columns of $W_q$, $W_k$, $W_v$ (D, 2 d_k) (in the code,
# `W[:, h*dk:(h+1)*dk]` for h = 0, 1); the heads' outputs are concatenated (T, 2 d_k) and
# projected by $W_o$ (2 d_k, D):
#
# $$\text{head}_h = \text{softmax}\!\left(\frac{Q_h K_h^\top}{\sqrt{d_k}}\right) V_h, \qquad
# \text{MultiHead}(X) = [\text{head}_1 ; \text{head}_2]\, W_o$$
#
# The forward pass is given; it is checked against two `SelfAttention` modules, one per head.

# %%
N_HEADS = 2


def multi_head_forward(X, W_q, W_k, W_v, W_o):
    """Multi-head self-attention of one sequence X (T, D); returns (Y (T, D), cache)."""
    T_, _ = X.shape
    dk = W_q.shape[1] // N_HEADS
    # (T, D) @ (D, h·dk) -> (T, h·dk) -> (T, h, dk) -> (h, T, dk): one slice per head
    Qh, Kh, Vh = ((X @ W).reshape(T_, N_HEADS, dk).transpose(1, 0, 2) for W in (W_q, W_k, W_v))
    Ah = softmax(Qh @ Kh.transpose(0, 2, 1) / np.sqrt(dk), axis=-1)  # (h, T, T)
    heads = Ah @ Vh  # (h, T, T) @ (h, T, dk) -> (h, T, dk)
    concat = heads.transpose(1, 0, 2).reshape(T_, N_HEADS * dk)  # (T, h·dk)
    Y = concat @ W_o  # (T, h·dk) @ (h·dk, D) -> (T, D)
    return Y, (X, W_q, W_k, W_v, W_o, Qh, Kh, Vh, Ah, concat)


rng_ex = np.random.default_rng(6)
T_ex, D_ex, dk_ex = 4, 5, 3
mha_args = [rng_ex.standard_normal(s) for s in
            [(T_ex, D_ex), (D_ex, 2 * dk_ex), (D_ex, 2 * dk_ex), (D_ex, 2 * dk_ex),
             (2 * dk_ex, D_ex)]]
Y, _ = multi_head_forward(*mha_args)

per_head = []
for h in range(N_HEADS):
    cols = slice(h * dk_ex, (h + 1) * dk_ex)
    head = ta.SelfAttention(D_ex, dk_ex, rng=rng_ex)
    for name, W in zip(("W_q", "W_k", "W_v"), mha_args[1:4]):
        head.params[name][...] = W[:, cols]
    per_head.append(head(mha_args[0][None])[0][0])  # (1, T, D) in, (T, dk) out
assert np.allclose(Y, np.concatenate(per_head, axis=1) @ mha_args[4])
print("multi-head forward = two SelfAttention heads, concatenated, times W_o:", Y.shape)

# %% [markdown]
# **Your turn.** Write `my_multi_head_backward(dY, cache)` returning `dX, dW_q, dW_k, dW_v, dW_o`,
# each the shape of its array. Hints: start from $Y = \text{concat}\, W_o$; split $d\,\text{concat}$
# back into heads with the inverse of the forward's reshape and transpose; inside each head it is
# section 4's backward (batched over heads instead of over sequences); the heads' $dQ_h$ go back
# into the columns they came from, so $dW_q = X^\top [dQ_1 ; dQ_2]$. Replace the `raise` line, then
# run the next cell: `ex.check("multi_head_backward", fn)` runs the library's gradient checker
# (tolerance `TOL_STEP` = 1e-7) on your function, over the forward above (the same function and
# cache as `tinyattn/exercises/_ex_multihead.py`, on random arrays of the sizes above), and when
# a gradient is wrong it names the likely mistake: the $1/\sqrt{d_k}$ left out, the heads split
# with a reshape alone, the softmax backward without its row sum, $dK$ from $dS$ instead of
# $dS^\top$, or a path missing from $dX$. `ex.stub("multi_head_backward")` prints the starting
# point.

# %%
def my_multi_head_backward(dY, cache):
    """Gradients of the two-head forward.

    dY (T, D); cache = ``(X, W_q, W_k, W_v, W_o, Qh, Kh, Vh, Ah, concat)`` with Qh, Kh, Vh
    (h, T, d_k) the heads' slices, Ah (h, T, T) their weights, concat (T, h·d_k) = [head_1 ;
    head_2]. Y = concat W_o; head_h = softmax(Q_h K_hᵀ / √d_k) V_h.
    Returns ``dX (T, D), dW_q, dW_k, dW_v (D, h·d_k), dW_o (h·d_k, D)``.
    """
    X, W_q, W_k, W_v, W_o, Qh, Kh, Vh, Ah, concat = cache
    # BEGIN SOLUTION
    n_heads, T_, dk = Qh.shape
    dW_o = concat.T @ dY  # Y = concat W_o
    dconcat = dY @ W_o.T  # (T, h·dk)
    dheads = dconcat.reshape(T_, n_heads, dk).transpose(1, 0, 2)  # undo the concat: (h, T, dk)
    dVh = Ah.transpose(0, 2, 1) @ dheads  # heads = A V
    dAh = dheads @ Vh.transpose(0, 2, 1)
    dSh = Ah * (dAh - np.sum(dAh * Ah, axis=-1, keepdims=True))  # softmax, per row
    dQh = dSh @ Kh / np.sqrt(dk)  # S = Q K^T / sqrt(dk)
    dKh = dSh.transpose(0, 2, 1) @ Qh / np.sqrt(dk)

    def merge(g):  # (h, T, dk) -> (T, h·dk): the columns each head came from
        return g.transpose(1, 0, 2).reshape(T_, n_heads * dk)

    dQ, dK, dV = merge(dQh), merge(dKh), merge(dVh)
    dX = dQ @ W_q.T + dK @ W_k.T + dV @ W_v.T  # X feeds Q, K and V
    return dX, X.T @ dQ, X.T @ dK, X.T @ dV, dW_o
    # END SOLUTION

# %%
result = ex.check("multi_head_backward", my_multi_head_backward)
assert result.status in ("passed", "not implemented"), "read the report above"

# %% [markdown]
# When it fails, the table says which gradient is wrong, and the "likely" line names the mistake
# when the numbers match a known one. A wrong $dW_o$ alone points at the first
# line; wrong $dW_v$ (and $dX$) but right $dW_q$, $dW_k$ at the values path; all of $dX$, $dW_q$, $dW_k$ wrong
# but $dW_v$ right at the softmax or the scale (as the broken module in section 4 showed); only
# $dX$ wrong at the sum of the three paths.
#
# **To remember.** $Q = XW_q$, $K = XW_k$, $V = XW_v$ from one sequence;
# $A = \text{softmax}(QK^\top/\sqrt{d_k})$ is $T \times T$; divide by $\sqrt{d_k}$ because the
# scores' variance grows like $d_k$ and a saturated softmax passes almost no gradient; the
# backward is $dV = A^\top dO$, $dA = dO\,V^\top$, the softmax backward, $dQ = dS\,K/\sqrt{d_k}$,
# $dK = dS^\top Q/\sqrt{d_k}$; the causal mask makes it left-to-right; without positions it cannot
# tell word order.
#
# **Try it yourself.** Add sinusoidal positional encodings (Vaswani §3.5) to `x_fruit` and check
# that the shuffle test of section 5 now fails; train `SelfAttention` plus a `Linear` layer as a
# tagger on the `date-fields` task of lesson 03, with and without positional encodings, and
# compare with the bidirectional GRU.
