"""Synthetic tasks: determinism, gold alignments that really point at the
right source characters, date formats, disjoint splits, the TSV format and
the files under data/ being exactly what ``python -m tinyattn.data`` makes."""

import contextlib
import filecmp
import io
import re
from datetime import date
from pathlib import Path

import numpy as np
import pytest

from tinyattn.data import (
    SPLITS,
    TASKS,
    DataError,
    Example,
    make_splits,
    make_task,
    read_task_tsv,
    write_task_tsv,
)
from tinyattn.data import tasks as tasks_module
from tinyattn.data.__main__ import main
from tinyattn.data.dates import CASINGS, DATE_FORMATS, render_date, sample_date
from tinyattn.data.tasks import DEFAULT_SEEDS, date_example

ROOT = Path(__file__).resolve().parents[1]
# The test's own English names, independent of the library's tables.
MONTHS = "january february march april may june july august september october november " \
         "december".split()
WEEKDAYS = "monday tuesday wednesday thursday friday saturday sunday".split()


def parse_year(text):
    assert text.isdigit() and len(text) in (2, 4), text
    year = int(text)
    return year if len(text) == 4 else year + (1900 if year >= 50 else 2000)


def parse_month(text):
    if text.isdigit():
        return int(text)
    low = text.lower()
    assert text in (low, low.title(), low.upper()), text
    (month,) = [k + 1 for k, name in enumerate(MONTHS) if low in (name, name[:3])]
    return month


def parse_day(text):
    digits = re.match(r"\d+", text).group(0)
    suffix, day = text[len(digits):], int(digits)
    if suffix:
        expected = "th" if day in (11, 12, 13) else {1: "st", 2: "nd", 3: "rd"}.get(day % 10, "th")
        assert suffix == expected, text
    return day


def check_date_example(ex):
    """Every target character's gold span spells the field it belongs to."""
    iso = "".join(ex.tgt)
    day = date.fromisoformat(iso)
    assert date(1950, 1, 1) <= day <= date(2049, 12, 31)
    src = "".join(ex.src)
    spans = [src[g[0]:g[1]] if g else None for g in ex.gold]
    assert spans[4] is None and spans[7] is None
    assert len(set(spans[0:4])) == len(set(spans[5:7])) == len(set(spans[8:10])) == 1
    assert parse_year(spans[0]) == day.year
    assert parse_month(spans[5]) == day.month
    assert parse_day(spans[8]) == day.day
    # a weekday name anywhere in the source is the real weekday of that date
    for word in re.findall(r"[A-Za-z]+", src):
        low = word.lower()
        if low in WEEKDAYS or low in [w[:3] for w in WEEKDAYS]:
            assert WEEKDAYS[day.weekday()].startswith(low), (src, iso)


@pytest.mark.parametrize("name", TASKS)
def test_same_seed_same_data_other_seed_differs(name):
    a = make_task(name, 50, seed=3)
    assert a == make_task(name, 50, seed=3)
    assert a != make_task(name, 50, seed=4)
    assert all(isinstance(ex, Example) for ex in a)


@pytest.mark.parametrize("name", ["copy", "reverse", "sort"])
def test_letter_tasks_targets_and_gold(name):
    examples = make_task(name, 300, seed=0, min_len=2, max_len=7)
    lengths = {len(ex.src) for ex in examples}
    assert lengths == set(range(2, 8))
    for ex in examples:
        assert set(ex.src) <= set("abcdefghijklmnopqrst")
        expected = {"copy": list(ex.src), "reverse": list(ex.src)[::-1],
                    "sort": sorted(ex.src)}[name]
        assert list(ex.tgt) == expected
        assert len(ex.gold) == len(ex.tgt)
        for tok, (start, end) in zip(ex.tgt, ex.gold):
            assert end == start + 1 and ex.src[start] == tok
        assert sorted(g[0] for g in ex.gold) == list(range(len(ex.src)))  # a permutation


def test_sort_is_stable_for_repeated_letters():
    ex = next(e for e in make_task("sort", 500, seed=1) if len(set(e.src)) < len(e.src))
    for letter in set(ex.src):
        src_pos = [j for j, c in enumerate(ex.src) if c == letter]
        gold_pos = [g[0] for t, g in zip(ex.tgt, ex.gold) if t == letter]
        assert gold_pos == src_pos  # k-th occurrence -> k-th occurrence


@pytest.mark.parametrize("fmt", DATE_FORMATS)
def test_every_format_gold_spans_spell_the_fields(fmt):
    rng = np.random.default_rng(len(fmt))
    days = [date(1950, 1, 1), date(2049, 12, 31), date(2000, 2, 29), date(1999, 11, 11)]
    first, last = date(1950, 1, 1).toordinal(), date(2049, 12, 31).toordinal()
    days += [date.fromordinal(int(o)) for o in rng.integers(first, last + 1, size=25)]
    for day in days:
        for casing in CASINGS:
            sample = render_date(day, fmt, casing)
            ex = date_example(sample)
            assert "".join(ex.tgt) == day.isoformat()
            check_date_example(ex)


def test_at_least_15_formats_and_all_appear_in_2000_samples():
    assert len(set(DATE_FORMATS)) >= 15
    rng = np.random.default_rng(11)
    samples = [sample_date(rng) for _ in range(2000)]
    assert {s.fmt for s in samples} == set(DATE_FORMATS)
    assert {s.casing for s in samples} == set(CASINGS)
    # make_task draws from the same sampler in the same order
    examples = make_task("dates", 2000, seed=11)
    assert ["".join(ex.src) for ex in examples] == [s.text for s in samples]
    for ex in examples:
        check_date_example(ex)


def test_examples_from_the_brief():
    cases = {
        (date(1979, 5, 3), "{d} {Month} {yyyy}", "title"): "3 May 1979",
        (date(2013, 3, 5), "{Weekday}, {Month} {d}, {yyyy}", "title"): "Tuesday, March 5, 2013",
        (date(2013, 3, 5), "{Wkd}, {d} {Mon} {yyyy}", "title"): "Tue, 5 Mar 2013",
        (date(1991, 5, 30), "{m}/{d}/{yy}", "title"): "5/30/91",
        (date(1991, 5, 30), "{dd}.{mm}.{yyyy}", "title"): "30.05.1991",
        (date(2009, 6, 21), "the {dth} of {Month} {yyyy}", "lower"): "the 21st of june 2009",
        (date(1998, 6, 4), "{d} {Mon} {yy}", "upper"): "4 JUN 98",
        (date(1998, 6, 4), "{Weekday} {d} {Month} {yyyy}", "title"): "Thursday 4 June 1998",
    }
    for (day, fmt, casing), text in cases.items():
        assert render_date(day, fmt, casing).text == text
    ex = date_example(render_date(date(2009, 6, 21), "the {dth} of {Month} {yyyy}", "lower"))
    assert ex.gold[8] == (4, 8)  # "21st": the ordinal suffix belongs to the day


def test_two_digit_years_pivot():
    assert render_date(date(1950, 1, 1), "{m}/{d}/{yy}").text == "1/1/50"
    assert render_date(date(2049, 12, 31), "{m}/{d}/{yy}").text == "12/31/49"
    with pytest.raises(ValueError, match="day must be in 1950-01-01..2049-12-31"):
        render_date(date(1949, 12, 31), "{m}/{d}/{yy}")


def test_date_fields_tags():
    for ex in make_task("date-fields", 500, seed=5):
        assert len(ex.tgt) == len(ex.src)
        assert set(ex.tgt) <= set("YMDWO")
        assert ex.gold == tuple((i, i + 1) for i in range(len(ex.src)))
        field = {f: "".join(c for c, t in zip(ex.src, ex.tgt) if t == f) for f in "YMDW"}
        year, month = parse_year(field["Y"]), parse_month(field["M"])
        day = date(year, month, parse_day(field["D"]))
        if field["W"]:
            assert WEEKDAYS[day.weekday()].startswith(field["W"].lower())
        others = "".join(c for c, t in zip(ex.src, ex.tgt) if t == "O")
        assert not re.search(r"\d", others)
        assert set(re.findall(r"[a-z]+", others.lower())) <= {"the", "of"}


def test_make_splits_disjoint_and_train_is_make_task():
    splits = make_splits("copy", (300, 100, 100), seed=9)
    assert [len(splits[k]) for k in ("train", "valid", "test")] == [300, 100, 100]
    assert splits["train"] == make_task("copy", 300, seed=9)
    train = {ex.src for ex in splits["train"]}
    valid = [ex.src for ex in splits["valid"]]
    test = [ex.src for ex in splits["test"]]
    assert len(set(valid)) == 100 and len(set(test)) == 100
    assert not train & set(valid) and not train & set(test) and not set(valid) & set(test)
    assert make_splits("copy", (300, 100, 100), seed=9) == splits
    assert make_splits("copy", (300, 100, 100), seed=10) != splits


def test_make_splits_defaults():
    assert SPLITS["dates"] == (20000, 1000, 1000)
    assert set(SPLITS) == set(DEFAULT_SEEDS) == set(TASKS)
    splits = make_splits("date-fields")
    assert tuple(len(splits[k]) for k in ("train", "valid", "test")) == SPLITS["date-fields"]
    assert splits["train"][:20] == make_task("date-fields", 20, seed=DEFAULT_SEEDS["date-fields"])


def test_make_splits_gives_up_when_sources_run_out(monkeypatch):
    def tiny(task, rng, min_len, max_len):
        while True:
            for letter in "abc":
                yield Example((letter,), (letter,), ((0, 1),))
    monkeypatch.setattr(tasks_module, "_stream", tiny)
    with pytest.raises(ValueError, match="too large for task 'copy'.*valid"):
        make_splits("copy", (3, 1, 0), seed=0)


def test_bad_arguments():
    with pytest.raises(ValueError, match="name must be one of 'copy', .*; got 'dats'"):
        make_task("dats", 3, seed=0)
    with pytest.raises(ValueError, match="n must be an int >= 0, got -1"):
        make_task("copy", -1, seed=0)
    with pytest.raises(ValueError, match="max_len must be an int >= 5, got 4"):
        make_task("copy", 3, seed=0, min_len=5, max_len=4)
    with pytest.raises(ValueError, match="seed must be an int >= 0, got 1.5"):
        make_task("copy", 3, seed=1.5)
    with pytest.raises(ValueError, match="sizes must be None or"):
        make_splits("copy", (1, 2))
    with pytest.raises(ValueError, match="gold must have one entry per target token"):
        Example(("a",), ("a", "b"), ((0, 1),))


def test_tsv_round_trip(tmp_path):
    for name in TASKS:
        examples = make_task(name, 100, seed=2)
        path = tmp_path / f"{name}.tsv"
        write_task_tsv(path, examples)
        assert read_task_tsv(path) == examples
    assert read_task_tsv(tmp_path / "dates.tsv")[0].gold[4] is None


@pytest.mark.parametrize("gold", [(0, 4), (2, 2), (-1, 1), (0.0, 1), (0, 1, 2), "01"])
def test_example_refuses_a_gold_span_that_is_not_two_ints_inside_the_source(gold):
    with pytest.raises(ValueError, match=r"gold\[1\] must be None or a pair of ints "
                                         r"\(start, end\) with 0 <= start < end <= 3"):
        Example(("a", "b", "c"), ("x", "y"), ((0, 1), gold))


def test_example_stores_list_spans_as_tuples_of_ints():
    ex = Example(("a", "b"), ("x", "y"), [[0, 1], (np.int64(1), 2)])
    assert ex.gold == ((0, 1), (1, 2)) and type(ex.gold[1][0]) is int


def test_tsv_refuses_multi_character_tokens(tmp_path):
    with pytest.raises(ValueError, match=r"examples\[0\].src tokens must be single characters"):
        write_task_tsv(tmp_path / "x.tsv", [Example(("ab",), ("a",), (None,))])


@pytest.mark.parametrize("line, message", [
    ("abc\tabc", "line 2: expected 3 tab-separated columns, got 2"),
    ("abc\tabc\t0:1 1:2", "line 2: expected 3 gold spans"),
    ("abc\tabc\t0:1 1:2 2:4", "line 2: gold[2] must be None or a pair of ints (start, end) with "
                              "0 <= start < end <= 3 (the source length), got (2, 4)"),
    ("abc\tabc\t0:1 x 2:3", "line 2: gold span 'x'"),
])
def test_tsv_read_errors_name_file_and_line(tmp_path, line, message):
    path = tmp_path / "bad.tsv"
    path.write_text(f"ab\tba\t1:2 0:1\n{line}\n", encoding="utf-8")
    with pytest.raises(DataError, match=re.escape(f"{path} {message}")):
        read_task_tsv(path)


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    out = tmp_path_factory.mktemp("data")
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert main(["--out", str(out)]) == 0
    return out, printed.getvalue()


def test_cli_writes_every_split(generated):
    generated, printed = generated
    for name in TASKS:
        for split, size in zip(("train", "valid", "test"), SPLITS[name]):
            path = generated / name / f"{split}.tsv"
            assert sum(1 for _ in path.open(encoding="utf-8")) == size
            assert re.search(rf"{re.escape(str(path))} +{size} lines +"
                             rf"{path.stat().st_size:,} bytes", printed)
    assert read_task_tsv(generated / "sort" / "valid.tsv") == make_splits("sort")["valid"]


def test_committed_data_files_are_what_the_command_makes(generated):
    generated, _ = generated
    data = ROOT / "data"
    files = sorted(p.relative_to(generated) for p in generated.rglob("*.tsv"))
    if not all((data / f).exists() for f in files):
        pytest.skip("data/ files not generated yet (python -m tinyattn.data)")
    for f in files:
        assert filecmp.cmp(data / f, generated / f, shallow=False), f"data/{f} is stale"


@pytest.mark.parametrize("yy", [-1, 100, 5.0, True])
def test_expand_year_rejects_anything_but_an_int_in_0_to_99(yy):
    from tinyattn.data.dates import expand_year
    with pytest.raises(ValueError, match=r"yy must be an int in 0\.\.99, got"):
        expand_year(yy)
    assert (expand_year(49), expand_year(50)) == (2049, 1950)
