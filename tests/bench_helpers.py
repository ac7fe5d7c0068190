"""What the benchmark smoke tests share: run a script quickly, read its tables."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_script(script: str, *args) -> subprocess.CompletedProcess:
    """``benchmarks/<script> ARGS``, which must succeed.

    A subprocess keeps torch's import and set_num_threads out of the test process.
    """
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / script), *args],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return proc


def run_quick(script: str, *args) -> subprocess.CompletedProcess:
    """``benchmarks/<script> --quick --repeats 1 ARGS`` (`run_script`)."""
    return run_script(script, "--quick", "--repeats", "1", *args)


def markdown_rows(stdout: str, header: str) -> list[list[str]]:
    """The cells of the Markdown table whose header line is ``header``."""
    lines = stdout.splitlines()
    start = lines.index(header)
    body = []
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        body.append([cell.strip() for cell in line.strip("|").split("|")])
    return body
