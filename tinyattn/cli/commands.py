"""The command line: ``tinyattn train | translate | evaluate | plot | data``.

Also ``python -m tinyattn``. Every command works on a run directory (see
`tinyattn.cli.run`). Bad input ends with one line on stderr and exit status 2,
never a traceback (set ``TINYATTN_DEBUG=1`` to see one), and every option
is checked before anything is written. Training that diverges (a NaN or
inf loss or gradient) ends with one line and exit status 1, keeping the
last good checkpoint. Ctrl-C during training saves a checkpoint first
(exit status 130) and ``--resume`` continues from it; Ctrl-C at any other
moment ends with one line and exit status 130.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import sys
import time
import warnings
from pathlib import Path

import numpy as np

from tinyattn._validate import NonFiniteError
from tinyattn.cli import data_command
from tinyattn.cli.evaluation import (
    decode,
    evaluate_examples,
    first_sources,
    format_metrics,
    plot_examples,
    plot_paths,
)
from tinyattn.cli.heads import add_head_arguments, head_request
from tinyattn.cli.options import (
    SCHEDULES,
    SWITCHES,
    add_model_arguments,
    build_optimizer,
    check_arch_flags,
    flag,
    float_in,
    given,
    model_defaults,
    non_negative,
    positive,
    positive_float,
    total_steps,
    train_defaults,
)
from tinyattn.cli.run import (
    FILES,
    SPLIT_DIR,
    SPLIT_KINDS,
    DataSpec,
    Run,
    RunError,
    encode_pairs,
    load_examples,
    remove_run_files,
    run_state,
    same_source,
)
from tinyattn.data import CORPORA, TASKS, DataError, Vocab, detokenize, tokenize
from tinyattn.data.tasks import SPLIT_NAMES
from tinyattn.training.checkpoint import remove_stale_temps
from tinyattn.training.trainer import Diverged, Interrupted, LossGrowthWarning, Trainer


class CLIError(Exception):
    """Bad input from the command line: printed as one line, exit status 2."""


def _say(*parts) -> None:
    print(*parts, file=sys.stderr, flush=True)


# ----- train -----------------------------------------------------------------
def _options(args, defaults: dict) -> dict:
    """The options given on the command line over ``defaults``."""
    return {**defaults, **given(args, defaults)}


def _new_run(args, out: Path) -> tuple[Run, dict]:
    named = args.data in TASKS or args.data in CORPORA  # else a file: its absolute path
    source = args.data if named else str(Path(args.data).resolve())
    spec = DataSpec(source, split=None if args.data in TASKS else args.split or "source",
                    src_kind=args.src_kind,
                    tgt_kind=args.tgt_kind,
                    lowercase=not args.keep_case, max_len=args.max_len,
                    english_prefixes=args.english_prefixes, skip_bad=args.skip_bad,
                    swap=args.swap, split_seed=args.split_seed, train_size=args.train_size)
    splits, info = load_examples(spec, progress=not args.quiet)
    vocabs = (Vocab.build([e.src for e in splits["train"]], min_freq=args.min_freq),
              Vocab.build([e.tgt for e in splits["train"]], min_freq=args.min_freq))
    arch = args.arch or "rnn"
    try:
        check_arch_flags(args, arch)
    except ValueError as err:
        raise CLIError(str(err)) from None
    model_opts = _options(args, model_defaults(arch))
    train_opts = _options(args, train_defaults(arch))
    if train_opts.get("schedule") == "linear":  # the decay ends with the run's last step
        train_opts["decay_steps"] = total_steps(len(splits["train"]), train_opts)
    longest = max(len(e.tgt) for e in splits["train"])
    train_opts["max_decode_len"] = 2 * longest + 5  # room for the <eos> and longer outputs
    run = Run(out, spec, model_opts, train_opts, *vocabs)
    return run, {"splits": splits, "info": info}


def _resumed_run(args, out: Path) -> tuple[Run, dict]:
    run = Run.open(out)
    arch = run.model_options["arch"]
    for asked, stored, what in ((given(args, model_defaults(arch)), run.model_options, "model"),
                                ({k: v for k, v in given(args, train_defaults(arch)).items()
                                  if k != "epochs"}, run.train_options, "training")):
        clash = {k: (v, stored.get(k)) for k, v in asked.items() if stored.get(k) != v}
        if clash:
            shown = ", ".join(f"{flag(k)} (the run was trained without it)" if k in SWITCHES
                              else f"{flag(k)} {a} (run has {b})" for k, (a, b) in clash.items())
            raise CLIError(f"{out} was trained with other {what} options: {shown}; "
                           "drop them to resume, or train a new run with another --out")
    if args.epochs is not None:
        run.train_options["epochs"] = args.epochs
    if not same_source(args.data, run.data.source):
        raise CLIError(f"{out} was trained on {run.data.source!r}, not {args.data!r}")
    if args.split is not None and args.split != run.data.split:
        raise CLIError(f"{out} was split by {run.data.split}, not --split {args.split}")
    splits, info = run.load_splits(progress=not args.quiet)
    return run, {"splits": splits, "info": info}


def _install_stop_handler(trainer: Trainer):
    """First Ctrl-C: finish the batch, save, exit. Second: stop at once."""
    def handler(signum, frame):
        if trainer.stop_requested:
            raise KeyboardInterrupt
        trainer.stop_requested = True
        _say("\ninterrupt: finishing this batch and saving a checkpoint "
             "(Ctrl-C again to quit without saving)")
    return signal.signal(signal.SIGINT, handler)


def _epoch_printer(show_lr: bool):
    """``on_epoch``: one line per epoch (with the learning rate when it decays)."""
    def show(r) -> None:
        valid_loss = "" if r.valid_loss is None else f", valid loss {r.valid_loss:.4f}"
        lr = f", lr {r.lr:.3g}" if show_lr else ""
        _say(f"epoch {r.epoch}: train loss {r.train_loss:.4f}{valid_loss}{lr}, "
             f"{r.seconds:.1f} s")
    return show


def _prepare_out(args, out: Path) -> None:
    """Refuse an --out that training would damage; with --overwrite, clear our old run."""
    # a save killed mid-write (even the first config.json's) must not lock the directory
    stale = remove_stale_temps(out, FILES.values()) + remove_stale_temps(
        out / SPLIT_DIR, [f"{split}.tsv" for split in SPLIT_NAMES])
    if stale:
        _say(f"removed {len(stale)} temporary file(s) left by an interrupted save: "
             + " ".join(stale))
    state = run_state(out)
    if args.resume and args.overwrite:
        raise CLIError("--resume and --overwrite contradict each other: give one")
    if state == "file":
        raise CLIError(f"--out {out} is a file, not a directory")
    if state == "foreign":
        raise CLIError(f"--out {out} is not empty and is not a tinyattn run (it has no "
                       f"{FILES['config']} written by tinyattn train); tinyattn never writes "
                       "into another's files: choose another --out")
    if args.resume:
        if state != "run":
            raise CLIError(f"--resume: {out} holds no run to resume; train one without --resume")
        if not (out / FILES["checkpoint"]).exists():
            raise CLIError(f"--resume: {out} has no {FILES['checkpoint']} yet (training stopped "
                           "before its first epoch ended); start it again with --overwrite")
    elif state == "run" and not args.overwrite:
        raise CLIError(f"--out {out} already holds a run; add --resume to continue it, "
                       "--overwrite to replace it, or choose another --out")


def _flag_names(message: str) -> str:
    """An option's error in the command line's terms: ``input_feeding`` -> ``--input-feeding``."""
    keys = {*model_defaults("rnn"), *model_defaults("transformer"), *train_defaults("rnn")}
    for key in keys - set(SWITCHES):  # a switch takes no value, so no value of it is wrong
        message = re.sub(rf"(?<![\w-]){key}\b", flag(key), message)
    return message


def _build(run: Run, args):
    """Model, optimiser and trainer of a run; a bad option combination is
    reported in the flags' names, before anything is written."""
    opts = run.train_options
    try:
        model = run.build_model(opts["seed"])
        # runs made before the schedules existed have neither option: no schedule
        optimizer, schedule = build_optimizer(model, run.model_options, opts)
        trainer = Trainer(model, optimizer, schedule=schedule,
                          pad_id=Vocab.pad_id, sos_id=Vocab.sos_id, eos_id=Vocab.eos_id,
                          batch_size=opts["batch_size"], clip=opts["clip"],
                          rng=np.random.default_rng(opts["seed"]),
                          show_progress=not args.quiet)
    except (TypeError, ValueError) as err:
        if args.resume:  # the options come from the run's config.json, not the flags
            raise CLIError(f"{run.path('config')}: {err}") from None
        raise CLIError(_flag_names(str(err))) from None
    return model, trainer


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    _say(f"tinyattn train: warning: {_flag_names(str(message))}")


def cmd_train(args) -> int:
    """``tinyattn train``: build or resume a run, fit, evaluate, draw; exit status."""
    out = Path(args.out) if args.out else Path("runs") / Path(args.data).stem
    if args.data in TASKS and args.split is not None:
        raise CLIError(f"--split applies to sentence pairs; the task {args.data!r} has fixed "
                       "splits (data/README.md)")
    _prepare_out(args, out)
    run, data = (_resumed_run if args.resume else _new_run)(args, out)
    splits, opts = data["splits"], run.train_options
    model, trainer = _build(run, args)  # every option checked before anything is written
    if args.resume:  # a damaged checkpoint, or edited vocabularies, refused before any output
        run.load_model()
        trainer.resume(run.path("checkpoint"))
    if not args.resume:
        if args.overwrite and run_state(out) == "run":
            _say(f"--overwrite: replacing the run in {out} ("
                 + ", ".join(remove_run_files(out)) + ")")
        run.save_config()
        run.save_splits(splits)
    info = dict(data["info"])
    skipped = info.pop("skipped_lines", 0)
    _say(f"data: {args.data}: " + ", ".join(f"{k} {v}" for k, v in info.items())
         + f" examples; vocabulary {len(run.src_vocab)} -> {len(run.tgt_vocab)} tokens"
         + (f"; skipped {skipped} malformed lines (--skip-bad)" if skipped else ""))
    _say(f"model: {model.num_parameters():,} parameters, "
         + ", ".join(f"{k}={v}" for k, v in run.model_options.items()))
    trainer.checkpoint_extra = run.vocab_extra()
    if args.resume:
        _say(f"resumed {out}: {len(trainer.history)} epochs done")
    train = encode_pairs(splits["train"], run.src_vocab, run.tgt_vocab)
    valid = encode_pairs(splits["valid"], run.src_vocab, run.tgt_vocab)
    previous = _install_stop_handler(trainer)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("always", LossGrowthWarning)
            warnings.showwarning = _show_warning
            trainer.fit(train, valid, epochs=opts["epochs"], patience=opts["patience"],
                        checkpoint_path=run.path("checkpoint"), best_path=run.path("best"),
                        on_epoch=_epoch_printer(trainer.schedule is not None))
    except Interrupted as stop:
        try:
            trainer.save(run.path("checkpoint"))
        except NonFiniteError as err:  # the batch before the stop overflowed a weight
            return _diverged(f"training diverged before the stop: {err}", trainer, opts)
        _say(f"{stop}; saved {run.path('checkpoint')}. Continue with: "
             f"tinyattn train {args.data} --out {out} --resume")
        return 130
    except Diverged as err:
        return _diverged(err.what, trainer, opts)
    finally:
        signal.signal(signal.SIGINT, previous)
    # scores, pictures and later commands use the best epoch's weights (best.npz)
    return _finish_training(run, run.load_model(), splits, trainer, args)


def _diverged(what: str, trainer, opts) -> int:
    """Report a divergence in the flags' terms; exit status 1."""
    kept = (f"the checkpoint of epoch {len(trainer.history)} is kept"
            if trainer.history else "no checkpoint was saved")
    _say(f"tinyattn train: error: {what}; {kept}. Train again with --overwrite and a "
         f"lower --lr (now {opts['lr']:g}) or --clip (now {opts['clip']:g})")
    return 1


def _finish_training(run: Run, model, splits, trainer, args) -> int:
    from tinyattn.plot.curves import plot_history

    start = time.perf_counter()
    test = splits["test"]
    metrics = evaluate_examples(model, run, test)
    history = trainer.history
    metrics["train_seconds"] = round(sum(r.seconds for r in history), 2)
    metrics["epochs"] = len(history)
    metrics["decode_seconds"] = round(time.perf_counter() - start, 2)
    run.save_metrics(metrics)
    print(format_metrics(metrics, f"test ({len(test)} examples)"))
    fig = plot_history(history, batch_losses=trainer.batch_losses,
                       path=run.directory / "loss.png", title=f"training on {run.data.source}")
    _close(fig)
    if model.config["attention"] is not None:
        paths = plot_examples(model, run, test, range(min(args.plots, len(test))),
                              run.directory, prefix="alignment")
        if paths:
            _say("heatmaps: " + " ".join(str(p) for p in paths))
    _say(f"run saved in {run.directory}")
    return 0


def _close(fig) -> None:
    import matplotlib.pyplot as plt

    plt.close(fig)


# ----- translate / evaluate / plot -------------------------------------------
def _sentences(args) -> list[str]:
    lines = args.sentences if args.sentences else sys.stdin.read().splitlines()
    lines = [s for s in lines if s.strip() or args.sentences]
    if not lines:
        raise CLIError("no sentences: give them as arguments or on stdin")
    for k, s in enumerate(lines, 1):
        if not s.strip():
            raise CLIError(f"sentence {k} is empty")
    return lines


def cmd_translate(args) -> int:
    """``tinyattn translate``: decode the given sentences with a run's model."""
    run = Run.open(args.run)
    model = run.load_model()
    kind, lowercase = run.data.src_kind, run.data.lowercase
    sources = []
    for k, sentence in enumerate(_sentences(args), 1):
        tokens = tokenize(sentence, kind, lowercase=lowercase)
        if not tokens:
            raise CLIError(f"sentence {k} has no tokens")
        unknown = sorted({t for t in tokens if t not in run.src_vocab})
        if unknown:
            _say(f"sentence {k}: unknown to the model, read as <unk>: "
                 + " ".join(repr(t) for t in unknown))
        sources.append(tokens)
    results = decode(model, run, sources, beam=args.beam, n_best=args.n_best)
    for k, hyps in enumerate(results, 1):
        for rank, (words, hyp) in enumerate(hyps, 1):
            text = detokenize(words, run.data.tgt_kind)
            print(text if args.n_best == 1 else f"{k}.{rank}\t{hyp.score:.3f}\t{text}")
    if args.plot:
        if model.config["attention"] is None:
            raise CLIError("--plot: this model has no attention (attention=None)")
        _refuse_existing(plot_paths(args.plot, "sentence", range(len(sources))), "--plot",
                         args.overwrite)
        paths = plot_examples(model, run, sources, range(len(sources)), Path(args.plot),
                              prefix="sentence", beam=args.beam)
        _say("heatmaps: " + " ".join(str(p) for p in paths))
    return 0


def _refuse_existing(paths, flag: str, overwrite: bool) -> None:
    """A file the user named a directory for is replaced only with --overwrite."""
    existing = [p for p in paths if p.exists()]
    if existing and not overwrite:
        more = f" (and {len(existing) - 1} more)" if len(existing) > 1 else ""
        raise CLIError(f"{flag}: {existing[0]} already exists{more}; add --overwrite to "
                       "replace it, or choose another directory")


def _split(run: Run, name: str):
    splits, _ = run.load_splits()
    return splits[name]


def cmd_evaluate(args) -> int:
    """``tinyattn evaluate``: a run's scores on one of its splits."""
    run = Run.open(args.run)
    model = run.load_model()
    examples = _split(run, args.split)
    if args.limit is not None:
        examples = first_sources(examples, args.limit)
    metrics = evaluate_examples(model, run, examples, beam=args.beam)
    print(format_metrics(metrics, f"{args.split} ({len(examples)} examples)"))
    return 0


def cmd_plot(args) -> int:
    """``tinyattn plot``: attention heatmaps of chosen examples of a split."""
    run = Run.open(args.run)
    model = run.load_model()
    if model.config["attention"] is None:
        raise CLIError(f"{args.run} has no attention (attention=None): nothing to plot")
    heads = head_request(args, model)  # None unless --layer/--head/--heads/--self
    paths_of, draw = (plot_paths, plot_examples) if heads is None else (heads.paths, heads.plot)
    examples = _split(run, args.split)
    bad = [i for i in args.index if not 0 <= i < len(examples)]
    if bad:
        raise CLIError(f"--index {bad[0]} is out of range: the {args.split} split has "
                       f"{len(examples)} examples (0..{len(examples) - 1})")
    out = Path(args.out) if args.out else run.directory / "plots"
    if args.out:  # RUN_DIR/plots is the run's own: redrawing there replaces old pictures
        _refuse_existing(paths_of(out, args.split, args.index), "--out", args.overwrite)
    paths = draw(model, run, examples, args.index, out, prefix=args.split, beam=args.beam)
    print("\n".join(str(p) for p in paths))
    return 0


# ----- argument parsing -------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the four commands."""
    parser = argparse.ArgumentParser(
        prog="tinyattn", description="Train, run and inspect seq2seq models with attention "
        "(pure NumPy).", epilog="Example: tinyattn train dates --out runs/dates")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    t = sub.add_parser("train", help="train a model on a task, a corpus or a TSV file of "
                       "sentence pairs",
                       description="Train a model; writes config.json, checkpoint.npz, "
                       "vocabularies, the data split (data/*.tsv), metrics.json, loss.png and "
                       "alignment PNGs to --out.")
    t.add_argument("data", metavar="DATA",
                   help=f"a task ({', '.join(TASKS)}), a corpus ({', '.join(CORPORA)}: "
                   "fetched when missing, see 'tinyattn data') or a tab-separated file of pairs")
    t.add_argument("--out", help="run directory (default runs/<task or file name>)")
    t.add_argument("--resume", action="store_true", help="continue the run in --out")
    t.add_argument("--overwrite", action="store_true",
                   help="replace the run in --out (only ever a tinyattn run)")
    add_model_arguments(t)
    o = t.add_argument_group("training (defaults: " + ", ".join(
        f"{k}={v}" for k, v in train_defaults("rnn").items()) + "; --arch transformer: "
        + ", ".join(f"{k}={v}" for k, v in train_defaults("transformer").items()
                    if v != train_defaults("rnn")[k]) + ")")
    o.add_argument("--epochs", type=positive)
    o.add_argument("--batch-size", dest="batch_size", type=positive)
    o.add_argument("--lr", type=positive_float)
    o.add_argument("--clip", type=positive_float)
    o.add_argument("--seed", type=non_negative)
    o.add_argument("--patience", type=positive,
                   help="stop when the validation loss has not improved for N epochs")
    o.add_argument("--lr-decay", dest="lr_decay", type=float_in(lambda v: 0 < v < 1,
                                                                 "a number in (0, 1)"),
                   help="multiply the learning rate by this when the validation loss has not "
                   "improved for --decay-patience epochs")
    o.add_argument("--decay-patience", dest="decay_patience", type=positive)
    o.add_argument("--warmup", type=positive,
                   help="--arch transformer: the learning rate rising "
                   "linearly to --lr over this many steps, then falling (see --schedule)")
    o.add_argument("--schedule", choices=SCHEDULES,
                   help="--arch transformer, after --warmup: 'linear' to almost 0 at the "
                   "last step of --epochs (further epochs of a resumed run stay there), or "
                   "'noam' as 1/sqrt(step) (Vaswani et al. 2017)")
    d = t.add_argument_group("data")
    d.add_argument("--train-size", dest="train_size", type=positive,
                   help="use only the first N training examples")
    d.add_argument("--src-kind", dest="src_kind", choices=("char", "word", "zh"))
    d.add_argument("--tgt-kind", dest="tgt_kind", choices=("char", "word", "zh"))
    d.add_argument("--keep-case", action="store_true", help="do not lowercase TSV text")
    d.add_argument("--max-len", dest="max_len", type=positive,
                   help="drop TSV pairs with more tokens on either side")
    d.add_argument("--english-prefixes", action="store_true",
                   help="keep only pairs whose English side (the source; the target with "
                        "--swap) starts 'i am', 'he is', ... (PyTorch tutorial)")
    d.add_argument("--skip-bad", action="store_true",
                   help="skip malformed TSV lines (and report how many) instead of stopping")
    d.add_argument("--swap", action="store_true", help="translate column 2 -> column 1")
    d.add_argument("--split", choices=SPLIT_KINDS, default=None,
                   help="'source' (default): each source sentence goes wholly to train, valid "
                   "or test, so no test source is seen in training; 'pairs': each pair "
                   "independently (the old way, for comparison)")
    d.add_argument("--split-seed", dest="split_seed", type=non_negative, default=0)
    d.add_argument("--min-freq", dest="min_freq", type=positive, default=1)
    t.add_argument("--plots", type=non_negative, default=3,
                   help="alignment PNGs of test examples")
    t.add_argument("--quiet", action="store_true",
                   help="no progress bar (a corpus download still prints its licence)")
    t.set_defaults(func=cmd_train)

    tr = sub.add_parser("translate", help="translate sentences with a trained run")
    tr.add_argument("run", metavar="RUN_DIR")
    tr.add_argument("sentences", nargs="*", help="sentences (default: one per line on stdin)")
    tr.add_argument("--beam", type=positive, default=1, help="beam size (1 = greedy)")
    tr.add_argument("--n-best", dest="n_best", type=positive, default=1)
    tr.add_argument("--plot", metavar="DIR", help="write each sentence's heatmap to DIR")
    tr.add_argument("--overwrite", action="store_true",
                    help="replace heatmaps already in --plot DIR")
    tr.set_defaults(func=cmd_translate)

    ev = sub.add_parser("evaluate", help="exact match, BLEU, alignment accuracy on a split")
    ev.add_argument("run", metavar="RUN_DIR")
    ev.add_argument("--split", choices=SPLIT_NAMES, default="test")
    ev.add_argument("--beam", type=positive, default=1)
    ev.add_argument("--limit", type=positive,
                    help="only the first N distinct sources, each with all its references")
    ev.set_defaults(func=cmd_evaluate)

    pl = sub.add_parser("plot", help="alignment heatmaps for chosen examples of a split")
    pl.add_argument("run", metavar="RUN_DIR")
    pl.add_argument("--split", choices=SPLIT_NAMES, default="test")
    pl.add_argument("--index", type=int, nargs="+", default=[0, 1, 2])
    pl.add_argument("--beam", type=positive, default=1,
                    help="with a beam > 1, one heatmap per hypothesis")
    pl.add_argument("--out", help="directory (default RUN_DIR/plots)")
    pl.add_argument("--overwrite", action="store_true",
                    help="replace heatmaps already in --out DIR")
    add_head_arguments(pl)
    pl.set_defaults(func=cmd_plot)
    data_command.add_parser(sub)
    return parser


def main(argv=None) -> int:
    """Entry point of ``tinyattn``: run one command; errors become one line and exit 2."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (CLIError, RunError, DataError, ValueError, TypeError, OSError, MemoryError,
            KeyboardInterrupt) as e:
        if os.environ.get("TINYATTN_DEBUG"):
            raise
        code, message = _failure(e)
        newline = "\n" if code == 130 else ""  # a progress bar may hold the line
        print(f"{newline}tinyattn {args.command}: {message}", file=sys.stderr)
        return code


def _failure(e: BaseException) -> tuple[int, str]:
    """Exit status and the one line that reports an exception ``main`` caught."""
    if isinstance(e, KeyboardInterrupt):
        # Every file tinyattn writes is replaced atomically, so what is on disk is whole.
        return 130, "interrupted (Ctrl-C); files written so far are complete"
    if isinstance(e, MemoryError):
        return 2, ("error: out of memory; choose smaller sizes (--hidden-size, --emb-size, "
                   "--batch-size, --beam)")
    return 2, "error: " + (str(e).splitlines()[0] if str(e) else type(e).__name__)

if __name__ == "__main__":
    sys.exit(main())
