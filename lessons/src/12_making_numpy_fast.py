# Source of lessons/12_making_numpy_fast.ipynb (learner) and
# lessons/solutions/12_making_numpy_fast.ipynb (instructor): edit here, then run
# `.venv/bin/python lessons/build.py 12` (see lessons/build.py).

# %% [markdown]
# # Lesson 12 — Making NumPy fast
#
# **Goal.** tinyattn is pure NumPy, yet one forward and backward pass of its GRU and LSTM layers
# takes about as long as PyTorch's on a CPU (the README's "Performance" section has the
# measurements). No single trick does this: it is a handful of rewrites, each small, each checked
# against the plain equations. In this lesson you take a GRU layer from a textbook loop to the
# library's version one rewrite at a time, check after each one that the numbers have not
# changed (`np.allclose` in float64), and time every version. Then the same ideas applied to
# attention: Luong's scores for all decoder steps in one batched product, and Bahdanau's keys
# projected once per batch instead of at every step.
#
# The rewrites, in the order we make them (`docs/design.md` §4):
#
# | version | what changes | where in the library |
# |---|---|---|
# | v0 | the textbook loop: one matrix per gate, input products inside the loop, outputs grown with `np.concatenate`, weight gradients added step by step | (nothing; written here for comparison) |
# | v1 | the input projections $x_t W_x$ of all steps as one product before the loop; outputs written into a preallocated array | `RecurrentLayer.forward` (`tinyattn/recurrent.py`) |
# | v2 | the gates stacked: one $(B, H) @ (H, 3H)$ product per step instead of three | `GRU.params["W_h"]` of shape (H, 3H) |
# | v3 | weight and input gradients as one product over all $T \cdot B$ rows after the backward loop | `RecurrentLayer.backward`, `gru_weight_grads`, `DeferredGrads`: the plain loop, `tinyattn.GRU(fused=False)` |
# | v4 | fewer transcendentals (derivatives read off the activations, one `np.tanh` for both sigmoid gates), work arrays reused, `out=` | `tinyattn.GRU`, whose default `fused=True` runs `tinyattn/fused.py` |
#
# **Timings depend on the machine.** Every millisecond in this notebook was measured on the
# machine that built it (its CPU, BLAS library and thread count are printed below); on yours the
# numbers, and even some ratios, will differ. The prose therefore quotes no milliseconds, only
# conclusions that hold with a wide margin; the tables print the ratios measured here.
#
# **Sources.** The GRU equations are `docs/equations.md` §1: document 003 (`docs/sources.md`,
# section "RNN/LSTM") introduces the GRU as the simplified LSTM proposed with seq2seq in K. Cho et
# al., *Learning Phrase Representations using RNN Encoder–Decoder for Statistical Machine
# Translation*, 2014 (arXiv:1406.1078); we use the "reset after" form of cuDNN and PyTorch, the
# library's default. Luong's general score is `docs/equations.md` §5 (document 003 figure 11; M.-T.
# Luong, H. Pham, C. D. Manning, *Effective Approaches to Attention-based Neural Machine
# Translation*, EMNLP 2015, arXiv:1508.04025, §3.1); Bahdanau's score is §4 (D. Bahdanau, K. Cho,
# Y. Bengio, ICLR 2015, arXiv:1409.0473, Appendix A). Document 003 also names the problem this
# lesson works around: an RNN "无法平行化处理" (cannot be parallelised over time), so training
# takes long. The loop over $t$ has to stay; everything else can leave it.

# %%
import os
import statistics
import timeit
from collections import Counter
from contextlib import contextmanager

import matplotlib.pyplot as plt
import numpy as np

import tinyattn as ta
from tinyattn.functional import matmul_last, softmax
from tinyattn.gradcheck import TOL_LAYER, check_module
import tinyattn.exercises as ex

np.set_printoptions(precision=3, suppress=True)

# %% [markdown]
# ## 1. The machine
#
# NumPy hands every matrix product to a BLAS library, which may use several threads. What this
# notebook was built on:

# %%
def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:  # Linux; elsewhere we just say "unknown"
            return next(ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name"))
    except (OSError, StopIteration):
        return "unknown"


try:
    from threadpoolctl import threadpool_info  # in the project's "dev" extra

    blas = [p for p in threadpool_info() if p["user_api"] == "blas"]
    blas_line = ", ".join(f"{p['internal_api']} {p.get('version')} with {p['num_threads']} "
                          "threads" for p in blas) or "none found"
    blas_source = "threadpoolctl"
except ImportError:
    cfg = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
    blas_line = (f"{cfg.get('name')} {cfg.get('version')}, threads not known "
                 "(install threadpoolctl to see them)")
    blas_source = "np.show_config"

load = os.getloadavg() if hasattr(os, "getloadavg") else None
print(f"CPU: {cpu_model()}; os.cpu_count() = {os.cpu_count()}")
print(f"NumPy {np.__version__}; BLAS (from {blas_source}): {blas_line}")
print("load average (1, 5, 15 min) when this cell ran:",
      "unknown" if load is None else " ".join(f"{v:.2f}" for v in load))

# %% [markdown]
# A load average well above the number of cores means other processes compete for the CPU, and
# multi-threaded BLAS suffers most from that (its threads wait for each other). Timings taken on
# a busy machine are slower and noisier; the ratios move too. The timing helper below runs the
# candidates **interleaved** (a, b, c, a, b, c, …) so that a slow spell hits all of them alike,
# and reports the **median** of several runs (`timeit`, garbage collection off), after one
# warm-up run each. If a run of the rounds takes longer than its time budget (a busy machine), it
# stops early, after at least three rounds, and says so.

# %%
def time_interleaved(candidates, *, repeats=7, number=1, budget=10.0):
    """Median ms per call of each candidate; rounds are interleaved."""
    timers = {name: timeit.Timer(fn) for name, fn in candidates.items()}
    for timer in timers.values():
        timer.timeit(1)  # warm-up: first-call allocations, caches
    samples = {name: [] for name in candidates}
    start = timeit.default_timer()
    for rounds in range(1, repeats + 1):
        for name, timer in timers.items():
            samples[name].append(timer.timeit(number) / number)
        if rounds >= 3 and rounds < repeats and timeit.default_timer() - start > budget:
            print(f"(time budget reached: median of {rounds} rounds, not {repeats})")
            break
    return {name: 1e3 * statistics.median(s) for name, s in samples.items()}

# %% [markdown]
# ## 2. The GRU, forward and backward
#
# One step, row-vector form, gates stacked in PyTorch's order r, z, n (`docs/equations.md` §1, the
# reset-after form):
#
# $$a^x_t = x_t W_x + b_x, \qquad a^h_t = h_{t-1} W_h + b_h \qquad\text{(each } (B, 3H)
# \text{, split into r, z, n parts)}$$
#
# $$r_t = \sigma(a^x_r + a^h_r), \quad z_t = \sigma(a^x_z + a^h_z), \quad
# n_t = \tanh(a^x_n + r_t \odot a^h_n), \quad h_t = (1 - z_t) \odot n_t + z_t \odot h_{t-1}.$$
#
# Backward, for an upstream $\delta h_t = \partial L / \partial h_t$ (from the output at step $t$
# plus what step $t+1$ sends back), with the derivatives written in terms of the outputs,
# $\tanh' = 1 - n^2$ and $\sigma' = z (1 - z)$:
#
# $$\delta a_n = \delta h_t (1 - z_t)(1 - n_t^2), \quad
# \delta a_z = \delta h_t (h_{t-1} - n_t)\, z_t (1 - z_t), \quad
# \delta a_r = \delta a_n \odot a^h_n \odot r_t (1 - r_t)$$
#
# $$\delta a^x_t = [\delta a_r, \delta a_z, \delta a_n], \quad
# \delta a^h_t = [\delta a_r, \delta a_z, \delta a_n \odot r_t], \quad
# \delta h_{t-1} = \delta h_t \odot z_t + \delta a^h_t W_h^\top, \quad
# \delta x_t = \delta a^x_t W_x^\top$$
#
# $$\frac{\partial L}{\partial W_x} = \sum_t x_t^\top \delta a^x_t, \qquad
# \frac{\partial L}{\partial W_h} = \sum_t h_{t-1}^\top \delta a^h_t, \qquad
# \frac{\partial L}{\partial b_x} = \sum_{t,b} \delta a^x_t, \qquad
# \frac{\partial L}{\partial b_h} = \sum_{t,b} \delta a^h_t .$$
#
# | maths | meaning | in the code | shape |
# |---|---|---|---|
# | $x_t$ | input at step $t$ (an embedding) | `x[:, t]` | (B, D), D = E |
# | $h_{t-1}$, $h_t$ | hidden states | `h_prev`, `h`; all steps `hs` | (B, H); (B, T, H) |
# | $W_x$, $W_h$ | stacked weights, gates r, z, n | `gru.params["W_x"]`, `["W_h"]` | (D, 3H), (H, 3H) |
# | $W_{xr}, W_{xz}, W_{xn}$ … | the same, one matrix per gate (v0, v1) | `P["W_xr"]`, … | (D, H), (H, H) |
# | $a^x_t$, $a^h_t$ | pre-activations, input and recurrent parts | `ax`, `ah` | (B, 3H) |
# | $\delta h_t$ from the outputs | upstream gradient of every output | `dhs` | (B, T, H) |
# | $\delta a^x_t$, $\delta a^h_t$ | gradients of the pre-activations | `dax`, `dah`; all steps `dAX`, `dAH` | (B, 3H); (T, B, 3H) |
#
# Every version below is one function `gru_vK(x, dhs, weights)` that runs the forward pass from
# $h_0 = 0$ and the backward pass for the upstream `dhs`, and returns `hs (B, T, H)`,
# `dx (B, T, D)`, `dh0 (B, H)` and the weight gradients. The library's layer does the same in two
# calls, `hs, h_T = gru(x)` and `dx, dh0 = gru.backward(dhs)`, adding into `gru.grads`:

# %%
def gru_v4(x, dhs, gru):
    """The library: forward, backward, and a copy of the gradients."""
    gru.zero_grad()
    hs, _ = gru(x)
    dx, dh0 = gru.backward(dhs)
    return hs, dx, dh0, {k: g.copy() for k, g in gru.grads.items()}

# %% [markdown]
# ### The elementwise part, textbook style
#
# Versions v0 to v3 change only the **matrix products**. They share the elementwise part of a
# step, written the way textbooks write it: the sigmoid as $1 / (1 + e^{-a})$, the cache holding
# the **pre-activations**, and the derivatives as functions of them, $\sigma'(a) =
# \sigma(a)(1 - \sigma(a))$ and $\tanh'(a) = 1 - \tanh^2(a)$, which means computing $\sigma$ and
# $\tanh$ again in the backward pass. (We come back to what that costs in section 5.)

# %%
def sigmoid(a):
    return 1.0 / (1.0 + np.exp(-a))  # one exp per element


def dsigmoid(a):
    s = sigmoid(a)  # σ computed again
    return s * (1.0 - s)


def dtanh(a):
    return 1.0 - np.tanh(a) ** 2  # tanh computed again


def cell_forward(ax, ah, h_prev):
    """One step's elementwise part. ax, ah: lists [r, z, n] of (B, H) pre-activation parts."""
    a_r, a_z = ax[0] + ah[0], ax[1] + ah[1]
    r, z = sigmoid(a_r), sigmoid(a_z)
    a_n = ax[2] + r * ah[2]
    n = np.tanh(a_n)
    h = (1.0 - z) * n + z * h_prev
    return h, (a_r, a_z, a_n, ah[2], h_prev)  # the cache: pre-activations


def cell_backward(dh, cache):
    """Gradients of the pre-activations: dax [r, z, n], dah [r, z, n], and dh ⊙ z."""
    a_r, a_z, a_n, ah_n, h_prev = cache
    r, z, n = sigmoid(a_r), sigmoid(a_z), np.tanh(a_n)  # the forward values, again
    da_n = dh * (1.0 - z) * dtanh(a_n)  # h = (1 − z) n + z h_prev
    da_z = dh * (h_prev - n) * dsigmoid(a_z)
    da_r = da_n * ah_n * dsigmoid(a_r)  # a_n = ax_n + r ⊙ ah_n
    return [da_r, da_z, da_n], [da_r, da_z, da_n * r], dh * z

# %% [markdown]
# ### v0 — the textbook loop
#
# Three matrices per side, one per gate; at every step three input products $x_t W_{x\cdot}$ and
# three recurrent products $h_{t-1} W_{h\cdot}$; the outputs grown by `np.concatenate` (which
# copies everything so far, every step); in the backward loop, per gate and per step, the two
# weight-gradient products, the input-gradient product and the recurrent product. That is
# **18 matrix products per step**, each with only B = 32 rows.

# %%
def gru_v0(x, dhs, P):
    B, T, D = x.shape
    H = dhs.shape[2]
    h = np.zeros((B, H), x.dtype)
    hs = np.zeros((B, 0, H), x.dtype)
    caches = []
    for t in range(T):
        x_t = x[:, t]
        ax = [x_t @ P["W_x" + g] + P["b_x" + g] for g in "rzn"]  # 3 (B, D) @ (D, H)
        ah = [h @ P["W_h" + g] + P["b_h" + g] for g in "rzn"]  # 3 (B, H) @ (H, H)
        h_prev = h
        h, cache = cell_forward(ax, ah, h_prev)
        caches.append((x_t, h_prev, cache))
        hs = np.concatenate([hs, h[:, None, :]], axis=1)  # (B, t, H) + (B, 1, H): a full copy

    grads = {k: np.zeros_like(v) for k, v in P.items()}
    dx = np.zeros_like(x)
    dh = np.zeros((B, H), x.dtype)
    for t in reversed(range(T)):
        x_t, h_prev, cache = caches[t]
        dax, dah, dh_direct = cell_backward(dh + dhs[:, t], cache)
        dh = dh_direct  # the path h_prev -> h; the products below add the rest
        for g, dax_g, dah_g in zip("rzn", dax, dah):
            grads["W_x" + g] += x_t.T @ dax_g  # (D, B) @ (B, H), every step
            grads["W_h" + g] += h_prev.T @ dah_g  # (H, B) @ (B, H), every step
            grads["b_x" + g] += dax_g.sum(axis=0)
            grads["b_h" + g] += dah_g.sum(axis=0)
            dx[:, t] += dax_g @ P["W_x" + g].T  # (B, H) @ (H, D)
            dh += dah_g @ P["W_h" + g].T  # (B, H) @ (H, H)
    return hs, dx, dh, grads

# %% [markdown]
# First on tiny arrays, all sizes different (B = 2, T = 3, D = 5, H = 6), against the library. The
# library stores the gates stacked, so we cut its matrices into one (D, H) or (H, H) piece per
# gate for v0, and stack v0's gradients back to compare. Before trusting the library as the
# reference, a gradient check of its GRU layer: expect relative errors around $10^{-9}$ to
# $10^{-7}$, under the layer tolerance `TOL_LAYER` = $10^{-6}$.

# %%
KEYS = ("W_x", "W_h", "b_x", "b_h")


def per_gate(weights):
    """Stacked {W_x (D, 3H), ...} -> {W_xr (D, H), W_xz, W_xn, ...}, contiguous copies."""
    return {k + g: np.ascontiguousarray(part) for k in KEYS
            for g, part in zip("rzn", np.split(weights[k], 3, axis=-1))}


def stacked(grads):
    """The inverse: {W_xr, W_xz, W_xn, ...} -> {W_x (D, 3H), ...}."""
    return {k: np.concatenate([grads[k + g] for g in "rzn"], axis=-1) for k in KEYS}


def max_difference(a, b):
    """Compare two results (hs, dx, dh0, grads): assert allclose, return the largest gap."""
    pairs = list(zip(a[:3], b[:3])) + [(a[3][k], b[3][k]) for k in KEYS]
    assert all(u.shape == v.shape and u.dtype == v.dtype for u, v in pairs)
    assert all(np.allclose(u, v) for u, v in pairs)
    return max(np.abs(u - v).max() for u, v in pairs)


rng = np.random.default_rng(0)
tiny = ta.GRU(5, 6, rng=rng)  # float64
x_tiny = rng.standard_normal((2, 3, 5))
dhs_tiny = rng.standard_normal((2, 3, 6))
check = check_module(tiny, x_tiny)
print(check)
assert check.passed and check.max_error < TOL_LAYER

hs, dx, dh0, g = out_tiny = gru_v0(x_tiny, dhs_tiny, per_gate(tiny.params))
assert hs.shape == (2, 3, 6) and dx.shape == (2, 3, 5) and dh0.shape == (2, 6)
assert g["W_xr"].shape == (5, 6) and g["W_hn"].shape == (6, 6) and g["b_hz"].shape == (6,)
ref = gru_v4(x_tiny, dhs_tiny, tiny)
print(f"v0 vs library, tiny arrays: largest difference "
      f"{max_difference((*out_tiny[:3], stacked(g)), ref):.1e}")

# %% [markdown]
# Now the size we time: a batch of **B = 32** sequences of **T = 30** steps, input size
# **D = E = 64**, hidden size **H = 128**, in float64 for the checks (float32 only for timing,
# later). The library's GRU is the reference; v0 agrees with it to round-off:

# %%
B, T, D, H = 32, 30, 64, 128
rng = np.random.default_rng(0)
gru64 = ta.GRU(D, H, rng=rng)  # float64
x64 = rng.standard_normal((B, T, D))
dhs64 = rng.standard_normal((B, T, H))
W64 = {k: gru64.params[k] for k in KEYS}  # stacked: v2, v3
P64 = per_gate(W64)  # one matrix per gate: v0, v1

library_out = gru_v4(x64, dhs64, gru64)
hs0, dx0, dh00, g0 = gru_v0(x64, dhs64, P64)
out = {"v0": (hs0, dx0, dh00, stacked(g0))}
print(f"v0 vs library: largest difference {max_difference(out['v0'], library_out):.1e}")

# %% [markdown]
# ### v1 — the input projections before the loop
#
# $x_t W_x + b_x$ does not depend on $h_{t-1}$: for all T steps at once it is one product with
# $T \cdot B = 960$ rows instead of T products with 32. BLAS runs a tall product closer to
# its peak speed than many short ones (less call overhead, better use of the cache and of the
# threads). We also go **time-major**, `(B, T, D) -> (T, B, D)`, as the library does internally,
# so that step $t$ is the contiguous block `xs[t]`, and we write the outputs into an array
# allocated once instead of growing one. The backward loop is still v0's.

# %%
def gru_v1(x, dhs, P):
    B, T, D = x.shape
    H = dhs.shape[2]
    xs = np.ascontiguousarray(x.transpose(1, 0, 2))  # (B, T, D) -> (T, B, D)
    # one (T·B, D) @ (D, H) per gate for all steps, back to (T, B, H)
    AX = {g: (xs.reshape(T * B, D) @ P["W_x" + g] + P["b_x" + g]).reshape(T, B, H)
          for g in "rzn"}
    hs = np.empty((T + 1, B, H), x.dtype)  # hs[t] = h_{t-1}; hs[0] = h_0
    hs[0] = 0.0
    caches = []
    for t in range(T):
        ah = [hs[t] @ P["W_h" + g] + P["b_h" + g] for g in "rzn"]  # 3 products left per step
        hs[t + 1], cache = cell_forward([AX[g][t] for g in "rzn"], ah, hs[t])
        caches.append(cache)

    grads = {k: np.zeros_like(v) for k, v in P.items()}
    dx = np.zeros_like(xs)  # (T, B, D)
    dh = np.zeros((B, H), x.dtype)
    for t in reversed(range(T)):
        dax, dah, dh = cell_backward(dh + dhs[:, t], caches[t])
        for g, dax_g, dah_g in zip("rzn", dax, dah):
            grads["W_x" + g] += xs[t].T @ dax_g
            grads["W_h" + g] += hs[t].T @ dah_g
            grads["b_x" + g] += dax_g.sum(axis=0)
            grads["b_h" + g] += dah_g.sum(axis=0)
            dx[t] += dax_g @ P["W_x" + g].T
            dh += dah_g @ P["W_h" + g].T
    return hs[1:].transpose(1, 0, 2), dx.transpose(1, 0, 2), dh, grads  # back to batch-first


hs1, dx1, dh01, g1 = gru_v1(x64, dhs64, P64)
out["v1"] = (hs1, dx1, dh01, stacked(g1))
print(f"v1 vs v0: largest difference {max_difference(out['v1'], out['v0']):.1e}")

# %% [markdown]
# ### v2 — stacked gates
#
# The three recurrent products of a step read the same $h_{t-1}$: placing $W_{hr}, W_{hz},
# W_{hn}$ side by side as one (H, 3H) matrix turns them into **one** product with three times the
# columns, and the same in the backward pass, where $[\delta a_r, \delta a_z, \delta a_n] \cdot
# [W_{xr}, W_{xz}, W_{xn}]^\top$ is the sum of the three per-gate products. The library stores
# the weights stacked once and for all (PyTorch's layout); stacking inside the loop would cost a
# copy per step. Products per step: 1 forward, 4 backward.

# %%
def stacked_forward(x, W):
    """v2's and v3's forward pass: time-major, input projection before the loop, stacked gates."""
    B, T, D = x.shape
    H = W["W_h"].shape[0]
    xs = np.ascontiguousarray(x.transpose(1, 0, 2))  # (T, B, D)
    AX = (xs.reshape(T * B, D) @ W["W_x"] + W["b_x"]).reshape(T, B, 3 * H)  # one product
    hs = np.empty((T + 1, B, H), x.dtype)
    hs[0] = 0.0
    caches = []
    for t in range(T):
        ah = hs[t] @ W["W_h"] + W["b_h"]  # (B, H) @ (H, 3H): the one product per step
        hs[t + 1], cache = cell_forward(np.split(AX[t], 3, axis=1), np.split(ah, 3, axis=1), hs[t])
        caches.append(cache)
    return xs, hs, caches


def gru_v2(x, dhs, W):
    xs, hs, caches = stacked_forward(x, W)
    T, B, D = xs.shape
    H = hs.shape[2]
    grads = {k: np.zeros_like(v) for k, v in W.items()}
    dx = np.empty_like(xs)
    dh = np.zeros((B, H), x.dtype)
    for t in reversed(range(T)):
        dax, dah, dh = cell_backward(dh + dhs[:, t], caches[t])
        dax, dah = np.concatenate(dax, axis=1), np.concatenate(dah, axis=1)  # (B, 3H) each
        grads["W_x"] += xs[t].T @ dax  # (D, B) @ (B, 3H)
        grads["W_h"] += hs[t].T @ dah  # (H, B) @ (B, 3H)
        grads["b_x"] += dax.sum(axis=0)
        grads["b_h"] += dah.sum(axis=0)
        dx[t] = dax @ W["W_x"].T  # (B, 3H) @ (3H, D)
        dh += dah @ W["W_h"].T  # (B, 3H) @ (3H, H)
    return hs[1:].transpose(1, 0, 2), dx.transpose(1, 0, 2), dh, grads


out["v2"] = gru_v2(x64, dhs64, W64)
print(f"v2 vs v1: largest difference {max_difference(out['v2'], out['v1']):.1e}")

# %% [markdown]
# ### v3 — the weight gradients after the loop
#
# Of the four backward products per step, only $\delta a^h_t W_h^\top$ feeds the step before
# (it is part of $\delta h_{t-1}$). The other three only *accumulate*:
# $\sum_t x_t^\top \delta a^x_t$ is the product of the stacked inputs with the stacked gradients,
#
# $$\sum_t x_t^\top \delta a^x_t = X^\top \,\delta A^x, \qquad X = \begin{bmatrix} x_1 \\ \vdots
# \\ x_T \end{bmatrix} \in \mathbb{R}^{TB \times D}, \quad \delta A^x = \begin{bmatrix}
# \delta a^x_1 \\ \vdots \\ \delta a^x_T \end{bmatrix} \in \mathbb{R}^{TB \times 3H},$$
#
# so the loop only stores $\delta a^x_t$ and $\delta a^h_t$ in (T, B, 3H) arrays, and after it
# one product each gives $\partial L / \partial W_x$, $\partial L / \partial W_h$ and all of
# $\delta x$. The sum is the same; only the rounding order differs. One product per step
# remains, the one the recurrence needs. Decoders that call a cell step by step (Bahdanau's)
# cannot restructure their loop like this; the library gives them `DeferredGrads`
# (`tinyattn/recurrent.py`), which queues each step's factors and, in `flush()` after the loop,
# runs each weight's product once over all steps.

# %%
def gru_v3(x, dhs, W):
    xs, hs, caches = stacked_forward(x, W)
    T, B, D = xs.shape
    H = hs.shape[2]
    dAX = np.empty((T, B, 3 * H), x.dtype)  # δa^x_t for every step
    dAH = np.empty((T, B, 3 * H), x.dtype)  # δa^h_t for every step
    dh = np.zeros((B, H), x.dtype)
    for t in reversed(range(T)):
        dax, dah, dh = cell_backward(dh + dhs[:, t], caches[t])
        dAX[t] = np.concatenate(dax, axis=1)
        dAH[t] = np.concatenate(dah, axis=1)
        dh += dAH[t] @ W["W_h"].T  # the only product left in the loop
    dAX2, dAH2 = dAX.reshape(T * B, 3 * H), dAH.reshape(T * B, 3 * H)  # (T·B, 3H)
    grads = {"W_x": xs.reshape(T * B, D).T @ dAX2,  # (D, T·B) @ (T·B, 3H)
             "W_h": hs[:-1].reshape(T * B, H).T @ dAH2,  # h_{t-1} of every step
             "b_x": dAX2.sum(axis=0), "b_h": dAH2.sum(axis=0)}
    dx = (dAX2 @ W["W_x"].T).reshape(T, B, D)  # (T·B, 3H) @ (3H, D)
    return hs[1:].transpose(1, 0, 2), dx.transpose(1, 0, 2), dh, grads


out["v3"] = gru_v3(x64, dhs64, W64)
print(f"v3 vs v2: largest difference {max_difference(out['v3'], out['v2']):.1e}")
gru64_plain = ta.GRU(D, H, rng=np.random.default_rng(0), fused=False)  # the plain loop
for k in KEYS:
    gru64_plain.params[k][...] = W64[k]
print(f"tinyattn.GRU(fused=False) vs v3: largest difference "
      f"{max_difference(gru_v4(x64, dhs64, gru64_plain), out['v3']):.1e}")

# %% [markdown]
# ### v4 — the library
#
# `tinyattn.GRU` has two loops. With `fused=False` it runs the plain loop of
# `tinyattn/recurrent.py` over the cell's `gru_gates_forward` / `gru_gates_backward`
# (`tinyattn/gru.py`): v3's products, with the derivatives read off the outputs. Its default,
# `fused=True`, runs the fused loop of `tinyattn/fused.py`, which also works on the elementwise
# part. The fused loop stays in the library only because `benchmarks/bench_rnn.py` measured it at
# least 15 % faster than the plain one on the machine where that was decided (the LSTM's fused
# loop gained less and was removed; `docs/design.md` §4). What the fused loop does:
#
# - **Fewer transcendentals.** The backward pass computes no `tanh` or `exp` at all: the forward
#   pass keeps $r, z, n$ (not the pre-activations), and the derivatives are read off them,
#   $1 - n^2$ and $z(1 - z)$.
# - **One `np.tanh` for both sigmoid gates.** $\sigma(a) = (\tanh(a/2) + 1)/2$; the factor ½ is
#   folded into scaled copies of the r and z columns of the weights (made once per call, not per
#   step), so one `np.tanh` over a (B, 2H) block activates both gates.
# - **Work arrays reused and written in place.** The output, gate and gradient arrays are
#   allocated once (`_buf`) and filled with `np.matmul(..., out=)`, `np.tanh(x, out=x)`,
#   `+=`, instead of a fresh temporary for every operation.

# %%
out["v4"] = gru_v4(x64, dhs64, gru64)
print(f"v4 (library) vs v3: largest difference {max_difference(out['v4'], out['v3']):.1e}")
print(f"v4 (library) vs v0: largest difference {max_difference(out['v4'], out['v0']):.1e}")

# %% [markdown]
# Five implementations, one result, up to round-off (the largest difference printed above is
# 1.2e-13, in float64).
# And the two sigmoid forms the library switches between agree too:

# %%
a = np.linspace(-30, 30, 13)
assert np.allclose(sigmoid(a), (np.tanh(a / 2) + 1) / 2, rtol=1e-12, atol=1e-15)
print("σ(a) = (tanh(a/2) + 1)/2 on", a.min(), "…", a.max(), ": ok")

# %% [markdown]
# ## 3. How fast is each version?
#
# Each candidate runs the full forward and backward pass at B = 32, T = 30, D = 64, H = 128, in
# float64 and in float32 (the same weights and inputs, cast). Median of 7 interleaved rounds.
# Besides v0–v4 we time the library's plain loop (`fused=False`), which sits between v3 and v4:
# v3's products, derivatives read off the outputs, but no reused buffers and no shared `tanh`.

# %%
VERSIONS = ("v0", "v1", "v2", "v3", "v4")


def gru_candidates(dtype):
    gru = ta.GRU(D, H, rng=np.random.default_rng(0), dtype=dtype)
    plain = ta.GRU(D, H, rng=np.random.default_rng(0), dtype=dtype, fused=False)
    for k in KEYS:
        gru.params[k][...] = W64[k]  # the same weights, in this dtype
        plain.params[k][...] = W64[k]
    W = {k: gru.params[k] for k in KEYS}
    P = per_gate(W)
    x, dhs = x64.astype(dtype), dhs64.astype(dtype)
    return {"v0": lambda: gru_v0(x, dhs, P), "v1": lambda: gru_v1(x, dhs, P),
            "v2": lambda: gru_v2(x, dhs, W), "v3": lambda: gru_v3(x, dhs, W),
            "v4": lambda: gru_v4(x, dhs, gru), "plain": lambda: gru_v4(x, dhs, plain)}


gru_ms = {}
for dtype in (np.float64, np.float32):
    name = np.dtype(dtype).name
    gru_ms[name] = time_interleaved(gru_candidates(dtype), repeats=7, budget=15.0)

print(f"{'version':8}" + "".join(f"{n + ' ms':>12}{'vs v0':>8}{'vs prev':>9}" for n in gru_ms))
for i, v in enumerate(VERSIONS):
    row = f"{v:8}"
    for ms in gru_ms.values():
        prev = ms[VERSIONS[i - 1]] if i else ms[v]
        row += f"{ms[v]:12.2f}{ms['v0'] / ms[v]:7.1f}×{prev / ms[v]:8.2f}×"
    print(row)
print("library plain loop (fused=False): " + ", ".join(
    f"{n} {ms['plain']:.2f} ms, v3 / plain {ms['v3'] / ms['plain']:.2f}×, "
    f"plain / v4 {ms['plain'] / ms['v4']:.2f}×" for n, ms in gru_ms.items()))
f32, f64 = gru_ms["float32"], gru_ms["float64"]
print("\nfloat64 / float32 time: " + ", ".join(f"{v} {f64[v] / f32[v]:.1f}" for v in VERSIONS))

# %% [markdown]
# Read the table by its ratios: "vs v0" is the textbook loop's time divided by this version's
# (above 1: faster), "vs prev" what that one rewrite brought. The versions split cleanly in two:
# **v0 → v3 change only the matrix products** (the elementwise code is the same function; v1
# also stops growing the output array), and
# **v3 → v4 changes only the elementwise part** (the products are the same). So the library's
# ratio to the textbook loop is the product of two factors, which the next cell prints for this
# machine. On a shared machine, reruns move the timings by more than some of these ratios differ
# from 1: read a ratio near 1 as "no clear change", not as a rewrite that made things slower.

# %%
for name, ms in gru_ms.items():
    step_ratio = {VERSIONS[i]: ms[VERSIONS[i - 1]] / ms[VERSIONS[i]] for i in range(1, 5)}
    top = max(step_ratio, key=step_ratio.get)
    print(f"{name}: time v0 / v4 = {ms['v0'] / ms['v4']:.1f} = products (v0 / v3) "
          f"{ms['v0'] / ms['v3']:.2f} × elementwise (v3 / v4) {ms['v3'] / ms['v4']:.2f}; "
          f"largest single rewrite: {top} ({step_ratio[top]:.2f})")

# %% [markdown]
# **When do the product rewrites pay?** They remove *calls*, not arithmetic. Counting the matrix
# products (each a call into BLAS):
#
# | version | products per step, forward | per step, backward | outside the loop |
# |---|---|---|---|
# | v0 | 6 | 12 | 0 |
# | v1 | 3 | 12 | 3 (input projections) |
# | v2 | 1 | 4 | 1 |
# | v3, v4 | 1 | 1 | 4 (input projection; $\partial W_x$, $\partial W_h$, $\delta x$) |
#
# Over T = 30 steps that is 540 calls for v0 and 64 for v3, for the same arithmetic: the
# floating-point operations of the products are identical in all five versions. Each call costs
# a fixed overhead on top of its arithmetic: Python and NumPy's dispatch, and with several BLAS
# threads, handing the work out and waiting for every thread (on a busy machine a thread may
# not even be running). A small product also runs further from the CPU's peak speed than a tall
# one. So fewer, larger products pay most when the products are small (small B or H),
# with multi-threaded BLAS, and on a busy machine; with one BLAS thread and large products they
# pay little, because the arithmetic, the same in every version, dominates. (The README's
# benchmark, at B = 64 and D = H = 256, finds a plain loop over the library's stacked step
# functions about as fast as the library itself.) The elementwise rewrites of v4 do less work,
# not just fewer calls; section 5 counts that work.

# %%
fig, ax = plt.subplots(figsize=(7, 3.6))
width = 0.38
for k, (name, ms) in enumerate(gru_ms.items()):
    xs_bar = np.arange(len(VERSIONS)) + (k - 0.5) * width
    heights = [ms[v] for v in VERSIONS]
    bars = ax.bar(xs_bar, heights, width, label=name)
    for bar, v in zip(bars, VERSIONS):
        ax.annotate(f"{ms['v0'] / ms[v]:.1f}×", (bar.get_x() + bar.get_width() / 2,
                    bar.get_height()), ha="center", va="bottom", fontsize=8)
ax.set_xticks(np.arange(len(VERSIONS)),
              ["v0\ntextbook", "v1\ninput proj.\nbefore loop", "v2\nstacked\ngates",
               "v3\ngrads after\nloop", "v4\nlibrary"])
ax.set_ylabel("forward + backward, ms (median)")
ax.set_title(f"GRU layer, B={B}, T={T}, D={D}, H={H}: time per version\n"
             "(labels: speed-up over v0; measured on the build machine)", fontsize=10)
ax.legend(title="dtype", loc="best")
ax.margins(y=0.12)
fig.tight_layout()
plt.show()

# %% [markdown]
# ## 4. Where the remaining time goes: a floor
#
# The products do the same arithmetic in every version. How long would they take alone, at the
# best speed this machine's BLAS reaches? Count the floating-point operations of the products of
# one forward and backward pass (a $(m, k) @ (k, n)$ product is $2mkn$ of them): forward
# $X W_x$ and $h_{t-1} W_h$; backward $\delta a^h W_h^\top$, $\partial W_h$, $\partial W_x$ and
# $\delta x$. Then time one large product to get the machine's rate.

# %%
flops = 2 * T * B * 3 * H * (D + H)  # forward: X W_x and T of h W_h
flops += 2 * T * B * 3 * H * (2 * H + 2 * D)  # backward: δa^h W_h^T, ∂W_h; ∂W_x, δx
big = {name: [np.random.default_rng(1).standard_normal(s).astype(name) for s in
              ((T * B, 3 * H), (3 * H, 3 * H))] for name in ("float64", "float32")}
rate = {name: 2 * T * B * (3 * H) ** 2 / (1e-3 * time_interleaved(
        {name: lambda a=a, b=b: a @ b}, repeats=5, number=3)[name])
        for name, (a, b) in big.items()}
print(f"products of one pass: {flops / 1e6:.0f} MFLOP")
for name in gru_ms:
    floor_ms = 1e3 * flops / rate[name]
    print(f"{name}: a ({T * B}, {3 * H}) @ ({3 * H}, {3 * H}) product runs at "
          f"{rate[name] / 1e9:.0f} GFLOP/s -> products alone {floor_ms:.2f} ms; "
          f"library {gru_ms[name]['v4']:.2f} ms = {gru_ms[name]['v4'] / floor_ms:.1f}× that floor")

# %% [markdown]
# The last number says how far the library's pass is from its products alone at full speed. The
# rest is the products' inefficiency at B = 32 rows (the recurrence forces $T$ of them each way),
# Python's overhead per step, and the elementwise work, the subject of the next section.
#
# ## 5. Transcendentals
#
# **Counting them.** We replace `np.tanh` and `np.exp` for the duration of one call by wrappers
# that add up the number of elements they are given (this notebook and the library both look
# them up as `np.tanh` at call time), and restore them afterwards.
#
# **Predict.** Count before you run: per hidden unit and per step, forward and backward together,
# how many `tanh` and `exp` evaluations does the textbook elementwise code of v0–v3 make? (The
# sigmoid is $1 / (1 + e^{-a})$, and `dsigmoid` and `dtanh` recompute their activation.) And the
# library, which keeps $r, z, n$ and activates both sigmoid gates with one `tanh`?

# %%
@contextmanager
def counting_transcendentals():
    """Within the block, np.tanh and np.exp count their elements into a Counter."""
    counts, originals = Counter(), {"tanh": np.tanh, "exp": np.exp}

    def counted(name, fn):
        def wrapper(a, *args, **kwargs):
            counts[name] += np.size(a)
            return fn(a, *args, **kwargs)
        return wrapper

    try:
        for name, fn in originals.items():
            setattr(np, name, counted(name, fn))
        yield counts
    finally:
        for name, fn in originals.items():
            setattr(np, name, fn)


calls = {"v0": lambda: gru_v0(x64, dhs64, P64), "v1": lambda: gru_v1(x64, dhs64, P64),
         "v2": lambda: gru_v2(x64, dhs64, W64), "v3": lambda: gru_v3(x64, dhs64, W64),
         "v4": lambda: gru_v4(x64, dhs64, gru64)}
counts = {}
for v, fn in calls.items():
    with counting_transcendentals() as c:
        fn()
    counts[v] = c
assert isinstance(np.tanh, np.ufunc) and isinstance(np.exp, np.ufunc)  # restored
print(f"{'version':8} {'tanh elements':>14} {'exp elements':>13} {'per T·B·H':>10}")
for v, c in counts.items():
    print(f"{v:8} {c['tanh']:14,} {c['exp']:13,} {(c['tanh'] + c['exp']) / (T * B * H):10.0f}")
assert counts["v4"]["tanh"] == 3 * T * B * H and counts["v4"]["exp"] == 0
assert all(c["tanh"] + c["exp"] == 9 * T * B * H for v, c in counts.items() if v != "v4")

# %% [markdown]
# The textbook elementwise code evaluates **9** transcendentals per hidden unit per step: 3 in the
# forward pass ($r$, $z$, $n$), 3 more in the backward pass to get the forward values back, and
# 3 inside $\sigma'(a)$ and $\tanh'(a)$. The library evaluates **3**, all in the forward pass, all
# `tanh`.
#
# **What one costs.** A matrix product does $2k$ floating-point operations per element of its
# output, and BLAS runs them with vector instructions on data already in the cache. `np.tanh` and
# `np.exp` do one evaluation per element, but each evaluation is a polynomial approximation
# costing tens of operations, plus range checks. Take one step of the GRU: the product
# $h_{t-1} W_h$, a $(32, 128) @ (128, 384)$, produces a (32, 384) array, $2 \cdot 128 = 256$
# operations per element. Time it against `np.tanh` and `np.exp` over an array of that size,
# and against a plain multiplication for scale, all written into a preallocated `out=` array:

# %%
print(f"{'dtype':8} {'h @ W_h':>9} {'np.tanh':>9} {'np.exp':>9} {'a * a':>9}   "
      f"(µs per call; arrays of ({B}, {3 * H}))   tanh / product")
per_element = {}
for name in ("float64", "float32"):
    gen = np.random.default_rng(2)
    h_prev, W_h = (gen.standard_normal(s).astype(name) for s in ((B, H), (H, 3 * H)))
    arr, res = h_prev @ W_h, np.empty((B, 3 * H), name)
    arr_e = arr * 0.1  # exp in a moderate range
    ops = {"product": (np.matmul, h_prev, W_h), "tanh": (np.tanh, arr),
           "exp": (np.exp, arr_e), "mul": (np.multiply, arr, arr)}
    us = {k: 1e3 * v for k, v in time_interleaved(
        {k: lambda f=f, args=args, res=res: f(*args, out=res) for k, (f, *args) in ops.items()},
        repeats=7, number=200).items()}
    per_element[name] = {k: 1e-3 * us[k] / res.size for k in ("tanh", "exp")}  # ms per element
    print(f"{name:8} {us['product']:9.1f} {us['tanh']:9.1f} {us['exp']:9.1f} {us['mul']:9.1f}"
          f"   {'':36}{us['tanh'] / us['product']:.2f}")

# %% [markdown]
# The product does 256 operations per output element, the `tanh` one evaluation: were an
# evaluation as cheap as one of the product's operations, the last column would read 1/256.
# It reads far more than that, and the `np.tanh` column is above the plain multiplication's
# (`a * a`). With these per-element times we can estimate how much of each pass the
# transcendentals take, from the counts above (an estimate: the real calls run on arrays of
# other shapes):

# %%
for name, ms in gru_ms.items():
    cost = {v: counts[v]["tanh"] * per_element[name]["tanh"]
            + counts[v]["exp"] * per_element[name]["exp"] for v in ("v3", "v4")}
    print(f"{name}: transcendentals ≈ {cost['v3']:.1f} ms of v3's {ms['v3']:.1f} ms "
          f"({cost['v3'] / ms['v3']:.0%}); ≈ {cost['v4']:.1f} ms of the library's "
          f"{ms['v4']:.1f} ms ({cost['v4'] / ms['v4']:.0%})")

# %% [markdown]
# ## 6. Attention: batch what does not depend on the previous step
#
# Decoder sizes to match the GRU: queries of size $H_q = H = 128$ (the decoder state), a
# bidirectional encoder's annotations of size $H_k = 2H = 256$, attention size $A = 128$,
# $S = T = 30$, B = 32, every source full length. Checks in float64, timings in float32 (the
# dtype models are trained in).
#
# **Luong, general score** (`docs/equations.md` §5): $\text{score}(h_t, \bar h_s) = h_t^\top W_a
# \bar h_s$, in row-vector code `h_t · (h̄_s @ W_a.T)`. The keys $\bar h_s W_a^\top$ are projected
# once (`attn.prepare`). Without input feeding the decoder's states $h_1 … h_T$ are all known
# after one sequence call of its RNN, so the scores of all steps are **one batched product**
# $(B, T, H_q) @ (B, H_q, S) \to (B, T, S)$, instead of T products of one query each.

# %%
S, Hq, Hk, A = 30, H, 2 * H, 128
rng = np.random.default_rng(3)
enc64 = rng.standard_normal((B, S, Hk))  # encoder annotations h̄_s
queries64 = rng.standard_normal((B, T, Hq))  # decoder states h_t (or s_{i-1} for Bahdanau)
src_mask = np.ones((B, S), dtype=bool)


def luong_scores_loop(queries, keys):
    scores = np.empty(queries.shape[:2] + keys.shape[1:2], queries.dtype)  # (B, T, S)
    for t in range(queries.shape[1]):
        # (B, S, Hq) @ (B, Hq, 1) -> (B, S, 1): one query per example
        scores[:, t] = (keys @ queries[:, t, :, None])[:, :, 0]
    return scores


def luong_scores_batched(queries, keys):
    return queries @ keys.transpose(0, 2, 1)  # (B, T, Hq) @ (B, Hq, S) -> (B, T, S)


luong64 = ta.LuongAttention(Hq, Hk, score="general", rng=np.random.default_rng(4))
keys64 = matmul_last(enc64, luong64.params["W_a"].T)  # (B, S, Hk) @ (Hk, Hq) -> (B, S, Hq)
assert np.allclose(keys64, luong64.prepare(enc64, src_mask).keys)
scores_loop = luong_scores_loop(queries64, keys64)
scores_batched = luong_scores_batched(queries64, keys64)
assert scores_batched.shape == (B, T, S)
assert np.allclose(scores_loop, scores_batched)
_, alpha_lib = luong64(queries64, enc64, src_mask)  # the library, all steps
assert np.allclose(softmax(scores_batched, axis=2), alpha_lib)
print("Luong general: loop == batched == library (through the softmax)")

# %% [markdown]
# **Bahdanau** (`docs/equations.md` §4): $e_{ij} = v_a \cdot \tanh(s_{i-1} W_a + h_j U_a)$. Here the
# decoder cannot batch over steps: $s_{i-1}$ depends on the context of step $i-1$. But $h_j U_a$
# does not depend on $i$: the library projects it once per source batch (`attn.prepare`) and
# every `attn.step` reuses it. The naive decoder would redo it at every step; we run both with the
# library's own calls, over T given queries:

# %%
def bahdanau_keys_every_step(attn, queries, enc_hs, mask):
    return [attn.step(queries[:, t], attn.prepare(enc_hs, mask), t)[0]  # U_a h_j again
            for t in range(queries.shape[1])]


def bahdanau_keys_once(attn, queries, enc_hs, mask):
    prepared = attn.prepare(enc_hs, mask)  # (B, S, Hk) @ (Hk, A), once
    return [attn.step(queries[:, t], prepared, t)[0] for t in range(queries.shape[1])]


bahdanau64 = ta.BahdanauAttention(Hq, Hk, A, rng=np.random.default_rng(5))
ctx_every = np.stack(bahdanau_keys_every_step(bahdanau64, queries64, enc64, src_mask), axis=1)
ctx_once = np.stack(bahdanau_keys_once(bahdanau64, queries64, enc64, src_mask), axis=1)
ctx_all, _ = bahdanau64(queries64, enc64, src_mask)  # all T queries in one call
assert ctx_once.shape == (B, T, Hk)
assert np.allclose(ctx_every, ctx_once) and np.allclose(ctx_once, ctx_all)
with counting_transcendentals() as c:
    bahdanau64.step(queries64[:, 0], bahdanau64.prepare(enc64, src_mask))
print(f"Bahdanau: every step == once == library; one step evaluates {c['tanh']:,} tanh "
      f"(B·S·A = {B * S * A:,}) and {c['exp']:,} exp (B·S, the softmax)")

# %% [markdown]
# Timings in float32, "naive" against "fast": Luong's scores (a loop over steps vs one batched
# product), Luong's whole attention through the library (scores, softmax and context: T calls of
# `attn.step` vs one `attn.attend`), and Bahdanau over T steps (keys projected at every step vs
# once).

# %%
f4 = np.float32
enc, queries = enc64.astype(f4), queries64.astype(f4)
luong = ta.LuongAttention(Hq, Hk, score="general", rng=np.random.default_rng(4), dtype=f4)
bahdanau = ta.BahdanauAttention(Hq, Hk, A, rng=np.random.default_rng(5), dtype=f4)
luong_keys = luong.prepare(enc, src_mask)

pairs = {
    "Luong scores": ({"naive": lambda: luong_scores_loop(queries, luong_keys.keys),
                      "fast": lambda: luong_scores_batched(queries, luong_keys.keys)}),
    "Luong attention (library)": ({
        "naive": lambda: [luong.step(queries[:, t], luong_keys, t) for t in range(T)],
        "fast": lambda: luong.attend(queries, luong_keys)}),
    "Bahdanau, T steps": ({
        "naive": lambda: bahdanau_keys_every_step(bahdanau, queries, enc, src_mask),
        "fast": lambda: bahdanau_keys_once(bahdanau, queries, enc, src_mask)}),
}
attn_ms = {}
for label, cands in pairs.items():
    attn_ms[label] = time_interleaved(cands, repeats=7, number=3 if "Bahdanau" in label else 20)

print(f"{'float32':28} {'naive ms':>10} {'fast ms':>10} {'speed-up':>9}")
for label, ms in attn_ms.items():
    print(f"{label:28} {ms['naive']:10.3f} {ms['fast']:10.3f} {ms['naive'] / ms['fast']:8.1f}×")

# %% [markdown]
# Each row does the same arithmetic both ways (the Bahdanau row apart from the key projection it
# repeats), so the speed-ups come from fewer calls and larger products, as in section 3; the
# library row also saves, per step, the checks and the softmax call of `attn.step`. Batching
# needs the queries up front: Luong's decoder without input feeding has them, Bahdanau's never
# does. What a Bahdanau step keeps, even with its keys projected once, is a `tanh` over
# $B \cdot S \cdot A$ = 122,880 elements (printed above), which nothing can move out of the loop;
# Luong's general score needs no `tanh`. On this machine:

# %%
ratio = attn_ms["Bahdanau, T steps"]["fast"] / attn_ms["Luong attention (library)"]["naive"]
print(f"T Bahdanau steps (keys once) take {ratio:.1f}× the time of T Luong steps (library, "
      "one attn.step each)")

# %% [markdown]
# ## 7. Your turn: the backward of the batched scores
#
# Batching the forward pass is half of it: the backward pass must be batched too, or it brings
# the loop back. For Luong's scores $\text{scores}[b, t, s] = q[b, t] \cdot k[b, s]$ the
# per-step backward below gives, for an upstream gradient `dscores (B, T, S)`, the gradients of
# the queries and of the (projected) keys. Write `scores_backward_batched(dscores, cache)` with
# **one batched product each** and no loop; `cache = (queries, keys, scale)` is what the
# library's forward of these scores, `tinyattn.attention.dot_score_forward`, returns (scale = 1
# for Luong's general and dot scores). Hints: the forward is `queries @ keys.transpose(0, 2, 1)`;
# for $Y = Q K^\top$, $\partial L/\partial Q = \delta Y K$ and $\partial L/\partial K = \delta Y^\top
# Q$, with `transpose(0, 2, 1)` for a batch of matrices.
#
# `ex.check("batched_scores_backward", fn)` runs that forward on small random arrays (B = 2,
# T = 3, S = 4, K = 5, all different, so that a missing transpose fails on shapes) and the
# library's gradient checker on your backward. First, what it says about the loop with a
# classic slip, `dk =` where `dk +=` belongs:

# %%
def scores_backward_loop(dscores, cache):
    queries, keys, _ = cache
    dq, dk = np.empty_like(queries), np.zeros_like(keys)
    for t in range(queries.shape[1]):
        d_t = dscores[:, t, :, None]  # (B, S, 1)
        dq[:, t] = (d_t * keys).sum(axis=1)  # Σ_s dscores[b, t, s] k[b, s]
        dk += d_t * queries[:, t, None, :]  # (B, S, 1) * (B, 1, K) -> (B, S, K)
    return dq, dk


def scores_backward_loop_slip(dscores, cache):
    queries, keys, _ = cache
    dq, dk = np.empty_like(queries), np.zeros_like(keys)
    for t in range(queries.shape[1]):
        d_t = dscores[:, t, :, None]
        dq[:, t] = (d_t * keys).sum(axis=1)
        dk = d_t * queries[:, t, None, :]  # BUG: each step overwrites the sum
    return dq, dk


slip = ex.check("batched_scores_backward", scores_backward_loop_slip)
assert slip.status == "failed"
assert ex.check("batched_scores_backward", scores_backward_loop, verbose=False).passed

# %% [markdown]
# `dqueries` passes (each step writes its own row), `dkeys` fails, and the "likely" line names
# the slip: every step reads every key, so the key gradient is a sum over $t$. The correct loop
# passes. Now yours: replace the `raise` line, then run the cell after it. When it passes, that
# cell also times it against the loop at the sizes of section 6.

# %%
def scores_backward_batched(dscores, cache):
    """Backward of ``scores = queries @ keys.transpose(0, 2, 1)``, with no loop.

    dscores (B, T, S); cache = ``(queries (B, T, K), keys (B, S, K), scale)``, scale = 1 here.
    Returns ``dqueries (B, T, K)`` and ``dkeys (B, S, K)``, one batched product each.
    """
    queries, keys, _ = cache
    # BEGIN SOLUTION
    dqueries = dscores @ keys  # (B, T, S) @ (B, S, K) -> (B, T, K)
    dkeys = dscores.transpose(0, 2, 1) @ queries  # (B, S, T) @ (B, T, K) -> (B, S, K)
    return dqueries, dkeys
    # END SOLUTION

# %%
result = ex.check("batched_scores_backward", scores_backward_batched)
assert result.status in ("passed", "not implemented"), "read the report above"
if result.passed:
    cache64 = (queries64, keys64, 1.0)
    dscores64 = np.random.default_rng(6).standard_normal((B, T, S))
    expected = scores_backward_loop(dscores64, cache64)
    mine = scores_backward_batched(dscores64, cache64)
    assert np.allclose(mine[0], expected[0]) and np.allclose(mine[1], expected[1])
    ms = time_interleaved({"loop": lambda: scores_backward_loop(dscores64, cache64),
                           "batched": lambda: scores_backward_batched(dscores64, cache64)},
                          repeats=5, number=5)
    print(f"equal to the loop at B = {B}, T = {T}, S = {S}; float64: loop {ms['loop']:.2f} ms, "
          f"batched {ms['batched']:.2f} ms, {ms['loop'] / ms['batched']:.0f}× faster")

# %% [markdown]
# ## 8. To remember
#
# - **The recurrence is sequential; nothing else has to be.** Move out of the time loop every
#   product that does not need the previous step: the input projections before it, the weight
#   and input gradients after it. What remains is one $(B, H) @ (H, 3H)$ product per step each way.
# - **Few, large products.** Stack the gates so that a step makes one call into BLAS, not three;
#   form $\sum_t x_t^\top \delta a_t$ as $X^\top \delta A$ over $T \cdot B$ rows (`DeferredGrads`
#   when the loop cannot be restructured).
# - **Count transcendentals.** On a CPU a `tanh` costs many multiplications per element and is
#   not negligible next to the product that produced its array. Keep the activations, read the
#   derivatives off them ($1 - n^2$, $z(1-z)$), and, where it measurably pays, one `tanh` for
#   every gate ($\sigma(a) = (\tanh(a/2)+1)/2$).
# - **Attention: batch what the decoder allows.** Luong without input feeding: all T × S scores in
#   one batched product, forward and backward. Bahdanau: the keys $h_j U_a$ once per source batch.
# - **Check every rewrite** against the version before it, in float64; time interleaved, take the
#   median, and report the machine: the ratios here are this machine's, not universal.
#
# **Try it yourself.** Re-run section 3 with B = 8 and with B = 512, and predict first: which
# factor, products (v0 / v3) or elementwise (v3 / v4), should grow in each case, and why? Start
# Jupyter with `OPENBLAS_NUM_THREADS=1` (one BLAS thread) and compare again. Write the LSTM's v0
# and v3 (4 gates, `docs/equations.md` §1) and check them against `tinyattn.LSTM`;
# `python benchmarks/bench_rnn.py` times the library against PyTorch on your machine.
#
# **Next.** Lesson 13: attention within one sequence, self-attention, where the second source
# document ends.
