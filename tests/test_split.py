"""Honest held-out data (issue 12): a split by source sentence, the split kept in
the run directory, and evaluation against every reference of a source."""

import json
import os
import re
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

import tinyattn.cli.evaluation as evaluation
from tinyattn.cli.run import DataSpec, Run, load_examples
from tinyattn.data import ENGLISH_PREFIXES, Example, read_pairs, split_pairs, tokenize
from tinyattn.metrics import corpus_bleu

from .cli_helpers import TINY, run_cli

pytest.importorskip("matplotlib")


def _many_translations(path: Path, n_sources=60, seed=0) -> list[tuple[str, str]]:
    """A TSV where most sources have 1-3 translations, some differing only in case
    and spacing ("I see it." and "i see it ." are one source once tokenised)."""
    rng = np.random.default_rng(seed)
    words = ["cat", "dog", "sun", "tree", "red", "big", "old", "sea", "bird", "rain"]
    pairs = []
    for k in range(n_sources):
        src = " ".join(rng.choice(words, 3)) + f" {k}."
        for j in range(int(rng.integers(1, 4))):
            pairs.append((src.upper() if j == 2 else src, f"t{k} v{j} ."))
    path.write_text("".join(f"{s}\t{t}\n" for s, t in pairs), encoding="utf-8")
    return pairs


def _sources(path: Path) -> list[tuple]:
    return [tuple(tokenize(line.split("\t")[0], "word", lowercase=True))
            for line in path.read_text(encoding="utf-8").splitlines()]


def test_split_by_source_is_kept_in_the_run_and_read_back(tmp_path, capsys):
    data = tmp_path / "many.tsv"
    pairs = _many_translations(data)
    out = tmp_path / "run"
    code, _, err = run_cli(capsys, "train", data, "--out", out, "--epochs", "1", *TINY)
    assert code == 0, err
    files = {name: out / "data" / f"{name}.tsv" for name in ("train", "valid", "test")}
    src = {name: _sources(path) for name, path in files.items()}
    # no test or valid source occurs in training, and every pair is in exactly one file
    assert not set(src["test"]) & set(src["train"])
    assert not set(src["valid"]) & set(src["train"])
    assert not set(src["valid"]) & set(src["test"])
    lines = [line.split("\t")[:2] for path in files.values()
             for line in path.read_text(encoding="utf-8").splitlines()]
    assert sorted(map(tuple, lines)) == sorted(pairs)
    # each line says where it came from: file and line number
    first = files["test"].read_text(encoding="utf-8").splitlines()[0].split("\t")
    assert first[2].startswith("many.tsv:") and pairs[int(first[2].split(":")[1]) - 1] == \
        tuple(first[:2])
    # evaluate reads these files, not the data file
    run = Run.open(out)
    assert run.data.split == "source"
    splits, _ = run.load_splits()
    assert [e.src for e in splits["test"]] == src["test"]
    os.remove(data)
    code, text, err = run_cli(capsys, "evaluate", out)
    assert code == 0, err
    assert "distinct sources" in text and "BLEU, 1 reference" in text
    assert "nrefs:var|case:lc|eff:no|tok:tinyattn-word|smooth:exp|version:tinyattn-" in text
    # --limit counts distinct sources and keeps all their references
    first_two = set(list(dict.fromkeys(src["test"]))[:2])
    n = sum(s in first_two for s in src["test"])
    assert n > 2
    code, text, err = run_cli(capsys, "evaluate", out, "--limit", "2")
    assert code == 0, err
    assert f"test ({n} examples)" in text
    assert [line.split()[-1] for line in text.splitlines() if "distinct sources" in line] == ["2"]


def test_split_pairs_keeps_the_old_split(tmp_path, capsys):
    data = tmp_path / "many.tsv"
    pairs = _many_translations(data)
    out = tmp_path / "run"
    code, _, err = run_cli(capsys, "train", data, "--out", out, "--epochs", "1",
                           "--split", "pairs", *TINY)
    assert code == 0, err
    assert json.loads((out / "config.json").read_text())["data"]["split"] == "pairs"
    # the split is the one every run made before the split by source had: the
    # tokenised pairs, in file order, shuffled and cut without grouping
    def tokens(s, t):
        return tuple(tokenize(s, "word", lowercase=True)), tuple(tokenize(t, "word",
                                                                          lowercase=True))
    by_pair = split_pairs([tokens(s, t) for s, t in pairs], seed=0)
    splits = load_examples(DataSpec(str(data), split="pairs"))[0]
    for name, want in zip(("train", "valid", "test"), by_pair, strict=True):
        assert [(tuple(e.src), tuple(e.tgt)) for e in splits[name]] == want
        stored, _ = read_pairs(out / "data" / f"{name}.tsv")
        assert [tokens(p.src, p.tgt) for p in stored] == want
    # by pair, some test source is also a training source (the leak --split source closes)
    assert set(_sources(out / "data" / "test.tsv")) & set(_sources(out / "data" / "train.tsv"))
    code, _, err = run_cli(capsys, "train", data, "--out", out, "--resume", "--epochs", "2",
                           "--split", "source", *TINY)
    assert code == 2 and "was split by pairs, not --split source" in err


def test_runs_before_the_split_files_re_split_by_pair(tmp_path, capsys):
    """A run directory of an earlier version: no data/ and no "split" in its
    configuration. It was split by pair, and is re-split so."""
    data = tmp_path / "many.tsv"
    _many_translations(data)
    out = tmp_path / "run"
    assert run_cli(capsys, "train", data, "--out", out, "--epochs", "1", "--split", "pairs",
                   *TINY)[0] == 0
    kept = Run.open(out).load_splits()[0]
    config = json.loads((out / "config.json").read_text())
    del config["data"]["split"]
    (out / "config.json").write_text(json.dumps(config))
    for path in (out / "data").iterdir():
        path.unlink()
    (out / "data").rmdir()
    run = Run.open(out)
    assert run.data.split == "pairs"
    assert run.load_splits()[0] == kept
    code, _, err = run_cli(capsys, "evaluate", out)
    assert code == 0, err


def test_chinese_runs_before_the_split_files_keep_their_tokeniser(tmp_path, capsys):
    """A Chinese run of an earlier version was tokenised by the first "zh"
    ("10,000" -> 10 , 000); re-split with today's, its split and vocabulary
    would silently differ. It is rebuilt with that tokeniser, "zh-v1"."""
    rng = np.random.default_rng(0)
    lines = [f"i have {k} cats.\t我有{k:,}只猫。" for k in rng.integers(0, 20000, 60)]
    lines.append("it's wi-fi.\t那是Wi-Fi。")
    data = tmp_path / "zh.tsv"
    data.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = tmp_path / "run"
    assert run_cli(capsys, "train", data, "--out", out, "--epochs", "1", "--split", "pairs",
                   *TINY)[0] == 0
    assert Run.open(out).data.tgt_kind == "zh"
    config = json.loads((out / "config.json").read_text())
    del config["data"]["split"]  # as an earlier version wrote it, without data/
    (out / "config.json").write_text(json.dumps(config))
    for path in (out / "data").iterdir():
        path.unlink()
    (out / "data").rmdir()
    run = Run.open(out)
    assert (run.data.src_kind, run.data.tgt_kind) == ("word", "zh-v1")
    targets = {"".join(e.tgt): list(e.tgt) for part in run.load_splits()[0].values() for e in part}
    assert targets["那是wi-fi。"] == ["那", "是", "wi", "-", "fi", "。"]
    assert any(t[2:5] == [str(k // 1000), ",", f"{k % 1000:03d}"]
               for k in range(1000, 20000) for t in targets.values() if len(t) > 5)
    assert tokenize("那是Wi-Fi，10,000。", "zh") == ["那", "是", "Wi-Fi", "，", "10,000", "。"]
    code, _, err = run_cli(capsys, "evaluate", out)
    assert code == 0, err


def test_overwrite_removes_the_split_files(tmp_path, capsys):
    data = tmp_path / "many.tsv"
    _many_translations(data)
    out = tmp_path / "run"
    assert run_cli(capsys, "train", data, "--out", out, "--epochs", "1", *TINY)[0] == 0
    (out / "notes.txt").write_text("mine")
    stale = out / "data" / ".test.tsv.999999999.0123abcd.tmp"  # of a save killed long ago
    stale.write_text("half")
    code, _, err = run_cli(capsys, "train", "dates", "--out", out, "--overwrite",
                           "--train-size", "100", "--epochs", "1", *TINY)
    assert code == 0, err
    assert "data/test.tsv" in err and not (out / "data").exists()
    assert "removed 1 temporary file(s) left by an interrupted save" in err
    assert (out / "notes.txt").read_text() == "mine"


def test_multi_reference_scores(monkeypatch):
    """Outputs equal to each source's first reference: exact match and BLEU are
    perfect against all references; single-reference BLEU (each example against
    its own target) is not, since a source's other examples hold other targets."""
    examples = [Example(("a", "b"), tuple("xyzqr"), (None,) * 5),
                Example(("a", "b"), tuple("xwzqr"), (None,) * 5),
                Example(("c",), tuple("uvstp"), (None,) * 5)]
    seen = []

    def decode(model, run, sources, beam=1):
        seen.extend(map(tuple, sources))
        first = {e.src: list(e.tgt) for e in reversed(examples)}
        return [[(first[tuple(s)], None)] for s in sources]
    monkeypatch.setattr(evaluation, "decode", decode)
    run = SimpleNamespace(data=DataSpec("x.tsv", tgt_kind="word"))
    model = SimpleNamespace(config={"attention": None})
    m = evaluation.evaluate_examples(model, run, examples)
    assert seen == [("a", "b"), ("c",)]  # each distinct source decoded once
    assert (m["examples"], m["sources"], m["exact_match"]) == (3, 2, 1.0)
    assert m["bleu"] == pytest.approx(100)
    single = corpus_bleu([list("xyzqr"), list("xyzqr"), list("uvstp")],
                         [list("xyzqr"), list("xwzqr"), list("uvstp")]).score
    assert m["bleu_single_ref"] == pytest.approx(single) and single < 100
    assert m["token_accuracy"] == pytest.approx(14 / 15)
    assert m["bleu_signature"].startswith("nrefs:var|case:lc|")


@pytest.mark.skipif(not (Path(os.environ.get("TINYATTN_DATA", "/nonexistent"))
                         / "eng-fra.tsv").is_file(),
                    reason="TINYATTN_DATA is unset or lacks eng-fra.tsv")
def test_real_corpus_no_test_source_in_training():
    """Tatoeba English-French with the PyTorch tutorial's filter: split by source,
    no test source occurs in training; split by pair, many do."""
    spec = dict(max_len=10, english_prefixes=True, src_kind="word", tgt_kind="word")
    splits, _ = load_examples(DataSpec("eng-fra", **spec))
    train = {e.src for e in splits["train"]}
    assert not any(e.src in train for e in splits["test"] + splits["valid"])
    leaky, _ = load_examples(DataSpec("eng-fra", split="pairs", **spec))
    train = {e.src for e in leaky["train"]}
    assert sum(e.src in train for e in leaky["test"]) > len(leaky["test"]) // 3
    # French -> English, the PyTorch tutorial's direction: the prefixes filter the targets
    swapped, _ = load_examples(DataSpec("eng-fra", swap=True, **spec))
    starts = tuple(p.strip() for p in ENGLISH_PREFIXES)
    targets = [" ".join(e.tgt) for part in swapped.values() for e in part]
    assert len(targets) > 10000
    assert all(re.sub("['’]", " ", t).startswith(starts) for t in targets)


def test_heatmap_verdict_uses_every_reference(tmp_path, capsys, monkeypatch):
    """An output equal to another translation of the same source is marked ✓,
    not ✗ against the example's own target."""
    import tinyattn.plot.heatmaps as heatmaps

    data = tmp_path / "many.tsv"
    _many_translations(data)
    out = tmp_path / "run"
    assert run_cli(capsys, "train", data, "--out", out, "--epochs", "1", *TINY)[0] == 0
    run = Run.open(out)
    test = run.load_splits()[0]["test"]
    k = next(i for i, e in enumerate(test) if sum(f.src == e.src for f in test) > 1)
    other = next(f.tgt for f in test if f.src == test[k].src and f.tgt != test[k].tgt)
    real_decode, titles = evaluation.decode, []

    def decode(model, run, sources, **kw):  # the model's attention rows, other's words
        results = real_decode(model, run, sources, **kw)
        return [[(list(other), h) for _, h in r] for r in results]

    def plot_alignment(alpha, src, labels, **kw):
        titles.append(kw["title"])
        return SimpleNamespace()
    monkeypatch.setattr(evaluation, "decode", decode)
    monkeypatch.setattr(heatmaps, "plot_alignment", plot_alignment)
    monkeypatch.setattr("matplotlib.pyplot.close", lambda fig: None)
    evaluation.plot_examples(run.load_model(), run, test, [k], tmp_path, prefix="test")
    assert titles == [f"test {k}: output = a reference ✓"]  # plot names the split
