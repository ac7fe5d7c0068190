"""Numbers quoted in a lesson's prose are numbers its stored outputs print.

A lesson that says "96.9 %" or "3.1e-8" must have a cell whose committed
output prints exactly that (or a code cell that writes it, for a setting).
Only measurement-like numbers are checked: decimals, powers of ten and
percentages, outside math ($…$), inline code and references (arXiv ids,
§ sections). A number the prose may state without a printed output (a
setting chosen in prose, a hand-computed table) is listed in ``ALLOWED``
with the reason.
"""

import json
import re
from pathlib import Path

import pytest

LESSONS = Path(__file__).resolve().parents[1] / "lessons"
NOTEBOOKS = sorted(LESSONS.glob("[0-9][0-9]_*.ipynb"))

NUMBER = re.compile(r"(?<![\w.$^_{/\-−])"
                    r"(\d+(?:,\d{3})*\.\d+(?:e-?\d+)?|\d+(?:\.\d+)?e-\d+|\d+(?:\.\d+)?\s?%)")
NOT_QUOTES = re.compile(
    r"\$\$.*?\$\$|\$(?:[^$\n]|\n(?!\n))*\$|`[^`\n]*`"  # math (may wrap), code
    r"|arXiv:\s?\d+\.\d+|(?:§|[Ss]ection|[Ss]ections)\s?\d+(?:\.\d+)*"  # references
    r"|^#+\s+\d+(?:\.\d+)*|\d+(?:\.\d+){2,}",  # numbered headings, dotted dates / versions
    re.S | re.M)

# notebook stem -> {number as written: why the prose may say it without an output}
ALLOWED = {
    "00_gradient_checking": {
        "100 %": "what a relative error is when the numerical value is 0 (a definition)",
        "1e-8": "the expected range of a correct step backward, before it is measured",
    },
    "09_decoding": {
        n: "a product of two probabilities of the toy table the lesson prints, worked by hand"
        for n in ("0.360", "0.200", "0.175", "0.020", "0.36")},
    "10_training_loop": {
        "0.003": "lesson 11's learning rate, a setting of another lesson"},
    "13_self_attention": {
        "1e-7": "the checker's tolerance TOL_STEP, a constant of tinyattn/gradcheck.py"},
    "11_translation": {
        "80 %": "the split fractions, a setting",
        "10 %": "the split fractions, a setting",
        "0.004": "the learning rate of another recipe, a setting",
    },
}


def _texts(path):
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    printed = []
    for c in cells:
        if c["cell_type"] == "code":
            printed.append("".join(c["source"]))
            for o in c.get("outputs", []):
                printed.append("".join(o.get("text", "")))
                printed.append("".join(o.get("data", {}).get("text/plain", "")))
    prose = [NOT_QUOTES.sub(" ", "".join(c["source"])) for c in cells
             if c["cell_type"] == "markdown"]
    return "\n".join(printed), prose


def unbacked(path):
    """(number, context) for every quoted number no output or code of ``path`` contains."""
    printed, prose = _texts(path)
    allowed = ALLOWED.get(path.stem, {})
    found = []
    for text in prose:
        for m in NUMBER.finditer(text):
            num = m.group(1)
            bare = num.replace(" ", "").rstrip("%").replace(",", "")
            forms = {num, bare, num.replace(" ", ""), re.sub(r"e-0?(\d)", r"e-0\1", bare),
                     re.sub(r"e-0(\d)", r"e-\1", bare)}
            if num in allowed or any(re.search(rf"(?<![\d.]){re.escape(v)}(?!\d)", printed)
                                     for v in forms):
                continue
            found.append((num, " ".join(text[max(0, m.start() - 60):m.end() + 20].split())))
    return found


def test_there_are_notebooks():
    assert len(NOTEBOOKS) >= 10


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_quoted_numbers_are_printed(path):
    missing = unbacked(path)
    assert not missing, (f"{path.name}: numbers in the prose that no output prints (quote them "
                         "as printed, print them, or list them in ALLOWED with the reason):\n"
                         + "\n".join(f"  {n!r}: …{c}…" for n, c in missing))


def test_the_check_catches_an_unprinted_number(tmp_path):
    nb = {"cells": [
        {"cell_type": "code", "source": ["print(f'{0.4712:.2f} s')"],
         "outputs": [{"output_type": "stream", "text": ["0.47 s\n"]}]},
        {"cell_type": "markdown", "source": ["K = 2 takes 0.47 s, K = 8 about 1.0 s; see §3.2 "
                                             "and arXiv:1409.0473, $0.5$ and `0.25`; 0.4 "
                                             "is not the 0.47 printed."]}]}
    path = tmp_path / "99_fake.ipynb"
    path.write_text(json.dumps(nb), encoding="utf-8")
    assert [n for n, _ in unbacked(path)] == ["1.0", "0.4"]
