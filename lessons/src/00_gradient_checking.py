# Source of lessons/00_gradient_checking.ipynb (learner) and
# lessons/solutions/00_gradient_checking.ipynb (instructor): edit here, then run
# `.venv/bin/python lessons/build.py 00` (see lessons/build.py).

# %% [markdown]
# # Lesson 00 — Gradient checking
#
# **Goal.** Every layer in tinyattn has a backward pass written by hand. Before we trust one, we
# compare it with a gradient computed a second, independent way: by nudging each input a little and
# watching the output move. By the end of this lesson you will know how that comparison works, what
# numbers to expect, why it needs float64, how a wrong backward shows up, and you will have written
# your first recurrent backward pass, `rnn_step_backward`, and had it checked.
#
# We practise on three small pieces whose backward we derive here, in the open: a dense layer
# $y = \tanh(x W + b)$, a sigmoid, and an elementwise product. They are the bricks of every cell in
# lessons 01 and 02. Sources: the RNN equation is `docs/equations.md` §1.1 (document 003,
# "RNN/LSTM"); the checker is the library's `tinyattn/gradcheck.py`, the one the tests, lessons
# and exercises all use (`docs/design.md` §7).

# %%
import matplotlib.pyplot as plt
import numpy as np

import tinyattn.exercises
from tinyattn.gradcheck import STEP, TOL_STEP, check_function

B, D, H = 2, 5, 6  # small and all different: a transposed matrix cannot hide
rng = np.random.default_rng(0)

# %% [markdown]
# ## 0. Three pieces and their backward passes
#
# Every forward here returns `(out, cache)`, and every backward takes the upstream gradient
# `dout` $= \partial L/\partial\,\text{out}$ and the cache, and returns one gradient per input,
# of that input's shape (`docs/design.md` §2).
#
# **A dense tanh layer**, $a = x W + b$, $y = \tanh(a)$, with $x$ (B, D), $W$ (D, H), $b$ (H,).
# Since $\tanh'(a) = 1 - \tanh(a)^2$, the derivative can be written with the *output* $y$, so the
# cache keeps $y$ and not $a$:
#
# $$\frac{\partial L}{\partial a} = \frac{\partial L}{\partial y} \odot (1 - y^2), \quad
# \frac{\partial L}{\partial x} = \frac{\partial L}{\partial a} W^\top, \quad
# \frac{\partial L}{\partial W} = x^\top \frac{\partial L}{\partial a}, \quad
# \frac{\partial L}{\partial b} = \sum_{\text{batch}} \frac{\partial L}{\partial a}.$$
#
# (For $y = u W$, each entry $W_{ij}$ touches column $j$ of every row, weighted by $u_{\cdot i}$:
# that is $u^\top\, \partial L/\partial y$; the shapes (D, B) @ (B, H) confirm it. The bias is
# added to every row of the batch, so its gradient sums over the rows.)
#
# **A sigmoid**, $s = \sigma(x) = 1/(1 + e^{-x})$: $\sigma' = s(1 - s)$, again from the output.
#
# **A product**, $z = u \odot v$: $\partial L/\partial u = \partial L/\partial z \odot v$ and
# $\partial L/\partial v = \partial L/\partial z \odot u$.

# %%
def dense_tanh_forward(x, W, b):
    y = np.tanh(x @ W + b)  # (B, D) @ (D, H) + (H,) -> (B, H)
    return y, (x, W, y)


def dense_tanh_backward(dy, cache):
    x, W, y = cache
    da = dy * (1.0 - y * y)  # tanh'(a) = 1 − y²
    return da @ W.T, x.T @ da, da.sum(axis=0)  # dx (B, D), dW (D, H), db (H,)


def sigmoid_forward(x):
    s = 1.0 / (1.0 + np.exp(-x))
    return s, s


def sigmoid_backward(ds, s):
    return (ds * s * (1.0 - s),)  # one gradient per input: a tuple of one


def product_forward(u, v):
    return u * v, (u, v)


def product_backward(dz, cache):
    u, v = cache
    return dz * v, dz * u


x = rng.standard_normal((B, D))
W, b = rng.standard_normal((D, H)), rng.standard_normal(H)
y, cache = dense_tanh_forward(x, W, b)
dy = rng.standard_normal((B, H))  # an upstream gradient dL/dy
dx, dW, db = dense_tanh_backward(dy, cache)
assert (dx.shape, dW.shape, db.shape) == ((B, D), (D, H), (H,))  # one per input, same shape
print("y:", y.shape, " dx:", dx.shape, " dW:", dW.shape, " db:", db.shape)

# %% [markdown]
# The library writes these elementwise pairs once, in `tinyattn/functional.py`
# (`docs/equations.md` §8.1), each backward reading the derivative off the cached output as
# above. Its sigmoid is computed as $(\tanh(x/2) + 1)/2$, which cannot overflow where
# $1/(1 + e^{-x})$ does for large negative $x$; the two agree to round-off:

# %%
from tinyattn import functional as F  # the library's elementwise pairs

z = np.random.default_rng(1).standard_normal((B, H)) * 4  # a separate generator: rng untouched
dz = np.random.default_rng(2).standard_normal((B, H))
s_lib, s_cache = F.sigmoid_forward(z)
t_lib, t_cache = F.tanh_forward(z)
assert np.allclose(s_lib, sigmoid_forward(z)[0], rtol=1e-14, atol=0)
assert np.allclose(F.sigmoid_backward(dz, s_cache), sigmoid_backward(dz, sigmoid_forward(z)[1])[0])
assert np.allclose(F.tanh_backward(dz, t_cache), dz * (1.0 - np.tanh(z) ** 2))
print("largest |library σ − 1/(1 + e^-x)|:", f"{np.abs(s_lib - sigmoid_forward(z)[0]).max():.1e}")

# %% [markdown]
# ## 1. Centered differences
#
# A forward returns an array, not a number. We make it a number with the random upstream gradient
# `dy` of the output's shape:
#
# $$L(\theta) = \sum \text{out}(\theta) \odot \text{dout}, \qquad
# \frac{\partial L}{\partial \theta} = \text{exactly what } \texttt{backward(dout, cache)}
# \text{ returns for } \theta .$$
#
# (A random `dout` exercises every path; `dout = 1` can hide a transposed or summed-away gradient.)
# For one entry $\theta_k$, the **centered difference**
#
# $$\frac{\partial L}{\partial \theta_k} \approx \frac{L(\theta + h e_k) - L(\theta - h e_k)}{2h}$$
#
# (here $h$ is the step size, `step` in the code, not a hidden state) is off by
# $\frac{h^2}{6} L'''$: Taylor's even terms cancel, so the error falls with $h^2$
# (the one-sided $\frac{L(\theta + h e_k) - L(\theta)}{h}$ is off by $\frac{h}{2} L''$, far worse).
# Here it is, written out for `W`, and compared with `dense_tanh_backward`:

# %%
def loss(W_):
    out, _ = dense_tanh_forward(x, W_, b)
    return np.sum(out * dy)


step = 1e-5
num_dW = np.zeros_like(W)
for k in np.ndindex(W.shape):
    W_plus, W_minus = W.copy(), W.copy()
    W_plus[k] += step
    W_minus[k] -= step
    num_dW[k] = (loss(W_plus) - loss(W_minus)) / (2 * step)

print("largest |analytic - numerical|:", np.abs(dW - num_dW).max())
assert np.allclose(num_dW, dW, rtol=1e-6, atol=1e-9)

# %% [markdown]
# ## 2. Relative error, with an absolute floor
#
# How far apart may the two be? An absolute threshold does not work: gradients range over many
# orders of magnitude. So we compare **relatively**, per entry,
# $|a - n| / \max(|a|, |n|)$. But a purely relative error fails where the true gradient is almost
# zero: where a tanh saturates ($y \approx \pm 1$) the true gradient is many orders of magnitude
# below the others, and there both the analytic and the numerical value are mostly round-off, which
# a relative error reads as 100 % wrong. The library adds a
# **floor**:
#
# $$\text{err} = \frac{|a - n|}{\max(|a|,\ |n|,\ \text{floor})}, \qquad
# \text{floor} = \frac{\text{noise}}{\text{tol}},$$
#
# where *noise* is how far a centered difference can be off by itself (round-off plus truncation,
# `gradcheck.noise_level`). Below the floor the comparison becomes absolute. Let us saturate the
# layer on purpose (weights × 8) and look at both measures (the pure relative error of `W` and `b`
# comes out as 1.0e+00, "all wrong", for a correct backward; the floored one passes):

# %%
sat_args = [x, 8 * W, b]
print("share of |y| > 0.999:", np.mean(np.abs(dense_tanh_forward(*sat_args)[0]) > 0.999))
sat = check_function(dense_tanh_forward, dense_tanh_backward, *sat_args)
for rep in sat.reports:
    a, n = rep.analytic, rep.numerical
    pure = np.abs(a - n) / np.maximum(np.maximum(np.abs(a), np.abs(n)), 1e-300)
    print(f"{rep.name:3} pure relative {pure.max():.1e}   with floor {rep.error:.1e}")
assert sat.passed  # the same, correct backward: no false alarm

# %% [markdown]
# ## 3. Why float64: error against the step size $h$
#
# Two errors compete. Truncation shrinks like $h^2$; round-off grows like $\varepsilon |L| / h$,
# because $L(\theta + h) - L(\theta - h)$ subtracts two nearly equal numbers, each rounded to
# relative precision $\varepsilon$. The best $h$ balances them, near $\varepsilon^{1/3}$, with an
# error near $\varepsilon^{2/3}$ (the cell prints both for each type).
#
# **Predict.** float32 rounds far more coarsely than float64 (both
# $\varepsilon$ are printed below). Can centered differences in float32
# check a backward to the step-function tolerance `TOL_STEP` = 1e-7 with *some* step size? If
# not, how close can they get, and at what $h$? Write down your guess, then run the cell.

# %%
def numerical_dW(dtype, step):
    """Centered differences for W with every array and operation in ``dtype``."""
    xs, Ws, bs, up = (arr.astype(dtype) for arr in (x, W, b, dy))
    grad = np.zeros(Ws.shape)
    for k in np.ndindex(Ws.shape):
        old = Ws[k]
        Ws[k] = old + dtype(step)
        plus = np.sum(dense_tanh_forward(xs, Ws, bs)[0] * up, dtype=dtype)
        Ws[k] = old - dtype(step)
        minus = np.sum(dense_tanh_forward(xs, Ws, bs)[0] * up, dtype=dtype)
        Ws[k] = old
        grad[k] = (float(plus) - float(minus)) / (2 * float(step))
    return grad


steps = np.logspace(-10, -0.5, 39)
scale = np.abs(dW).max()
errors = {dt.__name__: [np.abs(numerical_dW(dt, s) - dW).max() / scale for s in steps]
          for dt in (np.float64, np.float32)}
best = {}
for name, errs in errors.items():
    k = int(np.argmin(errs))
    best[name] = (errs[k], steps[k])
    eps = float(np.finfo(name).eps)
    print(f"{name}: eps = {eps:.1e}, theory h ~ eps^(1/3) = {eps ** (1 / 3):.0e}, error ~ "
          f"eps^(2/3) = {eps ** (2 / 3):.0e};  measured: best error {errs[k]:.1e} "
          f"at h = {steps[k]:.0e}")

fig, ax = plt.subplots(figsize=(6, 3.8))
for name, errs in errors.items():
    ax.loglog(steps, errs, "o-", ms=3, label=name)
ax.axhline(TOL_STEP, color="gray", ls="--", lw=1)
ax.text(1.5e-7, TOL_STEP * 1.6, "TOL_STEP = 1e-7", color="gray", fontsize=8)
ax.axvline(STEP, color="gray", ls=":", lw=1)
ax.text(STEP / 1.3, 1e-4, "STEP = 1e-5", color="gray", fontsize=8, ha="right")
ax.set_xlabel("step size h")
ax.set_ylabel("max |numerical − analytic| / max |analytic|")
ax.set_title("Centered differences for dW of y = tanh(x W + b)")
ax.legend()
fig.tight_layout()
plt.show()
assert best["float32"][0] > 10 * TOL_STEP > best["float64"][0] * 100

# %% [markdown]
# **Answer.** No. float32's best error is 4.2e-05, more than a hundred times the tolerance
# 1e-7, and only at a step as large as h = 1e-02, where truncation already costs as much as
# round-off. The float64 curve falls with slope 2 (truncation, $h^2$) until round-off takes over
# and it rises with slope −1; its best, 7.3e-11 at h = 2e-05, is next to the checker's
# `STEP` = 1e-5 and more than a thousand times below the tolerance. A correct backward checked in
# float32 would fail. So the checker works in float64 and refuses float32 outright:

# %%
try:
    check_function(dense_tanh_forward, dense_tanh_backward,
                   *(arr.astype(np.float32) for arr in (x, W, b)))
except TypeError as err:
    print("TypeError:", err)

# %% [markdown]
# ## 4. The library's checker
#
# `check_function(forward, backward, *args)` does all of the above for every entry of every
# argument: a random `dout` (seeded), centered differences with `STEP`, the floored relative error,
# one line per array. A correct backward lands far under the tolerance **1e-7** (`TOL_STEP`; a
# sequence layer gets `TOL_LAYER` = 1e-6, a whole model `TOL_MODEL` = 1e-5, since errors add up
# over steps). Our three pieces:

# %%
u, v = rng.standard_normal((B, H)), rng.standard_normal((B, H))
pieces = {
    "dense tanh": check_function(dense_tanh_forward, dense_tanh_backward, x, W, b),
    "sigmoid": check_function(sigmoid_forward, sigmoid_backward, u),
    "product": check_function(product_forward, product_backward, u, v),
}
print(pieces["dense tanh"], "\n")
for name, res in pieces.items():
    print(f"{name:10} max error {res.max_error:.1e}")
    assert res.passed and res.max_error < TOL_STEP

# %% [markdown]
# ## 5. The checker must be able to fail
#
# A check that never fails proves nothing. Put the three pieces together into a tiny **gated
# unit**, the pattern of every GRU and LSTM gate (lesson 02): one product $a = x W + b$ with
# $W$ (D, 2H) holding two blocks of columns side by side, a gate $s = \sigma(a_s)$ from the first
# block and a candidate $c = \tanh(a_c)$ from the second, and the output $y = s \odot c$. Chain
# the pieces' backwards: $\partial L/\partial s = \partial L/\partial y \odot c$ and
# $\partial L/\partial c = \partial L/\partial y \odot s$ (product), then each through its own
# derivative (sigmoid, tanh), then the two blocks side by side through $a = x W + b$ (dense).
#
# A classic bug: the two blocks of the weight gradients written in the wrong order (the gate's
# columns where the candidate's belong). `gates=` tells the checker how the columns split, so the
# report says *which block* is wrong.
#
# **Predict.** The bug below swaps the blocks of `dW` and `db` only; `dx` is computed before the
# swap. Which of `dx`, `dW`, `db` will fail, and in `dW`, which blocks?

# %%
def gated_forward(x, W, b):
    a = x @ W + b  # (B, 2H): blocks s, c
    a_s, a_c = np.split(a, 2, axis=1)
    s, _ = sigmoid_forward(a_s)
    c = np.tanh(a_c)
    y, _ = product_forward(s, c)
    return y, (x, W, s, c)


def gated_backward(dy, cache, swap=False):
    x, W, s, c = cache
    ds, dc = product_backward(dy, (s, c))
    (da_s,) = sigmoid_backward(ds, s)
    da_c = dc * (1.0 - c * c)
    da = np.concatenate([da_s, da_c], axis=1)  # (B, 2H), blocks in the order s, c
    dx_ = da @ W.T
    if swap:  # BUG: the blocks of the weight gradients in the wrong order
        da = np.concatenate([da_c, da_s], axis=1)
    return dx_, x.T @ da, da.sum(axis=0)


W2, b2 = rng.standard_normal((D, 2 * H)), rng.standard_normal(2 * H)
blocks = {"W": ("s", "c"), "b": ("s", "c")}
good = check_function(gated_forward, gated_backward, x, W2, b2, gates=blocks)
bad = check_function(gated_forward, lambda d, cache: gated_backward(d, cache, swap=True),
                     x, W2, b2, gates=blocks)
print("right:", good.passed, f"(max error {good.max_error:.1e})\n")
print(bad)
assert good.passed and not bad.passed and bad.failed == ["W", "b"]

# %% [markdown]
# **Answer.** `dx` passes: it was computed from the right blocks. `dW` and `db` fail, and in both
# blocks: each holds the other's gradient. Their errors, 1.50e+00 and 1.23e+00, are of the size of
# the gradient itself, as a real bug's are; that is why the floor of section 2 never hides one.
#
# ## 6. Your turn: `rnn_step_backward`
#
# The forward of one step of the vanilla RNN (`docs/equations.md` §1.1, row-vector form, as in
# `tinyattn/rnn.py`):
#
# $$a = x_t W_{xh} + h_{t-1} W_{hh} + b_h, \qquad h = \tanh(a)$$
#
# It is the dense tanh layer of section 0 with a second input, the previous state $h_{t-1}$, and a
# second weight matrix. Write its backward. Your function gets the upstream gradient `dh (B, H)`
# and the cache the library's `rnn_step_forward` built, `(x_t, h_prev, W_xh, W_hh, h)`, and
# returns `dx_t, dh_prev, dW_xh, dW_hh, db_h`, each of the shape of its array. Hints:
#
# - the cache holds the *output* `h`, not `a`: write $\tanh'(a)$ in terms of $h$;
# - $h_{t-1} W_{hh}$ is a product like $x_t W_{xh}$: it gives `dh_prev` and `dW_hh` the same way;
# - the bias is added to every example of the batch.
#
# `tinyattn.exercises.check` grades it with the checker of section 4 on one step, then chains it
# over 3 steps (backpropagation through time, lesson 01) and reports the input gradient **per time
# step**. First, what it says about a first attempt that reuses `dense_tanh_backward` for the
# $x_t$ path and forgets $h_{t-1}$:

# %%
def rnn_backward_forgot_h_prev(dh, cache):
    x_t, h_prev, W_xh, W_hh, h = cache
    dx_t, dW_xh, db_h = dense_tanh_backward(dh, (x_t, W_xh, h))
    return dx_t, np.zeros_like(h_prev), dW_xh, np.zeros_like(W_hh), db_h  # BUG: no h_prev path


forgot = tinyattn.exercises.check("rnn_step_backward", rnn_backward_forgot_h_prev)
assert forgot.status == "failed"

# %% [markdown]
# The $x_t$ path is right (`dx_t`, `dW_xh`, `db_h` pass), the recurrent one is missing
# (`dh_prev` and `dW_hh` are all zeros). Chained over 3 steps, the last step's `dx` is right and
# the earlier ones are wrong: nothing is handed back to the previous step, the bug lesson 01 calls
# a dropped `dh_next`. Now yours: replace the `raise` line with your code, then run the cell after
# it. (`tinyattn.exercises.stub("rnn_step_backward")` prints the same starting point.)

# %%
def my_rnn_step_backward(dh, cache):
    """Backward of ``h = tanh(x_t @ W_xh + h_prev @ W_hh + b_h)``.

    Returns ``dx_t (B, D), dh_prev (B, H), dW_xh (D, H), dW_hh (H, H), db_h (H,)``.
    """
    x_t, h_prev, W_xh, W_hh, h = cache
    # BEGIN SOLUTION
    da = dh * (1.0 - h * h)  # tanh'(a) = 1 − tanh(a)² = 1 − h²
    dx_t = da @ W_xh.T  # (B, H) @ (H, D) -> (B, D)
    dh_prev = da @ W_hh.T  # (B, H) @ (H, H) -> (B, H)
    dW_xh = x_t.T @ da  # (D, B) @ (B, H) -> (D, H)
    dW_hh = h_prev.T @ da  # (H, B) @ (B, H) -> (H, H)
    db_h = da.sum(axis=0)  # b_h is broadcast over the batch: sum it back
    return dx_t, dh_prev, dW_xh, dW_hh, db_h
    # END SOLUTION

# %%
mine = tinyattn.exercises.check("rnn_step_backward", my_rnn_step_backward)
assert mine.status in ("passed", "not implemented"), "read the report above"

# %% [markdown]
# When it fails, read the table (which gradient, which time step) and the "likely:" lines: the
# checker recognises classic mistakes from the numbers, such as the derivative taken at the wrong
# point, a weight not transposed, or a missing path. It never compares with a hidden solution, only
# with centered differences, exactly as in this lesson.
#
# ## 7. The library's RNN step, checked
#
# Now that you have written it, the library's `rnn_step_backward` (`tinyattn/rnn.py`) is the same
# arithmetic, and from here on the lessons use it. The checker's full report on it, once with
# ordinary weights and once saturated (weights × 6), where the floor of section 2 keeps the
# nearly-zero gradients from raising false alarms:

# %%
from tinyattn.rnn import rnn_step_backward, rnn_step_forward  # only now, after the exercise

x_t, h_prev = rng.standard_normal((B, D)), rng.standard_normal((B, H))
W_xh, W_hh, b_h = rng.standard_normal((D, H)), rng.standard_normal((H, H)), rng.standard_normal(H)
result = check_function(rnn_step_forward, rnn_step_backward, x_t, h_prev, W_xh, W_hh, b_h)
print(result)
saturated = check_function(rnn_step_forward, rnn_step_backward,
                           x_t, h_prev, 6 * W_xh, 6 * W_hh, b_h)
print(f"\nsaturated (weights × 6): max error {saturated.max_error:.1e}")
assert result.passed and saturated.passed

# %% [markdown]
# And the bug of section 6's first attempt in its usual form, written from the library's backward:
# everything right except that nothing reaches the previous step (`dh_prev = 0`). On one step only
# `dh_prev` fails; chained over 3 steps, every step but the last is wrong, and the checker names
# the bug:

# %%
def rnn_backward_dropped(dh, cache):
    grads = list(rnn_step_backward(dh, cache))
    grads[1] = np.zeros_like(grads[1])  # dh_prev: nothing reaches the previous step
    return tuple(grads)


dropped = tinyattn.exercises.check("rnn_step_backward", rnn_backward_dropped)
assert dropped.status == "failed" and dropped.errors["dx_t"] < TOL_STEP

# %% [markdown]
# **Next.** Lesson 01 runs this step over a sequence and writes backpropagation through time.
# `tinyattn.exercises.names()` lists the other exercises (BPTT and the output layer of lesson 01,
# GRU in both forms and LSTM of lesson 02, masked softmax, Bahdanau's and Luong's scores);
# `tinyattn.exercises.stub(name)` prints each starting point. Run `python -m tinyattn.gradcheck`
# to see every layer of the library pass the same check.
