# Source of lessons/00_gradient_checking.ipynb (learner) and
# lessons/solutions/00_gradient_checking.ipynb (instructor): edit here, then run
# `.venv/bin/python lessons/build.py 00` (see lessons/build.py).

# %% [markdown]
# # Lesson 00 — Gradient checking
#
# **Goal.** Every layer in tinyattn has a backward pass written by hand. Before we trust one, we
# compare it with a gradient computed a second, independent way: by nudging each input a little and
# watching the output move. By the end of this lesson you will know how that comparison works, what
# numbers to expect, why it needs float64, and you will have written your first backward pass,
# `rnn_step_backward`, and had it checked.
#
# Sources: the RNN equation is `docs/equations.md` §1 (document 003, "RNN/LSTM"); the checker is the
# library's `tinyattn/gradcheck.py`, the one the tests, lessons and exercises all use
# (`docs/design.md` §7).

# %%
import matplotlib.pyplot as plt
import numpy as np

import tinyattn.exercises
from tinyattn.gradcheck import STEP, TOL_STEP, check_function
from tinyattn.lstm import LSTM, lstm_step_backward, lstm_step_forward
from tinyattn.rnn import rnn_step_backward, rnn_step_forward

B, D, H = 2, 5, 6  # small and all different: a transposed matrix cannot hide
rng = np.random.default_rng(0)
x_t, h_prev = rng.standard_normal((B, D)), rng.standard_normal((B, H))
W_xh, W_hh, b_h = rng.standard_normal((D, H)), rng.standard_normal((H, H)), rng.standard_normal(H)

h, cache = rnn_step_forward(x_t, h_prev, W_xh, W_hh, b_h)  # h = tanh(x_t W_xh + h_prev W_hh + b_h)
assert h.shape == (B, H)
dh = rng.standard_normal((B, H))  # an upstream gradient dL/dh
dx_t, dh_prev, dW_xh, dW_hh, db_h = rnn_step_backward(dh, cache)
assert (dx_t.shape, dh_prev.shape, dW_xh.shape, dW_hh.shape, db_h.shape) == (
    (B, D), (B, H), (D, H), (H, H), (H,))  # one gradient per forward argument, same shape
print("h:", h.shape, " dW_hh:", dW_hh.shape)

# %% [markdown]
# ## 1. Centered differences
#
# A step function returns an array, not a number. We make it a number with a random upstream
# gradient `dout` of the output's shape:
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
# (here $h$ is the step size, `step` in the code, not the hidden state) is off by
# $\frac{h^2}{6} L'''$: Taylor's even terms cancel, so the error falls with $h^2$
# (the one-sided $\frac{L(\theta + h e_k) - L(\theta)}{h}$ is off by $\frac{h}{2} L''$, far worse).
# Here it is, written out for `W_hh`, and compared with the library's `rnn_step_backward`:

# %%
def loss(W):
    out, _ = rnn_step_forward(x_t, h_prev, W_xh, W, b_h)
    return np.sum(out * dh)


step = 1e-5
num_dW_hh = np.zeros_like(W_hh)
for k in np.ndindex(W_hh.shape):
    W_plus, W_minus = W_hh.copy(), W_hh.copy()
    W_plus[k] += step
    W_minus[k] -= step
    num_dW_hh[k] = (loss(W_plus) - loss(W_minus)) / (2 * step)

print("largest |analytic - numerical|:", np.abs(dW_hh - num_dW_hh).max())
assert np.allclose(num_dW_hh, dW_hh, rtol=1e-6, atol=1e-9)

# %% [markdown]
# ## 2. Relative error, with an absolute floor
#
# How far apart may the two be? An absolute threshold does not work: gradients range over many
# orders of magnitude. So we compare **relatively**, per entry,
# $|a - n| / \max(|a|, |n|)$. But a purely relative error fails where the true gradient is almost
# zero: a saturated tanh ($h \approx \pm 1$) has gradients of $10^{-16}$, and there the analytic
# value is round-off while the numerical one is 0, a "relative error" of 100 %. The library adds a
# **floor**:
#
# $$\text{err} = \frac{|a - n|}{\max(|a|,\ |n|,\ \text{floor})}, \qquad
# \text{floor} = \frac{\text{noise}}{\text{tol}},$$
#
# where *noise* is how far a centered difference can be off by itself (round-off plus truncation,
# `gradcheck.noise_level`). Below the floor the comparison becomes absolute. Let us saturate the RNN
# on purpose (weights × 6) and look at both measures:

# %%
sat_args = [x_t, h_prev, 6 * W_xh, 6 * W_hh, b_h]
print("share of |h| > 0.999:", np.mean(np.abs(rnn_step_forward(*sat_args)[0]) > 0.999))
sat = check_function(rnn_step_forward, rnn_step_backward, *sat_args)
for rep in sat.reports:
    a, n = rep.analytic, rep.numerical
    pure = np.abs(a - n) / np.maximum(np.maximum(np.abs(a), np.abs(n)), 1e-300)
    print(f"{rep.name:7} pure relative {pure.max():.1e}   with floor {rep.error:.1e}")
assert sat.passed  # the same, correct backward: no false alarm

# %% [markdown]
# ## 3. Why float64: error against the step size $h$
#
# Two errors compete. Truncation shrinks like $h^2$; round-off grows like $\varepsilon |L| / h$,
# because $L(\theta + h) - L(\theta - h)$ subtracts two nearly equal numbers, each rounded to
# relative precision $\varepsilon$. The best $h$ balances them, near $\varepsilon^{1/3}$, with an
# error near $\varepsilon^{2/3}$:
#
# | dtype | $\varepsilon$ | best $h$ | best relative error |
# |---|---|---|---|
# | float64 | $2.2 \times 10^{-16}$ | $\approx 6 \times 10^{-6}$ | $\approx 4 \times 10^{-11}$ |
# | float32 | $1.2 \times 10^{-7}$ | $\approx 5 \times 10^{-3}$ | $\approx 2 \times 10^{-5}$ |
#
# In float32 no step size reaches the step-function tolerance `TOL_STEP` = 1e-7: a correct backward
# would fail. That is why the checker works in float64 only (`STEP` = 1e-5). Measured:

# %%
def numerical_dW_hh(dtype, step):
    """Centered differences for W_hh with every array and operation in ``dtype``."""
    xs, hp, Wx, Wh, b = (a.astype(dtype) for a in (x_t, h_prev, W_xh, W_hh, b_h))
    up = dh.astype(dtype)
    grad = np.zeros(Wh.shape)
    for k in np.ndindex(Wh.shape):
        old = Wh[k]
        Wh[k] = old + dtype(step)
        plus = np.sum(rnn_step_forward(xs, hp, Wx, Wh, b)[0] * up, dtype=dtype)
        Wh[k] = old - dtype(step)
        minus = np.sum(rnn_step_forward(xs, hp, Wx, Wh, b)[0] * up, dtype=dtype)
        Wh[k] = old
        grad[k] = (float(plus) - float(minus)) / (2 * float(step))
    return grad


steps = np.logspace(-10, -0.5, 39)
scale = np.abs(dW_hh).max()
errors = {dt.__name__: [np.abs(numerical_dW_hh(dt, s) - dW_hh).max() / scale for s in steps]
          for dt in (np.float64, np.float32)}
for name, errs in errors.items():
    best = int(np.argmin(errs))
    print(f"{name}: best error {errs[best]:.1e} at h = {steps[best]:.0e}")

fig, ax = plt.subplots(figsize=(6, 3.8))
for name, errs in errors.items():
    ax.loglog(steps, errs, "o-", ms=3, label=name)
ax.axhline(TOL_STEP, color="gray", ls="--", lw=1)
ax.text(1.5e-7, TOL_STEP * 1.6, "TOL_STEP = 1e-7", color="gray", fontsize=8)
ax.axvline(STEP, color="gray", ls=":", lw=1)
ax.text(STEP / 1.3, 1e-4, "STEP = 1e-5", color="gray", fontsize=8, ha="right")
ax.set_xlabel("step size h")
ax.set_ylabel("max |numerical − analytic| / max |analytic|")
ax.set_title("Centered differences for dW_hh of one RNN step")
ax.legend()
fig.tight_layout()
plt.show()

# %% [markdown]
# The float64 curve falls with slope 2 (truncation, $h^2$) until round-off takes over and it rises
# with slope −1; its bottom is near $h = 10^{-5}$, far below the tolerance. The float32 curve
# bottoms out near $10^{-5}$, a hundred times above it, and only at a step as large as
# $h \approx 5 \times 10^{-3}$. So the checker refuses float32 outright:

# %%
try:
    check_function(rnn_step_forward, rnn_step_backward,
                   *(a.astype(np.float32) for a in (x_t, h_prev, W_xh, W_hh, b_h)))
except TypeError as err:
    print("TypeError:", err)

# %% [markdown]
# ## 4. The library's checker
#
# `check_function(forward, backward, *args)` does all of the above for every entry of every
# argument: a random `dout` (seeded), centered differences with `STEP`, the floored relative error,
# one line per array. For a correct step function expect a max error around **1e-9 to 1e-8**,
# well under the tolerance **1e-7** (`TOL_STEP`; a sequence layer gets `TOL_LAYER` = 1e-6, a whole
# model `TOL_MODEL` = 1e-5, since errors add up over steps).

# %%
result = check_function(rnn_step_forward, rnn_step_backward, x_t, h_prev, W_xh, W_hh, b_h)
print(result)
assert result.passed and 1e-11 < result.max_error < TOL_STEP

# %% [markdown]
# ## 5. The checker must be able to fail
#
# A check that never fails proves nothing. Here is an LSTM step backward with a classic bug: the
# gradient columns of the input and forget gates swapped (gates are stacked i, f, g, o, as in
# `docs/equations.md` §1 and PyTorch). With `gates=` the report says *which gate* is wrong:

# %%
def lstm_backward_swapped_gates(dh, dc, cache):
    dx, dhp, dcp, dWx, dWh, db = lstm_step_backward(dh, dc, cache)
    cols = np.r_[H:2 * H, 0:H, 2 * H:4 * H]  # gate f's columns where i's belong, and back
    return dx, dhp, dcp, dWx[:, cols], dWh[:, cols], db[cols]


lstm_args = [rng.standard_normal(s) for s in [(B, D), (B, H), (B, H), (D, 4 * H), (H, 4 * H),
                                             (4 * H,)]]
gates = {"W_x": LSTM.GATES, "W_h": LSTM.GATES, "b": LSTM.GATES}
bad = check_function(lstm_step_forward, lstm_backward_swapped_gates, *lstm_args, gates=gates)
print(bad)
assert not bad.passed and bad.failed == ["W_x", "W_h", "b"]

# %% [markdown]
# Over time, a recurrent backward is called once per step, in reverse, each step handing
# `dh_prev` to the step before. `tinyattn.exercises.check` runs your step backward on one step,
# then chained over 3 steps, and reports the input gradient **per time step**. A backward that
# forgets to hand anything back (`dh_prev = 0`, the "dropped dh_next" bug) is right at the last
# step and wrong at every earlier one, and the checker says so:

# %%
def rnn_backward_dropped(dh, cache):
    grads = list(rnn_step_backward(dh, cache))
    grads[1] = np.zeros_like(grads[1])  # dh_prev: nothing reaches the previous step
    return tuple(grads)


dropped = tinyattn.exercises.check("rnn_step_backward", rnn_backward_dropped)
assert dropped.status == "failed"

# %% [markdown]
# ## 6. Your turn: `rnn_step_backward`
#
# The forward (`docs/equations.md` §1, row-vector form, as in `tinyattn/rnn.py`):
#
# $$a = x_t W_{xh} + h_{t-1} W_{hh} + b_h, \qquad h = \tanh(a)$$
#
# Write its backward. Your function gets the upstream gradient `dh (B, H)` and the cache the
# library's `rnn_step_forward` built, `(x_t, h_prev, W_xh, W_hh, h)`, and returns
# `dx_t, dh_prev, dW_xh, dW_hh, db_h`, each of the shape of its array. Hints:
#
# - the cache holds the *output* `h`, not `a`: write $\tanh'(a)$ in terms of $h$;
# - for $y = u W$: $\partial L / \partial u = (\partial L / \partial y)\, W^\top$ and
#   $\partial L / \partial W = u^\top (\partial L / \partial y)$; let the shapes guide you;
# - the bias is added to every example of the batch.
#
# Replace the `raise` line with your code, then run the next cell.
# (`tinyattn.exercises.stub("rnn_step_backward")` prints the same starting point.)

# %%
def my_rnn_step_backward(dh, cache):
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

# %% [markdown]
# When it fails, read the table (which gradient, which time step) and the "likely:" lines: the
# checker recognises classic mistakes from the numbers, such as the derivative taken at the wrong
# point, a weight not transposed, or a missing path. It never compares with a hidden solution, only
# with centered differences, exactly as in this lesson.
#
# **Next.** `tinyattn.exercises.names()` lists the other exercises (GRU in both forms, LSTM, masked
# softmax, Bahdanau's and Luong's scores); `tinyattn.exercises.stub(name)` prints each starting
# point. Run `python -m tinyattn.gradcheck` to see every layer of the library pass the same check.
