"""Lesson 05's exercises on one Bahdanau decoder step: the right forward and
backward pass, the classic mistakes are named (each with its diagnosis and
only that one), and the exercise's step is the library's `BahdanauDecoder`.
The learner versions are written here as a learner would write them,
independently of the package's predictions."""

import numpy as np
import pytest

import tinyattn.exercises as ex
from tinyattn.attention import BahdanauAttention, additive_score_backward
from tinyattn.decoders import BahdanauDecoder
from tinyattn.exercises._ex_attention_decoder import MASK, bahdanau_decoder_step_forward
from tinyattn.exercises._registry import exercises
from tinyattn.functional import masked_softmax_backward
from tinyattn.gru import GRU, gru_step_backward, gru_step_forward
from tinyattn.layers import Linear
from tinyattn.memory import Memory

FWD, BWD = "bahdanau_decoder_step", "bahdanau_decoder_step_backward"


# --- the forward ---------------------------------------------------------------

def _attention(query, enc_hs, mask, p, use_mask=True):
    scores = np.stack([np.tanh(query @ p["W_a"] + enc_hs[:, j] @ p["U_a"]) @ p["v_a"]
                       for j in range(enc_hs.shape[1])], axis=1)  # (B, S)
    if use_mask:
        scores = np.where(mask, scores, -1e300)
    w = np.exp(scores - scores.max(axis=1, keepdims=True))
    alpha = w / w.sum(axis=1, keepdims=True)
    return (alpha[:, :, None] * enc_hs).sum(axis=1), alpha


def step(y_emb, s_prev, enc_hs, src_mask, p, mistake=None):
    ctx, alpha = _attention(s_prev, enc_hs, src_mask, p, use_mask=mistake != "unmasked")
    x = np.hstack([ctx, y_emb] if mistake == "swapped" else [y_emb, ctx])
    s, _ = gru_step_forward(x, s_prev, p["W_x"], p["W_h"], p["b_x"], p["b_h"])
    if mistake == "luong":
        ctx, alpha = _attention(s, enc_hs, src_mask, p)  # "attend with the current state"
    logits = np.hstack([s_prev if mistake == "s_prev_out" else s, ctx, y_emb]) @ p["W_o"]
    return ctx, alpha, s, logits + p["b_o"]


def test_the_right_forward_passes():
    assert ex.check(FWD, step, verbose=False).passed


@pytest.mark.parametrize("mistake, label, wrong", [
    ("luong", "attended with s_i, the state after the step", "alpha, context, logits"),
    ("swapped", "the GRU input halves swapped", "logits, s"),
    ("unmasked", "pads not masked", "alpha, context, logits, s"),
    ("s_prev_out", "the output layer reads s_{i-1}", "logits"),
])
def test_forward_mistakes_are_named(mistake, label, wrong):
    r = ex.check(FWD, lambda *a: step(*a, mistake=mistake), verbose=False)
    assert r.status == "failed"
    assert len(r.diagnoses) == 1 and label in r.diagnoses[0], r.text
    assert f"FAILED: wrong {wrong}" in r.text


def test_unmasked_pads_are_right_without_pads():
    r = ex.check(FWD, lambda *a: step(*a, mistake="unmasked"), verbose=False)
    assert "✗" not in r.text.split("no padding")[1].split("FAILED")[0]


# --- the backward --------------------------------------------------------------

def backward(dlogits, ds, cache, mistake=None):
    y_emb, s_prev, enc_hs, W_a, U_a, W_o, feat, alpha, score_cache, sm_cache, gru_cache = cache
    E, Hk = y_emb.shape[1], enc_hs.shape[2]
    Hd = feat.shape[1] - Hk - E
    dfeat = dlogits @ W_o.T
    ds_i = dfeat[:, :Hd] + (0 if mistake == "no_ds" else ds)
    dx, ds_prev, dW_x, dW_h, db_x, db_h = gru_step_backward(ds_i, gru_cache)
    dctx_out, dctx_in = dfeat[:, Hd:Hd + Hk], dx[:, E:]
    dctx = {"out_only": dctx_out, "gru_only": dctx_in}.get(mistake, dctx_out + dctx_in)
    dalpha = (enc_hs @ dctx[:, :, None])[:, :, 0]  # (B, S, Hk) @ (B, Hk, 1)
    if mistake == "leaky_softmax":
        de = dalpha - (alpha * dalpha).sum(1, keepdims=True)
        de = de[:, None, :]
    else:
        de = masked_softmax_backward(dalpha[:, None, :], sm_cache)
    dq, dk, dv_a = additive_score_backward(de, score_cache)
    if mistake != "no_query_path":
        ds_prev = ds_prev + dq[:, 0] @ W_a.T
    denc = np.zeros_like(enc_hs)
    if mistake != "no_context_path":
        denc += alpha[:, :, None] * dctx[:, None, :]
    if mistake != "no_key_path":
        denc += dk @ U_a.T
    dU_a = sum(enc_hs[b].T @ dk[b] for b in range(len(enc_hs)))
    return (dfeat[:, Hd + Hk:] + dx[:, :E], ds_prev, denc, s_prev.T @ dq[:, 0], dU_a, dv_a,
            dW_x, dW_h, db_x, db_h, feat.T @ dlogits, dlogits.sum(0))


def test_the_right_backward_passes():
    r = ex.check(BWD, backward, verbose=False)
    assert r.passed and max(r.errors.values()) < 1e-7


@pytest.mark.parametrize("mistake, label, wrong", [
    ("no_context_path", "the annotations' gradient misses the path through the context",
     "denc_hs"),
    ("no_key_path", "the annotations' gradient misses the path through the scores", "denc_hs"),
    ("no_query_path", "s_{i-1}'s gradient misses its path through the scores", "ds_prev"),
    ("out_only", "c_i's gradient taken from the output layer only", None),
    ("gru_only", "c_i's gradient taken from the cell input only", None),
    ("no_ds", "dropped ds_next", None),
    ("leaky_softmax", "pads not masked", None),
])
def test_backward_mistakes_are_named(mistake, label, wrong):
    r = ex.check(BWD, lambda d1, d2, c: backward(d1, d2, c, mistake), verbose=False)
    assert r.status == "failed"
    assert len(r.diagnoses) == 1 and label in r.diagnoses[0], r.text
    if wrong:
        assert f"FAILED: wrong {wrong} " in r.text


# --- the exercise's step is the library's decoder ----------------------------------

def test_the_exercise_step_is_bahdanau_decoder():
    rng = np.random.default_rng(5)
    B, S, E, Hd, A, Hk, V = 2, 4, 5, 6, 7, 8, 9
    attn, cell = BahdanauAttention(Hd, Hk, A, rng=rng), GRU(E + Hk, Hd, rng=rng)
    out = Linear(Hd + Hk + E, V, rng=rng)
    dec = BahdanauDecoder(cell, attn, out, E)
    y_emb, s_prev = rng.standard_normal((B, E)), rng.standard_normal((B, Hd))
    enc_hs = rng.standard_normal((B, S, Hk))
    weights = [attn.params[k] for k in ("W_a", "U_a", "v_a")] + \
        [cell.params[k] for k in ("W_x", "W_h", "b_x", "b_h")] + [out.params["W"], out.params["b"]]
    (logits, s), cache = bahdanau_decoder_step_forward(y_emb, s_prev, enc_hs, *weights,
                                                       src_mask=MASK)
    memory = dec.prepare(enc_hs, MASK, None)
    logits_lib, alphas = dec(y_emb[:, None], memory, s_prev)
    assert np.allclose(logits, logits_lib[:, 0]) and np.allclose(cache[7], alphas[:, 0])
    _, state, _ = dec.step(y_emb, Memory(enc_hs, MASK, enc_hs @ attn.params["U_a"]), s_prev, 0)
    assert np.allclose(s, state)

    dlogits = rng.standard_normal(logits.shape)
    dec.zero_grad()
    demb, dmem, ds0 = dec.backward(dlogits[:, None])
    grads = exercises()[BWD].solution(dlogits, np.zeros_like(s), cache)
    assert np.allclose(grads[0], demb[:, 0]) and np.allclose(grads[1], ds0)
    assert np.allclose(grads[2], dmem.annotations)
    lib = [attn.grads[k] for k in ("W_a", "U_a", "v_a")] + \
        [cell.grads[k] for k in ("W_x", "W_h", "b_x", "b_h")] + [out.grads["W"], out.grads["b"]]
    for mine, want in zip(grads[3:], lib):
        assert np.allclose(mine, want)
