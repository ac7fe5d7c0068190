"""Lesson 03's exercise `bidirectional_encode`: the right encoder passes, the
classic padding mistakes are named. The buggy encoders are written here as a
learner would write them, independently of the package's predictions."""

import numpy as np
import pytest

import tinyattn.exercises as ex


def _reverse_within(x, lengths):
    out = x.copy()
    for b, n in enumerate(lengths):
        out[b, :n] = x[b, :n][::-1]
    return out


def right(x, lengths, fwd, bwd):
    hs_f, last_f = fwd(x, None, lengths)
    hs_b, last_b = bwd(_reverse_within(x, lengths), None, lengths)
    return (np.concatenate([hs_f, _reverse_within(hs_b, lengths)], axis=-1),
            np.concatenate([last_f, last_b], axis=-1))


def flip_with_lengths(x, lengths, fwd, bwd):
    hs_f, last_f = fwd(x, None, lengths)
    hs_b, last_b = bwd(x[:, ::-1].copy(), None, lengths)
    return np.concatenate([hs_f, hs_b[:, ::-1]], -1), np.concatenate([last_f, last_b], -1)


def flip_without_lengths(x, lengths, fwd, bwd):
    hs_f, last_f = fwd(x, None, lengths)
    hs_b, last_b = bwd(x[:, ::-1].copy())
    return np.concatenate([hs_f, hs_b[:, ::-1]], -1), np.concatenate([last_f, last_b], -1)


def backward_outputs_in_reading_order(x, lengths, fwd, bwd):
    hs_f, last_f = fwd(x, None, lengths)
    hs_b, last_b = bwd(_reverse_within(x, lengths), None, lengths)
    return np.concatenate([hs_f, hs_b], -1), np.concatenate([last_f, last_b], -1)


def backward_final_at_end(x, lengths, fwd, bwd):
    hs, last = right(x, lengths, fwd, bwd)
    H = last.shape[1] // 2
    return hs, np.concatenate([last[:, :H], hs[:, -1, H:]], -1)


def forward_final_at_end(x, lengths, fwd, bwd):
    hs, last = right(x, lengths, fwd, bwd)
    H = last.shape[1] // 2
    return hs, np.concatenate([hs[:, -1, :H], last[:, H:]], -1)


def test_a_learner_version_passes():
    assert ex.check("bidirectional_encode", right, verbose=False).passed


@pytest.mark.parametrize("fn, label, wrong", [
    (flip_with_lengths, "np.flip over the padded time axis", {"hs", "h_last"}),
    (flip_without_lengths, "moves the pads to the front", {"hs", "h_last"}),
    (backward_outputs_in_reading_order, "backward outputs left in reading order", {"hs"}),
    (backward_final_at_end, "backward direction's final state taken at T−1", {"h_last"}),
    (forward_final_at_end, "forward direction's final state taken at T−1", {"h_last"}),
])
def test_mistakes_are_named(fn, label, wrong):
    r = ex.check("bidirectional_encode", fn, verbose=False)
    assert r.status == "failed"
    assert len(r.diagnoses) == 1 and label in r.diagnoses[0], r.text
    assert f"wrong {', '.join(sorted(wrong))}" in r.text


def test_a_bug_only_on_padded_rows_passes_the_unpadded_case():
    r = ex.check("bidirectional_encode", flip_with_lengths, verbose=False)
    unpadded = r.text.split("no padding")[1].split("FAILED")[0]
    assert "✗" not in unpadded  # np.flip is right without pads: the report shows where it breaks
