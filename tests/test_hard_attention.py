"""Hard attention (tinyattn/hard_attention.py): the REINFORCE score gradient,
its expectation, padding, and bad inputs."""

import numpy as np
import pytest

from tinyattn.attention import BahdanauAttention
from tinyattn.functional import masked_softmax_forward
from tinyattn.gradcheck import TOL_LAYER, TOL_STEP, check_function, check_gradients
from tinyattn.hard_attention import (
    HardAttention,
    HardSeq2Seq,
    reinforce_score_grad,
    reinforce_surrogate_backward,
    reinforce_surrogate_forward,
    sample_positions,
)

MASK = np.array([[True, True, True, True, True],
                 [True, True, True, False, False],
                 [True, False, False, False, False]])


def test_surrogate_gradient_is_the_estimator():
    """With the samples and advantages fixed, the estimator is the exact
    gradient of L_s = −Σ adv log α_j − λ Σ H(α): the checker confirms it."""
    rng = np.random.default_rng(0)
    scores = rng.standard_normal(MASK.shape)
    positions = np.array([3, 2, 0])
    advantage = np.array([0.7, -1.3, 0.4])
    for lam in (0.0, 0.3):
        res = check_function(reinforce_surrogate_forward, reinforce_surrogate_backward, scores,
                             tol=TOL_STEP, mask=MASK, positions=positions, advantage=advantage,
                             entropy_weight=lam)
        assert res.passed, res


def test_mean_estimate_approaches_exact_gradient():
    """E_j[(r_j − b)(onehot(j) − α)] = ∇_e Σ_j α_j r_j = α ⊙ (r − E r), for any
    constant b. With M samples the mean has standard error σ/√M per
    component; 5 standard errors fail a correct estimator with probability
    below 1e-5 per component (and the seed is fixed), while a wrong sign or
    a missing −α are off by many standard errors."""
    rng = np.random.default_rng(1)
    S, M = 5, 40_000
    mask = np.array([True, True, True, True, False])
    alpha, _ = masked_softmax_forward(rng.standard_normal(S), mask)
    r = np.array([-11.0, -14.0, -10.5, -9.0, 0.0])  # log-likelihoods: all far below 0
    exact = alpha * (r - alpha @ r)
    A = np.tile(alpha, (M, 1))
    Mk = np.tile(mask, (M, 1))
    j = sample_positions(A, Mk, rng)
    assert mask[j].all()
    sd = {}
    for b in (0.0, alpha @ r):
        est = -reinforce_score_grad(A, j, Mk, r[j] - b, 0.0)  # ascent direction
        se = est.std(axis=0) / np.sqrt(M)
        assert np.all(np.abs(est.mean(axis=0) - exact) <= 5 * se + 1e-12)
        sd[b == 0.0] = est.std(axis=0).sum()
    assert sd[False] < sd[True]  # the baseline lowers the variance


def test_pads_never_sampled_and_frequencies_match():
    rng = np.random.default_rng(2)
    alpha, _ = masked_softmax_forward(rng.standard_normal(MASK.shape) * 3, MASK)
    M = 20_000
    j = sample_positions(np.repeat(alpha, M, 0), np.repeat(MASK, M, 0), rng).reshape(3, M)
    for b in range(3):
        assert MASK[b, j[b]].all()
        freq = np.bincount(j[b], minlength=5) / M
        se = np.sqrt(alpha[b] * (1 - alpha[b]) / M)
        assert np.all(np.abs(freq - alpha[b]) <= 5 * se + 1e-12)


def test_estimator_is_zero_at_pads():
    rng = np.random.default_rng(3)
    alpha, _ = masked_softmax_forward(rng.standard_normal(MASK.shape), MASK)
    d = reinforce_score_grad(alpha, np.array([4, 1, 0]), MASK, np.ones(3), 0.5)
    assert np.all(d[~MASK] == 0.0)
    assert np.allclose(d[MASK[:, :]].reshape(-1).sum(), 0.0)  # rows of onehot − α sum to 0
    assert np.allclose(d.sum(axis=1), 0.0)


def _attn(seed=0, Hq=4, Hk=6, A=3):
    return BahdanauAttention(Hq, Hk, A, rng=np.random.default_rng(seed))


def test_module_gradients_with_samples_fixed():
    """Through `HardAttention.step`/`step_backward`: f = Σ G ⊙ h_j + L_s, with the
    sample rng reseeded on every forward (the same j each time)."""
    rng = np.random.default_rng(4)
    B, S, Hq, Hk = 3, 5, 4, 6
    hard = HardAttention(_attn(), rng=np.random.default_rng(0), entropy_weight=0.2)
    query, enc = rng.standard_normal((B, Hq)), rng.standard_normal((B, S, Hk))
    G, reward = rng.standard_normal((B, Hk)), np.array([-1.0, -3.0, -0.5])
    seen = []

    def run():
        hard.rng = np.random.default_rng(7)
        memory = hard.prepare(enc, MASK)
        ctx, alpha, cache = hard.step(query, memory, 0)
        seen.append(tuple(cache[2]))
        scores = np.log(np.where(MASK, alpha, 1.0))  # log α: a softmax's own scores
        adv = reward - reward.mean()  # the first baseline is the batch mean
        # the module's loss is a mean over the n = B real target tokens: L_s / n
        L_s, _ = reinforce_surrogate_forward(scores, MASK, cache[2], adv / B, 0.2 / B)
        return memory, ctx, cache, float((G * ctx).sum() + L_s)

    def backward(dout):
        hard.zero_grad()
        hard.baseline = None
        memory, _, cache, _ = run()
        hard.entropy_weight = 0.2 * float(dout)
        hard.set_reward(reward * float(dout), np.ones((B, 1), bool))
        dq = hard.step_backward(G * float(dout), cache, memory)
        denc = hard.prepare_backward(memory)
        hard.entropy_weight = 0.2
        return {"query": dq, "enc": denc, **{k: g.copy() for k, g in hard.base.grads.items()}}

    arrays = {"query": query, "enc": enc, **hard.base.params}
    res = check_gradients(lambda: np.asarray(run()[3]), backward, arrays, tol=TOL_LAYER)
    assert res.passed, res
    assert len(set(seen)) == 1  # the samples never moved


def test_padding_invariance():
    """Garbage at pad annotations and extra pad columns change nothing."""
    rng = np.random.default_rng(5)
    B, S, Hq, Hk = 3, 5, 4, 6
    query, enc = rng.standard_normal((B, Hq)), rng.standard_normal((B, S, Hk))
    dctx = rng.standard_normal((B, Hk))
    out = []
    for variant in range(2):
        e, m = enc.copy(), MASK.copy()
        if variant:
            e[~MASK] = 1e3 * rng.standard_normal(e[~MASK].shape)
            e = np.concatenate([e, rng.standard_normal((B, 2, Hk))], axis=1)
            m = np.concatenate([m, np.zeros((B, 2), bool)], axis=1)
        hard = HardAttention(_attn(), rng=np.random.default_rng(9), entropy_weight=0.1)
        memory = hard.prepare(e, m)
        ctx, alpha, cache = hard.step(query, memory, 0)
        hard.set_reward(np.array([-1.0, -2.0, -4.0]), np.ones((B, 1), bool))
        dq = hard.step_backward(dctx, cache, memory)
        denc = hard.prepare_backward(memory)
        assert np.all(denc[~m] == 0.0) and np.all(alpha[~m] == 0.0)
        out.append((ctx, alpha[:, :S], cache[2], dq, denc[:, :S][MASK], hard.base.grads["W_a"]))
    for a, b in zip(*out):
        assert np.allclose(a, b, rtol=1e-10, atol=1e-12)


def test_eval_reads_the_argmax_and_training_is_reproducible():
    rng = np.random.default_rng(6)
    enc, query = rng.standard_normal((3, 5, 6)), rng.standard_normal((3, 4))
    hard = HardAttention(_attn(), rng=np.random.default_rng(0))
    hard.eval()
    memory = hard.prepare(enc, MASK)
    ctx, alpha, cache = hard.step(query, memory)
    assert np.array_equal(cache[2], np.argmax(alpha, axis=1))
    assert np.array_equal(ctx, enc[np.arange(3), cache[2]])
    kw = dict(emb_size=4, hidden_size=5, pad_id=0)
    src, tgt = np.array([[3, 4, 5], [6, 7, 0]]), np.array([[1, 8, 9], [1, 5, 0]])
    losses, grads = [], []
    for _ in range(2):
        m = HardSeq2Seq(12, 12, rng=np.random.default_rng(0),
                        sample_rng=np.random.default_rng(3), entropy_weight=0.01, **kw)
        losses.append(m(src, [3, 2], tgt[:, :-1], tgt[:, 1:], [2, 1]))
        m.backward()
        grads.append(np.concatenate([g.ravel() for _, _, g in m.named_parameters()]))
    assert losses[0] == losses[1] and np.array_equal(grads[0], grads[1])
    assert np.abs(grads[0]).max() > 0


@pytest.mark.parametrize("call, err, words", [
    (lambda a, m: sample_positions(a, m.astype(int), np.random.default_rng(0)),
     ValueError, "mask must be a bool"),
    (lambda a, m: sample_positions(a, m, 0), TypeError, "rng must be"),
    (lambda a, m: sample_positions(a[:, :3], m, np.random.default_rng(0)),
     ValueError, "mask must be a bool array of the shape"),
    (lambda a, m: sample_positions(a, np.zeros_like(m), np.random.default_rng(0)),
     ValueError, "at least one real"),
    (lambda a, m: reinforce_score_grad(a, np.array([0, 4, 0]), m, np.ones(3), 0.0),
     ValueError, "positions must index real"),
    (lambda a, m: reinforce_score_grad(a, np.array([0, 1]), m, np.ones(3), 0.0),
     ValueError, "positions must be B=3"),
    (lambda a, m: reinforce_score_grad(a, np.array([0, 1, 0]), m, np.ones(2), 0.0),
     ValueError, "advantage must have shape"),
    (lambda a, m: reinforce_score_grad(a, np.array([0, 1, 0]), m, np.ones(3), -1.0),
     ValueError, "entropy_weight"),
    (lambda a, m: reinforce_score_grad(a.astype(np.float32), np.array([0, 1, 0]), m,
                                       np.ones(3), 0.0), TypeError, "alpha must have dtype"),
    (lambda a, m: HardAttention("bahdanau", rng=np.random.default_rng(0)),
     TypeError, "base must be"),
    (lambda a, m: HardAttention(_attn(), rng=np.random.default_rng(0), baseline_decay=1.0),
     ValueError, "baseline_decay"),
    (lambda a, m: HardSeq2Seq(5, 5, emb_size=2, hidden_size=2, label_smoothing=0.1,
                              rng=np.random.default_rng(0), sample_rng=np.random.default_rng(0)),
     ValueError, "label_smoothing=0"),
    (lambda a, m: reinforce_surrogate_forward(np.zeros_like(a), m, np.array([0, 1, 0]),
                                              np.ones((3, 1)), 0.0),
     ValueError, "advantage must have shape"),
    (lambda a, m: reinforce_surrogate_forward(np.zeros_like(a), m, np.array([0, 1, 0]), np.ones(3),
                                              -3.0), ValueError, "entropy_weight"),
])
def test_bad_inputs(call, err, words):
    alpha, _ = masked_softmax_forward(np.zeros(MASK.shape), MASK)
    with pytest.raises(err, match=words):
        call(alpha, MASK)


def test_backward_needs_rewards():
    hard = HardAttention(_attn(), rng=np.random.default_rng(0))
    memory = hard.prepare(np.ones((3, 5, 6)), MASK)
    ctx, _, cache = hard.step(np.ones((3, 4)), memory)
    with pytest.raises(RuntimeError, match="set_reward"):
        hard.step_backward(np.ones_like(ctx), cache, memory)
    with pytest.raises(ValueError, match="step_mask must be"):
        hard.set_reward(np.ones(3), np.ones((3, 2), bool))


def test_model_gradient_off_the_score_path_is_ordinary_backprop():
    """With the draws fixed (the sample rng reseeded), the output layer's
    gradients are those of the loss. Everything before the output layer (even
    the target embedding, through s_{i-1}, the next query) also reaches the
    scores, so its gradient holds the REINFORCE term too."""
    kw = dict(emb_size=3, hidden_size=4, pad_id=0)
    m = HardSeq2Seq(9, 9, rng=np.random.default_rng(0), sample_rng=np.random.default_rng(0),
                    entropy_weight=0.1, **kw)
    src, tgt = np.array([[3, 4, 5, 6], [6, 7, 0, 0]]), np.array([[1, 8, 2, 3], [1, 5, 2, 0]])
    args = (src, [4, 2], tgt[:, :-1], tgt[:, 1:], [3, 2])
    seen = []

    def forward():
        m.decoder.attn.rng = np.random.default_rng(11)
        loss = m(*args)
        seen.append(tuple(np.concatenate(m.decoder.attn.samples)))
        return np.asarray(loss)

    def backward(dloss):
        m.zero_grad()
        forward()
        m.backward()
        return {"out.W": float(dloss) * m.decoder.out.grads["W"],
                "out.b": float(dloss) * m.decoder.out.grads["b"]}

    arrays = {"out.W": m.decoder.out.params["W"], "out.b": m.decoder.out.params["b"]}
    res = check_gradients(forward, backward, arrays, tol=TOL_LAYER)
    assert res.passed, res
    assert len(set(seen)) == 1


def test_whole_model_gradient_is_that_of_loss_plus_surrogate():
    """Every parameter: with the draws and the advantages R − b fixed, the
    model's gradient is that of loss + L_s / N, L_s summed over the real
    target steps (N of them, as the loss is a mean over N tokens)."""
    kw = dict(emb_size=3, hidden_size=4, pad_id=0, bidirectional=False)
    lam = 0.1
    m = HardSeq2Seq(9, 9, rng=np.random.default_rng(1), sample_rng=np.random.default_rng(0),
                    entropy_weight=lam, **kw)
    src, tgt = np.array([[3, 4, 5, 6], [6, 7, 0, 0]]), np.array([[1, 8, 2, 3], [1, 5, 2, 0]])
    args = (src, [4, 2], tgt[:, :-1], tgt[:, 1:], [3, 2])
    steps = np.array([[True, True, True], [True, True, False]])
    N = int(steps.sum())

    def run():
        m.decoder.attn.rng = np.random.default_rng(11)
        m.decoder.attn.baseline = None  # the first baseline: the batch mean of R
        return m(*args)

    run()
    adv = m.decoder.attn._advantage[0].copy()

    def forward():
        loss = run()
        alpha, j = m.attention_weights, np.stack(m.decoder.attn.samples, axis=1)
        total = loss
        for b, t in zip(*np.nonzero(steps)):
            a = alpha[b, t][alpha[b, t] > 0]
            total += (-adv[b] * np.log(alpha[b, t, j[b, t]]) + lam * np.sum(a * np.log(a))) / N
        return np.asarray(total)

    def backward(dout):
        m.zero_grad()
        run()
        m.backward()
        return {n: float(dout) * g.copy() for n, _, g in m.named_parameters()}

    arrays = {n: v for n, v, _ in m.named_parameters()}
    res = check_gradients(forward, backward, arrays, tol=TOL_LAYER)
    assert res.passed, res


def test_whole_sequence_call_is_refused():
    hard = HardAttention(_attn(), rng=np.random.default_rng(0))
    memory = hard.prepare(np.ones((3, 5, 6)), MASK)
    with pytest.raises(NotImplementedError, match="one decoder step at a time"):
        hard.attend(np.ones((3, 2, 4)), memory)
    ctx, _, cache = hard.step(np.ones((3, 4)), memory)
    with pytest.raises(ValueError, match="no dalpha"):
        hard.step_backward(np.ones_like(ctx), cache, memory, dalpha=np.ones((3, 5)))


def test_saving_is_refused_with_a_reason(tmp_path):
    m = HardSeq2Seq(5, 5, emb_size=2, hidden_size=2, rng=np.random.default_rng(0),
                    sample_rng=np.random.default_rng(0))
    with pytest.raises(TypeError, match="would load as a soft Bahdanau model"):
        m.save(tmp_path / "hard.npz")
    assert not list(tmp_path.iterdir())


def test_a_real_position_with_zero_weight_gives_finite_gradients():
    alpha = np.array([[1.0, 0.0, 0.0], [0.5, 0.5, 0.0]])  # exact zeros, as a float32 softmax gives
    mask = np.ones_like(alpha, bool)
    d = reinforce_score_grad(alpha, np.array([0, 1]), mask, np.array([1.0, -2.0]), 0.3)
    assert np.all(np.isfinite(d))
    assert np.allclose(d[:, 2], 0.0)  # no weight, no entropy: 0 log 0 = 0


def test_rewards_for_another_batch_are_refused():
    m = HardSeq2Seq(6, 6, emb_size=3, hidden_size=3, rng=np.random.default_rng(0),
                    sample_rng=np.random.default_rng(0))
    src, tgt = np.array([[3, 4], [4, 5]]), np.array([[1, 3], [1, 4]])
    m(src, np.array([2, 2]), tgt, tgt, np.array([2, 2]))
    with pytest.raises(ValueError, match="reward must have shape"):
        m.decoder.attn.set_reward(np.zeros(1), np.ones((1, 2), bool))
