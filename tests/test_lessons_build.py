"""lessons/build.py and the committed notebooks, without executing anything.

Executing the notebooks is nbmake's job (``pytest --nbmake lessons/*.ipynb``).
"""

import importlib.util
import json
from pathlib import Path

import pytest

pytest.importorskip("nbformat", reason="lessons/build.py needs nbformat (the notebooks extra)")

LESSONS = Path(__file__).resolve().parents[1] / "lessons"
_spec = importlib.util.spec_from_file_location("lessons_build", LESSONS / "build.py")
build = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(build)

SOURCES = build.sources()


def test_there_are_lessons():
    assert [s.stem for s in SOURCES][:1] == ["00_gradient_checking"]


@pytest.mark.parametrize("src", SOURCES, ids=lambda p: p.stem)
def test_committed_notebooks_match_their_source(src):
    assert build.stale(src) == []


EXERCISES = [s for s in SOURCES if build.solution_blocks(s.read_text(encoding="utf-8"))]


def test_lessons_with_exercises_have_instructor_versions_and_others_not():
    assert "00_gradient_checking" in [s.stem for s in EXERCISES]
    for src in SOURCES:
        assert (LESSONS / "solutions" / f"{src.stem}.ipynb").exists() == (src in EXERCISES)


@pytest.mark.parametrize("src", EXERCISES, ids=lambda p: p.stem)
def test_learner_notebook_has_no_solution(src):
    blocks = build.solution_blocks(src.read_text(encoding="utf-8"))
    learner = (LESSONS / f"{src.stem}.ipynb").read_text(encoding="utf-8")
    instructor = (LESSONS / "solutions" / f"{src.stem}.ipynb").read_text(encoding="utf-8")
    assert build.BEGIN not in learner and build.END not in learner
    assert build.BEGIN not in instructor and build.END not in instructor
    # Sources and outputs alike (json-escaped as the file stores them).
    for block in blocks:
        lines = [ln.strip() for ln in block.splitlines()]
        code = [ln for ln in lines if len(ln) >= 8 and not ln.startswith("#")]
        assert code
        for line in code:
            escaped = json.dumps(line, ensure_ascii=False)[1:-1]
            assert escaped not in learner, f"solution line in the learner notebook: {line}"
            assert escaped in instructor
    cells = json.loads(learner)["cells"]
    stubs = sum("".join(c["source"]).count(build.STUB)
                for c in cells if c["cell_type"] == "code")
    assert stubs == len(blocks)


@pytest.mark.parametrize("src", SOURCES, ids=lambda p: p.stem)
def test_committed_notebooks_were_executed(src):
    for path in build.targets(src).values():
        nb = json.loads(path.read_text(encoding="utf-8"))
        code = [c for c in nb["cells"] if c["cell_type"] == "code"]
        assert all(c["execution_count"] for c in code), f"{path.name}: run lessons/build.py"
        assert not any(o["output_type"] == "error" for c in code for o in c["outputs"])
        assert any("image/png" in o.get("data", {}) for c in code for o in c["outputs"])


def test_check_reports_missing_and_stale_notebooks(tmp_path, monkeypatch):
    import nbformat

    src = SOURCES[0]
    monkeypatch.setattr(build, "LESSONS", tmp_path)
    monkeypatch.setattr(build, "SOLUTIONS", tmp_path / "solutions")
    (tmp_path / "solutions").mkdir()
    assert [p.endswith("is missing") for p in build.stale(src)] == [True, True]
    for solutions, path in build.targets(src).items():
        nbformat.write(build.build(src, solutions), path)
    assert build.stale(src) == []
    path = build.targets(src)[True]
    nb = nbformat.read(path, as_version=4)
    nb.cells[3].source += "\nprint('edited')"
    nbformat.write(nb, path)
    (problem,) = build.stale(src)
    assert "differs from" in problem and "from cell 3 on" in problem


def test_parse_and_render():
    text = ("# header comment, ignored\n"
            "# %% [markdown]\n# # Title\n#\n# text\n\n"
            "# %%\ndef f(x):\n    y = 1\n    # BEGIN SOLUTION\n    return x + y\n"
            "    # END SOLUTION\n")
    cells = build.parse(text)
    assert cells == [("markdown", "# Title\n\ntext"),
                     ("code", "def f(x):\n    y = 1\n    # BEGIN SOLUTION\n"
                              "    return x + y\n    # END SOLUTION")]
    code = cells[1][1]
    assert build.render(code, solutions=False) == (
        "def f(x):\n    y = 1\n    raise NotImplementedError  # your code here")
    assert build.render(code, solutions=True) == "def f(x):\n    y = 1\n    return x + y"
    assert build.solution_blocks(code) == ["    return x + y"]


@pytest.mark.parametrize("bad", ["# BEGIN SOLUTION\nx = 1", "x = 1\n# END SOLUTION",
                                 "# BEGIN SOLUTION\n# BEGIN SOLUTION\n# END SOLUTION"])
def test_unbalanced_markers_are_errors(bad):
    with pytest.raises(ValueError, match="SOLUTION"):
        build.render(bad, solutions=False)


def test_markdown_lines_must_be_comments():
    with pytest.raises(ValueError, match="markdown line"):
        build.parse("# %% [markdown]\n# fine\nnot a comment\n")


def test_instructor_notebooks_get_links_one_directory_down():
    text = "![a](../docs/images/x.png), [b](03_x.ipynb), [c](https://x.org), [d](#top)"
    assert build._from_solutions(text) == (
        "![a](../../docs/images/x.png), [b](../03_x.ipynb), [c](https://x.org), [d](#top)")


def test_every_section_of_the_equations_is_mapped_to_a_lesson():
    import re

    root = LESSONS.parent
    sections = re.findall(r"^#{2,3} (§\d+(?:\.\d+)?) ", (root / "docs/equations.md").read_text(
        encoding="utf-8"), re.M)
    readme = (LESSONS / "README.md").read_text(encoding="utf-8")
    rows = dict(re.findall(r"^\| (§\d+(?:\.\d+)?) \| [^|]+ \| ([\d, ]+) \|$", readme, re.M))
    leaves = {s for s in sections if not any(o.startswith(s + ".") for o in sections)}
    assert leaves and leaves <= set(rows) <= set(sections)  # a parent's own text may be mapped
    stems = {s.stem[:2] for s in SOURCES}
    for sec, lessons in rows.items():
        assert {n.strip() for n in lessons.split(",")} <= stems, sec
