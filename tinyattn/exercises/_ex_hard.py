"""Lesson 08's exercise: the REINFORCE gradient of one step of hard attention.

The learner turns one decoder step's scores, the sampled positions and the
rewards into ∂L_s/∂scores (baseline and entropy bonus included). Graded by
its outputs against `tinyattn.hard_attention.reinforce_score_grad` and by the
gradient checker on the surrogate loss (Xu et al. 2015, §4.1).
"""

from __future__ import annotations

import numpy as np

from tinyattn.exercises._diagnose import Bug
from tinyattn.exercises._outputs import OutputExercise, as_outputs
from tinyattn.functional import masked_softmax_forward, softmax
from tinyattn.gradcheck import TOL_STEP, check_function
from tinyattn.hard_attention import reinforce_score_grad as _library_grad
from tinyattn.hard_attention import reinforce_surrogate_forward

_MASK = np.array([[True, True, True, True, True],
                  [True, True, True, False, False],
                  [True, True, False, False, False]])


def _solution(scores, mask, positions, reward, baseline, entropy_weight):
    alpha, _ = masked_softmax_forward(scores, mask)
    return _library_grad(alpha, positions, mask, reward - baseline, entropy_weight)


def _cases(rng):
    S = _MASK.shape[1]
    padded = (rng.standard_normal(_MASK.shape), _MASK, np.array([3, 2, 0]),
              np.array([-4.0, -9.0, -6.5]), -5.0, 0.3)
    full = np.ones((2, S), bool)
    dense = (rng.standard_normal((2, S)), full, np.array([1, 4]), np.array([-2.0, -7.0]),
             -3.0, 0.5)
    return [("a padded batch, lengths [5, 3, 2], baseline −5, λ_e = 0.3", padded),
            ("no padding, baseline −3, λ_e = 0.5", dense)]


def _parts(scores, mask, positions, reward, baseline, use_mask=True):
    """α, onehot(j), log α (0 at pads), H per row."""
    if use_mask:
        alpha, _ = masked_softmax_forward(scores, mask)
    else:
        alpha = softmax(scores, axis=1)
    onehot = np.zeros_like(alpha)
    onehot[np.arange(len(alpha)), positions] = 1.0
    log_a = np.log(np.where(alpha > 0, alpha, 1.0))
    H = -(alpha * log_a).sum(axis=1, keepdims=True)
    return alpha, onehot, log_a, H


def _bug(kind):
    def predict(scores, mask, positions, reward, baseline, entropy_weight):
        alpha, onehot, log_a, H = _parts(scores, mask, positions, reward, baseline,
                                         use_mask=kind != "pads")
        adv = (reward if kind == "baseline" else reward - baseline)[:, None]
        policy = -adv * (onehot - alpha)
        entropy = entropy_weight * alpha * (log_a + H)
        if kind == "alpha-onehot":
            policy = -policy
        if kind == "entropy-sign":
            entropy = -entropy
        d = policy + entropy
        if kind == "sign":
            d = -d
        return d if kind == "pads" else np.where(mask, d, 0.0)
    return predict


def _gradcheck(fn, rng):
    scores = rng.standard_normal(_MASK.shape)
    positions, reward, baseline, lam = np.array([1, 2, 1]), np.array([-3.0, -8.0, -5.0]), -4.0, 0.2

    def forward(scores):
        loss, _ = reinforce_surrogate_forward(scores, _MASK, positions, reward - baseline, lam)
        return loss, scores

    def backward(dloss, scores):
        (dscores,) = as_outputs(fn(scores.copy(), _MASK.copy(), positions.copy(),
                                    reward.copy(), baseline, lam), 1)
        return (float(dloss) * np.asarray(dscores),)

    return ["dscores"], check_function(forward, backward, scores, tol=TOL_STEP)


def reinforce_score_grad(scores, mask, positions, reward, baseline, entropy_weight):
    """∂L_s/∂scores for one step of hard attention (Xu et al. 2015, §4.1).

    scores (B, S) e_ij; mask (B, S) bool, True at real source positions;
    positions (B,) the sampled j (real positions); reward (B,) R, the
    log-likelihood of each target; baseline b (a float); entropy_weight λ_e.
    α = masked softmax of the scores (0 at pads), H(α) = −Σ_j α_j log α_j.
    The surrogate loss (minimised) and its gradient::

        L_s = −Σ_b (R_b − b) log α_{b j_b} − λ_e Σ_b H(α_b)
        ∂L_s/∂e_b = −(R_b − b) (onehot(j_b) − α_b) + λ_e α_b ⊙ (log α_b + H(α_b))

    Returns dscores (B, S), exactly 0 at pads.
    """
    raise NotImplementedError  # your code here


HARD = OutputExercise(
    "reinforce_score_grad",
    "dscores = reinforce_score_grad(scores, mask, positions, reward, baseline, entropy_weight)",
    _solution,
    _cases,
    ("dscores",),
    "Xu et al. 2015 §4.1; tinyattn/hard_attention.py: ∂L_s/∂e = −(R − b)(onehot(j) − α) "
    "+ λ_e α ⊙ (log α + H), 0 at pads",
    [
        Bug("the baseline is not subtracted",
            "the weight of the score-function term is the advantage R − b, not the reward R: "
            "without b the estimate is still unbiased but every step pushes on α by the size "
            "of the whole log-likelihood, and its variance grows with it",
            _bug("baseline")),
        Bug("the whole gradient has the wrong sign",
            "this is the gradient of the surrogate *loss* L_s (minimised): −(R − b)(onehot − α), "
            "the negative of the ascent direction of the expected reward",
            _bug("sign")),
        Bug("α − onehot instead of onehot − α",
            "∂ log α_j / ∂e = onehot(j) − α: the sampled position's score goes up by 1 − α_j, "
            "the others down by α_k; α − onehot flips the REINFORCE term only",
            _bug("alpha-onehot")),
        Bug("the entropy gradient has the wrong sign",
            "the bonus is −λ_e H in the loss, and ∂H/∂e_k = −α_k (log α_k + H), so the loss "
            "gradient is +λ_e α ⊙ (log α + H): it flattens α, never sharpens it",
            _bug("entropy-sign")),
        Bug("pads receive gradient (a softmax without the mask)",
            "α must be the *masked* softmax (exactly 0 at pads), and dscores 0 there: a pad is "
            "never sampled and never read",
            _bug("pads")),
    ],
    starter=reinforce_score_grad,
    gradcheck=_gradcheck,
)

EXERCISES = [HARD]
