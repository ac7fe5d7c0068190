"""A training run on disk, and the data it was trained on.

The command line (`tinyattn.cli.commands`) keeps everything about one model in a
run directory::

    runs/demo/
        config.json          what to rebuild: data source and options, model, training options
        src_vocab.json       the vocabularies (also stored inside the checkpoint,
        tgt_vocab.json       so a mismatched pair is caught when loading)
        checkpoint.npz       weights, optimiser and data-order state (resumable)
        best.npz             the weights of the epoch with the lowest validation loss:
                             what evaluate, translate and plot use
        metrics.json         held-out scores after training
        data/                for a sentence-pair file or corpus: the exact split used,
            train.tsv        source, target, origin (file:line and attribution), so
            valid.tsv        evaluate reads the same examples and a leak can be audited
            test.tsv
        loss.png, alignment_*.png

``config.json``'s ``"format"`` field marks a directory as a run: ``train``
writes only into a new or empty directory, or into a run with
``--resume`` or ``--overwrite`` (docs/design.md §5), and never into a
directory of someone else's files.

What a run trains on is a `tinyattn.cli.dataspec.DataSpec` (a task, a
corpus or a sentence-pair file, and how it is tokenised and split). ``train``
writes the split to the run's ``data/`` and ``evaluate``, ``plot`` and
``--resume`` read it from there; runs made before the split files existed
re-split their data, and a changed file is refused.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from tinyattn.cli.dataspec import (  # noqa: F401 (DataSpec & co. are imported from here too)
    SPLIT_KINDS,
    DataSpec,
    _tokenised,
    _upgrade_data,
    encode_pairs,
    load_examples,
    same_source,
)
from tinyattn.cli.options import build_model, upgrade_model_options
from tinyattn.data import (
    CORPORA,
    Example,
    Vocab,
    read_pairs,
)
from tinyattn.data.tasks import SPLIT_NAMES
from tinyattn.training.checkpoint import temp_of, write_text_atomic

RUN_FORMAT = "tinyattn.cli.run"
RUN_VERSION = 1
FILES = {"config": "config.json", "checkpoint": "checkpoint.npz", "best": "best.npz",
         "src_vocab": "src_vocab.json", "tgt_vocab": "tgt_vocab.json", "metrics": "metrics.json"}


# What `Run.open` needs in a configuration's "train" section.
TRAIN_KEYS = ("epochs", "batch_size", "lr", "clip", "seed", "patience", "max_decode_len")


class RunError(ValueError):
    """A run directory that is missing, incomplete or inconsistent."""


SPLIT_DIR = "data"  # in a run directory: the split files


def _write_json(path: Path, obj) -> None:
    """Write JSON atomically (temp file + rename), as the checkpoints are."""
    write_text_atomic(path, json.dumps(obj, indent=2, ensure_ascii=False) + "\n")


def run_state(directory: Path) -> str:
    """``"absent"``, ``"empty"``, ``"run"`` (config.json carries our format tag),
    ``"file"`` (not a directory) or ``"foreign"`` (anything else)."""
    if not directory.exists():
        return "absent"
    if not directory.is_dir():
        return "file"
    try:
        config = json.loads((directory / FILES["config"]).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        config = None
    if isinstance(config, dict) and config.get("format") == RUN_FORMAT:
        return "run"
    # a temporary file of a save killed before the first config.json landed is not "foreign"
    others = [p for p in directory.iterdir() if temp_of(p.name) not in FILES.values()]
    return "foreign" if others else "empty"


def remove_run_files(directory: Path) -> list[str]:
    """Delete the files ``train`` writes in a run directory (for ``--overwrite``);
    anything else in it is left alone. Returns the names removed."""
    ours = [directory / name for key, name in FILES.items() if key != "config"]
    ours += [directory / SPLIT_DIR / f"{split}.tsv" for split in SPLIT_NAMES]
    ours += [directory / "loss.png", *sorted(directory.glob("alignment_*.png"))]
    removed = []

    def remove(path):
        if path.is_file():
            path.unlink()
            removed.append(str(path.relative_to(directory)))
    for path in ours:
        remove(path)
    with contextlib.suppress(OSError):  # the split files' directory, when now empty
        (directory / SPLIT_DIR).rmdir()
    remove(directory / FILES["config"])  # last: until then the directory is a run
    return removed


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

    def build_model(self, seed: int):
        """A freshly initialised model of this run's configuration (a `Seq2Seq`, or a
        `Transformer` for ``arch = "transformer"``)."""
        return build_model(self.model_options, len(self.src_vocab), len(self.tgt_vocab),
                           pad_id=Vocab.pad_id, seed=seed)

    def vocab_extra(self) -> dict:
        """The vocabularies as checkpoint extras (checked by `load_model`)."""
        return {"src_vocab": np.array(self.src_vocab.to_json()),
                "tgt_vocab": np.array(self.tgt_vocab.to_json())}

    def save_config(self) -> None:
        """Write the run's configuration JSON atomically."""
        self.directory.mkdir(parents=True, exist_ok=True)
        # config.json first: its format tag marks the directory as ours, so an
        # interrupted start leaves a run that --overwrite may replace
        _write_json(self.path("config"), {
            "format": RUN_FORMAT, "version": RUN_VERSION, "data": asdict(self.data),
            "model": self.model_options, "train": self.train_options})
        self.src_vocab.save(self.path("src_vocab"))
        self.tgt_vocab.save(self.path("tgt_vocab"))

    def split_path(self, name: str) -> Path:
        """The file of one split (``"train"``, ``"valid"``, ``"test"``) in the run."""
        return self.directory / SPLIT_DIR / f"{name}.tsv"

    def save_splits(self, splits: dict) -> None:
        """Write the examples' sentence pairs, split by split, to ``data/<split>.tsv``
        (source, target, origin); nothing for a generated task (no pairs)."""
        if self.data.is_task:
            return
        (self.directory / SPLIT_DIR).mkdir(exist_ok=True)
        name = (CORPORA[self.data.source].file_name if self.data.is_corpus
                else Path(self.data.source).name)
        # train.tsv last: its presence is what says the run has its split files
        for split in ("valid", "test", "train"):
            lines = []
            for e in splits[split]:
                p = e.origin
                origin = f"{name}:{p.line}" + (f" {p.attribution}" if p.attribution else "")
                lines.append(f"{p.src}\t{p.tgt}\t{origin}\n")
            write_text_atomic(self.split_path(split), "".join(lines))

    def load_splits(self, *, progress: bool = True) -> tuple[dict[str, list[Example]], dict]:
        """The examples ``train`` used: read from the run's split files when it has
        them, else rebuilt from the data (`load_examples`: tasks, and runs made
        before the split files; ``progress`` as there)."""
        if self.data.is_task or not self.split_path("train").exists():
            return load_examples(self.data, progress=progress)
        splits = {}
        for split in SPLIT_NAMES:
            path = self.split_path(split)
            if not path.is_file():
                raise RunError(f"{self.directory}: {SPLIT_DIR}/{split}.tsv is missing, so the "
                               "run is incomplete; train it again with --overwrite")
            pairs, _ = read_pairs(path)
            splits[split] = _tokenised(pairs, self.data)
            if len(splits[split]) != len(pairs):
                raise RunError(f"{path}: a line tokenises to nothing; the file was edited")
        return splits, {name: len(items) for name, items in splits.items()}

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
        for key in ("data", "model", "train"):
            if not isinstance(config.get(key), dict):
                raise RunError(f"{config_path}: {key!r} must be a JSON object, got "
                               f"{type(config.get(key)).__name__}")
        missing = [k for k in TRAIN_KEYS if k not in config["train"]]
        if missing:
            raise RunError(f"{config_path}: the training options lack {', '.join(missing)}")
        vocabs = []
        for key in ("src_vocab", "tgt_vocab"):
            if not (directory / FILES[key]).is_file():
                raise RunError(f"{directory}: {FILES[key]} is missing, so the run is incomplete; "
                               "train it again with --overwrite")
            vocabs.append(Vocab.load(directory / FILES[key]))
        try:
            run = cls(directory, DataSpec(**_upgrade_data(config["data"])),
                      upgrade_model_options(config["model"]), config["train"],
                      *vocabs)
            run.build_model(seed=0)  # the stored model options must build a model
        except (KeyError, TypeError, ValueError) as e:
            raise RunError(f"{config_path}: incomplete, unknown or invalid field ({e})") from None
        return run

    def load_model(self):
        """The trained model: the best epoch's weights (``best.npz``), or the last
        checkpoint's in a run without one; it must match this run's configuration."""
        path = self.path("best") if self.path("best").exists() else self.path("checkpoint")
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
        return model.eval()  # evaluated and decoded, never trained here: no dropout
