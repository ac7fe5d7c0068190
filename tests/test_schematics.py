"""docs/schematics.py writes every schematic, and the numbers it draws are right."""

from __future__ import annotations

import importlib.util
import math
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "docs" / "schematics.py"
NAMES = ["rnn_unrolled.png", "gru_cell.png", "lstm_cell.png", "encoder_decoder.png",
         "bahdanau_vs_luong.png", "local_window.png", "beam_tree.png", "hard_vs_soft.png"]


def _load():
    spec = importlib.util.spec_from_file_location("schematics_script", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # puts docs/ on sys.path for _schematics
    return module


def _png_size(path):
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n", f"{path.name} is not a PNG"
    return struct.unpack(">II", head[16:24])  # IHDR width, height


def test_script_writes_every_png(tmp_path):
    out = tmp_path / "nested" / "images"
    run = subprocess.run([sys.executable, str(SCRIPT), "--out", str(out)], cwd=tmp_path,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert sorted(p.name for p in out.iterdir()) == sorted(NAMES)  # no temporary file left
    for name in NAMES:
        path = out / name
        assert name in run.stdout
        assert 20_000 < path.stat().st_size < 2_000_000, name
        width, height = _png_size(path)
        # dpi 150, between 9 and 12.5 inches wide: fits a notebook at a readable scale
        assert 1350 <= width <= 1875 and 600 <= height <= 1000, (name, width, height)


def test_script_refuses_bad_arguments(tmp_path, capsys):
    schematics = _load()
    assert sorted(schematics.FIGURES) == sorted(NAMES)
    afile = tmp_path / "file.png"
    afile.write_bytes(b"x")
    with pytest.raises(SystemExit) as err:
        schematics.main(["--out", str(afile)])
    assert err.value.code == 2 and "not a directory" in capsys.readouterr().err
    with pytest.raises(SystemExit) as err:
        schematics.main(["--out", str(tmp_path), "--only", "nope.png"])
    assert err.value.code == 2 and "invalid choice" in capsys.readouterr().err
    assert schematics.main(["--out", str(tmp_path), "--only", "gru_cell.png"]) == 0
    assert (tmp_path / "gru_cell.png").stat().st_size > 20_000


def test_beam_tree_numbers_are_exact():
    _load()
    from _schematics.search import beam_example

    trace, best = beam_example(2)
    # by hand: I saw it <eos> = .5 · .7 · .8 · .9, it <eos> = .3 · .45
    assert [h.tokens for h in best] == [[2, 3, 4, 1], [4, 1]]
    assert math.isclose(best[0].logprob, math.log(0.5 * 0.7 * 0.8 * 0.9))
    assert math.isclose(best[1].logprob, math.log(0.3 * 0.45))
    statuses = [[c[3] for c in step.candidates[0]] for step in trace]
    assert statuses[1] == ["kept", "finished", "kept", "pruned"]
    assert sum(s.count("finished") for s in statuses) == 3


def test_local_window_numbers():
    _load()
    from _schematics.search import LOCAL_P, LOCAL_S, LOCAL_W, local_example

    p, a_glob, a_loc = local_example()
    assert math.isclose(p, LOCAL_P)
    s = np.arange(LOCAL_S)
    inside = np.abs(s - p) <= LOCAL_W
    assert inside.tolist() == [False] * 5 + [True] * 4  # 5..8: clipped at the last position
    assert np.all(a_loc[~inside] == 0) and np.all(a_loc[inside] > 0)
    assert math.isclose(a_loc.sum(), 1.0) and math.isclose(a_glob.sum(), 1.0)
