"""Dropout (issue 12 §3): the layer, the model with dropout (gradient check with
fixed masks, padding invariance, eval mode), checkpoints of older versions."""

import numpy as np
import pytest

from tinyattn import Seq2Seq
from tinyattn.gradcheck import TOL_MODEL, check_gradients
from tinyattn.layers import Dropout

from .test_seq2seq import (
    SRC,
    SRC_LEN,
    V_SRC,
    V_TGT,
    assert_padding_invariant,
    grads_of,
    loss_of,
)


def test_layer_train_and_eval():
    layer = Dropout(0.25)
    layer.rng = np.random.default_rng(0)
    x = np.ones((400, 50))
    y = layer(x)
    kept = y != 0
    assert set(np.unique(y)) == {0.0, 1 / 0.75}  # inverted: kept units scaled by 1/(1 - p)
    assert abs(kept.mean() - 0.75) < 0.01 and abs(y.mean() - 1.0) < 0.02
    dy = np.random.default_rng(1).standard_normal(x.shape)
    np.testing.assert_array_equal(layer.backward(dy), dy * (kept / 0.75))
    layer.eval()
    assert layer(x) is x and layer.backward(dy) is dy  # eval mode: the identity
    assert Dropout(0.0).train()(x) is x


@pytest.mark.parametrize("p, error", [(1.0, ValueError), (-0.1, ValueError),
                                      (float("nan"), ValueError), ("0.1", ValueError),
                                      (True, ValueError)])
def test_layer_bad_p(p, error):
    with pytest.raises(error, match="p must be a number in \\[0, 1\\)"):
        Dropout(p)


def test_layer_needs_a_seed():
    with pytest.raises(ValueError, match="seed the model's dropout first"):
        Dropout(0.5)(np.ones(3))


def make(attention="bahdanau", cell="gru", dropout=0.3, seed=0, **kw):
    kw = {"emb_size": 3, "hidden_size": 2, **kw}
    return Seq2Seq(V_SRC, V_TGT, cell=cell, attention=attention, dropout=dropout,
                   rng=np.random.default_rng(seed), **kw)


CONFIGS = [("bahdanau", "gru", {}), ("general", "lstm", {"input_feeding": True}),
           ("dot", "gru", {}), (None, "gru", {}), ("local-p", "lstm", {"window": 1})]


@pytest.mark.parametrize("attention, cell, kw", CONFIGS)
def test_gradcheck_with_fixed_masks(attention, cell, kw):
    """Each forward reseeds the dropout: the masks are fixed, so the loss is a
    smooth function of the weights and the analytic gradient must match."""
    model = make(attention, cell, **kw)
    assert _check_with_fixed_masks(model).passed
    # the masks matter: another seed gives another loss
    model.seed_dropout(8)
    other = loss_of(model)
    model.seed_dropout(7)
    assert loss_of(model) != other


def test_gradcheck_catches_a_missing_mask_in_backward(monkeypatch):
    """A backward that forgets the mask (passes dy straight through) fails the check."""
    model = make()
    monkeypatch.setattr(Dropout, "backward", lambda self, dy: (self._take_cache(), dy)[1])
    assert not _check_with_fixed_masks(model).passed


def _check_with_fixed_masks(model, seed=7):
    """The float64 gradient check of every parameter, each forward reseeding the
    dropout, so the masks are fixed and the loss a smooth function of the weights."""
    def forward():
        model.seed_dropout(seed)
        return np.array(loss_of(model))

    def backward(d):
        model.seed_dropout(seed)
        return {n: g * d for n, g in grads_of(model)[1].items()}
    return check_gradients(forward, backward, {n: v for n, v, _ in model.named_parameters()},
                           tol=TOL_MODEL)


def _masks_by_position(monkeypatch):
    """Masks that depend on the position and unit, not on the batch row or the
    padded length: the same for an example alone and inside a padded batch."""
    def keep(self, shape):
        idx = np.indices(shape[1:]).sum(axis=0) if len(shape) > 1 else np.arange(shape[0])
        row = ((idx * 7 + self.p * 100).astype(int) % 3) != 0  # about 1/3 dropped
        return np.broadcast_to(row, shape)
    monkeypatch.setattr(Dropout, "_keep", keep)


@pytest.mark.parametrize("attention, cell, kw", CONFIGS)
def test_padded_batch_equals_examples_alone(attention, cell, kw, monkeypatch):
    _masks_by_position(monkeypatch)
    assert_padding_invariant(make(attention, cell, **kw))


def test_eval_mode_is_the_model_without_dropout():
    """The dropout generator is drawn after every weight, so a dropout model's
    weights are those of the same model without dropout; in eval mode the
    losses agree exactly, in train mode they differ."""
    with_dropout, without = make(dropout=0.5), make(dropout=0.0)
    for (n, a, _), (_, b, _) in zip(with_dropout.named_parameters(), without.named_parameters()):
        np.testing.assert_array_equal(a, b, err_msg=n)
    assert loss_of(with_dropout) != loss_of(without)
    with_dropout.eval()
    assert loss_of(with_dropout) == loss_of(without)
    hyps = with_dropout.greedy_decode(SRC, SRC_LEN, max_len=5, sos_id=1, eos_id=2)
    assert with_dropout.training is False  # the decoders restore the mode
    with_dropout.train()
    assert [h.tokens for h in with_dropout.greedy_decode(SRC, SRC_LEN, max_len=5, sos_id=1,
                                                         eos_id=2)] == [h.tokens for h in hyps]


def test_config_and_older_checkpoints(tmp_path):
    model = make(dropout=0.2)
    assert model.config["dropout"] == 0.2 and model.uses_dropout
    model.save(tmp_path / "m.npz")
    assert Seq2Seq.load(tmp_path / "m.npz").config["dropout"] == 0.2
    # dropout and label smoothing are how a model trains, not what it is: weights
    # load across them (to fine-tune without dropout, say); the model keeps its own
    plain = make(dropout=0.0, seed=5)
    assert not np.array_equal(next(plain.named_parameters())[1],
                              next(model.named_parameters())[1])
    plain.load_weights(tmp_path / "m.npz")
    assert plain.config["dropout"] == 0.0 and not plain.uses_dropout
    for (n, a, _), (_, b, _) in zip(plain.named_parameters(), model.named_parameters()):
        np.testing.assert_array_equal(a, b, err_msg=n)
    with pytest.raises(ValueError, match="hidden_size: model 6 vs checkpoint"):
        make(hidden_size=6).load_weights(tmp_path / "m.npz")
    # a configuration stored before dropout existed has no "dropout": it means 0
    assert Seq2Seq.upgrade_config({"attention": "dot"})["dropout"] == 0.0
    with pytest.raises(ValueError, match="dropout must be a number in \\[0, 1\\), got 1"):
        make(dropout=1)


def test_trainer_resumes_dropout_training_exactly(tmp_path):
    """Stopped after 3 of 5 batches of epoch 2 and resumed in a fresh process's
    objects: the same dropout masks, so the same losses and weights as a run
    never stopped; and dropout does change training."""
    from tinyattn.training.trainer import Interrupted

    from .test_train import (
        assert_same_run,
        interrupt_after,
        make_model,
        make_trainer,
        reversal_pairs,
    )

    train, valid = reversal_pairs(40, 0), reversal_pairs(8, 1)
    straight = make_trainer(make_model(dropout=0.3), schedule=True)
    full = straight.fit(train, valid, epochs=3)
    plain = make_trainer(make_model(), schedule=True).fit(train, valid, epochs=3)
    assert [r.train_loss for r in plain] != [r.train_loss for r in full]

    first = make_trainer(make_model(dropout=0.3), schedule=True)
    first.fit(train, valid, epochs=1)
    interrupt_after(first, 3)
    with pytest.raises(Interrupted, match="stopped after 3 of 5 batches of epoch 2"):
        first.fit(train, valid, epochs=3)
    first.save(tmp_path / "ckpt.npz")
    resumed = make_trainer(make_model(dropout=0.3, seed=9), seed=9, schedule=True)
    resumed.resume(tmp_path / "ckpt.npz")
    rest = resumed.fit(train, valid, epochs=3)
    assert_same_run(straight, full, resumed, rest, ("train_loss", "grad_norm", "valid_loss"))


def test_alignment_reads_the_model_without_dropout():
    """The heatmaps' and alignment scores' teacher-forced attention
    (`tinyattn.cli.evaluation.teacher_forced`) is the trained model's, without
    dropout, whatever mode the model was in; the mode is given back."""
    from types import SimpleNamespace

    from tinyattn.cli.evaluation import teacher_forced
    from tinyattn.data import Vocab

    vocab = Vocab.build([list("abcdef")], min_freq=1)
    run = SimpleNamespace(src_vocab=vocab, tgt_vocab=vocab)
    sources, targets = [list("abc"), list("fed")], [list("ab"), list("ddd")]
    with_dropout = Seq2Seq(len(vocab), len(vocab), emb_size=4, hidden_size=5,
                           attention="bahdanau", dropout=0.5, rng=np.random.default_rng(3))
    without = Seq2Seq(len(vocab), len(vocab), emb_size=4, hidden_size=5,
                      attention="bahdanau", rng=np.random.default_rng(3))
    want, _ = teacher_forced(without, run, sources, targets)
    for mode in (True, False):
        got, _ = teacher_forced(with_dropout.train(mode), run, sources, targets)
        assert with_dropout.training is mode
        for g, w in zip(got, want, strict=True):
            np.testing.assert_array_equal(g, w)
