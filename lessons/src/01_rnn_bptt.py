# Source of lessons/01_rnn_bptt.ipynb (learner) and lessons/solutions/01_rnn_bptt.ipynb
# (instructor): edit here, then run `.venv/bin/python lessons/build.py 01` (see lessons/build.py).

# %% [markdown]
# # Lesson 01 — The vanilla RNN and backpropagation through time
#
# **Goal.** Every encoder and decoder in tinyattn is a recurrent network: it reads a sequence one
# step at a time and carries a hidden state (隐藏状态) from step to step. In this lesson you will
#
# 1. write the vanilla RNN's one equation and run it over a short sequence, step by step and with
#    the library's `RNN` layer, and check that both agree;
# 2. write the backward of the output layer and its loss, $o_t = \text{softmax}(h_t W_{hy} + b_y)$
#    and the cross-entropy of the target token (exercise `rnn_output_loss_backward`);
# 3. write **backpropagation through time** (BPTT, 随时间反向传播) for a whole sequence: a loop
#    backwards over the steps that carries the gradient of the state from each step to the one
#    before (exercise `rnn_backward`), then check the library's `RNN.backward` against it and
#    gradient-check the layer;
# 4. **measure** vanishing and exploding gradients (梯度消失 / 梯度爆炸) and see where they come
#    from: a product of one Jacobian per step;
# 5. clip the gradient norm (梯度裁剪) with `tinyattn.clip_grad_norm` and see what it fixes and
#    what it cannot.
#
# **Sources.** `docs/equations.md` §1. Document 003 (`docs/sources.md`, "从 Seq2seq 到 Attention
# 模型到 Self Attention（一）"), its section "RNN/LSTM", describes the RNN in words (its formula
# images are lost): the hidden state $h_t$ is a memory unit computed from the previous hidden
# state and the current input; the output $o_t$ depends only on $h_t$; and the vanishing /
# exploding gradient (its figure 4; section 5 below measures it). The papers: J. L. Elman,
# *Finding structure in time*, Cognitive Science 14 (1990) (the "simple recurrent network"
# written below); P. J. Werbos,
# *Backpropagation through time: what it does and how to do it*, Proc. IEEE 78 (1990);
# Y. Bengio, P. Simard, P. Frasconi, *Learning long-term dependencies with gradient descent is
# difficult*, IEEE Trans. Neural Networks 5 (1994); R. Pascanu, T. Mikolov, Y. Bengio, *On the
# difficulty of training recurrent neural networks*, ICML 2013 (arXiv:1211.5063), for the
# Jacobian product and gradient clipping. The encoder–decoder papers document 003 cites
# (Cho et al. 2014, arXiv:1406.1078; Sutskever et al. 2014, arXiv:1409.3215) use such a
# recurrence as the function $f$ of $h_j = f(x_j, h_{j-1})$ (`docs/equations.md` §2).
#
# The notebook runs in a few seconds.

# %%
import matplotlib.pyplot as plt
import numpy as np

import tinyattn as ta
import tinyattn.exercises as ex
from tinyattn.functional import softmax
from tinyattn.gradcheck import TOL_LAYER, check_module
from tinyattn.rnn import rnn_step_backward, rnn_step_forward  # lesson 00's exercise

np.set_printoptions(precision=3, suppress=True)

# %% [markdown]
# ## 1. The equation
#
# One step of the vanilla (Elman) RNN, in the row-vector form tinyattn uses (one example per row):
#
# $$h_t = \tanh\left(x_t W_{xh} + h_{t-1} W_{hh} + b_h\right), \qquad t = 1, \dots, T,$$
#
# starting from an initial state $h_0$ (zeros unless given). A model that predicts something at
# every step adds an output layer, $o_t = \text{softmax}(h_t W_{hy} + b_y)$: in tinyattn that is
# a separate `Linear` layer, not part of `RNN`. The RNN itself only maps a sequence of inputs to
# a sequence of states.
#
# | maths | meaning | in the code | shape |
# |---|---|---|---|
# | $x_t$ | input at step $t$ | `x[:, t]` | (B, D) |
# | $h_{t-1}$ | state before step $t$ ($h_0$: initial state) | `h_prev`, `h0` | (B, H) |
# | $W_{xh}$ | input weights | `rnn.params["W_xh"]` | (D, H) |
# | $W_{hh}$ | recurrent weights, the same at every step | `rnn.params["W_hh"]` | (H, H) |
# | $b_h$ | bias | `rnn.params["b_h"]` | (H,) |
# | $h_t$ | state after step $t$ | `h` | (B, H) |
# | $h_1 \dots h_T$ | all states | `hs` | (B, T, H) |
#
# **Row vectors.** The papers write $W_{xh} x_t + W_{hh} h_{t-1}$ with column vectors
# (`docs/equations.md` §1.4 gives that form); tinyattn and `docs/equations.md` §1.1 write
# `x_t @ W_xh + h_prev @ W_hh` with `W_xh` of shape (D, H). It is the same maths, transposed.
#
# ![An RNN unrolled over T steps, with BPTT's backward arrows](../docs/images/rnn_unrolled.png)
#
# In the figure, follow one weight matrix: the same $W_{hh}$ sits on every horizontal arrow, so
# its gradient collects a term from every step; and follow the backward arrows from right to
# left: the gradient reaching $h_t$ comes from its own output *and* from $h_{t+1}$.
#
# **What document 003 says.** "We can regard the hidden state $h_t$ as a memory unit" (记忆单元):
# it is computed from the previous step's hidden state and the current input, so it can capture
# what happened at all earlier steps, while the output $o_t$ depends only on $h_t$. It adds that,
# "just like a human brain, once the memory needed is too large, it becomes forgetful" (健忘):
# section 5 measures why.

# %% [markdown]
# ## 2. A sequence, step by step and with the layer
#
# A batch of B = 2 sequences of T = 4 steps, D = 3 inputs, H = 5 hidden units: small and all
# different, so a transposed matrix cannot hide. We build the library's layer (float64 by default)
# and run the step function `rnn_step_forward` over the steps ourselves with the layer's weights.

# %%
B, T, D, H = 2, 4, 3, 5
rng = np.random.default_rng(0)
rnn = ta.RNN(D, H, rng=rng)
W_xh, W_hh, b_h = (rnn.params[k] for k in ("W_xh", "W_hh", "b_h"))
assert W_xh.shape == (D, H) and W_hh.shape == (H, H) and b_h.shape == (H,)

x = rng.standard_normal((B, T, D))
h0 = rng.standard_normal((B, H))


def rnn_forward_steps(x, h0, W_xh, W_hh, b_h):
    """Run rnn_step_forward over x (B, T, D): the states hs (B, T, H) and one cache per step."""
    h, hs, caches = h0, [], []
    for t in range(x.shape[1]):
        h, cache = rnn_step_forward(x[:, t], h, W_xh, W_hh, b_h)  # (B, H)
        hs.append(h)
        caches.append(cache)
    return np.stack(hs, axis=1), caches  # T arrays (B, H) -> (B, T, H)


# the first step written out, then all steps with the step function
h1 = np.tanh(x[:, 0] @ W_xh + h0 @ W_hh + b_h)  # (B, D) @ (D, H) + (B, H) @ (H, H) + (H,)
hs_steps, caches = rnn_forward_steps(x, h0, W_xh, W_hh, b_h)
assert h1.shape == (B, H) and hs_steps.shape == (B, T, H)
assert np.allclose(h1, hs_steps[:, 0])

# the layer: all states and the final one
hs, h_T = rnn(x, h0)
assert hs.shape == (B, T, H) and h_T.shape == (B, H)
assert np.allclose(hs, hs_steps) and np.allclose(h_T, hs[:, -1])
print("states of example 0, one row per step t = 1..4:\n", hs[0])

# %% [markdown]
# The layer does the same arithmetic in a faster order (`docs/design.md` §4): the input projections
# $x_t W_{xh} + b_h$ of all steps in one matrix product before the loop, so only
# $h_{t-1} W_{hh}$ is left inside it. The recurrence itself cannot be vectorised over $t$:
# $h_t$ needs $h_{t-1}$.
#
# **The papers' column form** (`docs/equations.md` §1.4). A paper writes
# $h_t = \tanh(W_{xh} x_t + W_{hh} h_{t-1} + b_h)$ with column vectors and its $W_{xh}$ of shape
# (H, D): the transpose of ours. Stack the B examples as columns, use the transposed matrices,
# and the first step must give our states, transposed. The backward factor likewise: in column
# form the gradient reaching $h_{t-1}$ is $W_{hh}^\top \text{diag}(1 - h_t^2)\, dh_t$ with the
# paper's $W_{hh}$, our row form's `(dh * (1 - h**2)) @ W_hh.T` transposed.

# %%
W_xh_paper, W_hh_paper = W_xh.T, W_hh.T  # (H, D), (H, H): the papers' matrices
X_col, H0_col = x[:, 0].T, h0.T  # one column per example: (D, B), (H, B)
H1_col = np.tanh(W_xh_paper @ X_col + W_hh_paper @ H0_col + b_h[:, None])  # (H, B)
assert np.allclose(H1_col.T, hs[:, 0])  # the row form of the layer's first step, transposed

dh1 = np.random.default_rng(1).standard_normal((B, H))  # some gradient reaching h_1
dh0_row = rnn_step_backward(dh1, caches[0])[1]  # the library's step backward, row form
dh0_col = W_hh_paper.T @ ((1 - H1_col**2) * dh1.T)  # W_hhᵀ diag(1 − h_1²) dh_1, per column
assert np.allclose(dh0_col.T, dh0_row)
print("column form = row form transposed, forward and backward:",
      np.allclose(H1_col.T, hs[:, 0]) and np.allclose(dh0_col.T, dh0_row))

# %% [markdown]
# Nothing but the layout differs, so a paper's equation can be read into the code by transposing
# every matrix (and every weight loaded from a column-form framework, as
# `tinyattn.interop` does for PyTorch's).

# %% [markdown]
# ## 3. The output layer and its loss
#
# A model that predicts a token at every step (a language model, a decoder) puts an output layer on
# each state, `docs/equations.md` §1.1:
#
# $$z_t = h_t W_{hy} + b_y, \qquad o_t = \text{softmax}(z_t), \qquad
# \ell_t = -\log o_t[y_t],$$
#
# with $W_{hy}$ (H, V), $b_y$ (V,), $V$ the vocabulary size and $y_t$ the target token. Over a batch
# the loss is the **mean** over the $B$ examples, as the library's `sequence_cross_entropy`
# averages over the real tokens (`docs/equations.md` §6). In tinyattn the output layer is a
# separate `Linear` layer, not part of `RNN`.
#
# The softmax is never computed as written: $e^{z}$ overflows float64 as soon as $z$ exceeds
# $\log$ of the largest float64 (printed below).
# Subtracting the row's maximum first changes nothing mathematically
# ($e^{z - m} / \sum e^{z - m} = e^z / \sum e^z$) and keeps every exponent at most 0.
#
# **Predict.** What does the textbook formula `np.exp(z) / np.exp(z).sum()` return for the logits
# `z = [1000, 999, 0]`, and what should the probabilities be?

# %%
z = np.array([[1000.0, 999.0, 0.0]])
with np.errstate(over="ignore", invalid="ignore"):  # silence the overflow warning, show the result
    naive = np.exp(z) / np.exp(z).sum(axis=-1, keepdims=True)
print("largest z with a finite exp(z):", np.log(np.finfo(np.float64).max))
print("textbook formula:", naive)
print("tinyattn softmax:", softmax(z))
assert np.isnan(naive).any() and np.allclose(softmax(z).sum(), 1.0)

# %% [markdown]
# `np.exp(1000)` is `inf`, and `inf / inf` is `nan`: the textbook formula returns nothing usable.
# The library's softmax shifts by the maximum, so it computes $e^{0}$, $e^{-1}$, $e^{-1000}$
# (which underflows to exactly 0, harmlessly) and returns the probabilities printed above.
#
# **Your turn: the backward of the output layer and its loss.** The forward (the exercise's, built
# from the library's softmax and `sequence_cross_entropy`) returns the scalar loss and the cache
# `(h, W_hy, o, targets)`, with `o (B, V)` the softmax. Write
# `dh, dW_hy, db_y = backward(dloss, cache)`, where `dloss` is the upstream gradient of the loss
# (1 when the loss ends the graph; the checker uses a random one). Hints:
#
# - write $-\log o[y] = -z_y + \log \sum_k e^{z_k}$ and differentiate with respect to each $z_k$:
#   the result is one short expression in $o$ and the one-hot row of $y$;
# - the loss is a mean over $B$ examples; multiply by `dloss`;
# - then $z = h W_{hy} + b_y$ is the product of lesson 00.
#
# `ex.check` grades it with the gradient checker. First, what it says about a backward that takes
# the gradient of $\log \sum_k e^{z_k}$ and forgets the $-z_y$ term:

# %%
def output_backward_no_target(dloss, cache):
    h, W_hy, o, targets = cache
    dz = o / h.shape[0] * dloss  # BUG: the −1 at each row's target is missing
    return dz @ W_hy.T, h.T @ dz, dz.sum(axis=0)


no_target = ex.check("rnn_output_loss_backward", output_backward_no_target)
assert no_target.status == "failed"

# %% [markdown]
# All three gradients fail and the checker names the missing target term. (A wrong *shape*, such as
# `dz.T @ h` for `dW_hy` or a `db_y` not summed over the batch, is reported before any number is
# compared, with what the shape suggests.) Now yours: replace the `raise` line, then run the cell
# after it.

# %%
def my_output_loss_backward(dloss, cache):
    """Backward of ``loss = −(1/B) Σ_b log softmax(h W_hy + b_y)[b, target_b]``.

    ``dloss`` is the upstream gradient of the scalar loss (a 0-d array; 1 when
    the loss is the end of the graph); ``o (B, V)`` is the softmax, cached.
    Returns ``dh (B, H), dW_hy (H, V), db_y (V,)``.
    """
    h, W_hy, o, targets = cache
    # BEGIN SOLUTION
    B, V = o.shape
    onehot = np.zeros((B, V))
    onehot[np.arange(B), targets] = 1.0
    dz = (o - onehot) / B * dloss  # d(mean of −log o[y]) / dz, times the upstream gradient
    return dz @ W_hy.T, h.T @ dz, dz.sum(axis=0)  # dh (B, H), dW_hy (H, V), db_y (V,)
    # END SOLUTION

# %%
mine_out = ex.check("rnn_output_loss_backward", my_output_loss_backward)
assert mine_out.status in ("passed", "not implemented"), "read the report above"

# %% [markdown]
# The library's loss returns the same gradient of the logits, $(o - \text{onehot}(y)) / N$ with
# $N$ the number of real tokens (here every token is real, so $N = B$):

# %%
rng_o = np.random.default_rng(5)
logits = rng_o.standard_normal((3, 1, 7))  # B = 3 examples, one step, V = 7
targets = np.array([[4], [0], [6]])
loss, dlogits = ta.sequence_cross_entropy(logits, targets, np.ones((3, 1), dtype=bool))
o = softmax(logits[:, 0])
assert np.isclose(loss, -np.mean(np.log(o[np.arange(3), targets[:, 0]])))
assert np.allclose(dlogits[:, 0], (o - np.eye(7)[targets[:, 0]]) / 3)
print(f"loss {loss:.4f}; dlogits of example 0: {dlogits[0, 0]}")

# %% [markdown]
# ## 4. Backpropagation through time
#
# A loss $L$ reads the states: each $h_t$ gets a **direct** upstream gradient $\delta_t$ from
# whatever uses it (the output layer of section 3, an attention module), `dhs[:, t]` in the code,
# and the final state may get one more, `dh_T`. But $h_t$ also feeds step $t+1$, so the **total**
# gradient reaching $h_t$ has two parts:
#
# $$\frac{\partial L}{\partial h_t} = \delta_t + \underbrace{\frac{\partial L}{\partial a_{t+1}}
# W_{hh}^\top}_{\text{from step } t+1}, \qquad
# \frac{\partial L}{\partial a_t} = \frac{\partial L}{\partial h_t} \odot (1 - h_t^2),$$
#
# with $a_t = x_t W_{xh} + h_{t-1} W_{hh} + b_h$ the pre-activation ($\tanh' = 1 - \tanh^2$, taken
# from the stored output $h_t$). So we walk the steps **backwards**, $t = T, \dots, 1$, carrying
# `dh_next` from each step to the one before; at $t = T$ it is `dh_T`. And since the same weights
# are used at every step, their gradients are **sums over the steps**:
#
# $$\frac{\partial L}{\partial W_{xh}} = \sum_t x_t^\top \frac{\partial L}{\partial a_t}, \qquad
# \frac{\partial L}{\partial W_{hh}} = \sum_t h_{t-1}^\top \frac{\partial L}{\partial a_t}, \qquad
# \frac{\partial L}{\partial b_h} = \sum_t \sum_{\text{batch}} \frac{\partial L}{\partial a_t}.$$
#
# One step's part of this is exactly `rnn_step_backward`, the function you wrote in lesson 00:
# given $\partial L / \partial h_t$ it returns `dx_t, dh_prev, dW_xh, dW_hh, db_h`. BPTT is that
# function called once per step, in reverse:

# %%
def bptt_steps(caches, dhs, dh_T):
    """BPTT with rnn_step_backward. Returns dx (B, T, D), dh0 (B, H), the weight gradients
    (a dict) and dh_all (B, T, H), the total gradient dL/dh_t that reached each state."""
    steps = len(caches)
    grads = {"W_xh": 0.0, "W_hh": 0.0, "b_h": 0.0}
    dxs, dh_all = [None] * steps, [None] * steps
    dh_next = dh_T  # what reaches h_T from after the sequence
    for t in reversed(range(steps)):
        dh = dhs[:, t] + dh_next  # h_t feeds the output at t and the step t+1
        dh_all[t] = dh
        dxs[t], dh_next, dW_xh, dW_hh, db_h = rnn_step_backward(dh, caches[t])
        grads["W_xh"] += dW_xh  # the same weights at every step: their gradients add up
        grads["W_hh"] += dW_hh
        grads["b_h"] += db_h
    return np.stack(dxs, axis=1), dh_next, grads, np.stack(dh_all, axis=1)


dhs = rng.standard_normal((B, T, H))  # upstream gradients of every state
dh_T = rng.standard_normal((B, H))  # and one more for the final state
dx_hand, dh0_hand, grads_hand, dh_all = bptt_steps(caches, dhs, dh_T)
assert dx_hand.shape == (B, T, D) and dh0_hand.shape == (B, H) and dh_all.shape == (B, T, H)
print("dh0 (by hand):\n", dh0_hand)
print("|dL/dh_t| per step, example 0:", np.linalg.norm(dh_all[0], axis=1))

# %% [markdown]
# **Your turn: BPTT for a whole sequence.** `bptt_steps` called `rnn_step_backward` at every step
# and added up five gradients per step. Now write the whole backward pass of the layer yourself,
# the way the library's `RNN` organises it (`docs/design.md` §4):
#
# - **no** call to `rnn_step_backward`: inside the loop, only $\partial L/\partial h_t$ (with the
#   carried `dh_next`) and $\partial L/\partial a_t = \partial L/\partial h_t \odot (1 - h_t^2)$,
#   stored for every step in an array `dA` of shape (B, T, H);
# - **after** the loop, each weight gradient as one product over all steps and the whole batch
#   (hint: `np.einsum("btd,bth->dh", x, dA)` is $\sum_{b,t} x_t^\top\, \partial L/\partial a_t$;
#   for $W_{hh}$ you need the *previous* states $h_0, \dots, h_{T-1}$ side by side);
# - return `dx (B, T, D), dh0 (B, H), dW_xh (D, H), dW_hh (H, H), db_h (H,)`.
#
# The exercise's forward runs `rnn_step_forward` over T steps and returns `(hs, h_T)`; your
# function receives their upstream gradients `dhs (B, T, H)` and `dh_T (B, H)`, and the cache
# `(x, h0, hs, W_xh, W_hh)` with `hs` $= h_1 \dots h_T$. `ex.check("rnn_backward", fn)` grades it
# with the gradient checker on every entry of `x`, `h0` and the weights (not by comparison with
# `RNN.backward`), and names likely mistakes. First, the bug the derivation warns about: section
# 4's loop with `dh_next` dropped, so each step sees only its own upstream gradient (a "truncated
# BPTT" of one step).

# %%
def bptt_dropped_dh_next(dhs, dh_T, cache):
    x, h0, hs, W_xh, W_hh = cache
    b_zero = np.zeros(hs.shape[2])  # the step cache does not hold b_h; it is not needed
    T_ = hs.shape[1]
    h_prevs = [h0] + [hs[:, t] for t in range(T_ - 1)]
    # the caches rnn_step_forward would have built: (x_t, h_prev, W_xh, W_hh, h)
    step_caches = [(x[:, t], h_prevs[t], W_xh, W_hh, hs[:, t]) for t in range(T_)]
    grads, dxs = [0.0 * W_xh, 0.0 * W_hh, b_zero], []
    for t in reversed(range(T_)):
        upstream = dhs[:, t] + (dh_T if t == T_ - 1 else 0.0)  # BUG: no dh_next
        dx_t, dh_prev, *dW = rnn_step_backward(upstream, step_caches[t])
        dxs.insert(0, dx_t)
        grads = [acc + g for acc, g in zip(grads, dW)]
    return (np.stack(dxs, axis=1), dh_prev, *grads)


dropped = ex.check("rnn_backward", bptt_dropped_dh_next)
assert dropped.status == "failed"

# %% [markdown]
# All five are wrong: `dx` and the weight gradients miss everything carried back from later
# steps, and `dh0` gets only what step 1 hands back of its own upstream gradient $\delta_1$;
# the "likely" line names the bug. Replace the `raise` line with your code, then run the cell
# after it.

# %%
def my_rnn_backward(dhs, dh_T, cache):
    """BPTT of h_t = tanh(x_t W_xh + h_{t-1} W_hh + b_h) over a whole sequence.

    dhs (B, T, H), dh_T (B, H); cache: x (B, T, D), h0 (B, H), hs (B, T, H) = h_1 .. h_T, W_xh,
    W_hh. Returns dx (B, T, D), dh0 (B, H), dW_xh (D, H), dW_hh (H, H), db_h (H,).
    """
    x, h0, hs, W_xh, W_hh = cache
    # BEGIN SOLUTION
    n_steps = hs.shape[1]
    dA = np.empty_like(hs)  # dL/da_t for every step, (B, T, H)
    carried = dh_T.copy()  # dL/dh_T from after the sequence
    for t in range(n_steps - 1, -1, -1):
        total = carried + dhs[:, t]  # both uses of h_t: the output and the next step
        dA[:, t] = total * (1.0 - hs[:, t] * hs[:, t])  # tanh' from the stored output
        carried = dA[:, t] @ W_hh.T  # (B, H) @ (H, H): hand back to h_{t-1}
    h_before = np.concatenate([h0[:, None, :], hs[:, :-1]], axis=1)  # (B, T, H): h_0..h_{T-1}
    grad_x = dA @ W_xh.T  # (B, T, H) @ (H, D) -> (B, T, D)
    grad_W_xh = np.einsum("btd,bth->dh", x, dA)  # Σ_b Σ_t x_t^T dA_t
    grad_W_hh = np.einsum("bti,btj->ij", h_before, dA)  # Σ_b Σ_t h_{t-1}^T dA_t
    grad_b_h = dA.sum(axis=(0, 1))  # the bias is added at every step and every example
    return grad_x, carried, grad_W_xh, grad_W_hh, grad_b_h
    # END SOLUTION

# %%
mine_bptt = ex.check("rnn_backward", my_rnn_backward)
assert mine_bptt.status in ("passed", "not implemented"), "read the report above"

# %% [markdown]
# **The library's layer.** `RNN.backward` mirrors the forward: `hs, h_T = rnn(x, h0)` and
# `dx, dh0 = rnn.backward(dhs, dh_T)`, with the weight gradients in `rnn.grads`. On section 2's
# sequence it gives the numbers of `bptt_steps`:

# %%
rnn.zero_grad()
rnn(x, h0)  # a fresh forward: backward consumes the cache
dx, dh0 = rnn.backward(dhs, dh_T)
assert np.allclose(dx, dx_hand) and np.allclose(dh0, dh0_hand)
for name in ("W_xh", "W_hh", "b_h"):
    assert rnn.grads[name].shape == rnn.params[name].shape
    assert np.allclose(rnn.grads[name], grads_hand[name])
print("RNN.backward agrees with bptt_steps: dx, dh0, dW_xh, dW_hh, db_h")

# %% [markdown]
# Two things to notice:
#
# - `dh_next` is what makes this *through time*: drop it and each step only sees its own
#   $\delta_t$, as if the states did not depend on each other.
# - The library's backward is organised like yours (`docs/design.md` §4): inside the loop it only
#   computes $\partial L/\partial a_t$ and `dh_next`; the weight gradients come after the loop,
#   as one matrix product over all steps, e.g. $\partial L/\partial W_{hh} = H_{\text{prev}}^\top\,
#   dA$ with all $h_{t-1}$ stacked into a (T·B, H) matrix. A sum of T products equals one product
#   of the stacked matrices.
#
# **Gradient check of the layer.** `check_module` perturbs every entry of the input `x`, the
# initial state `h0` and the three parameters, and compares centered differences with the layer's
# backward (lesson 00), under the tolerance of a sequence layer, $10^{-6}$ (`TOL_LAYER`):

# %%
result = check_module(rnn, x, h0)
print(result)
assert result.passed and result.max_error < TOL_LAYER

# %% [markdown]
# ## 5. Vanishing and exploding gradients, measured
#
# Take a loss that reads **only the last state**, $L = h_T \cdot u$ for a fixed unit vector $u$
# (so $\partial L/\partial h_T = u$ has norm 1, and $\delta_t = 0$ for $t < T$). Then every
# earlier state gets its gradient only through the chain of steps. One step back is
#
# $$\frac{\partial L}{\partial h_{t-1}} = \frac{\partial L}{\partial h_t}\,
# \underbrace{\text{diag}(1 - h_t^2)\, W_{hh}^\top}_{J_t}$$
#
# (row vectors: the gradient is multiplied on the right, as in `docs/equations.md` §1.1; §1.4 gives
# the factor in the papers' column form, multiplied on the left), so going back $k$ steps
# multiplies by $k$ Jacobians:
#
# $$\frac{\partial L}{\partial h_{T-k}} = u\, J_T\, J_{T-1} \cdots J_{T-k+1}.$$
#
# Each factor has two parts: the recurrent weights $W_{hh}^\top$, the same at every step, and
# $\text{diag}(1 - h_t^2)$, the tanh's slope, between 0 and 1 (1 only where $h_t = 0$). So
# $\|J_t\| \le \sigma_{\max}(W_{hh})$, the largest singular value of $W_{hh}$ (the most it can
# stretch the length of any vector): if it is below 1, the gradient
# shrinks at least geometrically with $k$ (it **vanishes**); if it is above 1, the gradient can
# grow geometrically (it **explodes**), unless the tanh's slope, small where the state saturates
# near ±1, holds it back (Bengio et al. 1994; Pascanu et al. 2013, §2).
#
# **Document 003's figure 4.** The second source document says, in its "RNN/LSTM" section: when
# an RNN propagates the training error backwards, it multiplies by the parameters at every step;
# if the product is large the gradient explodes, if it is small the gradient vanishes, and the
# model trains badly — "如图 4" (as figure 4 shows). The image is lost, so we cannot say what it
# looked like; here we *measure* what that sentence says.
#
# **The experiment.** One sequence (B = 1) of T = 50 steps, D = 8, H = 32, inputs drawn from a
# standard normal. The input weights and the bias keep the library's initialisation; the
# recurrent weights are $W_{hh} = \rho\, Q$ with $Q$ a random orthogonal matrix, so that **every**
# singular value of $W_{hh}$ is exactly $\rho$ (and so is the size of its largest eigenvalue,
# its spectral radius). Then a step scales
# the gradient's norm by exactly
#
# $$\frac{\|\partial L/\partial h_{t-1}\|}{\|\partial L/\partial h_t\|} =
# \rho \cdot \frac{\|\partial L/\partial h_t \odot (1 - h_t^2)\|}{\|\partial L/\partial h_t\|},$$
#
# $\rho$ times a root-mean-square of the tanh's slopes, each slope weighted by the square of the
# gradient's component on that unit: a number between 0 and 1. We try $\rho$ = 0.5, 1, 1.5 and
# 3, and record $\|\partial L/\partial h_t\|$ at every step with `bptt_steps` from section 4.
# The table also gives the mean and the plain root-mean-square of the slopes over all steps and
# units.
#
# **Predict.** The loss gives $h_{50}$ a gradient of norm 1. For which of $\rho$ = 0.5, 1, 1.5, 3
# will the gradient reaching the start, $\|\partial L/\partial h_0\|$, be *larger* than 1? Is
# $\rho > 1$ enough? Decide before you run the cell; the column `|dL/dh_0|` answers it.

# %%
Bx, Tx, Dx, Hx = 1, 50, 8, 32
rng_x = np.random.default_rng(1)
exp_rnn = ta.RNN(Dx, Hx, rng=rng_x)
x_long = rng_x.standard_normal((Bx, Tx, Dx))
Q, _ = np.linalg.qr(rng_x.standard_normal((Hx, Hx)))  # a random orthogonal matrix
assert np.allclose(Q.T @ Q, np.eye(Hx))
u = rng_x.standard_normal((Bx, Hx))
u /= np.linalg.norm(u)  # dL/dh_T, norm 1
no_dhs = np.zeros((Bx, Tx, Hx))  # the loss reads h_T only
h0_long = np.zeros((Bx, Hx))


def gradient_norms(rho):
    """|dL/dh_t| for t = 0..T with W_hh = rho Q, and what the run needs for later checks."""
    exp_rnn.params["W_hh"][...] = rho * Q  # in place: the layer sees the new weights
    p = exp_rnn.params
    hs_r, caches_r = rnn_forward_steps(x_long, h0_long, p["W_xh"], p["W_hh"], p["b_h"])
    _, dh0_r, _, dh_all_r = bptt_steps(caches_r, no_dhs, u)
    # norms at t = 0 (the initial state) .. T; dh_all_r[:, t-1] is dL/dh_t
    norms = np.r_[np.linalg.norm(dh0_r), np.linalg.norm(dh_all_r[0], axis=1)]
    return norms, hs_r, dh0_r, dh_all_r


rhos = (0.5, 1.0, 1.5, 3.0)
runs = {rho: gradient_norms(rho) for rho in rhos}

print(f"{'rho':>4} {'|dL/dh_50|':>10} {'|dL/dh_25|':>11} {'|dL/dh_0|':>10} "
      f"{'factor per step':>16} {'factor / rho':>13} {'mean slope':>11} {'rms slope':>10}")
for rho, (norms, hs_r, _, _) in runs.items():
    factor = (norms[0] / norms[-1]) ** (1 / Tx)  # geometric mean over the 50 steps
    slopes = 1 - hs_r ** 2  # (B, T, H): tanh' at every step and unit
    print(f"{rho:4} {norms[-1]:10.1e} {norms[25]:11.1e} {norms[0]:10.1e} {factor:16.3f} "
          f"{factor / rho:13.3f} {np.mean(slopes):11.3f} {np.sqrt(np.mean(slopes ** 2)):10.3f}")

# %% [markdown]
# Three checks that the numbers mean what the equations say. (1) The library's layer, run on the
# same weights, returns the same $\partial L/\partial h_0$. (2) Multiplying the Jacobians
# $J_t = \text{diag}(1 - h_t^2)\, W_{hh}^\top$ explicitly gives the same gradient 10 steps back.
# The product also shows the bound at work: ten Jacobians can stretch no direction by more than
# their largest singular value, printed below; it is under $\rho^{10} = 1$ because of the slopes.
# (3) With $W_{hh} = \rho Q$ each step scales the norm by exactly $\rho$ times the
# gradient-weighted root-mean-square of the slopes.

# %%
rho = 1.0
norms, hs_r, dh0_r, dh_all_r = runs[rho]
exp_rnn.params["W_hh"][...] = rho * Q

# (1) the library's backward
exp_rnn.zero_grad()
exp_rnn(x_long, h0_long)
_, dh0_lib = exp_rnn.backward(no_dhs, u)
assert np.allclose(dh0_lib, dh0_r)

# (2) the product of 10 Jacobians J_T J_{T-1} ... J_{T-9}, each (H, H)
P = np.eye(Hx)
for t in range(Tx, Tx - 10, -1):  # t = 50, 49, ..., 41; hs_r[0, t-1] is h_t
    J_t = np.diag(1 - hs_r[0, t - 1] ** 2) @ exp_rnn.params["W_hh"].T
    P = P @ J_t
assert np.allclose(u @ P, dh_all_r[:, Tx - 11])  # dL/dh_40
print(f"|u J_50 ... J_41| = {np.linalg.norm(u @ P):.3f}; largest singular value of the "
      f"product: {np.linalg.norm(P, 2):.3f} (rho**10 = {rho ** 10:g})")

# (3) one step's factor: rho times the slope-weighted norm
g_t = dh_all_r[0, Tx - 1]  # dL/dh_50 = u
g_prev = dh_all_r[0, Tx - 2]  # dL/dh_49
slope = 1 - hs_r[0, Tx - 1] ** 2
assert np.isclose(np.linalg.norm(g_prev), rho * np.linalg.norm(g_t * slope))
print(f"one step back: |dL/dh_49| / |dL/dh_50| = {np.linalg.norm(g_prev):.3f}")

# %%
fig, ax = plt.subplots(figsize=(7, 4.2))
for rho, (norms, *_) in runs.items():
    ax.semilogy(np.arange(Tx + 1), norms, "o-", ms=2.5, lw=1.2, label=f"ρ = {rho:g}")
ax.set_xlabel("step t (the loss reads only h_50)")
ax.set_ylabel("‖∂L/∂h_t‖  (log scale)")
ax.set_title("Gradient reaching each state of a vanilla RNN, W_hh = ρ·Q (Q orthogonal)")
ax.axhline(1.0, color="gray", lw=0.8, ls=":")
ax.legend(title="every singular value of W_hh", loc="lower right")
ax.grid(True, which="major", alpha=0.3)
fig.tight_layout()
plt.show()

# %% [markdown]
# **Answer.** Only ρ = 3 (`|dL/dh_0|` = 1.2e+07). ρ > 1 is not enough: with ρ = 1.5 the
# weights stretch the gradient by 1.5 per step, but the tanh's slopes shrink it by about as much,
# and 6.9e-01 reaches $h_0$.
#
# Read the figure from right to left, the direction the gradient travels:
#
# - **ρ = 0.5: vanishing.** Each step at least halves the gradient (a factor of 0.450 on
#   average); after 50 steps it is $4.8 \times 10^{-18}$: the loss at step 50 cannot teach the
#   network anything about what it read at the start. The curve is a straight line on the log
#   scale: geometric decay.
# - **ρ = 1: still vanishing**, only slower: $8.8 \times 10^{-5}$ at $t = 0$. $W_{hh}$ alone
#   would keep the norm, but every step also multiplies by the tanh's slope $1 - h_t^2 < 1$
#   (0.808 on average here, and the factor per step is 0.830).
# - **ρ = 1.5: roughly level** (6.9e-01 at $t = 0$): the weights grow the gradient by 1.5 per
#   step, the slopes shrink it by about as much.
# - **ρ = 3: exploding**: $1.2 \times 10^{7}$ at $t = 0$, a factor of 1.386 per step. The states
#   saturate more (mean slope 0.323, and $3 \times 0.323 < 1$), yet the gradient grows, because a
#   norm does not average the slopes, it takes their root-mean-square: the units that are not
#   saturated (slope near 1) count for more than the saturated ones (slope near 0). The column
#   "factor / ρ", 0.462, is close to the plain root-mean-square of the slopes, 0.481, and
#   $3 \times 0.462 = 1.386 > 1$.
#
# Only a narrow band of scales keeps the gradient's size anywhere near constant, and even there
# the factor is not under control: it depends on the data through $h_t$. That is why document
# 003 continues with the LSTM and GRU, whose gates give the gradient a path that does not pass
# through $W_{hh}^\top$ at every step (lesson 02).

# %% [markdown]
# ## 6. Gradient clipping
#
# Exploding gradients have a blunt but effective fix: before each update, measure the **global**
# norm of all parameter gradients together,
# $\|g\| = \sqrt{\sum_p \|\partial L / \partial p\|^2}$, and if it exceeds a threshold `max_norm`,
# multiply *every* gradient by `max_norm / ‖g‖` (Pascanu et al. 2013, §3.2). One factor for all
# keeps the gradient's direction and bounds the size of the step. `tinyattn.clip_grad_norm(model,
# max_norm)` does it in place and returns the norm measured *before* clipping; `Trainer(clip=...)`
# calls it on every batch (lesson 05 trains with `clip=5.0`).
#
# Here are the weight gradients of the same loss, $L = h_T \cdot u$, for $\rho = 3$ (exploding)
# and $\rho = 0.5$ (vanishing), clipped with `max_norm = 5`.
# Besides the norms, we keep each step's contribution to $\partial L/\partial W_{hh}$, the term
# $h_{t-1}^\top\, \partial L/\partial a_t$ of the sum in section 4, to see what clipping does to
# the *share* of each step.

# %%
def global_norm(module):
    return np.sqrt(sum(np.sum(g * g) for _, _, g in module.named_parameters()))


def step_terms(hs_r, dh_all_r):
    """h_{t-1}^T dL/da_t for t = 1..T, (T, H, H): each step's term of dL/dW_hh (B = 1)."""
    h_prev_r = np.concatenate([h0_long, hs_r[0, :-1]])  # (T, H): h_0 .. h_{T-1}
    da_r = dh_all_r[0] * (1 - hs_r[0] ** 2)  # (T, H): dL/da_t
    return np.einsum("ti,tj->tij", h_prev_r, da_r)  # one outer product per step


clip_runs = {}
for rho in (3.0, 0.5):
    exp_rnn.params["W_hh"][...] = rho * Q
    exp_rnn.zero_grad()
    exp_rnn(x_long, h0_long)
    exp_rnn.backward(no_dhs, u)
    dW_before = exp_rnn.grads["W_hh"].copy()
    _, hs_r, _, dh_all_r = runs[rho]  # section 5's run with this rho
    terms = step_terms(hs_r, dh_all_r)
    assert np.allclose(terms.sum(axis=0), dW_before)  # the terms add up to the layer's gradient

    norm_before = ta.clip_grad_norm(exp_rnn, max_norm=5.0)
    norm_after = global_norm(exp_rnn)
    scale = np.linalg.norm(exp_rnn.grads["W_hh"]) / np.linalg.norm(dW_before)
    assert np.isclose(norm_after, min(norm_before, 5.0))
    assert np.allclose(exp_rnn.grads["W_hh"], scale * dW_before)  # same direction, one factor
    before = np.linalg.norm(terms, axis=(1, 2))  # (T,)
    after = before * scale
    clip_runs[rho] = (before, after, scale)
    print(f"rho = {rho}: global norm before {norm_before:.2e}, after {norm_after:.2e} "
          f"(every gradient times {scale:.2e})")
    print(f"           steps 1-10 vs steps 41-50 in dL/dW_hh: "
          f"{before[:10].sum() / before[-10:].sum():.1e} before clipping, "
          f"{after[:10].sum() / after[-10:].sum():.1e} after")

# %%
fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), sharey=True)
steps = np.arange(1, Tx + 1)
for ax, rho in zip(axes, (3.0, 0.5)):
    before, after, scale = clip_runs[rho]
    # from t = 2: step 1's term is exactly 0, since h_0 = 0
    ax.semilogy(steps[1:], before[1:], "o-", ms=2.5, lw=1.2, label="before clipping")
    ax.semilogy(steps[1:], after[1:], "s--", ms=4, mfc="none", lw=1.2,
                label="after clipping (max_norm = 5)")
    ax.set_xlabel("step t")
    ax.set_title(f"ρ = {rho:g} (exploding): clipped, every term × {scale:.1e}" if scale < 1
                 else f"ρ = {rho:g} (vanishing): norm below 5, not clipped", fontsize=11)
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(loc="lower right")
axes[0].set_ylabel("norm of step t's term of ∂L/∂W_hh")
fig.suptitle("Clipping scales every step's contribution by one factor")
fig.tight_layout()
plt.show()

# %% [markdown]
# - **Exploding (ρ = 3):** the global norm is 1.69e+07, and it comes almost entirely
#   from the *earliest* steps (steps 1–10 weigh $1.2 \times 10^{5}$ times more than steps
#   41–50). One SGD step with it would throw the weights far away. Clipping multiplies every
#   gradient by the same factor, 2.97e-07: the update keeps its direction and gets a
#   size of at most 5. In practice that keeps training stable through the updates where the
#   gradient explodes (Pascanu et al. 2013, §3.2); it does not change which time steps
#   dominate.
# - **Vanishing (ρ = 0.5):** the norm, 3.02e+00, is already below `max_norm`, so clipping does
#   nothing (factor 1: the two curves coincide). And whenever it does rescale, it rescales
#   *every* step's contribution by the same factor: on the log scale the whole curve shifts down
#   without changing its slope. The first ten steps' share of $\partial L/\partial W_{hh}$ stays
#   $1.3 \times 10^{-14}$ of the last ten steps' share, before and after. Clipping only ever
#   shrinks; it cannot make the far past matter again. Only a different path for the gradient
#   can (the gates of lesson 02).

# %% [markdown]
# **To remember.**
#
# - $h_t = \tanh(x_t W_{xh} + h_{t-1} W_{hh} + b_h)$: one equation, one set of weights for every
#   step.
# - BPTT walks the steps backwards. The gradient reaching $h_t$ is its own upstream gradient plus
#   `dh_next` $= \partial L/\partial a_{t+1}\, W_{hh}^\top$ from the step after; the weight
#   gradients are sums over all steps.
# - Going back $k$ steps multiplies the gradient by $k$ Jacobians
#   $\text{diag}(1 - h_t^2)\, W_{hh}^\top$: it shrinks geometrically (vanishes) or grows
#   geometrically (explodes), and only a narrow, data-dependent band of weight scales avoids both.
# - Clipping the global norm caps the size of an exploding gradient, keeping its direction; it
#   cannot bring back a vanished one, because it scales every step's share by the same factor.
#
# **Try it yourself.** Rerun section 5 with the inputs multiplied by 3 (`x_long * 3`): the states
# saturate, the slopes $1 - h_t^2$ fall, and the curve for ρ = 3 stops exploding. Or use the
# library's default $W_{hh}$ (uniform in $\pm 1/\sqrt{H}$; its spectral radius is about
# $1/\sqrt{3} \approx 0.58$) and see which of the four curves it resembles. Extend
# `my_rnn_backward` to padded batches with `lengths` (`docs/design.md` §3: past its length a state
# is frozen and no gradient flows through the pads) and compare with `rnn.backward` after
# `rnn(x, h0, lengths=...)`.
#
# **Next.** Lesson 02: the GRU and the LSTM, whose gates give the gradient an additive path.
