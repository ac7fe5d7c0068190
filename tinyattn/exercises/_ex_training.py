"""Lesson 10's exercises: the masked sequence cross-entropy and one Adam update.

`masked_cross_entropy` is graded by its outputs against
`tinyattn.losses.sequence_cross_entropy` (docs/equations.md §6) and its
gradient by the library's checker; `adam_step` against one step of
`tinyattn.training.optim.Adam` (§9.2). The buggy versions below are the
mistakes the checker names.
"""

from __future__ import annotations

import numpy as np

from tinyattn.exercises._diagnose import Bug
from tinyattn.exercises._outputs import OutputExercise
from tinyattn.gradcheck import TOL_STEP, check_function
from tinyattn.losses import sequence_cross_entropy
from tinyattn.training.optim import Adam

# ----- the masked sequence cross-entropy -------------------------------------------------

_B, _T, _V = 3, 5, 7  # pairwise distinct: N = 9 real tokens, B = 3, B·T = 15


def _batch(rng, lengths, shift=0.0):
    logits = 2.0 * rng.standard_normal((_B, _T, _V)) + shift
    mask = np.arange(_T)[None, :] < np.asarray(lengths)[:, None]
    targets = np.where(mask, rng.integers(1, _V, size=(_B, _T)), 0)  # 0: the pad id at pads
    return logits, targets, mask


def _ce_cases(rng):
    return [("a padded batch, lengths [5, 3, 1]", _batch(rng, [5, 3, 1])),
            ("large logits (800 + noise), lengths [5, 3, 1]", _batch(rng, [5, 3, 1], 800.0)),
            ("no padding, lengths [5, 5, 5]", _batch(rng, [5, 5, 5]))]


def _ce_solution(logits, targets, mask):
    return sequence_cross_entropy(logits, targets, mask)


def _ce_variant(*, divide="N", masked=True, grad_divide=None, shift=True):
    """A cross-entropy written with one mistake (the names say which)."""
    def predict(logits, targets, mask):
        B, T, _ = logits.shape
        m = mask if masked else np.ones_like(mask)
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            z = logits - logits.max(axis=-1, keepdims=True) if shift else logits
            e = np.exp(z)
            p = e / e.sum(axis=-1, keepdims=True)
            logp = np.log(np.take_along_axis(p, targets[..., None], axis=-1)[..., 0])
            counts = {"N": mask.sum(), "BT": B * T, "B": B}
            loss = -(logp * m).sum() / counts[divide]
            onehot = np.eye(logits.shape[-1])[targets]
            dlogits = (p - onehot) * m[..., None] / counts[grad_divide or divide]
        return float(loss), dlogits
    return predict


def _ce_gradcheck(fn, rng):
    logits, targets, mask = _batch(rng, [5, 3, 1])

    def forward(x):
        loss, dlogits = fn(x.copy(), targets.copy(), mask.copy())  # yours may write into x
        return np.array(float(loss)), np.asarray(dlogits)

    def backward(dloss, dlogits):
        return (dloss * dlogits,)

    return ["dlogits"], check_function(forward, backward, logits, tol=TOL_STEP,
                                       names=["logits"])


def masked_cross_entropy(logits, targets, mask):
    """Mean cross-entropy over the real tokens of a padded batch, and its gradient.

    logits (B, T, V) float; targets (B, T) int (pads hold any id); mask (B, T)
    bool, True at real target tokens. With N = mask.sum() and p = softmax(logits)
    over the last axis (subtract each row's maximum before exp):
        loss    = -(1/N) Σ_{b,t: mask} log p[b, t, targets[b, t]]        (a float)
        dlogits = (p - onehot(targets)) · mask / N                        (B, T, V)
    """
    raise NotImplementedError  # your code here


CROSS_ENTROPY = OutputExercise(
    "masked_cross_entropy",
    "loss, dlogits = masked_cross_entropy(logits, targets, mask)",
    _ce_solution,
    _ce_cases,
    ("loss", "dlogits"),
    "docs/equations.md §6: L = −(1/N) Σ_{mask} log softmax(logits)[y], "
    "dlogits = (softmax(logits) − onehot(y)) · mask / N, N = the number of real tokens",
    [
        Bug("mean over the padded length (B·T) instead of over the N real tokens",
            "the pads are masked out of the sum but still counted in the mean (d2l issue "
            "2076): divide by N = mask.sum(), so that the loss does not depend on how much "
            "padding the batch has",
            _ce_variant(divide="BT")),
        Bug("pads not masked",
            "every position is scored, pads included (their targets are the pad id): "
            "multiply each token's −log p and its gradient row by the mask and divide by N",
            _ce_variant(divide="BT", masked=False)),
        Bug("the gradient divided by the batch size B instead of N",
            "the loss is a mean over N real tokens, so each token's gradient row "
            "(p − onehot(y)) is divided by N, not by the number of sequences",
            _ce_variant(grad_divide="B")),
        Bug("softmax without subtracting the row maximum (overflow on large logits)",
            "exp(800) is inf in float64 and inf/inf is NaN: subtract each row's maximum "
            "before exp; softmax is unchanged by the shift",
            _ce_variant(shift=False)),
    ],
    starter=masked_cross_entropy,
    gradcheck=_ce_gradcheck,
)

# ----- one Adam update -------------------------------------------------------------------

_SHAPE = (4, 3)


def _adam_cases(rng):
    w, g = rng.standard_normal(_SHAPE), rng.standard_normal(_SHAPE)
    zeros = np.zeros(_SHAPE)
    first = ("the first update (t = 1, m = v = 0), gradients of size 1",
             (w, g, zeros, zeros.copy(), 1, 0.01, 0.9, 0.999, 1e-8))
    g_small = 1e-4 * rng.standard_normal(_SHAPE)
    m = 1e-4 * rng.standard_normal(_SHAPE) * 0.4
    v = 1e-8 * rng.random(_SHAPE) * 4e-3
    later = ("update t = 5 with gradients of size 1e-4 (m, v from earlier updates)",
             (rng.standard_normal(_SHAPE), g_small, m, v, 5, 0.003, 0.9, 0.999, 1e-8))
    return [first, later]


def _adam_solution(w, g, m, v, t, lr, beta1, beta2, eps):
    w = w.copy()
    opt = Adam([("w", w, g.copy())], lr=lr, betas=(beta1, beta2), eps=eps)
    opt.state["m"]["w"][...] = m
    opt.state["v"]["w"][...] = v
    opt.t = t - 1  # step() counts this update
    opt.step()
    return w, opt.state["m"]["w"].copy(), opt.state["v"]["w"].copy()


def _adam_variant(*, correct=True, t_shift=0, eps_inside=False, swap_betas=False, sign=1.0):
    """An Adam update written with one mistake (the names say which)."""
    def predict(w, g, m, v, t, lr, beta1, beta2, eps):
        b1, b2 = (beta2, beta1) if swap_betas else (beta1, beta2)
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        with np.errstate(divide="ignore", invalid="ignore"):
            tc = t - t_shift
            m_hat = m / (1 - beta1**tc) if correct else m
            v_hat = v / (1 - beta2**tc) if correct else v
            denom = np.sqrt(v_hat + eps) if eps_inside else np.sqrt(v_hat) + eps
            return w - sign * lr * m_hat / denom, m, v
    return predict


def adam_step(w, g, m, v, t, lr, beta1, beta2, eps):
    """One Adam update (Kingma & Ba 2015, Algorithm 1) of one parameter array.

    w, g, m, v: arrays of one shape (weights, gradient, first and second moments
    before this update); t: this update's number, 1 for the first. Returns the
    new (w, m, v), as new arrays:
        m = β1 m + (1 − β1) g;   v = β2 v + (1 − β2) g²
        m̂ = m / (1 − β1^t);     v̂ = v / (1 − β2^t)
        w = w − lr · m̂ / (√v̂ + eps)
    """
    raise NotImplementedError  # your code here


ADAM = OutputExercise(
    "adam_step",
    "w, m, v = adam_step(w, g, m, v, t, lr, beta1, beta2, eps)",
    _adam_solution,
    _adam_cases,
    ("w", "m", "v"),
    "docs/equations.md §9.2 (Kingma & Ba 2015, Algorithm 1): m = β1 m + (1 − β1) g, "
    "v = β2 v + (1 − β2) g², w −= lr · m̂ / (√v̂ + ε), m̂ = m/(1 − β1^t), v̂ = v/(1 − β2^t)",
    [
        Bug("bias correction missing",
            "m and v start at 0, so early on they are too small by the factors 1 − β1^t "
            "and 1 − β2^t: divide by them (m̂, v̂) before the update",
            _adam_variant(correct=False)),
        Bug("t counted from 0 in the bias correction",
            "t is 1 at the first update (1 − β^0 = 0 divides by zero): use β1^t and β2^t "
            "with t = 1, 2, ...",
            _adam_variant(t_shift=1)),
        Bug("eps inside the square root",
            "Adam adds ε to √v̂, not to v̂: w −= lr · m̂ / (√v̂ + ε). The two differ where "
            "gradients are small (v̂ near ε)",
            _adam_variant(eps_inside=True)),
        Bug("β1 and β2 swapped in the moment updates",
            "the first moment m averages g with β1 (0.9), the second v averages g² with "
            "β2 (0.999)",
            _adam_variant(swap_betas=True)),
        Bug("the update has the wrong sign",
            "Adam descends: w = w − lr · m̂ / (√v̂ + ε)",
            _adam_variant(sign=-1.0)),
    ],
    starter=adam_step,
)

EXERCISES = [CROSS_ENTROPY, ADAM]
