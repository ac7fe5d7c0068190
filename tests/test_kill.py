"""SIGKILL ``tinyattn train`` at random moments: the run directory always
either holds no checkpoint (and ``--overwrite`` starts it again) or a
checkpoint that loads and resumes; temporary files of a killed save are
removed by the next start, and nothing else is ever left behind."""

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from tinyattn.cli.run import FILES, Run, run_state

pytest.importorskip("matplotlib")

ARGS = ["--train-size", "1500", "--emb-size", "8", "--hidden-size", "8", "--batch-size", "32",
        "--epochs", "4", "--quiet", "--plots", "1"]
ALLOWED = {*FILES.values(), "loss.png", "alignment_0.png"}


def _train(out, *extra):
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "MPLBACKEND": "Agg"}
    return subprocess.Popen([sys.executable, "-m", "tinyattn", "train", "dates", "--out",
                             str(out), *ARGS, *extra], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)


def _next_args(out):
    """What a user would run next: resume if there is a checkpoint, else start over."""
    state = run_state(out)
    if state in ("absent", "empty"):
        return ()
    assert state == "run", f"{out} is neither empty nor a run after a kill: {os.listdir(out)}"
    return ("--resume",) if (out / FILES["checkpoint"]).exists() else ("--overwrite",)


def test_sigkill_at_random_moments(tmp_path):
    out = tmp_path / "run"
    rng = np.random.default_rng(11)
    kills = 0
    for _ in range(6):
        proc = _train(out, *_next_args(out))
        time.sleep(float(rng.uniform(0.5, 4.0)))
        if proc.poll() is not None:  # finished before the kill: start a fresh one
            assert proc.returncode == 0, proc.stderr.read()
            proc.stderr.close()
            continue
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        proc.stderr.close()
        kills += 1
        if (out / FILES["checkpoint"]).exists():
            Run.open(out).load_model()  # whatever moment the kill came, it loads
        names = set(os.listdir(out)) if out.exists() else set()
        strays = {n for n in names - ALLOWED if not n.endswith(".tmp")}
        assert not strays, strays
    proc = _train(out, *_next_args(out))
    _, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    assert set(os.listdir(out)) <= ALLOWED  # the next start removed any .tmp
    assert kills >= 1
