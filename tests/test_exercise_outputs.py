"""`check` on output-graded exercises: what a learner's function may return
and do without being graded wrong, and what it never does to the notebook."""

import numpy as np

import tinyattn.exercises as ex
from tinyattn.exercises._registry import exercises

TABLE = exercises()


def _solution(name):
    return TABLE[name].solution


def test_numbers_returned_as_arrays_where_lists_are_expected_pass():
    sol = _solution("bleu_sentence_stats")

    def as_arrays(hyp, refs, max_order):
        matches, totals, ref_len = sol(hyp, refs, max_order)
        return np.array(matches), np.array(totals), ref_len

    assert ex.check("bleu_sentence_stats", as_arrays, verbose=False).passed


def test_a_function_writing_into_its_arguments_is_graded_on_its_own_outputs():
    sol = _solution("bahdanau_decoder_step")

    def folds_then_deletes(y_emb, s_prev, enc_hs, src_mask, p):
        out = sol(y_emb, s_prev, enc_hs, src_mask, p)
        p["b_x"] += 1.0  # scribbles on the parameters it was given
        del p["W_o"]
        y_emb[...] = 0.0
        return out

    r = ex.check("bahdanau_decoder_step", folds_then_deletes, verbose=False)
    assert r.passed, r.text


def test_a_correct_loss_that_shifts_its_logits_in_place_passes_the_gradient_check():
    sol = _solution("masked_cross_entropy")

    def shifts_in_place(logits, targets, mask):
        logits -= logits.max(axis=-1, keepdims=True)  # the common idiom, on the argument
        return sol(logits, targets, mask)

    r = ex.check("masked_cross_entropy", shifts_in_place, verbose=False)
    assert r.passed, r.text


def test_nan_is_named_as_nan_not_as_zeros():
    sol = _solution("reinforce_score_grad")

    def nan(*args):
        return np.full_like(sol(*args), np.nan)

    r = ex.check("reinforce_score_grad", nan, verbose=False)
    assert r.status == "failed" and "NaN or inf" in r.text and "all zeros" not in r.text


def test_one_output_none_says_return_and_a_one_tuple_is_read_as_the_array():
    sol = _solution("reinforce_score_grad")
    r = ex.check("reinforce_score_grad", lambda *a: None, verbose=False)
    assert r.status == "shape" and "is the return statement missing?" in r.text
    assert ex.check("reinforce_score_grad", lambda *a: (sol(*a),), verbose=False).passed


def test_a_function_raising_inside_the_gradient_check_is_reported_not_raised():
    sol = _solution("masked_cross_entropy")
    calls = []

    def fails_later(*args):
        calls.append(1)
        if len(calls) > 3:  # the three cases pass; the gradient check calls it again
            raise RuntimeError("boom")
        return sol(*args)

    r = ex.check("masked_cross_entropy", fails_later, verbose=False)
    assert r.status == "error" and "gradient check" in r.text and "boom" in r.text
