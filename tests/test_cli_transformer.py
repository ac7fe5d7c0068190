"""``tinyattn train --arch transformer``: a run end to end, its options stored and
checked on resume, foreign flags refused, and the warm-up schedules."""

import json

import numpy as np
import pytest

from tinyattn.training.optim import SGD
from tinyattn.training.schedules import WarmupLinear
from tinyattn.transformer import Transformer

from .cli_helpers import run_cli

pytest.importorskip("matplotlib")
TINY_TF = ["--arch", "transformer", "--d-model", "8", "--heads", "2", "--d-ff", "16",
           "--num-layers", "1", "--batch-size", "32", "--train-size", "200", "--epochs", "2",
           "--warmup", "3", "--quiet", "--plots", "1"]


def test_a_transformer_run_trains_evaluates_resumes_and_translates(tmp_path, capsys):
    out = tmp_path / "tf"
    code, stdout, err = run_cli(capsys, "train", "dates", "--out", out, *TINY_TF)
    assert code == 0, err
    assert "exact match" in stdout and "arch=transformer" in err and "lr " in err
    config = json.loads((out / "config.json").read_text())
    assert config["model"]["arch"] == "transformer" and config["model"]["num_heads"] == 2
    train = config["train"]
    assert (train["warmup"], train["schedule"]) == (3, "linear")
    assert train["decay_steps"] == 7 * 2  # ceil(200 / 32) batches, two epochs
    assert (out / "alignment_0.png").stat().st_size > 0
    code, _, err = run_cli(capsys, "train", "dates", "--out", out, "--resume", "--epochs", "3",
                           "--quiet", "--plots", "0")
    assert code == 0, err
    assert len(json.loads((out / "metrics.json").read_text())) and "resumed" in err
    code, _, err = run_cli(capsys, "train", "dates", "--out", out, "--resume", "--heads", "4")
    assert code == 2 and "--num-heads 4 (run has 2)" in err
    code, stdout, err = run_cli(capsys, "translate", out, "March 5, 2013")
    assert code == 0 and len(stdout.strip()) > 0, err
    code, stdout, err = run_cli(capsys, "evaluate", out, "--beam", "2", "--limit", "20")
    assert code == 0 and "exact match" in stdout, err


@pytest.mark.parametrize("flags, message", [
    (["--arch", "transformer", "--cell", "lstm"], "--cell applies to --arch rnn"),
    (["--heads", "2"], "--num-heads applies to --arch transformer"),
    (["--arch", "transformer", "--no-bridge"], "--no-bridge applies to --arch rnn"),
    (["--arch", "transformer", "--unidirectional"], "--unidirectional applies to --arch rnn"),
    (["--warmup", "10"], "--warmup applies to --arch transformer"),
    (["--arch", "transformer", "--d-model", "10", "--heads", "4"],
     "--num-heads must divide --d-model"),
    (["--arch", "transformer", "--warmup", "10", "--lr-decay", "0.5"],
     "two learning-rate schedules"),
    (["--arch", "transformer", "--warmup", "100000"], "fewer steps than the run's"),
])
def test_bad_flags_are_named_before_anything_is_written(tmp_path, capsys, flags, message):
    out = tmp_path / "bad"
    code, _, err = run_cli(capsys, "train", "dates", "--out", out, "--train-size", "50",
                           "--quiet", *flags)
    assert code == 2 and message in err, err
    assert not out.exists() or not any(out.iterdir())


def test_warmup_linear_by_hand_and_its_state():
    opt = SGD([("w", np.zeros(2), np.zeros(2))], lr=1.0)
    sched = WarmupLinear(opt, peak=0.5, warmup=4, total=10)
    # up: 0.5 · s/4; down: 0.5 · (10 − s + 1) / 7; floored after step 10
    want = {1: 0.125, 2: 0.25, 4: 0.5, 5: 0.5 * 6 / 7, 9: 0.5 * 2 / 7, 10: 0.5 / 7,
            11: 0.5 / 7, 50: 0.5 / 7}
    for step, lr in want.items():
        assert sched.lr_at(step) == pytest.approx(lr, rel=1e-14), step
    rates = [sched.step() for _ in range(6)]
    assert rates == [sched.lr_at(k) for k in range(1, 7)] and opt.lr == rates[-1]
    again = WarmupLinear(SGD([("w", np.zeros(2), np.zeros(2))], lr=1.0), peak=0.5, warmup=4,
                         total=10)
    again.load_state_dict(sched.state_dict())
    assert again.step() == sched.step()
    other = WarmupLinear(opt, peak=0.5, warmup=4, total=12)
    with pytest.raises(ValueError, match="'total'"):
        other.load_state_dict(sched.state_dict())
    with pytest.raises(ValueError, match="total must be an int"):
        WarmupLinear(opt, peak=0.5, warmup=4, total=4)


def test_the_cli_model_is_the_library_model(tmp_path, capsys):
    out = tmp_path / "tf"
    code, _, err = run_cli(capsys, "train", "dates", "--out", out, *TINY_TF, "--epochs", "1")
    assert code == 0, err
    model = Transformer.load(out / "best.npz")
    assert model.config["d_model"] == 8 and model.config["num_encoder_layers"] == 1
