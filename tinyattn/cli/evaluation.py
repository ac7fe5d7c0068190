"""Decode, score and draw a trained model's outputs on tokenised examples.

Shared by the command line and the lessons. Examples are
`tinyattn.data.Example` objects (with gold alignments) or plain token lists.

Alignment accuracy and attention entropy are measured with the reference
target fed in (teacher forcing), so every reference token has an attention
row to compare with its gold span, whatever the model would have predicted.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tinyattn.data import Vocab, detokenize
from tinyattn.metrics import (
    alignment_accuracy,
    attention_entropy,
    bleu_signature,
    corpus_bleu,
    token_accuracy,
)
from tinyattn.module import eval_mode
from tinyattn.training.batching import pad_batch, pad_ids


def _src(item):
    return list(item.src) if hasattr(item, "src") else list(item)


def _chunks(n: int, size: int):
    return (range(i, min(i + size, n)) for i in range(0, n, size))


def decode(model, run, sources, *, beam: int = 1, n_best: int = 1, batch_size: int = 256):
    """Decode token lists; per source, a list of ``(words, Hypothesis)`` (n-best first).

    ``words`` are the target tokens without ``<eos>``; the hypothesis keeps
    the ids, the score and one attention row per id (``<eos>`` included).
    """
    max_len = run.train_options["max_decode_len"]
    out = []
    for idx in _chunks(len(sources), batch_size):
        src, lengths = pad_ids([run.src_vocab.encode(sources[i]) for i in idx], Vocab.pad_id)
        kw = dict(max_len=max_len, sos_id=Vocab.sos_id, eos_id=Vocab.eos_id)
        if beam == 1:
            results = [[h] for h in model.greedy_decode(src, lengths, **kw)]
        else:
            results = model.beam_search(src, lengths, beam_size=beam, n_best=n_best, **kw)
        for hyps in results:
            out.append([(run.tgt_vocab.decode(h.tokens), h) for h in hyps[:n_best]])
    return out


def teacher_forced(model, run, sources, targets, *, batch_size: int = 256):
    """Attention rows ``(len(target) + 1, len(source))`` per pair, the model fed
    the target (the last row is the step that predicts ``<eos>``), and local
    attention's predicted centres ``p_t`` (or None)."""
    alphas, positions = [], []
    with eval_mode(model):  # the trained model's attention, without dropout
        for idx in _chunks(len(sources), batch_size):
            batch = pad_batch([(run.src_vocab.encode(sources[i]), run.tgt_vocab.encode(targets[i]))
                               for i in idx], pad_id=Vocab.pad_id, sos_id=Vocab.sos_id,
                              eos_id=Vocab.eos_id)
            model(*batch)
            p_t = model.attention_positions
            for row, i in enumerate(idx):
                T, S = len(targets[i]) + 1, len(sources[i])
                alphas.append(np.asarray(model.attention_weights[row, :T, :S], dtype=np.float64))
                positions.append(None if p_t is None else np.asarray(p_t[row, :T], np.float64))
    model._cache = None  # no backward follows
    return alphas, positions


def references_by_source(examples) -> dict[tuple, list[list]]:
    """Each distinct source (a tuple of tokens, in order of first occurrence) ->
    the targets of every example with that source: its references."""
    groups: dict[tuple, list[list]] = {}
    for e in examples:
        if hasattr(e, "tgt"):
            groups.setdefault(tuple(_src(e)), []).append(list(e.tgt))
    return groups


def first_sources(examples, n: int) -> list:
    """The examples of the first ``n`` distinct sources, each with all of its
    references (a limit never cuts a source's references short)."""
    keep = set(list(references_by_source(examples))[:n])
    return [e for e in examples if tuple(_src(e)) in keep]


def evaluate_examples(model, run, examples, *, beam: int = 1) -> dict:
    """Scores of the decoded outputs, alignment accuracy (when gold spans
    exist) and mean attention entropy.

    A source that occurs in several examples (one sentence, several
    translations) is decoded once and scored against all of its targets:
    ``bleu`` is multi-reference corpus BLEU over the distinct sources and
    ``exact_match`` the fraction of them whose output equals any reference.
    ``bleu_single_ref`` (each example's output against its own target, a
    source counted once per example, as most published numbers are) and
    ``token_accuracy`` are per example. ``bleu_signature`` says how BLEU was
    computed (sacrebleu's layout).
    """
    if not examples:
        raise ValueError("no examples to evaluate")
    sources = [_src(e) for e in examples]
    refs = [list(e.tgt) for e in examples]
    groups = references_by_source(examples)
    outputs = dict(zip(groups, (d[0][0] for d in decode(model, run, [list(s) for s in groups],
                                                        beam=beam))))
    hyps = [outputs[tuple(src)] for src in sources]
    nrefs = {len(r) for r in groups.values()}
    tokenizer = "tinyattn-" + run.data.tgt_kind
    metrics = {"examples": len(examples), "sources": len(groups),
               "exact_match": float(np.mean([outputs[s] in r for s, r in groups.items()])),
               "token_accuracy": token_accuracy(hyps, refs),
               "bleu": corpus_bleu(list(outputs.values()), list(groups.values())).score,
               "bleu_single_ref": corpus_bleu(hyps, refs).score,
               "bleu_signature": bleu_signature(
                   nrefs=nrefs.pop() if len(nrefs) == 1 else "var",
                   # a task's tokens are generated as they are: never lowercased
                   lowercase=run.data.lowercase and not run.data.is_task,
                   tokenizer=tokenizer)}
    if model.config["attention"] is not None:
        alphas, _ = teacher_forced(model, run, sources, refs)
        golds = [list(e.gold) for e in examples if getattr(e, "gold", None) is not None]
        if golds and len(golds) == len(examples) and any(g is not None for gl in golds
                                                          for g in gl):
            metrics["alignment_accuracy"] = alignment_accuracy(alphas, golds)
        metrics["attention_entropy"] = float(np.mean(np.concatenate(
            [attention_entropy(a) for a in alphas])))
    return metrics


def format_metrics(metrics: dict, title: str) -> str:
    """A small aligned table of the metrics, for the terminal."""
    rows = [("distinct sources", "sources", "{}"),
            ("exact match", "exact_match", "{:.2%}"),
            ("token accuracy", "token_accuracy", "{:.2%}"),
            ("BLEU", "bleu", "{:.2f}"),
            ("BLEU, 1 reference", "bleu_single_ref", "{:.2f}"),
            ("BLEU signature", "bleu_signature", "{}"),
            ("alignment accuracy", "alignment_accuracy", "{:.2%}"),
            ("attention entropy", "attention_entropy", "{:.3f} nats"),
            ("training time", "train_seconds", "{:.1f} s"),
            ("decoding time", "decode_seconds", "{:.1f} s")]
    lines = [title]
    if metrics.get("sources", 0) == metrics.get("examples"):  # one reference each: the same
        rows = [row for row in rows if row[1] not in ("sources", "bleu_single_ref")]
    lines += [f"  {label:<19}{fmt.format(metrics[key])}" for label, key, fmt in rows
              if key in metrics]
    return "\n".join(lines)


def _row_labels(run, hyp) -> list[str]:
    """One label per attention row: every id the decoder emitted, the ``<eos>``
    and any ``<pad>``/``<sos>`` an undertrained model produced included."""
    return run.tgt_vocab.decode(hyp.tokens, strip_special=False)


def plot_paths(out_dir, prefix: str, indices) -> list[Path]:
    """The PNG paths `plot_examples` writes: ``out_dir/<prefix>_<index>.png``."""
    return [Path(out_dir) / f"{prefix}_{i}.png" for i in indices]


_TITLES = {"alignment": "example", "sentence": "sentence"}  # else the split's name


def greedy_view(model, run, item, i: int, *, prefix: str, references: dict):
    """One example's greedy decode, as a picture shows it.

    Returns ``(src, hyp, labels, gold, title)``: the source tokens, the
    `Hypothesis`, one label per attention row (`_row_labels`), the gold spans
    per row when the output equals the example's own reference (else None),
    and a title saying whether the output is a reference (``references``:
    `references_by_source` of the examples ``item`` comes from).
    """
    src = _src(item)
    words, hyp = decode(model, run, [src])[0][0]
    labels = _row_labels(run, hyp)
    ref = list(getattr(item, "tgt", []))
    gold = None
    if getattr(item, "gold", None) is not None and words == ref:
        gold = list(item.gold) + [None] * (len(labels) - len(ref))
    # every target of this source among the examples is a reference
    refs = []
    if ref:  # its own target first: the one a wrong output is shown beside
        refs = list(references[tuple(src)])
        refs.insert(0, refs.pop(refs.index(ref)))
    more = f" (or {len(refs) - 1} more)" if len(refs) > 1 else ""
    verdict = "" if not refs else (": output = a reference ✓" if words in refs else
                                   ": reference " + detokenize(refs[0], run.data.tgt_kind)
                                   + more + " ✗")
    empty = " (empty output)" if not words else ""
    return src, hyp, labels, gold, f"{_TITLES.get(prefix, prefix)} {i}{empty}{verdict}"


def plot_examples(model, run, examples, indices, out_dir, *, prefix: str, beam: int = 1):
    """One heatmap PNG per chosen example (one figure of n-best heatmaps with
    ``beam > 1``); gold spans are outlined when the output equals the
    reference. Returns the paths written."""
    import matplotlib.pyplot as plt

    from tinyattn.plot.heatmaps import plot_alignment, plot_hypotheses

    paths = []
    references = references_by_source(examples)
    for i, path in zip(indices, plot_paths(out_dir, prefix, indices)):
        if beam > 1:
            src = _src(examples[i])
            results = decode(model, run, [src], beam=beam, n_best=beam)[0]
            labels = [_row_labels(run, h) for _, h in results]
            fig = plot_hypotheses([h for _, h in results], src, labels, path=path,
                                  title=f"{prefix} {i}: beam {beam}")
        else:
            src, hyp, labels, gold, title = greedy_view(model, run, examples[i], i,
                                                        prefix=prefix, references=references)
            # the emitted tokens fed back: one row per label, as in the free-running decode
            _, positions = teacher_forced(model, run, [src], [labels[:-1]])
            p_t = positions[0]
            window = model.config["window"] if p_t is not None else None
            fig = plot_alignment(hyp.attention, src, labels, gold=gold, positions=p_t,
                                 window=window, path=path, title=title)
        plt.close(fig)
        paths.append(path)
    return paths
