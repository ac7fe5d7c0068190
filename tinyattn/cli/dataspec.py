"""What a run trains on: where its sentence pairs or task examples come from,
how text becomes tokens, and how they are split (`DataSpec`, `load_examples`).

Data comes from a generated task (`tinyattn.data.TASKS`; the same splits as
the files under ``data/``), a Tatoeba corpus (`tinyattn.data.CORPORA`, fetched
when missing) or a tab-separated sentence-pair file: filtered, tokenised and
split deterministically by ``seed``. The split is by source sentence (all
translations of one source go to the same split, so no test source is seen in
training) unless ``split="pairs"``. A file is recorded by its absolute path
and its sha256, and a changed file is refused. `tinyattn.cli.run` keeps the
split a run used in its directory.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from pathlib import Path

from tinyattn._validate import check_options
from tinyattn.data import (
    CORPORA,
    ENGLISH_PREFIXES,
    TASKS,
    DataError,
    Example,
    Vocab,
    fetch,
    file_sha256,
    filter_pairs,
    make_splits,
    read_pairs,
    split_pairs,
    tokenize,
)


@dataclass
class DataSpec:
    """Where the examples come from and how text becomes tokens.

    ``source`` is a task name, a corpus name or a path to a TSV file.
    ``split`` is ``"source"`` (every source sentence, as tokenised, goes
    wholly to one split) or ``"pairs"`` (pairs are split independently, so a
    test source may occur in training with another translation; runs made
    before the split by source were split so); None for a task, whose
    splits are generated. ``src_kind`` and ``tgt_kind``
    are tokeniser kinds ("char", "word", "zh"); None picks "char" for tasks
    and, for files, "zh" when the side is mostly Chinese, else "word".
    """

    source: str
    split: str | None = "source"  # or "pairs"; None for a task: see load_examples
    src_kind: str | None = None
    tgt_kind: str | None = None
    lowercase: bool = True
    max_len: int | None = None
    english_prefixes: bool = False
    skip_bad: bool = False
    swap: bool = False
    split_seed: int = 0
    train_size: int | None = None
    sha256: str | None = None  # of the file's bytes (None for a task)

    @property
    def is_task(self) -> bool:
        """Whether the data is a generated task (else a corpus or a TSV file)."""
        return self.source in TASKS

    @property
    def is_corpus(self) -> bool:
        """Whether the data is a named corpus (`tinyattn.data.CORPORA`)."""
        return self.source in CORPORA


SPLIT_KINDS = ("source", "pairs")


def _upgrade_data(data: dict) -> dict:
    """A stored data specification as `DataSpec` takes it. Runs made before the
    split by source (their spec has no ``split``) were split by pair and, on a
    Chinese side, tokenised by the first "zh" tokeniser ("zh-v1",
    `tinyattn.data.tokenize`): kept so, they rebuild the split and the
    vocabulary they were trained with."""
    if not isinstance(data, dict) or "split" in data:
        return data
    data = {"split": None if data.get("source") in TASKS else "pairs", **data}
    for side in ("src_kind", "tgt_kind"):
        if data.get(side) == "zh":
            data[side] = "zh-v1"
    return data
def _mostly_cjk(sentences) -> bool:
    """True when over a third of the sentences contain a CJK character."""
    def cjk(text):
        return any("CJK" in unicodedata.name(ch, "") for ch in text)
    sample = list(sentences)[:200]
    return sum(cjk(s) for s in sample) * 3 > len(sample)


def same_source(given: str, stored: str) -> bool:
    """Whether a data argument names the same task, corpus or file as a stored source."""
    names = (*TASKS, *CORPORA)
    if given in names or stored in names:
        return given == stored
    return Path(given).resolve() == Path(stored).resolve()


def _tokenised(pairs, spec: DataSpec) -> list[Example]:
    """Pairs -> examples (tokens, no gold spans, the pair kept as ``origin``);
    a pair whose side tokenises to nothing (only spaces) is dropped."""
    examples = []
    for p in pairs:
        src = tokenize(p.src, spec.src_kind, lowercase=spec.lowercase)
        tgt = tokenize(p.tgt, spec.tgt_kind, lowercase=spec.lowercase)
        if src and tgt:
            examples.append(Example(src, tgt, (None,) * len(tgt), origin=p))
    return examples


def load_examples(spec: DataSpec, *, progress: bool = True) -> tuple[dict[str, list[Example]],
                                                                      dict]:
    """The train/valid/test examples of ``spec`` and a summary (counts, skipped lines).

    A corpus name is fetched first (`tinyattn.data.fetch`: found, or
    downloaded once; ``progress`` as there). ``spec.src_kind``/``tgt_kind`` are filled in when they
    were None, and ``spec.sha256`` with the file's.
    """
    info: dict = {}
    if not spec.is_task:
        check_options("split", spec.split, SPLIT_KINDS)
    if spec.is_task:
        spec.src_kind = spec.src_kind or "char"
        spec.tgt_kind = spec.tgt_kind or "char"
        splits = make_splits(spec.source)
    else:
        path = fetch(spec.source, progress=progress) if spec.is_corpus else Path(spec.source)
        if not path.is_file():
            raise DataError(f"{spec.source}: no such task, corpus or file (tasks: "
                            f"{', '.join(TASKS)}; corpora: {', '.join(CORPORA)})")
        # fetch has checked a corpus's file against its pinned sha256
        digest = CORPORA[spec.source].file_sha256 if spec.is_corpus else file_sha256(path)
        if spec.sha256 is None:
            spec.sha256 = digest
        elif spec.sha256 != digest:
            raise DataError(f"{spec.source} has changed since the run was trained on it "
                            f"(sha256 {digest[:12]}…, the run recorded {spec.sha256[:12]}…): its "
                            "splits would differ; restore the file or train a new run")
        pairs, skipped = read_pairs(path, skip_bad=spec.skip_bad, swap=spec.swap)
        info["skipped_lines"] = skipped
        spec.src_kind = spec.src_kind or ("zh" if _mostly_cjk(p.src for p in pairs) else "word")
        spec.tgt_kind = spec.tgt_kind or ("zh" if _mostly_cjk(p.tgt for p in pairs) else "word")
        pairs = filter_pairs(pairs, max_len=spec.max_len,
                             prefixes=ENGLISH_PREFIXES if spec.english_prefixes else None,
                             # on the English side: the target once --swap made it one
                             prefix_side="tgt" if spec.swap else "src",
                             src_kind=spec.src_kind, tgt_kind=spec.tgt_kind,
                             lowercase=spec.lowercase)
        if not pairs:
            raise DataError(f"{spec.source}: no pairs left after filtering")
        examples = _tokenised(pairs, spec)
        # split by source: a source's translations all go to one split (its tokens
        # are the key, so "Go." and "go ." are one source when the tokeniser says so)
        key = (lambda e: e.src) if spec.split == "source" else None
        train, valid, test = split_pairs(examples, seed=spec.split_seed, key=key)
        if not valid or not test:
            raise DataError(f"{spec.source}: {len(examples)} usable pairs are too few to hold "
                            "out validation and test examples (10% each); need at least 10")
        splits = {"train": train, "valid": valid, "test": test}
    if spec.train_size is not None:
        splits["train"] = splits["train"][: spec.train_size]
    info.update({name: len(items) for name, items in splits.items()})
    return splits, info


def encode_pairs(examples, src_vocab: Vocab, tgt_vocab: Vocab) -> list[tuple[list, list]]:
    """Examples -> ``(src_ids, tgt_ids)`` pairs for `tinyattn.training.trainer.Trainer`."""
    return [(src_vocab.encode(e.src), tgt_vocab.encode(e.tgt)) for e in examples]
