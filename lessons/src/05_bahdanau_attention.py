# Lesson 05 source, in the percent format of lessons/build.py (no solution blocks).
# Built and executed by lessons/build.py into lessons/05_bahdanau_attention.ipynb.

# %% [markdown]
# # Lesson 05 — Bahdanau attention
#
# **Goal.** A plain encoder–decoder squeezes the whole source sentence through one fixed-size
# vector $c$. Bahdanau attention gives the decoder a *new* context vector $c_i$ (上下文向量) at
# every output step $i$: a weighted average of all the encoder's states, whose weights
# (注意力权重) the decoder computes from what it has produced so far. In this lesson you will
#
# 1. write out the three equations (scores $e_{ij}$, weights $\alpha_{ij}$, context $c_i$);
# 2. compute them by hand in NumPy on tiny arrays and check every number against
#    `tinyattn.BahdanauAttention`;
# 3. see why padded source positions get a weight of exactly 0;
# 4. derive the backward pass and write two pieces of it yourself, the masked softmax's and
#    the additive score's (exercises `masked_softmax_backward`, `bahdanau_score_backward`);
# 5. write one full decoder step, forward and backward: context, GRU input
#    $[E y_{i-1} ; c_i]$, new state, output layer (exercises `bahdanau_decoder_step`,
#    `bahdanau_decoder_step_backward`);
# 6. train a small attention model that rewrites dates ("the 6th of december 1960" →
#    "1960-12-06") and look at its alignment (对齐) heatmaps.
#
# **Sources.** `docs/equations.md` §4. Document 003 (`docs/sources.md`, "从 Seq2seq 到 Attention
# 模型到 Self Attention（一）"), its "Attention model" section, gives the equations for $c_i$,
# $\alpha_{ij}$ and $e_{ij}$ (its formula images are missing, so we write them out here). The
# paper it cites: D. Bahdanau, K. Cho, Y. Bengio, *Neural Machine Translation by Jointly Learning
# to Align and Translate*, ICLR 2015 (arXiv:1409.0473), §3.1 and Appendix A.
#
# The whole notebook runs in about a minute on two CPU cores.

# %%
import re
import time
from collections import Counter

import numpy as np

import tinyattn as ta
import tinyattn.exercises as ex
from tinyattn.attention import BahdanauAttention, additive_score_forward
from tinyattn.data import Vocab
from tinyattn.cli.evaluation import decode, evaluate_examples, format_metrics, teacher_forced
from tinyattn.gradcheck import TOL_LAYER, check_module
from tinyattn.gru import GRU, gru_step_forward
from tinyattn.layers import Linear
from tinyattn.metrics import alignment_accuracy, attention_entropy
from tinyattn.cli.run import DataSpec, Run, encode_pairs, load_examples
from tinyattn.plot import plot_alignment

np.set_printoptions(precision=3, suppress=True)

# %% [markdown]
# ## 1. The equations
#
# Source positions are $j = 1..S$, target (output) steps $i = 1..T$. The encoder is
# bidirectional, so each source position has an **annotation**
# $h_j = [\overrightarrow{h}_j ; \overleftarrow{h}_j]$ of size $H_k = 2H$ that describes the
# token *and* its surroundings. The decoder's state before step $i$ is $s_{i-1}$, of size $H_q$. For every step $i$:
#
# $$e_{ij} = v_a \cdot \tanh\left(s_{i-1} W_a + h_j U_a\right)$$
#
# $$\alpha_{ij} = \frac{\exp(e_{ij})}{\sum_{k=1}^{S} \exp(e_{ik})}$$
#
# $$c_i = \sum_{j=1}^{S} \alpha_{ij}\, h_j$$
#
# $e_{ij}$ is the **score** of source position $j$ for step $i$ (any real number); $\alpha_{ij}$
# is the **attention weight**, a softmax over $j$ (each row sums to 1, padded positions get 0);
# $c_i$ is the **context vector**, the weighted average of the annotations.
#
# Then the decoder takes its step and predicts (`docs/equations.md` §4):
# $s_i = f(s_{i-1}, [E y_{i-1} ; c_i])$ and
# $p(y_i \mid y_{<i}, x) = \text{softmax}([s_i ; c_i ; E y_{i-1}] W_o + b_o)$.
#
# | maths | meaning | in the code | shape |
# |---|---|---|---|
# | $s_{i-1}$ | decoder state before step $i$ (the *query*) | `query` | (B, Hq) |
# | $h_j$ | encoder annotation of position $j$ | `enc_hs[:, j]` | (B, S, Hk) for all $j$ |
# | $W_a$, $U_a$, $v_a$ | the parameters | `attn.params["W_a"]`, `"U_a"`, `"v_a"` | (Hq, A), (Hk, A), (A,) |
# | $e_{ij}$ | scores | `scores` | (B, S) per step |
# | $\alpha_{ij}$ | weights | `alpha` | (B, S) per step, (B, T, S) for all steps |
# | $c_i$ | context | `context` | (B, Hk) per step |
#
# **Row vectors.** The paper writes $W_a s_{i-1} + U_a h_j$ with column vectors; tinyattn keeps
# one example per row and writes `s_prev @ W_a + h_j @ U_a`, with `W_a` of shape (Hq, A). It is
# the same maths transposed.
#
# **What the documents say.** Document 003 describes $c_i$ as the input sequence "weighted and
# summed" with α ("加权求和"), and $e_{ij}$ as measuring the relation between the decoder's hidden
# state $s_{i-1}$ and the hidden state $h_j$ of the $j$-th input word; the function that computes
# it is the paper's *alignment model* $a(s_{i-1}, h_j)$, and the matrix of all α is the
# alignment ("align") between input and output words. Two words to keep apart: document 003
# calls α the "attention score"; this lesson says **score** only for $e_{ij}$ (any real number)
# and **weight** (注意力权重, document 000's term) for $\alpha_{ij}$ (between 0 and 1, each row
# sums to 1).
#
# **Corrections to document 000** (`docs/sources.md`). Its score
# "$v^\top \tanh([W h_i ; W h_j])$" garbles the formula above: the decoder state and the encoder
# state each get *their own* matrix, and the two projections are **added** inside the tanh
# (hence the name *additive attention*). There is no extra `alpha` hyper-parameter: the context
# is simply the α-weighted sum. And the weight matrix is T × S (one row per output step, one
# column per input position), not input length × input length.
#
# Two facts shape the code:
#
# - $h_j U_a$ does not depend on $i$, so it is computed **once per source batch**
#   (`attn.prepare`), not once per decoder step.
# - The query is $s_{i-1}$, the state *before* the step: Bahdanau's decoder attends first and
#   then runs its RNN cell on $[E y_{i-1} ; c_i]$. (Luong's attention, `docs/equations.md` §5,
#   attends *after* the cell step, with $s_i$.)

# %% [markdown]
# ## 2. One decoder step by hand
#
# A batch of B = 2 sources of length S = 4; the second source has only 3 real tokens, so its
# position 3 (counting from 0) is padding. Sizes are tiny and all different, so a transposed
# matrix cannot go unnoticed: Hq = 3, Hk = 4, A = 5. We build the library's module in float64
# and copy its parameters; everything below is plain NumPy on those copies.

# %%
B, S, Hq, Hk, A = 2, 4, 3, 4, 5
rng = np.random.default_rng(0)
attn = BahdanauAttention(Hq, Hk, A, rng=rng)  # float64 by default
W_a, U_a, v_a = (attn.params[name].copy() for name in ("W_a", "U_a", "v_a"))
assert W_a.shape == (Hq, A) and U_a.shape == (Hk, A) and v_a.shape == (A,)

lengths = np.array([4, 3])
src_mask = np.arange(S)[None, :] < lengths[:, None]  # (1, S) < (B, 1) -> (B, S): True = real
enc_hs = rng.standard_normal((B, S, Hk))  # the annotations h_j
enc_hs[~src_mask] = 0.0  # a tinyattn encoder outputs exactly 0 at pads
s_prev = rng.standard_normal((B, Hq))  # the decoder state s_{i-1}

print("src_mask:\n", src_mask)
print("enc_hs", enc_hs.shape, " s_prev", s_prev.shape)

# %% [markdown]
# **Step 1 — project the keys once.** $h_j U_a$ for every $j$ at once: (B, S, Hk) @ (Hk, A).
# The library does the same in `prepare`, which also checks the mask and keeps what the decoder
# steps need.

# %%
keys = enc_hs @ U_a  # (B, S, Hk) @ (Hk, A) -> (B, S, A)
assert keys.shape == (B, S, A)

prepared = attn.prepare(enc_hs, src_mask)
assert np.allclose(keys, prepared.keys)
print("keys h_j U_a:", keys.shape)

# %% [markdown]
# **Step 2 — the scores $e_{ij}$ (分数).** First literally as written, one number at a time;
# then vectorised: project the query once, $s_{i-1} W_a$ of shape (B, A), broadcast it against
# all S keys, tanh, and a dot product with $v_a$.

# %%
e_loop = np.zeros((B, S))
for b in range(B):
    for j in range(S):
        e_loop[b, j] = v_a @ np.tanh(s_prev[b] @ W_a + enc_hs[b, j] @ U_a)  # a scalar

q = s_prev @ W_a  # (B, Hq) @ (Hq, A) -> (B, A)
feats = np.tanh(q[:, None, :] + keys)  # (B, 1, A) + (B, S, A) -> (B, S, A)
e = feats @ v_a  # (B, S, A) @ (A,) -> (B, S)
assert q.shape == (B, A) and feats.shape == (B, S, A) and e.shape == (B, S)
assert np.allclose(e, e_loop)

# the library's score function takes (B, T, A) queries: here T = 1
scores_lib, _ = additive_score_forward(q[:, None, :], prepared.keys, v_a)  # (B, 1, S)
assert np.allclose(scores_lib[:, 0], e)
print("scores e_ij (rows: examples, columns: source positions j):\n", e)

# %% [markdown]
# Look at `e[1, 3]`, the score of the second example's pad: an ordinary number. The score
# function knows nothing about padding. Masking happens in the softmax.
#
# **Step 3 — the weights $\alpha_{ij}$.** A softmax over $j$ with the pads masked: a masked score
# becomes $-\infty$, and $\exp(-\infty) = 0$ *exactly*. (Subtracting the row's maximum before
# `exp` does not change the result and avoids overflow.)

# %%
e_masked = np.where(src_mask, e, -np.inf)  # (B, S)
w = np.exp(e_masked - e_masked.max(axis=1, keepdims=True))  # exp(-inf) = 0.0
alpha = w / w.sum(axis=1, keepdims=True)  # (B, S)
assert alpha.shape == (B, S)
assert np.allclose(alpha.sum(axis=1), 1.0)
assert alpha[1, 3] == 0.0  # exactly zero, not just small
print("weights alpha_ij:\n", alpha)

# %% [markdown]
# **Step 4 — the context $c_i = \sum_j \alpha_{ij} h_j$**, again as a loop and vectorised, and
# then the whole step through the library: `attn.step(query, prepared)` returns the context, the
# weights and a cache for the backward pass.

# %%
c_loop = np.zeros((B, Hk))
for b in range(B):
    for j in range(S):
        c_loop[b] += alpha[b, j] * enc_hs[b, j]

c = np.einsum("bs,bsk->bk", alpha, enc_hs)  # Σ_j alpha[b, j] * enc_hs[b, j, :]
assert c.shape == (B, Hk)
assert np.allclose(c, c_loop)

context_lib, alpha_lib, _ = attn.step(s_prev, prepared)
assert context_lib.shape == (B, Hk) and alpha_lib.shape == (B, S)
assert np.allclose(alpha_lib, alpha)
assert np.allclose(context_lib, c)
print("context c_i:\n", c)

# %% [markdown]
# ## 3. Pads get exactly zero weight
#
# Because the mask acts on the scores *before* the softmax, a pad gets weight exactly 0, and the
# other weights of its row are renormalised among the real tokens. Consequences worth checking:
# whatever sits in the encoder output at a pad cannot change the context, and no gradient flows
# back into it. Without the mask, the pad would take a share of the weight.
#
# **Predict.** We write 100 into every entry of the second example's pad annotation `enc_hs[1, 3]`.
# Does its context $c_i$ change? And what weight would the pad get if we forgot the mask: close to
# 0, or about as much as a real token?

# %%
garbage = enc_hs.copy()
garbage[1, 3] = 100.0  # put anything at the second example's pad
ctx_g, alpha_g, _ = attn.step(s_prev, attn.prepare(garbage, src_mask))
assert alpha_g[1, 3] == 0.0
assert np.array_equal(alpha_g, alpha_lib) and np.allclose(ctx_g, context_lib)
print("context with garbage at the pad equals the original:", np.allclose(ctx_g, context_lib))

no_mask = np.exp(e - e.max(axis=1, keepdims=True))
no_mask /= no_mask.sum(axis=1, keepdims=True)
print(f"weight of the pad without the mask: {no_mask[1, 3]:.3f}   with the mask: "
      f"{alpha_lib[1, 3]}")

# %% [markdown]
# The context does not move: the pad's score is masked before the softmax, so its weight is
# exactly 0 and $0 \times 100$ adds nothing. Forget the mask and the pad takes a weight of the
# size of a real token's (0.244 above, against the real tokens' weights in step 3): its score
# was an ordinary number, and the pad's annotation would then be averaged into $c_i$ like a
# word.

# %% [markdown]
# ## 4. All steps at once: the T × S weight matrix
#
# In a real decoder the steps run one after another, because $s_{i-1}$ depends on $c_{i-1}$.
# When the queries are given, though (here: random, T = 3), the module can attend with all of
# them in one call, `attn(queries, enc_hs, src_mask)`. That is the form the gradient check below
# uses. The result has one row per target step and one column per source position; every row
# sums to 1 and every pad column is 0.

# %%
T = 3
queries = rng.standard_normal((B, T, Hq))  # s_0, s_1, s_2 for i = 1, 2, 3
context_all, alpha_all = attn(queries, enc_hs, src_mask)
assert context_all.shape == (B, T, Hk) and alpha_all.shape == (B, T, S)

# by hand: every query against every key, (B, T, 1, A) + (B, 1, S, A) -> (B, T, S, A)
feats_all = np.tanh((queries @ W_a)[:, :, None, :] + keys[:, None, :, :])
e_all = feats_all @ v_a  # (B, T, S)
e_all = np.where(src_mask[:, None, :], e_all, -np.inf)  # mask (B, 1, S) broadcast over T
w_all = np.exp(e_all - e_all.max(axis=2, keepdims=True))
alpha_hand = w_all / w_all.sum(axis=2, keepdims=True)  # (B, T, S)
context_hand = alpha_hand @ enc_hs  # (B, T, S) @ (B, S, Hk) -> (B, T, Hk)
assert np.allclose(alpha_all, alpha_hand) and np.allclose(context_all, context_hand)

assert np.allclose(alpha_all.sum(axis=2), 1.0)
assert (alpha_all[1, :, 3] == 0.0).all()
print("alpha of example 1, T x S (rows: target steps i, columns: source positions j):\n",
      alpha_all[1])

# %% [markdown]
# ## 5. The backward pass, and two pieces of it for you
#
# The backward pass runs the same equations in reverse (`docs/equations.md` §4, "Backward").
# Write $g_i = \partial L/\partial c_i$ for the upstream gradient (`dcontext`) and
# $f_{ij} = \tanh(s_{i-1}W_a + h_jU_a)$. Then:
#
# - the weights get $\partial L/\partial \alpha_{ij} = g_i \cdot h_j$;
# - the softmax turns these into the scores' gradient. Each $\alpha_{ik}$ depends on *every*
#   score of its row, $\partial \alpha_{ik}/\partial e_{ij} = \alpha_{ik}(\delta_{jk} - \alpha_{ij})$,
#   so
#   $\partial L/\partial e_{ij} = \sum_k \frac{\partial L}{\partial \alpha_{ik}}\,\alpha_{ik}(\delta_{jk} - \alpha_{ij})
#   = \alpha_{ij}\left(\frac{\partial L}{\partial \alpha_{ij}} - \sum_k \alpha_{ik} \frac{\partial L}{\partial \alpha_{ik}}\right)$,
#   exactly 0 at a pad, where $\alpha_{ij} = 0$ (`docs/equations.md` §8.2);
# - the tanh passes $\delta_{ij} = (\partial L/\partial e_{ij})\, v_a \odot (1 - f_{ij}^2)$,
#   the derivative read from the output $f_{ij}$;
# - the query gets $\partial L/\partial s_{i-1} = (\sum_j \delta_{ij})\, W_a^\top$: the
#   projected query $s_{i-1} W_a$ was added to every key, so its gradient sums over $j$;
# - each annotation gets
#   $\partial L/\partial h_j = (\sum_i \delta_{ij})\, U_a^\top + \sum_i \alpha_{ij}\, g_i$,
#   the first term through its key $h_j U_a$ (summed over the steps $i$ that read it), the
#   second straight through the context;
# - the parameters: $\partial L/\partial v_a = \sum_{ij} (\partial L/\partial e_{ij})\, f_{ij}$,
#   $\partial L/\partial W_a = \sum_i s_{i-1}^\top \sum_j \delta_{ij}$,
#   $\partial L/\partial U_a = \sum_j h_j^\top \sum_i \delta_{ij}$.
#
# The library splits this into pure functions: `masked_softmax_backward` (the second bullet)
# and `additive_score_backward` (the tanh and $v_a$, given the projections
# $q_i = s_{i-1} W_a$ and $k_j = h_j U_a$); the module adds the products with $W_a$ and $U_a$.
# You write the first two. `ex.check(name, fn)` runs the library's forward on small random
# float64 arrays, your backward on random upstream gradients, and the gradient checker of lesson
# 00 on the result: it never compares with a hidden solution, and when a gradient is wrong it
# names the likely mistake from the numbers.
#
# ### Exercise: `masked_softmax_backward`
#
# `dscores = masked_softmax_backward(dalpha, cache)`, with `cache = (alpha, axis)`: `alpha` of
# shape (B, T, S) with exact zeros at pads, and the axis the softmax normalised over. First, a
# classic mistake: keep only the diagonal of the Jacobian, $\alpha_{ij}(1 - \alpha_{ij})$, as
# if $\alpha_{ij}$ depended on $e_{ij}$ alone (the derivative of a sigmoid).

# %%
def softmax_backward_diagonal(dalpha, cache):
    alpha, axis = cache
    return alpha * (1.0 - alpha) * dalpha  # BUG: ∂α_ij/∂e_ij only; α_ik depends on e_ij too


diagonal = ex.check("masked_softmax_backward", softmax_backward_diagonal)
assert diagonal.status == "failed"

# %% [markdown]
# The error is of the order of the gradient itself, and the "likely" line names the mistake.
# The pads did not give it away: $\alpha(1-\alpha)$ is 0 where $\alpha$ is, so this version
# leaks nothing into the pads and is wrong everywhere else. Now yours: replace the `raise` line
# (one line of NumPy does it), then run the cell after it.

# %%
def my_masked_softmax_backward(dalpha, cache):
    """Backward of ``alpha = softmax(where(mask, scores, -inf), axis)``.

    Returns ``dscores``, shaped like ``alpha``.
    """
    alpha, axis = cache
    # BEGIN SOLUTION
    return alpha * (dalpha - np.sum(alpha * dalpha, axis=axis, keepdims=True))
    # END SOLUTION

# %%
mine_softmax = ex.check("masked_softmax_backward", my_masked_softmax_backward)
assert mine_softmax.status in ("passed", "not implemented"), "read the report above"

# %% [markdown]
# ### Exercise: `bahdanau_score_backward`
#
# `dq_proj, dk_proj, dv_a = additive_score_backward(dscores, cache)`, the backward of
# `additive_score_forward(q_proj, k_proj, v_a)` of section 2: `q_proj` (B, T, A) holds the
# projected queries $s_{i-1} W_a$, `k_proj` (B, S, A) the keys $h_j U_a$, and the cache is
# `(feats, v_a)` with `feats` $= f_{ij}$ of shape (B, T, S, A). Hints: `dscores[..., None] * v_a`
# broadcasts (B, T, S, 1) against (A,); a query was broadcast over the S keys and a key over the
# T queries, so each gradient sums over the axis it was broadcast along.

# %%
def my_additive_score_backward(dscores, cache):
    """Backward of ``scores[b, t, s] = v_a · tanh(q_proj[b, t] + k_proj[b, s])``.

    ``feats (B, T, S, A)`` is the tanh. Returns ``dq_proj (B, T, A),
    dk_proj (B, S, A), dv_a (A,)``.
    """
    feats, v_a = cache
    # BEGIN SOLUTION
    dfeats = dscores[..., None] * v_a * (1.0 - feats * feats)  # (B, T, S, A), tanh' from f
    dv_a = np.einsum("bts,btsa->a", dscores, feats)
    return dfeats.sum(axis=2), dfeats.sum(axis=1), dv_a  # q over S, k over T
    # END SOLUTION

# %%
mine_score = ex.check("bahdanau_score_backward", my_additive_score_backward)
assert mine_score.status in ("passed", "not implemented"), "read the report above"

# %% [markdown]
# ### The whole module
#
# From here on, the library's backward (your two functions' twins). `check_module` compares it
# with centered finite differences, for every entry of the queries, the encoder states and the
# three parameters, in float64. **What to expect:** a correct backward gives relative errors
# around $10^{-10}$–$10^{-8}$, far below the tolerance for a layer, $10^{-6}$ (`TOL_LAYER`); a
# wrong one is off by about the size of the gradient itself, an error near $10^{-1}$–$1$.

# %%
result = check_module(attn, queries, enc_hs, src_mask)
print(result)
assert result.passed and result.max_error < TOL_LAYER

# no gradient reaches the pad's encoder state
attn.zero_grad()
attn(queries, enc_hs, src_mask)
dqueries, denc_hs = attn.backward(rng.standard_normal((B, T, Hk)))
assert dqueries.shape == queries.shape and denc_hs.shape == enc_hs.shape
assert not denc_hs[1, 3].any()
print("gradient at the pad:", denc_hs[1, 3])

# %% [markdown]
# ## 6. One full decoder step
#
# ![Which state scores the annotations, and when: Bahdanau's decoder and Luong's](../docs/images/bahdanau_vs_luong.png)
#
# Look at which state the arrow into the scores leaves from. Bahdanau's decoder scores the
# annotations with $s_{i-1}$, the state *before* the step, and only then runs its cell on
# $[E y_{i-1} ; c_i]$; Luong's (lesson 06) runs the cell first and scores with the new state.
# One step of `BahdanauDecoder` (`tinyattn/decoders.py`, `docs/equations.md` §4), in rows:
#
# $$e_{ij} = v_a \cdot \tanh(s_{i-1} W_a + h_j U_a), \quad
#   \alpha_i = \text{masked softmax}_j(e_i), \quad c_i = \textstyle\sum_j \alpha_{ij} h_j$$
#
# $$s_i = \text{GRU}([E y_{i-1} ; c_i],\ s_{i-1}), \qquad
#   \text{logits}_i = [s_i ; c_i ; E y_{i-1}]\, W_o + b_o$$
#
# The output layer reads the **new** state $s_i$, the **same** $c_i$ the cell read, and the
# embedding of the previous token (Cho et al.'s $g(s_i, y_{i-1}, c_i)$; the paper puts a maxout
# layer before the softmax, tinyattn one linear layer).
#
# ### Exercise: `bahdanau_decoder_step`
#
# `context, alpha, s, logits = bahdanau_decoder_step(y_emb, s_prev, enc_hs, src_mask, p)`:
# `y_emb` (B, E) is $E y_{i-1}$, `s_prev` (B, Hd) is $s_{i-1}$, `enc_hs` (B, S, Hk) and
# `src_mask` (B, S) as in section 2; `p` is a dict of the weights: `W_a` (Hd, A), `U_a`
# (Hk, A), `v_a` (A,); the GRU's `W_x` (E + Hk, 3Hd), `W_h` (Hd, 3Hd), `b_x`, `b_h` (3Hd,);
# the output layer's `W_o` (Hd + Hk + E, V), `b_o` (V,). Sections 2–4 give the attention;
# `gru_step_forward(x, s_prev, W_x, W_h, b_x, b_h)` (lesson 02, imported above) returns
# `(s, cache)`. The check compares your four outputs with the library's decoder on a padded
# batch and an unpadded one (sizes B = 2, S = 4, E = 5, Hd = 6, A = 7, Hk = 8, V = 9: all
# different, so a swapped half fails).

# %%
def my_decoder_step(y_emb, s_prev, enc_hs, src_mask, p):
    """One step of Bahdanau's decoder, docs/equations.md §4 (row vectors).

    y_emb (B, E) is E y_{i-1}; s_prev (B, Hd) is s_{i-1}; enc_hs (B, S, Hk)
    the annotations h_j; src_mask (B, S) bool, True at real positions.
    p: W_a (Hd, A), U_a (Hk, A), v_a (A,); the GRU's W_x (E + Hk, 3Hd),
    W_h (Hd, 3Hd), b_x, b_h (3Hd,); the output layer's W_o (Hd + Hk + E, V),
    b_o (V,).

        e_ij = v_a · tanh(s_{i-1} W_a + h_j U_a)    α_i = masked softmax_j(e_i)
        c_i  = Σ_j α_ij h_j                          s_i = GRU([E y_{i-1} ; c_i], s_{i-1})
        logits_i = [s_i ; c_i ; E y_{i-1}] W_o + b_o

    `tinyattn.gru.gru_step_forward(x, h_prev, W_x, W_h, b_x, b_h)` returns
    ``(s_i, cache)``. Returns context (B, Hk), alpha (B, S), s (B, Hd),
    logits (B, V).
    """
    # BEGIN SOLUTION
    e = np.tanh((s_prev @ p["W_a"])[:, None, :] + enc_hs @ p["U_a"]) @ p["v_a"]  # (B, S)
    e = np.where(src_mask, e, -np.inf)  # pads: exp(-inf) = 0
    w = np.exp(e - e.max(axis=1, keepdims=True))
    alpha = w / np.sum(w, axis=1, keepdims=True)  # (B, S), rows sum to 1
    context = np.einsum("bs,bsk->bk", alpha, enc_hs)  # (B, Hk), c_i
    s, _ = gru_step_forward(np.concatenate([y_emb, context], axis=1), s_prev,
                            p["W_x"], p["W_h"], p["b_x"], p["b_h"])
    logits = np.concatenate([s, context, y_emb], axis=1) @ p["W_o"] + p["b_o"]
    return context, alpha, s, logits  # c_i, α_i, s_i, logits_i
    # END SOLUTION

# %%
mine_step = ex.check("bahdanau_decoder_step", my_decoder_step)
assert mine_step.status in ("passed", "not implemented"), "read the report above"

# %% [markdown]
# **Predict.** A step in Luong's order: compute $c_i$ from $s_{i-1}$ for the cell as above, but
# then attend once more with the new state $s_i$ and give *that* context and those weights to
# the output layer (and return them). Of `context`, `alpha`, `s` and `logits`, which will the
# check mark wrong? Below, this version built from the library's own modules.

# %%
def library_modules(p):
    """BahdanauAttention, GRU and Linear holding the weights of ``p``."""
    (Hd, A), Hk, (F, V) = p["W_a"].shape, p["U_a"].shape[0], p["W_o"].shape
    attn = BahdanauAttention(Hd, Hk, A, rng=np.random.default_rng(0))
    cell = GRU(p["W_x"].shape[0], Hd, rng=np.random.default_rng(0))
    out = Linear(F, V, rng=np.random.default_rng(0))
    for module, names in ((attn, ("W_a", "U_a", "v_a")), (cell, ("W_x", "W_h", "b_x", "b_h"))):
        for name in names:
            module.params[name][...] = p[name]
    out.params["W"][...], out.params["b"][...] = p["W_o"], p["b_o"]
    return attn, cell, out


def luong_order_step(y_emb, s_prev, enc_hs, src_mask, p):
    attn, cell, out = library_modules(p)
    memory = attn.prepare(enc_hs, src_mask)
    c_i, _, _ = attn.step(s_prev, memory)  # Bahdanau's context, for the cell
    s, _ = cell.step(np.concatenate([y_emb, c_i], axis=1), s_prev)
    context, alpha, _ = attn.step(s, memory)  # BUG: attends again, with s_i (Luong's order)
    logits = out.apply(np.concatenate([s, context, y_emb], axis=1))
    return context, alpha, s, logits


luong = ex.check("bahdanau_decoder_step", luong_order_step)
assert luong.status == "failed" and "Luong's order" in luong.diagnoses[0]

# %% [markdown]
# The state `s` is right in both cases: the cell read the context of $s_{i-1}$, as it should.
# Everything the second attention touches is wrong: the weights, the context and, through the
# context, the logits. Attending before or after the cell step gives two different models; in
# Luong's (lesson 06) the cell never reads a context of the current step at all.
#
# ### Exercise: the step's backward, `bahdanau_decoder_step_backward`
#
# The forward is the same step, composed of the library's step functions
# (`additive_score_forward`, `masked_softmax_forward`, `gru_step_forward` and the output
# product), with two outputs: the logits, and the new state $s_i$, which also feeds step $i+1$.
# Your backward receives both upstream gradients, `dlogits` (B, V) and `ds` (B, Hd), what step
# $i+1$ sends back to $s_i$, and returns the gradient of every input and weight. Going back
# through the step:
#
# 1. **Output layer.** `dW_o = feat.T @ dlogits`, `db_o` the column sums, and
#    `dfeat = dlogits @ W_o.T`, split into the blocks of $s_i$, $c_i$, $E y_{i-1}$ (Hd, Hk, E).
# 2. **Cell.** $s_i$ has two readers, the output layer and step $i+1$: `gru_step_backward`
#    gets `ds` plus $s_i$'s block, and returns `dx` and the cell's part of `ds_prev`.
# 3. **Two readers again.** $c_i$ is read by the output layer and the cell:
#    `dc = (its block) + dx[:, E:]`; the same for $E y_{i-1}$ with `dx[:, :E]`.
# 4. **Attention**, as in section 5: $\partial L/\partial \alpha_{ij} = dc_i \cdot h_j$, then
#    your two functions (the library's twins: `masked_softmax_backward`,
#    `additive_score_backward`; their caches keep a T axis of length 1, so pass `dalpha` as
#    (B, 1, S) and read `dq` as (B, 1, A)).
# 5. **Where the paths meet.** $s_{i-1}$ gets the cell's part *plus* its path through the
#    scores, `dq @ W_a.T`; each $h_j$ gets its path through the context, $\alpha_{ij}\, dc_i$,
#    *plus* its path through its key, `dk @ U_a.T`; `dW_a = s_prev.T @ dq`,
#    `dU_a` $= \sum_b$ `enc_hs[b].T @ dk[b]`.
#
# `ex.stub("bahdanau_decoder_step_backward")` prints the cache's contents with their shapes.

# %%
from tinyattn.attention import additive_score_backward  # the library's, from here on
from tinyattn.functional import masked_softmax_backward
from tinyattn.gru import gru_step_backward


def my_decoder_step_backward(dlogits, ds, cache):
    """Backward of one Bahdanau decoder step (docs/equations.md §4).

    dlogits (B, V) and ds (B, Hd): the gradients of the step's two outputs,
    the logits and the new state s_i (ds from step i + 1). The cache:
    y_emb (B, E), s_prev (B, Hd), enc_hs (B, S, Hk), W_a (Hd, A),
    U_a (Hk, A), W_o (Hd + Hk + E, V), feat (B, Hd + Hk + E) =
    [s_i ; c_i ; E y_{i-1}], alpha (B, S), and the caches of
    `additive_score_forward` (scores (B, 1, S)), `masked_softmax_forward`
    (alpha (B, 1, S)) and `gru_step_forward` (x = [E y_{i-1} ; c_i]): their
    backwards, `additive_score_backward`, `masked_softmax_backward`,
    `gru_step_backward`, are yours to call.

    Returns one gradient per argument of the forward, in order: dy_emb,
    ds_prev, denc_hs, dW_a, dU_a, dv_a, dW_x, dW_h, db_x, db_h, dW_o, db_o.
    """
    (y_emb, s_prev, enc_hs, W_a, U_a, W_o, feat, alpha,
     score_cache, sm_cache, gru_cache) = cache
    # BEGIN SOLUTION
    E, Hk = y_emb.shape[1], enc_hs.shape[2]
    Hd = feat.shape[1] - Hk - E
    dW_o, db_o = feat.T @ dlogits, dlogits.sum(axis=0)
    ds_out, dc_out, demb_out = np.split(dlogits @ W_o.T, [Hd, Hd + Hk], axis=1)
    dx, ds_prev, dW_x, dW_h, db_x, db_h = gru_step_backward(ds + ds_out, gru_cache)
    dy_emb, dc = demb_out + dx[:, :E], dc_out + dx[:, E:]
    dalpha = np.einsum("bk,bsk->bs", dc, enc_hs)  # (B, S)
    dscores = masked_softmax_backward(dalpha[:, None, :], sm_cache)  # (B, 1, S)
    dq, dk, dv_a = additive_score_backward(dscores, score_cache)
    ds_prev = ds_prev + dq[:, 0] @ W_a.T  # the query path
    denc_hs = alpha[:, :, None] * dc[:, None, :] + dk @ U_a.T  # context path + key path
    dW_a, dU_a = s_prev.T @ dq[:, 0], np.einsum("bsk,bsa->ka", enc_hs, dk)
    return dy_emb, ds_prev, denc_hs, dW_a, dU_a, dv_a, dW_x, dW_h, db_x, db_h, dW_o, db_o
    # END SOLUTION

# %%
mine_backward = ex.check("bahdanau_decoder_step_backward", my_decoder_step_backward)
assert mine_backward.status in ("passed", "not implemented"), "read the report above"

# %% [markdown]
# **Predict.** Leave out the query path, `dq @ W_a.T`, from `ds_prev`. Which of the twelve
# gradients will fail: only `ds_prev`, or `dW_a` too? Below, the library's backward run on a
# cache whose `W_a` is zeroed (it is read by that term only).

# %%
from tinyattn.exercises._ex_attention_decoder import (  # the library's answer
    bahdanau_decoder_step_backward as library_step_backward,
)


def no_query_path(dlogits, ds, cache):
    cache = list(cache)
    cache[3] = np.zeros_like(cache[3])  # W_a: BUG, ds_prev loses dq @ W_a.T
    return library_step_backward(dlogits, ds, tuple(cache))


no_query = ex.check("bahdanau_decoder_step_backward", no_query_path)
assert no_query.status == "failed" and "FAILED: wrong ds_prev " in no_query.text

# %% [markdown]
# Only `ds_prev` fails: `dW_a = s_prev.T @ dq` does not read `ds_prev`, so it stays right. In a
# decoder this one term matters at every step: $s_{i-1}$ receives gradient from three places,
# the cell of step $i$, the attention of step $i$ (its query) and the output layer of step
# $i - 1$ (`docs/equations.md` §4), and the reversed loop of `BahdanauDecoder.backward`
# (`tinyattn/decoders.py`) adds all three before stepping back. That loop runs exactly this
# step's backward $T$ times; `tests/test_exercise_attention_decoder.py` checks the step
# against the library's decoder.

# %% [markdown]
# ## 7. Training on dates
#
# The task (`tinyattn.data`, task `"dates"`): read a date as people write it, in one of 20
# formats and three casings, and write it as an ISO date `YYYY-MM-DD`, one character per token.
# Each example carries **gold spans**: for every output character, the source characters it
# comes from (`None` for the "-", which no source character explains). They let us score the
# attention against the truth.
#
# The model is the one `make demo` trains: a bidirectional GRU encoder (E = 32, H = 64 per
# direction, so Hk = 128), a GRU decoder with Bahdanau attention (Hq = A = 128), float32, Adam
# with learning rate 0.004, batches of 64, gradient norm clipped at 5. The demo trains 2 epochs
# on 20,000 dates; to keep this lesson near a minute we train 2 epochs on the first 8,000 (the
# command line's `--train-size 8000`). `load_examples` builds exactly the splits the command
# line uses; the 1,000 test dates share no source string with the training data.

# %%
spec = DataSpec("dates", train_size=8000)
splits, info = load_examples(spec)
print(info)
for eg in splits["train"][:3]:
    print(f'{"".join(eg.src)!r:32} -> {"".join(eg.tgt)}   gold: {eg.gold}')

src_vocab = Vocab.build([eg.src for eg in splits["train"]])
tgt_vocab = Vocab.build([eg.tgt for eg in splits["train"]])
print(f"vocabularies: {len(src_vocab)} source tokens, {len(tgt_vocab)} target tokens "
      "(0-3: <pad> <sos> <eos> <unk>)")

# %% [markdown]
# **Predict.** Nothing in the loss below mentions alignment: the model is only trained to
# predict the next output character. After two epochs, when it rewrites "the 6th of december
# 1960" as 1960-12-06, which source characters will the month's "1" and "2" attend to? And the
# day's "0", which no source character writes? Section 8 draws this date's weights.

# %%
model = ta.Seq2Seq(len(src_vocab), len(tgt_vocab), emb_size=32, hidden_size=64,
                   attention="bahdanau", pad_id=Vocab.pad_id, rng=np.random.default_rng(0),
                   dtype=np.float32)
print({k: v.shape for k, v in model.decoder.attn.params.items()},
      f"; {sum(v.size for _, v, _ in model.named_parameters()):,} parameters in all")

trainer = ta.Trainer(model, ta.Adam(model.named_parameters(), lr=0.004), pad_id=Vocab.pad_id,
                     sos_id=Vocab.sos_id, eos_id=Vocab.eos_id, batch_size=64, clip=5.0,
                     rng=np.random.default_rng(0), show_progress=False)
train = encode_pairs(splits["train"], src_vocab, tgt_vocab)
valid = encode_pairs(splits["valid"], src_vocab, tgt_vocab)
start = time.perf_counter()
trainer.fit(train, valid, epochs=2, on_epoch=lambda r: print(
    f"epoch {r.epoch}: train loss {r.train_loss:.4f}, valid loss {r.valid_loss:.4f}, "
    f"{r.seconds:.1f} s"))
print(f"training took {time.perf_counter() - start:.1f} s")

# %% [markdown]
# **Scores on the test split.** `evaluate_examples` decodes greedily and compares with the
# references (exact match: the whole date right), and measures the attention with the
# reference fed in (teacher forcing). **Alignment accuracy** is the share of output characters
# with a gold span whose most-attended source character (the argmax of its row of α) lies inside
# that span. The evaluation helpers read the vocabularies and the longest output allowed from a
# `Run`, the in-memory description of a run directory; nothing is written to disk here.

# %%
run = Run(directory=None, data=spec, model_options=model.config,
          train_options={"max_decode_len": 2 * max(len(eg.tgt) for eg in splits["train"]) + 5},
          src_vocab=src_vocab, tgt_vocab=tgt_vocab)
test = splits["test"]
metrics = evaluate_examples(model, run, test)
print(format_metrics(metrics, f"test ({len(test)} dates)"))
assert metrics["exact_match"] > 0.95

outputs = [words for ((words, _),) in decode(model, run, [list(eg.src) for eg in test])]
wrong = [(eg, words) for eg, words in zip(test, outputs) if words != list(eg.tgt)]
print(f"\nthe {len(wrong)} dates it gets wrong:")
for eg, words in wrong:
    print(f'  {"".join(eg.src)!r:30} -> {"".join(words)}   (reference {"".join(eg.tgt)})')

# %% [markdown]
# ## 8. Where does the model look?
#
# One heatmap per test date: rows are output characters (the last row predicts `<eos>`), columns
# the source characters ("␣" is a space), colour the weight $\alpha_{ij}$. Red boxes are the gold
# spans. We pick three dates written in different formats.

# %%
def first_test_date(pattern):
    """The first test date matching ``pattern`` that the model gets right (so that the
    gold spans of its output can be drawn)."""
    return next(eg for eg, words in zip(test, outputs)
                if re.fullmatch(pattern, "".join(eg.src)) and words == list(eg.tgt))


def show(eg):
    (words, hyp), = decode(model, run, [list(eg.src)])[0]  # greedy; hyp.attention: (len, S)
    labels = words + (["<eos>"] if hyp.tokens[-1] == Vocab.eos_id else [])
    ok = words == list(eg.tgt)
    gold = list(eg.gold) + [None] * (len(labels) - len(eg.tgt)) if ok else None
    title = f'"{"".join(eg.src)}" → {"".join(words)}' + (" ✓" if ok else " ✗")
    return plot_alignment(hyp.attention, eg.src, labels, gold=gold, title=title)


long_form = first_test_date(r"[A-Za-z]+, [A-Za-z]+ \d{1,2}, \d{4}")  # Weekday, Month d, yyyy
fig = show(long_form)

# %% [markdown]
# The year digits look at the year, the month digits at the month's name, the day digits at the
# day; the weekday, which an ISO date does not need, gets almost nothing.

# %%
ordinal = first_test_date(r"the \d{1,2}(st|nd|rd|th) of [A-Za-z]+ \d{4}")  # the 6th of ...
fig = show(ordinal)

# %% [markdown]
# This is the date of the prediction in section 7 (the first test date in this format). The
# month's "1" and "2" spread their weight over letters inside "december" ("e", "c", "b"),
# within the gold box but on no single character: no source character writes "12", the
# whole word does. The day's "0", which no character writes, peaks on the space *before* the
# "6", outside its gold box: a space, then one digit, then "th" says the day has one digit, so
# a "0" comes first. The year's digits read the year, the last two one character each; "the",
# "of" and the "th" get almost nothing.

# %%
short = first_test_date(r"\d\.\d\.\d\d")  # d.m.yy: one-digit day and month, two-digit year
fig = show(short)

# %% [markdown]
# With a two-digit year the model has to *infer* the century ("15" → 2015, "84" → 1984), and
# both month and day need a leading "0" that the source does not write.
#
# **Two numbers for an α matrix** (`docs/equations.md` §11.3). The *alignment accuracy* counts,
# over the target tokens $t$ that have a gold source span $[\text{start}, \text{end})$, how often
# the peak $\arg\max_s \alpha_{ts}$ lies in it (ties go to the first maximum; tokens without a
# gold span are skipped; a gold token past the last row of α, when the model stopped early, is a
# miss). The *entropy* of a row, $H(\alpha_t) = -\sum_s \alpha_{ts} \log \alpha_{ts}$ nats with
# $0 \log 0 = 0$, is 0 for a one-hot row and $\ln n$ for a row spread evenly over $n$ positions.
# Both by hand on two made-up α matrices, against `tinyattn.metrics`:

# %%
alpha_a = np.array([[0.7, 0.2, 0.1, 0.0],  # peak 0, gold [0, 1): hit
                    [0.1, 0.3, 0.3, 0.3],  # a tie: the first maximum, 1; gold [2, 4): miss
                    [0.25, 0.25, 0.25, 0.25],  # gold None: skipped
                    [0.0, 0.0, 0.0, 1.0]])  # peak 3, gold [2, 4): hit
alpha_b = np.array([[0.2, 0.5, 0.3]])  # one row: peak 1, gold [1, 2): hit; gold token 2: a miss
gold_a = [(0, 1), (2, 4), None, (2, 4)]
gold_b = [(1, 2), (0, 3)]
hits = counted = 0
for alpha, gold in ((alpha_a, gold_a), (alpha_b, gold_b)):
    for t, span in enumerate(gold):
        if span is None:
            continue
        counted += 1
        hits += t < len(alpha) and span[0] <= np.argmax(alpha[t]) < span[1]
acc_hand = hits / counted
acc_lib = alignment_accuracy([alpha_a, alpha_b], [gold_a, gold_b])
logs = np.log(alpha_a, out=np.zeros_like(alpha_a), where=alpha_a > 0)  # 0 log 0 = 0
ent_hand = -(alpha_a * logs).sum(axis=1) + 0.0  # + 0.0: no -0.0
ent_lib = attention_entropy(alpha_a)
print(f"alignment accuracy: by hand {hits}/{counted} = {acc_hand:.4f}, library {acc_lib:.4f}")
print("row entropies (nats): by hand", ent_hand, " library", ent_lib, f" ln 4 = {np.log(4):.4f}")
assert acc_hand == acc_lib == 3 / 5 and np.allclose(ent_hand, ent_lib)
assert ent_lib[3] == 0.0 and np.isclose(ent_lib[2], np.log(4))

# %% [markdown]
# Alignment accuracy needs gold spans, which only synthetic tasks like these dates have; entropy
# needs none, so it can be measured on any model: a row near 0 nats reads one source position, a
# row near $\ln S$ reads them all alike (and says little about where the model looks).
#
# **Per output position, over all 1,000 test dates.** For each position of `YYYY-MM-DD<eos>`:
# how often the attention peak lies in the gold span (the alignment accuracy of that position
# alone), and how spread out the row is: its entropy in nats, 0 when all the weight sits on one
# character, $\ln S$ when it is spread evenly over $S$ characters. As in `evaluate_examples`, the
# reference is fed in.

# %%
sources, refs = [list(eg.src) for eg in test], [list(eg.tgt) for eg in test]
alphas, _ = teacher_forced(model, run, sources, refs)  # one (11, S) array per date
assert all(a.shape == (11, len(s)) for a, s in zip(alphas, sources))

positions = ["year 1", "year 2", "year 3", "year 4", "-", "month 1", "month 2", "-",
             "day 1", "day 2", "<eos>"]
print(f"{'position':10} {'peak in gold span':>18} {'entropy (nats)':>15}")
for k, name in enumerate(positions):
    if k < 10 and test[0].gold[k] is not None:  # the same positions have gold in every date
        only_k = [[span if t == k else None for t, span in enumerate(eg.gold)] for eg in test]
        acc = f"{alignment_accuracy(alphas, only_k):.1%}"
    else:
        acc = "(no gold)"
    entropy = np.mean([attention_entropy(a)[k] for a in alphas])
    print(f"{name:10} {acc:>18} {entropy:>15.2f}")

# %% [markdown]
# The first digits of month and day stand out. Split them by how the source writes the field:
# with one digit ("5", "6th"), two digits ("05", "24") or a name ("May"), and look at which
# character the peak falls on when it misses.

# %%
def written_as(eg, k):
    start, end = eg.gold[k]
    digits = re.match(r"\d*", "".join(eg.src[start:end]))[0]
    return {0: "a name", 1: "one digit", 2: "two digits"}[len(digits)]


for k in (5, 8):
    print(positions[k])
    for kind in ("one digit", "two digits", "a name"):
        rows = [(a[k], eg.gold[k], eg.src) for a, eg in zip(alphas, test)
                if written_as(eg, k) == kind]
        if not rows:
            continue
        misses = [src[row.argmax()] for row, (start, end), src in rows
                  if not start <= row.argmax() < end]
        where = ", ".join(f"{ch.replace(' ', '␣')!r} {n}" for ch, n in
                          Counter(misses).most_common(3))
        print(f"  written as {kind:10}: {len(rows):4} dates, peak in gold span "
              f"{1 - len(misses) / len(rows):6.1%}; misses peak on: {where or '-'}")

# %% [markdown]
# ## 9. What the heatmaps show
#
# - **The alignment is learned, not given.** Nothing in the loss mentions the gold spans: the
#   model was only trained to predict the next output character. It found by itself that the
#   year digits should read the year, the month digits the month (a number or a name such as
#   "december"), the day digits the day, wherever the format puts them. This is the "align" of
#   the paper's title and the matrix document 003 describes: the α matrix shows which input
#   characters each output character corresponds to (对齐).
# - **Ignored tokens.** Weekdays, "the", "of", commas and ordinal suffixes such as "th" get
#   almost no weight: an ISO date does not need them.
# - **"-" and `<eos>` are diffuse.** No source character explains them (their gold is `None`),
#   and their rows are spread out (high entropy in the table). In the first two heatmaps a "-"
#   row leans towards the field that comes next: the model knows *when* to write "-" from its
#   own state $s_{i-1}$, and its attention is already moving on.
# - **Inferred digits are diffuse too.** The century digits ("19"/"20") are among the most
#   spread-out rows: for a two-digit year no source character holds them, and the model reads
#   the whole year to decide. They are also the hardest part of the task: in the run stored
#   here, both wrong dates are a two-digit year given the wrong century.
# - **The leading zero looks around.** When the source writes the month as a name or the day
#   with two digits, the first output digit almost always peaks inside the field. When it writes
#   the field with one digit ("9.6.23", "the 6th of …"), the output's leading "0" has no source
#   character of its own, and its peak falls next to the field instead: on the space, "/" or "."
#   that shows the number has one digit, so a "0" must come first (the table counts where those
#   peaks land; single rows can differ: in the third heatmap the day's "0" spreads its weight
#   and peaks on the year). Numeric two-digit months
#   ("05/30/1991") sit in between: in about a quarter of them the peak moves to the "/" after
#   the month. These rows pull the alignment accuracy down, yet the output is right: alignment
#   accuracy measures where the model looks, not whether it translates correctly.
# - **Each annotation already knows its context.** $h_j$ comes from a bidirectional encoder, so
#   the annotation of a separator can carry the neighbouring digit's information. The heatmap
#   shows where the decoder reads, not the only place where the information lives.
#
# **To remember.** $e_{ij} = v_a \cdot \tanh(s_{i-1} W_a + h_j U_a)$ (scores, 分数),
# $\alpha_{ij} = \text{softmax}_j(e_{ij})$ (weights, 注意力权重) with pads masked to exactly 0,
# $c_i = \sum_j \alpha_{ij} h_j$ (the context vector, 上下文向量); the key projection $h_j U_a$
# once per source batch; the query is the state *before* the step; the weight matrix is T × S.
# In the backward, $s_{i-1}$ gets gradient from the cell and from its query role, each $h_j$
# from the context and from its key, and $c_i$ from both of its readers, the cell input
# $[E y_{i-1} ; c_i]$ and the output layer $[s_i ; c_i ; E y_{i-1}]$.
#
# **Try it yourself.** Train for 1 epoch only and compare the heatmaps and the alignment
# accuracy; train with `attention=None` (one context vector, `docs/equations.md` §2) and compare the
# exact match on the long formats; replace `"bahdanau"` by `"general"` (Luong, `docs/equations.md`
# §5), which attends after the RNN step.
#
# **Next.** Lesson 06: Luong's attention, which scores with the state after the step, and its
# four global scores.
