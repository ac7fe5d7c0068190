"""PlateauDecay (lr decay on a validation plateau) and the trainer's best
checkpoint: hand-made decisions, state round trips, bad arguments, exact resume."""

import json
import os

import numpy as np
import pytest

import tinyattn as ta
from tinyattn.seq2seq import Seq2Seq
from tinyattn.training.checkpoint import load_checkpoint
from tinyattn.training.optim import SGD, Adam
from tinyattn.training.schedules import PlateauDecay, StepDecay
from tinyattn.training.trainer import Diverged, Interrupted, Trainer

from .test_train import IDS, assert_same_run, make_model, reversal_pairs


def _sgd(lr=1.0):
    return SGD([("w", np.zeros(2), np.zeros(2))], lr=lr)


def _lrs(sched, losses):
    return [sched.step(loss) for loss in losses]


# ----- PlateauDecay on its own ------------------------------------------------------
def test_plateau_decay_decisions_by_hand():
    # threshold 0.1: a loss improves on best when best - loss > 0.1 * best
    sched = PlateauDecay(_sgd(1.0), factor=0.5, patience=2, threshold=0.1)
    losses = [10.0,   # first loss: best 10
              9.5,    # 0.5 is not > 1.0: bad 1
              8.5,    # 1.5 > 1.0: best 8.5, bad 0
              8.0,    # 0.5 is not > 0.85: bad 1
              8.4,    # bad 2 = patience: decay, bad 0
              9.0,    # bad 1
              9.0,    # bad 2: decay
              1.0]    # improves
    assert _lrs(sched, losses) == [1.0, 1.0, 1.0, 1.0, 0.5, 0.5, 0.25, 0.25]
    assert sched.best == 1.0 and sched.bad_epochs == 0 and sched.optimizer.lr == 0.25


def test_plateau_decay_patience_one_and_no_threshold():
    sched = PlateauDecay(_sgd(1.0), factor=0.5, patience=1, threshold=0.0)
    # an equal loss is no improvement; any decrease is one
    assert _lrs(sched, [3.0, 3.0, 2.0, 2.5, 1.999]) == [1.0, 0.5, 0.5, 0.25, 0.25]


def test_plateau_decay_threshold_is_relative_to_the_best_even_below_zero():
    sched = PlateauDecay(_sgd(1.0), factor=0.5, patience=2, threshold=0.1)
    sched.step(-10.0)
    sched.step(-10.5)  # improves by 0.5, not by more than 0.1 * |-10| = 1
    assert sched.best == -10.0 and sched.bad_epochs == 1
    sched.step(-11.5)
    assert sched.best == -11.5 and sched.bad_epochs == 0 and sched.optimizer.lr == 1.0


def test_plateau_decay_min_lr_floor():
    sched = PlateauDecay(_sgd(1.0), factor=0.1, patience=1, min_lr=0.05)
    assert _lrs(sched, [1.0, 1.0, 1.0, 1.0]) == [1.0, 0.1, 0.05, 0.05]
    low = PlateauDecay(_sgd(0.01), factor=0.1, patience=1, min_lr=0.05)  # below it already
    assert _lrs(low, [1.0, 1.0]) == [0.01, 0.01]  # never raised to min_lr
    tiny = PlateauDecay(_sgd(1e-320), factor=1e-5, patience=1)  # lr * factor underflows to 0
    assert _lrs(tiny, [1.0, 1.0]) == [1e-320, 1e-320]


def test_plateau_decay_state_dict_round_trip(tmp_path):
    losses = [5.0, 4.0, 4.1, 4.2, 3.0, 3.5, 3.6, 3.7]
    make = lambda lr: PlateauDecay(_sgd(lr), factor=0.5, patience=2)  # noqa: E731
    want = _lrs(make(1.0), losses)
    assert want == [1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.25, 0.25]

    fresh = make(1.0).state_dict()  # before any step: best is inf
    assert fresh["best"] == np.inf and fresh["bad_epochs"] == 0 and fresh["lr"] == 1.0
    first = make(1.0)
    _lrs(first, losses[:3])  # mid-plateau: best 4.0, one bad epoch
    np.savez(tmp_path / "s.npz", **first.state_dict())
    with np.load(tmp_path / "s.npz", allow_pickle=False) as z:
        saved = {k: z[k] for k in z.files}
    second = make(0.3)  # another lr: the state's replaces it
    second.load_state_dict(saved)
    assert (second.best, second.bad_epochs, second.optimizer.lr) == (4.0, 1, 1.0)
    assert _lrs(second, losses[3:]) == want[3:]
    again = make(1.0)
    again.load_state_dict(fresh)  # inf round-trips
    assert _lrs(again, losses) == want


@pytest.mark.parametrize("kwargs, message", [
    ({"factor": 0.0}, r"factor must be a number in \(0, 1\), got 0.0"),
    ({"factor": 1.0}, r"factor must be a number in \(0, 1\), got 1.0"),
    ({"factor": float("nan")}, r"factor must be a number in \(0, 1\), got nan"),
    ({"factor": "0.5"}, r"factor must be a number in \(0, 1\), got '0.5'"),
    ({"patience": 0}, "patience must be a positive int, got 0"),
    ({"patience": 1.0}, "patience must be a positive int, got 1.0"),
    ({"patience": True}, "patience must be a positive int, got True"),
    ({"min_lr": -1e-3}, r"min_lr must be a number in \[0, inf\), got -0.001"),
    ({"min_lr": float("inf")}, r"min_lr must be a number in \[0, inf\), got inf"),
    ({"threshold": -0.1}, r"threshold must be a number in \[0, inf\), got -0.1"),
    ({"threshold": float("inf")}, r"threshold must be a number in \[0, inf\), got inf"),
])
def test_plateau_decay_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        PlateauDecay(_sgd(), **kwargs)


def test_plateau_decay_bad_optimizer_and_loss():
    with pytest.raises(TypeError, match="optimizer must be an SGD or Adam optimiser, got str"):
        PlateauDecay("adam")
    sched = PlateauDecay(_sgd())
    for loss in (float("nan"), float("inf"), None, "1.0", np.array([1.0])):
        with pytest.raises(ValueError, match="valid_loss must be a finite number"):
            sched.step(loss)
    assert sched.best == np.inf and sched.bad_epochs == 0  # nothing counted


@pytest.mark.parametrize("edit, message", [
    (lambda s: {k: v for k, v in s.items() if k != "lr"}, r"state_dict must be .*got the keys"),
    (lambda s: {**s, "epoch": np.array(1)}, r"state_dict must be .*'epoch'"),
    (lambda s: {**s, "bad_epochs": np.array(-1)}, r"state_dict\['bad_epochs'\] must be an int"),
    (lambda s: {**s, "bad_epochs": np.array(1.0)}, r"state_dict\['bad_epochs'\] must be a 0-d"),
    (lambda s: {**s, "best": np.array(np.nan)}, r"state_dict\['best'\] must be a finite"),
    (lambda s: {**s, "best": np.array(-np.inf)}, r"state_dict\['best'\] must be a finite"),
    (lambda s: {**s, "best": np.array("x")}, r"state_dict\['best'\] must be a 0-d float"),
    (lambda s: {**s, "lr": np.array([1.0, 2.0])}, r"state_dict\['lr'\] must be a 0-d float"),
    (lambda s: {**s, "lr": np.array(0.0)}, r"state_dict\['lr'\] must be a number in \(0, inf\)"),
])
def test_plateau_decay_load_state_dict_refuses_and_changes_nothing(edit, message):
    source = PlateauDecay(_sgd(0.5))
    source.step(2.0)
    sched = PlateauDecay(_sgd(1.0))
    with pytest.raises(ValueError, match=message):
        sched.load_state_dict(edit(source.state_dict()))
    assert (sched.best, sched.bad_epochs, sched.optimizer.lr) == (np.inf, 0, 1.0)
    with pytest.raises(TypeError, match="state must be a mapping"):
        sched.load_state_dict([("lr", 1.0)])


def test_the_schedule_protocol():
    assert PlateauDecay.uses_valid_loss is True and StepDecay.uses_valid_loss is False
    assert ta.PlateauDecay is PlateauDecay and ta.training.PlateauDecay is PlateauDecay


# ----- the trainer with PlateauDecay ------------------------------------------------
def make_trainer(model, seed=0, lr=0.02, schedule="plateau", **plateau):
    opt = Adam(model.named_parameters(), lr=lr)
    sched = (PlateauDecay(opt, **{"factor": 0.5, "patience": 1, "threshold": 0.2, **plateau})
             if schedule == "plateau" else None)
    return Trainer(model, opt, batch_size=8, schedule=sched, rng=np.random.default_rng(seed),
                   show_progress=False, **IDS)


def test_trainer_lr_drops_after_a_plateau(monkeypatch):
    trainer = make_trainer(make_model(), threshold=0.0)
    losses = iter([3.0, 2.0, 2.5, 2.6, 1.0, 1.5])
    monkeypatch.setattr(trainer, "evaluate", lambda pairs: next(losses))
    history = trainer.fit(reversal_pairs(16, 0), reversal_pairs(4, 1), epochs=6)
    # each record holds the rate its epoch trained with: epochs 3 and 4 are bad
    assert [r.lr for r in history] == [0.02, 0.02, 0.02, 0.01, 0.005, 0.005]
    assert trainer.optimizer.lr == 0.0025  # epoch 6 was bad too


def test_plateau_decay_needs_validation_pairs():
    trainer = make_trainer(make_model())
    with pytest.raises(ValueError, match="valid_pairs is needed: the schedule PlateauDecay "
                                         "steps on the validation loss"):
        trainer.fit(reversal_pairs(16, 0), epochs=1)
    assert trainer.history == [] and trainer.batch_losses == []  # refused before training


def test_trainer_refuses_a_bad_schedule():
    model = make_model()
    opt = Adam(model.named_parameters())
    args = dict(rng=np.random.default_rng(0), show_progress=False, **IDS)
    with pytest.raises(TypeError, match="schedule must be None or an lr schedule .* got str"):
        Trainer(model, opt, schedule="plateau", **args)
    other = Adam(model.named_parameters())
    with pytest.raises(ValueError, match="schedule must be built on this trainer's optimizer, "
                                         "got a PlateauDecay of another optimiser"):
        Trainer(model, opt, schedule=PlateauDecay(other), **args)


def test_resume_with_plateau_decay_is_exact(tmp_path):
    """Stop mid-epoch after the lr has decayed and with a bad epoch counted, resume
    in a fresh trainer: the same losses, rates, weights, schedule state and best
    file as a run never stopped."""
    train, valid = reversal_pairs(40, 0), reversal_pairs(8, 1)
    straight = make_trainer(make_model(), patience=2)
    full = straight.fit(train, valid, epochs=6, best_path=tmp_path / "best_straight.npz")
    assert [r.lr for r in full] == [0.02, 0.02, 0.02, 0.01, 0.01, 0.005]

    first = make_trainer(make_model(), patience=2)
    first.fit(train, valid, epochs=4, best_path=tmp_path / "best.npz")
    assert first.schedule.bad_epochs == 1 and first.optimizer.lr == 0.01
    calls = {"n": 0}
    step = first.optimizer.step

    def counting_step():  # a Ctrl-C during epoch 5
        step()
        calls["n"] += 1
        first.stop_requested = calls["n"] == 2

    first.optimizer.step = counting_step
    with pytest.raises(Interrupted, match="stopped after 2 of 5 batches of epoch 5"):
        first.fit(train, valid, epochs=6, best_path=tmp_path / "best.npz")
    first.save(tmp_path / "ckpt.npz")

    resumed = make_trainer(make_model(seed=9), seed=9, patience=2)
    resumed.resume(tmp_path / "ckpt.npz")
    assert resumed.optimizer.lr == 0.01 and resumed.schedule.bad_epochs == 1
    rest = resumed.fit(train, valid, epochs=6, best_path=tmp_path / "best.npz")
    assert_same_run(straight, full, resumed, rest, ("train_loss", "grad_norm", "valid_loss",
                                                    "lr"))
    assert resumed.optimizer.lr == straight.optimizer.lr
    for key, value in straight.schedule.state_dict().items():
        assert resumed.schedule.state_dict()[key] == value, key
    _assert_same_model_file(tmp_path / "best.npz", tmp_path / "best_straight.npz")
    assert int(load_checkpoint(tmp_path / "best.npz").extra["best_epoch"]) == 6


def _assert_same_model_file(path, other):
    a, b = load_checkpoint(path), load_checkpoint(other)
    assert a.config == b.config and sorted(a.params) == sorted(b.params)
    for name in a.params:
        np.testing.assert_array_equal(a.params[name], b.params[name], err_msg=name)
    assert sorted(a.extra) == sorted(b.extra)
    for key in a.extra:
        np.testing.assert_array_equal(a.extra[key], b.extra[key], err_msg=key)


# ----- the best checkpoint ------------------------------------------------------------
def test_best_path_holds_the_best_epochs_weights(tmp_path, monkeypatch):
    model = make_model()
    trainer = make_trainer(model, schedule=None)
    trainer.checkpoint_extra = {"src_vocab": np.array('["a", "b"]')}
    best = tmp_path / "best.npz"
    losses = iter([3.0, 2.0, 2.5, 1.5, 1.8])
    monkeypatch.setattr(trainer, "evaluate", lambda pairs: next(losses))
    snapshots, files = {}, {}

    def on_epoch(record):
        snapshots[record.epoch] = {n: v.copy() for n, v, _ in model.named_parameters()}
        files[record.epoch] = (best.read_bytes(), os.stat(best).st_mtime_ns)

    trainer.fit(reversal_pairs(16, 0), reversal_pairs(4, 1), epochs=5, best_path=best,
                checkpoint_path=tmp_path / "ckpt.npz", on_epoch=on_epoch)
    assert files[3] == files[2] and files[5] == files[4]  # worse epochs: not rewritten
    assert files[2] != files[1] and files[4] != files[3]
    loaded = Seq2Seq.load(best)
    assert loaded.config == model.config
    for name, value, _ in loaded.named_parameters():
        np.testing.assert_array_equal(value, snapshots[4][name], err_msg=name)
        assert not np.array_equal(value, snapshots[5][name])
    ckpt = load_checkpoint(best)
    assert ckpt.optimizer_state is None and "trainer" not in ckpt.extra
    assert int(ckpt.extra["best_epoch"]) == 4 and float(ckpt.extra["best_valid_loss"]) == 1.5
    assert str(ckpt.extra["src_vocab"]) == '["a", "b"]'
    with pytest.raises(ValueError, match="best.npz' is a model checkpoint without training"):
        make_trainer(make_model()).resume(best)  # a model to load, not a run to resume
    assert sorted(os.listdir(tmp_path)) == ["best.npz", "ckpt.npz"]  # no temporaries left


def test_a_diverged_epoch_never_writes_the_best_file(tmp_path):
    model = make_model()
    trainer = make_trainer(model, schedule=None)
    best = tmp_path / "best.npz"
    train, valid = reversal_pairs(16, 0), reversal_pairs(4, 1)
    trainer.fit(train, valid, epochs=1, best_path=best)
    good = best.read_bytes()
    next(model.named_parameters())[1][0] = np.nan
    with pytest.raises(Diverged, match="training diverged at epoch 2"):
        trainer.fit(train, valid, epochs=2, best_path=best)
    assert best.read_bytes() == good


def test_a_crash_between_the_best_file_and_the_checkpoint_is_redone(tmp_path):
    """The best file is written before the checkpoint: a run that dies between
    the two redoes that epoch on resume and ends with the same best file."""
    train, valid = reversal_pairs(24, 0), reversal_pairs(8, 1)
    straight = make_trainer(make_model(), schedule=None)
    straight.fit(train, valid, epochs=3, best_path=tmp_path / "best_straight.npz")

    first = make_trainer(make_model(), schedule=None)
    save = first.save

    def dying_save(path):  # the process is killed while saving epoch 2's checkpoint
        if len(first.history) == 2:
            raise KeyboardInterrupt
        save(path)

    first.save = dying_save
    with pytest.raises(KeyboardInterrupt):
        first.fit(train, valid, epochs=3, checkpoint_path=tmp_path / "ckpt.npz",
                  best_path=tmp_path / "best.npz")
    assert int(load_checkpoint(tmp_path / "best.npz").extra["best_epoch"]) == 2
    resumed = make_trainer(make_model(seed=9), seed=9, schedule=None)
    resumed.resume(tmp_path / "ckpt.npz")
    assert len(resumed.history) == 1
    resumed.fit(train, valid, epochs=3, best_path=tmp_path / "best.npz")
    _assert_same_model_file(tmp_path / "best.npz", tmp_path / "best_straight.npz")


def test_best_path_arguments(tmp_path):
    train, valid = reversal_pairs(16, 0), reversal_pairs(4, 1)
    trainer = make_trainer(make_model(), schedule=None)
    with pytest.raises(TypeError, match="best_path must be a file path .* got int"):
        trainer.fit(train, valid, epochs=1, best_path=3)
    with pytest.raises(TypeError, match="checkpoint_path must be a file path .* got float"):
        trainer.fit(train, valid, epochs=1, checkpoint_path=1.5)
    with pytest.raises(ValueError, match="best_path needs valid_pairs"):
        trainer.fit(train, epochs=1, best_path=tmp_path / "best.npz")
    with pytest.raises(ValueError, match="best_path must be another file than checkpoint_path"):
        trainer.fit(train, valid, epochs=1, best_path=tmp_path / "m.npz",
                    checkpoint_path=str(tmp_path / "m.npz"))
    with pytest.raises(FileNotFoundError, match="best_path .*no_such_dir.* does not exist"):
        trainer.fit(train, valid, epochs=1, best_path=tmp_path / "no_such_dir" / "best.npz")
    with pytest.raises(IsADirectoryError, match="best_path .* is a directory"):
        trainer.fit(train, valid, epochs=1, best_path=tmp_path)
    mine = tmp_path / "mine.npz"
    mine.write_bytes(b"a user's file")
    with pytest.raises(FileExistsError, match="best_path .*mine.npz' already exists and this "
                                              "trainer has finished no epoch"):
        trainer.fit(train, valid, epochs=1, best_path=mine)
    assert mine.read_bytes() == b"a user's file" and trainer.history == []


# ----- damaged schedule state in a checkpoint ----------------------------------------
def _rewrite(path, edit):
    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files}
    edit(arrays)
    np.savez(path, **arrays)


@pytest.mark.parametrize("edit, why", [
    (lambda a: a.update({"extra/schedule/best": np.array(np.nan)}),
     r"state_dict\['best'\] must be a finite number, got nan"),
    (lambda a: a.update({"extra/schedule/bad_epochs": np.array("x")}),
     r"state_dict\['bad_epochs'\] must be a 0-d int array"),
    (lambda a: a.pop("extra/schedule/lr"), r"state_dict must be .*got the keys"),
    (lambda a: [a.pop(k) for k in list(a) if k.startswith("extra/schedule/")],
     r"state_dict must be .*got the keys \[\]"),
])
def test_damaged_schedule_state_is_a_clear_error(tmp_path, edit, why):
    path = tmp_path / "ckpt.npz"
    make_trainer(make_model()).fit(reversal_pairs(16, 0), reversal_pairs(4, 1), epochs=2,
                                   checkpoint_path=path)
    _rewrite(path, edit)
    model = make_model(seed=5)
    before = {n: v.copy() for n, v, _ in model.named_parameters()}
    trainer = make_trainer(model, lr=0.7)
    with pytest.raises(ValueError, match="ckpt.npz': the schedule state is unusable: " + why):
        trainer.resume(path)
    # all or nothing: the model, optimiser, schedule and trainer are as they were
    assert all(np.array_equal(v, before[n]) for n, v, _ in model.named_parameters())
    assert trainer.history == [] and trainer.optimizer.lr == 0.7
    assert trainer.schedule.best == np.inf and trainer.optimizer.t == 0


def test_a_step_decay_checkpoint_does_not_resume_a_plateau_schedule(tmp_path):
    path = tmp_path / "ckpt.npz"
    model = make_model()
    opt = Adam(model.named_parameters(), lr=0.02)
    Trainer(model, opt, batch_size=8, schedule=StepDecay(opt, step_size=1, gamma=0.5),
            rng=np.random.default_rng(0), show_progress=False, **IDS).fit(
        reversal_pairs(16, 0), epochs=1, checkpoint_path=path)
    with pytest.raises(ValueError, match=r"schedule state is unusable: state_dict must be .*"
                                         r"got the keys \['base_lr', 'epoch'\]"):
        make_trainer(make_model()).resume(path)
    state = json.loads(str(load_checkpoint(path).extra["trainer"]))
    assert len(state["history"]) == 1


def test_a_crash_in_the_first_epoch_after_a_resume_is_redone(tmp_path):
    """Stopped in epoch 1 (a checkpoint, no finished epoch), resumed, then killed
    between the best file and the checkpoint of epoch 1: the best file exists while
    the history is empty. A resumed trainer owns it, so a second resume finishes."""
    train, valid = reversal_pairs(24, 0), reversal_pairs(8, 1)
    straight = make_trainer(make_model(), schedule=None)
    straight.fit(train, valid, epochs=2, best_path=tmp_path / "best_straight.npz")

    first = make_trainer(make_model(), schedule=None)
    step = first.optimizer.step

    def interrupting_step():  # a Ctrl-C in the middle of epoch 1
        step()
        first.stop_requested = True

    first.optimizer.step = interrupting_step
    with pytest.raises(Interrupted, match="of epoch 1"):
        first.fit(train, valid, epochs=2, best_path=tmp_path / "best.npz")
    first.save(tmp_path / "ckpt.npz")

    second = make_trainer(make_model(seed=9), seed=9, schedule=None)
    second.resume(tmp_path / "ckpt.npz")
    save = second.save

    def dying_save(path):  # killed while saving epoch 1's checkpoint
        raise KeyboardInterrupt

    second.save = dying_save
    with pytest.raises(KeyboardInterrupt):
        second.fit(train, valid, epochs=2, checkpoint_path=tmp_path / "ckpt.npz",
                   best_path=tmp_path / "best.npz")
    second.save = save
    assert (tmp_path / "best.npz").exists()
    third = make_trainer(make_model(seed=8), seed=8, schedule=None)
    third.resume(tmp_path / "ckpt.npz")
    assert not third.history
    third.fit(train, valid, epochs=2, best_path=tmp_path / "best.npz")
    _assert_same_model_file(tmp_path / "best.npz", tmp_path / "best_straight.npz")
    fresh = make_trainer(make_model(), schedule=None)  # not resumed: still refused
    with pytest.raises(FileExistsError, match="resumed no checkpoint"):
        fresh.fit(train, valid, epochs=1, best_path=tmp_path / "best.npz")
