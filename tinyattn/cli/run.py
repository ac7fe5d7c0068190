"""A training run on disk, and the data it was trained on.

The command line (`tinyattn.cli.commands`) keeps everything about one model in a
run directory::

    runs/demo/
        config.json          what to rebuild: data source and options, model, training options
        src_vocab.json       the vocabularies (also stored inside the checkpoint,
        tgt_vocab.json       so a mismatched pair is caught when loading)
        checkpoint.npz       weights, optimiser and data-order state (resumable)
        metrics.json         held-out scores after training
        loss.png, alignment_*.png

Data comes either from a generated task (`tinyattn.data.TASKS`; the same
splits as the files under ``data/``) or from a tab-separated sentence-pair
file, filtered, tokenised and split deterministically by ``seed``, so
``evaluate`` and ``plot`` rebuild exactly the splits ``train`` used.
"""

from __future__ import annotations

import json
import unicodedata
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from tinyattn.data import (
    ENGLISH_PREFIXES,
    TASKS,
    DataError,
    Example,
    Vocab,
    filter_pairs,
    make_splits,
    read_pairs,
    split_pairs,
    tokenize,
)
from tinyattn.seq2seq import Seq2Seq
from tinyattn.training.checkpoint import write_text_atomic

RUN_FORMAT = "tinyattn.cli.run"
RUN_VERSION = 1
FILES = {"config": "config.json", "checkpoint": "checkpoint.npz", "src_vocab": "src_vocab.json",
         "tgt_vocab": "tgt_vocab.json", "metrics": "metrics.json"}


class RunError(ValueError):
    """A run directory that is missing, incomplete or inconsistent."""


@dataclass
class DataSpec:
    """Where the examples come from and how text becomes tokens.

    ``source`` is a task name or a path to a TSV file. ``src_kind`` and
    ``tgt_kind`` are tokeniser kinds ("char", "word", "zh"); None picks
    "char" for tasks and, for files, "zh" when the side is mostly Chinese,
    else "word".
    """

    source: str
    src_kind: str | None = None
    tgt_kind: str | None = None
    lowercase: bool = True
    max_len: int | None = None
    english_prefixes: bool = False
    skip_bad: bool = False
    swap: bool = False
    split_seed: int = 0
    train_size: int | None = None

    @property
    def is_task(self) -> bool:
        """Whether the data is a generated task (else a TSV file)."""
        return self.source in TASKS


def _mostly_cjk(sentences) -> bool:
    """True when over a third of the sentences contain a CJK character."""
    def cjk(text):
        return any("CJK" in unicodedata.name(ch, "") for ch in text)
    sample = list(sentences)[:200]
    return sum(cjk(s) for s in sample) * 3 > len(sample)


def load_examples(spec: DataSpec) -> tuple[dict[str, list[Example]], dict]:
    """The train/valid/test examples of ``spec`` and a summary (counts, skipped lines).

    ``spec.src_kind``/``tgt_kind`` are filled in when they were None.
    """
    info: dict = {}
    if spec.is_task:
        spec.src_kind = spec.src_kind or "char"
        spec.tgt_kind = spec.tgt_kind or "char"
        splits = make_splits(spec.source)
    else:
        path = Path(spec.source)
        if not path.exists():
            raise DataError(f"{spec.source}: no such task or file (tasks: {', '.join(TASKS)})")
        pairs, skipped = read_pairs(path, skip_bad=spec.skip_bad, swap=spec.swap)
        info["skipped_lines"] = skipped
        spec.src_kind = spec.src_kind or ("zh" if _mostly_cjk(p.src for p in pairs) else "word")
        spec.tgt_kind = spec.tgt_kind or ("zh" if _mostly_cjk(p.tgt for p in pairs) else "word")
        pairs = filter_pairs(pairs, max_len=spec.max_len,
                             prefixes=ENGLISH_PREFIXES if spec.english_prefixes else None,
                             src_kind=spec.src_kind, tgt_kind=spec.tgt_kind,
                             lowercase=spec.lowercase)
        if not pairs:
            raise DataError(f"{spec.source}: no pairs left after filtering")
        examples = []
        for p in pairs:
            src = tokenize(p.src, spec.src_kind, lowercase=spec.lowercase)
            tgt = tokenize(p.tgt, spec.tgt_kind, lowercase=spec.lowercase)
            if src and tgt:  # a sentence of only spaces tokenises to nothing
                examples.append(Example(src, tgt, (None,) * len(tgt)))
        train, valid, test = split_pairs(examples, seed=spec.split_seed)
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


def _write_json(path: Path, obj) -> None:
    """Write JSON atomically (temp file + rename), as the checkpoints are."""
    write_text_atomic(path, json.dumps(obj, indent=2, ensure_ascii=False) + "\n")


@dataclass
class Run:
    """A run directory's configuration, vocabularies and model."""

    directory: Path
    data: DataSpec
    model_options: dict
    train_options: dict
    src_vocab: Vocab
    tgt_vocab: Vocab

    def path(self, key: str) -> Path:
        """The path of one of the run's files (``FILES[key]``)."""
        return self.directory / FILES[key]

    def build_model(self, seed: int) -> Seq2Seq:
        """A freshly initialised model of this run's configuration."""
        opts = dict(self.model_options)
        dtype = np.dtype(opts.pop("dtype")).type
        return Seq2Seq(len(self.src_vocab), len(self.tgt_vocab), pad_id=Vocab.pad_id,
                       rng=np.random.default_rng(seed), dtype=dtype, **opts)

    def vocab_extra(self) -> dict:
        """The vocabularies as checkpoint extras (checked by `load_model`)."""
        return {"src_vocab": np.array(self.src_vocab.to_json()),
                "tgt_vocab": np.array(self.tgt_vocab.to_json())}

    def save_config(self) -> None:
        """Write the run's configuration JSON atomically."""
        self.directory.mkdir(parents=True, exist_ok=True)
        _write_json(self.path("config"), {
            "format": RUN_FORMAT, "version": RUN_VERSION, "data": asdict(self.data),
            "model": self.model_options, "train": self.train_options})
        self.src_vocab.save(self.path("src_vocab"))
        self.tgt_vocab.save(self.path("tgt_vocab"))

    def save_metrics(self, metrics: dict) -> None:
        """Write the metrics JSON atomically."""
        _write_json(self.path("metrics"), metrics)

    @classmethod
    def open(cls, directory) -> Run:
        """Read a run directory written by ``tinyattn train`` (or the
        directory of a given ``checkpoint.npz``)."""
        directory = Path(directory)
        if directory.is_file() and directory.suffix == ".npz":
            directory = directory.parent
        config_path = directory / FILES["config"]
        if not config_path.exists():
            raise RunError(f"{directory}: not a tinyattn run (no {FILES['config']}); "
                           "train one with: tinyattn train TASK --out DIR")
        try:
            config = json.loads(config_path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise RunError(f"{config_path}: not valid JSON ({e})") from None
        if not isinstance(config, dict) or config.get("format") != RUN_FORMAT:
            raise RunError(f"{config_path}: not a tinyattn run configuration")
        if config.get("version") != RUN_VERSION:
            raise RunError(f"{config_path}: run format version {config.get('version')!r}; "
                           f"this tinyattn reads version {RUN_VERSION}")
        try:
            return cls(directory, DataSpec(**config["data"]), config["model"], config["train"],
                       Vocab.load(directory / FILES["src_vocab"]),
                       Vocab.load(directory / FILES["tgt_vocab"]))
        except (KeyError, TypeError) as e:
            raise RunError(f"{config_path}: incomplete or unknown field ({e})") from None

    def load_model(self) -> Seq2Seq:
        """The trained model; its checkpoint must match this run's configuration."""
        path = self.path("checkpoint")
        if not path.exists():
            raise RunError(f"{self.directory}: no {FILES['checkpoint']} yet (training has not "
                           "saved one; run tinyattn train ... --resume to continue)")
        model = self.build_model(seed=0)
        ckpt = model.load_weights(path)  # a ValueError names any configuration mismatch
        for key, vocab in (("src_vocab", self.src_vocab), ("tgt_vocab", self.tgt_vocab)):
            stored = ckpt.extra.get(key)
            if stored is not None and Vocab.from_json(str(stored)) != vocab:
                raise RunError(f"{path}: the checkpoint was trained with another {key} than "
                               f"{self.path(key)}")
        return model
