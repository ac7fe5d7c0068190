"""Smoke test of benchmarks/bench_transformer.py: it runs and prints every table.

Only the shape of the report is checked, never the timings.
"""

from .bench_helpers import markdown_rows, run_quick

LAYERS = ("| layer | dtype | tinyattn ms | PyTorch ms | product floor ms | tinyattn / PyTorch "
          "| floor / tinyattn |")
HEADS = ("| dtype | batched ms | head loop ms | PyTorch MHA ms | loop / batched "
         "| batched / PyTorch |")
STEP = "| tinyattn ms | PyTorch ms | tinyattn / PyTorch |"


def test_quick_run_prints_every_table(tmp_path):
    out = tmp_path / "bench.md"
    proc = run_quick("bench_transformer.py", "--markdown", str(out))
    rows = markdown_rows(proc.stdout, LAYERS)
    assert [(r[0], r[1]) for r in rows] == [(k, d) for k in ("encoder", "decoder")
                                          for d in ("float32", "float64")]
    for row in rows:
        float(row[2]), float(row[4]), float(row[6])  # numbers, whatever their value
        assert row[3] == "n/a" or float(row[3]) > 0
    heads = markdown_rows(proc.stdout, HEADS)
    assert [r[0] for r in heads] == ["float32", "float64"]
    step = markdown_rows(proc.stdout, STEP)
    assert len(step) == 1 and float(step[0][0]) > 0
    assert 'Target "layers tinyattn/PyTorch <= 1.0"' in proc.stdout
    assert proc.stdout.rstrip().splitlines()[-1].startswith(
        'Target "training step tinyattn/PyTorch <= 1.0"')
    assert "BLAS" in proc.stdout and out.read_text() == proc.stdout
