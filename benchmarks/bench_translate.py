"""Translation on real sentence pairs: tinyattn and the same model in PyTorch,
trained side by side, BLEU after each epoch and seconds per epoch.

The data is a Tatoeba corpus (``eng-fra`` with the PyTorch tutorial's filter and
direction: at most 10 words, English sentences starting "i am", "he is", ...,
translated from French; or ``cmn-eng``, English words to Chinese characters;
``--swap`` turns either round), split by source sentence as
``tinyattn train`` splits it (no test source occurs in training). Both models
start from the same weights (`tinyattn.interop.to_torch`) and see the same
batches in the same order (`tinyattn.training.make_batches`, shuffled and
bucketed by one seed per epoch). One training step is what `Trainer` does:
forward, backward, clip the global gradient norm, Adam. The PyTorch model is
`tinyattn.torch_model.TorchSeq2Seq`: PyTorch's own layers (packed
``nn.GRU`` encoder, ``nn.GRUCell`` decoder stepped in a Python loop, as the
PyTorch tutorial does), autograd, ``torch.optim.Adam``; it gets as many
threads as numpy's BLAS.

The epochs are interleaved (a tinyattn epoch, then a PyTorch epoch, ...), so
drift of a shared machine hits both alike. After each epoch each model
decodes the test sources greedily (the PyTorch weights brought back with
`tinyattn.interop.from_torch`, so both are decoded by the same code) and
scores them as ``tinyattn evaluate`` does: BLEU with one reference per pair
(comparable with published numbers) and with every reference of a source.
Training seconds exclude decoding.

Run: ``python benchmarks/bench_translate.py --corpus eng-fra --epochs 4``
(needs the corpus: ``tinyattn data fetch eng-fra``, or ``TINYATTN_DATA``);
``--quick`` is a smoke run on a few hundred pairs. The Markdown report goes to
stdout (and to ``--markdown PATH``), progress to stderr.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_rnn import blas_shared_with, cpu_model, write_report  # noqa: E402

from tinyattn.cli.evaluation import evaluate_examples  # noqa: E402
from tinyattn.cli.run import DataSpec, encode_pairs, load_examples  # noqa: E402
from tinyattn.data import Vocab  # noqa: E402
from tinyattn.seq2seq import Seq2Seq  # noqa: E402
from tinyattn.training import Adam, clip_grad_norm, make_batches  # noqa: E402

try:
    import torch
except ImportError:  # pragma: no cover - the benchmark needs PyTorch
    torch = None

CORPUS_SPECS = {  # the filters tinyattn train's recipes use (README, "Real sentence pairs")
    "eng-fra": dict(max_len=10, english_prefixes=True, src_kind="word", tgt_kind="word"),
    "cmn-eng": dict(max_len=10, src_kind="word", tgt_kind="zh"),
}
RECIPES = {  # the README's documented commands: the corpus's direction and the options
    "eng-fra": dict(swap=True, emb_size=128, hidden_size=128, lr=3e-3),
    "cmn-eng": dict(swap=False, emb_size=128, hidden_size=128, lr=3e-3),
}
IDS = dict(pad_id=Vocab.pad_id, sos_id=Vocab.sos_id, eos_id=Vocab.eos_id)


def load(corpus: str, swap: bool, quick: bool):
    """The examples split by source, the vocabularies, and a run-like object
    for `tinyattn.cli.evaluation.evaluate_examples`."""
    spec = DataSpec(corpus, swap=swap, **CORPUS_SPECS[corpus])
    splits, _ = load_examples(spec, progress=False)
    if quick:
        splits = {name: items[: 300 if name == "train" else 40] for name, items in
                  splits.items()}
    vocabs = [Vocab.build([getattr(e, side) for e in splits["train"]]) for side in
              ("src", "tgt")]
    longest = max(len(e.tgt) for e in splits["train"])
    run = SimpleNamespace(src_vocab=vocabs[0], tgt_vocab=vocabs[1], data=spec,
                          train_options={"max_decode_len": 2 * longest + 5})
    return splits, run


def tinyattn_epoch(model, opt, batches, clip):
    model.train()
    for k, b in enumerate(batches):
        if model.uses_dropout:
            model.seed_dropout(k)
        model(*b)
        model.zero_grad()
        model.backward()
        clip_grad_norm(model, clip)
        opt.step()


def torch_epoch(twin, opt, batches, clip):
    twin.train()
    for b in batches:
        opt.zero_grad()
        twin(*b).backward()
        torch.nn.utils.clip_grad_norm_(twin.parameters(), clip)
        opt.step()


def scores(model, run, test) -> dict:
    t0 = time.perf_counter()
    m = evaluate_examples(model, run, test)
    return {"bleu1": m["bleu_single_ref"], "bleu": m["bleu"],
            "decode_s": time.perf_counter() - t0}


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--corpus", choices=sorted(CORPUS_SPECS), default="eng-fra")
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--swap", choices=("yes", "no"), default=None,
                   help="translate column 2 -> column 1 (default: the corpus's recipe: "
                        "French -> English for eng-fra, English -> Chinese for cmn-eng)")
    p.add_argument("--emb-size", type=int, default=None, help="default: the recipe's")
    p.add_argument("--hidden-size", type=int, default=None,
                   help="per encoder direction; the decoder state is twice this "
                        "(default: the recipe's)")
    p.add_argument("--attention", default="bahdanau")
    p.add_argument("--dropout", type=float, default=0.0)
    p.add_argument("--lr", type=float, default=None, help="default: the recipe's")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--clip", type=float, default=5.0)
    p.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quick", action="store_true", help="a smoke run on a few hundred pairs")
    p.add_argument("--markdown", metavar="PATH", help="also write the report here")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    recipe = RECIPES[args.corpus]
    for key in ("emb_size", "hidden_size", "lr"):
        if getattr(args, key) is None:
            setattr(args, key, recipe[key])
    swap = recipe["swap"] if args.swap is None else args.swap == "yes"
    if torch is None:
        print("bench_translate needs PyTorch: make torch", file=sys.stderr)
        return 2
    from tinyattn.interop import from_torch, to_torch

    blas = blas_shared_with(torch)
    splits, run = load(args.corpus, swap, args.quick)
    train = encode_pairs(splits["train"], run.src_vocab, run.tgt_vocab)
    dtype = np.float32 if args.dtype == "float32" else np.float64
    model = Seq2Seq(len(run.src_vocab), len(run.tgt_vocab), emb_size=args.emb_size,
                    hidden_size=args.hidden_size, attention=args.attention,
                    dropout=args.dropout, pad_id=Vocab.pad_id,
                    rng=np.random.default_rng(args.seed), dtype=dtype)
    twin = to_torch(model)
    torch.manual_seed(args.seed)
    opt = Adam(model.named_parameters(), lr=args.lr)
    t_opt = torch.optim.Adam(twin.parameters(), lr=args.lr)
    rows = []
    for epoch in range(1, args.epochs + 1):
        batches = make_batches(train, args.batch_size, rng=np.random.default_rng(
            [args.seed, epoch]), bucket=True, **IDS)
        t0 = time.perf_counter()
        tinyattn_epoch(model, opt, batches, args.clip)
        t1 = time.perf_counter()
        torch_epoch(twin, t_opt, batches, args.clip)
        t2 = time.perf_counter()
        ours = scores(model, run, splits["test"])
        theirs = scores(from_torch(twin), run, splits["test"])
        rows.append((epoch, t1 - t0, ours, t2 - t1, theirs))
        print(f"epoch {epoch}: tinyattn {t1 - t0:.1f} s BLEU {ours['bleu1']:.2f} | "
              f"PyTorch {t2 - t1:.1f} s BLEU {theirs['bleu1']:.2f}", file=sys.stderr,
              flush=True)

    n_src = len({tuple(e.src) for e in splits["test"]})
    direction = {("eng-fra", False): "English -> French", ("eng-fra", True): "French -> English",
                 ("cmn-eng", False): "English -> Chinese",
                 ("cmn-eng", True): "Chinese -> English"}[args.corpus, swap]
    lines = [f"# Translation, {args.corpus} ({direction}): tinyattn vs PyTorch CPU, trained "
             "side by side", "",
             f"- data: {len(splits['train'])} training pairs, {len(splits['test'])} test pairs "
             f"({n_src} distinct sources), split by source{' (--quick subset)' * args.quick}",
             f"- model: bi-GRU encoder E={args.emb_size}, H={args.hidden_size} per direction, "
             f"{args.attention} attention, GRU decoder {2 * args.hidden_size}, dropout "
             f"{args.dropout}, {args.dtype}; Adam lr {args.lr}, batch {args.batch_size}, "
             f"clip {args.clip}, seed {args.seed}; greedy decoding",
             f"- machine: {cpu_model()}, {platform.python_version()}, numpy {np.__version__} "
             f"({blas[0]}, {blas[1]} threads), torch {torch.__version__} "
             f"({torch.get_num_threads()} threads)",
             "- BLEU 1 ref: each pair against its own target; all refs: each distinct "
             "source against every target it has", "",
             "| epoch | tinyattn s | tinyattn BLEU 1 ref | all refs | PyTorch s | "
             "PyTorch BLEU 1 ref | all refs | time tinyattn/PyTorch |",
             "|---|---|---|---|---|---|---|---|"]
    for epoch, ts, ours, ps, theirs in rows:
        lines.append(f"| {epoch} | {ts:.1f} | {ours['bleu1']:.2f} | {ours['bleu']:.2f} | "
                     f"{ps:.1f} | {theirs['bleu1']:.2f} | {theirs['bleu']:.2f} | "
                     f"{ts / ps:.2f} |")
    total_t, total_p = sum(r[1] for r in rows), sum(r[3] for r in rows)
    lines += ["", f"Training time over {args.epochs} epochs: tinyattn {total_t:.0f} s, "
              f"PyTorch {total_p:.0f} s, ratio {total_t / total_p:.2f}.", ""]
    write_report("\n".join(lines), args.markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
