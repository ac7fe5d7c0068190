"""Smoke test of benchmarks/bench_translate.py on the real eng-fra corpus (when
TINYATTN_DATA holds it and PyTorch is installed): it trains both models on a
few hundred pairs and prints one row per epoch. Only the report's shape and
arithmetic are checked, never the timings or the scores' size."""

import os
from pathlib import Path

import pytest

from .bench_helpers import markdown_rows, run_script

pytest.importorskip("torch")
pytestmark = pytest.mark.skipif(
    not (Path(os.environ.get("TINYATTN_DATA", "/nonexistent")) / "eng-fra.tsv").is_file(),
    reason="TINYATTN_DATA is unset or lacks eng-fra.tsv")

HEADER = ("| epoch | tinyattn s | tinyattn BLEU 1 ref | all refs | PyTorch s | "
          "PyTorch BLEU 1 ref | all refs | time tinyattn/PyTorch |")


def test_quick_run_prints_every_epoch(tmp_path):
    out = tmp_path / "bench.md"
    proc = run_script("bench_translate.py", "--quick", "--epochs", "2", "--emb-size", "8",
                      "--hidden-size", "8", "--dtype", "float64", "--markdown", str(out))
    rows = markdown_rows(proc.stdout, HEADER)
    assert [r[0] for r in rows] == ["1", "2"]
    for row in rows:
        ours, theirs = [float(x) for x in row[1:4]], [float(x) for x in row[4:7]]
        assert all(0 <= b <= 100 for b in ours[1:] + theirs[1:])
        # float64, same weights, same batches: the two models stay together
        assert abs(ours[1] - theirs[1]) < 1.0
        assert float(row[7]) > 0  # seconds print to 0.1 s: the ratio is of unrounded times
    assert out.read_text() == proc.stdout
    assert "split by source" in proc.stdout
