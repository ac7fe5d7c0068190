"""Nothing lost, every fault a clear error (issue 11): run directories, empty
outputs, damaged checkpoints, non-finite weights, divergence, data that changed,
options checked before writing, damaged training state, Ctrl-C and leftovers.

Each test is named after the defect it pins (D1..D9); each failed before its fix.
"""

import json
import os
import re
import shutil
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest

import tinyattn.cli.commands as cli
from tinyattn import Seq2Seq
from tinyattn.cli.run import Run
from tinyattn.training.checkpoint import (
    CheckpointError,
    load_checkpoint,
    remove_stale_temps,
    save_checkpoint,
)
from tinyattn.training.optim import Adam
from tinyattn.training.trainer import Diverged, Interrupted, LossGrowthWarning, Trainer

from .cli_helpers import FIXTURES, TINY, run_cli, train_dates

pytest.importorskip("matplotlib")

TINY = [*TINY, "--train-size", "200", "--epochs", "1"]  # a whole tiny run's flags


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    return train_dates(tmp_path_factory.mktemp("runs") / "dates", "--train-size", "200")


def _copy(run: Path, tmp_path: Path) -> Path:
    dst = tmp_path / run.name
    shutil.copytree(run, dst)
    return dst


def _model(**kw):
    return Seq2Seq(7, 6, emb_size=3, hidden_size=4, attention="bahdanau",
                   rng=np.random.default_rng(0), **kw)


# ----- D1: a directory that is not a run is never written into ---------------
def test_d1_foreign_directory_is_refused_and_untouched(tmp_path, capsys):
    u = tmp_path / "u"
    u.mkdir()
    (u / "config.json").write_text('{"my": 1}')
    (u / "metrics.json").write_text("x")
    code, _, err = run_cli(capsys, "train", "dates", "--out", u, *TINY)
    assert code == 2 and "is not empty and is not a tinyattn run" in err
    assert sorted(p.name for p in u.iterdir()) == ["config.json", "metrics.json"]
    assert (u / "config.json").read_text() == '{"my": 1}'
    code, _, err = run_cli(capsys, "train", "dates", "--out", u, "--overwrite", *TINY)
    assert code == 2 and "is not a tinyattn run" in err  # --overwrite is only for runs


def test_d1_existing_run_needs_resume_or_overwrite(trained, tmp_path, capsys):
    run = _copy(trained, tmp_path)
    (run / "alignment_7.png").write_bytes(b"old")  # an old run's heatmap
    (run / "notes.txt").write_text("mine")
    before = (run / "checkpoint.npz").read_bytes()
    code, _, err = run_cli(capsys, "train", "dates", "--out", run, *TINY)
    assert code == 2 and "already holds a run; add --resume" in err and "--overwrite" in err
    assert (run / "checkpoint.npz").read_bytes() == before
    code, _, err = run_cli(capsys, "train", "dates", "--out", run, "--resume", "--overwrite")
    assert code == 2 and "contradict" in err
    code, _, err = run_cli(capsys, "train", "dates", "--out", run, "--overwrite", *TINY,
                           "--seed", "3")
    assert code == 0 and "--overwrite: replacing the run" in err
    assert not (run / "alignment_7.png").exists()  # ours, from the replaced run
    assert (run / "notes.txt").read_text() == "mine"  # not ours: kept
    assert json.loads((run / "config.json").read_text())["train"]["seed"] == 3


def test_d1_out_that_is_a_file(tmp_path, capsys):
    f = tmp_path / "f"
    f.write_text("mine")
    code, _, err = run_cli(capsys, "train", "dates", "--out", f, *TINY)
    assert code == 2 and "is a file" in err and f.read_text() == "mine"


# ----- D2: an empty output is drawn, not an error ------------------------------
def test_d2_empty_hypothesis_is_plotted(trained, tmp_path, capsys):
    run = _copy(trained, tmp_path)
    model = Run.open(run).load_model()
    b = {n: v for n, v, _ in model.named_parameters()}["decoder.out.b"]
    b[:] = -50.0
    b[2] = 50.0  # <eos> first: every output is empty
    model.save(run / "best.npz")  # the weights translate and plot use
    code, out, err = run_cli(capsys, "translate", run, "12/25/84", "--plot", tmp_path / "p")
    assert code == 0 and out == "\n", err
    assert (tmp_path / "p" / "sentence_0.png").stat().st_size > 0
    code, out, err = run_cli(capsys, "plot", run, "--index", "1", "--out", tmp_path / "q")
    assert code == 0 and out.split() == [str(tmp_path / "q" / "test_1.png")], err
    code, out, err = run_cli(capsys, "evaluate", run, "--limit", "5")
    assert code == 0 and "exact match        0.00%" in out, err


@pytest.mark.parametrize("emitted", [0, 1])  # <pad>, <sos>: never an <eos>
def test_heatmap_of_an_output_of_special_tokens(trained, tmp_path, capsys, emitted):
    """An undertrained model may emit <pad> or <sos> and never <eos>: each emitted
    id is a labelled row of the heatmap (found by a run that failed with
    "tgt_tokens must have one token per row of alpha (25), got 24")."""
    run = _copy(trained, tmp_path)
    model = Run.open(run).load_model()
    b = {n: v for n, v, _ in model.named_parameters()}["decoder.out.b"]
    b[:] = -50.0
    b[emitted] = 50.0
    model.save(run / "best.npz")  # the weights translate and plot use
    for argv in (["translate", run, "12/25/84", "--plot", tmp_path / "p"],
                 ["translate", run, "12/25/84", "--beam", "2", "--plot", tmp_path / "b"],
                 ["plot", run, "--index", "0", "--out", tmp_path / "q"]):
        code, _, err = run_cli(capsys, *argv)
        assert code == 0, err


# ----- D3: damaged checkpoints are one clear error naming the file -----------
def _central_method_offsets(data: bytes):
    """Offsets of the compression-method fields in a zip's central directory."""
    k = 0
    while (k := data.find(b"PK\x01\x02", k)) >= 0:
        yield k + 10
        k += 4


@pytest.mark.parametrize("method", [99, 12, 14])
def test_d3_unknown_or_bad_compression(tmp_path, method):
    path = tmp_path / "m.npz"
    _model().save(path)
    data = bytearray(path.read_bytes())
    for off in _central_method_offsets(bytes(data)):
        data[off:off + 2] = method.to_bytes(2, "little")
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match=r"m\.npz' is not a tinyattn checkpoint, or is "
                                              "damaged"):
        Seq2Seq.load(path)


@pytest.mark.parametrize("meta, why", [
    ({"config": [1, 2]}, "meta.config must be a JSON object, got list"),
    ({"config": None}, "meta.config must be a JSON object, got NoneType"),
    ({"has_optimizer_state": "yes"}, "has_optimizer_state must be true or false"),
])
def test_d3_malformed_meta(tmp_path, meta, why):
    path = tmp_path / "m.npz"
    _model().save(path)
    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files}
    fields = json.loads(str(arrays["meta"]))
    fields.update(meta)
    arrays["meta"] = np.array(json.dumps(fields))
    np.savez(path, **arrays)
    with pytest.raises(CheckpointError, match=why):
        Seq2Seq.load(path)


def test_d3_config_that_does_not_build_the_model(tmp_path):
    path = tmp_path / "m.npz"
    model = _model()
    for config, why in [({k: v for k, v in model.config.items() if k != "dtype"}, "no 'dtype'"),
                        ({**model.config, "dtype": "int8"}, "does not build a Seq2Seq"),
                        ({**model.config, "colour": 1}, "does not build a Seq2Seq"),
                        ({k: v for k, v in model.config.items() if k != "emb_size"},
                         "does not build a Seq2Seq")]:
        save_checkpoint(path, params={n: v for n, v, _ in model.named_parameters()},
                        config=config)
        with pytest.raises(CheckpointError, match=why) as err:
            Seq2Seq.load(path)
        assert "m.npz" in str(err.value)


def test_d3_every_single_byte_corruption_is_a_clear_error(tmp_path):
    """Set each byte of a small checkpoint to another value: loading either works
    (the byte did not matter) or raises ValueError/TypeError naming the file."""
    path = tmp_path / "m.npz"
    Seq2Seq(4, 4, emb_size=2, hidden_size=2, attention="dot",
            rng=np.random.default_rng(0)).save(path)
    good = path.read_bytes()
    bad = tmp_path / "bad.npz"
    rng = np.random.default_rng(1)
    for k in range(len(good)):
        data = bytearray(good)
        data[k] = (data[k] + int(rng.integers(1, 256))) % 256
        bad.write_bytes(bytes(data))
        try:
            Seq2Seq.load(bad)
        except (ValueError, TypeError) as err:
            assert "bad.npz" in str(err), (k, err)


def test_d3_array_header_claiming_terabytes(tmp_path):
    """An .npy header that claims a (4e11, 2) array: one CheckpointError naming
    the file, never a MemoryError traceback."""
    import io
    path = tmp_path / "m.npz"
    _model().save(path)
    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files}
    name = next(k for k in arrays if k.startswith("param/"))
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        header, {"descr": "<f8", "fortran_order": False, "shape": (400_000_000_000, 2)})
    with zipfile.ZipFile(path, "w") as zf:
        for key, value in arrays.items():
            buf = io.BytesIO()
            np.lib.format.write_array(buf, value, allow_pickle=False)
            data = (b"\x93NUMPY\x01\x00" + header.getvalue()[8:] + b"\0" * 64
                    if key == name else buf.getvalue())
            zf.writestr(key + ".npy", data)
    with pytest.raises(CheckpointError) as err:
        Seq2Seq.load(path)
    assert "m.npz" in str(err.value)


def test_out_of_memory_is_one_line(tmp_path, capsys, monkeypatch):
    def no_memory(*args, **kwargs):
        raise MemoryError
    monkeypatch.setattr(Run, "build_model", no_memory)
    code, _, err = run_cli(capsys, "train", "dates", "--out", tmp_path / "r", *TINY)
    assert code == 2 and err.strip() == ("tinyattn train: error: out of memory; choose smaller "
                                         "sizes (--hidden-size, --emb-size, --batch-size, "
                                         "--beam)")
    assert not (tmp_path / "r").exists()


def test_older_checkpoints_with_an_ignored_attn_size_still_load(tmp_path):
    """Earlier versions stored attn_size for attentions that ignored it; the
    constructor now refuses that, but such checkpoints and runs still load."""
    path = tmp_path / "m.npz"
    model = Seq2Seq(5, 6, emb_size=3, hidden_size=4, attention="dot",
                    rng=np.random.default_rng(0))
    model.save(path)
    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files}
    meta = json.loads(str(arrays["meta"]))
    meta["config"]["attn_size"] = 7
    arrays["meta"] = np.array(json.dumps(meta))
    np.savez(path, **arrays)
    loaded = Seq2Seq.load(path)
    assert loaded.config["attn_size"] is None
    model.load_weights(path)


def test_older_run_with_an_ignored_attn_size(trained, tmp_path, capsys):
    run = _copy(trained, tmp_path)
    _edit_config(run, lambda c: c["model"].update(attention="dot", attn_size=7))
    r = Run.open(run)  # a dot model's weights, as the older run would hold
    for name in ("best.npz", "checkpoint.npz"):
        r.build_model(seed=0).save(run / name, extra=r.vocab_extra())
    code, out, err = run_cli(capsys, "translate", run, "12/25/84")
    assert code == 0, err


@pytest.mark.parametrize("damage, why", [
    (lambda a: np.full_like(a, np.nan), "NaN or inf"),
    (lambda a: a.astype(np.float32), "wrong dtype"),
    (lambda a: a[:1], "shape mismatches"),
])
def test_d3_parameters_that_do_not_match_the_configuration(tmp_path, damage, why):
    path = tmp_path / "m.npz"
    _model().save(path)
    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files}
    arrays["param/decoder.out.W"] = damage(arrays["param/decoder.out.W"])
    np.savez(path, **arrays)
    with pytest.raises(CheckpointError, match=f"m.npz' is damaged: its parameters do not "
                                              f"match its configuration: .*{why}"):
        Seq2Seq.load(path)


def test_load_path_argument():
    with pytest.raises(TypeError, match="path must be a file path.*got NoneType"):
        Seq2Seq.load(None)
    with pytest.raises(TypeError, match="path must be a file path.*got int"):
        load_checkpoint(3)


# ----- D4: non-finite weights are never saved, never replace a good file -----
def test_d4_non_finite_parameters_are_not_saved(tmp_path):
    path = tmp_path / "m.npz"
    model = _model()
    model.save(path)
    good = path.read_bytes()
    {n: v for n, v, _ in model.named_parameters()}["decoder.out.W"][0, 0] = np.nan
    with pytest.raises(ValueError, match=r"NaN or inf in param/decoder\.out\.W.*nothing was "
                                         "written"):
        model.save(path)
    assert path.read_bytes() == good and os.listdir(tmp_path) == ["m.npz"]


def test_d4_non_finite_optimizer_state_is_not_saved(tmp_path):
    model = _model()
    opt = Adam(model.named_parameters())
    state = opt.state_dict()
    key = next(k for k in state if k.startswith("v/"))
    state[key] = np.full_like(state[key], np.inf)
    with pytest.raises(ValueError, match=f"NaN or inf in optim/{key}"):
        save_checkpoint(tmp_path / "m.npz", params={}, config={}, optimizer_state=state)


def _pairs(n=40, seed=0):
    rng = np.random.default_rng(seed)
    return [(list(rng.integers(3, 7, rng.integers(1, 5))), list(rng.integers(3, 6, 3)))
            for _ in range(n)]


def _trainer(model, lr=0.01, clip=5.0):
    return Trainer(model, Adam(model.named_parameters(), lr=lr), pad_id=0, sos_id=1,
                   eos_id=2, batch_size=8, clip=clip, rng=np.random.default_rng(0),
                   show_progress=False)


def test_d4_divergence_raises_and_keeps_the_good_checkpoint(tmp_path):
    path = tmp_path / "ckpt.npz"
    model = _model()
    trainer = _trainer(model)
    trainer.fit(_pairs(), epochs=1, checkpoint_path=path)
    good = path.read_bytes()
    {n: v for n, v, _ in model.named_parameters()}["encoder.fwd.W_h"][0, 0] = np.nan
    with pytest.raises(Diverged, match=r"training diverged at epoch 2, batch 1 of 5") as err:
        trainer.fit(_pairs(), epochs=2, checkpoint_path=path)
    assert err.value.epoch == 2 and err.value.batch == 1
    assert path.read_bytes() == good and len(trainer.history) == 1
    with pytest.raises(ValueError, match="NaN or inf"):
        trainer.save(path)
    assert path.read_bytes() == good


def test_d4_weights_overflowed_by_an_epochs_last_update(tmp_path):
    """The last update of epoch 2 makes a weight NaN: epoch 2 is neither recorded
    nor saved, and Diverged names epoch 2 while history (and the file) stop at 1."""
    path = tmp_path / "ckpt.npz"
    model = _model()
    trainer = _trainer(model)
    step, calls = trainer.optimizer.step, []

    def poisoned_step():
        step()
        calls.append(1)
        if len(calls) == 10:  # 5 batches per epoch: the last one of epoch 2
            next(model.named_parameters())[1][0] = np.nan
    trainer.optimizer.step = poisoned_step
    with pytest.raises(Diverged, match=r"training diverged at epoch 2: NaN or inf in ") as err:
        trainer.fit(_pairs(), epochs=3, checkpoint_path=path)  # no validation loss to see it
    assert err.value.epoch == 2 and len(trainer.history) == 1
    assert len(_trainer(_model()).resume(path).history) == 1


def test_ctrl_c_in_the_last_batch_still_stops(tmp_path):
    """stop_requested set during an epoch's last batch: the epoch is saved, then
    Interrupted (a Ctrl-C is never silently ignored)."""
    path = tmp_path / "ckpt.npz"
    trainer = _trainer(_model())
    step, calls = trainer.optimizer.step, []

    def step_then_stop():
        step()
        calls.append(1)
        if len(calls) == 5:
            trainer.stop_requested = True
    trainer.optimizer.step = step_then_stop
    with pytest.raises(Interrupted, match="stopped after epoch 1"):
        trainer.fit(_pairs(), epochs=3, checkpoint_path=path)
    assert len(_trainer(_model()).resume(path).history) == 1


# ----- D5: divergence in the user's terms, no numpy warning ------------------
def test_d5_cli_divergence_message(tmp_path, capsys):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a numpy RuntimeWarning would now be an exception
        code, _, err = run_cli(capsys, "train", "dates", "--out", tmp_path / "r", *TINY,
                               "--lr", "1e30", "--clip", "1e38", "--epochs", "2")
    assert code == 1
    lines = [line for line in err.splitlines() if "error" in line]
    assert len(lines) == 1 and "training diverged at epoch 1, batch" in lines[0]
    assert "lower --lr (now 1e+30) or --clip (now 1e+38)" in lines[0]
    assert "RuntimeWarning" not in err and "x contains" not in err
    assert not (tmp_path / "r" / "checkpoint.npz").exists()


def test_d5_growing_loss_warns(tmp_path):
    model = _model()
    trainer = _trainer(model, lr=1e6)
    with pytest.warns(LossGrowthWarning, match="times the first batch's"):
        trainer.fit(_pairs(), epochs=2)


def test_d5_cli_growing_loss_warning(tmp_path, capsys):
    code, _, err = run_cli(capsys, "train", "dates", "--out", tmp_path / "r", *TINY,
                           "--lr", "1e6")
    assert code == 0 and "tinyattn train: warning: epoch 1: the training loss" in err
    assert "lower the learning rate (--lr=1e+06)" in err


# ----- D6: the data file is resolved and fingerprinted -------------------------
def test_d6_relative_tsv_resolved_and_hashed(tmp_path, capsys, monkeypatch):
    work = tmp_path / "work"
    work.mkdir()
    shutil.copy(FIXTURES / "pairs_en_zh.tsv", work / "good.tsv")
    monkeypatch.chdir(work)
    args = ["--emb-size", "8", "--hidden-size", "8", "--quiet", "--plots", "0"]
    assert run_cli(capsys, "train", "good.tsv", "--out", "rel", "--epochs", "1", *args)[0] == 0
    config = json.loads((work / "rel" / "config.json").read_text())
    assert config["data"]["source"] == str(work / "good.tsv")
    assert len(config["data"]["sha256"]) == 64
    monkeypatch.chdir(tmp_path)
    code, out, err = run_cli(capsys, "evaluate", work / "rel")
    assert code == 0, err
    monkeypatch.chdir(work)
    code, _, err = run_cli(capsys, "train", "./good.tsv", "--out", "rel", "--resume",
                           "--epochs", "2", *args)
    assert code == 0, err
    # the run reads its own copy of the split (rel/data/*.tsv): an edited or
    # deleted data file changes nothing it evaluates or trains on
    before = run_cli(capsys, "evaluate", "rel")[1]
    with open(work / "good.tsv", "a", encoding="utf-8") as f:
        f.write("new\t新\n")
    assert run_cli(capsys, "evaluate", "rel")[1] == before
    shutil.move(work / "good.tsv", work / "moved.tsv")
    assert run_cli(capsys, "evaluate", "rel")[1] == before
    shutil.move(work / "moved.tsv", work / "good.tsv")
    # a run without split files (made by an earlier version) re-splits the file,
    # so a file that changed since is refused
    shutil.rmtree(work / "rel" / "data")
    for argv in (["evaluate", "rel"], ["train", "good.tsv", "--out", "rel", "--resume",
                                       "--epochs", "3", *args]):
        code, _, err = run_cli(capsys, *argv)
        assert code == 2 and "has changed since the run was trained on it" in err


# ----- D7: options are checked before anything is written --------------------
@pytest.mark.parametrize("option, message", [
    (["--lr", "inf"], "argument --lr: expected a positive finite number"),
    (["--lr", "nan"], "argument --lr: expected a positive finite number"),
    (["--seed", "-1"], "argument --seed: expected an integer >= 0"),
    (["--split-seed", "-5"], "argument --split-seed: expected an integer >= 0"),
    (["--plots", "-1"], "argument --plots: expected an integer >= 0"),
    (["--num-layers", "0"], "argument --num-layers/--layers: expected an integer in 1..16, got 0"),
    (["--input-feeding"], "--input-feeding applies to Luong --attention only"),
    (["--split", "pairs"], "--split applies to sentence pairs; the task 'dates' has fixed"),
    (["--attention", "dot", "--attn-size", "4"],
     "--attn-size sizes the scoring layer of --attention 'bahdanau', 'concat', 'local-p' only; "
     "--attention='dot' has no such layer"),
])
def test_d7_bad_options_write_nothing(tmp_path, capsys, option, message):
    out = tmp_path / "r"
    try:
        code = cli.main([str(a) for a in ("train", "dates", "--out", out, *TINY, *option)])
    except SystemExit as exit_:  # argparse's own exit after printing usage
        code = exit_.code
    assert code == 2 and message in capsys.readouterr().err
    assert not out.exists()


def test_d7_split_with_a_task_is_refused_on_resume_too(tmp_path, capsys):
    out = tmp_path / "r"
    args = ("train", "dates", "--out", out, "--train-size", "100", "--epochs", "1", *TINY)
    assert cli.main([str(a) for a in args]) == 0
    config = json.loads((out / "config.json").read_text())
    assert config["data"]["split"] is None  # a task's splits are generated, not cut
    before = sorted(p.name for p in out.iterdir())
    code = cli.main([str(a) for a in (*args, "--resume", "--epochs", "2", "--split", "source")])
    assert code == 2 and "--split applies to sentence pairs" in capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == before and Run.open(out).data.split is None


# ----- D8: damaged training state names the file and the field ----------------
def _rewrite(path, *, trainer=None, optim=None):
    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files}
    if trainer is not None:
        state = json.loads(str(arrays["extra/trainer"]))
        arrays["extra/trainer"] = np.array(trainer(state))
    if optim is not None:
        optim(arrays)
    np.savez(path, **arrays)


@pytest.mark.parametrize("edit, why", [
    (lambda s: "{not json", "the training state stored in it is malformed"),
    (lambda s: json.dumps({**s, "rng": {"bit_generator": "MT19937"}}), "rng: not a PCG64"),
    (lambda s: json.dumps({**s, "history": [{"epoch": 1}]}), "history\\[0\\] must have"),
    (lambda s: json.dumps({k: v for k, v in s.items() if k != "bad_epochs"}),
     "missing field 'bad_epochs'"),
    (lambda s: json.dumps({**s, "best_valid": "x"}), "best_valid must be a finite number"),
    (lambda s: json.dumps({**s, "history": [{**s["history"][0], "seconds": "x"}]}),
     r"history\[0\]\.seconds must be a number in \[0, inf\)"),
    (lambda s: json.dumps({**s, "history": [{**s["history"][0], "train_loss": None}]}),
     r"history\[0\]\.train_loss must be"),
    (lambda s: json.dumps({**s, "history": [{**s["history"][0], "epoch": 3}]}),
     r"history\[0\]\.epoch must be 1, got 3"),
    (lambda s: json.dumps({**s, "batch_losses": [1.0, -2.0]}), r"batch_losses\[1\] must be"),
    (lambda s: json.dumps({**s, "epoch_in_progress": {**_EPOCH, "rng": s["rng"], "done": "x"}}),
     "epoch_in_progress.done must be"),
    (lambda s: json.dumps({**s, "epoch_in_progress": {**_EPOCH, "rng": 1}}),
     "epoch_in_progress.rng: not a PCG64 state"),
    (lambda s: json.dumps({**s, "epoch_in_progress": {**_EPOCH, "rng": s["rng"],
                                                      "loss_sum": "a"}}),
     "epoch_in_progress.loss_sum must be"),
    (lambda s: json.dumps({**s, "epoch_in_progress": {**_EPOCH, "rng": s["rng"], "done": 0}}),
     "0 batches done but 30 tokens counted"),
])
def test_d8_malformed_trainer_state(tmp_path, edit, why):
    path = tmp_path / "ckpt.npz"
    _trainer(_model()).fit(_pairs(), epochs=1, checkpoint_path=path)
    _rewrite(path, trainer=edit)
    model = Seq2Seq(7, 6, emb_size=3, hidden_size=4, attention="bahdanau",
                    rng=np.random.default_rng(5))  # other weights than the checkpoint's
    before = {n: v.copy() for n, v, _ in model.named_parameters()}
    trainer = _trainer(model)
    with pytest.raises(ValueError, match=why) as err:
        trainer.resume(path)
    assert "ckpt.npz" in str(err.value)
    # all or nothing: a refused resume leaves the model and the trainer as they were
    assert all(np.array_equal(v, before[n]) for n, v, _ in model.named_parameters())
    assert trainer.history == [] and trainer._epoch is None
    assert all(not np.any(v) for v in trainer.optimizer.state_dict().values()
               if isinstance(v, np.ndarray) and v.ndim)


_EPOCH = {"done": 2, "loss_sum": 10.0, "tokens": 30, "norm_sum": 1.0, "seconds": 0.5}


def test_d8_epoch_in_progress_beyond_the_data(tmp_path):
    """A checkpoint's epoch in progress that has done more batches than the data
    makes (the data or batch size changed): a clear error, not ZeroDivisionError."""
    path = tmp_path / "ckpt.npz"
    trainer = _trainer(_model())
    trainer.fit(_pairs(), epochs=1, checkpoint_path=path)
    _rewrite(path, trainer=lambda s: json.dumps(
        {**s, "epoch_in_progress": {**_EPOCH, "rng": s["rng"], "done": 999}}))
    trainer = _trainer(_model()).resume(path)
    with pytest.raises(ValueError, match="had done 999 batches, but the training data makes 5"):
        trainer.fit(_pairs(), epochs=2)


def test_d8_rng_of_another_kind(tmp_path):
    """A PCG64DXSM trainer saves and resumes; a generator whose state JSON cannot
    hold is refused when the trainer is built, not when it first saves."""
    path = tmp_path / "ckpt.npz"
    model = _model()
    make = lambda rng: Trainer(model, Adam(model.named_parameters(), lr=0.01),  # noqa: E731
                               pad_id=0, sos_id=1, eos_id=2, batch_size=8, rng=rng,
                               show_progress=False)
    make(np.random.Generator(np.random.PCG64DXSM(0))).fit(_pairs(), epochs=1,
                                                          checkpoint_path=path)
    make(np.random.Generator(np.random.PCG64DXSM(1))).resume(path)
    with pytest.raises(TypeError, match="rng must be a Generator whose state a checkpoint can "
                                        "store.*got one on MT19937"):
        make(np.random.Generator(np.random.MT19937(0)))


def test_d8_nan_in_adam_state(tmp_path):
    path = tmp_path / "ckpt.npz"
    _trainer(_model()).fit(_pairs(), epochs=1, checkpoint_path=path)

    def poison(arrays):
        key = next(k for k in arrays if k.startswith("optim/v/"))
        arrays[key] = np.full_like(arrays[key], np.nan)
    _rewrite(path, optim=poison)
    with pytest.raises(ValueError, match="ckpt.npz.*optimiser state is unusable") as err:
        _trainer(_model()).resume(path)
    assert "NaN" in str(err.value) or "finite" in str(err.value)


# ----- D9: leftovers and Ctrl-C ------------------------------------------------
def test_d9_stale_temp_files_are_removed(trained, tmp_path, capsys):
    run = _copy(trained, tmp_path)
    stale = run / ".checkpoint.npz.999999999.0123abcd.tmp"  # pid that cannot be running
    stale.write_bytes(b"half")
    live = run / f".checkpoint.npz.{os.getppid()}.0123abcd.tmp"  # a running process's
    live.write_bytes(b"busy")
    mine = run / "checkpoint.npz.tmp"  # not our pattern: never touched
    mine.write_bytes(b"x")
    other = run / ".notes.txt.999999999.0123abcd.tmp"  # our pattern, not a run file's
    other.write_bytes(b"x")
    assert remove_stale_temps(run, ["checkpoint.npz"]) == [stale.name]
    assert live.exists() and mine.exists() and other.exists()
    stale.write_bytes(b"half")
    code, _, err = run_cli(capsys, "train", "dates", "--out", run, "--resume", "--epochs", "2",
                           "--quiet", "--plots", "0")
    assert code == 0 and "removed 1 temporary file(s)" in err and not stale.exists()


@pytest.mark.parametrize("overwrite", [[], ["--overwrite"]])
def test_d9_killed_first_save_does_not_lock_the_directory(tmp_path, capsys, overwrite):
    """A SIGKILL while the very first config.json was written leaves only its
    temporary file: the directory is still free for a new run."""
    out = tmp_path / "r"
    out.mkdir()
    (out / ".config.json.999999999.0123abcd.tmp").write_text("{")
    code, _, err = run_cli(capsys, "train", "dates", "--out", out, *TINY, *overwrite)
    assert code == 0, err
    assert "removed 1 temporary file(s)" in err
    assert not list(out.glob(".*.tmp"))


@pytest.mark.parametrize("where", ["start-up", "final evaluation"])
def test_d9_ctrl_c_outside_the_training_loop(tmp_path, capsys, monkeypatch, where):
    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt
    target = "load_examples" if where == "start-up" else "evaluate_examples"
    monkeypatch.setattr(cli, target, interrupt)
    code, _, err = run_cli(capsys, "train", "dates", "--out", tmp_path / "r", *TINY)
    assert code == 130 and "interrupted (Ctrl-C)" in err and "Traceback" not in err
    if where == "final evaluation":  # the checkpoint was written before: it loads
        Run.open(tmp_path / "r").load_model()


def test_d9_second_ctrl_c_during_the_save_keeps_the_old_checkpoint(trained, tmp_path, capsys,
                                                                   monkeypatch):
    run = _copy(trained, tmp_path)
    good = (run / "checkpoint.npz").read_bytes()

    real_epoch = Trainer.train_epoch

    def train_epoch(self, pairs):
        self.stop_requested = True  # the first Ctrl-C ...
        return real_epoch(self, pairs)

    real_savez = np.savez

    def savez(f, **arrays):  # ... and the second, while the checkpoint is being written
        real_savez(f, **arrays)
        raise KeyboardInterrupt
    monkeypatch.setattr(np, "savez", savez)
    monkeypatch.setattr(Trainer, "train_epoch", train_epoch)
    code, _, err = run_cli(capsys, "train", "dates", "--out", run, "--resume", "--epochs", "2",
                           "--quiet", "--plots", "0")
    assert code == 130 and "interrupted (Ctrl-C)" in err and "Traceback" not in err
    assert (run / "checkpoint.npz").read_bytes() == good
    assert not [p for p in os.listdir(run) if p.endswith(".tmp")]


def test_zipfile_sanity():
    """The corruption helpers above find the central directory of a real npz."""
    import io
    buf = io.BytesIO()
    np.savez(buf, a=np.zeros(2))
    assert len(list(_central_method_offsets(buf.getvalue()))) == 1
    assert zipfile.is_zipfile(io.BytesIO(buf.getvalue()))


# ----- D10 (the Trainer's part): arguments checked when given, by name --------
@pytest.mark.parametrize("kwargs, error, message", [
    ({"rng": None}, TypeError, "rng must be a numpy.random.Generator"),
    ({"clip": -1}, ValueError, r"clip must be a number in \(0, inf\), got -1 \(or None"),
    ({"clip": float("nan")}, ValueError, r"clip must be a number in \(0, inf\), got nan"),
    ({"clip": True}, ValueError, r"clip must be a number in \(0, inf\), got True"),
    ({"pad_id": 3}, ValueError, "pad_id must be the model's pad_id 0, got 3"),
    ({"batch_size": 2.5}, ValueError, "batch_size must be a positive int, got 2.5"),
    ({"eos_id": -1}, ValueError, "eos_id must be an int >= 0, got -1"),
    ({"bucket": "yes"}, TypeError, "bucket must be True or False"),
    ({"optimizer": "adam"}, TypeError, "optimizer must be an optimiser"),
])
def test_trainer_constructor_arguments(kwargs, error, message):
    model = _model()
    args = dict(optimizer=Adam(model.named_parameters()), pad_id=0, sos_id=1, eos_id=2,
                rng=np.random.default_rng(0))
    args.update(kwargs)
    with pytest.raises(error, match=message):
        Trainer(model, args.pop("optimizer"), **args)


@pytest.mark.parametrize("call, error, message", [
    (lambda t: t.fit([], epochs=1), ValueError, "train_pairs is empty"),
    (lambda t: t.fit(_pairs(), epochs=-1), ValueError, "epochs must be a positive int, got -1"),
    (lambda t: t.fit(_pairs(), epochs=1.5), ValueError, "epochs must be a positive int, got 1.5"),
    (lambda t: t.fit(_pairs(), epochs=True), ValueError, "epochs must be a positive int, got T"),
    (lambda t: t.fit([([3.7], [4])], epochs=1), TypeError,
     r"train_pairs\[0\]: the source must be a list of non-negative int token ids"),
    (lambda t: t.fit([([3], [4], [5])], epochs=1), ValueError,
     r"train_pairs\[0\] must be a pair \(src_ids, tgt_ids\), got 3 items"),
    (lambda t: t.fit([([], [4])], epochs=1), ValueError, r"train_pairs\[0\] has an empty source"),
    (lambda t: t.fit(_pairs(), [([3], [-4])], epochs=1), TypeError,
     r"valid_pairs\[0\]: the target must be"),
    (lambda t: t.fit(_pairs(), epochs=1, patience=0), ValueError, "patience must be None or"),
    (lambda t: t.fit(_pairs(), epochs=1, on_epoch=3), TypeError, "on_epoch must be None"),
    (lambda t: t.evaluate("abc"), TypeError, "pairs must be a list of"),
])
def test_trainer_fit_arguments(call, error, message):
    trainer = _trainer(_model())
    with pytest.raises(error, match=message):
        call(trainer)
    assert trainer.history == []


def test_trainer_trains_on_empty_targets():
    """An empty target is a sentence the model should answer with <eos> alone."""
    pairs = [([3, 4], []), ([5], [3, 4])] * 4
    history = _trainer(_model()).fit(pairs, pairs, epochs=1)
    assert np.isfinite(history[0].train_loss) and np.isfinite(history[0].valid_loss)


# ----- beyond the list: edited run directories ---------------------------------
def _edit_config(run, change):
    config = json.loads((run / "config.json").read_text())
    change(config)
    (run / "config.json").write_text(json.dumps(config))


def _swap_tokens(path):
    vocab = json.loads(path.read_text())
    tokens = vocab["tokens"]
    tokens[-1], tokens[-2] = tokens[-2], tokens[-1]
    path.write_text(json.dumps(vocab))


@pytest.mark.parametrize("edit, message", [
    (lambda r: (r / "src_vocab.json").unlink(), "src_vocab.json is missing"),
    (lambda r: _edit_config(r, lambda c: c["train"].pop("max_decode_len")),
     "the training options lack max_decode_len"),
    (lambda r: _edit_config(r, lambda c: c["model"].update(hidden_size="x")),
     "config.json: incomplete, unknown or invalid field .*hidden_size must be"),
    (lambda r: _edit_config(r, lambda c: c["model"].update(colour=1)),
     "config.json: incomplete, unknown or invalid field .*colour"),
    (lambda r: _edit_config(r, lambda c: c.update(data=[])), "'data' must be a JSON object"),
    (lambda r: [(r / name).write_text("x") for name in ("best.npz", "checkpoint.npz")],
     "not an .npz \\(zip\\) archive"),
    (lambda r: _swap_tokens(r / "tgt_vocab.json"),
     "the checkpoint was trained with another tgt_vocab"),
])
def test_edited_run_directory(trained, tmp_path, capsys, edit, message):
    run = _copy(trained, tmp_path)
    edit(run)
    for argv in (["translate", run, "12/25/84"], ["evaluate", run],
                 ["train", "dates", "--out", run, "--resume", "--epochs", "2"]):
        code, _, err = run_cli(capsys, *argv)
        assert code == 2 and len(err.splitlines()) == 1, err
        assert re.search(message, err), err


def test_heatmaps_never_replace_files_without_overwrite(trained, tmp_path, capsys):
    figs = tmp_path / "figs"
    figs.mkdir()
    (figs / "sentence_0.png").write_text("mine")
    (figs / "test_2.png").write_text("mine too")
    code, _, err = run_cli(capsys, "translate", trained, "3 May 1979", "--plot", figs)
    assert code == 2 and "--plot: " in err and "sentence_0.png already exists" in err
    code, _, err = run_cli(capsys, "plot", trained, "--index", "1", "2", "--out", figs)
    assert code == 2 and "test_2.png already exists" in err
    assert (figs / "sentence_0.png").read_text() == "mine" and not (figs / "test_1.png").exists()
    code, _, err = run_cli(capsys, "translate", trained, "3 May 1979", "--plot", figs,
                           "--overwrite")
    assert code == 0 and (figs / "sentence_0.png").read_bytes()[:4] == b"\x89PNG"
    code, out, _ = run_cli(capsys, "plot", trained, "--index", "0")  # the run's own plots/
    code, out, _ = run_cli(capsys, "plot", trained, "--index", "0")  # redrawn freely
    assert code == 0 and out.strip().endswith("test_0.png")
