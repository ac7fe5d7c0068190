"""Attention exercises: masked softmax, Bahdanau's additive score, Luong's
general score (docs/equations.md §4–§5), each graded against the library's
pure pair in `tinyattn.attention` and `tinyattn.functional`.
"""

from __future__ import annotations

import numpy as np

from tinyattn.attention import additive_score_forward, general_score_backward, general_score_forward
from tinyattn.exercises._diagnose import Bug
from tinyattn.exercises._registry import HK, A, B, Exercise, H, S, T
from tinyattn.functional import masked_softmax_forward

# Example 0 has all S=4 positions, example 1 only its first 2 (then pads).
MASK = np.arange(S)[None, None, :] < np.array([S, 2])[:, None, None]  # (B, 1, S)


def _pads_leak(learner, numerical, ctx):
    pads = np.broadcast_to(~ctx["mask"], learner["dscores"].shape)
    return ["dscores"] if np.abs(learner["dscores"][pads]).max(initial=0.0) > 1e-12 else []


def _softmax_variant(kind):
    def predict(dalpha, cache):
        alpha, axis = cache
        if kind == "no_alpha":
            return (dalpha - np.sum(alpha * dalpha, axis=axis, keepdims=True),)
        if kind == "diagonal":
            return (alpha * (1.0 - alpha) * dalpha,)
        if kind == "sum_no_alpha":
            return (alpha * (dalpha - np.sum(dalpha, axis=axis, keepdims=True)),)
        return (alpha * (dalpha - np.sum(alpha * dalpha, axis=kind, keepdims=True)),)
    return predict


MASKED_SOFTMAX = Exercise(
    "masked_softmax_backward",
    "dscores = masked_softmax_backward(dalpha, cache)",
    lambda scores: masked_softmax_forward(scores, MASK),
    {"scores": (B, T, S)},
    "docs/equations.md §4: α_ij = exp(e_ij) / Σ_k exp(e_ik) over real positions; pads get 0",
    [
        Bug("pads not masked",
            "a masked (padded) position's score does not change any weight (its α is "
            "exactly 0), so its gradient must be exactly 0; multiplying by α does that",
            test=_pads_leak),
        Bug("the factor α is missing",
            "dscores = α ⊙ (dα − Σ_k α_k dα_k): the leading α ⊙ is missing",
            _softmax_variant("no_alpha")),
        Bug("only the diagonal of the softmax Jacobian",
            "each α_j depends on every score: dscores_j = α_j (dα_j − Σ_k α_k dα_k), not "
            "α_j (1 − α_j) dα_j",
            _softmax_variant("diagonal")),
        Bug("α missing inside the sum",
            "the sum is Σ_k α_k dα_k, weighted by α",
            _softmax_variant("sum_no_alpha")),
    ] + [
        Bug("summed over the wrong axis",
            "the softmax normalises over the last axis (source positions S): sum with "
            "axis=-1 (the cache's axis), keepdims=True",
            _softmax_variant(axis))
        for axis in (1, 0)  # over the target steps T, or over the batch
    ],
    ctx={"mask": MASK},
)


def _additive_variant(kind):
    def predict(dscores, cache):
        feats, v_a = cache
        dfeats = dscores[..., None] * v_a  # (B, T, S, 1) * (A,) -> (B, T, S, A)
        if kind == "twice":
            dfeats = dfeats * (1.0 - np.tanh(feats) ** 2)
        elif kind != "none":
            dfeats = dfeats * (1.0 - feats * feats)
        dv_a = np.einsum("bts,btsa->a", dscores, feats)
        return dfeats.sum(axis=2), dfeats.sum(axis=1), dv_a
    return predict


ADDITIVE = Exercise(
    "bahdanau_score_backward",
    "dq_proj, dk_proj, dv_a = additive_score_backward(dscores, cache)",
    additive_score_forward,
    {"q_proj": (B, T, A), "k_proj": (B, S, A), "v_a": (A,)},
    "docs/equations.md §4 (Bahdanau et al. 2015): e_ij = v_a · tanh(W_a s_{i-1} + U_a h_j); "
    "here q_proj = s W_a and k_proj = h U_a are given",
    [
        Bug("tanh derivative taken of the output as if it were the input",
            "the cache holds feats = tanh(q + k); tanh' there is 1 − feats², not "
            "1 − tanh(feats)²",
            _additive_variant("twice")),
        Bug("tanh derivative left out",
            "multiply the gradient of feats by 1 − feats² before summing",
            _additive_variant("none")),
    ],
)


def _first_example_only(dscores, cache):
    queries, enc_hs, _, _ = cache
    dq, denc, _ = general_score_backward(dscores, cache)
    dkeys0 = dscores[0].T @ queries[0]  # (S, T) @ (T, Hq): example 0's dkeys
    return dq, denc, dkeys0.T @ enc_hs[0]  # (Hq, S) @ (S, Hk)


LUONG_GENERAL = Exercise(
    "luong_general_score_backward",
    "dqueries, denc_hs, dW_a = luong_general_score_backward(dscores, cache)",
    general_score_forward,
    {"queries": (B, T, H), "enc_hs": (B, S, HK), "W_a": (H, HK)},
    "docs/equations.md §5 (Luong et al. 2015): score(h_t, h̄_s) = h_t^T W_a h̄_s; in rows "
    "scores = queries @ (enc_hs @ W_a.T)^T",
    [
        Bug("dW_a from the first example only",
            "W_a is shared by every example: sum the products over the batch",
            _first_example_only),
    ],
)
