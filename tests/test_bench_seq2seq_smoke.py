"""Smoke test of benchmarks/bench_seq2seq.py: it runs and prints the expected tables.

Only the shape of the report is checked, never the timings.
"""

from .bench_helpers import markdown_rows, run_quick

HEADER = ("| model | lengths | tinyattn params | PyTorch params | tinyattn ms | PyTorch ms "
          "| tinyattn / PyTorch |")
PHASE_HEADER = ("| impl | model | lengths | forward ms | backward ms | update ms "
                "| total ms |")


def _run(*args):
    return run_quick("bench_seq2seq.py", *args)


def test_quick_run_prints_every_cell(tmp_path):
    out = tmp_path / "bench.md"
    proc = _run("--markdown", str(out))
    rows = markdown_rows(proc.stdout, HEADER)
    assert [(r[0], r[1]) for r in rows] == [
        (model, lengths) for model in ("bahdanau", "general") for lengths in ("full", "ragged")]
    for row in rows:
        assert len(row) == 7
        assert int(row[2]) > 0
        float(row[4])  # a number, whatever its value
        if row[3] != "n/a":  # with torch: the same architecture, the same parameter count
            assert row[3] == row[2]
            assert float(row[5]) > 0
            # the ratio column is tinyattn ms / PyTorch ms to 2 decimals (0.00 is possible
            # on a loaded machine, so check the arithmetic, not the size)
            assert abs(float(row[6]) - float(row[4]) / float(row[5])) <= 0.006
    phases = markdown_rows(proc.stdout, PHASE_HEADER)
    assert {(r[1], r[2]) for r in phases} == {(r[0], r[1]) for r in rows}
    assert "tinyattn" in {r[0] for r in phases}
    for row in phases:
        assert len(row) == 7
        [float(x) for x in row[3:]]
    assert 'Target "tinyattn/PyTorch <= 0.6"' in proc.stdout
    assert "numpy" in proc.stdout and "BLAS" in proc.stdout and "V=50, B=4, S=5, T=5" in proc.stdout
    assert len(proc.stderr.strip().splitlines()) >= len(rows)  # progress, one line per cell
    assert out.read_text() == proc.stdout


def test_model_and_length_subsets():
    rows = markdown_rows(_run("--models", "general", "--lengths", "ragged").stdout, HEADER)
    assert [(r[0], r[1]) for r in rows] == [("general", "ragged")]
