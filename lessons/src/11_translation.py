# Lesson 11 source, in the percent format of lessons/build.py (no solution blocks).
# Built and executed by lessons/build.py into lessons/11_translation.ipynb.

# %% [markdown]
# # Lesson 11 — Translation: real English → Chinese, and where the first document goes wrong
#
# **Goal.** Put the whole model to work on real sentences, English → Chinese from the Tatoeba
# corpus, and then go through the first source document's mistakes one by one. In this lesson
# you will
#
# 1. see how English words and Chinese characters become tokens, on the project's phrasebook;
# 2. read the real English–Chinese corpus (`cmn-eng`) with the same code path as `tinyattn
#    train`, keep its short sentences and split them by source sentence; then write BLEU's
#    counting for one sentence against several references (an exercise);
# 3. gradient-check the model's configuration on a tiny, phrasebook-sized model;
# 4. train a Bahdanau model (bidirectional GRU encoder) on 8,925 sentence pairs, in a minute
#    or two;
# 5. measure it on held-out sentences: BLEU against one reference and against all of them,
#    with its signature, and read some of its translations;
# 6. read alignment heatmaps of held-out sentences, translate document 003's example "Are you
#    very big?" → 你很大？, and look at the n-best list of beam search;
# 7. correct the six errata of document 000 (`docs/sources.md`), each with the
#    equation that is right and a demonstration against the library that ends in an `assert`.
#
# **Sources.** Document 003 (`docs/sources.md`, "从 Seq2seq 到 Attention 模型到 Self
# Attention（一）") gives the example sentence, in its introduction (前言):
# "举例来说，如果我们将“Are you very big”作为输入句（source sentence），即可得到目标句（target
# sentence）“你很大？”" ("for example, if we take 'Are you very big' as the input sentence
# (source sentence), we get the target sentence 你很大？"; the document writes the English
# without a question mark, the phrasebook with one);
# it also gives the attention equations
# (`docs/equations.md` §4, from Bahdanau, Cho & Bengio 2015, arXiv:1409.0473). Document 000
# (`docs/sources.md`, the article by 禅与计算机程序设计艺术 that opens with "1.简介") is the first
# document, whose errors section 7 corrects. Bidirectional encoder: `docs/equations.md` §3
# (Bahdanau et al. 2015, §3.2). Decoder and training: §2 and §6 (Cho et al. 2014,
# arXiv:1406.1078; Sutskever et al. 2014, arXiv:1409.3215). Luong's scores: §5 (Luong, Pham &
# Manning 2015, arXiv:1508.04025). Decoding: §10. BLEU: §11.2 (Papineni et al. 2002; its
# signature as sacrebleu writes it, Post 2018). The corpus: Tatoeba (tatoeba.org), as
# `data/README.md` describes it.
#
# The notebook runs in about four minutes on two CPU cores (with one BLAS thread, as `make test`
# runs it), most of it training two models (section 4 and section 6.4).

# %%
import inspect
import time
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from IPython.display import Markdown, display

import tinyattn as ta
import tinyattn.exercises as exercises
from tinyattn.cli.options import MODEL_DEFAULTS, TRAIN_DEFAULTS
from tinyattn.cli.evaluation import (decode, evaluate_examples, first_sources, format_metrics,
                                     references_by_source, teacher_forced)
from tinyattn.cli.run import DataSpec, Run, encode_pairs, load_examples
from tinyattn.data import Example, Vocab, detokenize, fetch, filter_pairs, read_pairs, tokenize
from tinyattn.functional import softmax
from tinyattn.gradcheck import TOL_MODEL, check_gradients
from tinyattn.metrics import alignment_accuracy, bleu_signature
from tinyattn.plot import plot_alignment, plot_history, plot_hypotheses
from tinyattn.training.batching import pad_batch

np.set_printoptions(precision=2, suppress=True)
# the repository's data/, found from the notebook's directory (lessons/ or lessons/solutions/)
DATA = next((d / "data" / "phrasebook_en_zh.tsv" for d in (Path.cwd(), *Path.cwd().parents)
             if (d / "data" / "phrasebook_en_zh.tsv").exists()), None)
if DATA is None:
    raise FileNotFoundError("data/phrasebook_en_zh.tsv not found above "
                            f"{Path.cwd()}: open this notebook inside the tinyattn repository")

# %% [markdown]
# ## 1. The phrasebook and its tokens
#
# `data/phrasebook_en_zh.tsv` holds 283 short English → Simplified Chinese pairs written for
# this project (`data/README.md`): three tab-separated columns, English, Chinese and an
# attribution, the layout of the Tatoeba files that manythings.org/anki distributes. The
# sentences recombine a small vocabulary in regular patterns (pronoun + 很 + adjective,
# 我喜欢…, …吗？). Here it shows how text becomes tokens and feeds the gradient check of
# section 3; the model itself learns from the real corpus (section 2). `read_pairs` reads the
# file and checks every line.

# %%
pairs, skipped = read_pairs(DATA)
print(f"{len(pairs)} pairs, {skipped} bad lines skipped")
for p in pairs[:3]:
    print(f"line {p.line}: {p.src!r} -> {p.tgt!r}   ({p.attribution})")
big = next(p for p in pairs if p.src == "Are you very big?")
print(f"line {big.line}: {big.src!r} -> {big.tgt!r}   (document 003's example)")
assert len(pairs) == 283 and big.tgt == "你很大？"

# %% [markdown]
# **Tokens.** English is split into words and punctuation (`tokenize(kind="word")`, lower-cased
# as the command line does by default). Chinese has no spaces between words, and this library
# does no word segmentation: `kind="zh"` makes **every character one token** (runs of Latin
# letters or digits stay together). So 北京 ("Beijing") is two tokens, 北 and 京, and the
# model must learn that together they translate one English word.

# %%
for text, kind in [(big.src, "word"), (big.tgt, "zh"), ("Beijing is very big.", "word"),
                   ("北京很大。", "zh"), ("I don't like coffee.", "word"),
                   ("我有3个iPhone。", "zh")]:
    print(f"{kind:4} {text!r:24} -> {tokenize(text, kind, lowercase=True)}")

assert tokenize(big.src, "word", lowercase=True) == ["are", "you", "very", "big", "?"]
assert tokenize(big.tgt, "zh") == ["你", "很", "大", "？"]
assert detokenize(["你", "很", "大", "？"], "zh") == "你很大？"

# %% [markdown]
# ## 2. The real corpus, read as `tinyattn train` reads it
#
# The phrasebook's 283 hand-written pairs are far too few to learn a language from. The real
# data is Tatoeba's English–Chinese corpus, `cmn-eng`: 28,447 sentence pairs written and
# translated by volunteers (tatoeba.org, CC BY 2.0 FR; each line keeps its attribution
# column), in the phrasebook's three columns. Its Chinese is mixed Simplified and Traditional
# script, as Tatoeba's contributors wrote it (岁 and 歲 are the same word, "years of age"). It
# is **not in the repository**. Get it once, from a shell:
#
# ```sh
# tinyattn data fetch cmn-eng    # downloads a pinned copy and checks its sha256
# ```
#
# It is kept in `~/.cache/tinyattn`, or in the directory named by the environment variable
# `TINYATTN_DATA` when that is set; offline, `tinyattn data fetch cmn-eng --from PATH` registers
# a copy you brought (`data/README.md`). The next cell finds the file there (or downloads it,
# the first time); with no file and no network it stops with a one-line `FetchError` that says
# what to do.
#
# `tinyattn train cmn-eng --max-len 8 --out runs/cmn` starts with the following
# (`tinyattn/cli/commands.py`, `_new_run`); we run the same calls here, in memory, without
# writing a run directory:
#
# 1. `DataSpec("cmn-eng", max_len=8)` describes the data; `load_examples` reads the pairs, picks
#    each side's tokeniser (`"zh"` when over a third of the sentences contain a CJK character,
#    else `"word"`), drops every pair with more than 8 tokens on a side, and splits the rest
#    **deterministically** (seed 0) into 80 % train, 10 % valid and 10 % test, **by source
#    sentence**: all translations of one English sentence go to the same split, so no held-out
#    English sentence was seen in training;
# 2. `Vocab.build` makes each side's vocabulary from the **training** split only: ids 0–3 are
#    `<pad> <sos> <eos> <unk>`, and a word never seen in training becomes `<unk>`;
# 3. a `Run` holds the data description, the vocabularies and the model and training options,
#    and `run.build_model(seed)` builds the `Seq2Seq` (section 4).

# %%
spec = DataSpec("cmn-eng", max_len=8)  # a corpus name, as on the command line
splits, info = load_examples(spec, progress=False)  # find (or fetch), read, filter, split
print(info, f"| tokenisers: source {spec.src_kind!r}, target {spec.tgt_kind!r}")
assert (spec.src_kind, spec.tgt_kind) == ("word", "zh")
for name in ("train", "test"):
    ex = splits[name][0]
    print(f"{name}[0]: {ex.src} -> {ex.tgt}\n          {ex.origin.attribution}")

src_vocab = Vocab.build([ex.src for ex in splits["train"]])
tgt_vocab = Vocab.build([ex.tgt for ex in splits["train"]])
print(f"vocabularies (train split): {len(src_vocab):,} English tokens, "
      f"{len(tgt_vocab):,} Chinese tokens (4 specials included)")

# %% [markdown]
# **Which subset, and why.** Training time grows with the number of tokens the model reads and
# writes, and this lesson has about two minutes for each model it trains. We keep the pairs of
# at most 8 tokens on each side (punctuation counts: English sentences of up to about seven
# words, Chinese of up to eight characters); the next cell counts what that keeps.

# %%
all_pairs, _ = read_pairs(fetch("cmn-eng", progress=False))
for max_len in (8, 10, None):
    kept = all_pairs if max_len is None else filter_pairs(all_pairs, max_len=max_len,
                                                           src_kind="word", tgt_kind="zh")
    n_tokens = sum(len(tokenize(p.src, "word", lowercase=True)) + len(tokenize(p.tgt, "zh"))
                   for p in kept)
    label = "all pairs" if max_len is None else f"max_len {max_len}"
    print(f"{label:10}: {len(kept):6,} pairs, {n_tokens:7,} tokens (English + Chinese)")

# %% [markdown]
# At most 8 tokens per side keeps 11,146 of the 28,447 pairs and 137,583 of the 482,109
# tokens. At most 10 tokens would keep 18,696 pairs with 262,331 tokens, almost twice as many,
# so every epoch would take almost twice as long and half as many epochs would fit into the
# same two minutes. The split of the 11,146: 8,925 training, 1,110 validation and 1,111 test
# pairs.
#
# **Several translations per sentence.** Tatoeba often has more than one Chinese translation of
# an English sentence (in Simplified and in Traditional script, or in other words). The split
# keeps them together; the evaluation in section 5 uses them as several references.

# %%
for name, exs in splits.items():
    refs_of = references_by_source(exs)
    several = sum(len(r) > 1 for r in refs_of.values())
    print(f"{name:5}: {len(exs):5,} pairs, {len(refs_of):5,} distinct English sources, "
          f"{several:3} of them with several translations")
refs_test = references_by_source(splits["test"])
src_multi, refs_multi = next((s, r) for s, r in refs_test.items() if len(r) > 1)
print(f"e.g. (test) {detokenize(src_multi, 'word')!r}:",
      " / ".join(detokenize(r, "zh") for r in refs_multi))
for name in ("valid", "test"):
    unseen = sum(any(t not in src_vocab for t in ex.src) for ex in splits[name])
    print(f"{name}: {unseen} of {len(splits[name])} sources contain a word never seen in training")
everything = {ex.src for exs in splits.values() for ex in exs}
for text in (big.src, "He is ten years old."):
    print(f"{text!r} in the corpus (any split): "
          f"{tuple(tokenize(text, 'word', lowercase=True)) in everything}")

# %% [markdown]
# Only 54 of the 1,048 distinct test sources have more than one translation, so BLEU against
# all references will differ little from BLEU against one. About one held-out sentence in
# seven (169 of 1,110 and 171 of 1,111) contains an English word the training split never
# had, which the model reads as `<unk>`. Document 003's "Are you very big?" is not in the
# corpus, and neither is the phrasebook's "He is ten years old." (他十岁。): the model will
# translate both in section 6 without ever having seen them.
#
# ### 2.1 Exercise: one sentence's BLEU statistics against several references
#
# BLEU (`docs/equations.md` §11.2; Papineni et al. 2002) is computed from counts summed over the
# corpus, and each sentence adds three kinds. For its output (the hypothesis) and its references:
#
# - per order n = 1..4, the **clipped matches** $m_n$: each n-gram $g$ of the hypothesis counts
#   $\min(\text{count}_\text{hyp}(g), \max_\text{refs} \text{count}_\text{ref}(g))$ times,
#   so that 我我我我 cannot score 4 of 4 against a reference with one 我, and a match with *any*
#   reference counts (the largest count in any one of them, not their sum);
# - per order, the **totals** $t_n$, the number of n-grams of the hypothesis;
# - the **reference length** $r$ for the brevity penalty: the reference length closest to the
#   hypothesis's, a tie going to the shorter.
#
# Write `bleu_sentence_stats(hyp, refs, max_order)` returning `(matches, totals, ref_len)`, two
# lists of `max_order` ints and an int; `ex.check` compares them with the statistics that
# `tinyattn.metrics.corpus_bleu` sums, on three sentences. First a version that forgets the
# clipping:

# %%
from collections import Counter


def ngram_counts(tokens, n):
    """How often each n-gram (a tuple of n tokens) occurs in ``tokens``."""
    return Counter(tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1))


def bleu_stats_unclipped(hyp, refs, max_order):
    m, t = [], []
    for k in range(max_order):
        grams = ngram_counts(hyp, k + 1)
        seen = set().union(*(ngram_counts(r, k + 1) for r in refs))
        m.append(sum(c for g, c in grams.items() if g in seen))  # BUG: not clipped
        t.append(sum(grams.values()))
    lengths = sorted(len(r) for r in refs)
    return m, t, min(lengths, key=lambda k: abs(k - len(hyp)))


wrong_bleu = exercises.check("bleu_sentence_stats", bleu_stats_unclipped)
assert wrong_bleu.status == "failed"

# %% [markdown]
# The totals and the reference lengths are right; the matches are wrong wherever the hypothesis
# repeats a character more often than any reference has it. Now yours (`ngram_counts` helps, and
# so does `Counter`'s `|`, which keeps the larger count of each key):

# %%
def my_bleu_sentence_stats(hyp, refs, max_order):
    """One hypothesis's BLEU statistics against its references.

    hyp: a list of tokens; refs: a list of token lists (one or more references);
    max_order: N, the longest n-gram counted. Returns (matches, totals, ref_len):
        matches[n-1] = Σ_{n-grams g of hyp} min(count_hyp(g), max over refs of count_ref(g))
        totals[n-1]  = the number of n-grams of hyp (len(hyp) − n + 1, or 0)
        ref_len      = the reference length closest to len(hyp) (a tie: the shorter)
    """
    # BEGIN SOLUTION
    matches, totals = [], []
    for n in range(1, max_order + 1):
        mine = ngram_counts(hyp, n)
        best = Counter()
        for ref in refs:
            best |= ngram_counts(ref, n)  # the largest count in any one reference
        matches.append(sum(min(c, best[g]) for g, c in mine.items()))
        totals.append(sum(mine.values()))
    ref_len = min(sorted(len(ref) for ref in refs), key=lambda k: abs(k - len(hyp)))
    return matches, totals, ref_len
    # END SOLUTION

# %%
mine_bleu = exercises.check("bleu_sentence_stats", my_bleu_sentence_stats)
assert mine_bleu.status in ("passed", "not implemented"), "read the report above"

# %% [markdown]
# **Predict.** Take a test source with two Chinese translations, and suppose the model writes
# the *second* one exactly. What BLEU does that output get against both references, and what
# against the first reference alone?

# %%
from tinyattn.metrics import corpus_bleu  # the library's BLEU, after the exercise

src_two, refs_two = next((s, r) for s, r in refs_test.items()
                         if len(r) == 2 and min(map(len, r)) >= 4)
out_two = refs_two[1]
print(f"{detokenize(src_two, 'word')!r}: references",
      " / ".join(detokenize(r, "zh") for r in refs_two), "; output", detokenize(out_two, "zh"))
both = corpus_bleu([out_two], [refs_two])
first_only = corpus_bleu([out_two], [[refs_two[0]]])
print("against both references:", both)
print("against the first only: ", first_only)
assert np.isclose(both.score, 100.0) and first_only.score < 50.0

# %% [markdown]
# Against both it scores 100.00: every n-gram is clipped by its count in the reference it
# copies, and the closest reference length is its own. Against the first reference alone the
# same, perfectly good translation scores 14.54: 75.0 % of its characters occur in that
# reference, but only 14.3 % of its character pairs and 5.0 % of its runs of four.
# That is the case for scoring against every reference a source has, and why a BLEU score must
# say how many references it used (its signature, section 5).
#
# ## 3. The model's gradient, checked on a tiny model
#
# The model of section 4 is the command line's default architecture
# (`tinyattn.cli.options.MODEL_DEFAULTS`): a **bidirectional GRU encoder** (annotations
# $h_j = [\overrightarrow{h}_j ; \overleftarrow{h}_j]$, `docs/equations.md` §3), a GRU decoder
# with **Bahdanau attention** (`docs/equations.md` §4), float32:
#
# | maths | meaning | in the code | shape |
# |---|---|---|---|
# | $x_j$ | English token $j$ | `batch.src` | (B, S) ids |
# | $h_j$ | encoder annotation | `enc_hs` | (B, S, 2H) |
# | $s_{i-1}$ | decoder state before output step $i$ | the query | (B, 2H) |
# | $e_{ij} = v_a \cdot \tanh(s_{i-1} W_a + h_j U_a)$ | score | `scores` | (B, T, S) |
# | $\alpha_{ij} = \text{softmax}_j(e_{ij})$ | attention weight | `attention_weights` | (B, T, S) |
# | $c_i = \sum_j \alpha_{ij} h_j$ | context | `context` | (B, 2H) per step |
# | $p(y_i \mid y_{<i}, x)$ | next Chinese character | `logits` | (B, T, V) |
#
# **Before trusting training, check the gradient** of this exact configuration (Bahdanau,
# bidirectional GRU). A model with thousands of characters in its vocabulary has far too many
# parameters to nudge one by one, so the check runs on a phrasebook-sized model: two phrasebook
# pairs, vocabularies built from those two pairs, float64 and tiny sizes (E = 3, H = 2, A = 4),
# so that every parameter entry can be nudged. The pairs have different lengths, so padding is
# exercised too. The loss is the mean cross-entropy over the real target tokens
# (`docs/equations.md` §6). **What to expect:** for a whole model, relative errors around
# $10^{-7}$ (larger than a single step's $10^{-10}$: the loss runs through dozens of chained
# steps and is one scalar, so round-off in the centered differences is larger), still far below
# the tolerance for a whole model, $10^{-5}$ (`TOL_MODEL`); a bug would show errors near
# $10^{-1}$–$1$.

# %%
tokenised = [(tokenize(p.src, "word", lowercase=True), tokenize(p.tgt, "zh")) for p in pairs]
two = [(s, t) for s, t in tokenised
       if " ".join(s) in ("she has a black cat .", "are you very big ?")]
v_src, v_tgt = Vocab.build([s for s, _ in two]), Vocab.build([t for _, t in two])
tiny = ta.Seq2Seq(len(v_src), len(v_tgt), emb_size=3, hidden_size=2, attn_size=4,
                  attention="bahdanau", pad_id=Vocab.pad_id, rng=np.random.default_rng(1))
b2 = pad_batch([(v_src.encode(s), v_tgt.encode(t)) for s, t in two], pad_id=Vocab.pad_id,
               sos_id=Vocab.sos_id, eos_id=Vocab.eos_id)
print("pairs:", [" ".join(s) + " -> " + "".join(t) for s, t in two])
print("src", b2.src.shape, "tgt_in", b2.tgt_in.shape, "(padded; lengths",
      b2.src_lengths, b2.tgt_lengths, ")")


def tiny_grads():
    tiny.zero_grad()
    tiny(*b2)
    tiny.backward()
    return {n: g.copy() for n, _, g in tiny.named_parameters()}


result = check_gradients(lambda: np.array(tiny(*b2)),
                         lambda d: {n: g * d for n, g in tiny_grads().items()},
                         {n: v for n, v, _ in tiny.named_parameters()}, tol=TOL_MODEL)
print(f"{tiny.num_parameters()} parameters checked; largest relative error "
      f"{result.max_error:.1e} (tolerance {TOL_MODEL:.0e})")
assert result.passed and result.max_error < 1e-6

# %% [markdown]
# ## 4. Training on 8,925 real sentence pairs
#
# The real model is built through `Run`, as `tinyattn train` builds it, from the command line's
# defaults with two changes: embeddings and hidden states of size E = H = 128 instead of 32 and
# 64 (a larger model for a real vocabulary of 3,472 English and 2,450 Chinese tokens), and a
# learning rate of 0.003 instead of 0.004. The rest is the command line's: Adam
# (`docs/equations.md` §9.2), batches of 64 pairs, the gradient norm clipped at 5, seed 0,
# float32. Six epochs, in two cells of three (the lesson builder gives each cell two minutes).
# After each epoch we print the training loss, the validation loss, the validation BLEU
# against all references (greedy decoding, `docs/equations.md` §10.1; BLEU in section 5) and
# the seconds the epoch's training took.

# %%
model_opts = {**MODEL_DEFAULTS, "emb_size": 128, "hidden_size": 128}
train_opts = {**TRAIN_DEFAULTS, "lr": 0.003, "epochs": 6,
              "max_decode_len": 2 * max(len(ex.tgt) for ex in splits["train"]) + 5}
run = Run(directory=None, data=spec, model_options=model_opts, train_options=train_opts,
          src_vocab=src_vocab, tgt_vocab=tgt_vocab)
model = run.build_model(seed=train_opts["seed"])
print({k: model_opts[k] for k in ("cell", "attention", "bidirectional", "emb_size",
                                  "hidden_size", "dtype")})
print(f"{model.num_parameters():,} parameters; encoder {type(model.encoder).__name__}"
      f"({type(model.encoder.fwd).__name__}, {type(model.encoder.bwd).__name__}), decoder cell "
      f"{type(model.decoder.cell).__name__}, attention {type(model.decoder.attn).__name__}")



def make_trainer(model):
    """Adam at the run's rate, its batches, clipping and seed, as `tinyattn train`."""
    return ta.Trainer(model, ta.Adam(model.named_parameters(), lr=train_opts["lr"]),
                      pad_id=Vocab.pad_id, sos_id=Vocab.sos_id, eos_id=Vocab.eos_id,
                      batch_size=train_opts["batch_size"], clip=train_opts["clip"],
                      rng=np.random.default_rng(train_opts["seed"]), show_progress=False)


trainer = make_trainer(model)
data = {name: encode_pairs(exs, src_vocab, tgt_vocab) for name, exs in splits.items()}


def epoch_printer(model, run):
    """A callback printing one line per epoch (the trainer prints nothing with
    show_progress=False)."""
    def after_epoch(record):
        valid_bleu = evaluate_examples(model, run, splits["valid"])["bleu"]
        print(f"epoch {record.epoch}: train loss {record.train_loss:.3f}, valid loss "
              f"{record.valid_loss:.3f}, valid BLEU {valid_bleu:5.2f}   ({record.seconds:.1f} s)")
    return after_epoch


after_epoch = epoch_printer(model, run)


start = time.perf_counter()
trainer.fit(data["train"], data["valid"], epochs=3, on_epoch=after_epoch)
print(f"this cell: {time.perf_counter() - start:.0f} s")

# %%
start = time.perf_counter()
trainer.fit(data["train"], data["valid"], epochs=train_opts["epochs"], on_epoch=after_epoch)
print(f"this cell: {time.perf_counter() - start:.0f} s; training time over "
      f"{len(trainer.history)} epochs: {sum(r.seconds for r in trainer.history):.0f} s")
fig = plot_history(trainer.history, batch_losses=trainer.batch_losses,
                   title=f"cmn-eng, {len(splits['train']):,} training pairs")

# %% [markdown]
# Each epoch's time is printed above (with one BLAS thread; the validation loss and BLEU add a
# few seconds per epoch, and a busy machine many more). The training loss
# (left, each batch and each epoch's mean) falls from 3.668 to 0.262 nats per character. The
# validation loss is lowest after epoch 3 (2.292) and then creeps up (2.447 after epoch 6):
# the model grows more confident, also on the held-out sentences it gets wrong. Yet the
# validation BLEU goes on rising, with a dip after epoch 5 (22.86), from 21.72 after epoch 3
# to 25.01 after epoch 6.
# Cross-entropy punishes a confident wrong character hard; BLEU only counts the characters
# that come out right. We keep the model of the last epoch, the best by BLEU; early stopping on
# the validation loss (`Trainer.fit(..., patience=1, best_path=...)`) would have kept the one
# of epoch 3.
#
# ## 5. Held-out BLEU
#
# `evaluate_examples` (the command line's `tinyattn evaluate`) decodes every distinct test
# source once, greedily, and compares the output with the references (`docs/equations.md`
# §11). **BLEU** (Papineni et al. 2002, as sacrebleu computes it, §11.2) counts the output's
# character n-grams (n = 1..4) that occur in a reference, with a penalty for outputs shorter
# than the reference. Two versions:
#
# - **all references** (`bleu`): each distinct English source is scored once, against every
#   Chinese translation it has in the test split; an n-gram counts when it occurs in any of
#   them. That is fairer to a model that picked another valid translation.
# - **1 reference** (`bleu_single_ref`): each test *pair* is scored against its own translation
#   only (a source with two translations counts twice, once against each), as most published
#   numbers are.
#
# The **signature** says how the number was computed (sacrebleu's layout): `nrefs` (1, or `var`
# when sources have different numbers of references), `case:lc` (lower-cased), `tok:tinyattn-zh`
# (Chinese characters, Latin words and numbers kept whole), the smoothing and the version. A
# BLEU without its signature cannot be compared with anything. The Chinese side is tokenised
# into characters, so this is **character-level BLEU**: it gives credit for every right
# character and character n-gram, and is not comparable with the word-level BLEU of published
# systems.

# %%
start = time.perf_counter()
scores = evaluate_examples(model, run, splits["test"])
print(format_metrics(scores, f"test ({len(splits['test'])} pairs)"))
sig_1 = bleu_signature(nrefs=1, lowercase=spec.lowercase, tokenizer="tinyattn-" + spec.tgt_kind)
print(f"\nBLEU, all references  {scores['bleu']:.2f}   {scores['bleu_signature']}")
print(f"BLEU, 1 reference     {scores['bleu_single_ref']:.2f}   {sig_1}")

# the same multi-reference BLEU from its parts: one greedy output per distinct source
test_sources = list(refs_test)
greedy_out = {src: words for src, ((words, _),) in
              zip(test_sources, decode(model, run, [list(s) for s in test_sources]))}
bleu = corpus_bleu(list(greedy_out.values()), list(refs_test.values()))
print(bleu)
assert np.isclose(bleu.score, scores["bleu"])

seen = first_sources(splits["train"], scores["sources"])  # as many training sources
seen_scores = evaluate_examples(model, run, seen)
print(f"\nfor comparison, the first {seen_scores['sources']:,} distinct training sources: "
      f"BLEU {seen_scores['bleu']:.2f} (all references), exact match "
      f"{seen_scores['exact_match']:.1%}")
print(f"({time.perf_counter() - start:.1f} s)")

# %% [markdown]
# On the 1,048 distinct test sources the model scores BLEU 24.79 against all references and
# 24.28 against one (close, since few sources have several translations), and 8.11 % of the
# sources come out exactly as a reference. On as many *training* sources, the same model
# scores 92.42 and gets 85.6 % exactly right: after six passes over its training pairs it
# recites most of them. On the test sentences, 58.2 % of its output characters occur in a
# reference, but only 13.4 % of its runs of four characters: BLEU 24.79 is the geometric mean
# of the four precisions (58.2, 29.9, 19.2 and 13.4 %) times a brevity penalty of 0.957, since
# its outputs are a little shorter than the references (6,834 characters against 7,131).
#
# **A few translations.** The first ten distinct sources of the test split, in split order (not
# chosen); a ✓ marks an output equal to one of the references.

# %%
lines = ["| English | reference(s) | model (greedy) | |", "|---|---|---|---|"]
for src in test_sources[:10]:
    out = greedy_out[src]
    lines.append(f"| {detokenize(src, 'word')} | "
                 f"{' / '.join(detokenize(r, 'zh') for r in refs_test[src])} | "
                 f"{detokenize(out, 'zh')} | {'✓' if out in refs_test[src] else '✗'} |")
display(Markdown("\n".join(lines)))

# %% [markdown]
# None of the ten is exactly right, and they go wrong in instructive ways. "how old will you
# be next year?" → 你明年多大了？ ("next year, how old are you?") is a good translation that
# is not the reference: exact match and BLEU count it as wrong, which is why several
# references help. "i wanted to cry." → 我想想哭。 has one 想 too many, a repetition; "i ate
# caviar." → 我吃了。 ("I ate.") leaves out what was eaten; "she was promoted." → 她在哭了。
# ("she is crying") is fluent Chinese with the wrong content, the typical mistake of a small
# model trained on little data.
#
# ## 6. Alignment heatmaps, "Are you very big?", and beam search
#
# ### 6.1 Held-out sentences
#
# One heatmap per sentence: rows are the Chinese characters the model produced (greedy; the
# last row predicts `<eos>`), columns the English tokens, colour the weight $\alpha_{ij}$ (each
# row sums to 1). Which sentences: the code searches the test split for every sentence
# containing "years old", and every sentence containing "ten"; all of them are shown, whatever
# the model makes of them.

# %%
def greedy_heatmap(src, title, ax=None, trained=None):
    """The greedy translation of a token list and its attention heatmap, by ``trained``
    (a (model, run) pair; the model of section 4 when None)."""
    ((words, hyp),) = decode(*(trained or (model, run)), [list(src)])[0]  # hyp.attention: (T, S)
    labels = words + (["<eos>"] if hyp.tokens[-1] == Vocab.eos_id else [])
    assert hyp.attention.shape == (len(labels), len(src))
    assert np.allclose(hyp.attention.sum(axis=1), 1.0, atol=1e-5)
    plot_alignment(hyp.attention, list(src), labels, ax=ax,
                   title=f'{title}"{detokenize(src, "word")}" → {detokenize(words, "zh")}')
    return words, hyp


def peaks(labels, src, alpha):
    """Each row's label, the source token its weight peaks on, and that weight."""
    return "  ".join(f"{c}→{src[a.argmax()]} {a.max():.2f}" for c, a in zip(labels, alpha))


def has(words, ex):
    """Whether the tokens ``words`` occur, in this order and next to each other, in ex.src."""
    n = len(words)
    return any(list(ex.src[k:k + n]) == words for k in range(len(ex.src) - n + 1))


years_old = [ex for ex in splits["test"] if has(["years", "old"], ex)]
ten = [ex for ex in splits["test"] if has(["ten"], ex)]
chosen = years_old + ten
print(f"test sentences with 'years old': {len(years_old)}, with 'ten': {len(ten)}")
fig, axes = plt.subplots(2, 2, figsize=(13, 10), layout="constrained")
for ex, ax in zip(chosen, axes.flat):
    words, hyp = greedy_heatmap(ex.src, "", ax=ax)
    refs = refs_test[ex.src]
    print(f"{detokenize(ex.src, 'word')!r} -> {detokenize(words, 'zh')}   reference: "
          + " / ".join(detokenize(r, "zh") for r in refs) + ("  ✓" if words in refs else "  ✗"))
    print("   ", peaks(words + ["<eos>"], ex.src, hyp.attention))
assert len(chosen) == 4  # the figure has four panels

# %% [markdown]
# What the four heatmaps show (the printed peaks give the numbers). The **content words
# align**: 活 ← "lived" (0.85); 父 ← "father" (0.93), and 亲 too (0.52: 父亲 is one word
# of two characters); 欠 ← "owe" (0.97); 十 ← "ten" in both "ten" sentences (0.58, 0.78);
# 歲 ← "years" (0.46, 0.82: "years old" is the one character 岁/歲); and 字, 路 ← "pens"
# (0.65, 0.71): the model's characters for "pens" are wrong, but it reads the right word for
# them. (有 ← "have" is an exception: it peaks on "ten", 0.56; so do 美 of 美元, "dollars",
# 0.43.) Two kinds of row do **not** align. The pronoun at the start of the sentence peaks on
# a later word, never on its own: 他 ← "lived" (0.77), 我 ← "father" (0.63), "owe" (0.75)
# and "ten" (0.46). And the final 。 peaks on the last content word ("years", "years",
# "her") in three of the four, and on "." only in the last (0.50). None of the four
# translations is right, and numbers are where it shows most: "seventy" becomes 八十
# ("eighty"), "fifty" is lost (在幾歲, "at how many years"), and "i owe ten dollars to her."
# loses "her" (我欠十美元。, "I owe ten dollars").
#
# **The same question over the whole test split.** Four heatmaps are anecdotes. We take
# characters whose English word is unambiguous: the pronouns 他, 她, 我, 你 (he, she, i, you),
# the final 。 and ？ (".", "?"), and 23 content characters (十 ← ten, 岁/歲 ← years old,
# 父 ← father, 吃 ← eat, 書 ← book, …: the list in the code). For every test pair in which such
# a character occurs once in the reference and its English word once in the source, we feed
# the reference in (`teacher_forced`, so every reference character has an attention row) and
# ask where the character's row peaks: on the word (the **alignment accuracy** of
# `docs/equations.md` §11.3, with the word as the gold span), or how many tokens before or
# after it.

# %%
LEXICON = {  # group -> {character: the English token(s) it translates}
    "pronouns": {"他": ["he"], "她": ["she"], "我": ["i"], "你": ["you"]},
    "final 。 and ？": {"。": ["."], "？": ["?"]},
    "content words": {"十": ["ten"], "岁": ["years", "old"], "歲": ["years", "old"],
                      "父": ["father"], "母": ["mother"], "狗": ["dog"], "猫": ["cat"],
                      "貓": ["cat"], "书": ["book"], "書": ["book"], "水": ["water"],
                      "茶": ["tea"], "吃": ["eat"], "喝": ["drink"], "车": ["car"],
                      "車": ["car"], "钱": ["money"], "錢": ["money"], "雨": ["rain"],
                      "门": ["door"], "門": ["door"], "爱": ["love"], "愛": ["love"]},
}
test_src = [list(ex.src) for ex in splits["test"]]
test_tgt = [list(ex.tgt) for ex in splits["test"]]


def peak_offsets(model, run):
    """group -> (offsets of the peaks from the word, alphas, gold spans, characters), over
    the test pairs, the model fed each reference."""
    test_alphas, _ = teacher_forced(model, run, test_src, test_tgt)  # (T + 1, S) each
    found = {}
    for src, tgt, alpha in zip(test_src, test_tgt, test_alphas):
        for group, lexicon in LEXICON.items():
            for char, words in lexicon.items():
                at = [k for k in range(len(src) - len(words) + 1)
                      if src[k:k + len(words)] == words]
                if tgt.count(char) != 1 or len(at) != 1:
                    continue
                i, j, end = tgt.index(char), at[0], at[0] + len(words)  # the word: src[j:end]
                peak = int(alpha[i].argmax())
                gold = [None] * len(alpha)
                gold[i] = (j, end)
                offsets, alphas, golds, chars = found.setdefault(group, ([], [], [], []))
                offsets.append(peak - j if peak < j else max(0, peak - (end - 1)))
                alphas.append(alpha)
                golds.append(gold)
                chars.append(char)
    return found


def print_peak_table(found):
    """Per group: how many pairs, and where their rows peak relative to the word."""
    print(f"{'':15} {'pairs':>5}  {'2+ before':>9}  {'1 before':>8}  {'on the word':>11}  "
          f"{'1 after':>7}  {'2+ after':>8}")
    for group, (offsets, alphas, golds, chars) in found.items():
        n, off = len(offsets), np.array(offsets)
        on_word = alignment_accuracy(alphas, golds)  # docs/equations.md §11.3
        assert np.isclose(on_word, np.mean(off == 0))
        print(f"{group:15} {n:5}  {np.mean(off <= -2):9.0%}  {np.mean(off == -1):8.0%}  "
              f"{on_word:11.0%}  {np.mean(off == 1):7.0%}  {np.mean(off >= 2):8.0%}")


found = peak_offsets(model, run)
print_peak_table(found)
content = found["content words"]
print("content words counted:", ", ".join(f"{c} {content[3].count(c)}"
                                          for c in LEXICON["content words"] if c in content[3]))

# %% [markdown]
# The whole test split says the same as the four heatmaps. The content words (83 pairs: 吃 ←
# "eat", 書 ← "book", 水 ← "water" and the others of the printed list) peak on their English
# word 80 % of the time. The pronouns 他, 她, 我, 你 (479 pairs) peak on their word only 5 % of
# the time and after it most of the time (43 % on the next token, 39 % further on). The final
# 。 and ？ (1,054 pairs) peak on "." or "?" 15 % of the time, and on the token before them
# 67 % of the time.
#
# Why would attention read the wrong word? Nothing in the loss asks it to point at the word
# a character translates: it asks for whatever context helps predict the next character, and
# in this model a neighbour often serves as well. The annotations are bidirectional (§3):
# the annotation of "lived" carries "he" in its forward half, and the annotation of the last
# word carries the "." in its backward half. The decoder's first state $s_0$ comes from the
# encoder's final state, whose backward half $\overleftarrow{h}_1$ has just read the first
# word (§2), so the pronoun can be predicted without attention at all. And in Bahdanau's
# decoder the context $c_i$ also enters the next state $s_i$ (`docs/equations.md` §4), so what
# step $i$ reads serves the following steps too: reading ahead pays. These are plausible
# reasons, not proofs (section 6.4 tests the second one). A heatmap shows where the decoder
# reads, which is not always the word it translates.
#
# ### 6.2 "Are you very big?"
#
# Document 003's example is in neither split: the corpus does not contain it (section 2), so
# the model has never seen it. Its words are all in the vocabulary. Here is what the model
# makes of it, and where it looks:

# %%
big_src = tokenize(big.src, "word", lowercase=True)
big_words, big_hyp = greedy_heatmap(big_src, "not in the corpus: ")
print(f"{big.src!r} -> {detokenize(big_words, 'zh')}   (document 003: {big.tgt})")
print(peaks(big_words + ["<eos>"], big_src, big_hyp.attention))

# %% [markdown]
# The model writes 你很大嗎？: document 003's 你很大？ with the question particle 嗎 (吗 in
# Simplified script) added, as a Chinese yes/no question usually has it. That is a correct
# translation, and another reminder that one reference is not the only right answer. The
# attention is the table above in miniature: 大 ← "big" (0.86) and ？ ← "?" (0.69) are where
# they should be; 你 looks at "big" (0.64), not at "you"; 很 peaks on "big" too (0.66), with
# most of the rest on "very" (the heatmap); and "are", which Chinese does not express here
# (你很大 is literally "you very big"), gets almost no weight from any row.
#
# With document 003's translation fed in instead (`teacher_forced`), we can outline, in red,
# the English word each character translates (our own annotation: 你 ← you, 很 ← very,
# 大 ← big, ？ ← ?; `<eos>` has none) and count how many rows peak inside their outline.

# %%
big_tgt = tokenize(big.tgt, "zh")
(alpha_big,), _ = teacher_forced(model, run, [big_src], [big_tgt])
big_gold = [(1, 2), (2, 3), (3, 4), (4, 5), None]
fig = plot_alignment(alpha_big, big_src, big_tgt + ["<eos>"], gold=big_gold,
                     gold_label="hand alignment",
                     title=f'document 003\'s translation fed in: "{big.src}" → {big.tgt}')
print(peaks(big_tgt + ["<eos>"], big_src, alpha_big))
print(f"alignment accuracy: {alignment_accuracy([alpha_big], [big_gold]):.0%} of 4 characters")

# %% [markdown]
# One of the four characters (25 %) peaks inside its outline: 大 ← "big". The rows of 你, 很
# and 大 are those of the greedy heatmap (the same characters were fed in before them). ？ now
# peaks on "big" (0.84), the very row in which the model wrote 嗎 above, and only the `<eos>`
# row looks at "?" (0.69): the weights of row $i$ are computed from the decoder state
# *before* character $i$ (the query $s_{i-1}$, `docs/equations.md` §4), so they cannot depend
# on the character that is then fed in. A teacher-forced heatmap shows where the model read
# while predicting each reference character, whatever it would itself have written there.
#
# ### 6.3 Beam search: the n-best
#
# Greedy decoding takes the most probable character at every step; beam search
# (`docs/equations.md` §10.2) keeps the K best partial translations and returns the best
# finished ones, ranked by their log-probability (with no length penalty, §10.3, the score is
# the log-probability). Beam 5, three best, for document 003's sentence and for "He is ten years
# old.", which is not in the corpus either:

# %%
beam_src = {text: tokenize(text, "word", lowercase=True)
            for text in (big.src, "He is ten years old.")}
nbest = {}
for text, src in beam_src.items():
    nbest[text] = decode(model, run, [src], beam=5, n_best=3)[0]
    print(text)
    for k, (words, hyp) in enumerate(nbest[text], 1):
        print(f"  #{k} {detokenize(words, 'zh'):10} score {hyp.score:7.3f}   "
              f"p = {np.exp(hyp.logprob):.3f}")
    assert [w for w, _ in decode(model, run, [src], beam=1)[0]] == \
        [w for w, _ in decode(model, run, [src])[0]]  # a beam of 1 is greedy

# %%
text = "He is ten years old."
labels = [tgt_vocab.decode(h.tokens, strip_special=False) for _, h in nbest[text]]
fig = plot_hypotheses([h for _, h in nbest[text]], beam_src[text], labels,
                      title=f'"{text}": beam 5, the 3 best')
for k, ((_, hyp), row_labels) in enumerate(zip(nbest[text], labels), 1):
    print(f"#{k}", peaks(row_labels, beam_src[text], hyp.attention))

# %% [markdown]
# For document 003's sentence the beam finds a hypothesis the model prefers to its greedy
# output, by a hair: 你非常胖？ ("are you very fat?", probability 0.047) against 你很大嗎？
# (0.046), then 你非常大吗？ (0.026: 非常 for "very", Simplified 吗). Greedy decoding never
# saw 你非常胖？, because its first steps committed to 很. A search that finds more probable
# outputs is not a search for better translations: here it finds a worse one. For "He is ten
# years old." even the best hypothesis is wrong: 他十歲十歲。 says "ten years old" twice, and
# the model gives it probability 0.338, far more than the second, 他十歲。 (0.043), which is
# right. The heatmaps show how the repetition happens. All three hypotheses share their first
# two rows (他 peaks on "ten", 0.42, with almost as much on "he" in the heatmap; 十 ← "ten",
# 0.87); in the best one, 歲 still reads "ten"
# (0.63), the second 十 "years" (0.44) and the second 歲 "old" (0.44). The attention moves
# along the sentence one step too slowly, and nothing in this model keeps track of which
# source words have already been translated, so "ten years old" is translated twice.
#
# Does beam search help on the whole test split? The same evaluation as section 5, with a beam
# of 5:

# %%
start = time.perf_counter()
beam_scores = evaluate_examples(model, run, splits["test"], beam=5)
print(f"test, beam 5: BLEU {beam_scores['bleu']:.2f} (all references), "
      f"{beam_scores['bleu_single_ref']:.2f} (1 reference), exact match "
      f"{beam_scores['exact_match']:.1%}   [greedy: {scores['bleu']:.2f}, "
      f"{scores['bleu_single_ref']:.2f}, {scores['exact_match']:.1%}]   "
      f"({time.perf_counter() - start:.1f} s)")

# %% [markdown]
# A beam of 5 raises the test BLEU from 24.79 to 26.79 (all references) and from 24.28 to
# 26.19 (one reference), and the exact match from 8.1 % to 9.3 %, for the decoding time printed
# above: beam search finds outputs the model itself prefers, and on average they are a
# little better. It cannot fix what the model believes, such as 他十歲十歲。.
#
# ### 6.4 An experiment: a decoder that starts from zeros
#
# Section 6.1 gave reasons why the pronouns read a later word. The second one can be tested.
# The decoder's first state $s_0 = \tanh(c\,W_s + b_s)$ (the bridge, `docs/equations.md` §2)
# comes from the encoder's final state, whose backward half $\overleftarrow{h}_1$ has just
# read the first word. If that is how the model knows the pronoun, a decoder that starts from
# $s_0 = 0$ has to find it through attention instead. `Seq2Seq(..., bridge=False)`
# (`tinyattn train --no-bridge`) is exactly that model: the same encoder, attention and
# decoder, no $W_s$ and $b_s$, and $s_0 = 0$. We train it as in section 4, with the same
# data, options and seed, and the same initial weights (`bridge=False` draws the bridge's
# weights and drops them, so every other weight starts as in section 4's model), and ask it
# the same questions.
#
# **Predict first.** Before you run the next cells, write down which rows of the table of
# section 6.1 you expect to change, in which direction, and whether BLEU goes up or down.

# %%
nb_opts = {**model_opts, "bridge": False}
nb_run = Run(directory=None, data=spec, model_options=nb_opts, train_options=train_opts,
             src_vocab=src_vocab, tgt_vocab=tgt_vocab)
nb_model = nb_run.build_model(seed=train_opts["seed"])
Hd = model.encoder.hidden_size
assert model.num_parameters() - nb_model.num_parameters() == Hd * Hd + Hd
print(f"{nb_model.num_parameters():,} parameters: {Hd * Hd + Hd:,} fewer than section 4's, "
      f"the bridge's W_s ({Hd} x {Hd}) and b_s")
nb_trainer = make_trainer(nb_model)
start = time.perf_counter()
nb_trainer.fit(data["train"], data["valid"], epochs=3, on_epoch=epoch_printer(nb_model, nb_run))
print(f"this cell: {time.perf_counter() - start:.0f} s")

# %%
start = time.perf_counter()
nb_trainer.fit(data["train"], data["valid"], epochs=train_opts["epochs"],
               on_epoch=epoch_printer(nb_model, nb_run))
print(f"this cell: {time.perf_counter() - start:.0f} s")

# %%
nb_scores = evaluate_examples(nb_model, nb_run, splits["test"])
for name, sc in (("with the bridge (section 4)", scores), ("without a bridge", nb_scores)):
    print(f"{name:28} test BLEU {sc['bleu']:.2f} (all references), "
          f"{sc['bleu_single_ref']:.2f} (1 reference), exact match {sc['exact_match']:.1%}")
print("\nwith the bridge (the table of section 6.1):")
print_peak_table(found)
nb_found = peak_offsets(nb_model, nb_run)
print("\nwithout a bridge, s_0 = 0:")
print_peak_table(nb_found)

# %%
fig, axes = plt.subplots(2, 2, figsize=(13, 10), layout="constrained")
for ex, ax in zip(chosen, axes.flat):  # the four test sentences of section 6.1
    words, hyp = greedy_heatmap(ex.src, "no bridge: ", ax=ax, trained=(nb_model, nb_run))
    print(f"{detokenize(ex.src, 'word')!r} -> {detokenize(words, 'zh')}")
    print("   ", peaks(words + ["<eos>"], ex.src, hyp.attention))

# %%
text = "He is ten years old."
fig, axes = plt.subplots(1, 2, figsize=(13, 5), layout="constrained")
for ax, (name, trained) in zip(axes, (("bridge", (model, run)),
                                      ("no bridge", (nb_model, nb_run)))):
    words, hyp = greedy_heatmap(beam_src[text], f"{name}: ", ax=ax, trained=trained)
    print(f"{name:9}", peaks(words + ["<eos>"], beam_src[text], hyp.attention))

# %% [markdown]
# Without the bridge, **the pronouns read their own word**: 87 % of them peak on it, against
# 5 % with the bridge, and almost none read a later word any more (3 % the next token, 3 %
# further on, against 43 % and 39 %). In the heatmaps 他 ← "he" (1.00), 我 ← "i" (1.00 and
# 0.97) and 我 ← "my" (0.57, in 我父亲, "my father"). The content words stay where they were
# (76 % on their word against 80 %, a difference of a few of the 83 pairs), and so does the
# final 。 or ？ (15 % on its own token, 63 % on the token before it): switching the bridge
# off moves the pronouns and little else in the table. The final punctuation's habit has
# another cause, such as the first reason of section 6.1, which this experiment does not
# touch. So the model of section 4 did not need to look at "he" to write 他: its first state
# already held the first word, and attention was free to read ahead. Take that state away
# and attention must fetch the pronoun, and it fetches it from the word itself.
#
# "He is ten years old." (not in the corpus) shows it best, side by side. With the bridge,
# 他 peaks on "ten" (0.42); without it, 他 ← "he" (0.99), 十 ← "ten" (0.99), and 歲, the
# "years old", reads "years" (0.49): he → 他, ten → 十, years → 歲, the alignment one
# hopes to see in a translation heatmap. The translation is still wrong, 他十年三十歲。
# ("he ten years thirty years old"): a readable heatmap is not a good translation, and the
# model's trouble with numbers is the same as before.
#
# The test BLEU is 26.17 (all references) and 25.46 (one) without the bridge, against 24.79
# and 24.28 with it, and 9.8 % exact matches against 8.1 %. That is one training run of each,
# with the same seed and the same initial weights but for the bridge, and a gain of this size
# can come from the seed alone. The README (its English → Chinese recipe) reports both models
# trained with seeds 0, 1 and 2: the pronouns move onto their word with every seed, while the
# BLEU goes up with some seeds and down with others. (To see it here, set
# `train_opts["seed"] = 1` and run section 4 and section 6.4 again.) So the lesson of this
# experiment is not "drop the bridge": it is that a heatmap answers "where did the decoder
# read?", and the answer depends on what else the decoder already knows.

# %% [markdown]
# ## 7. Where document 000 goes wrong
#
# Document 000 explains seq2seq and attention with several mistakes, which `docs/sources.md`
# lists as errata; here is each one, in the order the document makes them:
# what it says (quoted, with a translation), what is right, and a demonstration against the
# library that ends in an `assert`.
#
# ### 7.1 The encoder's two directions run independently and are joined afterwards
#
# **The document says** (section "Encoder模块"):
# "左侧RNN的初始状态是由左边&lt;SOS&gt;标记和输入序列的第一个单词一起计算得出的"
# ("the left RNN's initial state is computed from the `<SOS>` mark on the left together with the
# first word of the input"; the right RNN's from `<EOS>` and the last word), and
# "每一步都将左侧RNN的最新状态和右侧RNN的最新状态合并起来作为下一步计算时的初始状态"
# ("at every step, the latest states of the left and the right RNN are merged to be the
# initial state of the next step").
#
# **What is right** (`docs/equations.md` §3; Bahdanau et al. 2015, §3.2): each direction is an
# ordinary RNN that starts from its own initial state (zeros here) and reads the plain source
# tokens, no `<SOS>`/`<EOS>`:
#
# $$\overrightarrow{h}_j = f(x_j, \overrightarrow{h}_{j-1}), \qquad
# \overleftarrow{h}_j = f(x_j, \overleftarrow{h}_{j+1}), \qquad
# h_j = [\overrightarrow{h}_j ; \overleftarrow{h}_j].$$
#
# The two are concatenated per position *after* both have run; neither ever sees the other's
# state. **Shown:** the trained encoder's output equals its forward GRU run alone, next to its
# backward GRU run alone on the reversed sentence (both from zero); and changing the *last*
# word leaves every forward state before it unchanged, which merging the states at every step
# would not.

# %%
big_ex = Example(big_src, big_tgt, [None] * len(big_tgt))  # document 003's pair, as tokens
enc = model.encoder
H = enc.fwd.hidden_size
b_big = pad_batch(encode_pairs([big_ex], src_vocab, tgt_vocab), pad_id=Vocab.pad_id,
                  sos_id=Vocab.sos_id, eos_id=Vocab.eos_id)
assert not np.isin(b_big.src, [Vocab.sos_id, Vocab.eos_id]).any()  # no <sos>/<eos> in the source
assert b_big.tgt_in[0, 0] == Vocab.sos_id and b_big.tgt_out[0, -1] == Vocab.eos_id  # target only

x = model.src_emb(b_big.src)  # (1, S, E), "are you very big ?"
hs, _ = enc(x)  # (1, S, 2H)
hs_f, _ = enc.fwd(x)  # forward GRU alone, from h_0 = 0: (1, S, H)
hs_b_rev, _ = enc.bwd(x[:, ::-1])  # backward GRU alone, on the reversed sentence
assert hs.shape == (1, 5, 2 * H) and hs_f.shape == hs_b_rev.shape == (1, 5, H)
assert np.allclose(hs[..., :H], hs_f) and np.allclose(hs[..., H:], hs_b_rev[:, ::-1])

x2 = model.src_emb(np.array([[src_vocab.index(t) for t in ["are", "you", "very", "big", "."]]]))
hs2, _ = enc(x2)  # the same sentence ending in "." instead of "?"
fwd_same = [bool(np.array_equal(hs[0, j, :H], hs2[0, j, :H])) for j in range(5)]
bwd_same = [bool(np.array_equal(hs[0, j, H:], hs2[0, j, H:])) for j in range(5)]
print("source ids:", b_big.src[0], "(no <sos>=1 or <eos>=2)")
print("last token '?' -> '.': forward half unchanged at positions", fwd_same)
print("                       backward half unchanged at positions", bwd_same)
assert fwd_same == [True] * 4 + [False] and not any(bwd_same)

# %% [markdown]
# ### 7.2 The decoder is not bidirectional
#
# **The document says** (section "Decoder模块"): "Decoder模块也是一种双向的RNN" ("the Decoder
# module is also a bidirectional RNN"), and describes it passing states between a left and a
# right RNN.
#
# **What is right** (`docs/equations.md` §2 and §4; Cho et al. 2014, Bahdanau et al. 2015): the
# decoder generates left to right, one token at a time, and each token depends only on the
# tokens before it:
#
# $$s_i = f(s_{i-1}, [E y_{i-1} ; c_i]), \qquad p(y_i \mid y_{<i}, x) =
# \text{softmax}([s_i ; c_i ; E y_{i-1}] W_o + b_o).$$
#
# At inference the tokens to the right do not exist yet, so there is nothing for a backward
# direction to read. In training (teacher forcing) the whole reference *is* available, and a
# bidirectional decoder would peek at the very token it must predict. **Shown:** with the
# reference fed in, changing the target token at position k changes the trained decoder's
# outputs from step k on and leaves every earlier step exactly as it was.

# %%
assert isinstance(model.encoder, ta.Bidirectional)
assert isinstance(model.decoder.cell, ta.GRU) and not isinstance(model.decoder.cell,
                                                                 ta.Bidirectional)


def teacher_forced_logits(tgt_in):
    """All decoder outputs (1, T, V) for a given decoder input (1, T), in one call."""
    enc_hs, state0, _, src_mask = model.encode(b_big.src, b_big.src_lengths)
    memory = model.decoder.prepare(enc_hs, src_mask, None)  # annotations and keys h_j U_a
    logits, _ = model.decoder(model.tgt_emb(tgt_in), memory, state0)
    return logits


tgt_in = b_big.tgt_in  # <sos> 你 很 大 ？
print("decoder input:", tgt_vocab.decode(tgt_in[0], strip_special=False))
base = teacher_forced_logits(tgt_in)
T = tgt_in.shape[1]
for k in range(1, T):
    changed_in = tgt_in.copy()
    changed_in[0, k] = tgt_vocab.index("小")  # replace one input token by 小
    new = teacher_forced_logits(changed_in)
    changed = [t for t in range(T) if not np.array_equal(base[0, t], new[0, t])]
    print(f"input token {k} -> 小: outputs changed at steps {changed}")
    assert changed == list(range(k, T))  # never before k

# %% [markdown]
# (Input position k holds $y_{k}$ and step $k$ predicts $y_{k+1}$, so the first output that
# may change is step k.) The library's encoder is `Bidirectional`; its decoder is a single
# `GRU` that only looks back.
#
# ### 7.3 Text classification is not a sequence-to-sequence task; CNN and LSTM are not applications
#
# **The document says** (section "模型应用", applications): "文本分类：对文本进行分类"
# ("text classification: classifying texts") and "其他序列模型：比如CNN、LSTM等" ("other sequence
# models, such as CNN, LSTM").
#
# **What is right:** a sequence-to-sequence model maps a sequence to another sequence, of a
# length T of its own, $p(y_1 \dots y_T \mid x_1 \dots x_S) =
# \prod_i p(y_i \mid y_{<i}, x)$, which is why it needs a decoder. Classification maps a
# sequence to **one** label, $p(y \mid x)$: an encoder and one softmax are enough, no decoder,
# no output steps, no alignment. And an LSTM
# (or a CNN) is a *building block*: it can be the encoder or the decoder of a seq2seq model,
# which makes it an architecture choice, not an application. **Shown:** a classifier from the
# library's parts outputs (B, C), not (B, T, V); and `cell="lstm"` builds the same seq2seq
# model with LSTM cells.

# %%
sentences = [big_ex, splits["train"][0], splits["train"][1]]  # 003's and two training pairs
batch3 = pad_batch(encode_pairs(sentences, src_vocab, tgt_vocab), pad_id=Vocab.pad_id,
                   sos_id=Vocab.sos_id, eos_id=Vocab.eos_id)
rng = np.random.default_rng(0)
C = 2  # two classes: question or statement (untrained: this shows shapes only)
classify = ta.Linear(2 * H, C, rng=rng, dtype=np.float32)
_, final = model.encoder(model.src_emb(batch3.src), None, batch3.src_lengths)  # (B, 2H)
p_class = softmax(classify(final), axis=1)  # (B, 2H) @ (2H, C) -> (B, C)
print("classifier:  src", batch3.src.shape, "-> final state", final.shape, "-> p(y|x)",
      p_class.shape)
assert final.shape == (3, 2 * H) and p_class.shape == (3, C)
assert np.allclose(p_class.sum(axis=1), 1.0, atol=1e-6)

model(*batch3)  # seq2seq: one distribution per output step
print("seq2seq:     src", batch3.src.shape, "-> attention", model.attention_weights.shape,
      "(B, T, S), one row per output step")
assert model.attention_weights.shape == (3, batch3.tgt_in.shape[1], batch3.src.shape[1])

lstm_model = ta.Seq2Seq(len(src_vocab), len(tgt_vocab), emb_size=8, hidden_size=6,
                        cell="lstm", attention="bahdanau", rng=np.random.default_rng(0))
lstm_model(*batch3)
print("cell='lstm': encoder", type(lstm_model.encoder.fwd).__name__, "x 2, decoder",
      type(lstm_model.decoder.cell).__name__, "-> attention", lstm_model.attention_weights.shape)
assert isinstance(lstm_model.encoder.fwd, ta.LSTM) and isinstance(lstm_model.decoder.cell, ta.LSTM)
assert lstm_model.attention_weights.shape == model.attention_weights.shape

# %% [markdown]
# ### 7.4 The attention matrix is T × S, not input length × input length
#
# **The document says** (section "创建一个注意力矩阵"):
# "Attention矩阵是一个二维矩阵，它的行数和列数都是输入序列的长度" ("the attention matrix is a
# two-dimensional matrix whose numbers of rows and of columns are both the length of the input
# sequence"). Two sentences later it contradicts itself:
# "注意力矩阵的元素aij代表着第i个输出位置和第j个输入位置之间的关联程度" ("the element aij of the
# attention matrix stands for how strongly the i-th output position and the j-th input position
# are related"), and its example then gives the two lengths different names:
# "假设输入序列的长度为n，输出序列的长度为m" ("suppose the input sequence has length n and the
# output sequence length m").
#
# **What is right** (`docs/equations.md` §4): $\alpha_{ij}$ has one **row per output step**
# $i = 1..T$ and one **column per input position** $j = 1..S$; each row is a softmax over $j$,
# so **rows** sum to 1 (columns need not). **Shown:** with the reference fed in
# (`evaluation.teacher_forced`), a held-out sentence of S = 7 English tokens and T = 9 rows
# (eight characters and `<eos>`) gives a 9 × 7 matrix.

# %%
father = next(ex for ex in splits["test"] if " ".join(ex.src) == "my father is fifty years old .")
(alpha_father,), _ = teacher_forced(model, run, [list(father.src)], [list(father.tgt)])
S, T = len(father.src), len(father.tgt) + 1
print(f"{detokenize(father.src, 'word')!r}: S = {S} tokens; {detokenize(father.tgt, 'zh')!r}: "
      f"T = {len(father.tgt)} characters + <eos> = {T}")
print("alpha:", alpha_father.shape, "\n", alpha_father)
print("row sums:   ", alpha_father.sum(axis=1))
print("column sums:", alpha_father.sum(axis=0))
assert alpha_father.shape == (T, S) == (9, 7)
assert np.allclose(alpha_father.sum(axis=1), 1.0, atol=1e-5)
assert not np.allclose(alpha_father.sum(axis=0), 1.0)

# %% [markdown]
# ### 7.5 The additive score: two matrices, added inside the tanh
#
# **The document says** (same section): "可以使用默认的 score 函数，即
# `𝐿(·)=\mathbf{v}^\top \tanh([\mathbf{W}\mathbf{h}_i;\mathbf{W}\mathbf{h}_j])`" ("one can use
# the default score function, namely …"): **one** matrix W applied to both vectors, the two results
# **stacked** (;) and then the tanh. In its formula for $a_{ij}$ it also scores the output word
# $y_i$ against $h_j$; but $y_i$ is what step $i$ is about to predict.
#
# **What is right** (`docs/equations.md` §4; Bahdanau et al. 2015, Appendix A.1.2): the query is the
# decoder state $s_{i-1}$, each side has **its own** matrix, and the two projections are
# **added** inside the tanh:
#
# $$e_{ij} = v_a \cdot \tanh(s_{i-1} W_a + h_j U_a).$$
#
# (Row vectors, as in lesson 05 and `docs/equations.md` §4; the paper writes
# $W_a s_{i-1} + U_a h_j$ with column vectors, a form §4 also gives.) Why it matters: with the
# stacked form, $v^\top \tanh([a ; b]) = v_1 \cdot \tanh(a) + v_2 \cdot \tanh(b)$ splits into a
# part that depends only on the query and a part that depends
# only on the source position, $e_{ij} = f(s_{i-1}) + g(h_j)$. The softmax over $j$ ignores any
# term that is the same for every $j$, so the weights become $\text{softmax}_j(g(h_j))$:
# **the same for every output step**. The decoder could never move its attention along the
# sentence. In the added form the tanh mixes query and key, so the weights depend on both.
# **Shown**, on tiny arrays (Hq = Hk = 4, since one shared W needs equal sizes; A = 3, S = 5,
# T = 3 queries): the document's score gives three identical rows; the library's
# `BahdanauAttention` gives three different ones, and a by-hand computation matches it.

# %%
Hq = Hk = 4
A, S, T = 3, 5, 3
rng = np.random.default_rng(0)
queries = rng.standard_normal((1, T, Hq))  # s_0, s_1, s_2
enc_hs = rng.standard_normal((1, S, Hk))  # h_1 .. h_5
src_mask = np.ones((1, S), dtype=bool)

# the document's score: one W for both, [W h_i ; W h_j] stacked, v of size 2A
W, v = rng.standard_normal((Hq, A)), rng.standard_normal(2 * A)
q_part = np.tanh(queries[0] @ W)  # (T, A)
k_part = np.tanh(enc_hs[0] @ W)  # (S, A)
stacked = np.concatenate([np.broadcast_to(q_part[:, None], (T, S, A)),
                          np.broadcast_to(k_part[None], (T, S, A))], axis=2)  # (T, S, 2A)
e_doc = stacked @ v  # (T, S)
assert np.allclose(e_doc, (q_part @ v[:A])[:, None] + (k_part @ v[A:])[None, :])  # f(s_i) + g(h_j)
alpha_doc = softmax(e_doc, axis=1)
print("document's score, weights (rows: output steps i):\n", alpha_doc)
assert np.allclose(alpha_doc, alpha_doc[0])  # every row the same

# the real one, from the library, and by hand
attn = ta.BahdanauAttention(Hq, Hk, A, rng=np.random.default_rng(1))
context, alpha = attn(queries, enc_hs, src_mask)  # (1, T, Hk), (1, T, S)
W_a, U_a, v_a = attn.params["W_a"], attn.params["U_a"], attn.params["v_a"]
# (T, 1, A) + (1, S, A) -> (T, S, A): every query against every key
feats = np.tanh((queries[0] @ W_a)[:, None, :] + (enc_hs[0] @ U_a)[None, :, :])
alpha_hand = softmax(feats @ v_a, axis=1)  # (T, S)
assert alpha.shape == (1, T, S) and np.allclose(alpha[0], alpha_hand)
print("Bahdanau's score, weights:\n", alpha[0])
assert not np.allclose(alpha[0], alpha[0, 0])  # the rows differ

# %% [markdown]
# With random parameters the library's rows differ only a little; in the trained model they
# differ a lot (in section 6.3 the rows of 他十歲十歲。 move along "ten", "years" and
# "old"). With the document's score, no training could make them differ.
#
# The form the document may have had in mind is Luong's "concat" score (`docs/equations.md` §5),
# $v_a \cdot \tanh([h_t ; \bar h_s] W_a)$ (row vectors, as in lesson 06): there the matrix
# multiplies the *stacked vector*, and since
# $[h_t ; \bar h_s] W_a = h_t W_a^{(top)} + \bar h_s W_a^{(bottom)}$, it is the same
# additive form again: two matrices (the two halves of $W_a$), added inside the tanh. The
# library's `LuongAttention(score="concat")` computes it that way; by hand, stacking first:

# %%
concat = ta.LuongAttention(Hq, Hk, score="concat", attn_size=A, rng=np.random.default_rng(2))
_, alpha_concat = concat(queries, enc_hs, src_mask)
W_cat, v_cat = concat.params["W_a"], concat.params["v_a"]
assert W_cat.shape == (Hq + Hk, A)  # one matrix over the stacked vector
both = np.concatenate([np.broadcast_to(queries[0][:, None], (T, S, Hq)),
                       np.broadcast_to(enc_hs[0][None], (T, S, Hk))], axis=2)  # (T, S, Hq + Hk)
alpha_cat_hand = softmax(np.tanh(both @ W_cat) @ v_cat, axis=1)  # stack, multiply, tanh
assert np.allclose(alpha_concat[0], alpha_cat_hand)
split = (queries[0] @ W_cat[:Hq])[:, None] + (enc_hs[0] @ W_cat[Hq:])[None]  # top + bottom half
assert np.allclose(both @ W_cat, split)
print("concat = additive: tanh([h_t ; h_s] W_a) == tanh(h_t W_top + h_s W_bottom)")

# %% [markdown]
# ### 7.6 No `alpha` hyper-parameter: the context is the weighted sum
#
# **The document says** (section "利用注意力矩阵加权输入序列"): "`W*h_i + b_i = e_i`",
# "e_i 的维度和 h_i 相同" ("e_i has the same dimension as h_i"), then
# "`Y_w = softmax([score(\mathbf{y}_i,\mathbf{W}[C;h_i])+b]+alpha*e_i]`" and
# "alpha 是超参数，用来控制注意力权重的影响" ("alpha is a hyper-parameter that controls the
# influence of the attention weights").
#
# **What is right** (`docs/equations.md` §4; Bahdanau et al. 2015, §3.1; Luong et al. 2015, §3): no
# such term and no such hyper-parameter. The weights are the softmax of the scores, and the
# context is their weighted sum of the encoder states:
#
# $$\alpha_{ij} = \text{softmax}_j(e_{ij}), \qquad c_i = \sum_j \alpha_{ij} h_j .$$
#
# (Do not confuse the document's `alpha`, a scalar knob, with the attention weights
# $\alpha_{ij}$.) The document's formula does not even fit together: the scores of step $i$
# are a vector over the S source positions, while $e_i$ has the size of a hidden state; and
# were the sizes equal, softmax(…) + alpha·e_i would no longer be a set of weights (rows would
# not sum to 1, entries could be negative). **Shown:** the shapes do not add; the sum is not a
# distribution; the library's attention has exactly the parameters $W_a, U_a, v_a$ and no
# `alpha` option, and its context is exactly $\alpha$ times the encoder states.

# %%
scores_i = (feats @ v_a)[0]  # the scores of output step 1 over the S = 5 source positions
W_e, b_e = rng.standard_normal((Hq, Hq)), rng.standard_normal(Hq)
e_i = queries[0, 0] @ W_e + b_e  # the document's "W*h_i + b_i = e_i", the size of h_i: (Hq,)
assert scores_i.shape == (S,) and e_i.shape == (Hq,)
try:
    scores_i + 0.5 * e_i
    raise AssertionError("the shapes should not add")
except ValueError as err:
    print(f"scores {scores_i.shape} + alpha * e_i {e_i.shape}: ValueError: {err}")

same_size = rng.standard_normal(5)  # suppose e_i had S entries after all
y_w = softmax(scores_i) + 0.5 * same_size
print("softmax(scores) + 0.5 * e_i =", y_w, " sum", round(float(y_w.sum()), 3))
assert not np.isclose(y_w.sum(), 1.0)

print("BahdanauAttention parameters:", sorted(attn.params))
print("BahdanauAttention options:   ", list(inspect.signature(ta.BahdanauAttention).parameters))
assert sorted(attn.params) == ["U_a", "W_a", "v_a"]
assert "alpha" not in inspect.signature(ta.BahdanauAttention).parameters
assert "alpha" not in inspect.signature(ta.Seq2Seq).parameters and "alpha" not in model.config
print("context == alpha @ enc_hs:", np.allclose(context, alpha @ enc_hs))
assert np.allclose(context, alpha @ enc_hs)  # c_i = Σ_j α_ij h_j, nothing added

# %% [markdown]
# ## 8. Summary
#
# - **The data path.** `read_pairs` → `DataSpec`/`load_examples` (tokenise: English `"word"`,
#   Chinese `"zh"`, one token per character; keep pairs of at most 8 tokens; split 80/10/10
#   by source sentence with a fixed seed) → `Vocab.build` on the training split → `Run` →
#   `run.build_model`: exactly what `tinyattn train cmn-eng --max-len 8` does. The corpus is
#   fetched, never committed: `tinyattn data fetch cmn-eng`.
# - **A real model in a minute or two.** A Bahdanau model with a bidirectional GRU encoder
#   (E = H = 128, 3,216,786 parameters), six epochs over 8,925 pairs of Tatoeba's
#   English–Chinese corpus. Held-out character BLEU 24.79 against all references, 24.28
#   against one (with its signature; 26.79 and 26.19 with a beam of 5), against 92.42 on as
#   many training sources: it recites much of what it saw. Of its test outputs, 58.2 % of the
#   characters and 13.4 % of the runs of four characters occur in a reference. Its validation
#   loss rose after epoch 3 while its BLEU went on improving.
# - **Heatmaps.** Content words align with the characters that translate them (十 ← ten,
#   歲 ← years, 父 ← father, 欠 ← owe; 80 % of the content characters counted over the test
#   split). Pronouns read a later word instead (他 ← lived; 5 % of them peak on their own
#   word), and the final 。 or ？ mostly the word before it (15 % on their own): a heatmap
#   shows where the decoder reads, which is not always the word it translates.
# - **The bridge, switched off.** The same model with `bridge=False` (the decoder starts from
#   zeros; `tinyattn train --no-bridge`) puts 87 % of the pronouns on their own word instead
#   of 5 %, with the content words and the final punctuation as before: the bridge's first
#   state had carried the first word. "He is ten years old." then aligns 他 ← he, 十 ← ten,
#   歲 ← years (and is still mistranslated, 他十年三十歲。).
#   "Are you very big?" → 你很大嗎？, a good translation with 大 ← big and
#   ？ ← ?. Beam search lists the n-best with their probabilities, and shows a worse
#   translation (你非常胖？) and a repetition (他十歲十歲。) that the model itself prefers.
# - **The phrasebook** stays for what it is good at: showing the tokens, and a whole-model
#   gradient check small enough to nudge every parameter (relative error 8.6e-07).
# - **Document 000, corrected.** (1) The encoder's two directions run independently from their
#   own initial states and are concatenated afterwards. (2) The decoder is unidirectional:
#   output $i$ depends on $y_{<i}$ only. (3) Classification is sequence → label, not seq2seq;
#   LSTM and CNN are building blocks. (4) The attention matrix is T × S, rows sum to 1.
#   (5) $e_{ij} = v_a \cdot \tanh(s_{i-1} W_a + h_j U_a)$: two matrices, added inside the tanh;
#   the document's stacked form makes every output step attend the same way. (6) No `alpha`
#   hyper-parameter: $c_i = \sum_j \alpha_{ij} h_j$.
#
# **Try it yourself.** Translate a sentence of your own with `decode(model, run,
# [tokenize("...", "word", lowercase=True)])` (a word outside the training vocabulary becomes
# `<unk>`) and draw it with `greedy_heatmap`. Train three more epochs (`trainer.fit(...,
# epochs=9)` continues) and watch the validation loss and BLEU. Swap the direction
# (`DataSpec("cmn-eng", max_len=8, swap=True)`: Chinese → English) and look at the heatmaps
# again. And train the command line's default sizes (`emb_size` 32, `hidden_size` 64), or
# Luong's general score (`attention="general"`, lesson 06), and compute the table of section 6.1
# again: where do the pronouns and the final 。 read now, and what happens to BLEU?
#
# **Next.** Lesson 12: why the library's loops look the way they do, measured step by step.
