"""Smoke test of benchmarks/bench_rnn.py: it runs and prints the expected table.

Only the shape of the report is checked, never the timings.
"""

from .bench_helpers import markdown_rows, run_quick

HEADER = ("| layer | dtype | tinyattn ms | plain loop ms | naive loop ms | PyTorch ms "
          "| tinyattn / PyTorch | plain / tinyattn | naive / tinyattn |")


def _run(*args):
    return run_quick("bench_rnn.py", *args)


def test_quick_run_prints_every_cell(tmp_path):
    out = tmp_path / "bench.md"
    proc = _run("--markdown", str(out))
    rows = markdown_rows(proc.stdout, HEADER)
    assert [(r[0], r[1]) for r in rows] == [
        (layer, dtype) for layer in ("RNN", "GRU", "LSTM", "BiLSTM")
        for dtype in ("float32", "float64")]
    for row in rows:
        assert len(row) == 9
        float(row[2]), float(row[4]), float(row[7]), float(row[8])  # numbers, whatever their value
        if "LSTM" in row[0]:  # no fused loop: the plain loop is the module
            assert (row[3], row[7]) == ("= tinyattn", "1")
        else:
            float(row[3])
        assert row[5] == "n/a" or float(row[5]) > 0
    assert 'Target "LSTM and GRU tinyattn/PyTorch <= 1.0"' in proc.stdout.splitlines()[-1]
    assert "numpy" in proc.stdout and "BLAS" in proc.stdout and "B=4, T=5, D=8, H=8" in proc.stdout
    assert len(proc.stderr.strip().splitlines()) >= len(rows)  # progress, one line per cell
    assert out.read_text() == proc.stdout


def test_layer_and_dtype_subsets():
    rows = markdown_rows(_run("--layers", "GRU", "--dtypes", "float64").stdout, HEADER)
    assert [(r[0], r[1]) for r in rows] == [("GRU", "float64")]
