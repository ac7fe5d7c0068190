"""NoamSchedule (Vaswani et al. 2017, §5.3; docs/equations.md §9.7): the formula by
hand, its shape, the first update's rate, one step per batch in the Trainer, bad
arguments, state round trips and an exact resume."""

import math

import numpy as np
import pytest

import tinyattn as ta
from tinyattn.training.batching import make_batches
from tinyattn.training.optim import SGD, Adam
from tinyattn.training.schedules import NoamSchedule, PlateauDecay, StepDecay
from tinyattn.training.trainer import Interrupted, Trainer

from .test_train import IDS, assert_same_run, interrupt_after, make_model, reversal_pairs


def _sgd(lr=1.0):
    return SGD([("w", np.zeros(2), np.zeros(2))], lr=lr)


# ----- the schedule on its own ------------------------------------------------------
def test_the_formula_by_hand():
    # factor · d_model^-1/2 = 2 / 4 = 0.5;  warmup^-3/2 = 4^-1.5 = 1/8
    sched = NoamSchedule(_sgd(), d_model=16, warmup=4, factor=2.0)
    by_hand = {1: 0.5 * 1 / 8,         # warm-up: 0.5 · s / 8
               2: 0.5 * 2 / 8,
               3: 0.5 * 3 / 8,
               4: 0.5 * 4 / 8,         # both terms 1/2: the peak 0.25 = 2 / sqrt(16 · 4)
               9: 0.5 / 3,             # decay: 0.5 / sqrt(s)
               16: 0.5 / 4,
               100: 0.5 / 10}
    for step, lr in by_hand.items():
        assert sched.lr_at(step) == pytest.approx(lr, rel=1e-14), step
    # the paper's base model: d_model 512, warmup 4000
    paper = NoamSchedule(_sgd(), d_model=512, warmup=4000)
    assert paper.lr_at(4000) == pytest.approx(1 / math.sqrt(512 * 4000), rel=1e-14)
    assert paper.lr_at(4000) == pytest.approx(6.988e-4, abs=1e-7)
    assert paper.lr_at(1) == pytest.approx(512 ** -0.5 * 4000 ** -1.5, rel=1e-14)
    assert paper.lr_at(16000) == pytest.approx(paper.lr_at(4000) / 2, rel=1e-14)


def test_step_counts_from_one_and_sets_the_optimiser_rate():
    opt = _sgd(lr=123.0)
    sched = NoamSchedule(opt, d_model=16, warmup=4, factor=2.0)
    assert opt.lr == 123.0 and sched.step_count == 0  # built: nothing changed yet
    rates = [sched.step() for _ in range(9)]
    assert rates == [sched.lr_at(s) for s in range(1, 10)]
    assert rates[0] == 0.0625 and rates[3] == 0.25 and opt.lr == rates[-1]
    assert sched.step_count == 9


@pytest.mark.parametrize("d_model, warmup, factor", [(512, 4000, 1.0), (8, 3, 0.1),
                                                     (64, 1, 2.0), (1, 50, 1e-3)])
def test_the_peak_is_at_warmup_rising_linearly_then_falling(d_model, warmup, factor):
    sched = NoamSchedule(_sgd(), d_model=d_model, warmup=warmup, factor=factor)
    steps = np.arange(1, 3 * warmup + 3)
    lrs = np.array([sched.lr_at(int(s)) for s in steps])
    assert int(steps[np.argmax(lrs)]) == warmup
    assert lrs.max() == pytest.approx(factor / math.sqrt(d_model * warmup), rel=1e-14)
    assert np.all(np.diff(lrs[:warmup]) > 0) and np.all(np.diff(lrs[warmup - 1:]) < 0)
    np.testing.assert_allclose(lrs[:warmup] / steps[:warmup], lrs[0], rtol=1e-13)  # linear
    after = steps[warmup - 1:]
    np.testing.assert_allclose(lrs[warmup - 1:] * np.sqrt(after),  # 1 / sqrt(step)
                               factor / math.sqrt(d_model), rtol=1e-13)


def test_the_first_update_uses_lr_1_not_the_optimisers_rate():
    w, g = np.zeros(2), np.array([1.0, -2.0])
    opt = SGD([("w", w, g)], lr=123.0)
    sched = NoamSchedule(opt, d_model=4, warmup=10)
    sched.step()
    opt.step()
    np.testing.assert_array_equal(w, -sched.lr_at(1) * g)
    assert sched.lr_at(1) == 0.5 * 10 ** -1.5
    sched.step()
    opt.step()
    np.testing.assert_allclose(w, -(sched.lr_at(1) + sched.lr_at(2)) * g, rtol=1e-15)


@pytest.mark.parametrize("kwargs, message", [
    ({"d_model": 0}, "d_model must be a positive int, got 0"),
    ({"d_model": 2**25}, r"d_model must be a positive int of at most 16777216 \(2\*\*24\), "
                         "got 33554432"),
    ({"d_model": 512.0}, "d_model must be a positive int, got 512.0"),
    ({"d_model": True}, "d_model must be a positive int, got True"),
    ({"d_model": "512"}, "d_model must be a positive int, got '512'"),
    ({"warmup": 0}, "warmup must be a positive int, got 0"),
    ({"warmup": -5}, "warmup must be a positive int, got -5"),
    ({"warmup": 4000.0}, "warmup must be a positive int, got 4000.0"),
    ({"warmup": None}, "warmup must be a positive int, got None"),
    ({"factor": 0.0}, r"factor must be a number in \(0, inf\), got 0.0"),
    ({"factor": -1.0}, r"factor must be a number in \(0, inf\), got -1.0"),
    ({"factor": float("nan")}, r"factor must be a number in \(0, inf\), got nan"),
    ({"factor": float("inf")}, r"factor must be a number in \(0, inf\), got inf"),
    ({"factor": "1"}, r"factor must be a number in \(0, inf\), got '1'"),
])
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        NoamSchedule(_sgd(), **{"d_model": 16, "warmup": 4, **kwargs})


def test_bad_optimizer_and_step():
    with pytest.raises(TypeError, match="optimizer must be an SGD or Adam optimiser, got str"):
        NoamSchedule("adam", d_model=16, warmup=4)
    with pytest.raises(TypeError, match="required keyword-only argument"):
        NoamSchedule(_sgd(), d_model=16)  # no default warmup: the paper's 4000 is no default
    sched = NoamSchedule(_sgd(), d_model=16, warmup=4)
    for step in (0, -1, 1.0, True):
        with pytest.raises(ValueError, match=f"step must be a positive int, got {step}"):
            sched.lr_at(step)


def test_the_schedule_protocol():
    assert NoamSchedule.per_step is True and NoamSchedule.uses_valid_loss is False
    assert StepDecay.per_step is False and PlateauDecay.per_step is False
    assert ta.NoamSchedule is NoamSchedule and ta.training.NoamSchedule is NoamSchedule


# ----- state ----------------------------------------------------------------------
def test_state_dict_round_trip(tmp_path):
    make = lambda lr=1.0: NoamSchedule(_sgd(lr), d_model=16, warmup=4, factor=2.0)  # noqa: E731
    reference = make()
    want = [reference.step() for _ in range(9)]
    first = make()
    assert first.state_dict()["step_count"] == 0
    for _ in range(5):
        first.step()
    np.savez(tmp_path / "s.npz", **first.state_dict())
    with np.load(tmp_path / "s.npz", allow_pickle=False) as z:
        saved = {k: z[k] for k in z.files}
    assert {k: v.dtype.kind for k, v in saved.items()} == {
        "step_count": "i", "d_model": "i", "warmup": "i", "factor": "f"}
    second = make(lr=7.0)
    second.load_state_dict(saved)
    assert second.step_count == 5 and second.optimizer.lr == want[4]  # the last step's rate
    assert [second.step() for _ in range(4)] == want[5:]
    fresh = make(lr=7.0)
    fresh.load_state_dict(make().state_dict())  # step 0: no rate yet, lr left alone
    assert fresh.step_count == 0 and fresh.optimizer.lr == 7.0


@pytest.mark.parametrize("edit, error, message", [
    (lambda s: {**s, "warmup": np.array(8)}, ValueError,
     r"state_dict\['warmup'\] is 8, but this NoamSchedule has warmup=4: a resumed run"),
    (lambda s: {**s, "d_model": np.array(512)}, ValueError,
     r"state_dict\['d_model'\] is 512, but this NoamSchedule has d_model=16"),
    (lambda s: {**s, "factor": np.array(1.0)}, ValueError,
     r"state_dict\['factor'\] is 1.0, but this NoamSchedule has factor=2.0"),
    (lambda s: {k: v for k, v in s.items() if k != "factor"}, ValueError,
     r"state_dict must be .*\(a NoamSchedule's\), got the keys \['d_model', 'step_count', "),
    (lambda s: {"base_lr": np.array(1.0), "epoch": np.array(2)}, ValueError,  # StepDecay's
     r"got the keys \['base_lr', 'epoch'\]"),
    (lambda s: {**s, "step_count": np.array(-1)}, ValueError,
     r"state_dict\['step_count'\] must be an int >= 0, got -1"),
    (lambda s: {**s, "step_count": np.array(3.0)}, ValueError,
     r"state_dict\['step_count'\] must be a 0-d int array, got shape \(\) and dtype float64"),
    (lambda s: {**s, "warmup": np.array([4])}, ValueError,
     r"state_dict\['warmup'\] must be a 0-d int array, got shape \(1,\)"),
    (lambda s: list(s.items()), TypeError, "state must be a mapping"),
])
def test_load_state_dict_refuses_and_changes_nothing(edit, error, message):
    source = NoamSchedule(_sgd(), d_model=16, warmup=4, factor=2.0)
    for _ in range(3):
        source.step()
    sched = NoamSchedule(_sgd(0.5), d_model=16, warmup=4, factor=2.0)
    sched.step()
    with pytest.raises(error, match=message):
        sched.load_state_dict(edit(source.state_dict()))
    assert sched.step_count == 1 and sched.optimizer.lr == sched.lr_at(1)


# ----- the trainer ----------------------------------------------------------------
def make_trainer(model, seed=0, warmup=3, **kw):
    opt = Adam(model.named_parameters(), lr=5.0, betas=(0.9, 0.98), eps=1e-9)  # lr unused
    sched = NoamSchedule(opt, d_model=8, warmup=warmup, factor=0.1)  # peak 0.1 / sqrt(24)
    return Trainer(model, opt, batch_size=8, schedule=sched, rng=np.random.default_rng(seed),
                   show_progress=False, **IDS, **kw)


def _record_rates(trainer):
    """The optimiser's lr at each of its steps, from now on."""
    rates, step = [], trainer.optimizer.step

    def recording_step():
        rates.append(trainer.optimizer.lr)
        step()

    trainer.optimizer.step = recording_step
    return rates


def test_the_trainer_steps_it_once_per_batch_before_each_update():
    train = reversal_pairs(40, 0)
    n_batches = len(make_batches(train, 8, **IDS))
    assert n_batches == 5
    trainer = make_trainer(make_model())
    rates = _record_rates(trainer)
    history = trainer.fit(train, reversal_pairs(8, 1), epochs=3)
    sched = trainer.schedule
    assert sched.step_count == len(rates) == 3 * n_batches  # never at epoch end
    assert rates == [sched.lr_at(s) for s in range(1, 3 * n_batches + 1)]
    assert rates[0] == sched.lr_at(1) != 5.0  # the first update: lr(1), not Adam's own
    # each record's lr: its epoch's last rate
    assert [r.lr for r in history] == [rates[n_batches * e - 1] for e in (1, 2, 3)]


def test_an_epoch_schedule_is_still_stepped_at_epoch_end_only():
    model = make_model()
    opt = Adam(model.named_parameters(), lr=0.02)
    trainer = Trainer(model, opt, batch_size=8, rng=np.random.default_rng(0),
                      schedule=StepDecay(opt, step_size=1, gamma=0.5), show_progress=False,
                      **IDS)
    rates = _record_rates(trainer)
    trainer.fit(reversal_pairs(40, 0), epochs=3)
    assert rates == [0.02] * 5 + [0.01] * 5 + [0.005] * 5 and opt.lr == 0.0025


def test_resume_continues_the_same_rates(tmp_path):
    """2 epochs straight against 1 epoch, save, resume in a fresh trainer, 1 epoch:
    the same losses, rates and weights."""
    train, valid = reversal_pairs(40, 0), reversal_pairs(8, 1)
    straight = make_trainer(make_model())
    rates = _record_rates(straight)
    full = straight.fit(train, valid, epochs=2)

    first = make_trainer(make_model())
    first.fit(train, valid, epochs=1, checkpoint_path=tmp_path / "ckpt.npz")
    resumed = make_trainer(make_model(seed=9), seed=9)  # a new process
    resumed.resume(tmp_path / "ckpt.npz")
    assert resumed.schedule.step_count == 5 and resumed.optimizer.lr == rates[4]
    resumed_rates = _record_rates(resumed)
    rest = resumed.fit(train, valid, epochs=2)
    assert resumed_rates == rates[5:]
    assert_same_run(straight, full, resumed, rest, ("train_loss", "grad_norm", "valid_loss",
                                                    "lr"))
    assert resumed.batch_losses == straight.batch_losses
    assert resumed.schedule.step_count == straight.schedule.step_count == 10


def test_an_interrupted_epoch_resumes_with_the_next_rate(tmp_path):
    train, valid = reversal_pairs(40, 0), reversal_pairs(8, 1)
    straight = make_trainer(make_model())
    full = straight.fit(train, valid, epochs=2)

    first = make_trainer(make_model())
    interrupt_after(first, 7)  # in epoch 2, past the peak at step 3
    with pytest.raises(Interrupted, match="stopped after 2 of 5 batches of epoch 2"):
        first.fit(train, valid, epochs=2)
    first.save(tmp_path / "ckpt.npz")
    resumed = make_trainer(make_model(seed=9), seed=9)
    resumed.resume(tmp_path / "ckpt.npz")
    assert resumed.schedule.step_count == 7
    rest = resumed.fit(train, valid, epochs=2)
    assert_same_run(straight, full, resumed, rest, ("train_loss", "grad_norm", "valid_loss",
                                                    "lr"))


def test_resuming_with_another_warmup_is_refused_and_changes_nothing(tmp_path):
    path = tmp_path / "ckpt.npz"
    make_trainer(make_model()).fit(reversal_pairs(16, 0), epochs=1, checkpoint_path=path)
    model = make_model(seed=5)
    before = {n: v.copy() for n, v, _ in model.named_parameters()}
    trainer = make_trainer(model, warmup=4)
    with pytest.raises(ValueError, match=r"ckpt.npz': the schedule state is unusable: "
                                         r"state_dict\['warmup'\] is 3, but this NoamSchedule "
                                         r"has warmup=4"):
        trainer.resume(path)
    assert all(np.array_equal(v, before[n]) for n, v, _ in model.named_parameters())
    assert trainer.history == [] and trainer.schedule.step_count == 0
    assert trainer.optimizer.t == 0 and trainer.optimizer.lr == 5.0
