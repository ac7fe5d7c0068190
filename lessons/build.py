"""Build the lesson notebooks from their sources: one source, two notebooks.

Usage (from the repository root, with the project's environment)::

    .venv/bin/python lessons/build.py            # build and execute every lesson
    .venv/bin/python lessons/build.py 00         # only lessons whose name starts with 00
    .venv/bin/python lessons/build.py --no-run   # build without executing (no outputs)
    .venv/bin/python lessons/build.py --check    # are the committed notebooks up to date?

Sources
-------
``lessons/src/NN_name.py`` is a Python file in the "percent" format:

- ``# %%`` starts a code cell;
- ``# %% [markdown]`` starts a markdown cell; each of its lines starts with
  ``# `` (or is a lone ``#`` for an empty line), which is stripped; a
  blank line (no ``#``) is kept as an empty line;
- lines before the first marker are ignored (use them for a module comment);
- blank lines at the start and end of a cell are dropped.

Solutions
---------
In code cells, the lines between ``# BEGIN SOLUTION`` and ``# END SOLUTION``
(markers included) are the instructor's. The learner notebook gets, in their
place, one line ``raise NotImplementedError  # your code here`` at the
indentation of the ``# BEGIN SOLUTION`` marker; the instructor notebook gets
the lines themselves, without the markers.

Outputs
-------
``lessons/NN_name.ipynb`` (learner, no solutions) and, for a lesson with
solution blocks, ``lessons/solutions/NN_name.ipynb`` (instructor). Both are executed with
nbclient in the ``python3`` kernel (the one installed in ``.venv``), in the
``lessons/`` directory, with a per-cell timeout of 120 s, so that their
outputs and figures are stored; a cell that raises stops the build. The
learner notebook's exercise cells therefore show "not implemented yet".
Relative Markdown links in the sources are written from ``lessons/``; the
instructor notebook gets them with one more ``../``. Execution timing
metadata is not recorded, so an unchanged lesson rebuilds with the same
cells.

``--check`` builds the cells from the sources without executing and
compares, cell by cell, type and source with the committed notebooks (not
the outputs); it exits with status 1 and names each stale notebook.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from pathlib import Path

import nbformat

LESSONS = Path(__file__).resolve().parent
ROOT = LESSONS.parent
SRC = LESSONS / "src"
SOLUTIONS = LESSONS / "solutions"
BEGIN, END = "# BEGIN SOLUTION", "# END SOLUTION"
STUB = "raise NotImplementedError  # your code here"
TIMEOUT = 120
_CELL = re.compile(r"^# %%(?P<md> \[markdown\])?\s*$")


def parse(text: str) -> list[tuple[str, str]]:
    """Cells of a percent-format source: a list of ``(cell_type, source)``."""
    cells: list[tuple[str, list[str]]] = []
    for line in text.splitlines():
        m = _CELL.match(line)
        if m:
            cells.append(("markdown" if m["md"] else "code", []))
        elif cells:
            kind, lines = cells[-1]
            if kind == "markdown":
                if line.strip() and line != "#" and not line.startswith("# "):
                    raise ValueError(f"markdown line does not start with '# ': {line!r}")
                line = line[2:]
            lines.append(line)
    out = []
    for kind, lines in cells:
        while lines and not lines[0].strip():
            lines.pop(0)
        while lines and not lines[-1].strip():
            lines.pop()
        out.append((kind, "\n".join(lines)))
    return out


def render(source: str, solutions: bool, blocks: list | None = None) -> str:
    """A code cell's source with solution blocks kept or replaced by a stub.

    ``blocks``, when given, receives the text of each solution block.
    """
    out, inside, block = [], False, []
    for line in source.split("\n"):
        marker = line.strip()
        if marker == BEGIN:
            if inside:
                raise ValueError("nested # BEGIN SOLUTION")
            inside, block = True, []
            if not solutions:
                out.append(line[: len(line) - len(line.lstrip())] + STUB)
        elif marker == END:
            if not inside:
                raise ValueError("# END SOLUTION without # BEGIN SOLUTION")
            inside = False
            if blocks is not None:
                blocks.append("\n".join(block))
        else:
            if inside:
                block.append(line)
            if solutions or not inside:
                out.append(line)
    if inside:
        raise ValueError("# BEGIN SOLUTION without # END SOLUTION")
    return "\n".join(out)


def solution_blocks(source: str) -> list[str]:
    """The text between each pair of markers, found exactly as `render` finds them."""
    blocks: list[str] = []
    render(source, True, blocks)
    return blocks


_RELATIVE = re.compile(r"(!?\[[^\]]*\]\()(?![a-z]+:|/|#)")


def _from_solutions(markdown: str) -> str:
    """Markdown with relative links rewritten for a notebook one directory down.

    Sources write links relative to ``lessons/`` (``../docs/images/x.png``);
    the instructor notebook lives in ``lessons/solutions/``.
    """
    return _RELATIVE.sub(r"\1../", markdown)


def build(src: Path, solutions: bool) -> nbformat.NotebookNode:
    """The (unexecuted) notebook of one source, learner or instructor version."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    for kind, text in parse(src.read_text(encoding="utf-8")):
        if kind == "markdown":
            nb.cells.append(nbformat.v4.new_markdown_cell(
                _from_solutions(text) if solutions else text))
        else:
            nb.cells.append(nbformat.v4.new_code_cell(render(text, solutions)))
    for k, cell in enumerate(nb.cells):
        cell["id"] = f"cell-{k:02d}"  # stable ids: rebuilding changes nothing
    return nb


def targets(src: Path) -> dict[bool, Path]:
    """Where the learner (False) and instructor (True) notebooks of ``src`` go;
    a lesson without solution blocks has only the learner notebook."""
    name = src.stem + ".ipynb"
    out = {False: LESSONS / name}
    if solution_blocks(src.read_text(encoding="utf-8")):
        out[True] = SOLUTIONS / name
    return out


def execute(nb: nbformat.NotebookNode) -> None:
    from nbclient import NotebookClient

    # MPLBACKEND=Agg (the Makefile exports it for headless tests) would replace
    # the kernel's inline backend, and the notebooks would store no figures.
    os.environ.pop("MPLBACKEND", None)

    NotebookClient(nb, timeout=TIMEOUT, kernel_name="python3", record_timing=False,
                   resources={"metadata": {"path": str(LESSONS)}}).execute()


def stale(src: Path) -> list[str]:
    """Why the committed notebooks of ``src`` do not match it (empty if they do)."""
    problems = []
    for solutions, path in targets(src).items():
        if not path.exists():
            problems.append(f"{os.path.relpath(path, ROOT)} is missing")
            continue
        want = [(c.cell_type, c.source) for c in build(src, solutions).cells]
        have = [(c.cell_type, c.source) for c in nbformat.read(path, as_version=4).cells]
        if want != have:
            diff = next((k for k, (w, h) in enumerate(zip(want, have)) if w != h),
                        min(len(want), len(have)))
            problems.append(f"{os.path.relpath(path, ROOT)} differs from "
                            f"{os.path.relpath(src, ROOT)} from cell {diff} on")
    return problems


def sources(prefix: str = "") -> list[Path]:
    return sorted(p for p in SRC.glob("[0-9][0-9]_*.py") if p.stem.startswith(prefix))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("prefix", nargs="?", default="", help="only lessons starting with this")
    ap.add_argument("--check", action="store_true", help="compare, do not build")
    ap.add_argument("--no-run", action="store_true", help="build without executing")
    args = ap.parse_args(argv)
    srcs = sources(args.prefix)
    if not srcs:
        print(f"no lesson sources in {SRC} match {args.prefix!r}", file=sys.stderr)
        return 1
    if args.check:
        problems = [p for s in srcs for p in stale(s)]
        for p in problems:
            print(p + "; run: .venv/bin/python lessons/build.py", file=sys.stderr)
        return 1 if problems else 0
    SOLUTIONS.mkdir(exist_ok=True)
    for src in srcs:
        for solutions, path in targets(src).items():
            start = time.perf_counter()
            nb = build(src, solutions)
            if not args.no_run:
                execute(nb)
            nbformat.write(nb, path)
            print(f"wrote {os.path.relpath(path, ROOT)} "
                  f"({time.perf_counter() - start:.1f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
