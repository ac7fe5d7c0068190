# Lesson 08 source, in the percent format of lessons/build.py (no solution blocks).
# Built and executed by lessons/build.py into lessons/08_translation.ipynb.

# %% [markdown]
# # Lesson 08 — Translation: English → Chinese, and where the first document goes wrong
#
# **Goal.** Put the whole model to work on real sentences, English → Chinese, and then go
# through the first source document's mistakes one by one. In this lesson you will
#
# 1. read the project's phrasebook (`data/phrasebook_en_zh.tsv`) with the same code path the
#    command line uses, and see how English words and Chinese characters become tokens;
# 2. see how to plug in your own Tatoeba file instead;
# 3. gradient-check the exact model configuration, then train a small Bahdanau model
#    (bidirectional GRU encoder) on 227 sentence pairs, and measure honestly what it learned:
#    on the training sentences it is perfect because it **memorises** them; on held-out
#    sentences it is much weaker;
# 4. translate document 003's example "Are you very big?" → 你很大？ and read the Chinese
#    alignment heatmaps;
# 5. correct the six errata of document 000 (`docs/sources.md`), each with the
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
# Manning 2015, arXiv:1508.04025). BLEU: Papineni et al. 2002.
#
# The whole notebook runs in well under a minute on two CPU cores.

# %%
import inspect
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
from IPython.display import Markdown, display

import tinyattn as ta
from tinyattn.training.batching import pad_batch
from tinyattn.cli.commands import MODEL_DEFAULTS, TRAIN_DEFAULTS
from tinyattn.data import Vocab, detokenize, locate, read_pairs, tokenize
from tinyattn.cli.evaluation import decode, evaluate_examples, format_metrics, teacher_forced
from tinyattn.functional import softmax
from tinyattn.gradcheck import TOL_MODEL, check_gradients
from tinyattn.metrics import alignment_accuracy, corpus_bleu, exact_match
from tinyattn.cli.run import DataSpec, Run, encode_pairs, load_examples
from tinyattn.plot import plot_alignment, plot_history

np.set_printoptions(precision=3, suppress=True)
DATA = Path("..") / "data" / "phrasebook_en_zh.tsv"  # the notebook runs in lessons/

# %% [markdown]
# ## 1. The phrasebook and its tokens
#
# `data/phrasebook_en_zh.tsv` holds 283 short English → Simplified Chinese pairs written for
# this project (`data/README.md`): three tab-separated columns, English, Chinese and an
# attribution, the layout of the Tatoeba files that manythings.org/anki distributes. The
# sentences recombine a small vocabulary in regular patterns (pronoun + 很 + adjective,
# 我喜欢…, …吗？), so a tiny model can learn them. `read_pairs` reads the file and checks every
# line.

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
# ## 2. The command line's path, step by step
#
# `tinyattn train data/phrasebook_en_zh.tsv --out runs/zh` does the following
# (`tinyattn/cli/commands.py`, `_new_run`); we run the same calls here, in memory, without writing a
# run directory:
#
# 1. `DataSpec(path)` describes the data; `load_examples` reads the pairs, picks the tokeniser of
#    each side (`"zh"` when over a third of the sentences contain a CJK character, else
#    `"word"`), tokenises, and splits the pairs **deterministically** (seed 0) into 80 % train,
#    10 % valid, 10 % test, **by source sentence**: all translations of one English sentence go
#    to the same split, so no held-out sentence is seen in training (the phrasebook has one
#    translation per sentence, so here that is the same as splitting the pairs);
# 2. `Vocab.build` makes each side's vocabulary from the **training** split only: ids 0–3 are
#    `<pad> <sos> <eos> <unk>`, and a word never seen in training becomes `<unk>`;
# 3. a `Run` holds the data description, the vocabularies and the model and training options,
#    and `run.build_model(seed)` builds the `Seq2Seq`.

# %%
spec = DataSpec(str(DATA))
splits, info = load_examples(spec)
print(info, f"| tokenisers: source {spec.src_kind!r}, target {spec.tgt_kind!r}")
assert (spec.src_kind, spec.tgt_kind) == ("word", "zh")

src_vocab = Vocab.build([ex.src for ex in splits["train"]])
tgt_vocab = Vocab.build([ex.tgt for ex in splits["train"]])
print(f"vocabularies (train split): {len(src_vocab)} English tokens, "
      f"{len(tgt_vocab)} Chinese tokens (4 specials included)")

where = {name: [" ".join(ex.src) for ex in exs] for name, exs in splits.items()}
print("'are you very big ?' is in the", [n for n, s in where.items() if "are you very big ?" in s],
      "split")
for name in ("valid", "test"):
    unseen = sum(any(t not in src_vocab for t in ex.src) for ex in splits[name])
    print(f"{name}: {unseen} of {len(splits[name])} sources contain a word never seen in training")

# %% [markdown]
# Document 003's sentence landed in the **training** split. Keep that in mind: when the model
# translates it correctly below, it is reciting a sentence it was trained on.
#
# ## 3. The real Tatoeba corpus
#
# The project ships no Tatoeba data, but fetches it: `tinyattn data fetch cmn-eng` downloads
# 28,447 English–Chinese sentence pairs from tatoeba.org (CC BY 2.0 FR; each line keeps its
# attribution column) from a pinned copy, checks its sha256 and keeps it in `~/.cache/tinyattn`
# (or `$TINYATTN_DATA`); offline, `--from PATH` registers a copy you brought (data/README.md).
# Its lines have the phrasebook's three columns, and the corpus name works wherever a file
# does. From a shell:
#
# ```sh
# tinyattn data fetch cmn-eng
# tinyattn train cmn-eng --max-len 10 --min-freq 2 --out runs/cmn   # word -> zh picked automatically
# tinyattn translate runs/cmn "Are you very big?" --plot runs/cmn/plots
# ```
#
# and in Python the cell below does the reading, filtering and splitting. It never downloads:
# it runs when the corpus is already fetched (`locate` only looks). Expect tens of thousands of
# pairs: train for longer than this lesson does, with `min_freq=2` in `Vocab.build` to keep the
# vocabulary small.

# %%
if locate("cmn-eng") is not None:
    my_spec = DataSpec("cmn-eng", max_len=10)  # drop pairs longer than 10 tokens on a side
    my_splits, my_info = load_examples(my_spec)
    print(my_info, my_spec.src_kind, "->", my_spec.tgt_kind)
    print(my_splits["train"][0].src, "->", my_splits["train"][0].tgt)
else:
    print("cmn-eng is not fetched: skipped (this lesson uses the phrasebook)")

# %% [markdown]
# ## 4. The model: check its gradient, then train it
#
# The model is the command line's default (`tinyattn.cli.commands.MODEL_DEFAULTS`): embeddings of size
# E = 32, a **bidirectional GRU encoder** with H = 64 per direction (annotations
# $h_j = [\overrightarrow{h}_j ; \overleftarrow{h}_j]$ of size 2H = 128), a GRU decoder with
# **Bahdanau attention** (`docs/equations.md` §4), float32:
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
# **Gradient check first.** Before trusting training, check the gradient of this exact
# configuration (Bahdanau, bidirectional GRU) on two phrasebook pairs, in float64 with tiny
# sizes (E = 3, H = 2, A = 4) and vocabularies built from those two pairs, so that every
# parameter entry can be nudged; the pairs have different lengths, so padding is exercised too.
# The loss is the mean cross-entropy over the real target tokens (`docs/equations.md` §6).
# **What to expect:** for a whole model, relative errors around $10^{-7}$ (larger than a single
# step's $10^{-10}$: the loss runs through dozens of chained steps and is one scalar, so
# round-off in the centered differences is larger), still far below the tolerance for a whole
# model, $10^{-5}$ (`TOL_MODEL`); a bug would show errors near $10^{-1}$–$1$.

# %%
two = [ex for ex in splits["train"]
       if " ".join(ex.src) in ("she has a black cat .", "are you very big ?")]
v_src, v_tgt = Vocab.build([ex.src for ex in two]), Vocab.build([ex.tgt for ex in two])
tiny = ta.Seq2Seq(len(v_src), len(v_tgt), emb_size=3, hidden_size=2, attn_size=4,
                  attention="bahdanau", pad_id=Vocab.pad_id, rng=np.random.default_rng(1))
b2 = pad_batch(encode_pairs(two, v_src, v_tgt), pad_id=Vocab.pad_id, sos_id=Vocab.sos_id,
               eos_id=Vocab.eos_id)
print("pairs:", [" ".join(ex.src) + " -> " + "".join(ex.tgt) for ex in two])
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
# **Training.** Now the real size, built from the command line's defaults through `Run`, as
# `tinyattn train` builds it, and the command line's training defaults (Adam with learning
# rate 0.004, gradient norm clipped at 5, seed 0) except two: 227 pairs are few, so batches of
# 32 instead of 64 and 40 epochs instead of 2. After each epoch we decode the training and
# validation sentences and measure their exact match (greedy decoding, `docs/equations.md` §10.1).

# %%
train_opts = {**TRAIN_DEFAULTS, "epochs": 40, "batch_size": 32,
              "max_decode_len": 2 * max(len(ex.tgt) for ex in splits["train"]) + 5}
run = Run(directory=None, data=spec, model_options=dict(MODEL_DEFAULTS),
          train_options=train_opts, src_vocab=src_vocab, tgt_vocab=tgt_vocab)
model = run.build_model(seed=train_opts["seed"])
print(run.model_options)
print(f"{model.num_parameters():,} parameters; encoder {type(model.encoder).__name__}"
      f"({type(model.encoder.fwd).__name__}, {type(model.encoder.bwd).__name__}), decoder cell "
      f"{type(model.decoder.cell).__name__}, attention {type(model.decoder.attn).__name__}")

trainer = ta.Trainer(model, ta.Adam(model.named_parameters(), lr=train_opts["lr"]),
                     pad_id=Vocab.pad_id, sos_id=Vocab.sos_id, eos_id=Vocab.eos_id,
                     batch_size=train_opts["batch_size"], clip=train_opts["clip"],
                     rng=np.random.default_rng(train_opts["seed"]), show_progress=False)
data = {name: encode_pairs(exs, src_vocab, tgt_vocab) for name, exs in splits.items()}
sources = {name: [list(ex.src) for ex in exs] for name, exs in splits.items()}
refs = {name: [list(ex.tgt) for ex in exs] for name, exs in splits.items()}


def greedy(name):
    return [words for ((words, _),) in decode(model, run, sources[name])]


curve = []  # one dict per epoch: the trainer's record plus exact matches


def after_epoch(record):
    row = asdict(record)
    for name in ("train", "valid"):
        row[f"{name}_exact_match"] = exact_match(greedy(name), refs[name])
    curve.append(row)
    if record.epoch % 5 == 0:
        print(f"epoch {record.epoch:2}: train loss {record.train_loss:.3f}, valid loss "
              f"{record.valid_loss:.3f}, exact match train {row['train_exact_match']:.0%}, "
              f"valid {row['valid_exact_match']:.0%}")


start = time.perf_counter()
trainer.fit(data["train"], data["valid"], epochs=train_opts["epochs"], on_epoch=after_epoch)
print(f"training (and the per-epoch decoding) took {time.perf_counter() - start:.1f} s")

# %%
best = min(curve, key=lambda r: r["valid_loss"])
print(f"lowest validation loss {best['valid_loss']:.3f} at epoch {best['epoch']}; "
      f"at epoch {curve[-1]['epoch']}: {curve[-1]['valid_loss']:.3f}")
fig = plot_history(curve, batch_losses=trainer.batch_losses,
                   title="training on the phrasebook (227 pairs): memorisation")
ax_acc = fig.axes[1]  # readable legend names, placed where the curves are not
ax_acc.legend(ax_acc.get_lines(), ["train exact match", "valid exact match"], loc="center right")

# %% [markdown]
# This is what memorisation looks like. The training loss (left, log scale) falls by almost three
# orders of magnitude and the training exact match (right) reaches 100 % by epoch 20. The
# validation loss is lowest at epoch 10 and then slowly *rises* (2.559 → 2.933 in the run
# stored here): the model grows ever more confident, and on held-out sentences it gets wrong,
# confident mistakes cost more and more. The validation exact match levels off at 18 % (5 of 28
# sentences). With 227 pairs there is not much to generalise from; early stopping
# (`Trainer.fit(..., patience=…)`) would keep the model of the lowest validation loss, but at
# epoch 10 even the training sentences are not all learned yet (68 % exact match).
#
# ## 5. Training sentences vs held-out sentences
#
# `evaluate_examples` (the command line's `tinyattn evaluate`) decodes greedily and reports
# exact match (the whole sentence right), token accuracy (position by position) and corpus
# BLEU (Papineni et al. 2002, as sacrebleu computes it). The Chinese side is tokenised into
# characters, so this is **character-level BLEU**: it gives credit for every right character
# and character n-gram and is not comparable with the word-level BLEU of published systems.

# %%
scores = {name: evaluate_examples(model, run, splits[name]) for name in splits}
for name in splits:
    print(format_metrics(scores[name], f"{name} ({len(splits[name])} pairs)"))
assert scores["train"]["exact_match"] == 1.0  # memorised

held_out = splits["valid"] + splits["test"]
outs = {name: greedy(name) for name in splits}
hyp_held, ref_held = outs["valid"] + outs["test"], refs["valid"] + refs["test"]
seen = [all(t in src_vocab for t in ex.src) for ex in held_out]
print(f"\nheld out (valid + test, {len(held_out)} pairs): exact match "
      f"{exact_match(hyp_held, ref_held):.1%}, {corpus_bleu(hyp_held, ref_held)}")
for label, keep in (("every word seen in training", True), ("with an unseen word", False)):
    h = [x for x, s in zip(hyp_held, seen) if s == keep]
    r = [x for x, s in zip(ref_held, seen) if s == keep]
    print(f"  {label:28}: {len(h):2} pairs, exact match {exact_match(h, r):.1%}")

# %% [markdown]
# On the 227 training pairs the model is perfect. On the 56 held-out pairs (valid and test
# together) it gets one sentence in four exactly right (25.0 % in the run stored here; the two
# splits give 17.9 % and 32.1 %, a difference of four sentences that says more about 28-sentence
# splits than about the model). The character BLEU of 38.5 is higher than the exact match
# suggests, because held-out outputs often get a pattern's frame (我喜欢…, …很…。) and some
# characters right. A source word the training split never contained is read as `<unk>`, and
# none of the 15 held-out sentences with such a word comes out right; of the other 41, about a
# third do.
#
# **A few translations.** The first ten pairs of the test split (in split order, not chosen),
# after document 003's sentence from the training split:

# %%
def row(ex, words, split):
    ok = "✓" if words == list(ex.tgt) else "✗"
    unk = " (`<unk>`: " + ", ".join(t for t in ex.src if t not in src_vocab) + ")" \
        if not all(t in src_vocab for t in ex.src) else ""
    return (f"| {split} | {detokenize(ex.src, 'word')}{unk} | {detokenize(ex.tgt, 'zh')} | "
            f"{detokenize(words, 'zh')} | {ok} |")


k_big = where["train"].index("are you very big ?")
lines = ["| split | English | reference | model (greedy) | |", "|---|---|---|---|---|",
         row(splits["train"][k_big], outs["train"][k_big], "train")]
lines += [row(ex, words, "test") for ex, words in zip(splits["test"][:10], outs["test"][:10])]
display(Markdown("\n".join(lines)))
assert outs["train"][k_big] == ["你", "很", "大", "？"]

# %% [markdown]
# How do the wrong ones go wrong? One check: is a wrong output simply the Chinese of some
# *training* sentence, recalled whole?

# %%
train_zh = {detokenize(ex.tgt, "zh"): detokenize(ex.src, "word") for ex in splits["train"]}
wrong_held = [(ex, h) for ex, h in zip(held_out, hyp_held) if h != list(ex.tgt)]
recalled = [(ex, h) for ex, h in wrong_held if detokenize(h, "zh") in train_zh]
print(f"{len(wrong_held)} wrong held-out outputs; {len(recalled)} of them are, character for "
      "character, the Chinese of a training sentence:")
for ex, h in recalled:
    print(f"  {detokenize(ex.src, 'word')!r:30} -> {detokenize(h, 'zh')}  (training: "
          f"{train_zh[detokenize(h, 'zh')]!r})")

# %% [markdown]
# In the run stored here, 14 of the 42 wrong held-out outputs are exactly the Chinese of a
# training sentence: "i like noodles." comes out as 我喜欢猫。 ("i like cats."), "i am sorry."
# as 我二十岁。 ("i am twenty years old."). The model has learned which *pattern* a sentence
# belongs to ("i like X" → 我喜欢X, "i have a X" → 我有一X) and, when it does not know the
# rest, fills it with a training sentence it does know. That is memorisation seen from the
# outside.
#
# ## 6. "Are you very big?" → 你很大？ and the alignment heatmaps
#
# One heatmap per sentence: rows are the Chinese characters the model produced (the last row
# predicts `<eos>`), columns the English tokens, colour the weight $\alpha_{ij}$ (each row sums
# to 1). For document 003's sentence we outline, in red, the English word each character
# translates (our own annotation, not part of the data: 你 ← you, 很 ← very, 大 ← big,
# ？ ← ?; `<eos>` has none).

# %%
def heatmap(ex, title, gold=None):
    ((words, hyp),) = decode(model, run, [list(ex.src)])[0]  # greedy; hyp.attention (T, S)
    labels = words + (["<eos>"] if hyp.tokens[-1] == Vocab.eos_id else [])
    assert hyp.attention.shape == (len(labels), len(ex.src))
    assert np.allclose(hyp.attention.sum(axis=1), 1.0, atol=1e-5)
    verdict = "✓" if words == list(ex.tgt) else f"✗ (reference {detokenize(ex.tgt, 'zh')})"
    title = f'{title}: "{detokenize(ex.src, "word")}" → {detokenize(words, "zh")} {verdict}'
    return plot_alignment(hyp.attention, ex.src, labels, gold=gold, title=title,
                          gold_label="hand alignment"), hyp


big_ex = splits["train"][k_big]
fig, big_hyp = heatmap(big_ex, "train", gold=[(1, 2), (2, 3), (3, 4), (4, 5), None])
print("rows (你, 很, 大, ？, <eos>) x columns (are, you, very, big, ?):\n", big_hyp.attention)

# %% [markdown]
# Three of the four characters peak on the word they translate: 很 on "very", 大 on "big",
# ？ on "?"; `<eos>` looks at "?", the end of the sentence. 你 is the exception: its weight is
# split between "very" and "big", with almost none on "you". Nothing in the loss asks for a
# word-by-word alignment, and the annotations of "very" and "big" come from a bidirectional
# encoder: their forward halves have already read "you", so the decoder can find the pronoun
# there. "are" gets almost no weight from any row: Chinese uses no verb "to be" before an
# adjective (你很大, literally "you very big"). And remember that this sentence is in the
# training set: the heatmap shows where a model that memorised it reads. (Here T = S = 5 by
# coincidence, four characters plus `<eos>` against five English tokens; in general the matrix
# is T × S, see 7.4.)
#
# **Does the attention find the translated word?** The phrasebook has no gold alignments, so
# we annotated six sentences by hand: for each Chinese character, the English word it
# translates (a two-character word such as 咖啡 points both characters at "coffee"; 的 after
# 我 at "my"). With the reference fed in (`teacher_forced`), the **alignment accuracy** is the
# share of characters whose attention peak lies on their annotated word.

# %%
hand = {  # English tokens -> for each Chinese character, the index of the English word
    "are you very big ?": [1, 2, 3, 4],  # 你 很 大 ？
    "my dog is very big .": [0, 0, 1, 3, 4, 5],  # 我 的 狗 很 大 。
    "we are very hungry .": [0, 0, 2, 3, 4],  # 我 们 很 饿 。
    "she is very busy .": [0, 2, 3, 4],  # 她 很 忙 。
    "i like coffee .": [0, 1, 1, 2, 2, 3],  # 我 喜 欢 咖 啡 。
    "i don't like coffee .": [0, 1, 2, 2, 3, 3, 4],  # 我 不 喜 欢 咖 啡 。
}
by_text = {" ".join(ex.src): (name, ex) for name, exs in splits.items() for ex in exs}
hand_src = [list(by_text[k][1].src) for k in hand]
hand_tgt = [list(by_text[k][1].tgt) for k in hand]
assert all(len(t) == len(g) for t, g in zip(hand_tgt, hand.values()))
hand_alphas, _ = teacher_forced(model, run, hand_src, hand_tgt)  # (T + 1, S) each
hand_gold = [[(j, j + 1) for j in g] + [None] for g in hand.values()]  # <eos>: no gold
for (text, g), a, tgt in zip(hand.items(), hand_alphas, hand_tgt):
    peaks = a[:len(g)].argmax(axis=1)
    marks = " ".join(f"{c}→{text.split()[p]}{'' if p == j else '✗'}"
                     for c, p, j in zip(tgt, peaks, g))
    print(f"{by_text[text][0]:5} {text!r:24} {marks}")
hand_acc = alignment_accuracy(hand_alphas, hand_gold)
print(f"alignment accuracy on the {sum(map(len, hand.values()))} annotated characters: "
      f"{hand_acc:.1%}")

# %% [markdown]
# In the run stored here 27 of the 32 annotated characters (84.4 %) peak on their word, and
# the misses have a pattern: three of the five are a sentence's first character (你, 我), which
# peaks on a later word whose annotation already carries the subject, as in the heatmap above.
# The two held-out sentences ("i like coffee .", "i don't like coffee .") get 10 of their 13
# characters right: where 喜欢 and 咖啡 come from is something the model learned, not just
# recited. Train again with another seed (`run.build_model(seed=1)`) and the peaks move: with
# 227 pairs, nothing forces one particular alignment.
#
# Now two **held-out** sentences: the first of the test split that the model translates
# correctly with at least five characters, and the first it gets wrong.

# %%
right = next(k for k, ex in enumerate(splits["test"]) if outs["test"][k] == list(ex.tgt)
             and len(ex.tgt) >= 5)
fig, _ = heatmap(splits["test"][right], "held out")

# %%
wrong = next(k for k, ex in enumerate(splits["test"]) if outs["test"][k] != list(ex.tgt))
fig, wrong_hyp = heatmap(splits["test"][wrong], "held out")
print("rows: output characters, columns:", list(splits["test"][wrong].src), "\n",
      wrong_hyp.attention)

# %% [markdown]
# In the correct held-out sentence, both characters of 妈妈 look at "mother" (one English word,
# two characters) and 。 at "."; the first three characters (我爱我) spread their weight over
# "love", "my" and "mother", less cleanly than the training sentences above. The wrong one is
# instructive: for every output character the weight sits almost entirely on "old" (the
# printed matrix). The model does not read "he", "ten" or "years" at all; it emits a frame it
# knows (他…。) and a guess. A heatmap shows where the decoder reads, not whether the
# translation is right, but attention that collapses onto one token for the whole sentence is
# a warning sign.
#
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
sentences = [big_ex, splits["train"][0], splits["train"][1]]  # three training sentences
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
# (`evaluation.teacher_forced`), a sentence of S = 6 English tokens and T = 7 rows (six
# characters and `<eos>`) gives a 7 × 6 matrix.

# %%
dog = next(ex for ex in splits["train"] if detokenize(ex.src, "word") == "my dog is very big.")
(alpha_dog,), _ = teacher_forced(model, run, [list(dog.src)], [list(dog.tgt)])
S, T = len(dog.src), len(dog.tgt) + 1
print(f"{detokenize(dog.src, 'word')!r}: S = {S} tokens; {detokenize(dog.tgt, 'zh')!r}: "
      f"T = {len(dog.tgt)} characters + <eos> = {T}")
print("alpha:", alpha_dog.shape, "\n", alpha_dog)
print("row sums:   ", alpha_dog.sum(axis=1))
print("column sums:", alpha_dog.sum(axis=0))
assert alpha_dog.shape == (T, S) == (7, 6)
assert np.allclose(alpha_dog.sum(axis=1), 1.0, atol=1e-5)
assert not np.allclose(alpha_dog.sum(axis=0), 1.0)

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
# differ a lot (in the heatmaps of section 6, 你很大？'s rows peak on "big", "very", "big" and
# "?"). With the document's score, no training could make them differ.
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
#   Chinese `"zh"`, one token per character; split 80/10/10 with a fixed seed) → `Vocab.build`
#   on the training split → `Run` → `run.build_model`: exactly what `tinyattn train` does, and
#   the same code reads a Tatoeba file you download yourself.
# - **Memorisation, measured.** The model reproduces every training sentence (document 003's
#   "Are you very big?" → 你很大？ among them), while about one held-out sentence in four
#   comes out exactly right, and a wrong output is often a training sentence recalled whole.
#   283 pairs teach patterns, not a language; character BLEU gives partial outputs credit.
# - **Chinese heatmaps.** Most characters peak on the English word they translate (our six
#   hand-aligned sentences: the printed accuracy); the first character often looks further
#   along, since bidirectional annotations carry context; "are", which Chinese does not
#   express, gets almost no weight; in the wrong held-out example the attention collapsed onto
#   one token. A heatmap shows where the decoder reads, not whether it is right.
# - **Document 000, corrected.** (1) The encoder's two directions run independently from their
#   own initial states and are concatenated afterwards. (2) The decoder is unidirectional:
#   output $i$ depends on $y_{<i}$ only. (3) Classification is sequence → label, not seq2seq;
#   LSTM and CNN are building blocks. (4) The attention matrix is T × S, rows sum to 1.
#   (5) $e_{ij} = v_a \cdot \tanh(s_{i-1} W_a + h_j U_a)$: two matrices, added inside the tanh;
#   the document's stacked form makes every output step attend the same way. (6) No `alpha`
#   hyper-parameter: $c_i = \sum_j \alpha_{ij} h_j$.
#
# **Try it yourself.** Train with `patience=3` and compare the held-out numbers with the ones
# above; translate a sentence of your own with `decode(model, run, [tokenize("...", "word",
# lowercase=True)])` (a word outside the training vocabulary becomes `<unk>`); swap the direction
# (`DataSpec(..., swap=True)`: Chinese → English) and look at the heatmaps again; with a
# Tatoeba file, train the same model for longer and see how the held-out BLEU moves.
