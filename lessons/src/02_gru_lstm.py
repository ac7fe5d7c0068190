# Source of lessons/02_gru_lstm.ipynb (learner) and lessons/solutions/02_gru_lstm.ipynb
# (instructor): edit here, then run `.venv/bin/python lessons/build.py 02` (see lessons/build.py).

# %% [markdown]
# # Lesson 02 — GRU and LSTM
#
# **Goal.** Lesson 01 measured the vanilla RNN's problem: going back one step multiplies the
# gradient by $\text{diag}(1 - h_t^2)\, W_{hh}^\top$, so over many steps it vanishes or explodes.
# Gated cells add **gates**: vectors between 0 and 1, computed from the input and the state, that
# decide per unit and per step how much to keep, write and show. In this lesson you will
#
# 1. compute every gate of a GRU (门控循环单元) and an LSTM (长短期记忆网络) by hand on tiny arrays
#    and check each against the library's step functions;
# 2. meet the GRU's **two** forms, Cho et al.'s and the cuDNN/PyTorch one (cuDNN: NVIDIA's GPU
#    library of neural-network kernels, whose GRU PyTorch follows), and see that they give
#    different numbers;
# 3. write the LSTM's step backward yourself (and, if you like, the GRU's), and have it checked;
# 4. then gradient-check the library's GRU (both forms) and LSTM, steps and layers;
# 5. compare how far the gradient reaches back in an RNN, a GRU and an LSTM, and see why the
#    LSTM's additive cell path helps when its forget gate is near 1.
#
# **Sources.** `docs/equations.md` §1. Document 003 (`docs/sources.md`, "从 Seq2seq 到 Attention
# 模型到 Self Attention（一）"), section "RNN/LSTM": "to solve the forgetting and training-error
# problems, the LSTM has concepts such as the forget/input/output gates (遗忘/输入/输出门), the
# hidden state and the cell memory (记忆单元)", and "in 2014 the paper *Learning Phrase
# Representations*, besides proposing Seq2seq, proposed the GRU, a simplified LSTM; since then the
# LSTM and the GRU have replaced the RNN as the mainstream". Document 000 builds its encoder from
# "an RNN or a GRU (门限循环神经网络)". The papers: S. Hochreiter, J. Schmidhuber, *Long
# short-term memory*, Neural Computation 9 (1997); F. Gers, J. Schmidhuber, F. Cummins,
# *Learning to forget: continual prediction with LSTM*, Neural Computation 12 (2000) (the forget
# gate); K. Cho et al., *Learning Phrase Representations using RNN Encoder–Decoder for
# Statistical Machine Translation*, EMNLP 2014 (arXiv:1406.1078), §2.3 (the GRU);
# R. Jozefowicz, W. Zaremba, I. Sutskever, *An empirical exploration of recurrent network
# architectures*, ICML 2015 (the forget-gate bias). The cuDNN/PyTorch GRU form is the one in
# PyTorch's `torch.nn.GRU` documentation (Keras calls it `reset_after=True`).
#
# The notebook runs in a few seconds.

# %%
import matplotlib.pyplot as plt
import numpy as np

import tinyattn as ta
import tinyattn.exercises as ex
from tinyattn.gradcheck import TOL_LAYER, TOL_STEP, check_function, check_module
from tinyattn.gru import gru_step_forward  # the backwards are yours to write first (sections 5-6)
from tinyattn.lstm import lstm_step_forward

np.set_printoptions(precision=3, suppress=True)

# %% [markdown]
# ## 1. The equations and how the library stores them
#
# In the papers' column-vector form, as `docs/equations.md` §1.4 gives them:
#
# ```
# LSTM (gate order i, f, g, o, as PyTorch stores them):
# i_t = σ(W_xi x_t + W_hi h_{t-1} + b_i)      input gate
# f_t = σ(W_xf x_t + W_hf h_{t-1} + b_f)      forget gate
# g_t = tanh(W_xg x_t + W_hg h_{t-1} + b_g)   candidate
# o_t = σ(W_xo x_t + W_ho h_{t-1} + b_o)      output gate
# c_t = f_t ⊙ c_{t-1} + i_t ⊙ g_t
# h_t = o_t ⊙ tanh(c_t)
#
# GRU (Cho et al. 2014, gate order r, z, n as PyTorch stores them):
# r_t = σ(W_xr x_t + W_hr h_{t-1} + b_r)                   reset gate
# z_t = σ(W_xz x_t + W_hz h_{t-1} + b_z)                   update gate
# n_t = tanh(W_xn x_t + W_hn (r_t ⊙ h_{t-1}) + b_n)        Cho 2014 form ("reset before")
# n_t = tanh(W_xn x_t + b_xn + r_t ⊙ (W_hn h_{t-1} + b_hn)) cuDNN / PyTorch / Keras reset_after form
# h_t = (1 - z_t) ⊙ n_t + z_t ⊙ h_{t-1}
# ```
#
# ![The GRU cell: reset gate r, update gate z, candidate n](../docs/images/gru_cell.png)
#
# In the GRU figure, find the one path from $h_{t-1}$ to $h_t$ that passes no weight matrix: the
# blend $z_t \odot h_{t-1}$. It is the path your backward must add to `dh_prev` besides the gates.
#
# ![The LSTM cell: gates i, f, g, o and the cell state c](../docs/images/lstm_cell.png)
#
# In the LSTM figure, follow the top line from $c_{t-1}$ to $c_t$: one product with $f_t$ and one
# sum, nothing else. Section 8 measures what that line does for the gradient.
#
# tinyattn uses row vectors (one example per row, `x_t @ W`) and **stacks** the gates along the
# last axis of one matrix per input, in PyTorch's order, so that one matrix product computes all
# gates of a step. Column block $k$ of `W_x`, `W_h` and the biases belongs to gate $k$:
#
# | maths | meaning | in the code | shape |
# |---|---|---|---|
# | $x_t$, $h_{t-1}$ | input, previous state | `x_t`, `h_prev` | (B, D), (B, H) |
# | **GRU** $W_{xr}, W_{xz}, W_{xn}$ | input weights of r, z, n | `W_x[:, :H]`, `W_x[:, H:2*H]`, `W_x[:, 2*H:]` | (D, H) each; `W_x` (D, 3H) |
# | $W_{hr}, W_{hz}, W_{hn}$ | recurrent weights of r, z, n | the same blocks of `W_h` | (H, H) each; `W_h` (H, 3H) |
# | $b_{xr}, b_{xz}, b_{xn}$; $b_{hr}, b_{hz}, b_{hn}$ | two biases per gate | blocks of `b_x`, `b_h` | (3H,) each |
# | $r_t$ | reset gate (重置门) | `r` | (B, H) |
# | $z_t$ | update gate (更新门): how much of $h_{t-1}$ to keep | `z` | (B, H) |
# | $n_t$ | candidate state | `n` | (B, H) |
# | **LSTM** $W_{xi}, W_{xf}, W_{xg}, W_{xo}$ | input weights of i, f, g, o | `W_x[:, :H]` … `W_x[:, 3*H:]` | (D, H) each; `W_x` (D, 4H) |
# | $W_{hi}, W_{hf}, W_{hg}, W_{ho}$ | recurrent weights | the same blocks of `W_h` | (H, H) each; `W_h` (H, 4H) |
# | $b_i, b_f, b_g, b_o$ | one bias per gate (PyTorch has two, always summed) | blocks of `b` | (4H,) |
# | $i_t, f_t, o_t$ | input, forget, output gates (输入门, 遗忘门, 输出门) | `i`, `f`, `o` | (B, H) |
# | $g_t$ | candidate cell content | `g` | (B, H) |
# | $c_t$ | cell state (记忆单元) | `c` | (B, H) |
#
# In row form, the two GRU candidates are
#
# $$n_t = \tanh\big(x_t W_{xn} + b_{xn} + r_t \odot (h_{t-1} W_{hn} + b_{hn})\big)
# \quad \text{(reset after the product: cuDNN, PyTorch, Keras; tinyattn's default)}$$
#
# $$n_t = \tanh\big(x_t W_{xn} + b_{xn} + (r_t \odot h_{t-1})\, W_{hn} + b_{hn}\big)
# \quad \text{(reset before the product: Cho et al. 2014)}$$
#
# (Cho et al. have one bias $b_n$, as in the column form above; here it is $b_{xn} + b_{hn}$,
# `docs/equations.md` §1.3.) In the library the choice is one flag:
# `gru_step_forward(..., reset_after=True)` and `GRU(D, H,
# reset_after=True, rng=...)` are the cuDNN/PyTorch form, `reset_after=False` is Cho's. The
# exercises name them `"gru_step_backward"` and `"gru_cho_step_backward"`. `Seq2Seq(cell="gru")`
# always builds the default form; only it can be exported to PyTorch (`tinyattn.interop`).
# Why two forms? With the reset after the product, all three recurrent products
# $h_{t-1} W_{hr}, h_{t-1} W_{hz}, h_{t-1} W_{hn}$ come from **one** product
# `h_prev @ W_h`, (B, H) @ (H, 3H), per step. Cho's form has to wait for $r_t$ before it can
# compute $(r_t \odot h_{t-1}) W_{hn}$: two products per step.

# %% [markdown]
# ## 2. The GRU's gates by hand
#
# B = 2 examples, D = 3 inputs, H = 4 hidden units. We build the library's layer, take its
# weights, cut the stacked matrices into their gate blocks and compute each gate.

# %%
B, D, H = 2, 3, 4
rng = np.random.default_rng(0)
gru = ta.GRU(D, H, rng=rng)  # float64, reset_after=True
W_x, W_h, b_x, b_h = (gru.params[k].copy() for k in ("W_x", "W_h", "b_x", "b_h"))
assert W_x.shape == (D, 3 * H) and W_h.shape == (H, 3 * H) and b_x.shape == b_h.shape == (3 * H,)
x_t = rng.standard_normal((B, D))
h_prev = rng.standard_normal((B, H))


def sig(a):
    return 1.0 / (1.0 + np.exp(-a))  # the textbook form (the library computes it via tanh)


def blocks(M, k):
    """The k equal gate blocks of the last axis: W_x (D, 3H) -> three (D, H)."""
    return np.split(M, k, axis=-1)


W_xr, W_xz, W_xn = blocks(W_x, 3)
W_hr, W_hz, W_hn = blocks(W_h, 3)
b_xr, b_xz, b_xn = blocks(b_x, 3)
b_hr, b_hz, b_hn = blocks(b_h, 3)

r = sig(x_t @ W_xr + b_xr + h_prev @ W_hr + b_hr)  # (B, D) @ (D, H) + (B, H) @ (H, H) -> (B, H)
z = sig(x_t @ W_xz + b_xz + h_prev @ W_hz + b_hz)
n_after = np.tanh(x_t @ W_xn + b_xn + r * (h_prev @ W_hn + b_hn))  # reset after the product
n_cho = np.tanh(x_t @ W_xn + b_xn + (r * h_prev) @ W_hn + b_hn)  # reset before it (Cho 2014)
h_after = (1 - z) * n_after + z * h_prev
h_cho = (1 - z) * n_cho + z * h_prev
assert r.shape == z.shape == n_after.shape == h_after.shape == (B, H)

# the library: h, cache with cache = (x_t, h_prev, W_x, W_h, r, z, n, ..., reset_after)
for reset_after, n_hand, h_hand in ((True, n_after, h_after), (False, n_cho, h_cho)):
    h_lib, cache = gru_step_forward(x_t, h_prev, W_x, W_h, b_x, b_h, reset_after=reset_after)
    r_lib, z_lib, n_lib = cache[4:7]
    assert np.allclose(r, r_lib) and np.allclose(z, z_lib)
    assert np.allclose(n_hand, n_lib) and np.allclose(h_hand, h_lib)

print("reset gate r:\n", r)
print("update gate z:\n", z)
print("h, reset after the product (PyTorch):\n", h_after)
print("h, reset before it (Cho 2014):\n", h_cho)
print(f"largest difference between the two forms: {np.abs(h_after - h_cho).max():.3f}")

# %% [markdown]
# Same weights, same $r$ and $z$, different $h$ (by up to 0.130 here): the two forms are
# **different functions**, not two ways of computing one. A model trained in one form does not
# give the same outputs in the other (which is why `tinyattn.interop` refuses to export a
# Cho-form GRU to PyTorch). They agree only where the reset gate is fully open: with $r = 1$,
# $r \odot (h W_{hn} + b_{hn})$ and $(r \odot h) W_{hn} + b_{hn}$ are the same. Push the reset
# gate's bias up (by 30, so $r \approx 1$) and the difference goes away; push it down
# ($r \approx 0$) and they still differ: the reset-after form then drops the recurrent bias
# $b_{hn}$ together with $h_{t-1} W_{hn}$, while Cho's keeps $b_{hn}$.

# %%
for shift in (30.0, -30.0):
    b_x_shifted = b_x.copy()
    b_x_shifted[:H] += shift  # the reset gate's block
    h_a, cache_a = gru_step_forward(x_t, h_prev, W_x, W_h, b_x_shifted, b_h, reset_after=True)
    h_c, _ = gru_step_forward(x_t, h_prev, W_x, W_h, b_x_shifted, b_h, reset_after=False)
    print(f"reset bias {shift:+.0f}: r in [{cache_a[4].min():.3f}, {cache_a[4].max():.3f}], "
          f"largest |h_after - h_cho| = {np.abs(h_a - h_c).max():.1e}")
    if shift > 0:
        assert np.allclose(h_a, h_c)

# %% [markdown]
# With $r \approx 1$ the two forms agree up to round-off (below $10^{-13}$); with
# $r \approx 0$ they differ by up to 1.7e-01.

# %% [markdown]
# ## 3. The LSTM's gates by hand
#
# The same sizes; an LSTM also carries a cell state $c$. All four gates come out of one
# pre-activation $a = x_t W_x + h_{t-1} W_h + b$ of shape (B, 4H), cut into blocks i, f, g, o.

# %%
lstm = ta.LSTM(D, H, rng=rng)
W_x4, W_h4, b4 = (lstm.params[k].copy() for k in ("W_x", "W_h", "b"))
assert W_x4.shape == (D, 4 * H) and W_h4.shape == (H, 4 * H) and b4.shape == (4 * H,)
c_prev = rng.standard_normal((B, H))

a = x_t @ W_x4 + h_prev @ W_h4 + b4  # (B, D) @ (D, 4H) + (B, H) @ (H, 4H) + (4H,) -> (B, 4H)
a_i, a_f, a_g, a_o = blocks(a, 4)  # four (B, H)
i, f, g, o = sig(a_i), sig(a_f), np.tanh(a_g), sig(a_o)
c = f * c_prev + i * g  # forget part of the old cell, write part of the candidate
h = o * np.tanh(c)  # show part of the squashed cell
assert c.shape == h.shape == (B, H)

(h_lib, c_lib), lstm_cache = lstm_step_forward(x_t, h_prev, c_prev, W_x4, W_h4, b4)
# the cache is (x_t, h_prev, c_prev, W_x, W_h, i, f, g, o, tanh(c))
i_lib, f_lib, g_lib, o_lib, tc_lib = lstm_cache[5:10]
for mine, lib in ((i, i_lib), (f, f_lib), (g, g_lib), (o, o_lib), (np.tanh(c), tc_lib),
                  (c, c_lib), (h, h_lib)):
    assert np.allclose(mine, lib)
print("forget gate f:\n", f)
print("c_t = f * c_prev + i * g:\n", c)

# %% [markdown]
# **The papers' column form** (`docs/equations.md` §1.4). The papers write
# $r_t = \sigma(W_{xr} x_t + W_{hr} h_{t-1} + b_r)$ and so on, with column vectors and each matrix
# the transpose of the code's block, and one bias per gate, $b_r = b_{xr} + b_{hr}$; only the
# reset-after candidate keeps $b_{hn}$ apart, inside the reset:
# $n_t = \tanh(W_{xn} x_t + b_{xn} + r_t \odot (W_{hn} h_{t-1} + b_{hn}))$. One step of each cell
# in that form, the B examples as columns, against the row-form states above:

# %%
def col(v):
    return v[:, None]  # a bias (H,) as a column (H, 1)


Xc, Hc, Cc = x_t.T, h_prev.T, c_prev.T  # one column per example: (D, B), (H, B), (H, B)
r_c = sig(W_xr.T @ Xc + W_hr.T @ Hc + col(b_xr + b_hr))
z_c = sig(W_xz.T @ Xc + W_hz.T @ Hc + col(b_xz + b_hz))
n_c_after = np.tanh(W_xn.T @ Xc + col(b_xn) + r_c * (W_hn.T @ Hc + col(b_hn)))  # b_hn apart
n_c_cho = np.tanh(W_xn.T @ Xc + W_hn.T @ (r_c * Hc) + col(b_xn + b_hn))  # Cho et al.'s b_n
assert np.allclose(((1 - z_c) * n_c_after + z_c * Hc).T, h_after)
assert np.allclose(((1 - z_c) * n_c_cho + z_c * Hc).T, h_cho)

Wxi, Wxf, Wxg, Wxo = (M.T for M in blocks(W_x4, 4))  # the papers' (H, D) matrices
Whi, Whf, Whg, Who = (M.T for M in blocks(W_h4, 4))
bi_, bf_, bg_, bo_ = (col(v) for v in blocks(b4, 4))  # the library's LSTM has one bias
c_c = (sig(Wxf @ Xc + Whf @ Hc + bf_) * Cc
       + sig(Wxi @ Xc + Whi @ Hc + bi_) * np.tanh(Wxg @ Xc + Whg @ Hc + bg_))
h_c = sig(Wxo @ Xc + Who @ Hc + bo_) * np.tanh(c_c)
assert np.allclose(c_c.T, c_lib) and np.allclose(h_c.T, h_lib)
print("column form, transposed, = the library's row-form step: GRU (both forms) and LSTM")

# %% [markdown]
# Every equation of a paper maps onto the code by transposing its matrices and summing the biases
# it does not keep apart; the gate order (i, f, g, o and r, z, n, PyTorch's) only decides which
# block of the stacked matrix is which.

# %% [markdown]
# ## 4. Whole sequences
#
# The layers `ta.GRU` and `ta.LSTM` run these steps over a sequence, faster (one input
# projection for all steps before the loop, the weight gradients as one product after it;
# `docs/design.md` §4), and must give the same numbers as the step functions called in a loop.
# T = 5 steps:

# %%
T = 5
xs = rng.standard_normal((B, T, D))
h0 = rng.standard_normal((B, H))
for reset_after in (True, False):
    layer = ta.GRU(D, H, reset_after=reset_after, rng=np.random.default_rng(1))
    hs, h_T = layer(xs, h0)
    state = h0
    for t in range(T):
        state, _ = gru_step_forward(xs[:, t], state, *(layer.params[k] for k in
                                                       ("W_x", "W_h", "b_x", "b_h")),
                                    reset_after=reset_after)
        assert np.allclose(hs[:, t], state)
    assert hs.shape == (B, T, H) and np.allclose(h_T, state)

c0 = rng.standard_normal((B, H))
hs, (h_T, c_T) = lstm(xs, (h0, c0))
state = (h0, c0)
for t in range(T):
    state, _ = lstm_step_forward(xs[:, t], *state, *(lstm.params[k] for k in ("W_x", "W_h", "b")))
    assert np.allclose(hs[:, t], state[0])
assert np.allclose(h_T, state[0]) and np.allclose(c_T, state[1])
print("GRU (both forms) and LSTM layers agree with their step functions over", T, "steps")

# %% [markdown]
# ## 5. Your turn: the LSTM step backward
#
# Write `lstm_step_backward`. It receives the upstream gradients `dh` and `dc` (B, H) of the
# step's two outputs $h_t$ and $c_t$ (in BPTT they come from step $t+1$) and the cache the
# library's `lstm_step_forward` built, `(x_t, h_prev, c_prev, W_x, W_h, i, f, g, o, tc)` with
# `tc` $= \tanh(c_t)$. It returns `dx_t, dh_prev, dc_prev, dW_x, dW_h, db`, each of the shape of
# its array. Hints:
#
# - $c_t$ reaches the loss **two** ways: directly (that is `dc`) and through
#   $h_t = o_t \odot \tanh(c_t)$. Add the two before going further back.
# - $c_t = f_t \odot c_{t-1} + i_t \odot g_t$ gives the gradients of $f$, $i$, $g$ and $c_{t-1}$.
# - The cache holds the gates' *outputs*: $\sigma' = s(1 - s)$ and $\tanh' = 1 - y^2$ from those.
# - Stack the four pre-activation gradients in the order i, f, g, o (the order of the weight
#   columns) into one (B, 4H) array; then the products are those of lesson 00.
#
# `ex.stub("lstm_step_backward")` prints the same starting point. `ex.check` grades your function
# with the gradient checker alone (never against a hidden solution), per gate and, chained over
# 3 steps, per time step, and names likely mistakes. A good way to start is one gate at a time.
# Here is a first attempt that does only the output gate, whose path
# $h_t = o_t \odot \tanh(c_t)$ does not touch the cell, and leaves the other gates' blocks and
# the cell's gradient at zero:

# %%
def lstm_backward_output_gate_only(dh, dc, cache):
    x_t, h_prev, c_prev, W_x, W_h, i, f, g, o, tc = cache
    zero = np.zeros_like(o)
    da_o = dh * tc * o * (1.0 - o)  # h = o ⊙ tanh(c), then σ' from the output o
    da = np.hstack([zero, zero, zero, da_o])  # (B, 4H), blocks i, f, g, o; only o done
    return da @ W_x.T, da @ W_h.T, zero, x_t.T @ da, h_prev.T @ da, da.sum(axis=0)


first_try = ex.check("lstm_step_backward", lstm_backward_output_gate_only)
assert first_try.status == "failed"

# %% [markdown]
# Read it: in `dW_x`, `dW_h` and `db` the report names the wrong gate blocks, i, f and g, so the
# output gate's block is right; `dc_prev` is all zeros, and the "likely" line names the missing
# forget-gate path $\partial L/\partial c_{t-1} = \partial L/\partial c_t \odot f_t$; `dx_t` and
# `dh_prev` are wrong because three of the four gates that feed them are missing. Now the whole step: replace the `raise`
# line, then run the cell after it.

# %%
def my_lstm_step_backward(dh, dc, cache):
    """Backward of an LSTM step (gates i, f, g, o; ``tc = tanh(c)``).

    Returns ``dx_t, dh_prev, dc_prev, dW_x (D, 4H), dW_h (H, 4H), db (4H,)``.
    """
    x_t, h_prev, c_prev, W_x, W_h, i, f, g, o, tc = cache
    # BEGIN SOLUTION
    d_cell = dc + dh * o * (1.0 - tc * tc)  # both ways c_t reaches the loss
    d_o = dh * tc  # h = o ⊙ tanh(c)
    d_i, d_f, d_g = d_cell * g, d_cell * c_prev, d_cell * i  # c = f ⊙ c_prev + i ⊙ g
    d_gates = np.hstack([d_i * i * (1.0 - i), d_f * f * (1.0 - f),  # σ' from the outputs
                         d_g * (1.0 - g * g), d_o * o * (1.0 - o)])  # (B, 4H): i, f, g, o
    return (d_gates @ W_x.T, d_gates @ W_h.T, d_cell * f,  # dx_t, dh_prev, dc_prev
            x_t.T @ d_gates, h_prev.T @ d_gates, d_gates.sum(axis=0))  # dW_x, dW_h, db
    # END SOLUTION

# %%
mine = ex.check("lstm_step_backward", my_lstm_step_backward)
assert mine.status in ("passed", "not implemented"), "read the report above"

# %% [markdown]
# ## 6. Longer exercise: the GRU step backward, both forms
#
# One function for both forms: the cache ends with the flag `reset_after`, and holds
# `hn_or_rh` $= h_{t-1} W_{hn} + b_{hn}$ for the reset-after form, $r_t \odot h_{t-1}$ for Cho's.
# Return `dx_t, dh_prev, dW_x (D, 3H), dW_h (H, 3H), db_x (3H,), db_h (3H,)`. Hints:
#
# - $h_t = (1 - z_t) \odot n_t + z_t \odot h_{t-1}$ reaches $h_{t-1}$ **directly** (times $z_t$)
#   as well as through the three gates;
# - in the reset-after form, $r_t$ multiplies `hn_or_rh`, and $h_{t-1}$ reaches all three gates
#   through the one product `h_prev @ W_h`;
# - in Cho's form, $n_t$ reads $r_t \odot h_{t-1}$: its gradient splits into one part for $r_t$
#   and one for $h_{t-1}$, and `dW_h`'s block n is `hn_or_rh.T @ (...)`, not `h_prev.T @ (...)`;
# - `db_x` and `db_h` differ only in block n of the reset-after form.
#
# `ex.check("gru_step_backward", fn)` checks the reset-after form, `"gru_cho_step_backward"`
# Cho's.

# %%
def my_gru_step_backward(dh, cache):
    """Backward of a GRU step (gates r, z, n; docs/equations.md §1).

    ``reset_after`` tells which candidate form the forward used. Returns
    ``dx_t, dh_prev, dW_x (D, 3H), dW_h (H, 3H), db_x (3H,), db_h (3H,)``.
    For ``reset_after=True``, ``hn_or_rh = h_prev @ W_hn + b_hn``; for
    ``reset_after=False`` it is ``r ⊙ h_prev``.
    """
    x_t, h_prev, W_x, W_h, r, z, n, hn_or_rh, reset_after = cache
    # BEGIN SOLUTION
    two_h = 2 * h_prev.shape[1]  # the r and z blocks
    d_hp = dh * z  # the direct path h_prev -> h
    d_an = dh * (1.0 - z) * (1.0 - n * n)  # through n = tanh(a_n)
    d_az = dh * (h_prev - n) * z * (1.0 - z)  # through z
    if reset_after:  # a_n = ... + r ⊙ (h_prev W_hn + b_hn)
        d_ar = d_an * hn_or_rh * r * (1.0 - r)
        d_rec_n = d_an * r  # gradient of h_prev W_hn + b_hn
    else:  # a_n = ... + (r ⊙ h_prev) W_hn + b_hn
        d_rh = d_an @ W_h[:, two_h:].T
        d_ar = d_rh * h_prev * r * (1.0 - r)
        d_hp = d_hp + d_rh * r
        d_rec_n = d_an  # gradient of (r ⊙ h_prev) W_hn + b_hn
    d_inp = np.hstack([d_ar, d_az, d_an])  # gradient of x_t W_x + b_x, (B, 3H)
    d_rec = np.hstack([d_ar, d_az, d_rec_n])  # gradient of the recurrent terms, (B, 3H)
    if reset_after:
        d_hp = d_hp + d_rec @ W_h.T  # all three gates read h_prev W_h
        d_Wh = h_prev.T @ d_rec
    else:
        d_hp = d_hp + d_rec[:, :two_h] @ W_h[:, :two_h].T  # r and z read h_prev
        d_Wh = np.hstack([h_prev.T @ d_rec[:, :two_h], hn_or_rh.T @ d_rec_n])
    return (d_inp @ W_x.T, d_hp, x_t.T @ d_inp, d_Wh, d_inp.sum(axis=0), d_rec.sum(axis=0))
    # END SOLUTION

# %%
mine_gru = ex.check("gru_step_backward", my_gru_step_backward)
mine_cho = ex.check("gru_cho_step_backward", my_gru_step_backward)
assert {mine_gru.status, mine_cho.status} <= {"passed", "not implemented"}, "read the reports"

# %% [markdown]
# ## 7. The library's backward passes, checked
#
# Now that you have written them, the library's `lstm_step_backward` and `gru_step_backward`
# (`tinyattn/lstm.py`, `tinyattn/gru.py`) are the same arithmetic, and from here on we use them.
#
# The library's checker (lesson 00) on the three step functions and the three layers: every
# entry of every input and parameter, centered differences, float64. **What to expect:** a
# correct backward gives relative errors from about $10^{-10}$ to a few times $10^{-8}$, under
# the tolerances
# $10^{-7}$ for a step function (`TOL_STEP`) and $10^{-6}$ for a layer (`TOL_LAYER`). With
# `gates=`, a failure would be reported per gate block (r, z, n or i, f, g, o). The full table of
# the LSTM step first, then one line per check:

# %%
from tinyattn.gru import gru_step_backward  # only now, after the exercises
from tinyattn.lstm import lstm_step_backward

gru_gates = dict.fromkeys(("W_x", "W_h", "b_x", "b_h"), ta.GRU.GATES)
lstm_gates = dict.fromkeys(("W_x", "W_h", "b"), ta.LSTM.GATES)
gru_args = [a.copy() for a in (x_t, h_prev, W_x, W_h, b_x, b_h)]
lstm_args = [a.copy() for a in (x_t, h_prev, c_prev, W_x4, W_h4, b4)]

checks = {
    "LSTM step": check_function(lstm_step_forward, lstm_step_backward, *lstm_args,
                                gates=lstm_gates),
    "GRU step, reset after (PyTorch)": check_function(
        gru_step_forward, gru_step_backward, *gru_args, gates=gru_gates, reset_after=True),
    "GRU step, reset before (Cho)": check_function(
        gru_step_forward, gru_step_backward, *gru_args, gates=gru_gates, reset_after=False),
    "GRU layer, reset after": check_module(
        ta.GRU(D, H, rng=np.random.default_rng(2)), xs, h0),
    "GRU layer, reset before": check_module(
        ta.GRU(D, H, reset_after=False, rng=np.random.default_rng(2)), xs, h0),
    "LSTM layer": check_module(ta.LSTM(D, H, rng=np.random.default_rng(2)), xs, (h0, c0)),
}
print(checks["LSTM step"], "\n")
for name, res in checks.items():
    print(f"{name:32} max rel error {res.max_error:.1e}   (tolerance {res.tol:.0e})")
    assert res.passed and res.max_error < (TOL_STEP if "step" in name else TOL_LAYER)

# %% [markdown]
# **The additive path, in the library's backward.** Between $c_{t-1}$ and $c_t$ there is no
# matrix and no squashing function, only an elementwise product with $f_t$ and a sum. So the gradient that reaches
# $c_t$ (from later steps) passes to $c_{t-1}$ multiplied by $f_t$ and nothing else:
# $\partial L/\partial c_{t-1} \mathrel{+}= \partial L/\partial c_t \odot f_t$.
# Compare the RNN, where the gradient reaching $h_t$ is multiplied by $1 - h_t^2$ and by
# $W_{hh}^\top$ before it reaches $h_{t-1}$. The library's step backward shows it: give it an
# upstream gradient on $c$ only, and the gradient handed back to $c_{t-1}$ is exactly that
# gradient times $f$ (section 3's gates and cache).

# %%
dc_up = rng.standard_normal((B, H))
dh_none = np.zeros((B, H))
_, _, dc_back, *_ = lstm_step_backward(dh_none, dc_up, lstm_cache)
assert np.allclose(dc_back, dc_up * f)  # one elementwise product: the forget-gate path
print("dL/dc_t:\n", dc_up)
print("dL/dc_(t-1) = dL/dc_t * f:\n", dc_back)

# %% [markdown]
# **Cut that path and the checker sees it.** The library's backward called with `dc` replaced by
# zeros is the "dropped dc_next" bug: what $c_{t+1}$ sent back is lost.

# %%
def lstm_backward_dropped_dc(dh, dc, cache):
    return lstm_step_backward(dh, np.zeros_like(dc), cache)  # BUG: what c_{t+1} sent is lost


dropped = ex.check("lstm_step_backward", lstm_backward_dropped_dc)
assert dropped.status == "failed"

# %% [markdown]
# Every gradient is wrong, but in the weight gradients only the blocks of gates i, f and g: the
# output gate's block is right, because $o$ multiplies $\tanh(c_t)$ and its gradient does not
# depend on what reaches $c_t$ from later steps. The chained check is wrong at every step, and the
# "likely" line names the bug.

# %% [markdown]
# ## 8. How far back does the gradient reach? RNN, GRU and LSTM
#
# The experiment of lesson 01, section 5, for all three cells: one sequence (B = 1) of T = 50
# steps, D = 8, H = 32, inputs drawn from a standard normal, the **same inputs** for all three; a
# loss that reads only the last state, $L = h_T \cdot u$ with $\|u\| = 1$; and the norm of
# $\partial L/\partial h_t$ at every step. For the LSTM also $\partial L/\partial c_t$, the
# gradient reaching the cell, which arrives two ways: through $h_t = o_t \odot \tanh(c_t)$ and
# through $c_{t+1} = f_{t+1} \odot c_t + \dots$.
#
# **Comparable initialisation.** Each layer gets the library's default, PyTorch's: every weight
# and bias uniform in $\pm 1/\sqrt{H}$, from the same seed. With biases near 0, every sigmoid
# gate starts near $\sigma(0) = 0.5$. We then repeat the GRU and the LSTM with their "keep" gates
# pushed towards 1 by adding 2 to one bias block: the update gate $z$ of the GRU
# ($h_t = (1 - z_t) \odot n_t + z_t \odot h_{t-1}$, so $z = 1$ keeps the state) and the forget
# gate $f$ of the LSTM. Adding 1 or more to the forget gate's bias at initialisation is a common
# recommendation (Jozefowicz et al. 2015; Keras does it by default, `unit_forget_bias=True`);
# tinyattn, like PyTorch, leaves the bias at the default, so here is how to do it yourself.
#
# The per-step loops use the layers' own `step` and `step_backward` (what a decoder calls).
#
# **Predict.** Fifty steps back, at the default initialisation (gates near 0.5), will the LSTM's
# $\|\partial L/\partial h_0\|$ be many orders of magnitude larger than the RNN's, or about the
# same? And with the forget gate's bias raised by 2? The columns `|dL/dh_0|` and `|dL/dc_0|`
# answer it.

# %%
Bx, Tx, Dx, Hx = 1, 50, 8, 32
rng_x = np.random.default_rng(3)
x_long = rng_x.standard_normal((Bx, Tx, Dx))
u = rng_x.standard_normal((Bx, Hx))
u /= np.linalg.norm(u)  # dL/dh_T, norm 1


def make(kind, keep_bias=0.0):
    """A layer with the default initialisation (seed 1); keep_bias is added to the bias of
    the GRU's update gate z or the LSTM's forget gate f."""
    Layer = {"RNN": ta.RNN, "GRU": ta.GRU, "LSTM": ta.LSTM}[kind]
    layer = Layer(Dx, Hx, rng=np.random.default_rng(1))
    if kind == "GRU":
        layer.params["b_x"][Hx:2 * Hx] += keep_bias  # block z of r, z, n
    elif kind == "LSTM":
        layer.params["b"][Hx:2 * Hx] += keep_bias  # block f of i, f, g, o
    return layer


def gradient_flow(layer):
    """dL/dh_t (and dL/dc_t for an LSTM) for t = 0..T, as (T+1, B, H) arrays, for
    L = u . h_T; and the mean of the keep gate (z or f) over all steps and units."""
    is_lstm = isinstance(layer, ta.LSTM)
    zero = np.zeros((Bx, Hx))
    state, caches = ((zero, zero) if is_lstm else zero), []
    for t in range(Tx):
        state, cache = layer.step(x_long[:, t], state)
        caches.append(cache)
    layer.zero_grad()  # step_backward adds weight gradients; we only need the states'
    dh, dc = u, zero  # the loss reads h_T only
    dhs, dcs = [dh], []
    for t in reversed(range(Tx)):
        if is_lstm:
            o_t, tanh_c = caches[t][8], caches[t][9]
            dcs.append(dc + dh * o_t * (1 - tanh_c ** 2))  # dL/dc_t: through h_t and c_{t+1}
            _, (dh, dc) = layer.step_backward((dh, dc), caches[t])
        else:
            _, dh = layer.step_backward(dh, caches[t])
        dhs.append(dh)
    keep = None
    if isinstance(layer, ta.GRU):
        keep = np.mean([cache[5] for cache in caches])  # z
    elif is_lstm:
        keep = np.mean([cache[6] for cache in caches])  # f
        dcs.append(dc)  # dL/dc_0
        dcs = np.array(dcs[::-1])
    return np.array(dhs[::-1]), (dcs if is_lstm else None), keep


models = {"RNN": make("RNN"), "GRU": make("GRU"), "LSTM": make("LSTM"),
          "GRU, z bias +2": make("GRU", 2.0), "LSTM, f bias +2": make("LSTM", 2.0)}
flows = {name: gradient_flow(layer) for name, layer in models.items()}

print(f"{'model':16} {'mean z or f':>11} {'|dL/dh_25|':>11} {'|dL/dh_0|':>10} "
      f"{'|dL/dc_0|':>10} {'factor per step':>16}")
for name, (dh_all, dc_all, keep) in flows.items():
    nh = np.linalg.norm(dh_all, axis=(1, 2))
    nc = "" if dc_all is None else f"{np.linalg.norm(dc_all[0]):.1e}"
    keep_text = "-" if keep is None else f"{keep:.3f}"
    print(f"{name:16} {keep_text:>11} {nh[25]:11.1e} {nh[0]:10.1e} {nc:>10} "
          f"{(nh[0] / nh[-1]) ** (1 / Tx):16.3f}")

# %% [markdown]
# Two checks against the layers' own `backward` (the whole-sequence BPTT of lesson 01): the
# per-step loop's $\partial L/\partial h_0$ (and $\partial L/\partial c_0$) is what
# `layer.backward` returns for the initial state. And in the middle of the sequence: start the
# LSTM at $(h_{25}, c_{25})$ and let it read the last 25 inputs; its `backward` returns
# $\partial L/\partial h_{25}$, and, for the cell, only the route through $c_{26}$. Adding the
# route through $h_{25} = o_{25} \odot \tanh(c_{25})$ gives the loop's $\partial L/\partial c_{25}$.

# %%
no_dhs = np.zeros((Bx, Tx, Hx))
for name, layer in models.items():
    dh_all, dc_all, _ = flows[name]
    layer.zero_grad()
    layer(x_long)  # zero initial state(s)
    if isinstance(layer, ta.LSTM):
        _, (dh0, dc0) = layer.backward(no_dhs, (u, None))
        assert np.allclose(dc0, dc_all[0])
    else:
        _, dh0 = layer.backward(no_dhs, u)
    assert np.allclose(dh0, dh_all[0])

lstm_f = models["LSTM, f bias +2"]
dh_all, dc_all, _ = flows["LSTM, f bias +2"]
_, (h_24, c_24) = lstm_f(x_long[:, :24])  # the state after 24 steps
(h_25, c_25), cache_25 = lstm_f.step(x_long[:, 24], (h_24, c_24))  # step 25
lstm_f.zero_grad()
lstm_f(x_long[:, 25:], (h_25, c_25))  # steps 26..50, started from (h_25, c_25)
_, (dh_25, dc_25_next) = lstm_f.backward(no_dhs[:, 25:], (u, None))
assert np.allclose(dh_25, dh_all[25])
o_25, tanh_c25 = cache_25[8], cache_25[9]
assert np.allclose(dc_25_next + dh_25 * o_25 * (1 - tanh_c25 ** 2), dc_all[25])  # both routes
print("per-step loops agree with layer.backward")

# %%
colors = {"RNN": "tab:gray", "GRU": "tab:blue", "LSTM": "tab:red"}
fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharey=True)
t_axis = np.arange(Tx + 1)
panels = [("default initialisation: gates near 0.5", ("RNN", "GRU", "LSTM")),
          ("keep gates pushed towards 1 (bias +2)", ("RNN", "GRU, z bias +2", "LSTM, f bias +2"))]
for ax, (title, names) in zip(axes, panels):
    for name in names:
        dh_all, dc_all, _ = flows[name]
        color = colors[name.split(",")[0]]
        ax.semilogy(t_axis, np.linalg.norm(dh_all, axis=(1, 2)), "-", color=color, lw=1.6,
                    label=f"{name}: ‖∂L/∂h_t‖")
        if dc_all is not None:
            ax.semilogy(t_axis, np.linalg.norm(dc_all, axis=(1, 2)), "--", color=color, lw=1.6,
                        label=f"{name}: ‖∂L/∂c_t‖")
    ax.set_title(title)
    ax.set_xlabel("step t (the loss reads only h_50)")
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
axes[0].set_ylabel("gradient norm (log scale)")
fig.suptitle("How far back the gradient reaches: vanilla RNN, GRU and LSTM on the same inputs")
fig.tight_layout()
plt.show()

# %% [markdown]
# **What the figure shows** (and the answer).
#
# - **At the default initialisation (left), the gates do not help by themselves.** All three
#   curves fall geometrically, the gated cells barely slower than the RNN: by a factor of 0.567
#   (RNN), 0.616 (GRU) and 0.598 (LSTM) per step, so that 50 steps back
#   $\|\partial L/\partial h_0\|$ is $4.6 \times 10^{-13}$, $2.9 \times 10^{-11}$ and
#   $6.6 \times 10^{-12}$. The gates sit near 0.5 (mean $z$ 0.498, mean $f$ 0.493), and a path
#   multiplied by about 0.5 at every step vanishes as surely as one multiplied by
#   $\text{diag}(1 - h_t^2) W_{hh}^\top$.
# - **With the keep gates pushed towards 1 (right), the gradient survives.** With the forget
#   gate's bias raised by 2, $f$ averages 0.872, and 50 steps back the LSTM still has
#   $\|\partial L/\partial c_0\| = 2.4 \times 10^{-2}$ and
#   $\|\partial L/\partial h_0\| = 8.2 \times 10^{-3}$: about ten orders of magnitude more than
#   the RNN. Its $\partial L/\partial h_t$ first falls fast over the last few steps, then levels
#   off near $10^{-2}$, carried by the cell: $h_t$ feeds the gates and the candidate of step
#   $t+1$, which write into $c_{t+1}$, so part of what reaches the cell flows on to $h_t$. The GRU
#   with its update gate pushed to 0.876 behaves alike ($3.9 \times 10^{-3}$ at $t = 0$): its
#   direct path $h_t = z_t \odot h_{t-1} + \dots$ multiplies the gradient by $z_t$,
#   elementwise, and its curve is a straight line with a gentle slope.
# - **Why the additive path helps.** Going back one step along the cell multiplies the gradient
#   by $f_t$ **elementwise**: no $W^\top$, no $1 - \tanh^2$. Over $k$ steps that is the
#   product of the $f$'s, unit by unit, and the network itself sets how close to 1 they are:
#   $0.5^{50} \approx 10^{-15}$, $0.87^{50} \approx 10^{-3}$, $0.99^{50} \approx 0.6$. Nothing
#   in this path forces the gradient to vanish, and, since every $f < 1$, it cannot explode along
#   it either. (The 1997 LSTM had no forget gate at all, in effect $f = 1$: Hochreiter and
#   Schmidhuber's "constant error carousel"; Gers et al. 2000 added $f$ so that the cell can
#   also forget.) The RNN has no such knob: to carry the
#   gradient further it needs a larger $W_{hh}$, and lesson 01 showed where that leads.
# - **And the gates are learned**, per unit and per step, from the input and the state: a
#   trained LSTM can hold $f \approx 1$ on the units that must remember something and let the
#   others forget. The curves here are at initialisation, on random inputs; they show what each
#   architecture *allows*, not what a trained model does.

# %% [markdown]
# **To remember.**
#
# - Gates are sigmoids between 0 and 1 that scale, elementwise, what is kept, written and
#   shown. The library stacks them in PyTorch's order: GRU r, z, n in `W_x (D, 3H)`,
#   `W_h (H, 3H)`; LSTM i, f, g, o in `W_x (D, 4H)`, `W_h (H, 4H)`.
# - The GRU has two forms: Cho et al. 2014 resets $h_{t-1}$ *before* the product with
#   $W_{hn}$, cuDNN/PyTorch *after* it (one product per step for all gates). They are different
#   functions; tinyattn has both (`reset_after=`), defaulting to PyTorch's.
# - The LSTM's cell path $c_t = f_t \odot c_{t-1} + i_t \odot g_t$ passes the gradient back
#   multiplied by $f_t$ only. With $f$ near 1 it reaches far back; with $f \approx 0.5$ (a
#   default initialisation) it vanishes like an RNN's, hence the forget-gate bias of 1 or more.
#
# **Try it yourself.** In section 8, try forget-gate biases of +1 and +3, and the RNN with the
# orthogonal $W_{hh}$ of lesson 01; multiply the inputs by 3 and see which cells suffer from
# saturation. Train lesson 05's model with LSTMs (`Seq2Seq(..., cell="lstm")`: encoder and
# decoder) and compare the exact match.
#
# **Next.** Lesson 03: the bidirectional encoder, two of these layers reading the source in
# opposite directions.
