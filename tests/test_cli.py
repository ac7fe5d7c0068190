"""The command line end to end on tiny tasks: train -> translate -> evaluate -> plot,
resume after an interruption (flag and a real SIGINT), and every bad-input path."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import tinyattn.cli.commands as cli
from tinyattn.training.checkpoint import load_checkpoint

from .cli_helpers import FIXTURES, TINY, run_cli, train_dates

pytest.importorskip("matplotlib")

@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One tiny dates run shared by the read-only tests."""
    return train_dates(tmp_path_factory.mktemp("runs") / "dates", "--train-size", "300")


def test_train_writes_a_complete_run(trained):
    for name in ("config.json", "checkpoint.npz", "src_vocab.json", "tgt_vocab.json",
                 "metrics.json", "loss.png", "alignment_0.png"):
        assert (trained / name).stat().st_size > 0, name
    metrics = json.loads((trained / "metrics.json").read_text())
    assert metrics["examples"] == 1000 and metrics["epochs"] == 1
    assert 0 <= metrics["exact_match"] <= 1 and 0 <= metrics["alignment_accuracy"] <= 1
    config = json.loads((trained / "config.json").read_text())
    assert config["model"]["hidden_size"] == 8 and config["data"]["src_kind"] == "char"
    ckpt = load_checkpoint(trained / "checkpoint.npz")
    assert "src_vocab" in ckpt.extra  # the vocabularies travel with the weights


def test_translate_evaluate_plot(trained, capsys, tmp_path):
    code, out, _ = run_cli(capsys, "translate", trained, "3 May 1979", "JUNE 4 1998",
                           "--plot", tmp_path)
    assert code == 0 and len(out.splitlines()) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sentence_0.png", "sentence_1.png"]
    code, out, _ = run_cli(capsys, "translate", trained, "5/30/91", "--beam", "3",
                           "--n-best", "2")
    assert code == 0 and [line.split("\t")[0] for line in out.splitlines()] == ["1.1", "1.2"]
    code, out, _ = run_cli(capsys, "evaluate", trained, "--split", "valid", "--limit", "20")
    assert code == 0 and "exact match" in out and "alignment accuracy" in out
    code, out, _ = run_cli(capsys, "plot", trained, "--index", "0", "4", "--out", tmp_path / "p")
    assert code == 0 and out.split() == [str(tmp_path / "p" / "test_0.png"),
                                         str(tmp_path / "p" / "test_4.png")]


def test_translate_reads_stdin_and_warns_about_unknown_tokens(trained, capsys, monkeypatch):
    import io
    monkeypatch.setattr(sys, "stdin", io.StringIO("3 May 1979\n\n§ 4 1998\n"))
    code, out, err = run_cli(capsys, "translate", trained)
    assert code == 0 and len(out.splitlines()) == 2  # the blank line is skipped
    assert "sentence 2: unknown to the model, read as <unk>: '§'" in err


def test_tsv_training_with_chinese_targets(tmp_path, capsys):
    out = tmp_path / "zh"
    code, _, err = run_cli(capsys, "train", FIXTURES / "pairs_en_zh.tsv", "--out", out,
                           "--epochs", "2", *TINY)
    assert code == 0, err
    config = json.loads((out / "config.json").read_text())
    assert (config["data"]["src_kind"], config["data"]["tgt_kind"]) == ("word", "zh")
    assert "BLEU" in capsys.readouterr().out or (out / "metrics.json").exists()
    code, text, _ = run_cli(capsys, "translate", out, "Are you big?")
    assert code == 0 and text.strip()  # some Chinese characters, joined without spaces
    assert " " not in text.strip()


def _params(path):
    return load_checkpoint(path).params


def test_interrupted_training_resumes_to_the_same_weights(tmp_path, capsys, monkeypatch):
    args = ["dates", "--train-size", "160", "--epochs", "2", *TINY]
    assert cli.main(["train", "--out", str(tmp_path / "straight"), *args]) == 0

    install = cli._install_stop_handler

    def stop_after_three_batches(trainer):
        step, calls = trainer.optimizer.step, []

        def counting():
            step()
            calls.append(1)
            trainer.stop_requested = len(calls) == 13  # epoch 2, batch 3 (10 per epoch)
        trainer.optimizer.step = counting
        return install(trainer)

    monkeypatch.setattr(cli, "_install_stop_handler", stop_after_three_batches)
    out = tmp_path / "stopped"
    code, _, err = run_cli(capsys, "train", "--out", out, *args)
    assert code == 130
    assert "stopped after 3 of 10 batches of epoch 2" in err and "--resume" in err
    monkeypatch.setattr(cli, "_install_stop_handler", install)
    code, _, err = run_cli(capsys, "train", "--out", out, "--resume", *args)
    assert code == 0, err
    a, b = _params(tmp_path / "straight" / "checkpoint.npz"), _params(out / "checkpoint.npz")
    assert a.keys() == b.keys()
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)


def test_ctrl_c_saves_a_checkpoint(tmp_path):
    """A real SIGINT in a child process: exit 130, a resumable checkpoint."""
    out = tmp_path / "run"
    env = {**os.environ, "TQDM_DISABLE": "1"}
    cmd = [sys.executable, "-m", "tinyattn", "train", "dates", "--out", str(out),
           "--train-size", "2000", "--epochs", "50", *TINY]
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.monotonic() + 120
    while not (out / "config.json").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(1.0)  # into the first epochs
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "saved" in err and "Traceback" not in err
    ckpt = load_checkpoint(out / "checkpoint.npz")
    state = json.loads(str(ckpt.extra["trainer"]))
    assert len(state["history"]) < 50


@pytest.mark.parametrize("argv, message", [
    (["train", "nosuchtask"], "nosuchtask: no such task, corpus or file"),
    (["train", FIXTURES / "bad_columns.tsv"],
     "bad_columns.tsv line 4: expected 2 or 3 tab-separated columns, got 1"),
    (["train", FIXTURES / "bad_empty.tsv"], "bad_empty.tsv line 3"),
    (["translate", "/nonexistent/run", "x"], "not a tinyattn run"),
    (["evaluate", "/nonexistent/run"], "not a tinyattn run"),
])
def test_bad_input_is_one_line_and_exit_2(argv, message, capsys, tmp_path):
    code, _, err = run_cli(capsys, *argv, *(["--out", tmp_path / "r"] if argv[0] == "train"
                                            else []))
    assert code == 2
    assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_skip_bad_reports_how_many_lines(tmp_path, capsys):
    good = (FIXTURES / "pairs_en_fr.tsv").read_text(encoding="utf-8").splitlines()
    lines = good[:10] + ["only one column"] + good[10:] + ["a\tb\tc\td"]
    path = tmp_path / "mixed.tsv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    code, _, err = run_cli(capsys, "train", path, "--out", tmp_path / "r", *TINY)
    assert code == 2 and "mixed.tsv line 11: expected 2 or 3 tab-separated columns" in err
    code, _, err = run_cli(capsys, "train", path, "--skip-bad", "--out", tmp_path / "r",
                           "--epochs", "1", *TINY)
    assert code == 0, err
    assert "skipped 2 malformed lines (--skip-bad)" in err


def test_too_few_pairs_for_a_split(tmp_path, capsys):
    path = tmp_path / "five.tsv"
    path.write_text("".join(f"a{k}\tb{k}\n" for k in range(5)), encoding="utf-8")
    code, _, err = run_cli(capsys, "train", path, "--out", tmp_path / "r", *TINY)
    assert code == 2 and "5 usable pairs are too few" in err


def test_run_errors(trained, capsys, tmp_path):
    code, _, err = run_cli(capsys, "translate", trained, "")
    assert code == 2 and "sentence 1 is empty" in err
    code, _, err = run_cli(capsys, "train", "dates", "--out", trained)
    assert code == 2 and "already holds a run; add --resume" in err
    code, _, err = run_cli(capsys, "train", "dates", "--out", trained, "--resume",
                           "--hidden-size", "99")
    assert code == 2 and "--hidden-size 99 (run has 8)" in err
    code, _, err = run_cli(capsys, "train", "dates", "--out", tmp_path / "new", "--resume")
    assert code == 2 and "holds no run to resume" in err
    code, _, err = run_cli(capsys, "plot", trained, "--index", "5000")
    assert code == 2 and "--index 5000 is out of range" in err


def test_a_vocabulary_that_does_not_match_the_checkpoint_is_refused(trained, capsys, tmp_path):
    import shutil
    copy = tmp_path / "copy"
    shutil.copytree(trained, copy)
    vocab = json.loads((copy / "src_vocab.json").read_text())
    vocab["tokens"][4], vocab["tokens"][5] = vocab["tokens"][5], vocab["tokens"][4]
    (copy / "src_vocab.json").write_text(json.dumps(vocab))
    code, _, err = run_cli(capsys, "translate", copy, "3 May 1979")
    assert code == 2 and "trained with another src_vocab" in err


def test_unknown_options_exit_2(capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(["train", "dates", "--bogus"])
    assert e.value.code == 2
    assert "unrecognized arguments: --bogus" in capsys.readouterr().err


def test_regularisation_flags_and_the_best_checkpoint(tmp_path, capsys):
    """--dropout, --label-smoothing and --lr-decay reach the model and the trainer;
    best.npz holds the epoch with the lowest validation loss, which evaluate,
    translate and plot use (checkpoint.npz is for resuming)."""
    out = tmp_path / "reg"
    code, _, err = run_cli(capsys, "train", "dates", "--out", out, "--train-size", "300",
                           "--epochs", "3", "--dropout", "0.2", "--label-smoothing", "0.1",
                           "--lr-decay", "0.5", "--decay-patience", "1", *TINY)
    assert code == 0, err
    config = json.loads((out / "config.json").read_text())
    assert (config["model"]["dropout"], config["model"]["label_smoothing"]) == (0.2, 0.1)
    assert (config["train"]["lr_decay"], config["train"]["decay_patience"]) == (0.5, 1)
    epochs = [line for line in err.splitlines() if line.startswith("epoch ")]
    assert len(epochs) == 3 and all(", lr " in line for line in epochs)
    history = json.loads(str(load_checkpoint(out / "checkpoint.npz").extra["trainer"]))
    valid = [r["valid_loss"] for r in history["history"]]
    best = load_checkpoint(out / "best.npz")
    assert int(best.extra["best_epoch"]) == 1 + int(np.argmin(valid))
    (out / "checkpoint.npz").write_text("damaged")  # only resuming needs it
    code, text, err = run_cli(capsys, "translate", out, "12/25/84")
    assert code == 0, err
    for bad in (["--dropout", "1"], ["--label-smoothing", "-0.1"], ["--lr-decay", "1.5"]):
        with pytest.raises(SystemExit):
            cli.main(["train", "dates", "--out", str(tmp_path / "x"), *bad])
        assert "expected a number in" in capsys.readouterr().err
