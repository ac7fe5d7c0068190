"""Lesson 08's exercise `reinforce_score_grad`: the right gradient passes
(outputs and the gradient checker), the classic mistakes are named. The
versions here are written as a learner would write them, with a loop over
the batch, independently of the package's predictions."""

import numpy as np
import pytest

import tinyattn.exercises as ex


def make(baseline_on=True, sign=1.0, flip_onehot=False, entropy_sign=1.0, use_mask=True):
    def fn(scores, mask, positions, reward, baseline, entropy_weight):
        out = np.zeros_like(scores)
        for b in range(scores.shape[0]):
            real = mask[b] if use_mask else np.ones_like(mask[b])
            e = np.where(real, scores[b], -np.inf)
            p = np.exp(e - e[real].max())
            p /= p.sum()
            logp = np.zeros_like(p)
            logp[real] = np.log(p[real])
            H = -np.sum(p[real] * logp[real])
            dlogp = -p.copy()  # ∂ log α_j / ∂e
            dlogp[positions[b]] += 1.0
            if flip_onehot:
                dlogp = -dlogp
            adv = reward[b] - (baseline if baseline_on else 0.0)
            g = -adv * dlogp + entropy_sign * entropy_weight * p * (logp + H)
            out[b] = sign * np.where(real, g, 0.0)
        return out
    return fn


def test_a_learner_version_passes():
    r = ex.check("reinforce_score_grad", make(), verbose=False)
    assert r.passed, r.text
    assert "gradient check" in r.text


@pytest.mark.parametrize("fn, label", [
    (make(baseline_on=False), "baseline is not subtracted"),
    (make(sign=-1.0), "whole gradient has the wrong sign"),
    (make(flip_onehot=True), "α − onehot instead of onehot − α"),
    (make(entropy_sign=-1.0), "entropy gradient has the wrong sign"),
    (make(use_mask=False), "pads receive gradient"),
])
def test_mistakes_are_named(fn, label):
    r = ex.check("reinforce_score_grad", fn, verbose=False)
    assert r.status == "failed"
    assert len(r.diagnoses) == 1 and label in r.diagnoses[0], r.text


def test_the_pad_mistake_passes_the_unpadded_case():
    r = ex.check("reinforce_score_grad", make(use_mask=False), verbose=False)
    unpadded = r.text.split("no padding")[1].split("FAILED")[0]
    assert "✗" not in unpadded
