"""Every reference in the repository's text points at something inside the repository.

The code, the lessons and the READMEs cite the project's own pages: the
equations as ``docs/equations.md §N``, the design conventions as
``docs/design.md §N``, and the two source articles as "document 000" /
"document 003", defined in ``docs/sources.md``. A learner's clone has
nothing outside the repository, so this file fails on:

- ``link``: a Markdown link ``[text](target)`` whose relative target does not
  exist, or whose ``#anchor`` matches no heading of the target ``.md`` file;
- ``external``: a path outside the repository (the parent directory's
  ``shared`` folder, the seed articles' folder, ``/work``) or a bare name of
  the reading material's equation or design page (``_EXTERNAL`` below);
- ``section``: a ``docs/equations.md §N`` or ``docs/design.md §N`` whose §N
  is not a heading of that page, or errata cited in docs/equations.md (they
  live in docs/sources.md);
- ``docs-path``: a ``docs/...`` path that does not exist;
- ``document``: a "document NNN" that docs/sources.md does not define
  (except in docs/sources.md itself, which says which numbers do not exist).

The scanning functions are small and take plain text, so that
`test_checker_reports_each_kind` can show that each rule can fail.
"""

from __future__ import annotations

import importlib
import json
import re
import subprocess
import unicodedata
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from urllib.parse import unquote

import pytest

ROOT = Path(__file__).resolve().parents[1]
SELF = "tests/test_references.py"  # holds example strings; never scanned
EQUATIONS = "docs/equations.md"
DESIGN = "docs/design.md"
SOURCES = "docs/sources.md"
RULES = ("link", "external", "section", "docs-path", "document", "code")

# Between two words of a reference: spaces, or one line break, also inside a
# "# " comment block (lessons/src) or an indented docstring.
_GAP = r"[ \t]*(?:\n[ \t]*(?:#[ \t]*)?)?"
_SECTION = r"§\d+(?:\.\d+)*"
# The reading material's page names, assembled so that this file does not itself
# name pages a learner's clone does not have (the same pattern as written out).
_EQ_PAGE, _DESIGN_PAGE = "EQUATIONS" + r"\.md", "DESIGN" + r"\.md"
_EXTERNAL = re.compile(r"(?:\.\./|/work/)shared\b[^\s`'\")]*|shared/" + _EQ_PAGE
                       + r"|\bseeds/[^\s`'\")]*|" + _EQ_PAGE + "|" + _DESIGN_PAGE)


def _section_ref(page: str) -> re.Pattern:
    """``page §N``, ``page`` §N–§M, ``page``, §N and §M, ... (the §s in group 1)."""
    return re.compile(re.escape(page) + r"`?" + _GAP + r",?" + _GAP
                      + rf"({_SECTION}(?:{_GAP}(?:–|—|-|,|and|or|&|to){_GAP}{_SECTION})*)")


_EQ_REF = _section_ref(EQUATIONS)
_DESIGN_REF = _section_ref(DESIGN)
_EQ_ERRATA = re.compile(r"docs/equations\.md`?" + _GAP + r",?" + _GAP + r"[\"“]?errata",
                        re.IGNORECASE)
_CODE_PATH = re.compile(r"(?<![\w./-])tinyattn/[\w/]*\w\.py\b")
# a dotted name in prose or code, not a string literal such as the run format "tinyattn.run"
_DOTTED = re.compile(r"(?<![\w.\"'/-])tinyattn(?:\.[A-Za-z_]\w*)+")
_DOCS_PATH = re.compile(r"(?<![\w./-])docs/[\w./-]*[\w/]")
_DOCUMENT = re.compile(r"\b[Dd]ocuments?" + _GAP + r"(\d{3}(?:" + _GAP
                       + r"(?:,|and|or|&)" + _GAP + r"\d{3})*)\b")
_LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\[\]]*\])*\]\(\s*<?([^()\s<>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_FENCE = re.compile(r"^[ \t]*(```|~~~)")
_HEADING = re.compile(r"^ {0,3}#{1,6}[ \t]+(.*?)[ \t]*#*[ \t]*$")


@dataclass(frozen=True)
class Text:
    """One piece of text to scan.

    ``where`` names it in messages (a file, or a notebook cell); ``base`` is
    the repository-relative directory that its relative links start from;
    ``markdown`` says whether Markdown links are checked in it.
    """

    where: str
    base: str
    text: str
    markdown: bool


# ----- what the two pages define ----------------------------------------------
def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces -> '-'."""
    text = re.sub(r"`([^`]*)`", r"\1", heading)  # code spans keep their text
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", text)  # links keep their text
    text = re.sub(r"<[^>]+>", "", text).strip().lower()
    keep = "".join(c for c in text if c in " -_" or unicodedata.category(c)[0] in "LMN")
    return keep.replace(" ", "-")


def headings(markdown: str) -> list[str]:
    """The ATX headings of a Markdown text, outside fenced code blocks."""
    found, fenced = [], False
    for line in markdown.splitlines():
        if _FENCE.match(line):
            fenced = not fenced
        elif not fenced and (m := _HEADING.match(line)):
            found.append(m.group(1))
    return found


def anchors(markdown: str) -> set[str]:
    """Every heading anchor of a Markdown text, duplicates numbered as GitHub does."""
    seen: dict[str, int] = {}
    out = set()
    for h in headings(markdown):
        s = slug(h)
        out.add(s if s not in seen else f"{s}-{seen[s]}")
        seen[s] = seen.get(s, 0) + 1
    return out


def page_sections(markdown: str) -> set[str]:
    """Section numbers ("1", "5.2", ...) of headings that start with §N."""
    return {m.group(1) for h in headings(markdown) if (m := re.match(r"§(\d+(?:\.\d+)*)\b", h))}


def defined_documents(markdown: str) -> set[str]:
    """Document numbers ("000", ...) of headings "Document NNN"."""
    return {m.group(1) for h in headings(markdown)
            if (m := re.match(r"Document (\d{3})\b", h.strip()))}


@cache
def _file_anchors(path: str) -> frozenset[str]:
    return frozenset(anchors((ROOT / path).read_text(encoding="utf-8")))


# ----- scanning ----------------------------------------------------------------
def _blank_code(markdown: str) -> str:
    """Markdown with fenced blocks and inline code spans replaced by spaces
    (newlines kept, so line numbers stay right)."""
    lines, fenced = [], False
    for line in markdown.split("\n"):
        if _FENCE.match(line):
            fenced = not fenced
            lines.append("")
        else:
            lines.append(" " * len(line) if fenced else line)
    return re.sub(r"`[^`\n]*`", lambda m: " " * len(m.group(0)), "\n".join(lines))


def _line(text: str, pos: int) -> int:
    return text.count("\n", 0, pos) + 1


def _check_link(target: str, base: str, root: Path) -> str | None:
    """What is wrong with one link target, or None."""
    if re.match(r"[a-zA-Z][a-zA-Z0-9+.-]*:", target) or target.startswith("#"):
        return None  # http(s), mailto, ...; an anchor in the same text
    path, _, anchor = unquote(target).partition("#")
    rel = Path(base, path)
    full = (root / rel).resolve()
    if not full.exists():
        return f"no file {rel.as_posix()}"
    if anchor and full.suffix == ".md":
        if root.resolve() not in full.parents:
            return f"{rel.as_posix()} is outside the repository"
        if anchor not in _file_anchors(full.relative_to(root.resolve()).as_posix()):
            return f"no heading with anchor #{anchor} in {rel.as_posix()}"
    return None


OPTIONAL = ("torch",)  # what a module of tinyattn may import without requiring it


@cache
def _resolve(dotted: str) -> str | None:
    """None when ``tinyattn.a.b`` names a module, or an attribute of one (a
    class attribute counts), else why not."""
    parts = dotted.split(".")
    module, k = None, len(parts)
    while k > 0:
        try:
            module = importlib.import_module(".".join(parts[:k]))
            break
        except ModuleNotFoundError as err:
            if err.name in OPTIONAL and any(
                    (ROOT / "/".join(parts[:j])).with_suffix(".py").is_file()
                    for j in range(1, k + 1)):
                return None  # the module exists; its optional dependency is not installed
            k -= 1
    obj = module
    for name in parts[k:]:
        if not hasattr(obj, name):
            return f"{'.'.join(parts[:k])} has no {'.'.join(parts[k:])}"
        obj = getattr(obj, name)
    return None


def _section_numbers(refs: str) -> list[str]:
    """Every §N a reference names; a range §a–§b names a..b."""
    nums = re.findall(r"§(\d+(?:\.\d+)*)", refs)
    out = list(nums)
    for a, b in re.findall(r"§(\d+)" + _GAP + r"[–—-]" + _GAP + r"§(\d+)\b", refs):
        out += [str(n) for n in range(int(a), int(b) + 1)]
    return out


def scan(item: Text, *, sections: set[str], documents: set[str], design: set[str] = frozenset(),
         root: Path = ROOT) -> list[tuple[str, str]]:
    """All problems in one text, as ``(rule, message)``; message = where:line: what.

    ``sections`` and ``design`` are the §N headings of docs/equations.md and
    docs/design.md; ``documents`` the document numbers docs/sources.md defines.
    """
    problems = []
    text = item.text

    def report(rule, pos, what):
        problems.append((rule, f"{item.where}:{_line(text, pos)}: {what}"))

    if item.markdown:
        plain = _blank_code(text)
        for m in _LINK.finditer(plain):
            why = _check_link(m.group(1), item.base, root)
            if why:
                report("link", m.start(), f"link {m.group(0)!r}: {why}")
    for m in _EXTERNAL.finditer(text):
        context = text[max(0, m.start() - 20): m.end() + 20].replace("\n", " ")
        report("external", m.start(), f"{m.group(0)!r} points outside the repository "
                                      f"(use {EQUATIONS}, {DESIGN} or {SOURCES}): …{context}…")
    for page, ref, known in ((EQUATIONS, _EQ_REF, sections), (DESIGN, _DESIGN_REF, design)):
        for m in ref.finditer(text):
            missing = sorted({n for n in _section_numbers(m.group(1)) if n not in known},
                             key=lambda n: [int(p) for p in n.split(".")])
            if missing:
                report("section", m.start(), f"{m.group(0)!r}: no heading "
                       f"{', '.join('§' + n for n in missing)} in {page}")
    for m in _EQ_ERRATA.finditer(text):
        report("section", m.start(), f"{m.group(0)!r}: the errata are in "
                                     f"{SOURCES}#errata-in-document-000")
    for m in _CODE_PATH.finditer(text):
        if not (root / m.group(0)).is_file():
            report("code", m.start(), f"{m.group(0)!r} does not exist")
    for m in _DOTTED.finditer(text):
        why = _resolve(m.group(0))
        if why:
            report("code", m.start(), f"{m.group(0)!r}: {why}")
    for m in _DOCS_PATH.finditer(text):
        if not (root / m.group(0)).exists():
            report("docs-path", m.start(), f"{m.group(0)!r} does not exist")
    for m in _DOCUMENT.finditer(text if item.where != SOURCES else ""):
        unknown = [n for n in re.findall(r"\d{3}", m.group(1)) if n not in documents]
        if unknown:
            report("document", m.start(), f"{m.group(0)!r}: {SOURCES} defines only "
                   f"{', '.join('document ' + d for d in sorted(documents)) or 'no document'}")
    return problems


# ----- the repository's texts --------------------------------------------------
def _tracked() -> list[str]:
    try:
        out = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True,
                             check=True).stdout
        return out.splitlines()
    except (OSError, subprocess.CalledProcessError):  # not a git checkout (an sdist)
        skip = {".git", ".venv", "runs", "build", "dist"}
        return [p.relative_to(ROOT).as_posix() for p in ROOT.rglob("*")
                if p.is_file() and not skip & set(p.relative_to(ROOT).parts)]


def _scanned(path: str) -> str | None:
    """"md", "py" or "ipynb" for a file whose text is scanned, else None."""
    if path == SELF:
        return None
    if path.endswith(".md"):
        return "md"
    if path.endswith(".py") and (path == "lessons/build.py" or path.startswith(
            ("tinyattn/", "tests/", "benchmarks/", "lessons/src/"))):
        return "py"
    if re.fullmatch(r"lessons/(solutions/)?[^/]+\.ipynb", path):
        return "ipynb"
    return None


def repository_texts() -> list[Text]:
    texts = []
    for path in _tracked():
        kind = _scanned(path)
        if kind is None or not (ROOT / path).is_file():
            continue
        base = Path(path).parent.as_posix()
        raw = (ROOT / path).read_text(encoding="utf-8")
        if kind != "ipynb":
            texts.append(Text(path, base, raw, kind == "md"))
            continue
        for i, cell in enumerate(json.loads(raw)["cells"]):
            if cell["cell_type"] in ("markdown", "code"):
                source = cell["source"]
                source = "".join(source) if isinstance(source, list) else source
                texts.append(Text(f"{path} cell {i}", base, source,
                                  cell["cell_type"] == "markdown"))
    return texts


@cache
def _all_problems() -> tuple[tuple[str, str], ...]:
    sections = page_sections((ROOT / EQUATIONS).read_text(encoding="utf-8"))
    design = page_sections((ROOT / DESIGN).read_text(encoding="utf-8"))
    documents = defined_documents((ROOT / SOURCES).read_text(encoding="utf-8"))
    out = []
    for item in repository_texts():
        out += scan(item, sections=sections, documents=documents, design=design)
    return tuple(out)


# ----- tests ---------------------------------------------------------------------
def test_pages_define_what_the_code_cites():
    eq = (ROOT / EQUATIONS).read_text(encoding="utf-8")
    src = (ROOT / SOURCES).read_text(encoding="utf-8")
    assert {str(n) for n in range(1, 8)} <= page_sections(eq)
    design = (ROOT / DESIGN).read_text(encoding="utf-8")
    assert page_sections(design) == {str(n) for n in range(1, 9)}  # §1 ... §8
    assert defined_documents(src) == {"000", "003"}
    assert {"errata-in-document-000", "papers"} <= anchors(src)


@pytest.mark.parametrize("rule", RULES)
def test_references_resolve(rule):
    found = [msg for r, msg in _all_problems() if r == rule]
    if found:
        pytest.fail(f"{len(found)} bad reference(s) ({rule}):\n" + "\n".join(found),
                    pytrace=False)


def test_slug_is_githubs():
    assert slug("§4 Bahdanau (additive) attention") == "4-bahdanau-additive-attention"
    assert slug("§5.2 Global scores") == "52-global-scores"
    assert slug("5. There is no `alpha` hyper-parameter") == "5-there-is-no-alpha-hyper-parameter"
    assert anchors("# A\n## A\n```\n# not a heading\n```\n") == {"a", "a-1"}


# The outside paths the checker must catch, assembled here so that this file
# does not itself point a learner at files their clone does not have.
OUTSIDE_EQUATIONS = "../" + "shared/" + "EQUATIONS" + ".md"
OUTSIDE_SEED = "seeds" + "/000_…"
OUTSIDE_DESIGN = "DESIGN" + ".md"


def test_checker_reports_each_kind():
    sections, documents, design = {"1", "4", "5", "5.2"}, {"000", "003"}, {"2", "3", "4"}
    bad = Text("FAKE.md", ".", "\n".join([
        "[gone](no/such/file.md)",                              # 1 link: no file
        "[anchor](docs/equations.md#no-such-heading)",          # 2 link: no anchor
        "see `docs/equations.md` §99 and docs/equations.md §4–§6",  # 3 section: 99, 6
        f"(`{OUTSIDE_EQUATIONS}`) and `{OUTSIDE_SEED}`",          # 4 external, twice
        "document 001, documents 000 and 002",                  # 5 document: 001, 002
        "docs/missing.md",                                      # 6 docs-path
        "(`docs/equations.md`, errata)",                        # 7 section: errata
        f"`{OUTSIDE_DESIGN}` §3, docs/design.md §2, §9 and `docs/design.md` §1",  # 8 ext.; 9, 1
        "```",
        "[inside a code block](nowhere.md)",                    # 9 not a link: code
        "```",
    ]), markdown=True)
    found = scan(bad, sections=sections, documents=documents, design=design)
    by_line = {(rule, int(msg.split(":")[1])) for rule, msg in found}
    assert by_line == {("link", 1), ("link", 2), ("section", 3), ("external", 4),
                       ("document", 5), ("docs-path", 6), ("section", 7), ("external", 8),
                       ("section", 8)}
    messages = "\n".join(msg for _, msg in found)
    for expected in ("no file no/such/file.md", "#no-such-heading", "§99", "§6",
                     f"'{OUTSIDE_EQUATIONS}'", f"'{OUTSIDE_SEED}'", "document 000, document 003",
                     "'docs/missing.md' does not exist", "errata-in-document-000",
                     f"'{OUTSIDE_DESIGN}' points outside", "no heading §9 in docs/design.md",
                     "no heading §1 in docs/design.md"):
        assert expected in messages, expected
    assert "§4" not in messages.replace("§4–§6", "")  # §4 and §5 exist: only §6 reported
    # ("no heading §9 in" also shows that §2, which exists, is not reported with it)
    # each page's §N is looked up among that page's headings only
    assert scan(Text("x.py", ".", "docs/equations.md §1; docs/design.md §3", markdown=False),
                sections=sections, documents=documents, design=design) == []
    # the same references, written right, pass; a comment block may break a line
    good = Text("lessons/src/FAKE.py", "lessons/src", "\n".join([
        "# `docs/equations.md` §4–§5, docs/equations.md §5.2, `docs/equations.md`",
        "# §1; document 000 and documents 000 and 003; docs/sources.md; docs/equations.md",
        "# `docs/design.md` §2–§4, docs/design.md §3, \"one forward\"; `docs/design.md`",
        "# §4 and §2",
        "x = attns['general'](h)  # not Markdown: never read as a link",
    ]), markdown=False)
    assert scan(good, sections=sections, documents=documents, design=design) == []
    defining = Text(SOURCES, "docs", "There is no document 001 or 002.", markdown=True)
    assert scan(defining, sections=sections, documents=documents, design=design) == []
    link_ok = Text("docs/FAKE.md", "docs", "[errata](sources.md#errata-in-document-000) "
                   "[web](https://example.org/x) [here](#anything)", markdown=True)
    assert scan(link_ok, sections=sections, documents=documents, design=design) == []
