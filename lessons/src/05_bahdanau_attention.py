# Lesson 05 source, in the percent format of lessons/build.py (no solution blocks).
# Built and executed by lessons/build.py into lessons/05_bahdanau_attention.ipynb.

# %% [markdown]
# # Lesson 05 — Bahdanau attention
#
# **Goal.** A plain encoder–decoder squeezes the whole source sentence through one fixed-size
# vector $c$. Bahdanau attention gives the decoder a *new* context vector $c_i$ (上下文向量) at
# every output step $i$: a weighted average of all the encoder's states, whose weights
# (注意力权重) the decoder computes from what it has produced so far. In this lesson you will
#
# 1. write out the three equations (scores $e_{ij}$, weights $\alpha_{ij}$, context $c_i$);
# 2. compute them by hand in NumPy on tiny arrays and check every number against
#    `tinyattn.BahdanauAttention`;
# 3. see why padded source positions get a weight of exactly 0;
# 4. gradient-check the attention module;
# 5. train a small attention model that rewrites dates ("the 6th of december 1960" →
#    "1960-12-06") and look at its alignment (对齐) heatmaps.
#
# **Sources.** `docs/equations.md` §4. Document 003 (`docs/sources.md`, "从 Seq2seq 到 Attention
# 模型到 Self Attention（一）"), its "Attention model" section, gives the equations for $c_i$,
# $\alpha_{ij}$ and $e_{ij}$ (its formula images are missing, so we write them out here). The
# paper it cites: D. Bahdanau, K. Cho, Y. Bengio, *Neural Machine Translation by Jointly Learning
# to Align and Translate*, ICLR 2015 (arXiv:1409.0473), §3.1 and Appendix A.
#
# The whole notebook runs in about a minute on two CPU cores.

# %%
import re
import time
from collections import Counter

import numpy as np

import tinyattn as ta
from tinyattn.attention import BahdanauAttention, additive_score_forward
from tinyattn.data import Vocab
from tinyattn.cli.evaluation import decode, evaluate_examples, format_metrics, teacher_forced
from tinyattn.gradcheck import TOL_LAYER, check_module
from tinyattn.metrics import alignment_accuracy, attention_entropy
from tinyattn.cli.run import DataSpec, Run, encode_pairs, load_examples
from tinyattn.plot import plot_alignment

np.set_printoptions(precision=3, suppress=True)

# %% [markdown]
# ## 1. The equations
#
# Source positions are $j = 1..S$, target (output) steps $i = 1..T$. The encoder is
# bidirectional, so each source position has an **annotation**
# $h_j = [\overrightarrow{h}_j ; \overleftarrow{h}_j]$ of size $H_k = 2H$ that describes the
# token *and* its surroundings. The decoder's state before step $i$ is $s_{i-1}$, of size $H_q$. For every step $i$:
#
# $$e_{ij} = v_a \cdot \tanh\left(s_{i-1} W_a + h_j U_a\right)$$
#
# $$\alpha_{ij} = \frac{\exp(e_{ij})}{\sum_{k=1}^{S} \exp(e_{ik})}$$
#
# $$c_i = \sum_{j=1}^{S} \alpha_{ij}\, h_j$$
#
# $e_{ij}$ is the **score** of source position $j$ for step $i$ (any real number); $\alpha_{ij}$
# is the **attention weight**, a softmax over $j$ (each row sums to 1, padded positions get 0);
# $c_i$ is the **context vector**, the weighted average of the annotations.
#
# Then the decoder takes its step and predicts (`docs/equations.md` §4):
# $s_i = f(s_{i-1}, [E y_{i-1} ; c_i])$ and
# $p(y_i \mid y_{<i}, x) = \text{softmax}([s_i ; c_i ; E y_{i-1}] W_o + b_o)$.
#
# | maths | meaning | in the code | shape |
# |---|---|---|---|
# | $s_{i-1}$ | decoder state before step $i$ (the *query*) | `query` | (B, Hq) |
# | $h_j$ | encoder annotation of position $j$ | `enc_hs[:, j]` | (B, S, Hk) for all $j$ |
# | $W_a$, $U_a$, $v_a$ | the parameters | `attn.params["W_a"]`, `"U_a"`, `"v_a"` | (Hq, A), (Hk, A), (A,) |
# | $e_{ij}$ | scores | `scores` | (B, S) per step |
# | $\alpha_{ij}$ | weights | `alpha` | (B, S) per step, (B, T, S) for all steps |
# | $c_i$ | context | `context` | (B, Hk) per step |
#
# **Row vectors.** The paper writes $W_a s_{i-1} + U_a h_j$ with column vectors; tinyattn keeps
# one example per row and writes `s_prev @ W_a + h_j @ U_a`, with `W_a` of shape (Hq, A). It is
# the same maths transposed.
#
# **What the documents say.** Document 003 describes $c_i$ as the input sequence "weighted and
# summed" with α ("加权求和"), and $e_{ij}$ as measuring the relation between the decoder's hidden
# state $s_{i-1}$ and the hidden state $h_j$ of the $j$-th input word; the function that computes
# it is the paper's *alignment model* $a(s_{i-1}, h_j)$, and the matrix of all α is the
# alignment ("align") between input and output words. Two words to keep apart: document 003
# calls α the "attention score"; this lesson says **score** only for $e_{ij}$ (any real number)
# and **weight** (注意力权重, document 000's term) for $\alpha_{ij}$ (between 0 and 1, each row
# sums to 1).
#
# **Corrections to document 000** (`docs/sources.md`). Its score
# "$v^\top \tanh([W h_i ; W h_j])$" garbles the formula above: the decoder state and the encoder
# state each get *their own* matrix, and the two projections are **added** inside the tanh
# (hence the name *additive attention*). There is no extra `alpha` hyper-parameter: the context
# is simply the α-weighted sum. And the weight matrix is T × S (one row per output step, one
# column per input position), not input length × input length.
#
# Two facts shape the code:
#
# - $h_j U_a$ does not depend on $i$, so it is computed **once per source batch**
#   (`attn.prepare`), not once per decoder step.
# - The query is $s_{i-1}$, the state *before* the step: Bahdanau's decoder attends first and
#   then runs its RNN cell on $[E y_{i-1} ; c_i]$. (Luong's attention, `docs/equations.md` §5,
#   attends *after* the cell step, with $s_i$.)

# %% [markdown]
# ## 2. One decoder step by hand
#
# A batch of B = 2 sources of length S = 4; the second source has only 3 real tokens, so its
# position 3 (counting from 0) is padding. Sizes are tiny and all different, so a transposed
# matrix cannot go unnoticed: Hq = 3, Hk = 4, A = 5. We build the library's module in float64
# and copy its parameters; everything below is plain NumPy on those copies.

# %%
B, S, Hq, Hk, A = 2, 4, 3, 4, 5
rng = np.random.default_rng(0)
attn = BahdanauAttention(Hq, Hk, A, rng=rng)  # float64 by default
W_a, U_a, v_a = (attn.params[name].copy() for name in ("W_a", "U_a", "v_a"))
assert W_a.shape == (Hq, A) and U_a.shape == (Hk, A) and v_a.shape == (A,)

lengths = np.array([4, 3])
src_mask = np.arange(S)[None, :] < lengths[:, None]  # (1, S) < (B, 1) -> (B, S): True = real
enc_hs = rng.standard_normal((B, S, Hk))  # the annotations h_j
enc_hs[~src_mask] = 0.0  # a tinyattn encoder outputs exactly 0 at pads
s_prev = rng.standard_normal((B, Hq))  # the decoder state s_{i-1}

print("src_mask:\n", src_mask)
print("enc_hs", enc_hs.shape, " s_prev", s_prev.shape)

# %% [markdown]
# **Step 1 — project the keys once.** $h_j U_a$ for every $j$ at once: (B, S, Hk) @ (Hk, A).
# The library does the same in `prepare`, which also checks the mask and keeps what the decoder
# steps need.

# %%
keys = enc_hs @ U_a  # (B, S, Hk) @ (Hk, A) -> (B, S, A)
assert keys.shape == (B, S, A)

prepared = attn.prepare(enc_hs, src_mask)
assert np.allclose(keys, prepared.keys)
print("keys h_j U_a:", keys.shape)

# %% [markdown]
# **Step 2 — the scores $e_{ij}$ (分数).** First literally as written, one number at a time;
# then vectorised: project the query once, $s_{i-1} W_a$ of shape (B, A), broadcast it against
# all S keys, tanh, and a dot product with $v_a$.

# %%
e_loop = np.zeros((B, S))
for b in range(B):
    for j in range(S):
        e_loop[b, j] = v_a @ np.tanh(s_prev[b] @ W_a + enc_hs[b, j] @ U_a)  # a scalar

q = s_prev @ W_a  # (B, Hq) @ (Hq, A) -> (B, A)
feats = np.tanh(q[:, None, :] + keys)  # (B, 1, A) + (B, S, A) -> (B, S, A)
e = feats @ v_a  # (B, S, A) @ (A,) -> (B, S)
assert q.shape == (B, A) and feats.shape == (B, S, A) and e.shape == (B, S)
assert np.allclose(e, e_loop)

# the library's score function takes (B, T, A) queries: here T = 1
scores_lib, _ = additive_score_forward(q[:, None, :], prepared.keys, v_a)  # (B, 1, S)
assert np.allclose(scores_lib[:, 0], e)
print("scores e_ij (rows: examples, columns: source positions j):\n", e)

# %% [markdown]
# Look at `e[1, 3]`, the score of the second example's pad: an ordinary number. The score
# function knows nothing about padding. Masking happens in the softmax.
#
# **Step 3 — the weights $\alpha_{ij}$.** A softmax over $j$ with the pads masked: a masked score
# becomes $-\infty$, and $\exp(-\infty) = 0$ *exactly*. (Subtracting the row's maximum before
# `exp` does not change the result and avoids overflow.)

# %%
e_masked = np.where(src_mask, e, -np.inf)  # (B, S)
w = np.exp(e_masked - e_masked.max(axis=1, keepdims=True))  # exp(-inf) = 0.0
alpha = w / w.sum(axis=1, keepdims=True)  # (B, S)
assert alpha.shape == (B, S)
assert np.allclose(alpha.sum(axis=1), 1.0)
assert alpha[1, 3] == 0.0  # exactly zero, not just small
print("weights alpha_ij:\n", alpha)

# %% [markdown]
# **Step 4 — the context $c_i = \sum_j \alpha_{ij} h_j$**, again as a loop and vectorised, and
# then the whole step through the library: `attn.step(query, prepared)` returns the context, the
# weights and a cache for the backward pass.

# %%
c_loop = np.zeros((B, Hk))
for b in range(B):
    for j in range(S):
        c_loop[b] += alpha[b, j] * enc_hs[b, j]

c = np.einsum("bs,bsk->bk", alpha, enc_hs)  # Σ_j alpha[b, j] * enc_hs[b, j, :]
assert c.shape == (B, Hk)
assert np.allclose(c, c_loop)

context_lib, alpha_lib, _ = attn.step(s_prev, prepared)
assert context_lib.shape == (B, Hk) and alpha_lib.shape == (B, S)
assert np.allclose(alpha_lib, alpha)
assert np.allclose(context_lib, c)
print("context c_i:\n", c)

# %% [markdown]
# ## 3. Pads get exactly zero weight
#
# Because the mask acts on the scores *before* the softmax, a pad gets weight exactly 0, and the
# other weights of its row are renormalised among the real tokens. Consequences worth checking:
# whatever sits in the encoder output at a pad cannot change the context, and no gradient flows
# back into it. Without the mask, the pad would take a share of the weight.

# %%
garbage = enc_hs.copy()
garbage[1, 3] = 100.0  # put anything at the second example's pad
ctx_g, alpha_g, _ = attn.step(s_prev, attn.prepare(garbage, src_mask))
assert alpha_g[1, 3] == 0.0
assert np.array_equal(alpha_g, alpha_lib) and np.allclose(ctx_g, context_lib)
print("context with garbage at the pad equals the original:", np.allclose(ctx_g, context_lib))

no_mask = np.exp(e - e.max(axis=1, keepdims=True))
no_mask /= no_mask.sum(axis=1, keepdims=True)
print(f"weight of the pad without the mask: {no_mask[1, 3]:.3f}   with the mask: "
      f"{alpha_lib[1, 3]}")

# %% [markdown]
# ## 4. All steps at once: the T × S weight matrix
#
# In a real decoder the steps run one after another, because $s_{i-1}$ depends on $c_{i-1}$.
# When the queries are given, though (here: random, T = 3), the module can attend with all of
# them in one call, `attn(queries, enc_hs, src_mask)`. That is the form the gradient check below
# uses. The result has one row per target step and one column per source position; every row
# sums to 1 and every pad column is 0.

# %%
T = 3
queries = rng.standard_normal((B, T, Hq))  # s_0, s_1, s_2 for i = 1, 2, 3
context_all, alpha_all = attn(queries, enc_hs, src_mask)
assert context_all.shape == (B, T, Hk) and alpha_all.shape == (B, T, S)

# by hand: every query against every key, (B, T, 1, A) + (B, 1, S, A) -> (B, T, S, A)
feats_all = np.tanh((queries @ W_a)[:, :, None, :] + keys[:, None, :, :])
e_all = feats_all @ v_a  # (B, T, S)
e_all = np.where(src_mask[:, None, :], e_all, -np.inf)  # mask (B, 1, S) broadcast over T
w_all = np.exp(e_all - e_all.max(axis=2, keepdims=True))
alpha_hand = w_all / w_all.sum(axis=2, keepdims=True)  # (B, T, S)
context_hand = alpha_hand @ enc_hs  # (B, T, S) @ (B, S, Hk) -> (B, T, Hk)
assert np.allclose(alpha_all, alpha_hand) and np.allclose(context_all, context_hand)

assert np.allclose(alpha_all.sum(axis=2), 1.0)
assert (alpha_all[1, :, 3] == 0.0).all()
print("alpha of example 1, T x S (rows: target steps i, columns: source positions j):\n",
      alpha_all[1])

# %% [markdown]
# ## 5. Gradient check
#
# The backward pass runs the same equations in reverse. Write $g_i = \partial L/\partial c_i$
# for the upstream gradient (`dcontext`) and $f_{ij} = \tanh(s_{i-1}W_a + h_jU_a)$. Then:
#
# - the weights get $\partial L/\partial \alpha_{ij} = g_i \cdot h_j$;
# - the softmax turns these into $\partial L/\partial e_{ij}$ (0 at pads);
# - the tanh passes $\delta_{ij} = (\partial L/\partial e_{ij})\, v_a \odot (1 - f_{ij}^2)$;
# - the query gets $\partial L/\partial s_{i-1} = (\sum_j \delta_{ij})\, W_a^\top$;
# - each annotation gets
#   $\partial L/\partial h_j = (\sum_i \delta_{ij})\, U_a^\top + \sum_i \alpha_{ij}\, g_i$,
#   the second term straight through the context;
# - the parameters: $\partial L/\partial v_a = \sum_{ij} (\partial L/\partial e_{ij})\, f_{ij}$,
#   $\partial L/\partial W_a = \sum_i s_{i-1}^\top \sum_j \delta_{ij}$,
#   $\partial L/\partial U_a = \sum_j h_j^\top \sum_i \delta_{ij}$.
#
# `check_module` compares all of this with centered finite differences, for every entry of the
# queries, the encoder states and the three parameters, in float64. **What to expect:** a
# correct backward gives relative errors around $10^{-10}$–$10^{-8}$, far below the tolerance for
# a layer, $10^{-6}$ (`TOL_LAYER`); a wrong one is off by about the size of the gradient itself,
# an error near $10^{-1}$–$1$.

# %%
result = check_module(attn, queries, enc_hs, src_mask)
print(result)
assert result.passed and result.max_error < TOL_LAYER

# no gradient reaches the pad's encoder state
attn.zero_grad()
attn(queries, enc_hs, src_mask)
dqueries, denc_hs = attn.backward(rng.standard_normal((B, T, Hk)))
assert dqueries.shape == queries.shape and denc_hs.shape == enc_hs.shape
assert not denc_hs[1, 3].any()
print("gradient at the pad:", denc_hs[1, 3])

# %% [markdown]
# ## 6. Training on dates
#
# The task (`tinyattn.data`, task `"dates"`): read a date as people write it, in one of 20
# formats and three casings, and write it as an ISO date `YYYY-MM-DD`, one character per token.
# Each example carries **gold spans**: for every output character, the source characters it
# comes from (`None` for the "-", which no source character explains). They let us score the
# attention against the truth.
#
# The model is the one `make demo` trains: a bidirectional GRU encoder (E = 32, H = 64 per
# direction, so Hk = 128), a GRU decoder with Bahdanau attention (Hq = A = 128), float32, Adam
# with learning rate 0.004, batches of 64, gradient norm clipped at 5. The demo trains 2 epochs
# on 20,000 dates; to keep this lesson near a minute we train 2 epochs on the first 8,000 (the
# command line's `--train-size 8000`). `load_examples` builds exactly the splits the command
# line uses; the 1,000 test dates share no source string with the training data.

# %%
spec = DataSpec("dates", train_size=8000)
splits, info = load_examples(spec)
print(info)
for ex in splits["train"][:3]:
    print(f'{"".join(ex.src)!r:32} -> {"".join(ex.tgt)}   gold: {ex.gold}')

src_vocab = Vocab.build([ex.src for ex in splits["train"]])
tgt_vocab = Vocab.build([ex.tgt for ex in splits["train"]])
print(f"vocabularies: {len(src_vocab)} source tokens, {len(tgt_vocab)} target tokens "
      "(0-3: <pad> <sos> <eos> <unk>)")

# %%
model = ta.Seq2Seq(len(src_vocab), len(tgt_vocab), emb_size=32, hidden_size=64,
                   attention="bahdanau", pad_id=Vocab.pad_id, rng=np.random.default_rng(0),
                   dtype=np.float32)
print({k: v.shape for k, v in model.decoder.attn.params.items()},
      f"; {sum(v.size for _, v, _ in model.named_parameters()):,} parameters in all")

trainer = ta.Trainer(model, ta.Adam(model.named_parameters(), lr=0.004), pad_id=Vocab.pad_id,
                     sos_id=Vocab.sos_id, eos_id=Vocab.eos_id, batch_size=64, clip=5.0,
                     rng=np.random.default_rng(0), show_progress=False)
train = encode_pairs(splits["train"], src_vocab, tgt_vocab)
valid = encode_pairs(splits["valid"], src_vocab, tgt_vocab)
start = time.perf_counter()
trainer.fit(train, valid, epochs=2, on_epoch=lambda r: print(
    f"epoch {r.epoch}: train loss {r.train_loss:.4f}, valid loss {r.valid_loss:.4f}, "
    f"{r.seconds:.1f} s"))
print(f"training took {time.perf_counter() - start:.1f} s")

# %% [markdown]
# **Scores on the test split.** `evaluate_examples` decodes greedily and compares with the
# references (exact match: the whole date right), and measures the attention with the
# reference fed in (teacher forcing). **Alignment accuracy** is the share of output characters
# with a gold span whose most-attended source character (the argmax of its row of α) lies inside
# that span. The evaluation helpers read the vocabularies and the longest output allowed from a
# `Run`, the in-memory description of a run directory; nothing is written to disk here.

# %%
run = Run(directory=None, data=spec, model_options=model.config,
          train_options={"max_decode_len": 2 * max(len(ex.tgt) for ex in splits["train"]) + 5},
          src_vocab=src_vocab, tgt_vocab=tgt_vocab)
test = splits["test"]
metrics = evaluate_examples(model, run, test)
print(format_metrics(metrics, f"test ({len(test)} dates)"))
assert metrics["exact_match"] > 0.95

outputs = [words for ((words, _),) in decode(model, run, [list(ex.src) for ex in test])]
wrong = [(ex, words) for ex, words in zip(test, outputs) if words != list(ex.tgt)]
print(f"\nthe {len(wrong)} dates it gets wrong:")
for ex, words in wrong:
    print(f'  {"".join(ex.src)!r:30} -> {"".join(words)}   (reference {"".join(ex.tgt)})')

# %% [markdown]
# ## 7. Where does the model look?
#
# One heatmap per test date: rows are output characters (the last row predicts `<eos>`), columns
# the source characters ("␣" is a space), colour the weight $\alpha_{ij}$. Red boxes are the gold
# spans. We pick three dates written in different formats.

# %%
def first_test_date(pattern):
    """The first test date matching ``pattern`` that the model gets right (so that the
    gold spans of its output can be drawn)."""
    return next(ex for ex, words in zip(test, outputs)
                if re.fullmatch(pattern, "".join(ex.src)) and words == list(ex.tgt))


def show(ex):
    (words, hyp), = decode(model, run, [list(ex.src)])[0]  # greedy; hyp.attention: (len, S)
    labels = words + (["<eos>"] if hyp.tokens[-1] == Vocab.eos_id else [])
    ok = words == list(ex.tgt)
    gold = list(ex.gold) + [None] * (len(labels) - len(ex.tgt)) if ok else None
    title = f'"{"".join(ex.src)}" → {"".join(words)}' + (" ✓" if ok else " ✗")
    return plot_alignment(hyp.attention, ex.src, labels, gold=gold, title=title)


long_form = first_test_date(r"[A-Za-z]+, [A-Za-z]+ \d{1,2}, \d{4}")  # Weekday, Month d, yyyy
fig = show(long_form)

# %% [markdown]
# The year digits look at the year, the month digits at the month's name, the day digits at the
# day; the weekday, which an ISO date does not need, gets almost nothing.

# %%
ordinal = first_test_date(r"the \d{1,2}(st|nd|rd|th) of [A-Za-z]+ \d{4}")  # the 6th of ...
fig = show(ordinal)

# %% [markdown]
# Here the day is one digit plus an ordinal suffix; "the" and "of" are ignored.

# %%
short = first_test_date(r"\d\.\d\.\d\d")  # d.m.yy: one-digit day and month, two-digit year
fig = show(short)

# %% [markdown]
# With a two-digit year the model has to *infer* the century ("15" → 2015, "84" → 1984), and
# both month and day need a leading "0" that the source does not write.
#
# **Per output position, over all 1,000 test dates.** For each position of `YYYY-MM-DD<eos>`:
# how often the attention peak lies in the gold span (the alignment accuracy of that position
# alone), and how spread out the row is: its entropy in nats, 0 when all the weight sits on one
# character, $\ln S$ when it is spread evenly over $S$ characters. As in `evaluate_examples`, the
# reference is fed in.

# %%
sources, refs = [list(ex.src) for ex in test], [list(ex.tgt) for ex in test]
alphas, _ = teacher_forced(model, run, sources, refs)  # one (11, S) array per date
assert all(a.shape == (11, len(s)) for a, s in zip(alphas, sources))

positions = ["year 1", "year 2", "year 3", "year 4", "-", "month 1", "month 2", "-",
             "day 1", "day 2", "<eos>"]
print(f"{'position':10} {'peak in gold span':>18} {'entropy (nats)':>15}")
for k, name in enumerate(positions):
    if k < 10 and test[0].gold[k] is not None:  # the same positions have gold in every date
        only_k = [[span if t == k else None for t, span in enumerate(ex.gold)] for ex in test]
        acc = f"{alignment_accuracy(alphas, only_k):.1%}"
    else:
        acc = "(no gold)"
    entropy = np.mean([attention_entropy(a)[k] for a in alphas])
    print(f"{name:10} {acc:>18} {entropy:>15.2f}")

# %% [markdown]
# The first digits of month and day stand out. Split them by how the source writes the field:
# with one digit ("5", "6th"), two digits ("05", "24") or a name ("May"), and look at which
# character the peak falls on when it misses.

# %%
def written_as(ex, k):
    start, end = ex.gold[k]
    digits = re.match(r"\d*", "".join(ex.src[start:end]))[0]
    return {0: "a name", 1: "one digit", 2: "two digits"}[len(digits)]


for k in (5, 8):
    print(positions[k])
    for kind in ("one digit", "two digits", "a name"):
        rows = [(a[k], ex.gold[k], ex.src) for a, ex in zip(alphas, test)
                if written_as(ex, k) == kind]
        if not rows:
            continue
        misses = [src[row.argmax()] for row, (start, end), src in rows
                  if not start <= row.argmax() < end]
        where = ", ".join(f"{ch.replace(' ', '␣')!r} {n}" for ch, n in
                          Counter(misses).most_common(3))
        print(f"  written as {kind:10}: {len(rows):4} dates, peak in gold span "
              f"{1 - len(misses) / len(rows):6.1%}; misses peak on: {where or '-'}")

# %% [markdown]
# ## 8. What the heatmaps show
#
# - **The alignment is learned, not given.** Nothing in the loss mentions the gold spans: the
#   model was only trained to predict the next output character. It found by itself that the
#   year digits should read the year, the month digits the month (a number or a name such as
#   "december"), the day digits the day, wherever the format puts them. This is the "align" of
#   the paper's title and the matrix document 003 describes: the α matrix shows which input
#   characters each output character corresponds to (对齐).
# - **Ignored tokens.** Weekdays, "the", "of", commas and ordinal suffixes such as "th" get
#   almost no weight: an ISO date does not need them.
# - **"-" and `<eos>` are diffuse.** No source character explains them (their gold is `None`),
#   and their rows are spread out (high entropy in the table). In the first two heatmaps a "-"
#   row leans towards the field that comes next: the model knows *when* to write "-" from its
#   own state $s_{i-1}$, and its attention is already moving on.
# - **Inferred digits are diffuse too.** The century digits ("19"/"20") are among the most
#   spread-out rows: for a two-digit year no source character holds them, and the model reads
#   the whole year to decide. They are also the hardest part of the task: in the run stored
#   here, both wrong dates are a two-digit year given the wrong century.
# - **The leading zero looks around.** When the source writes the month as a name or the day
#   with two digits, the first output digit almost always peaks inside the field. When it writes
#   the field with one digit ("9.6.23", "the 6th of …"), the output's leading "0" has no source
#   character of its own, and its peak falls next to the field instead: on the space, "/" or "."
#   that shows the number has one digit, so a "0" must come first (the table counts where those
#   peaks land; single rows can differ: in the third heatmap the day's "0" spreads its weight
#   and peaks on the year). Numeric two-digit months
#   ("05/30/1991") sit in between: in about a quarter of them the peak moves to the "/" after
#   the month. These rows pull the alignment accuracy down, yet the output is right: alignment
#   accuracy measures where the model looks, not whether it translates correctly.
# - **Each annotation already knows its context.** $h_j$ comes from a bidirectional encoder, so
#   the annotation of a separator can carry the neighbouring digit's information. The heatmap
#   shows where the decoder reads, not the only place where the information lives.
#
# **To remember.** $e_{ij} = v_a \cdot \tanh(s_{i-1} W_a + h_j U_a)$ (scores, 分数),
# $\alpha_{ij} = \text{softmax}_j(e_{ij})$ (weights, 注意力权重) with pads masked to exactly 0,
# $c_i = \sum_j \alpha_{ij} h_j$ (the context vector, 上下文向量); the key projection $h_j U_a$
# once per source batch; the query is the state *before* the step; the weight matrix is T × S.
#
# **Try it yourself.** Train for 1 epoch only and compare the heatmaps and the alignment
# accuracy; train with `attention=None` (one context vector, `docs/equations.md` §2) and compare the
# exact match on the long formats; replace `"bahdanau"` by `"general"` (Luong, `docs/equations.md`
# §5), which attends after the RNN step.
