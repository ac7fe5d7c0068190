"""Lesson 12's exercise `batched_scores_backward`: the batched backward passes,
a loop that overwrites dkeys is named, shape mistakes are reported as such.
Written here as a learner would write them."""

import numpy as np

import tinyattn.exercises as ex


def batched(dscores, cache):
    queries, keys, _ = cache
    return dscores @ keys, np.einsum("bts,btk->bsk", dscores, queries)


def loop_overwriting(dscores, cache):
    queries, keys, _ = cache
    dq, dk = np.zeros_like(queries), np.zeros_like(keys)
    for t in range(queries.shape[1]):
        dq[:, t] = np.einsum("bs,bsk->bk", dscores[:, t], keys)
        dk = dscores[:, t, :, None] * queries[:, t, None, :]  # BUG: = instead of +=
    return dq, dk


def untransposed(dscores, cache):
    queries, keys, _ = cache
    return dscores @ keys, dscores @ queries  # (B, T, S) @ (B, T, K): shapes do not align


def test_the_batched_backward_passes():
    assert ex.check("batched_scores_backward", batched, verbose=False).passed


def test_an_overwriting_loop_is_named():
    r = ex.check("batched_scores_backward", loop_overwriting, verbose=False)
    assert r.status == "failed" and "wrong dkeys" in r.text
    assert len(r.diagnoses) == 1 and "last step only" in r.diagnoses[0], r.text


def test_a_missing_transpose_is_reported():
    r = ex.check("batched_scores_backward", untransposed, verbose=False)
    assert r.status == "error" and "mismatched shapes" in r.text, r.text


def test_a_scale_too_many_is_a_constant_factor():
    r = ex.check("batched_scores_backward",
                 lambda d, c: tuple(g / np.sqrt(5) for g in batched(d, c)), verbose=False)
    assert r.status == "failed" and r.diagnoses, r.text
    assert all("0.447 ×" in d for d in r.diagnoses), r.text
