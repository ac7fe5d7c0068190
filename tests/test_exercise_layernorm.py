"""Lesson 15's exercise: `layer_norm_backward`.

A right answer passes, the starter reports "not implemented", and every
named mistake, written here as a learner would write it (row by row, in
two styles: the compact formula of docs/equations.md §7.3, and the
chain rule through the variance and the mean that many tutorials use),
independently of the package's own predictions, gets exactly its own
diagnosis.
"""

from functools import partial

import numpy as np
import pytest

import tinyattn.exercises as ex
from tinyattn.exercises import _ex_transformer as mod
from tinyattn.gradcheck import TOL_STEP, check_function
from tinyattn.layernorm import LayerNorm

NAME = "layer_norm_backward"


def compact_learner(dy, cache, mistake=None):
    """dx = (g − mean(g) − x̂ mean(g x̂)) / √(σ² + ε), one row at a time."""
    x, gamma, beta, eps = cache
    B, T, d = x.shape
    dx = np.zeros_like(x)
    dgamma, dbeta = np.zeros(d), np.zeros(d)
    for b in range(B):
        if mistake == "last_row":  # assigned, not added: only the last example survives
            dgamma, dbeta = np.zeros(d), np.zeros(d)
        for t in range(T):
            row = x[b, t]
            mu = row.mean()
            if mistake == "unbiased":
                std = np.sqrt(np.var(row, ddof=1) + eps)  # torch.var's default
            elif mistake == "eps_outside":
                std = row.std() + eps
            elif mistake == "no_eps":
                std = row.std()
            else:
                std = np.sqrt(row.var() + eps)
            xhat = (row - mu) / std
            g = dy[b, t] if mistake == "gain_outside" else gamma * dy[b, t]
            terms = [g]
            if mistake != "no_shift":
                terms.append(-g.mean() * np.ones(d))
            if mistake != "no_scale":
                terms.append(-xhat * (g * xhat).mean())
            dx[b, t] = sum(terms) / std
            if mistake == "gain_outside":
                dx[b, t] *= gamma
            dgamma += dy[b, t] * xhat
            dbeta += dy[b, t]
    return dx, dgamma, dbeta


def chain_rule_learner(dy, cache, mistake=None):
    """Through σ² (or σ) and μ, as in many tutorials, on (B·T, d) rows."""
    x, gamma, beta, eps = cache
    d = x.shape[-1]
    x2, dy2 = x.reshape(-1, d), dy.reshape(-1, d)
    mu = x2.mean(axis=1, keepdims=True)
    xc = x2 - mu
    n = d - 1 if mistake == "unbiased" else d
    var = (xc ** 2).sum(axis=1, keepdims=True) / n
    dxhat = dy2 * gamma
    if mistake == "eps_outside":  # x̂ = xc / (σ + ε), differentiated through σ
        std = np.sqrt(var)
        xhat = xc / (std + eps)
        dstd = np.sum(dxhat * xc, axis=1, keepdims=True) * -1 / (std + eps) ** 2
        dvar = dstd / (2 * std)
        inv = 1 / (std + eps)
    else:
        inv = 1 / np.sqrt(var + eps)
        xhat = xc * inv
        dvar = np.sum(dxhat * xc, axis=1, keepdims=True) * -0.5 * inv ** 3
    dmu = -np.sum(dxhat * inv, axis=1, keepdims=True) + dvar * np.mean(-2 * xc, axis=1,
                                                                       keepdims=True)
    dx = dxhat * inv + dvar * 2 * xc / n + dmu / d
    dgamma = (dy2 * xhat).sum(axis=0)
    dbeta = dy2.sum(axis=0)
    if mistake == "axis0":  # summed over the first axis of (B, T, d) only
        dgamma, dbeta = (dy * xhat.reshape(x.shape)).sum(axis=0), dy.sum(axis=0)
    elif mistake == "features":  # summed over the batch and the features, not the positions
        dgamma = (dy * xhat.reshape(x.shape)).sum(axis=(0, 2))
    return dx.reshape(x.shape), dgamma, dbeta


def test_both_learners_pass_and_the_starter_is_not_implemented():
    assert ex.check(NAME, compact_learner, verbose=False).passed
    assert ex.check(NAME, chain_rule_learner, verbose=False).passed
    assert ex.check(NAME, mod._ln_backward, verbose=False).passed
    r = ex.check(NAME, mod.layer_norm_backward, verbose=False)
    assert r.status == "not implemented"


@pytest.mark.parametrize("learner, mistake, label, wrong", [
    (compact_learner, "gain_outside", "the gain γ applied outside the means", "dx"),
    (compact_learner, "unbiased", "the unbiased variance (d − 1) in x̂", "dx, dgamma"),
    (chain_rule_learner, "unbiased", "the derivative of a layer norm with the unbiased",
     "dx, dgamma"),
    (compact_learner, "eps_outside", "ε outside the square root", "dx, dgamma"),
    (chain_rule_learner, "eps_outside", "the derivative of a layer norm with ε outside",
     "dx, dgamma"),
    (compact_learner, "no_eps", "ε left out", "dx, dgamma"),
    (compact_learner, "no_shift", "the shift term − mean(g) missing", "dx"),
    (compact_learner, "no_scale", "the scale term − x̂ ⊙ mean(g ⊙ x̂) missing", "dx"),
    (compact_learner, "last_row", "dgamma and dbeta from the last example only",
     "dgamma, dbeta"),
])
def test_mistakes_are_named(learner, mistake, label, wrong):
    r = ex.check(NAME, partial(learner, mistake=mistake), verbose=False)
    assert r.status == "failed"
    assert len(r.diagnoses) == 1 and r.diagnoses[0].startswith(label), r.text
    assert f"FAILED: wrong {wrong} (" in r.text, r.text


@pytest.mark.parametrize("mistake, text", [
    ("axis0", "dgamma has the wrong shape: expected (6,) (the shape of gamma), got (4, 6); "
              "an axis that was broadcast in the forward must be summed over here"),
    ("features", "dgamma has the wrong shape: expected (6,) (the shape of gamma), got (4,); "
                 "summed over the wrong axis"),
])
def test_sums_over_the_wrong_axes_are_shape_errors(mistake, text):
    r = ex.check(NAME, partial(chain_rule_learner, mistake=mistake), verbose=False)
    assert r.status == "shape" and text in r.text, r.text


def _grading_case(gamma=None, seed=0):
    rng = np.random.default_rng(seed)
    x, g, beta = (rng.standard_normal(s) for s in mod.LAYER_NORM_BACKWARD.shapes.values())
    return x, (g if gamma is None else gamma), beta


def test_a_gain_outside_the_means_passes_at_unit_gain_and_fails_with_a_random_one():
    """Why the grading gain is random: at γ = 1 the mistake is exact."""
    x, gamma, beta = _grading_case()
    bad = partial(compact_learner, mistake="gain_outside")
    for g, passes in ((np.ones_like(gamma), True), (np.full_like(gamma, 0.7), True),
                      (gamma, False)):
        result = check_function(mod.layer_norm_forward, bad, x, g, beta, tol=TOL_STEP)
        assert result.passed == passes, result
        if not passes:
            assert result.failed == ["x"]
    dy = np.random.default_rng(1).standard_normal(x.shape)
    cache = (x, gamma, beta, mod.LN_EPS)
    right, wrong = compact_learner(dy, cache)[0], bad(dy, cache)[0]
    assert np.linalg.norm(wrong - right) / np.linalg.norm(right) > 0.1  # "tens of percent"


def test_the_forward_and_backward_are_the_library_layer():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 5, 6))
    ln = LayerNorm(6, eps=mod.LN_EPS)
    ln.params["gamma"][...] = rng.standard_normal(6)
    ln.params["beta"][...] = rng.standard_normal(6)
    y, cache = mod.layer_norm_forward(x, ln.params["gamma"], ln.params["beta"])
    assert np.allclose(y, ln(x)) and cache[3] == mod.LN_EPS
    dy = rng.standard_normal(x.shape)
    dx = ln.backward(dy)
    mine = mod._ln_backward(dy, cache)
    lib = (dx, ln.grads["gamma"], ln.grads["beta"])
    for a, b in zip(mine, lib, strict=True):
        assert np.allclose(a, b)


def test_the_grading_eps_makes_its_place_visible():
    """A right backward passes at any ε; ε outside the root shows at 0.1, hardly at 1e-5."""
    x, gamma, beta = _grading_case()
    forward = partial(mod.layer_norm_forward, eps=1e-5)
    assert check_function(forward, compact_learner, x, gamma, beta, tol=TOL_STEP).passed
    dy = np.random.default_rng(2).standard_normal(x.shape)
    for eps, low, high in ((1e-5, 0, 1e-4), (mod.LN_EPS, 1e-2, 1)):
        cache = (x, gamma, beta, eps)
        right, wrong = compact_learner(dy, cache)[0], compact_learner(dy, cache, "eps_outside")[0]
        change = np.abs(wrong - right).max() / np.abs(right).max()
        assert low < change < high, (eps, change)
