"""The README's usage example runs and prints what the README says."""

import contextlib
import io
import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_usage_example_output_is_real():
    text = README.read_text(encoding="utf-8")
    match = re.search(r"## Usage\s+```python\n(.*?)```\s+prints\s+```text\n(.*?)```", text, re.S)
    assert match, "README must have a ## Usage python block followed by its output"
    code, expected = match.groups()
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, "README.md", "exec"), {})
    assert out.getvalue() == expected
