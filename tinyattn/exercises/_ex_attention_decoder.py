"""Lesson 05's exercises: one full step of Bahdanau's attention decoder.

Two exercises on the same step (docs/equations.md §4, `BahdanauDecoder`):

- ``bahdanau_decoder_step`` (graded by outputs): attend with s_{i-1},
  step the GRU on [E y_{i-1} ; c_i], read the output layer from
  [s_i ; c_i ; E y_{i-1}]; compared with the library's decoder itself;
- ``bahdanau_decoder_step_backward`` (graded by the gradient checker): the
  backward of that step, composed from the library's step functions, every
  input and parameter.
"""

from __future__ import annotations

from functools import partial

import numpy as np

from tinyattn.attention import (
    BahdanauAttention,
    additive_score_backward,
    additive_score_forward,
)
from tinyattn.decoders import BahdanauDecoder
from tinyattn.exercises._diagnose import Bug
from tinyattn.exercises._outputs import OutputExercise
from tinyattn.exercises._registry import Exercise
from tinyattn.functional import masked_softmax_backward, masked_softmax_forward, softmax
from tinyattn.gru import GRU, gru_step_backward, gru_step_forward
from tinyattn.layers import Linear

# pairwise distinct sizes, so that a transposed product or a swapped half cannot hide
_B, _S, _E, _HD, _A, _HK, _V = 2, 4, 5, 6, 7, 8, 9
# example 0 has all S = 4 positions, example 1 only its first 2 (then pads)
MASK = np.arange(_S)[None, :] < np.array([_S, 2])[:, None]  # (B, S)
PARAMS = ("W_a", "U_a", "v_a", "W_x", "W_h", "b_x", "b_h", "W_o", "b_o")


# ----- the forward, graded by its outputs ----------------------------------
def _library_decoder(p):
    """The library's `BahdanauDecoder` holding the weights ``p``."""
    (Hd, A), (E_Hk, _), (F, V) = p["W_a"].shape, p["W_x"].shape, p["W_o"].shape
    Hk = p["U_a"].shape[0]
    rng = np.random.default_rng(0)  # any: every weight is overwritten below
    attn = BahdanauAttention(Hd, Hk, A, rng=rng)
    cell = GRU(E_Hk, Hd, rng=rng)
    out = Linear(F, V, rng=rng)
    for module, names in ((attn, ("W_a", "U_a", "v_a")), (cell, ("W_x", "W_h", "b_x", "b_h")),
                          (out, ("W_o", "b_o"))):
        for name in names:
            module.params[name if module is not out else name[0]][...] = p[name]
    return BahdanauDecoder(cell, attn, out, E_Hk - Hk)


def _solution(y_emb, s_prev, enc_hs, src_mask, p):
    dec = _library_decoder(p)
    memory = dec.prepare(enc_hs, src_mask, None)
    context, _, _ = dec.attn.step(s_prev, memory)
    logits, s, alpha = dec.step(y_emb, memory, s_prev, 0)
    return context, alpha, s, logits


def _cases(rng):
    attn = BahdanauAttention(_HD, _HK, _A, rng=rng)
    cell = GRU(_E + _HK, _HD, rng=rng)
    out = Linear(_HD + _HK + _E, _V, rng=rng)
    p = {**attn.params, **cell.params, "W_o": out.params["W"], "b_o": out.params["b"]}
    p = {k: p[k].copy() for k in PARAMS}
    enc_hs = rng.standard_normal((_B, _S, _HK))
    enc_hs[~MASK] = 0.0  # a tinyattn encoder outputs exactly 0 at pads
    full = np.ones((_B, _S), dtype=bool)
    return [(f"a padded batch, lengths {MASK.sum(1).tolist()}",
             (rng.standard_normal((_B, _E)), rng.standard_normal((_B, _HD)), enc_hs, MASK, p)),
            ("no padding", (rng.standard_normal((_B, _E)), rng.standard_normal((_B, _HD)),
                            rng.standard_normal((_B, _S, _HK)), full, p))]


def _attend(query, enc_hs, mask, p, masked=True):
    """Bahdanau's context and weights for a query (B, Hd)."""
    e = np.tanh((query @ p["W_a"])[:, None, :] + enc_hs @ p["U_a"]) @ p["v_a"]  # (B, S)
    alpha = masked_softmax_forward(e, mask)[0] if masked else softmax(e, axis=1)
    return np.einsum("bs,bsk->bk", alpha, enc_hs), alpha


def _variant(kind):
    def predict(y_emb, s_prev, enc_hs, src_mask, p):
        ctx, alpha = _attend(s_prev, enc_hs, src_mask, p, masked=kind != "unmasked")
        x = [ctx, y_emb] if kind == "swapped" else [y_emb, ctx]
        s, _ = gru_step_forward(np.concatenate(x, axis=1), s_prev,
                                p["W_x"], p["W_h"], p["b_x"], p["b_h"])
        if kind == "luong":  # attend again, with the new state, for the output
            ctx, alpha = _attend(s, enc_hs, src_mask, p)
        top = s_prev if kind == "reads_s_prev" else s
        logits = np.concatenate([top, ctx, y_emb], axis=1) @ p["W_o"] + p["b_o"]
        return ctx, alpha, s, logits
    return predict


def bahdanau_decoder_step(y_emb, s_prev, enc_hs, src_mask, p):
    """One step of Bahdanau's decoder, docs/equations.md §4 (row vectors).

    y_emb (B, E) is E y_{i-1}; s_prev (B, Hd) is s_{i-1}; enc_hs (B, S, Hk)
    the annotations h_j; src_mask (B, S) bool, True at real positions.
    p: W_a (Hd, A), U_a (Hk, A), v_a (A,); the GRU's W_x (E + Hk, 3Hd),
    W_h (Hd, 3Hd), b_x, b_h (3Hd,); the output layer's W_o (Hd + Hk + E, V),
    b_o (V,).

        e_ij = v_a · tanh(s_{i-1} W_a + h_j U_a)    α_i = masked softmax_j(e_i)
        c_i  = Σ_j α_ij h_j                          s_i = GRU([E y_{i-1} ; c_i], s_{i-1})
        logits_i = [s_i ; c_i ; E y_{i-1}] W_o + b_o

    `tinyattn.gru.gru_step_forward(x, h_prev, W_x, W_h, b_x, b_h)` returns
    ``(s_i, cache)``. Returns context (B, Hk), alpha (B, S), s (B, Hd),
    logits (B, V).
    """
    raise NotImplementedError  # your code here


DECODER_STEP = OutputExercise(
    "bahdanau_decoder_step",
    "context, alpha, s, logits = bahdanau_decoder_step(y_emb, s_prev, enc_hs, src_mask, p)",
    _solution,
    _cases,
    ("context", "alpha", "s", "logits"),
    "docs/equations.md §4 (Bahdanau et al. 2015): attend with s_{i-1}, then "
    "s_i = f(s_{i-1}, [E y_{i-1} ; c_i]), logits_i = [s_i ; c_i ; E y_{i-1}] W_o + b_o",
    [
        Bug("attended with s_i, the state after the step (Luong's order)",
            "Bahdanau attends once, with the query s_{i-1}, before the cell; the same c_i "
            "feeds the cell and the output layer (Luong attends with h_t after the step: "
            "lesson 06)",
            _variant("luong")),
        Bug("the GRU input halves swapped",
            "the cell reads x = [E y_{i-1} ; c_i]: the embedding first, as W_x's rows "
            "are ordered (E rows, then Hk)",
            _variant("swapped")),
        Bug("pads not masked",
            "a padded position must get α exactly 0: set its score to −inf before the "
            "softmax (np.where(src_mask, e, -np.inf))",
            _variant("unmasked")),
        Bug("the output layer reads s_{i-1}",
            "the output layer reads the new state: [s_i ; c_i ; E y_{i-1}] W_o + b_o",
            _variant("reads_s_prev")),
    ],
    starter=bahdanau_decoder_step,
)


# ----- the backward, graded by the gradient checker ------------------------
def bahdanau_decoder_step_forward(y_emb, s_prev, enc_hs, W_a, U_a, v_a, W_x, W_h, b_x, b_h,
                                  W_o, b_o, *, src_mask):
    """One decoder step from the library's step functions: ``(logits, s), cache``.

    The same numbers as `BahdanauDecoder` at one step (the tests check it).
    """
    keys = enc_hs @ U_a  # (B, S, Hk) @ (Hk, A) -> (B, S, A), h_j U_a
    q = s_prev @ W_a  # (B, Hd) @ (Hd, A) -> (B, A), s_{i-1} W_a
    scores, score_cache = additive_score_forward(q[:, None, :], keys, v_a)  # (B, 1, S)
    alpha, sm_cache = masked_softmax_forward(scores, src_mask[:, None, :])  # (B, 1, S)
    context = (alpha @ enc_hs)[:, 0]  # (B, 1, S) @ (B, S, Hk) -> (B, Hk)
    s, gru_cache = gru_step_forward(np.concatenate([y_emb, context], axis=1), s_prev,
                                    W_x, W_h, b_x, b_h)
    feat = np.concatenate([s, context, y_emb], axis=1)  # (B, Hd + Hk + E)
    logits = feat @ W_o + b_o
    cache = (y_emb, s_prev, enc_hs, W_a, U_a, W_o, feat, alpha[:, 0], score_cache, sm_cache,
             gru_cache)
    return (logits, s), cache


def _backward(dlogits, ds, cache, *, ctx_path=True, enc_score_path=True,
              query_score_path=True, dctx_from=("gru", "out"), use_ds=True, sm_alpha=True):
    y_emb, s_prev, enc_hs, W_a, U_a, W_o, feat, alpha, score_cache, sm_cache, gru_cache = cache
    E, Hk = y_emb.shape[1], enc_hs.shape[2]
    Hd = feat.shape[1] - Hk - E
    dW_o, db_o = feat.T @ dlogits, dlogits.sum(axis=0)  # logits = feat @ W_o + b_o
    ds_out, dctx_out, demb = np.split(dlogits @ W_o.T, [Hd, Hd + Hk], axis=1)
    # s_i feeds the output layer and the next step (ds)
    dx, ds_prev, dW_x, dW_h, db_x, db_h = gru_step_backward(
        ds_out + ds if use_ds else ds_out, gru_cache)
    demb = demb + dx[:, :E]  # x = [E y_{i-1} ; c_i]
    dctx = (dctx_out if "out" in dctx_from else 0.0) + (dx[:, E:] if "gru" in dctx_from else 0.0)
    dalpha = np.einsum("bk,bsk->bs", dctx, enc_hs)  # c_i = Σ_j α_ij h_j
    denc_hs = alpha[:, :, None] * dctx[:, None, :] if ctx_path else np.zeros_like(enc_hs)
    if sm_alpha:
        dscores = masked_softmax_backward(dalpha[:, None, :], sm_cache)  # (B, 1, S)
    else:  # the factor α left out: pads get gradient
        a = alpha[:, None, :]
        dscores = dalpha[:, None, :] - np.sum(a * dalpha[:, None, :], axis=-1, keepdims=True)
    dq, dk, dv_a = additive_score_backward(dscores, score_cache)
    dq = dq[:, 0]  # (B, 1, A) -> (B, A)
    if query_score_path:
        ds_prev = ds_prev + dq @ W_a.T  # s_{i-1} was also the query
    dW_a = s_prev.T @ dq
    dU_a = np.einsum("bsk,bsa->ka", enc_hs, dk)  # keys = enc_hs @ U_a
    if enc_score_path:
        denc_hs = denc_hs + dk @ U_a.T
    return demb, ds_prev, denc_hs, dW_a, dU_a, dv_a, dW_x, dW_h, db_x, db_h, dW_o, db_o


bahdanau_decoder_step_backward = _backward


def _pads_leak(learner, numerical, ctx):
    pads = ~ctx["mask"]
    return ["denc_hs"] if np.abs(learner["denc_hs"][pads]).max(initial=0.0) > 1e-12 else []


def decoder_step_backward(dlogits, ds, cache):
    """Backward of one Bahdanau decoder step (docs/equations.md §4).

    dlogits (B, V) and ds (B, Hd): the gradients of the step's two outputs,
    the logits and the new state s_i (ds from step i + 1). The cache:
    y_emb (B, E), s_prev (B, Hd), enc_hs (B, S, Hk), W_a (Hd, A),
    U_a (Hk, A), W_o (Hd + Hk + E, V), feat (B, Hd + Hk + E) =
    [s_i ; c_i ; E y_{i-1}], alpha (B, S), and the caches of
    `additive_score_forward` (scores (B, 1, S)), `masked_softmax_forward`
    (alpha (B, 1, S)) and `gru_step_forward` (x = [E y_{i-1} ; c_i]): their
    backwards, `additive_score_backward`, `masked_softmax_backward`,
    `gru_step_backward`, are yours to call.

    Returns one gradient per argument of the forward, in order: dy_emb,
    ds_prev, denc_hs, dW_a, dU_a, dv_a, dW_x, dW_h, db_x, db_h, dW_o, db_o.
    """
    (y_emb, s_prev, enc_hs, W_a, U_a, W_o, feat, alpha,
     score_cache, sm_cache, gru_cache) = cache
    raise NotImplementedError  # your code here


_SHAPES = {"y_emb": (_B, _E), "s_prev": (_B, _HD), "enc_hs": (_B, _S, _HK),
           "W_a": (_HD, _A), "U_a": (_HK, _A), "v_a": (_A,), "W_x": (_E + _HK, 3 * _HD),
           "W_h": (_HD, 3 * _HD), "b_x": (3 * _HD,), "b_h": (3 * _HD,),
           "W_o": (_HD + _HK + _E, _V), "b_o": (_V,)}
_GATES = ("r", "z", "n")

DECODER_STEP_BACKWARD = Exercise(
    "bahdanau_decoder_step_backward",
    "dy_emb, ds_prev, denc_hs, dW_a, dU_a, dv_a, dW_x, dW_h, db_x, db_h, dW_o, db_o = "
    "decoder_step_backward(dlogits, ds, cache)",
    partial(bahdanau_decoder_step_forward, src_mask=MASK),
    _SHAPES,
    "docs/equations.md §4, Backward: s_{i-1} gets gradient from the cell and the query; "
    "each h_j from the context and the keys; c_i from the cell input and the output layer",
    [
        Bug("the annotations' gradient misses the path through the context",
            "c_i = Σ_j α_ij h_j reaches each h_j directly: denc_hs += α_ij dc_i, besides "
            "the path through the keys h_j U_a",
            partial(_backward, ctx_path=False)),
        Bug("the annotations' gradient misses the path through the scores",
            "h_j is also a key: dk_j = Σ_i (score backward), denc_hs += dk_j @ U_a.T",
            partial(_backward, enc_score_path=False)),
        Bug("s_{i-1}'s gradient misses its path through the scores",
            "s_{i-1} was the query as well as the cell's previous state: "
            "ds_prev = (the GRU's dh_prev) + dq @ W_a.T",
            partial(_backward, query_score_path=False)),
        Bug("c_i's gradient taken from the output layer only",
            "c_i is read twice, by the output layer and by the cell (x = [E y_{i-1} ; c_i]): "
            "dc_i = (its block of dlogits @ W_o.T) + dx[:, E:]",
            partial(_backward, dctx_from=("out",))),
        Bug("c_i's gradient taken from the cell input only",
            "c_i is read twice, by the cell and by the output layer: "
            "dc_i = dx[:, E:] + (its block of dlogits @ W_o.T)",
            partial(_backward, dctx_from=("gru",))),
        Bug("ignored the upstream state gradient ds (dropped ds_next)",
            "s_i feeds the output layer and the next step: the cell's backward gets "
            "ds + (s_i's block of dlogits @ W_o.T)",
            partial(_backward, use_ds=False)),
        Bug("pads not masked (the factor α missing in the softmax backward)",
            "de = α ⊙ (dα − Σ_k α_k dα_k): the leading α makes a pad's gradient exactly 0",
            partial(_backward, sm_alpha=False), test=_pads_leak),
    ],
    gates={"W_x": _GATES, "W_h": _GATES, "b_x": _GATES, "b_h": _GATES},
    ctx={"mask": MASK},
    starter=decoder_step_backward,
    solution=bahdanau_decoder_step_backward,
)

EXERCISES = [DECODER_STEP, DECODER_STEP_BACKWARD]
