# Source of lessons/15_transformer_block.ipynb (learner) and
# lessons/solutions/15_transformer_block.ipynb (instructor): edit here, then run
# `.venv/bin/python lessons/build.py 15` (see lessons/build.py).

# %% [markdown]
# # Lesson 15 — The Transformer block
#
# **Goal.** Lessons 13 and 14 built attention with many heads and gave it positions. A
# Transformer layer wraps each sublayer, attention or a small feed-forward network, in a
# **residual block** with a **layer normalisation**, and stacks such layers. In this lesson you
# will
#
# 1. normalise each position's vector by hand, and see what the normalisation forgets (a shift
#    and a scale of its input);
# 2. derive the backward of layer normalisation by hand: two means, one for each thing it
#    forgets;
# 3. write that backward yourself (an exercise graded by the gradient checker), and only then
#    check it against `tinyattn.LayerNorm`, where a gain applied outside the means passes a check
#    at the initial gain and fails at any other;
# 4. write one encoder layer's forward from its pieces (attention, feed-forward network, two
#    norms, two residuals), with the norm after each residual (post-LN, the paper's) and before
#    each sublayer (pre-LN), against `TransformerEncoderLayer`;
# 5. measure the two placements: gradient norms through a 6-layer stack at initialisation, and
#    training with and without a warm-up of the learning rate;
# 6. see one dropout object used by two sublayers give a wrong gradient, and the library's one
#    dropout per use give a right one.
#
# **Sources.** `docs/equations.md` §7.3 (layer normalisation) and §7.5 (the encoder and decoder
# layers). J. L. Ba, J. R. Kiros, G. E. Hinton, *Layer Normalization*, 2016 (arXiv:1607.06450;
# document 003's reference [11]); K. He et al., *Deep Residual Learning for Image Recognition*,
# 2015 (document 003's [10]); A. Vaswani et al., *Attention Is All You Need*, 2017
# (arXiv:1706.03762): §3.1 (the layers), §5.3 (the warm-up), §5.4 (dropout); R. Xiong et al.,
# *On Layer Normalization in the Transformer Architecture*, ICML 2020 (arXiv:2002.04745):
# post-LN against pre-LN.
#
# The notebook runs in about 20 s; the five short trainings of section 6 take most of it.

# %%
import time

import matplotlib.pyplot as plt
import numpy as np

import tinyattn as ta
from tinyattn.gradcheck import TOL_LAYER, TOL_STEP, check_function
from tinyattn.layers import Dropout
import tinyattn.exercises as ex

np.set_printoptions(precision=3, suppress=True)

# %% [markdown]
# ## 1. Layer normalisation by hand
#
# A layer norm works on each position's vector alone: for one row $x$ of size $d$ (the last axis
# of a (B, T, d) array),
#
# | maths | code | shape |
# |---|---|---|
# | $\mu = \frac{1}{d}\sum_k x_k$ | `mu` | (B, T, 1) |
# | $\sigma^2 = \frac{1}{d}\sum_k (x_k - \mu)^2$ | `var` | (B, T, 1) |
# | $\hat x = (x - \mu)/\sqrt{\sigma^2 + \varepsilon}$ | `xhat` | (B, T, d) |
# | $y = \gamma \odot \hat x + \beta$ | `y` | (B, T, d) |
#
# The variance is the **biased** one, divided by $d$ (as in Ba et al. and PyTorch's
# `nn.LayerNorm`; `np.var`'s default, but not `torch.var`'s, which divides by $d - 1$). $\varepsilon$
# (PyTorch's default: $10^{-5}$) is added **inside** the square root, so that a constant row
# divides by $\sqrt{\varepsilon}$ and not by 0. $\gamma$ and $\beta$ (size $d$) are learned, and
# start at 1 and 0: after the normalisation, the layer may rescale and shift every feature again.
# Unlike batch normalisation, nothing is averaged over the batch or the positions: each of the
# $B \cdot T$ rows has its own $\mu$ and $\sigma$.

# %%
B, T, d = 3, 4, 6
rng = np.random.default_rng(0)
x = 2.0 + 3.0 * rng.standard_normal((B, T, d))  # rows far from mean 0 and variance 1
gamma = rng.standard_normal(d)  # a trained layer's gain is not 1
beta = rng.standard_normal(d)


def layer_norm_forward(x, gamma, beta, eps=1e-5):
    """Layer normalisation over the last axis; the cache holds the inputs only."""
    mu = x.mean(axis=-1, keepdims=True)  # (B, T, 1)
    var = ((x - mu) ** 2).mean(axis=-1, keepdims=True)  # biased: divided by d
    xhat = (x - mu) / np.sqrt(var + eps)  # ε inside the root
    return gamma * xhat + beta, (x, gamma, beta, eps)


y, _ = layer_norm_forward(x, gamma, beta)
xhat = (x - x.mean(axis=-1, keepdims=True)) / np.sqrt(x.var(axis=-1, keepdims=True) + 1e-5)
print("row means of x, example 0:    ", x[0].mean(axis=-1))
print("row means of x̂, example 0:    ", xhat[0].mean(axis=-1))
print("row variances of x̂, example 0:", xhat[0].var(axis=-1))
print(f"row 0 of x: np.var = {np.var(x[0, 0]):.3f}, with ddof=1 (d − 1) = "
      f"{np.var(x[0, 0], ddof=1):.3f}, ratio d/(d − 1) = {d / (d - 1):.3f}")
y_alone, _ = layer_norm_forward(x[1:2, :2], gamma, beta)  # two positions of example 1 alone
print("two positions alone = the same rows of the batch:", np.allclose(y_alone, y[1:2, :2]))

# %% [markdown]
# Every row of $\hat x$ has mean 0 and variance 1 (just under 1: $\sigma^2/(\sigma^2 +
# \varepsilon)$, rounded away here); $\gamma$ and $\beta$ then give each feature its own scale and
# offset. The two variances of row 0 differ by the factor $d/(d-1)$, a fifth for $d = 6$: not a
# rounding matter. And a position's output depends on that position alone, so padding needs no
# care in a layer norm: a pad row changes no other row.
#
# **What the normalisation forgets.** Add the same number $c$ to every entry of a row: $\mu$ moves
# by $c$ and $x - \mu$ does not change. Stretch the row about its mean, $x \mapsto \mu + s(x -
# \mu)$: $x - \mu$ and $\sigma$ both scale by $s$, and $\hat x$ changes only through
# $\varepsilon$. Measured on the forward above:

# %%
shifted, _ = layer_norm_forward(x + 7.0, gamma, beta)
mu = x.mean(axis=-1, keepdims=True)
stretched, _ = layer_norm_forward(mu + 2.5 * (x - mu), gamma, beta)
print(f"shift by 7:           max |change of y| = {np.abs(shifted - y).max():.1e}")
print(f"stretch by 2.5:       max |change of y| = {np.abs(stretched - y).max():.1e}")
stretched_eps, _ = layer_norm_forward(mu + 2.5 * (x - mu), gamma, beta, eps=0.0)
y_eps0, _ = layer_norm_forward(x, gamma, beta, eps=0.0)
print(f"stretch by 2.5, ε = 0: max |change of y| = {np.abs(stretched_eps - y_eps0).max():.1e}")

# %% [markdown]
# The shift changes nothing but rounding (2.7e-15); the stretch changes $y$ by up to 9.2e-06,
# through $\varepsilon$ alone (with $\varepsilon = 0$, by 1.8e-15: rounding). The backward must know this: a change of
# $x$ along the all-ones direction $\mathbf{1}$ (a shift) does nothing to the loss, so the
# gradient $dx$ has no component along $\mathbf{1}$: its entries sum to 0. Nor, up to
# $\varepsilon$, along $x - \mu$ (a stretch), that is along $\hat x$.
#
# ## 2. The backward, derived by hand
#
# Write $r = 1/\sqrt{\sigma^2 + \varepsilon}$, so that $\hat x_k = (x_k - \mu)\, r$; $dy$ is the
# upstream gradient of one row.
#
# **Gain and bias.** $y = \gamma \odot \hat x + \beta$ is used by every row, so
# $d\gamma = \sum_{\text{rows}} dy \odot \hat x$ and $d\beta = \sum_{\text{rows}} dy$, summed over
# all $B \cdot T$ rows; and the gradient that reaches $\hat x$ is
#
# $$g = \gamma \odot dy .$$
#
# **Through the normalisation.** Every $\hat x_k$ depends on every $x_j$, through $\mu$ and $r$:
#
# - $\partial \mu / \partial x_j = 1/d$;
# - $\partial \sigma^2 / \partial x_j = \frac{2}{d}(x_j - \mu)$ (the term through $\mu$ is
#   $-\frac{2}{d}\sum_k (x_k - \mu)\cdot\frac{1}{d} = 0$), so
#   $\partial r / \partial x_j = -\tfrac12 (\sigma^2 + \varepsilon)^{-3/2}\, \frac{2}{d}(x_j - \mu)
#   = -\frac{r}{d}\, \hat x_j\, r$;
# - $\partial \hat x_k / \partial x_j = r\,(\delta_{kj} - \frac1d) + (x_k - \mu)\,
#   \partial r/\partial x_j = r\,\big(\delta_{kj} - \frac1d - \frac1d \hat x_k \hat x_j\big)$.
#
# Then $dx_j = \sum_k g_k\, \partial \hat x_k / \partial x_j$:
#
# $$dx = r\,\big(g - \text{mean}(g) - \hat x \odot \text{mean}(g \odot \hat x)\big),$$
#
# the means taken over the $d$ features of the row (`docs/equations.md` §7.3).
#
# **The two means.** The row's Jacobian is $r\,(I - \frac1d \mathbf{1}\mathbf{1}^\top - \frac1d
# \hat x \hat x^\top)$: it removes from $g$ its component along $\mathbf{1}$ (the **shift**
# term, $-\text{mean}(g)$) and its component along $\hat x$ (the **scale** term, $-\hat x \odot
# \text{mean}(g \odot \hat x)$), the two directions section 1 found the forward to forget. So
# $\sum_j dx_j = 0$ exactly, since $\sum_j \hat x_j = 0$; and $\sum_j dx_j \hat x_j = r \sum_j
# g_j \hat x_j \cdot \varepsilon / (\sigma^2 + \varepsilon)$, almost 0 (use $\sum_j \hat x_j^2 = d
# \sigma^2/(\sigma^2 + \varepsilon)$).
#
# **The gain goes inside.** The means act on $g = \gamma \odot dy$, not on $dy$. Multiplying by
# $\gamma$ at the end, $\gamma \odot r\,(dy - \text{mean}(dy) - \dots)$, is the same thing only if
# $\gamma$ is the same number for every feature: a mean over the features cannot see a common
# factor, but it mixes different ones.
#
# ## 3. Exercise: the backward of layer normalisation
#
# **Your turn.** Write `my_layer_norm_backward(dy, cache)` for the forward of section 1: it
# returns `dx` (B, T, d), `dgamma` and `dbeta` (d,). The cache holds the inputs only,
# `(x, gamma, beta, eps)`: recompute $\mu$, $\sigma^2$, $r$ and $\hat x$ exactly as the forward did
# (a library keeps $\hat x$ and $r$ instead, to save the work; `tinyattn.LayerNorm` does).
#
# `ex.check("layer_norm_backward", fn)` runs the library's forward on random float64 arrays,
# $x$ (3, 4, 6), $\gamma$ and $\beta$ (6,), all standard normal (so the gain is not 1, on
# purpose), with $\varepsilon = 0.1$ (large, so that where $\varepsilon$ goes shows), and the
# gradient checker on your three gradients with tolerance `TOL_STEP` ($10^{-7}$). When one is
# wrong it names the likely mistake: the gain $\gamma$ applied outside the means; the unbiased
# variance ($d - 1$), in $\hat x$ and $r$ or all the way through the derivation; $\varepsilon$
# outside the square root, $1/(\sigma + \varepsilon)$ (likewise), or left out; the shift term
# or the scale term missing; $d\gamma$ and $d\beta$ from the last example only (a loop over $b$
# that assigns instead of adding). $d\gamma$ or $d\beta$ summed over the wrong axes has the wrong
# shape, and the check says so. `ex.stub("layer_norm_backward")` prints the starting point.

# %%
def my_layer_norm_backward(dy, cache):
    """Gradients of layer normalisation over the last axis (docs/equations.md §7.3).

    dy (B, T, d); cache = (x (B, T, d), gamma (d,), beta (d,), eps).
    Returns dx (B, T, d), dgamma (d,), dbeta (d,).
    """
    x, gamma, beta, eps = cache
    # BEGIN SOLUTION
    mean = x.mean(axis=-1, keepdims=True)  # μ, (B, T, 1)
    centred = x - mean
    r = 1.0 / np.sqrt((centred ** 2).mean(axis=-1, keepdims=True) + eps)  # 1/√(σ² + ε)
    xhat = centred * r
    rows = tuple(range(x.ndim - 1))  # every axis but the features: all B·T rows
    dgamma = (dy * xhat).sum(axis=rows)
    dbeta = dy.sum(axis=rows)
    g = gamma * dy  # the gain first: the means act on g
    shift = g.mean(axis=-1, keepdims=True)
    scale = xhat * (g * xhat).mean(axis=-1, keepdims=True)
    return r * (g - shift - scale), dgamma, dbeta
    # END SOLUTION

# %%
result = ex.check("layer_norm_backward", my_layer_norm_backward)
assert result.status in ("passed", "not implemented"), "read the report above"

# %% [markdown]
# When it fails, read the table first. Only $dx$ wrong: the gain, the shift term or the scale
# term (your $\hat x$ is right, since $d\gamma$ is). $dx$ and $d\gamma$ wrong, $d\beta$ right: your
# $\hat x$ is wrong, so look at $\sigma^2$ and $\varepsilon$. Only $d\gamma$ and $d\beta$ wrong:
# the sums over the rows.
#
# ## 4. The library: `tinyattn.LayerNorm`
#
# Now that you have written it, the library's layer. With our $\gamma$, $\beta$ and
# $\varepsilon$ it computes our forward and, if your exercise passed, your gradients; the
# checker passes its backward; and its $dx$ has the two properties of section 2:

# %%
from tinyattn.gradcheck import check_module
from tinyattn.layernorm import LayerNorm

ln = LayerNorm(d)
ln.params["gamma"][...] = gamma
ln.params["beta"][...] = beta
assert np.allclose(ln(x), y)
dy = np.random.default_rng(1).standard_normal(x.shape)
ln.zero_grad()
ln(x)
dx_lib = ln.backward(dy)
if result.passed:
    mine = my_layer_norm_backward(dy, (x, gamma, beta, 1e-5))
    for a, b in zip(mine, (dx_lib, ln.grads["gamma"], ln.grads["beta"])):
        assert np.allclose(a, b)
    print("your dx, dgamma, dbeta = LayerNorm.backward's")
print("LayerNorm:", check_module(ln, x))
print(f"max |Σ_j dx_j| over the 12 rows:     {np.abs(dx_lib.sum(axis=-1)).max():.1e}")
print(f"max |Σ_j dx_j x̂_j| over the 12 rows: {np.abs((dx_lib * xhat).sum(axis=-1)).max():.1e}")
factor = 1e-5 / (x.var(axis=-1) + 1e-5)
print(f"row variances σ² from {x.var(axis=-1).min():.2f} to {x.var(axis=-1).max():.2f}; "
      f"ε/(σ² + ε) at most {factor.max():.1e}")

# %% [markdown]
# Every row of $dx$ sums to 0 up to rounding (the shift: 1.4e-15), and has almost no component
# along $\hat x$ (the scale, 2.0e-05 at most: exact only at $\varepsilon = 0$, and here
# $\varepsilon/(\sigma^2 + \varepsilon)$ is at most 8.1e-06).
#
# **The gain outside the means.** A public NumPy Transformer (AkiRusProd/numpy-transformer,
# `transformer/layers/base/layer_norm.py`) multiplies by $\gamma$ after the means in the backward
# its `LayerNormalization` runs (its "first variant"; a commented-out second variant puts it
# inside). At initialisation $\gamma = 1$, and then the two are the same. The mistake, checked
# at $\gamma = 1$, at $\gamma = 0.7$ for every feature, and at the grading case's random $\gamma$
# (the arrays the exercise's check draws with seed 0, and its $\varepsilon = 0.1$):

# %%
def gain_outside(dy, cache):
    x, gamma, beta, eps = cache
    mu = x.mean(axis=-1, keepdims=True)
    r = 1.0 / np.sqrt(((x - mu) ** 2).mean(axis=-1, keepdims=True) + eps)
    xhat = (x - mu) * r
    g = dy  # the mistake: the means act on dy ...
    dx = gamma * r * (g - g.mean(axis=-1, keepdims=True)  # ... and γ comes after them
                      - xhat * (g * xhat).mean(axis=-1, keepdims=True))
    return dx, (dy * xhat).sum(axis=(0, 1)), dy.sum(axis=(0, 1))


grading = np.random.default_rng(0)  # the exercise's check: x, gamma, beta, then dy
x_g, gamma_g, beta_g = (grading.standard_normal(s) for s in [(3, 4, 6), (6,), (6,)])
dy_g = grading.standard_normal(x_g.shape)


def forward_g(x, gamma, beta):
    return layer_norm_forward(x, gamma, beta, eps=0.1)


for name, g_ in (("γ = 1", np.ones(6)), ("γ = 0.7", np.full(6, 0.7)), ("random γ", gamma_g)):
    check = check_function(forward_g, gain_outside, x_g, g_, beta_g, tol=TOL_STEP)
    print(f"{name:9}: {check}")
ln_g = LayerNorm(6, eps=0.1)
ln_g.params["gamma"][...] = gamma_g
ln_g(x_g)
dx_right = ln_g.backward(dy_g)
dx_wrong = gain_outside(dy_g, (x_g, gamma_g, beta_g, 0.1))[0]
off = np.linalg.norm(dx_wrong - dx_right) / np.linalg.norm(dx_right)
print(f"grading case: |dx_wrong − dx| / |dx| = {off:.0%}")
print("γ of the grading case:", gamma_g)

# %% [markdown]
# At $\gamma = 1$ and at any $\gamma$ that is the same for every feature, the mistake is exact and
# no gradient check can see it: a test at initialisation passes. With the grading case's gain, the
# input's gradient is off by 72 % of its size (the gain's entries differ in size and sign), which
# is why the exercise grades with a random $\gamma$. $d\gamma$ and $d\beta$ are right either way.
# And here is what `check` says of it:

# %%
_ = ex.check("layer_norm_backward", gain_outside)

# %% [markdown]
# ## 5. Residual blocks and the feed-forward network
#
# A Transformer layer is two or three sublayers, each in a **residual block** with a layer norm
# (`docs/equations.md` §7.5). Vaswani et al. put the norm after the residual sum (**post-LN**);
# many later models put it before the sublayer (**pre-LN**), leaving the residual path untouched:
#
# $$\text{post-LN: } y = \text{LN}(x + \text{Sublayer}(x)) \qquad\qquad
# \text{pre-LN: } y = x + \text{Sublayer}(\text{LN}(x))$$
#
# (with dropout on the sublayer's output, section 7). The encoder layer's sublayers are
# self-attention over the positions (lesson 14's multi-head attention, pad keys masked) and a
# **feed-forward network** applied to each position alone:
#
# $$\text{FFN}(z) = \text{ReLU}(z W_1 + b_1)\, W_2 + b_2, \qquad W_1\ (D, d_{ff}),\ W_2\ (d_{ff}, D).$$
#
# Attention mixes positions; the FFN mixes features within a position, through a wider hidden
# layer ($d_{ff} = 4D$ in the paper). `TransformerEncoderLayer` has them as children: `self_attn`,
# `ff1` and `ff2` (`Linear`, $y = xW + b$), `norm1` and `norm2`. We give the norms gains and
# biases other than 1 and 0 (so that a misplaced norm shows), and write the layer's forward from
# its children's weights, with our `layer_norm_forward` and our own FFN, for both placements:

# %%
D, n_heads, d_ff = 8, 2, 16
x_enc = rng.standard_normal((2, 5, D))
lengths = np.array([5, 3])  # example 1: positions 3 and 4 are pads
layers = {}
for norm_first in (False, True):
    layer = ta.TransformerEncoderLayer(D, n_heads, d_ff, norm_first=norm_first,
                                       rng=np.random.default_rng(2))
    for norm in (layer.norm1, layer.norm2):
        norm.params["gamma"][...] = 1 + 0.5 * rng.standard_normal(D)
        norm.params["beta"][...] = 0.5 * rng.standard_normal(D)
    layers["pre-LN" if norm_first else "post-LN"] = layer


def encoder_layer_by_hand(layer, x, lengths):
    def norm(z, ln_):
        return layer_norm_forward(z, ln_.params["gamma"], ln_.params["beta"], ln_.eps)[0]

    def attend(z):  # self-attention: queries, keys and values all z; pad keys masked
        return layer.self_attn(z, z, z, key_lengths=lengths)[0]

    def ffn(z):
        hidden = np.maximum(z @ layer.ff1.params["W"] + layer.ff1.params["b"], 0.0)  # ReLU
        return hidden @ layer.ff2.params["W"] + layer.ff2.params["b"]

    if layer.norm_first:  # pre-LN: x + Sublayer(LN(x)), twice
        h = x + attend(norm(x, layer.norm1))
        out = h + ffn(norm(h, layer.norm2))
    else:  # post-LN: LN(x + Sublayer(x)), twice
        h = norm(x + attend(x), layer.norm1)
        out = norm(h + ffn(h), layer.norm2)
    real = np.arange(x.shape[1])[None, :] < lengths[:, None]  # (B, T)
    return out * real[:, :, None]  # the layer's outputs at pads are exactly 0


for name, layer in layers.items():
    mine = encoder_layer_by_hand(layer, x_enc, lengths)
    lib = layer(x_enc, lengths)
    assert np.allclose(mine, lib)
    layer_check = check_module(layer, x_enc, lengths=lengths)
    assert layer_check.passed
    print(f"{name}: by hand = TransformerEncoderLayer (max difference "
          f"{np.abs(mine - lib).max():.1e}); gradient check of x and "
          f"{len(layer_check.reports) - 1} parameter arrays passed, max error "
          f"{layer_check.max_error:.1e}")

# %% [markdown]
# Both forwards agree with the library to rounding, and the checker passes both layers'
# backwards (every input and parameter, with padding). The backward of a block (§7.5) follows
# the forward in reverse: post-LN, $dz = \text{LN.backward}(dy)$ and then
# $dx = dz + \text{Sublayer.backward}(dz)$; pre-LN, $dx = dy +
# \text{LN.backward}(\text{Sublayer.backward}(dy))$. In pre-LN the residual path carries $dy$ to
# $x$ untouched; in post-LN every gradient passes through the norm first.
#
# ## 6. Post-LN or pre-LN?
#
# **Gradients through depth.** Stack six encoder layers ($D = 32$, 4 heads, $d_{ff} = 128$,
# freshly initialised), put a random upstream gradient on the top, and measure, for each layer,
# the norm of all its parameters' gradients together, and the norm of the gradient that reaches
# its input. The pre-LN stack gets a last layer norm on top, as `tinyattn.Transformer` gives it
# (without one, its output would be the sum of everything the stack added). Xiong et al. found,
# on a 512-wide translation model, post-LN's gradients larger near the output and pre-LN's about
# the same in every layer, and proposed that as the reason post-LN needs a warm-up.
#
# **Predict.** In our small stack, which placement gives every layer's parameters gradients of
# about the same size? For the other one, are the gradients larger near the output or near the
# input?

# %%
def stack_gradients(norm_first, seed, n_layers=6, width=32):
    """Per layer: the norm of its parameters' gradients and of its input's gradient."""
    make = np.random.default_rng(seed)
    stack = [ta.TransformerEncoderLayer(width, 4, 4 * width, norm_first=norm_first, rng=make)
             for _ in range(n_layers)]
    final = LayerNorm(width) if norm_first else None
    h = make.standard_normal((16, 10, width))  # 16 sequences of 10 positions
    for layer in stack:
        h = layer(h)
    if final is not None:
        h = final(h)
    dh = make.standard_normal(h.shape)  # the upstream gradient
    if final is not None:
        dh = final.backward(dh)
    into = []
    for layer in reversed(stack):
        dh = layer.backward(dh)
        into.append(np.linalg.norm(dh))
    params = [np.sqrt(sum((g ** 2).sum() for _, _, g in layer.named_parameters()))
              for layer in stack]
    return np.array(params), np.array(into[::-1])


depth = {}
for norm_first, name in ((False, "post-LN"), (True, "pre-LN")):
    runs = [stack_gradients(norm_first, seed) for seed in range(3)]  # three initialisations
    depth[name] = [np.mean([r[k] for r in runs], axis=0) for k in (0, 1)]
print("layer (1 = input end, 6 = output end):    1      2      3      4      5      6")
for name, (params, into) in depth.items():
    print(f"{name:8} |grad of parameters|:    " + " ".join(f"{v:6.1f}" for v in params)
          + f"   first/last = {params[0] / params[-1]:.2f}")
for name, (params, into) in depth.items():
    print(f"{name:8} |grad into the layer|:   " + " ".join(f"{v:6.1f}" for v in into)
          + f"   first/last = {into[0] / into[-1]:.2f}")

# %%
fig, axes = plt.subplots(1, 2, figsize=(11, 4), layout="constrained")
for name, (params, into) in depth.items():
    for ax, values in zip(axes, (params, into)):
        ax.plot(np.arange(1, 7), values, "o-", label=name)
axes[0].set_ylabel("‖∂L/∂θ_l‖, all parameters of layer l")
axes[0].set_title("parameter gradients by depth, at initialisation")
axes[1].set_ylabel("‖∂L/∂x_l‖, the input of layer l")
axes[1].set_title("gradient reaching each layer's input")
for ax in axes:
    ax.set_xlabel("layer l (1 = input end, 6 = output end)")
    ax.set_ylim(bottom=0)
    ax.legend()
plt.show()

# %% [markdown]
# *(The numbers are means over three initialisations.)* In this stack neither placement tilts
# much. Post-LN is the flatter: its first layer's parameter gradients are 1.10 times its last
# layer's. Pre-LN's grow towards the input (1.24 times), because its residual path passes the
# top's gradient down unchanged and every block adds its own share to it on the way (right
# panel: 1.18 times as large at the input as at the top; Shleifer et al., *NormFormer*, 2021,
# arXiv:2110.09456, report the same tilt, much stronger, in large pre-LN models during
# pretraining). Xiong et al.'s picture, post-LN larger near the output, does not show here. Their
# model was 16 times wider and initialised otherwise, and we have not tried to reproduce their
# setting; what we can say is that in this stack, at initialisation, the gradient norms do not
# tell the two placements apart. Training may.
#
# **Warm-up.** Vaswani et al. (§5.3) raise the learning rate linearly for the first `warmup`
# steps and then let it fall as $1/\sqrt{\text{step}}$: `tinyattn.NoamSchedule`, whose peak is
# $\text{factor}/\sqrt{D \cdot \text{warmup}}$ (lesson 16 looks at it closely). We train a small
# Transformer (2 encoder and 2 decoder layers, $D = 32$, 4 heads, $d_{ff} = 64$) to reverse
# strings of 3 to 10 letters, for 200 updates of 64 examples, with Adam ($\beta_1 = 0.9$,
# $\beta_2 = 0.98$, as in the paper) and no clipping, so that only the rate differs. With warm-up,
# 50 warm-up steps and factor 1: a peak of 0.025 at step 50, a high rate for Adam, chosen so that
# a difference can show in 200 updates. Without it, the same 0.025 from the first step. Then
# post-LN once more, at a constant rate five times lower.
#
# **Predict.** At a constant 0.025 from the first step, which placement still learns to reverse?
# Does the warm-up help the other one?

# %%
from tinyattn.cli.run import encode_pairs
from tinyattn.data import Vocab, make_splits

splits = make_splits("reverse", (3200, 200, 0))  # 3,200 training strings: 50 batches of 64
vocab = Vocab.build([item.src for item in splits["train"]])
train_pairs = encode_pairs(splits["train"], vocab, vocab)
valid_pairs = encode_pairs(splits["valid"], vocab, vocab)
print("".join(splits["train"][0].src), "->", "".join(splits["train"][0].tgt))
WIDTH, WARMUP = 32, 50
PEAK = 1.0 / np.sqrt(WIDTH * WARMUP)  # NoamSchedule's peak, at step WARMUP, with factor 1


def train(norm_first, rate):
    """200 updates; ``rate`` None: the Noam warm-up, else a constant learning rate."""
    model = ta.Transformer(len(vocab), len(vocab), d_model=WIDTH, num_heads=4, d_ff=2 * WIDTH,
                           num_encoder_layers=2, num_decoder_layers=2, norm_first=norm_first,
                           pad_id=Vocab.pad_id, rng=np.random.default_rng(0))
    adam = ta.Adam(model.named_parameters(), lr=rate or PEAK, betas=(0.9, 0.98), eps=1e-9)
    schedule = None if rate else ta.NoamSchedule(adam, d_model=WIDTH, warmup=WARMUP, factor=1.0)
    trainer = ta.Trainer(model, adam, pad_id=Vocab.pad_id, sos_id=Vocab.sos_id,
                         eos_id=Vocab.eos_id, batch_size=64, clip=None, schedule=schedule,
                         rng=np.random.default_rng(0), show_progress=False)
    start = time.perf_counter()
    trainer.fit(train_pairs, epochs=4)
    return np.array(trainer.batch_losses), trainer.evaluate(valid_pairs), \
        time.perf_counter() - start


runs = {}
for label, norm_first, rate in (("post-LN, warm-up", False, None),
                                ("post-LN, constant 0.025", False, PEAK),
                                ("pre-LN, warm-up", True, None),
                                ("pre-LN, constant 0.025", True, PEAK),
                                ("post-LN, constant 0.005", False, PEAK / 5)):
    runs[label] = train(norm_first, rate)
    losses, valid, seconds = runs[label]
    print(f"{label:24} loss over the last 20 updates {losses[-20:].mean():.3f}, "
          f"validation loss {valid:.3f}  ({len(losses)} updates, {seconds:.1f} s)")
print(f"ln(vocabulary size) = ln {len(vocab)} = {np.log(len(vocab)):.3f}: the loss of a uniform "
      "guess")

# %%
fig, ax = plt.subplots(figsize=(8, 4.2), layout="constrained")
for label, (losses, _, _) in runs.items():
    smooth = np.convolve(losses, np.ones(10) / 10, mode="valid")  # mean of 10 updates
    ax.plot(np.arange(10, len(losses) + 1), smooth, label=label,
            linestyle="--" if "constant" in label else "-")
ax.set_xlabel("update")
ax.set_ylabel("training loss per token (mean of 10 updates)")
ax.set_title("reversing strings: post-LN and pre-LN, with and without warm-up")
ax.legend()
plt.show()

# %% [markdown]
# At a constant 0.025, post-LN does not learn to reverse in 200 updates: its loss is still 2.791
# over the last 20 updates (validation 2.827), not far below a uniform guess over the 24 tokens
# (3.178); with the warm-up to the same peak it reaches a validation loss of 1.075. Pre-LN learns at the constant
# rate (1.405), though less well than with the warm-up (0.830, the best of the four). So the
# warm-up matters most for post-LN, as Xiong et al. found, while the gradient norms at
# initialisation did not foretell it here: what goes wrong happens during the first updates at
# the full rate. The last run is a reminder that the warm-up is one remedy, not the only one:
# post-LN at a constant rate five times lower (0.005) reaches 0.567, better than any run at the
# high peak in this budget. One seed and 200 updates cannot rank the settings finely; the stall
# of post-LN at the full rate is far beyond that uncertainty.
#
# ## 7. Dropout: one object per use
#
# During training, a Transformer applies dropout to each sublayer's output before the residual
# sum (Vaswani et al. §5.4; also to the attention weights, after the FFN's ReLU and to the
# embeddings). Inverted dropout (lesson 10) multiplies by a random mask $m$ and its backward by
# the same mask: $dx = dy \odot m$. So the backward needs the mask the forward drew.
#
# Many NumPy implementations keep the mask of the **last** forward on the object. Then one
# dropout object shared by two sublayers is wrong: the second forward overwrites the first's mask,
# and the first sublayer's backward uses the second's. Two residual blocks, $y = x +
# \text{drop}(\tanh(x W_1))$ and $z = y + \text{drop}(\tanh(y W_2))$, with the masks fixed by a
# seed at every forward (so that the checker's many forwards see the same masks):

# %%
class KeepsLastMask:
    """Inverted dropout that keeps the mask of its last forward on the object."""

    def __init__(self, p, seed):
        self.p, self.seed = p, seed

    def reset(self):  # the same masks on every forward of a gradient check
        self.rng = np.random.default_rng(self.seed)

    def forward(self, x):
        self.mask = (self.rng.random(x.shape) >= self.p) / (1 - self.p)
        return x * self.mask

    def backward(self, dy):
        return dy * self.mask


def two_blocks(x, W1, W2, drops):
    for drop in {id(dr): dr for dr in drops}.values():
        drop.reset()
    h1 = np.tanh(x @ W1)
    y_ = x + drops[0].forward(h1)
    h2 = np.tanh(y_ @ W2)
    return y_ + drops[1].forward(h2), (x, y_, W1, W2, h1, h2, drops)


def two_blocks_backward(dz, cache):
    x, y_, W1, W2, h1, h2, drops = cache
    da2 = drops[1].backward(dz) * (1 - h2 ** 2)
    dy_ = dz + da2 @ W2.T
    da1 = drops[0].backward(dy_) * (1 - h1 ** 2)
    return dy_ + da1 @ W1.T, x.T @ da1, y_.T @ da2


x_d, W1, W2 = rng.standard_normal((5, 4)), rng.standard_normal((4, 4)), rng.standard_normal((4, 4))
shared = KeepsLastMask(0.5, seed=3)
for name, drops in (("one object, used twice", (shared, shared)),
                    ("two objects", (KeepsLastMask(0.5, seed=3), KeepsLastMask(0.5, seed=4)))):
    def forward(x, W1, W2, drops=drops):
        return two_blocks(x, W1, W2, drops)

    check = check_function(forward, two_blocks_backward, x_d, W1, W2, names=["x", "W1", "W2"],
                           tol=TOL_STEP)
    print(f"{name:22}: {check}")

# %% [markdown]
# With one object, $W_2$'s gradient is right (the second block's backward runs first and uses the
# second mask, the right one) and $W_1$'s and $x$'s are wrong: the first block's backward used
# the second block's mask. With two objects every gradient passes. `tinyattn.layers.Dropout`
# forgets its mask once the backward has used it, so the same reuse is an error, not a silent
# wrong gradient:

# %%
drop = Dropout(0.5)
drop.rng = np.random.default_rng(0)
drop(np.ones((2, 3)))
drop(np.ones((2, 3)))  # the second forward: its mask replaces the first's
drop.backward(np.ones((2, 3)))
try:
    drop.backward(np.ones((2, 3)))
except RuntimeError as err:
    print("RuntimeError:", err)

# %% [markdown]
# The library's layers therefore give each use of dropout its own `Dropout`: an encoder layer
# with dropout has four, each drawing one mask per forward. Seeded before every forward, as the
# tests of `tinyattn` do, the layer passes the gradient check in train mode:

# %%
layer_drop = ta.TransformerEncoderLayer(D, n_heads, d_ff, dropout=0.3, norm_first=True,
                                        rng=np.random.default_rng(5))
print("dropouts of one encoder layer:",
      [name[:-1] for name, m in layer_drop.named_modules() if isinstance(m, Dropout)])


class FixedMasks(ta.Module):
    """The layer, with its dropouts reseeded before every forward: the same masks each time."""

    def __init__(self, layer, seed):
        super().__init__()
        self.layer, self.seed = layer, seed

    def forward(self, x, lengths=None):
        seeded = np.random.default_rng(self.seed)
        for _, module in self.layer.named_modules():
            if isinstance(module, Dropout):
                module.rng = seeded
        return self.layer(x, lengths)

    def backward(self, dy):
        return self.layer.backward(dy)


wrapped = FixedMasks(layer_drop, seed=6)
y_train = wrapped(x_enc, lengths)
layer_drop.eval()
print(f"max |train-mode output − eval-mode output| = "
      f"{np.abs(y_train - layer_drop(x_enc, lengths)).max():.3f}  (the masks are there)")
layer_drop.train()
drop_check = check_module(wrapped, x_enc, lengths=lengths, names=["x"])
assert drop_check.passed and drop_check.max_error < TOL_LAYER
print(f"encoder layer, dropout 0.3, train mode: gradient check of x and "
      f"{len(drop_check.reports) - 1} parameter arrays passed, max error "
      f"{drop_check.max_error:.1e}")

# %% [markdown]
# **To remember.** Layer normalisation works on each position's vector alone: $\hat x = (x -
# \mu)/\sqrt{\sigma^2 + \varepsilon}$ with the biased variance and $\varepsilon$ inside the root,
# then $y = \gamma \odot \hat x + \beta$. It forgets a shift and (up to $\varepsilon$) a scale of
# its input, and its backward removes those two directions from $g = \gamma \odot dy$:
# $dx = r\,(g - \text{mean}(g) - \hat x \odot \text{mean}(g \odot \hat x))$; the gain goes in
# before the means, which a check at $\gamma = 1$ cannot see. $d\gamma$ and $d\beta$ sum over
# every row. A Transformer layer is sublayers in residual blocks: post-LN, $\text{LN}(x +
# \text{Sublayer}(x))$, or pre-LN, $x + \text{Sublayer}(\text{LN}(x))$, whose residual path
# carries the gradient down unchanged. In our measurements, the gradient norms at initialisation
# hardly told the placements apart, but training did: at a high constant rate post-LN stalled
# and pre-LN learned, and a warm-up (or a lower rate) let post-LN learn. Every use of dropout
# needs its own mask, so its own object.
#
# **Try it yourself.** Repeat the gradient measurement with the weights of every sublayer
# multiplied by 2 or 3: which placement's gradients tilt more, and which way? Train the
# post-LN model at constant rates between 0.005 and 0.025: where does it stop learning? Write the
# decoder layer's forward by hand from its children (`self_attn` causal, `cross_attn` over the
# memory, `norm3`) and check it against `TransformerDecoderLayer`.
#
# **Next.** Lesson 16: training a Transformer: the whole encoder–decoder, `tinyattn.Transformer`
# (`docs/equations.md` §7.6), the Noam schedule (§9.7) and decoding with a key/value cache
# (§7.2).
