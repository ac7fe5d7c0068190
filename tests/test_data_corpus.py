"""Sentence-pair files: reading (good and bad files), filtering, splitting."""

import re
from pathlib import Path

import numpy as np
import pytest

from tinyattn.data import (
    ENGLISH_PREFIXES,
    DataError,
    Pair,
    filter_pairs,
    read_pairs,
    split_pairs,
)

FIXTURES = Path(__file__).resolve().parent / "fixtures"
EN_FR = FIXTURES / "pairs_en_fr.tsv"
EN_ZH = FIXTURES / "pairs_en_zh.tsv"


def test_two_columns():
    pairs, skipped = read_pairs(EN_FR)
    assert skipped == 0 and len(pairs) == 30
    assert pairs[0] == Pair("I am cold.", "J'ai froid.", None, 1)
    assert pairs[12] == Pair("Go!", "Va !", None, 13)
    assert [p.line for p in pairs] == list(range(1, 31))


def test_three_columns_keep_attribution():
    pairs, _ = read_pairs(EN_ZH)
    assert len(pairs) == 20
    assert pairs[2] == Pair("Are you big?", "你很大？", "written for tinyattn tests", 3)
    assert {p.attribution for p in pairs} == {"written for tinyattn tests"}


def test_swap():
    pairs, _ = read_pairs(EN_ZH, swap=True)
    assert pairs[2] == Pair("你很大？", "Are you big?", "written for tinyattn tests", 3)


def test_wrong_column_count_names_the_line():
    path = FIXTURES / "bad_columns.tsv"
    message = f"{path} line 4: expected 2 or 3 tab-separated columns, got 1"
    with pytest.raises(DataError, match=f"^{re.escape(message)}$"):
        read_pairs(path)


def test_skip_bad_counts_the_skipped_lines():
    pairs, skipped = read_pairs(FIXTURES / "bad_columns.tsv", skip_bad=True)
    assert skipped == 2  # line 4 (1 column) and line 6 (4 columns)
    assert [p.line for p in pairs] == [1, 2, 3, 5, 7]
    assert pairs[-1] == Pair("Seven.", "Sept.", None, 7)


def test_empty_sentence():
    path = FIXTURES / "bad_empty.tsv"
    message = f"{path} line 3: empty sentence in column 2 (target)"
    with pytest.raises(DataError, match=re.escape(message)):
        read_pairs(path)
    pairs, skipped = read_pairs(path, skip_bad=True)
    assert skipped == 1 and [p.src for p in pairs] == ["Red.", "Blue.", "White."]


def test_bom_and_crlf():
    pairs, skipped = read_pairs(FIXTURES / "bom_crlf.tsv")
    assert skipped == 0
    assert pairs == [Pair("Hello.", "Bonjour.", None, 1), Pair("Thanks.", "Merci.", None, 2),
                     Pair("Yes.", "Oui.", None, 4)]  # line 3 is blank: skipped, not counted


def test_invalid_utf8_names_the_line_even_with_skip_bad():
    path = FIXTURES / "bad_utf8.tsv"
    for skip_bad in (False, True):
        with pytest.raises(DataError, match=re.escape(f"{path} line 2: invalid UTF-8")):
            read_pairs(path, skip_bad=skip_bad)


def test_missing_file_and_no_pairs(tmp_path):
    missing = tmp_path / "nope.tsv"
    with pytest.raises(DataError, match=f"^{re.escape(str(missing))}: no such file$"):
        read_pairs(missing)
    empty = tmp_path / "empty.tsv"
    empty.write_text("\n\n", encoding="utf-8")
    with pytest.raises(DataError, match="no valid sentence pairs"):
        read_pairs(empty)
    only_bad = tmp_path / "bad.tsv"
    only_bad.write_text("just one column\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"no valid sentence pairs \(1 bad lines skipped\)"):
        read_pairs(only_bad, skip_bad=True)


def test_line_numbers_ignore_unicode_line_separators(tmp_path):
    path = tmp_path / "sep.tsv"
    path.write_text("a\u2028b\tc\x0cd\nlast\tline", encoding="utf-8")  # no final newline
    pairs, _ = read_pairs(path)
    assert [(p.src, p.line) for p in pairs] == [("a\u2028b", 1), ("last", 2)]


def test_data_error_is_a_value_error():
    assert issubclass(DataError, ValueError)

# ------------------------------------------------------------------ filter


def test_english_prefixes_filter():
    pairs, _ = read_pairs(EN_FR)
    kept = filter_pairs(pairs, prefixes=ENGLISH_PREFIXES)
    assert [p.src for p in kept] == [
        "I am cold.", "I'm hungry.", "He is tall.", "He's at home.", "She is a teacher.",
        "She's reading a book.", "You are late.", "You're right.", "We are ready.",
        "We're going to the market.", "They are students.", "They're very happy today.",
        "I am looking for my keys because I lost them yesterday evening."]
    assert filter_pairs(pairs, prefixes=ENGLISH_PREFIXES, lowercase=False) == []
    assert [p.src for p in filter_pairs(pairs, prefixes="She's ")] == ["She's reading a book."]
    # French -> English (the PyTorch tutorial's direction): the prefixes match the target
    swapped, _ = read_pairs(EN_FR, swap=True)
    assert filter_pairs(swapped, prefixes=ENGLISH_PREFIXES) == []
    assert [p.tgt for p in filter_pairs(swapped, prefixes=ENGLISH_PREFIXES,
                                        prefix_side="tgt")] == [p.src for p in kept]
    with pytest.raises(ValueError, match="prefix_side must be one of 'src', 'tgt'; got 'en'"):
        filter_pairs(pairs, prefixes=ENGLISH_PREFIXES, prefix_side="en")


def test_curly_apostrophe_and_spacing_match():
    pairs = [Pair("I’m  here.", "x", None, 1), Pair("Im here.", "x", None, 2)]
    assert filter_pairs(pairs, prefixes=["i m "]) == pairs[:1]


def test_max_len_counts_tokens_on_both_sides():
    pairs, _ = read_pairs(EN_ZH)
    short = filter_pairs(pairs, max_len=4, tgt_kind="zh")
    # "I am cold." = 4 word tokens, "我很冷。" = 4 zh tokens
    assert short[0] == pairs[0]
    for p in short:
        assert len(p.src.split()) <= 4
    assert Pair("I have 3 iPhones.", "我有3个iPhone。", "written for tinyattn tests", 4) \
        not in short  # 5 tokens on the source side
    by_chars = filter_pairs(pairs, max_len=11, src_kind="char", tgt_kind="zh")
    assert [p.src for p in by_chars] == ["I am cold.", "He's busy.", "Thank you!", "Good night."]
    assert filter_pairs(pairs) == pairs


def test_filter_bad_arguments():
    with pytest.raises(ValueError, match="max_len must be None or a positive int, got 0"):
        filter_pairs([], max_len=0)
    with pytest.raises(ValueError, match="prefixes must be None or a non-empty sequence"):
        filter_pairs([], prefixes=[])
    with pytest.raises(TypeError, match=r"pairs\[0\] must be a Pair, got tuple"):
        filter_pairs([("a", "b")])
    with pytest.raises(ValueError, match="src_kind must be one of"):
        filter_pairs([Pair("a", "b", None, 1)], max_len=3, src_kind="en")

# ------------------------------------------------------------------- split


def test_split_sizes_determinism_and_partition():
    items = list(range(103))
    train, valid, test = split_pairs(items, valid=0.1, test=0.2, seed=4)
    assert (len(train), len(valid), len(test)) == (103 - 10 - 21, 10, 21)
    assert sorted(train + valid + test) == items
    assert split_pairs(items, valid=0.1, test=0.2, seed=4) == (train, valid, test)
    assert split_pairs(items, valid=0.1, test=0.2, seed=5) != (train, valid, test)
    assert split_pairs(items, valid=0, test=0)[0] != items  # shuffled
    assert sorted(split_pairs(items, valid=0, test=0)[0]) == items


def test_split_by_key_keeps_each_group_whole():
    """Pairs sharing a source go wholly to one split; groups are what the
    fractions count; every item is kept; without a key, repeated equal items
    are still separate (the old split by pair, unchanged)."""
    rng = np.random.default_rng(0)
    items = [(f"s{int(i)}", f"t{k}") for k, i in enumerate(rng.integers(0, 60, 200))]
    parts = split_pairs(items, valid=0.1, test=0.1, seed=3, key=lambda p: p[0])
    sources = [{p[0] for p in part} for part in parts]
    assert not (sources[0] & sources[1] or sources[0] & sources[2] or sources[1] & sources[2])
    n = len({p[0] for p in items})
    assert (len(sources[1]), len(sources[2])) == (round(n * 0.1), round(n * 0.1))
    assert sorted(p for part in parts for p in part) == sorted(items)
    for part in parts:  # a group's items together, in their original order
        for src in {p[0] for p in part}:
            run = [k for k, p in enumerate(part) if p[0] == src]
            assert run == list(range(run[0], run[0] + len(run)))
            assert [part[k] for k in run] == [p for p in items if p[0] == src]
    assert split_pairs([1, 1, 2] * 10, seed=0, key=None) == split_pairs([1, 1, 2] * 10, seed=0)
    assert sum(map(len, split_pairs([7] * 30, seed=0))) == 30
    with pytest.raises(TypeError, match="key must be None or a function"):
        split_pairs(items, key="src")


def test_split_without_key_is_the_old_split_by_pair():
    """Runs trained before the split by source re-split by pair: the same lists."""
    items = list(range(50))
    order = np.random.default_rng(9).permutation(50)
    picked = [items[i] for i in order]
    assert split_pairs(items, seed=9) == (picked[10:], picked[:5], picked[5:10])


@pytest.mark.parametrize("kwargs, message", [
    ({"valid": -0.1}, r"valid must be a number in \[0, 1\), got -0.1"),
    ({"test": 1.0}, r"test must be a number in \[0, 1\), got 1.0"),
    ({"valid": 0.6, "test": 0.5}, "valid \\+ test must be < 1"),
    ({"seed": -1}, "seed must be an int >= 0"),
])
def test_split_bad_fractions(kwargs, message):
    with pytest.raises(ValueError, match=message):
        split_pairs(range(10), **kwargs)


def test_split_refuses_empty_train():
    with pytest.raises(ValueError, match="leave no training items"):
        split_pairs([1, 2], valid=0.45, test=0.45)
    with pytest.raises(ValueError, match="items is empty"):
        split_pairs([])
