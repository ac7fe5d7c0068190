"""The Transformer on the model protocol: whole-model gradients, padding invariance,
KV-cached decoding equal to recomputation, Trainer / decoders / checkpoints, bad input."""

import numpy as np
import pytest

import tinyattn as ta
from tinyattn.decoding import beam_search, greedy_decode
from tinyattn.functional import log_softmax
from tinyattn.gradcheck import TOL_MODEL, check_gradients
from tinyattn.training.optim import Adam
from tinyattn.training.trainer import Trainer
from tinyattn.transformer import Transformer

PAD, SOS, EOS = 0, 1, 2
SRC = np.array([[3, 4, 5, 6], [6, 7, 0, 0], [5, 0, 0, 0]])
SRC_LEN = np.array([4, 2, 1])
TGT = np.array([[SOS, 8, 9, 10, EOS], [SOS, 10, EOS, 0, 0], [SOS, 4, 5, EOS, 0]])
TGT_LEN = np.array([4, 2, 3])
BATCH = (SRC, SRC_LEN, TGT[:, :-1], TGT[:, 1:], TGT_LEN)


def _model(seed=0, dtype=np.float64, jiggle=True, **kw):
    opts = dict(d_model=8, num_heads=2, d_ff=7, num_encoder_layers=2, num_decoder_layers=2)
    opts.update(kw)
    rng = np.random.default_rng(seed)
    model = Transformer(11, 13, rng=rng, dtype=dtype, **opts)
    rng = np.random.default_rng(seed + 100)  # not the model's: dropout's seed is drawn last
    if jiggle:  # LayerNorm gains 1 and biases 0 at init: move them so every path is generic
        for name, value, _ in model.named_parameters():
            if name.endswith(("gamma", "beta")) or ".b" in name or name.startswith("b_"):
                value += 0.1 * rng.standard_normal(value.shape).astype(dtype)
    return model


def _grads(model, batch):
    model.zero_grad()
    loss = model(*batch)
    model.backward()
    return loss, {n: g.copy() for n, _, g in model.named_parameters()}


def _check(model, batch=BATCH):
    def forward():
        return np.array(model(*batch))

    def backward(dloss):
        return {n: float(dloss) * g for n, g in _grads(model, batch)[1].items()}

    arrays = {n: v for n, v, _ in model.named_parameters()}
    return check_gradients(forward, backward, arrays, tol=TOL_MODEL)


def test_exported_from_the_package():
    assert ta.Transformer is Transformer


ONE = {"num_encoder_layers": 1, "num_decoder_layers": 1}  # every entry is perturbed: keep it small


@pytest.mark.parametrize("kw", [
    {}, {"norm_first": True, **ONE}, {"tie_embeddings": True, "label_smoothing": 0.1, **ONE},
    {"num_encoder_layers": 1, "num_decoder_layers": 2, "num_heads": 4, "norm_first": True},
], ids=["post-LN 2x2", "pre-LN", "tied+smoothing", "1x2 layers, 4 heads"])
def test_whole_model_gradient_check(kw):
    result = _check(_model(**kw))
    assert result.passed, str(result)


def test_gradient_check_with_dropout_masks_fixed():
    model = _model(dropout=0.3, **ONE)
    state = {"seed": 7}
    real_forward = model.forward

    def forward(*args):  # the same masks at every evaluation of the loss
        model.seed_dropout(state["seed"])
        return real_forward(*args)

    model.forward = forward
    assert model.uses_dropout and model.training
    result = _check(model)
    assert result.passed, str(result)


def test_the_check_catches_a_wrong_backward(monkeypatch):
    """A LayerNorm backward with its gain applied outside the reductions (a bug of a
    public NumPy Transformer) is caught at the model level."""
    from tinyattn.layernorm import LayerNorm

    def wrong(self, dy):
        xhat, rstd = self._take_cache()
        dy2 = dy.reshape(-1, self.d)
        self.grads["gamma"] += (dy2 * xhat.reshape(-1, self.d)).sum(axis=0)
        self.grads["beta"] += dy2.sum(axis=0)
        g = dy
        return self.params["gamma"] * (g - g.mean(-1, keepdims=True)
                                       - xhat * (g * xhat).mean(-1, keepdims=True)) * rstd

    model = _model(**ONE)
    for name, value, _ in model.named_parameters():
        if name.endswith("gamma"):
            value[...] = 1.5 + np.arange(value.size) / value.size  # a clearly non-unit gain
    monkeypatch.setattr(LayerNorm, "backward", wrong)
    assert not _check(model).passed


@pytest.mark.parametrize("kw", [{}, {"norm_first": True, "tie_embeddings": True}])
def test_padded_batch_equals_each_example_alone(kw):
    model = _model(**kw)
    src, tgt = SRC.copy(), TGT.copy()
    src[src == 0] = 9  # garbage in the pads must change nothing
    tgt[np.arange(tgt.shape[1])[None] > TGT_LEN[:, None]] = 7
    batch = (src, SRC_LEN, tgt[:, :-1], tgt[:, 1:], TGT_LEN)
    loss, grads = _grads(model, batch)
    weights = model.attention_weights.copy()
    total_loss, total = 0.0, {n: np.zeros_like(g) for n, g in grads.items()}
    n_tokens = TGT_LEN.sum()
    for b in range(len(SRC)):
        S, T = SRC_LEN[b], TGT_LEN[b]
        one = (src[b:b + 1, :S], SRC_LEN[b:b + 1], tgt[b:b + 1, :T], tgt[b:b + 1, 1:T + 1],
               TGT_LEN[b:b + 1])
        loss_b, grads_b = _grads(model, one)
        np.testing.assert_allclose(weights[b, :T, :S], model.attention_weights[0], rtol=1e-10,
                                   atol=1e-14)
        assert not weights[b, T:].any() and not weights[b, :, S:].any()
        total_loss += loss_b * T / n_tokens  # the batch loss is a mean over its tokens
        for n in total:
            total[n] += grads_b[n] * T / n_tokens
    assert loss == pytest.approx(total_loss, rel=1e-12)
    for n, g in grads.items():
        np.testing.assert_allclose(g, total[n], rtol=1e-9, atol=1e-12, err_msg=n)


@pytest.mark.parametrize("kw", [{}, {"norm_first": True, "tie_embeddings": True}])
def test_cached_decoding_equals_recomputing_the_prefix(kw):
    model = _model(**kw).eval()
    tgt_in = TGT[:, :-1]
    memory, carry = model.start(SRC, SRC_LEN)
    steps, rows = [], []
    for t in range(tgt_in.shape[1]):
        logp, carry, alpha = model.decode_step(tgt_in[:, t], memory, carry, t)
        steps.append(logp)
        rows.append(alpha)
        assert carry[0][0].shape == (3, 2, t + 1, 4)  # (B, n, t + 1, d): one more row
    full_len = np.full(3, tgt_in.shape[1])
    model(SRC, SRC_LEN, tgt_in, TGT[:, 1:], full_len)
    full = log_softmax(model.logits, axis=1).reshape(3, tgt_in.shape[1], -1)
    np.testing.assert_allclose(np.stack(steps, 1), full, rtol=0, atol=1e-12)
    np.testing.assert_allclose(np.stack(rows, 1), model.attention_weights, rtol=0, atol=1e-12)


def _rescore(model, src, length, tokens):
    """Σ log p of ``tokens`` after <sos>, recomputed by a whole teacher-forced pass."""
    tgt_in = np.array([[SOS] + tokens[:-1]])
    model(src[None], [length], tgt_in, np.array([tokens]), [len(tokens)])
    logp = log_softmax(model.logits, axis=1)
    return float(logp[np.arange(len(tokens)), tokens].sum())


def test_greedy_and_beam_scores_equal_recomputation():
    """The beams reorder the key/value caches: every hypothesis' score must be what a
    fresh forward pass over its tokens gives."""
    model = _model(seed=3).eval()
    greedy = greedy_decode(model, SRC, SRC_LEN, max_len=6, sos_id=SOS, eos_id=EOS)
    beams = beam_search(model, SRC, SRC_LEN, beam_size=3, max_len=6, sos_id=SOS, eos_id=EOS,
                        n_best=3)
    for b in range(len(SRC)):
        src = SRC[b, :SRC_LEN[b]]
        for hyp in [greedy[b], *beams[b]]:
            assert hyp.logprob == pytest.approx(_rescore(model, src, SRC_LEN[b], hyp.tokens),
                                                abs=1e-10)
            assert hyp.attention.shape == (len(hyp.tokens), SRC_LEN[b])
        assert beams[b][0].score >= greedy[b].score - 1e-12


def test_trains_with_trainer_and_saves_and_loads(tmp_path):
    rng = np.random.default_rng(0)
    pairs = []
    for _ in range(300):  # reverse a short sequence
        src = [int(x) for x in rng.integers(3, 11, size=rng.integers(2, 6))]
        pairs.append((src, src[::-1]))
    model = Transformer(11, 11, d_model=16, num_heads=2, d_ff=32, num_encoder_layers=1,
                        num_decoder_layers=1, dropout=0.1, rng=rng, dtype=np.float32)
    trainer = Trainer(model, Adam(model.named_parameters(), lr=0.01), pad_id=PAD, sos_id=SOS,
                      eos_id=EOS, batch_size=32, rng=np.random.default_rng(1),
                      show_progress=False)
    before = trainer.evaluate(pairs)
    trainer.fit(pairs, pairs[:50], epochs=4, checkpoint_path=tmp_path / "m.npz")
    assert trainer.history[-1].valid_loss < 0.5 * before
    loaded = Transformer.load(tmp_path / "m.npz")
    assert loaded.config == model.config
    for (name, a, _), (_, b, _) in zip(model.named_parameters(), loaded.named_parameters()):
        np.testing.assert_array_equal(a, b, err_msg=name)
    src, lengths = np.array([[3, 4, 5]]), np.array([3])
    got = loaded.greedy_decode(src, lengths, max_len=6, sos_id=SOS, eos_id=EOS)
    want = model.greedy_decode(src, lengths, max_len=6, sos_id=SOS, eos_id=EOS)
    assert got[0].tokens == want[0].tokens


def test_eval_mode_has_no_dropout_and_plain_loss():
    model = _model(dropout=0.5, label_smoothing=0.2)
    model.eval()
    a, b = model(*BATCH), model(*BATCH)
    assert a == b
    plain = _model(dropout=0.0, label_smoothing=0.0).eval()
    assert plain(*BATCH) == pytest.approx(a, rel=1e-12)  # same weights: dropout drawn last


@pytest.mark.parametrize("kwargs, message", [
    ({"d_model": 10, "num_heads": 4}, "num_heads must divide d_model"),
    ({"num_encoder_layers": 0}, "num_encoder_layers"),
    ({"dropout": 1.0}, "dropout"),
    ({"label_smoothing": -0.1}, "label_smoothing"),
    ({"max_len": 0}, "max_len"),
    ({"norm_first": "yes"}, "norm_first"),
])
def test_bad_arguments_are_named(kwargs, message):
    with pytest.raises((ValueError, TypeError), match=message):
        _model(**kwargs)


def test_bad_calls_are_named():
    model = _model(max_len=4)
    with pytest.raises(ValueError, match="max_len = 4"):
        model(SRC, SRC_LEN, TGT, TGT, np.array([5, 2, 3]))  # 5 target positions
    model = _model().eval()
    memory, carry = model.start(SRC, SRC_LEN)
    with pytest.raises(ValueError, match=r"carry\[0\] keys must have shape \(3, 2, 1, 4\)"):
        model.decode_step(np.array([SOS] * 3), memory, carry, 1)  # the cache holds 0 steps
    with pytest.raises(TypeError, match="memory must be the TransformerMemory"):
        model.decode_step(np.array([SOS] * 3), None, carry, 0)
    with pytest.raises(ValueError, match="src_lengths"):
        model.start(SRC, np.array([5, 2, 1]))
    with pytest.raises(RuntimeError, match="without a forward"):
        _model().backward()
