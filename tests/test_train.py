"""Batching, the training loop, checkpoints and exact resumption."""

import os

import numpy as np
import pytest

import tinyattn.training.checkpoint as checkpoint
from tinyattn.seq2seq import Seq2Seq
from tinyattn.training.batching import make_batches, pad_batch
from tinyattn.training.optim import Adam
from tinyattn.training.schedules import StepDecay
from tinyattn.training.trainer import Interrupted, Trainer

PAD, SOS, EOS = 0, 1, 2
IDS = dict(pad_id=PAD, sos_id=SOS, eos_id=EOS)


def reversal_pairs(n, seed, vocab=9):
    rng = np.random.default_rng(seed)
    pairs = []
    for _ in range(n):
        src = rng.integers(3, vocab, rng.integers(2, 6)).tolist()
        pairs.append((src, src[::-1]))
    return pairs


def make_model(seed=0, **kw):
    kw = {"emb_size": 8, "hidden_size": 8, "attention": "bahdanau", **kw}
    return Seq2Seq(9, 9, rng=np.random.default_rng(seed), **kw)


def make_trainer(model, seed=0, lr=0.02, schedule=False):
    opt = Adam(model.named_parameters(), lr=lr)
    sched = StepDecay(opt, step_size=1, gamma=0.9) if schedule else None
    return Trainer(model, opt, batch_size=8, schedule=sched, rng=np.random.default_rng(seed),
                   show_progress=False, **IDS)


def test_pad_batch_teacher_forcing_layout():
    b = pad_batch([([5, 6, 7], [8]), ([3], [4, 5, 6])], **IDS)
    np.testing.assert_array_equal(b.src, [[5, 6, 7], [3, 0, 0]])
    np.testing.assert_array_equal(b.src_lengths, [3, 1])
    np.testing.assert_array_equal(b.tgt_in, [[SOS, 8, 0, 0], [SOS, 4, 5, 6]])
    np.testing.assert_array_equal(b.tgt_out, [[8, EOS, 0, 0], [4, 5, 6, EOS]])
    np.testing.assert_array_equal(b.tgt_lengths, [2, 4])
    assert b.n_tokens == 6
    with pytest.raises(ValueError, match="example 1 has an empty source"):
        pad_batch([([5], [6]), ([], [5])], **IDS)
    b = pad_batch([([5], [6]), ([5], [])], **IDS)  # an empty output is a legitimate target
    np.testing.assert_array_equal(b.tgt_in, [[SOS, 6], [SOS, 0]])
    np.testing.assert_array_equal(b.tgt_out, [[6, EOS], [EOS, 0]])
    np.testing.assert_array_equal(b.tgt_lengths, [2, 1])


@pytest.mark.parametrize("bucket", [False, True])
def test_make_batches_covers_every_example_once(bucket):
    pairs = reversal_pairs(53, 0)
    batches = make_batches(pairs, 8, rng=np.random.default_rng(1), bucket=bucket, **IDS)
    assert [len(b.src) for b in batches].count(8) == 6 and sum(len(b.src) for b in batches) == 53
    seen = sorted(tuple(row[:n]) for b in batches for row, n in zip(b.src, b.src_lengths))
    assert seen == sorted(tuple(s) for s, _ in pairs)
    again = make_batches(pairs, 8, rng=np.random.default_rng(1), bucket=bucket, **IDS)
    assert all(np.array_equal(a.src, b.src) for a, b in zip(batches, again))
    with pytest.raises(ValueError, match="batch_size must be a positive int"):
        make_batches(pairs, 0, **IDS)


def test_training_reduces_loss_and_records_epochs():
    model = make_model()
    trainer = make_trainer(model)
    history = trainer.fit(reversal_pairs(64, 0), reversal_pairs(16, 1), epochs=4)
    assert [r.epoch for r in history] == [1, 2, 3, 4]
    assert history[-1].train_loss < history[0].train_loss
    assert history[-1].valid_loss < history[0].valid_loss
    assert all(r.seconds > 0 and r.grad_norm > 0 and r.lr == 0.02 for r in history)


def test_no_clipping_still_reports_the_norm():
    model = make_model()
    trainer = make_trainer(model)
    trainer.clip = None
    (record,) = trainer.fit(reversal_pairs(16, 0), epochs=1)
    assert record.grad_norm > 0 and record.valid_loss is None


def test_early_stopping(monkeypatch):
    model = make_model()
    trainer = make_trainer(model)
    losses = iter([3.0, 2.0, 2.5, 2.6, 2.7, 1.0])
    monkeypatch.setattr(trainer, "evaluate", lambda pairs: next(losses))
    history = trainer.fit(reversal_pairs(16, 0), reversal_pairs(4, 1), epochs=6, patience=2)
    assert len(history) == 4  # epochs 3 and 4 did not beat epoch 2
    assert trainer.best_valid == 2.0


def assert_same_run(straight, full, resumed, rest, fields):
    """The resumed run's records (``fields``) and final weights equal the straight run's."""
    assert len(rest) == len(full)
    for field in fields:
        assert [getattr(r, field) for r in rest] == [getattr(r, field) for r in full], field
    for (n, a, _), (_, b, _) in zip(straight.model.named_parameters(),
                                    resumed.model.named_parameters()):
        np.testing.assert_array_equal(a, b, err_msg=n)


def test_resume_continues_the_exact_loss_trajectory(tmp_path):
    train, valid = reversal_pairs(40, 0), reversal_pairs(8, 1)
    straight = make_trainer(make_model(), schedule=True)
    full = straight.fit(train, valid, epochs=4)
    first = make_trainer(make_model(), schedule=True)
    first.fit(train, valid, epochs=2, checkpoint_path=tmp_path / "ckpt.npz")
    # a new process: fresh objects with another seed, everything from the checkpoint
    resumed = make_trainer(make_model(seed=9), seed=9, schedule=True)
    resumed.resume(tmp_path / "ckpt.npz")
    rest = resumed.fit(train, valid, epochs=4)
    assert_same_run(straight, full, resumed, rest, ("train_loss", "valid_loss", "lr"))


def interrupt_after(trainer, n: int) -> None:
    """Set ``stop_requested`` after the n-th optimiser step from now, as a Ctrl-C
    handler would between two batches."""
    calls = {"n": 0}
    step = trainer.optimizer.step

    def counting_step():
        step()
        calls["n"] += 1
        trainer.stop_requested = calls["n"] == n

    trainer.optimizer.step = counting_step


def test_interrupted_mid_epoch_resumes_with_the_next_batch(tmp_path):
    """Stop after 3 of 5 batches of epoch 2, save, resume in a fresh trainer:
    the same losses and weights as a run that was never stopped."""
    train, valid = reversal_pairs(40, 0), reversal_pairs(8, 1)
    straight = make_trainer(make_model(), schedule=True)
    full = straight.fit(train, valid, epochs=3)

    first = make_trainer(make_model(), schedule=True)
    first.fit(train, valid, epochs=1)
    interrupt_after(first, 3)
    with pytest.raises(Interrupted, match="stopped after 3 of 5 batches of epoch 2"):
        first.fit(train, valid, epochs=3)
    first.save(tmp_path / "ckpt.npz")
    assert len(first.history) == 1

    resumed = make_trainer(make_model(seed=9), seed=9, schedule=True)
    resumed.resume(tmp_path / "ckpt.npz")
    rest = resumed.fit(train, valid, epochs=3)
    assert_same_run(straight, full, resumed, rest, ("train_loss", "grad_norm", "valid_loss"))


def test_save_load_round_trip(tmp_path):
    model = make_model(attention="local-p", cell="lstm", dtype=np.float32)
    path = tmp_path / "m.npz"
    model.save(path)
    loaded = Seq2Seq.load(path)
    assert loaded.config == model.config
    b = pad_batch(reversal_pairs(3, 2), **IDS)
    assert loaded(*b) == model(*b)
    with np.load(path, allow_pickle=False) as z:  # never pickled
        assert "param/decoder.attn.W_p" in z.files


def test_loading_into_another_configuration_is_refused(tmp_path):
    path = tmp_path / "m.npz"
    make_model(hidden_size=8).save(path)
    other = make_model(hidden_size=6)
    with pytest.raises(ValueError, match=r"another configuration \(hidden_size: model 6 vs "
                                         r"checkpoint 8\)"):
        other.load_weights(path)
    plain = make_model()
    plain.save(path)
    with pytest.raises(ValueError, match="without training state"):
        make_trainer(make_model()).resume(path)


def test_crash_while_saving_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "m.npz"
    model = make_model()
    model.save(path)
    before = path.read_bytes()
    for _, v, _ in model.named_parameters():
        v += 1.0

    def crash(*args, **kwargs):
        raise KeyboardInterrupt  # e.g. Ctrl-C in the middle of the write

    monkeypatch.setattr(checkpoint.os, "replace", crash)
    with pytest.raises(KeyboardInterrupt):
        model.save(path)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["m.npz"]  # no temp file left behind
