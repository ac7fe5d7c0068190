# Source of lessons/14_multihead_positions.ipynb (learner) and
# lessons/solutions/14_multihead_positions.ipynb (instructor): edit here, then run
# `.venv/bin/python lessons/build.py 14` (see lessons/build.py).

# %% [markdown]
# # Lesson 14 — Multi-head attention and positions
#
# **Goal.** Lesson 13 built one head of self-attention and, as its exercise, two heads over one
# sequence without batch or mask. A Transformer runs $n$ heads at once, over a padded batch, in
# self-attention and in the decoder's cross-attention; and it adds to the embeddings the word
# order that attention cannot see. In this lesson you will
#
# 1. split a (B, T, D) array into $n$ heads with one reshape and one transpose, merge them back,
#    and see what a reshape alone does;
# 2. run batched multi-head attention forward by hand, with queries from one sequence and keys and
#    values from another whose padding is masked;
# 3. write the attention mask, padding and causal, yourself (an exercise graded by its outputs);
# 4. write the backward of batched multi-head attention yourself (an exercise graded by the
#    gradient checker);
# 5. check all of it against `tinyattn.multihead`, and see a softmax backward divided by the batch
#    size pass a gradient check at B = 1 and fail at B = 3;
# 6. count the parameters and swap two heads;
# 7. compute the sinusoidal positional encodings by hand, plot them, show that a shift by $k$
#    positions is one fixed rotation, and that without them shuffling a sentence only shuffles
#    the outputs.
#
# **Sources.** `docs/equations.md` §7.1 (multi-head attention) and §7.4 (positional encoding).
# A. Vaswani et al., *Attention Is All You Need*, NeurIPS 2017 (arXiv:1706.03762): §3.2.2
# (multi-head attention), §3.2.3 (the masks), §3.5 (positional encoding). Document 003
# (`docs/sources.md`) ends by announcing self-attention and multi-head attention for its part 2,
# which is not among our sources (lesson 13).
#
# The whole notebook runs in a few seconds.

# %%
import matplotlib.pyplot as plt
import numpy as np

import tinyattn as ta
from tinyattn.data import Vocab, tokenize
from tinyattn.functional import masked_softmax_forward, softmax
from tinyattn.gradcheck import TOL_LAYER, TOL_STEP, check_function
import tinyattn.exercises as ex
from tinyattn.plot import setup_fonts

np.set_printoptions(precision=3, suppress=True)
_ = setup_fonts()  # a CJK font as fallback, for the labels of section 7

# %% [markdown]
# ## 1. Heads: one reshape and one transpose
#
# Multi-head attention (Vaswani et al. §3.2.2) projects the $D$-dimensional queries, keys and
# values with full $(D, D)$ matrices, as one head would, and then cuts the $D$ columns into $n$
# blocks of $d = D / n$: head $h$ owns columns $h d, \dots, h d + d - 1$. Each head is lesson 13's
# attention on its own block; the heads' outputs are put side by side again and projected by
# $W_o$. In the code the cut is a **split**, (B, T, D) → (B, n, T, d), so that one batched product
# runs every head of every example:
#
# | step | shape | what happens |
# |---|---|---|
# | `x` | (B, T, D) | row $t$ of example $b$ holds all $D$ columns |
# | `x.reshape(B, T, n, d)` | (B, T, n, d) | each row cut into $n$ blocks of $d$: nothing moves in memory |
# | `.transpose(0, 2, 1, 3)` | (B, n, T, d) | head axis before the position axis: `[b, h]` is head $h$'s (T, d) matrix |
#
# The **merge** is the inverse: transpose back to (B, T, n, d), then reshape to (B, T, D). On a
# labelled array where entry $(t, c)$ holds $10t + c$ (position $t$, column $c$), the split is easy
# to read:

# %%
B, T, S, D, n = 3, 4, 5, 6, 2  # sizes all different, except d = D / n = 3 = B
d = D // n


def split(x, n_heads):
    """(B, L, D) -> (B, n, L, d): head h takes columns h·d .. h·d + d − 1 of every row."""
    B_, L, D_ = x.shape
    return x.reshape(B_, L, n_heads, D_ // n_heads).transpose(0, 2, 1, 3)


def merge(h):
    """(B, n, L, d) -> (B, L, n·d), the inverse of split: each row's heads side by side."""
    B_, n_heads, L, d_ = h.shape
    return h.transpose(0, 2, 1, 3).reshape(B_, L, n_heads * d_)


labels = (10 * np.arange(3)[:, None] + np.arange(D)[None, :])[None].astype(float)  # (1, 3, D)
print("x (positions 0-2, columns 0-5):\n", labels[0])
print("split: head 0 and head 1, each (3 positions, d = 3 columns):\n", split(labels, n)[0])
print("reshape alone to (1, n, 3, d): 'head 0' and 'head 1':\n", labels.reshape(1, n, 3, d)[0])
assert np.array_equal(merge(split(labels, n)), labels)  # merge undoes split exactly

# %% [markdown]
# With the transpose, head 0 holds columns 0–2 of positions 0, 1, 2 (0, 1, 2 / 10, 11, 12 /
# 20, 21, 22): one block of columns, every position. A reshape straight to (1, n, 3, d) is legal,
# since the sizes match, and wrong: its "head 0" holds both halves of position 0 (0, 1, 2 / 3, 4, 5)
# and the first half of position 1: positions and heads are mixed up. NumPy raises no error;
# only the numbers tell. Keep that in mind for the backward, which must undo both cuts.
#
# ## 2. The forward pass by hand
#
# Queries from one sequence, keys and values from another: the **cross-attention** of a
# Transformer decoder (its queries are the decoder's states, its keys and values the encoder's
# outputs, the attention of lessons 05 and 06). Self-attention is the case
# `query = key = value`. Three examples, T = 4 queries each, S = 5 keys each, of which the last
# examples have 3 and 2 real keys:
#
# | maths | code | shape |
# |---|---|---|
# | $Q = \text{split}(\text{query}\,W_q + b_q)$ | `Q` | (B, n, T, d) |
# | $K = \text{split}(\text{key}\,W_k + b_k)$, $V = \text{split}(\text{value}\,W_v + b_v)$ | `K`, `V` | (B, n, S, d) |
# | $A = \text{softmax}(Q K^\top / \sqrt{d})$, masked over the keys | `A` | (B, n, T, S) |
# | $\text{merged} = \text{merge}(A V)$ | `merged` | (B, T, D) |
# | $\text{out} = \text{merged}\, W_o + b_o$ | `out` | (B, T, D) |
#
# The scale is $1/\sqrt{d}$, the size of one head (not of $D$): each head's scores are dot
# products of $d$ numbers (lesson 13, section 2). The mask `allowed` (B, T, S) says which key
# each query may read; here only the padding, the same for every query and every head.

# %%
rng = np.random.default_rng(0)
query = rng.standard_normal((B, T, D))  # e.g. decoder states
memory = rng.standard_normal((B, S, D))  # e.g. encoder outputs: keys and values
key_lengths = np.array([5, 3, 2])  # example 1 has 2 pad keys, example 2 has 3
bound = 1 / np.sqrt(D)  # the library's initialisation, U(−1/√D, 1/√D)
p = {name: rng.uniform(-bound, bound, (D, D)) for name in ("W_q", "W_k", "W_v", "W_o")}
p.update({name: 0.1 * rng.standard_normal(D) for name in ("b_q", "b_k", "b_v", "b_o")})


def mha_forward(query, key, value, p, allowed):
    """Batched multi-head attention; ``allowed (B, T, S)`` True where query i may read key j."""
    Q = split(query @ p["W_q"] + p["b_q"], n)  # (B, T, D) @ (D, D) -> (B, T, D) -> (B, n, T, d)
    K = split(key @ p["W_k"] + p["b_k"], n)  # (B, n, S, d)
    V = split(value @ p["W_v"] + p["b_v"], n)  # (B, n, S, d)
    scores = Q @ K.transpose(0, 1, 3, 2) / np.sqrt(d)  # (B, n, T, d) @ (B, n, d, S) -> (B, n, T, S)
    A, _ = masked_softmax_forward(scores, allowed[:, None])  # (B, 1, T, S): one mask, every head
    merged = merge(A @ V)  # (B, n, T, S) @ (B, n, S, d) -> (B, n, T, d) -> (B, T, D)
    out = merged @ p["W_o"] + p["b_o"]
    cache = (query, key, value, p["W_q"], p["W_k"], p["W_v"], p["W_o"], Q, K, V, A, merged)
    return out, cache


real_keys = np.arange(S)[None, None, :] < key_lengths[:, None, None]  # (B, 1, S)
padding_only = np.broadcast_to(real_keys, (B, T, S))
out, cache = mha_forward(query, memory, memory, p, padding_only)
A = cache[10]
assert out.shape == (B, T, D) and A.shape == (B, n, T, S)
print("weights of example 2 (3 pad keys), head 0 and head 1:\n", A[2])

# %% [markdown]
# Columns 2–4 of example 2 are exactly 0 in both heads: its pad keys are never read. Each head is
# lesson 13's single-head attention on its block of $d$ columns; a loop over examples and heads,
# with each head's own $(D, d)$ slices of the weights, gives the same weights and the same merged
# outputs. So one $(D, D)$ product followed by a split *is* $n$ separate $(D, d)$ projections:

# %%
merged = cache[11]
for b in range(B):
    for h in range(n):
        cols = slice(h * d, (h + 1) * d)  # head h's columns
        q_h = query[b] @ p["W_q"][:, cols] + p["b_q"][cols]  # (T, d)
        k_h = memory[b] @ p["W_k"][:, cols] + p["b_k"][cols]  # (S, d)
        v_h = memory[b] @ p["W_v"][:, cols] + p["b_v"][cols]
        s_h = np.where(real_keys[b], q_h @ k_h.T / np.sqrt(d), -np.inf)  # (T, S)
        a_h = softmax(s_h, axis=-1)
        assert np.allclose(A[b, h], a_h) and np.allclose(merged[b][:, cols], a_h @ v_h)
print("split projections = one projection per head, for all", B * n, "(example, head) pairs")

# %% [markdown]
# ## 3. Exercise: the attention mask
#
# The mask is a bool array `allowed (B, T, S)`, rows = queries $i$, columns = keys $j$, True where
# query $i$ of example $b$ may read key $j$. Two reasons to forbid a key:
#
# - **padding**: key $j$ is a pad of example $b$ when $j \ge L_b$, its real length
#   (`key_lengths[b]`); then the whole column $j$ is False;
# - **causal** (a decoder's self-attention, $T = S$): query $i$ may read only keys $j \le i$,
#   itself and the past (Vaswani et al. §3.2.3); then everything above the diagonal is False.
#
# A causal layer on a padded batch needs both: a logical *and*. Conventions differ between
# libraries: tinyattn's `allowed` is True where a key **may** be read; PyTorch's bool
# `attn_mask` and `key_padding_mask` are True where it may **not**.
#
# **Your turn.** Write `my_attention_mask(key_lengths, T, S, causal=False)`, returning the full
# (B, T, S) array. `ex.check("attention_mask", fn)` runs it and the library's on three cases
# (cross-attention with padded keys; causal self-attention without and with padding) and, when an
# output differs, names the mistake that produces it: the causal mask off by one ($j < i$ instead
# of $j \le i$), the wrong triangle, the padding on the queries instead of the keys, the first
# pad counted as real, the padding forgotten when causal, True and False swapped.
# `ex.stub("attention_mask")` prints the starting point.

# %%
def my_attention_mask(key_lengths, T, S, causal=False):
    """Which keys each query may read.

    key_lengths (B,) int: example b has key_lengths[b] real keys, then pads; T queries, S keys.
    causal (needs T = S): query i may also read only keys j <= i.
    Returns a bool array (B, T, S): [b, i, j] True where query i of example b may read key j.
    """
    # BEGIN SOLUTION
    lengths = np.asarray(key_lengths)
    mine = np.arange(S)[None, None, :] < lengths[:, None, None]  # (B, 1, S): real keys
    mine = np.broadcast_to(mine, (len(lengths), T, S))
    if causal:
        mine = mine & np.tri(T, S, dtype=bool)[None]  # (1, T, S): j <= i, the diagonal included
    return mine
    # END SOLUTION

# %%
mask_result = ex.check("attention_mask", my_attention_mask)
assert mask_result.status in ("passed", "not implemented"), "read the report above"

# %% [markdown]
# ## 4. Exercise: the backward pass of multi-head attention
#
# Given $d\text{out} = \partial L / \partial\, \text{out}$ (B, T, D), walk the forward of
# section 2 in reverse. Each line is the derivative of one line of the forward; the middle rows
# are lesson 13's backward, batched over examples *and* heads (`transpose(0, 1, 3, 2)` swaps the
# last two axes of a (B, n, ·, ·) array):
#
# | forward | backward |
# |---|---|
# | $\text{out} = \text{merged}\, W_o + b_o$ | $dW_o = \sum_{b,t} \text{merged}^\top d\text{out}$, $db_o = \sum_{b,t} d\text{out}$, $d\,\text{merged} = d\text{out}\, W_o^\top$ |
# | $\text{merged} = \text{merge}(H)$ | $dH = $ the merge undone, (B, T, D) → (B, n, T, d) |
# | $H = A V$ | $dV = A^\top dH$, $\quad dA = dH\, V^\top$ |
# | $A = \text{softmax}(S)$, row by row | $dS = A \odot (dA - \text{rowsum}(dA \odot A))$ |
# | $S = Q K^\top / \sqrt{d}$ | $dQ = dS\, K / \sqrt{d}$, $\quad dK = dS^\top Q / \sqrt{d}$ |
# | $Q = \text{split}(\text{query}\,W_q + b_q)$ | the split undone, (B, n, T, d) → (B, T, D); then $d\text{query} = dQ\, W_q^\top$, $dW_q = \sum_{b,t} \text{query}^\top dQ$, $db_q = \sum_{b,t} dQ$ |
# | the same for $K$ (from `key`) and $V$ (from `value`) | the same |
#
# Three remarks. The **mask needs no code**: a masked weight is exactly 0 in $A$, so its $dS$ is 0
# by the softmax line, for padding and causal masks alike; the cache carries $A$, so your
# backward is the same for every mask. The **weights are used by every example and position**:
# their gradients are sums over $b$ and $t$ (flatten to $B \cdot T$ rows, or `np.einsum`).
# And **nothing is divided by $B$**: the softmax backward works row by row and does not know
# how many examples the batch has; a mean over the batch belongs to the loss.
#
# **Your turn.** Write `my_multihead_attention_backward(dout, cache)`, with the cache of
# `mha_forward` (the `split` and `merge` of section 1 are yours to use). The check,
# `ex.check("multihead_attention_backward", fn)`, runs the library's forward on random float64
# arrays of the sizes above (B = 3 examples, T = 4 queries, S = 5 keys, key lengths 5, 3, 2,
# D = 6, n = 2 heads) and the gradient checker on your 11 gradients, with tolerance `TOL_STEP`
# ($10^{-7}$). When one is wrong it names the likely mistake: the softmax backward divided by
# the batch size, the $1/\sqrt{d}$ left out, heads split or merged with a reshape alone, the
# softmax backward without its row sum, a weight not transposed.
# `ex.stub("multihead_attention_backward")` prints the starting point.

# %%
def my_multihead_attention_backward(dout, cache):
    """Gradients of batched multi-head attention (docs/equations.md §7.1).

    dout (B, T, D); cache = (query (B, T, D), key (B, S, D), value (B, S, D), W_q, W_k, W_v,
    W_o (D, D), Q (B, n, T, d), K (B, n, S, d), V (B, n, S, d), A (B, n, T, S),
    merged (B, T, D)).
    Returns dquery, dkey, dvalue, dW_q, dW_k, dW_v, dW_o, db_q, db_k, db_v, db_o, each the
    shape of its array.
    """
    query, key, value, W_q, W_k, W_v, W_o, Q, K, V, A, merged = cache
    # BEGIN SOLUTION
    heads, size = Q.shape[1], Q.shape[3]
    dW_o = np.einsum("btd,bte->de", merged, dout)  # Σ over b and t of mergedᵀ dout
    db_o = dout.sum(axis=(0, 1))
    dH = split(dout @ W_o.T, heads)  # undo the merge: (B, T, D) -> (B, n, T, d)
    dA = dH @ V.transpose(0, 1, 3, 2)  # (B, n, T, d) @ (B, n, d, S) -> (B, n, T, S)
    dS = A * (dA - (dA * A).sum(axis=-1, keepdims=True)) / np.sqrt(size)  # softmax, then scale
    grads = {"q": merge(dS @ K),  # undo the split: (B, n, T, d) -> (B, T, D)
             "k": merge(dS.transpose(0, 1, 3, 2) @ Q),  # (B, n, S, T) @ (B, n, T, d)
             "v": merge(A.transpose(0, 1, 3, 2) @ dH)}  # (B, n, S, T) @ (B, n, T, d)
    inputs, weights = {"q": query, "k": key, "v": value}, {"q": W_q, "k": W_k, "v": W_v}
    d_in = [grads[c] @ weights[c].T for c in "qkv"]
    d_W = [np.einsum("bld,ble->de", inputs[c], grads[c]) for c in "qkv"]
    d_b = [grads[c].sum(axis=(0, 1)) for c in "qkv"]
    return (*d_in, *d_W, dW_o, *d_b, db_o)
    # END SOLUTION

# %%
result = ex.check("multihead_attention_backward", my_multihead_attention_backward)
assert result.status in ("passed", "not implemented"), "read the report above"

# %% [markdown]
# When it fails, read the table first: which gradients are wrong says where to look. Only
# $dW_o$ or $db_o$ wrong: the first line. $dW_o$ and $db_o$ right, but the values' gradients
# ($d\text{value}$, $dW_v$, $db_v$) wrong: the gradient reaches the heads in the wrong place
# (the split of $d\,\text{merged}$, or the merge of $dQ$, $dK$, $dV$). Only $d\text{query}$,
# $d\text{key}$, $d\text{value}$ wrong: a weight not transposed. $d\text{query}$, $d\text{key}$,
# $dW_q$, $dW_k$, $db_q$ wrong but the values' right: the softmax or the scale, whose path the
# values do not take.
#
# ## 5. The library: `tinyattn.multihead`
#
# Now that you have written them, the library's versions. First the split, the merge and the
# mask:

# %%
from tinyattn.gradcheck import check_module
from tinyattn.multihead import MultiHeadAttention, attention_mask, merge_heads, split_heads

x = rng.standard_normal((B, T, D))
assert np.array_equal(split_heads(x, n), split(x, n))
assert np.array_equal(merge_heads(split(x, n)), merge(split(x, n)))
allowed_lib = attention_mask(key_lengths, B, T, S, causal=False)  # (B, 1, 1, S): broadcasts
assert np.array_equal(np.broadcast_to(allowed_lib[:, 0], (B, T, S)), padding_only)
causal_lib = attention_mask(np.array([4, 2]), 2, 4, 4, causal=True)  # (2, 1, 4, 4)
print("library mask, causal self-attention, key lengths [4, 2]:\n", causal_lib[:, 0].astype(int))
if mask_result.passed:
    for lengths_, T_, S_, causal_ in ((key_lengths, T, S, False), (np.array([4, 2]), 4, 4, True)):
        lib = attention_mask(lengths_, len(lengths_), T_, S_, causal_)[:, 0]
        assert np.array_equal(my_attention_mask(lengths_, T_, S_, causal_),
                              np.broadcast_to(lib, (len(lengths_), T_, S_)))
    print("your mask = the library's")

# %% [markdown]
# The library keeps the mask small, (B, 1, 1, S) or (B, 1, T, S), and lets NumPy broadcast it over
# the heads and, without a causal mask, over the queries. Example 1's rows 2 and 3 read keys 0 and
# 1 only: they are padding positions themselves, but every query row is computed (a Transformer
# layer zeroes the outputs at its pad positions afterwards); a causal row $i$ reads keys
# $j \le i$ that are real.
#
# **Off by one.** Why is $j < i$ not merely a little wrong? Query 0 would have no key at all, and
# a softmax over nothing is 0/0. The library refuses it:

# %%
scores_demo = np.zeros((1, 1, 4, 4))  # one example, one head, T = S = 4
for name, mask in (("j <= i", np.tri(4, dtype=bool)), ("j < i", np.tri(4, k=-1, dtype=bool))):
    try:
        A_demo, _ = masked_softmax_forward(scores_demo, mask[None, None])
        print(f"{name}: row 0 of A = {A_demo[0, 0, 0]}")
    except ValueError as err:
        print(f"{name}: ValueError: {err}")

# %% [markdown]
# A hand-written softmax would not raise: it would fill row 0 with NaN (0/0), and the NaN would
# spread through $A V$ into every later layer. And no position would ever read its own token.
#
# **`MultiHeadAttention`.** The module, with our weights copied in, gives our outputs and weights;
# its backward gives the gradients your exercise computes:

# %%
mha = MultiHeadAttention(D, n, rng=np.random.default_rng(1))
for name, value in p.items():
    mha.params[name][...] = value
out_lib, A_lib = mha(query, memory, memory, key_lengths=key_lengths)
assert np.allclose(out_lib, out) and np.allclose(A_lib, A)

dout = np.random.default_rng(2).standard_normal((B, T, D))
mha.zero_grad()
mha(query, memory, memory, key_lengths=key_lengths)
dquery_lib, dkey_lib, dvalue_lib = mha.backward(dout)
print("largest |db_k| entry:", f"{np.abs(mha.grads['b_k']).max():.1e}",
      "| largest |db_q| entry:", f"{np.abs(mha.grads['b_q']).max():.1e}")
if result.passed:
    mine = my_multihead_attention_backward(dout, cache)
    lib = (dquery_lib, dkey_lib, dvalue_lib, *(mha.grads[name] for name in p))
    assert all(np.allclose(a, b) for a, b in zip(mine, lib))
    print("your 11 gradients = MultiHeadAttention.backward's")

# %% [markdown]
# $db_k$ is zero up to rounding (its largest entry 5.6e-17, against 2.2e-01 for $db_q$). Why?
# Adding $b_k$ to every key adds the same number
# $q_i \cdot b_k$ to every score of row $i$, and a softmax does not change when a whole row is
# shifted. The key bias cannot change the output, so its gradient is 0; the same holds in
# PyTorch, whose `in_proj_bias` contains it.
#
# **Causal self-attention.** The exercise graded your backward on padded cross-attention. Because
# the mask lives in $A$, it is just as right for causal self-attention on a padded batch ($T = S$,
# one sequence `x` for query, key and value): the gradient checker says so, on the forward of
# section 2 with the library's causal mask (`check_function` perturbs each of the 11 arrays; in a
# self-attention layer, the input's gradient is `dquery + dkey + dvalue`).

# %%
lengths_self = np.array([4, 2, 3])
causal_mask = np.broadcast_to(attention_mask(lengths_self, B, T, T, causal=True)[:, 0], (B, T, T))


def causal_forward(query, key, value, W_q, W_k, W_v, W_o, b_q, b_k, b_v, b_o):
    weights = dict(zip(p, (W_q, W_k, W_v, W_o, b_q, b_k, b_v, b_o)))  # p's names, in order
    return mha_forward(query, key, value, weights, causal_mask)


x_self = [rng.standard_normal((B, T, D)) for _ in range(3)]  # 3 arrays: each perturbed alone
if result.passed:
    causal_check = check_function(causal_forward, my_multihead_attention_backward, *x_self,
                                  *p.values(), tol=TOL_STEP)
    print("your backward, causal self-attention:", causal_check)
    assert causal_check.passed
for causal_ in (False, True):
    lib_check = check_module(mha, *x_self, key_lengths=lengths_self, causal=causal_)
    print(f"MultiHeadAttention, causal={causal_}:", lib_check)
    assert lib_check.passed and lib_check.max_error < TOL_LAYER

# %% [markdown]
# **Divided by the batch size.** A public NumPy Transformer (AkiRusProd/numpy-transformer,
# `transformer/activations.py`) divides the output of its softmax backward by the batch size.
# The gradient checker catches that only if the batch has more than one example, which is why the
# exercise grades at B = 3. The same mistake put into the library's module (it scales $dS$ by
# `self.scale`; we divide that by B during the backward), checked at B = 1 and at B = 3:

# %%
class DividedByBatch(MultiHeadAttention):
    def backward(self, dout, dattn=None):
        scale, self.scale = self.scale, self.scale / dout.shape[0]  # dS / B
        try:
            return super().backward(dout, dattn)
        finally:
            self.scale = scale


bad = DividedByBatch(D, n, rng=np.random.default_rng(1))
for batch in (1, 3):
    arrays = [a[:batch] for a in x_self]
    bad_check = check_module(bad, *arrays, key_lengths=lengths_self[:batch])
    print(f"B = {batch}: {bad_check}")
    assert bad_check.passed == (batch == 1)
print("wrong at B = 3:", sorted(bad_check.failed))

# %% [markdown]
# At B = 1 the division is by 1 and the check passes: a test at batch size 1 cannot see this bug.
# At B = 3 every gradient that goes through the scores fails, by a factor of 3; the values'
# path ($W_v$, $b_v$, `value`) and $W_o$, $b_o$ do not go through the softmax and pass. ($b_k$
# passes too: its true gradient is 0, and a third of 0 is 0.)
#
# ## 6. Parameters, and swapping heads
#
# **Predict.** (a) `MultiHeadAttention(6, 1)`, `(6, 2)`, `(6, 3)` and `(6, 6)`: which has the
# most parameters? (b) Take head 0's and head 1's blocks of columns and swap them in $W_q$,
# $W_k$, $W_v$, $b_q$, $b_k$, $b_v$, and swap the same blocks of **rows** of $W_o$ ($b_o$
# belongs to no head and stays). What happens to the output? To the weights $A$? (c) And if
# you swap the blocks in $W_q$ only?

# %%
for heads in (1, 2, 3, 6):
    m = MultiHeadAttention(D, heads, rng=np.random.default_rng(3))
    count = sum(v.size for v in m.params.values())
    print(f"n = {heads}: d = {D // heads}, {count} parameters "
          f"(4·D² + 4·D = {4 * D * D + 4 * D})")

swap = np.r_[d:2 * d, 0:d]  # columns of head 1, then head 0
swapped = MultiHeadAttention(D, n, rng=np.random.default_rng(1))
for name, value in p.items():
    if name == "W_o":
        swapped.params[name][...] = value[swap]  # rows: merged's columns came from the heads
    elif name == "b_o":
        swapped.params[name][...] = value  # the output's bias belongs to no head
    else:
        swapped.params[name][...] = value[..., swap]  # columns of W_q, W_k, W_v; b_q, b_k, b_v
out_sw, A_sw = swapped(query, memory, memory, key_lengths=key_lengths)
print("all swapped, max |out change|:", f"{np.abs(out_sw - out).max():.1e}",
      "| A's heads swapped:", np.allclose(A_sw[:, ::-1], A))
swapped.params["W_o"][...] = p["W_o"]
for name in ("W_k", "W_v", "b_q", "b_k", "b_v"):
    swapped.params[name][...] = p[name]  # back to the original: only W_q stays swapped
out_q, _ = swapped(query, memory, memory, key_lengths=key_lengths)
print("W_q only, max |out change|:", f"{np.abs(out_q - out).max():.1e}")

# %% [markdown]
# (a) All four have 168 parameters: the heads cut the same four $(D, D)$ matrices into blocks;
# more heads means smaller heads ($d = D / n$), not more weights. (b) Nothing changes in the
# output except rounding (1.1e-16: the heads' contributions to $\text{merged}\,W_o$ are added
# in a different order), and $A$'s two heads trade places: the heads are unordered, and their labels
# mean nothing. Trained heads differ because their weights do, not because of their index.
# (c) Swapping the blocks of $W_q$ alone makes head 0 compare head 1's queries with head 0's
# keys: a different function, and the output moves (by up to 2.4e-01).
#
# ## 7. Positions
#
# **Without positions, order is invisible.** Lesson 13 shuffled a sentence for one head; the
# same holds for $n$ heads. Take 我喜欢苹果 and 苹果喜欢我 (the same five characters, in another
# order; random embeddings, E = D = 6) through `mha` as self-attention:

# %%
s1, s2 = tokenize("我喜欢苹果", "zh"), tokenize("苹果喜欢我", "zh")
vocab = Vocab.build([s1, s2])
emb = ta.Embedding(len(vocab), D, rng=np.random.default_rng(4), pad_id=Vocab.pad_id)
x1, x2 = emb(np.array([vocab.encode(s1)])), emb(np.array([vocab.encode(s2)]))  # (1, 5, D) each
perm = [s1.index(ch) for ch in s2]  # s2 = s1 reordered: s2[t] = s1[perm[t]]
o1, _ = mha(x1, x1, x1)
o2, _ = mha(x2, x2, x2)
assert np.allclose(o2, o1[:, perm])  # permuting the input permutes the output, nothing else
print("output at 我: sentence 1 (position 0) vs sentence 2 (position 4), max difference:",
      f"{np.abs(o1[0, 0] - o2[0, 4]).max():.1e}")

# %% [markdown]
# Self-attention without a mask is **permutation-equivariant**: shuffle the input rows and the
# output rows are shuffled the same way. 我 gets the same output whether it is the subject or the
# object (the 2.2e-16 is rounding: the same sums, added in another order). (A causal mask
# does see order, through which positions may be read; an encoder has no such mask.)
#
# **The sinusoidal encoding** (Vaswani et al. §3.5; `docs/equations.md` §7.4) adds to the
# embedding at position $p$ (counted from 0) a fixed vector $PE[p]$ of size $D$, made of sine and
# cosine pairs at $D/2$ frequencies:
#
# $$PE[p, 2i] = \sin(p\,\omega_i), \qquad PE[p, 2i+1] = \cos(p\,\omega_i), \qquad
# \omega_i = 1 / 10000^{2i/D}$$
#
# The wavelengths $2\pi / \omega_i$ grow geometrically, from $2\pi$ for $i = 0$ towards
# $10000 \cdot 2\pi$. By hand, for 64 positions and $D = 32$:

# %%
L_pe, D_pe = 64, 32
positions = np.arange(L_pe)[:, None]  # (L, 1)
omega = 1.0 / 10000 ** (np.arange(0, D_pe, 2) / D_pe)  # (D/2,): ω_0 = 1, ..., ω_15
PE = np.zeros((L_pe, D_pe))
PE[:, 0::2] = np.sin(positions * omega)  # even columns: sines
PE[:, 1::2] = np.cos(positions * omega)  # odd columns: cosines
print("wavelengths 2π/ω_i of pairs 0, 1, 2, 7, 15:",
      np.round(2 * np.pi / omega[[0, 1, 2, 7, 15]], 1))

from tinyattn.layernorm import PositionalEncoding, sinusoid_table

assert np.allclose(PE, sinusoid_table(L_pe, D_pe))
assert np.allclose(PositionalEncoding(D_pe, max_len=L_pe).table, PE)
print("by hand = sinusoid_table = PositionalEncoding.table")

# %%
fig, axes = plt.subplots(1, 2, figsize=(12, 4.8), layout="constrained")
im = axes[0].imshow(PE, aspect="auto", cmap="RdBu_r", vmin=-1, vmax=1, interpolation="nearest")
axes[0].set_xlabel("dimension c (even c: sin, odd c: cos; frequency falls to the right)")
axes[0].set_ylabel("position p")
axes[0].set_title(f"PE[p, c], {L_pe} positions, D = {D_pe}")
fig.colorbar(im, ax=axes[0], label="value")
im2 = axes[1].imshow(PE @ PE.T, cmap="viridis", interpolation="nearest")
axes[1].set_xlabel("position q")
axes[1].set_ylabel("position p")
axes[1].set_title("PE[p] · PE[q]: the same along every diagonal p − q = const")
fig.colorbar(im2, ax=axes[1], label="dot product")
plt.show()

# %% [markdown]
# Left: each position's row is a distinct pattern of signs, changing fastest in the first columns
# (a period of 6.3 positions) and hardly at all in the last ones (every position in those
# columns is near $\sin 0 = 0$ or $\cos 0 = 1$ over 64 positions). Right: the dot product of two
# positions' encodings depends only on their distance: constant along every diagonal, largest
# ($D/2 = 16$) on the main diagonal.
#
# **Relative offsets are linear.** Vaswani et al. chose sines because they expected them to let a
# model attend by relative position: for any fixed offset $k$, $PE_{p+k}$ is a linear function
# of $PE_p$. Each pair rotates: with $\theta = k\,\omega_i$,
# $\sin((p+k)\omega_i) = \sin(p\omega_i)\cos\theta + \cos(p\omega_i)\sin\theta$ and
# $\cos((p+k)\omega_i) = \cos(p\omega_i)\cos\theta - \sin(p\omega_i)\sin\theta$. In row-vector
# form, $PE[p+k] = PE[p]\, M_k$ with $M_k$ block-diagonal, one $2 \times 2$ block per pair:
#
# $$M_k = \text{diag}\big(R(k\omega_0), \dots, R(k\omega_{D/2-1})\big), \qquad
# R(\theta) = \begin{pmatrix} \cos\theta & -\sin\theta \\ \sin\theta & \cos\theta \end{pmatrix}$$
#
# $M_k$ depends on $k$, not on $p$: one matrix shifts every position by $k$. Checked for all
# positions at once:

# %%
def shift_matrix(k, omega):
    """M_k (D, D): PE[p + k] = PE[p] @ M_k for every p."""
    M = np.zeros((2 * len(omega), 2 * len(omega)))
    for i, w in enumerate(omega):
        c, s = np.cos(k * w), np.sin(k * w)
        M[2 * i:2 * i + 2, 2 * i:2 * i + 2] = [[c, -s], [s, c]]  # rows: (sin, cos) of p
    return M


for shift in (1, 3, 10):
    M = shift_matrix(shift, omega)
    err = np.abs(PE[shift:] - PE[:-shift] @ M).max()  # every p from 0 to L − 1 − k at once
    assert err < 1e-12 and np.allclose(M @ M.T, np.eye(D_pe))  # a rotation: orthogonal
    print(f"k = {shift:2d}: max |PE[p + k] − PE[p] M_k| over all p = {err:.1e}")
dots = [PE[q] @ PE[q + 3] for q in (0, 10, 40)]
print("PE[p] · PE[p + 3] for p = 0, 10, 40:", np.round(dots, 6))

# %% [markdown]
# A query projection $W_q$ and a key projection $W_k$ are linear maps too, so a head can, in
# principle, learn to compare position $p$ with position $p + k$: the relation "$k$ to the right"
# is the same matrix wherever it occurs (the errors above, at most 4.1e-15, are rounding). And
# since each $M_k$ is a rotation, $PE[p] \cdot PE[p+k] =
# \sum_i \cos(k\,\omega_i)$, the same for every $p$ (12.272 for $k = 3$): the diagonals of the
# right-hand plot.
#
# **Predict.** Add the encoding to the two sentences' embeddings. Will 我 still get the same
# output in both sentences? Will the outputs of 苹果喜欢我 still be a shuffle of 我喜欢苹果's?

# %%
pe = PositionalEncoding(D, max_len=16)
x1_pe, x2_pe = pe(x1), pe(x2)  # x + PE[:5]
o1_pe, _ = mha(x1_pe, x1_pe, x1_pe)
o2_pe, _ = mha(x2_pe, x2_pe, x2_pe)
gap = np.abs(o1_pe[0, 0] - o2_pe[0, 4]).max()
print(f"with positions: output at 我, sentence 1 vs sentence 2, max difference: {gap:.3f}")
print("sentence 2's outputs a shuffle of sentence 1's:", np.allclose(o2_pe, o1_pe[:, perm]))
assert gap > 1e-3 and not np.allclose(o2_pe, o1_pe[:, perm])

# %% [markdown]
# With positions, 我 at position 0 and 我 at position 4 are different inputs (their outputs now
# differ by up to 0.228), and the outputs are no longer a shuffle of each other: the model can
# now tell the subject from the object, if its weights learn to. The encoding has no parameters
# (its backward is $dx = dy$) and works for any length up to `max_len`.
#
# **To remember.** $n$ heads are one $(D, D)$ projection cut into $n$ blocks of $d = D / n$
# columns: split = reshape (B, T, n, d) then transpose (B, n, T, d), merge = its inverse; a
# reshape alone is legal and wrong. Each head scales by $1/\sqrt{d}$. The mask is True where a
# key may be read: $j < L_b$ and, when causal, $j \le i$, the diagonal included. The backward is
# lesson 13's batched over examples and heads, preceded by the split and followed by the merge
# of the gradients; it needs no mask code (A is 0 where masked) and no division by the batch
# size. The parameter count, $4D^2 + 4D$, does not depend on $n$, and the heads are unordered.
# Without positions, self-attention is permutation-equivariant; sinusoidal encodings add the
# position, and a shift by $k$ is one rotation $M_k$ for every $p$.
#
# **Try it yourself.** Replace the sinusoids by learned position embeddings (an `Embedding` of
# positions, as in BERT) and list what you lose: the fixed $M_k$, lengths beyond the training
# set. Check with `check_module` that `PositionalEncoding`'s backward is the identity. Give
# `mha` a second set of queries of another length and check that cross-attention needs
# `causal=False` (what does the library say if you ask for `causal=True`?).
#
# **Next.** Lesson 15: layer normalisation and the Transformer layers, the residual
# connections and the feed-forward network around these attentions.
