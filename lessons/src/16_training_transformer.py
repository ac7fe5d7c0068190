# Source of lessons/16_training_transformer.ipynb (learner) and
# lessons/solutions/16_training_transformer.ipynb (instructor): edit here, then run
# `.venv/bin/python lessons/build.py 16` (see lessons/build.py).

# %% [markdown]
# # Lesson 16 — Training a Transformer
#
# **Goal.** Lessons 13 and 14 built attention with many heads and the positional encoding;
# lesson 15 built the block around them: layer normalisation, residual connections, the
# feed-forward network. `tinyattn.Transformer` stacks such blocks into an encoder and a decoder
# (`docs/equations.md` §7.6).
# This last lesson trains it, and asks what it learned and what it costs. You will
#
# 1. write one decoding step with a **key/value cache** (an exercise graded by its outputs),
#    check the library's cached decoding against the teacher-forced forward, and time it against
#    a decoder that recomputes the whole prefix at every step;
# 2. compute the **Noam schedule** and the **warm-up with linear decay** by hand;
# 3. check **label smoothing** on the Transformer's loss, in train and in eval mode;
# 4. **train** a small Transformer on dates in about fifteen seconds and ask **which heads
#    align**: every decoder layer's and head's cross-attention against the gold spans;
# 5. measure document 003's claim that an RNN cannot be parallelised: the time of one training
#    step of a GRU with Bahdanau attention and of a Transformer of the same size, by length;
# 6. look at its other claim, that attention ignores the relations **within a sentence**, on
#    real English sentences: Bahdanau's alignment next to the Transformer encoder's
#    self-attention heads (when the cmn-eng corpus of lesson 11 is stored);
# 7. move the trained model to **PyTorch** and back.
#
# **Sources.** `docs/equations.md` §7.2 (decoding with a key/value cache), §7.6 (the model),
# §9.7 (the Noam schedule and a linear decay), §6.1 (label smoothing, lesson 10) and §11.3
# (alignment accuracy, lesson 05). A. Vaswani et al., *Attention Is All You Need*, NeurIPS 2017
# (arXiv:1706.03762): §3.2.3 (masked decoder self-attention), §3.4 (embeddings scaled by √D),
# §5.3 (Adam with β₂ = 0.98 and the learning-rate schedule), §5.4 (label smoothing). Document
# 003 (`docs/sources.md`) on the RNN: 「RNN 的缺点就是无法平行化处理，导致模型训练的时间很长」 ("the
# weakness of the RNN is that it cannot be parallelised, so training takes long").
#
# The whole notebook runs in about half a minute on one core, and in about two minutes with
# section 7, which trains two models on real sentences when the corpus is stored.

# %%
import time

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.patches import Rectangle

import tinyattn as ta
import tinyattn.exercises as ex
from tinyattn.data import Vocab
from tinyattn.data.tasks import make_splits, make_task
from tinyattn.cli.dataspec import encode_pairs
from tinyattn.functional import log_softmax
from tinyattn.metrics import alignment_accuracy
from tinyattn.multihead import merge_heads
from tinyattn.plot import plot_heads
from tinyattn.training.batching import pad_batch, pad_ids

np.set_printoptions(precision=3, suppress=True)
try:  # one BLAS thread: the timings of sections 1 and 6 are for one core
    from threadpoolctl import threadpool_info, threadpool_limits  # the project's "dev" extra

    threadpool_limits(limits=1, user_api="blas")
    print("BLAS threads:", [p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"])
except ImportError:
    print("threadpoolctl is not installed: start Jupyter with OPENBLAS_NUM_THREADS=1 "
          "for one BLAS thread")

# %% [markdown]
# ## 1. Decoding with a key/value cache
#
# In training, the decoder reads the whole reference at once (teacher forcing): one forward
# computes every target position, and the causal mask keeps position $t$ from reading the
# positions after it. At inference there is no reference: token $t$ is known only once step
# $t - 1$ has chosen it. The simplest decoder therefore runs the whole decoder again on the
# prefix $\langle sos \rangle, y_1, \dots, y_t$ at every step and keeps the last row.
#
# That recomputes what it already had. Under the causal mask, row $i$ of every decoder layer
# depends on positions $0..i$ only (lesson 13 changed a later token and saw no earlier output
# move), so appending a token changes none of the rows before it. On a self-attention layer
# with two heads, a prefix of 5 positions and the same prefix with a 6th:

# %%
D_toy, n_toy = 8, 2
sa = ta.MultiHeadAttention(D_toy, n_toy, rng=np.random.default_rng(0))
x_toy = np.random.default_rng(1).standard_normal((3, 6, D_toy))  # B = 3, 6 positions
out5, _ = sa(x_toy[:, :5], x_toy[:, :5], x_toy[:, :5], causal=True)
out6, _ = sa(x_toy, x_toy, x_toy, causal=True)
print("rows 0-4 with 5 positions vs with 6, max difference:",
      np.abs(out6[:, :5] - out5).max())

# %% [markdown]
# Bit for bit the same. Each row's keys and values, $x_j W_k + b_k$ and $x_j W_v + b_v$,
# depend on position $j$ alone, so a decoder can **keep them**: at step $t$ each decoder layer
# holds the keys and values of positions $0..t-1$ (the cache, (B, n, t, d) each), projects the
# new position's query, key and value, appends the key and value, and lets the query read all
# $t + 1$ of them (`docs/equations.md` §7.2):
#
# $$K_{0..t} = [K_{0..t-1} \,;\, k_t], \qquad V_{0..t} = [V_{0..t-1} \,;\, v_t], \qquad
# \text{out}_t = \text{softmax}\!\left(q_t K_{0..t}^\top / \sqrt{d}\right) V_{0..t}$$
#
# per head. No mask is needed: the cache holds only the past, and the new position may read
# itself (the diagonal of the causal mask). Step $t$ then costs one query row per layer instead
# of $t + 1$.
#
# ## 2. Exercise: one cached step
#
# **Your turn.** Write `my_cached_attention_step(q, k, v, K_cache, V_cache)`. The inputs are
# already projected and split into heads: `q`, `k`, `v` (B, n, 1, d) for the new position,
# `K_cache`, `V_cache` (B, n, t, d) for the positions before it; at the first step $t = 0$ and
# the cache has an axis of length 0 (`np.concatenate` handles it). Return the new position's
# output per head (B, n, 1, d) and the grown caches (B, n, t + 1, d), positions in order.
# `ex.check("cached_attention_step", fn)` runs your step and the library's on caches of 0, 1
# and 4 positions and, when an output differs, names the mistake that produces it: the new key
# and value not appended before attending, appended in front of the cache, the cache ignored,
# the $1/\sqrt{d}$ left out, the softmax over the wrong axis. `ex.stub("cached_attention_step")`
# prints the starting point.

# %%
def my_cached_attention_step(q, k, v, K_cache, V_cache):
    """One decoding step of causal self-attention with a key/value cache (§7.2).

    q, k, v (B, n, 1, d): the new position's query, key and value; K_cache, V_cache
    (B, n, t, d): the keys and values of positions 0 .. t − 1.
    Returns out (B, n, 1, d) and the caches K, V (B, n, t + 1, d).
    """
    # BEGIN SOLUTION
    K = np.concatenate([K_cache, k], axis=2)  # (B, n, t + 1, d): position t last, in order
    V = np.concatenate([V_cache, v], axis=2)
    scores = q @ K.transpose(0, 1, 3, 2) / np.sqrt(q.shape[-1])  # (B, n, 1, t + 1)
    weights = np.exp(scores - scores.max(axis=-1, keepdims=True))
    weights /= weights.sum(axis=-1, keepdims=True)  # over the keys: the last axis
    return weights @ V, K, V  # (B, n, 1, t + 1) @ (B, n, t + 1, d)
    # END SOLUTION

# %%
result = ex.check("cached_attention_step", my_cached_attention_step)
assert result.status in ("passed", "not implemented"), "read the report above"

# %% [markdown]
# **Your step, position by position.** With the toy layer's projections (`sa.project` splits
# into heads, `sa.output` applies $W_o$), your step run over the six positions, one at a time
# from an empty cache, gives the causal forward's six rows:

# %%
if result.passed:
    K_c = V_c = np.zeros((3, n_toy, 0, D_toy // n_toy))
    rows = []
    for t in range(6):
        x_t = x_toy[:, t:t + 1]  # (B, 1, D)
        o, K_c, V_c = my_cached_attention_step(sa.project(x_t, "q"), sa.project(x_t, "k"),
                                               sa.project(x_t, "v"), K_c, V_c)
        rows.append(sa.output(merge_heads(o)))  # (B, 1, D)
    err = np.abs(np.concatenate(rows, axis=1) - out6).max()
    print(f"your cached steps vs the causal forward, max difference: {err:.1e}; "
          f"cache after 6 steps: {K_c.shape}")
    assert err < 1e-12

# %% [markdown]
# **The library's cached decoding.** `TransformerDecoderLayer.step` is your step inside a
# decoder layer: the residual blocks and layer norms around it, then the cross-attention, whose
# keys and values are the encoder's memory projected once per source batch (`memory_kv`), then
# the feed-forward network. `Transformer.start(src, src_lengths)` encodes and returns the
# memory and an empty carry (one (K, V) pair per decoder layer); `decode_step(y_prev, memory,
# carry, t)` returns the next token's log-probabilities, the carry through position $t$ and the
# last layer's cross-attention averaged over heads. Fed the reference one token at a time, it
# must give what the teacher-forced forward gives at every position. A random float64
# Transformer (the sizes of section 5's run: D = 32, 4 heads, d_ff = 64, two encoder and two
# decoder layers), four sources of different lengths (padded) and targets of 9 tokens:

# %%
V_toy = 20
model64 = ta.Transformer(V_toy, V_toy, d_model=32, num_heads=4, d_ff=64, num_encoder_layers=2,
                         num_decoder_layers=2, rng=np.random.default_rng(0)).eval()
rng = np.random.default_rng(2)
B, S, T = 4, 12, 9
src_lengths = np.array([12, 7, 10, 3])
src = np.where(np.arange(S) < src_lengths[:, None], rng.integers(3, V_toy, (B, S)), 0)
tgt = rng.integers(3, V_toy, (B, T - 1))
tgt_in = np.concatenate([np.ones((B, 1), int), tgt], axis=1)  # <sos> y_1 .. y_8
tgt_out = np.concatenate([tgt, np.full((B, 1), 2)], axis=1)  # y_1 .. y_8 <eos>
model64(src, src_lengths, tgt_in, tgt_out, np.full(B, T))
forced = log_softmax(model64.logits, axis=1).reshape(B, T, V_toy)  # row-major real tokens
forced_attn = model64.attention_weights.copy()  # (B, T, S): last layer, heads averaged

memory, carry = model64.start(src, src_lengths)
step_err = attn_err = 0.0
for t in range(T):
    logp, carry, attn = model64.decode_step(tgt_in[:, t], memory, carry, t)
    step_err = max(step_err, np.abs(logp - forced[:, t]).max())
    attn_err = max(attn_err, np.abs(attn - forced_attn[:, t]).max())
print(f"decode_step vs teacher-forced forward, max difference: log-probabilities "
      f"{step_err:.1e}, cross-attention {attn_err:.1e}")
print("carry after", T, "steps:", [tuple(K.shape) for K, _ in carry], "(B, n, t, d) per layer")
assert step_err < 1e-12 and attn_err < 1e-12

# %% [markdown]
# The same numbers up to rounding, pads in the sources included. `model.greedy_decode` and
# `model.beam_search` (lesson 09) call `start` once and `decode_step` at every step.
#
# **Predict.** Greedy decoding of $n$ tokens. The cached decoder computes one new position per
# layer per step; the decoder that reruns the prefix computes $1 + 2 + \dots + n$ positions.
# How many times slower is the second at $n = 8$? When $n$ doubles, by how much does each one's
# time grow?
#
# Both decoders below run exactly $n$ steps (no stopping at `<eos>`) on a batch of 16 sources
# of 12 tokens, so they do the same amount of decoding whatever the random model predicts; they
# must choose the same tokens.

# %%
def greedy_cached(model, src, src_lengths, n):
    memory, carry = model.start(src, src_lengths)
    y, out = np.ones(len(src), int), []  # <sos>
    for t in range(n):
        logp, carry, _ = model.decode_step(y, memory, carry, t)
        y = logp.argmax(axis=1)
        out.append(y)
    return np.stack(out, axis=1)


def greedy_recompute(model, src, src_lengths, n):
    """Rerun the whole model on the prefix at every step; keep the last position's logits."""
    prefix = np.ones((len(src), 1), int)  # <sos>
    for t in range(n):
        L = prefix.shape[1]
        model(src, src_lengths, prefix, np.full_like(prefix, 3), np.full(len(src), L))
        last = model.logits.reshape(len(src), L, -1)[:, -1]  # (B, V): position t
        prefix = np.concatenate([prefix, last.argmax(axis=1)[:, None]], axis=1)
    return prefix[:, 1:]


src16 = np.random.default_rng(3).integers(3, V_toy, (16, 12))
len16 = np.full(16, 12)
decode_times = {}
print(f"{'n':>4} {'cached (s)':>11} {'recompute (s)':>14} {'ratio':>6} "
      f"{'positions: cached':>18} {'recompute':>10}")
for n in (8, 16, 32, 64, 128):
    start = time.perf_counter()
    fast = greedy_cached(model64, src16, len16, n)
    mid = time.perf_counter()
    slow = greedy_recompute(model64, src16, len16, n)
    decode_times[n] = (mid - start, time.perf_counter() - mid)
    assert np.array_equal(fast, slow)  # the same tokens
    c, r = decode_times[n]
    print(f"{n:4d} {c:11.3f} {r:14.3f} {r / c:6.1f} {n:18d} {n * (n + 1) // 2:10d}")

# %%
ns = np.array(list(decode_times))
fig, ax = plt.subplots(figsize=(6.5, 4.2), layout="constrained")
ax.loglog(ns, [decode_times[n][0] for n in ns], "o-", label="with the key/value cache")
ax.loglog(ns, [decode_times[n][1] for n in ns], "s-", label="recomputing the prefix")
ax.set_xticks(ns, [str(n) for n in ns])
ax.set_xlabel("output length n (tokens decoded, batch of 16)")
ax.set_ylabel("greedy decoding time (s)")
ax.set_title("Greedy decoding: cached vs recomputed, one core")
ax.legend()
plt.show()

# %% [markdown]
# Every row decodes the same tokens both ways, and the cache wins at every length. At
# $n = 8$ the recomputing decoder computes 36 decoder positions against 8 but is only a few
# times slower (the ratio column): both decoders also pay for the output layer and for
# Python's and NumPy's per-call costs, which the cache does not save. (The recomputing decoder
# also runs the encoder at every step, the cached one once: part of the gap.) As $n$ doubles,
# the recomputing decoder's time grows by a larger factor each time, more than fourfold from
# 64 to 128: it computes $n(n+1)/2$ positions, and each of its forwards attends over
# $t \times t$ scores. The cached decoder's grows far more slowly, about twofold per doubling
# once its fixed costs are paid (each step reads, and copies with `np.concatenate`, a cache one
# position longer, so not quite a constant cost per step). So the ratio
# itself grows roughly in proportion to $n$. The cache costs memory instead:
# $2 \cdot B \cdot t \cdot D$ numbers per decoder layer at step $t$, the carry printed above.
#
# ## 3. The learning-rate schedule
#
# Vaswani et al. (§5.3) train with Adam at $\beta_1 = 0.9$, $\beta_2 = 0.98$, $\epsilon =
# 10^{-9}$ and a rate that rises linearly for `warmup` steps and then falls as $1/\sqrt{s}$:
#
# $$\text{lr}(s) = \text{factor} \cdot D^{-1/2} \cdot \min\!\left(s^{-1/2},\ s \cdot
# \text{warmup}^{-3/2}\right), \qquad s = 1, 2, \dots$$
#
# The two terms meet at $s = \text{warmup}$, so the peak is $\text{factor} \cdot (D \cdot
# \text{warmup})^{-1/2}$. The command line trains its Transformer with a second shape
# (`WarmupLinear`, the shape of BERT's training): the same linear warm-up to `peak`, then a
# straight line down to almost 0 at the run's last step $S_{\text{total}}$ (`docs/equations.md`
# §9.7):
#
# $$\text{lr}(s) = \text{peak} \cdot \min\!\left(\frac{s}{\text{warmup}},\
# \frac{S_{\text{total}} - s + 1}{S_{\text{total}} - \text{warmup} + 1}\right)$$
#
# Both by hand, for the run of section 5 (8,000 dates, batches
# of 64, 6 epochs; D = 32), with the Noam factor chosen so that both peak at the same rate at
# the same step, as the command line's `--schedule noam` does:

# %%
N_TRAIN, BATCH, EPOCHS, D_MODEL = 8000, 64, 6, 32
TOTAL = -(-N_TRAIN // BATCH) * EPOCHS  # optimiser steps of the run
WARMUP, PEAK = TOTAL // 5, 0.006
factor = PEAK * np.sqrt(D_MODEL * WARMUP)
s = np.arange(1, TOTAL + 1)
noam_hand = factor * D_MODEL ** -0.5 * np.minimum(s ** -0.5, s * WARMUP ** -1.5)
linear_hand = PEAK * np.minimum(s / WARMUP, (TOTAL - s + 1) / (TOTAL - WARMUP + 1))

holder = ta.Linear(2, 2, rng=np.random.default_rng(0))  # any parameters: Adam needs some
noam = ta.NoamSchedule(ta.Adam(holder.named_parameters()), d_model=D_MODEL, warmup=WARMUP,
                       factor=factor)
linear = ta.WarmupLinear(ta.Adam(holder.named_parameters()), peak=PEAK, warmup=WARMUP,
                         total=TOTAL)
noam_lib = np.array([noam.step() for _ in s])  # step() sets optimizer.lr and returns it
linear_lib = np.array([linear.step() for _ in s])
assert np.allclose(noam_hand, noam_lib, rtol=1e-12) and np.allclose(linear_hand, linear_lib,
                                                                    rtol=1e-12)
print(f"{TOTAL} steps, warm-up {WARMUP}: by hand = NoamSchedule = WarmupLinear's rates")
print(f"Noam: factor {factor:.4f}, peak factor·(D·warmup)^-1/2 = "
      f"{factor / np.sqrt(D_MODEL * WARMUP):.4g} at step {s[noam_lib.argmax()]}, "
      f"last step {noam_lib[-1]:.2e}")
print(f"WarmupLinear: peak {linear_lib.max():.4g} at step {s[linear_lib.argmax()]}, "
      f"last step {linear_lib[-1]:.2e}")
print(f"the paper's setting (D = 512, warmup = 4000, factor = 1): peak "
      f"{(512 * 4000) ** -0.5:.2e}")

# %%
fig, ax = plt.subplots(figsize=(7, 4), layout="constrained")
ax.plot(s, noam_lib, label="NoamSchedule: warm-up, then 1/√step")
ax.plot(s, linear_lib, label="WarmupLinear: warm-up, then linear decay")
ax.axvline(WARMUP, color="grey", linestyle=":", label=f"end of warm-up (step {WARMUP})")
ax.set_xlabel("optimiser step s")
ax.set_ylabel("learning rate")
ax.set_title(f"The two schedules, peak {PEAK} at step {WARMUP} of {TOTAL}")
ax.legend()
plt.show()

# %% [markdown]
# Both climb the same line to 0.006 at step 150. After it, Noam's rate falls slowly: at the
# last step it is still 2.68e-03, almost half the peak, while the linear decay ends at 9.98e-06.
# On dates the command line found the linear decay better (`WarmupLinear`'s docstring): small
# last steps let the weights settle, where the inverse square root keeps them moving from
# epoch to epoch. The paper's own setting peaks at 6.99e-04, lower than ours: a wider model
# (its $D^{-1/2}$) and a longer warm-up. Why warm up at all? The paper does not
# say. Lesson 15 measured one reason: at a high constant rate a post-LN model stalled, and the
# same peak reached after a warm-up let it learn. A common reading is that Adam's moment
# estimates rest on few gradients in the first steps, and that post-LN gradients near the
# output are large at initialisation (Xiong et al. 2020).
#
# ## 4. Label smoothing on the Transformer
#
# Vaswani et al. (§5.4) also smooth the targets, with $\varepsilon = 0.1$. Lesson 10 derived
# label smoothing (§6.1): each real token's target becomes $q = (1 - \varepsilon)\,
# \text{onehot}(y) + \varepsilon u$, $u$ uniform over every class but `<pad>`, and the loss
# $-\sum_v q_v \log p_v$ is smallest, not at 0, but at the entropy of $q$, when $p = q$. The
# Transformer applies it in **train mode only**: `Transformer(..., label_smoothing=0.1)` trains
# on the smoothed loss and reports the plain cross-entropy in eval mode. One batch, both modes
# (no dropout, so the logits are the same), each checked by hand from `model.logits`:

# %%
eps = 0.1
smooth = ta.Transformer(V_toy, V_toy, d_model=32, num_heads=4, d_ff=64, num_encoder_layers=2,
                        num_decoder_layers=2, label_smoothing=eps, rng=np.random.default_rng(0))
batch = (src, src_lengths, tgt_in, tgt_out, np.full(B, T))
loss_train = smooth.train()(*batch)
loss_eval = smooth.eval()(*batch)
log_p = log_softmax(smooth.logits, axis=1)  # (N, V), the real tokens
y = tgt_out.reshape(-1)  # every target is real here: N = B·T
q = np.full_like(log_p, eps / (V_toy - 1))  # ε u: the V − 1 classes other than <pad>
q[:, 0] = 0.0
q[np.arange(len(y)), y] += 1 - eps
hand_train = -(q * log_p).sum(axis=1).mean()
hand_eval = -log_p[np.arange(len(y)), y].mean()
floor = -(q[0][q[0] > 0] * np.log(q[0][q[0] > 0])).sum()  # the entropy of q, any token
print(f"train mode: {loss_train:.6f} (smoothed, by hand {hand_train:.6f})")
print(f"eval mode:  {loss_eval:.6f} (cross-entropy, by hand {hand_eval:.6f})")
print(f"the smoothed loss's floor, the entropy of q (V = {V_toy}, ε = {eps}): {floor:.6f}")
assert np.isclose(loss_train, hand_train) and np.isclose(loss_eval, hand_eval)

# %% [markdown]
# The same logits, two losses: train mode scores them against $q$, eval mode against the
# one-hot target, and each equals its hand computation. An untrained model's two losses are
# close; a trained one's are not: its smoothed training loss cannot fall below 0.587187 nats
# per token here ($V = 20$, $\varepsilon = 0.1$), however well it learns, while its
# cross-entropy can approach 0. So compare validation losses in eval mode (`Trainer.evaluate`
# switches to it). We train without smoothing below: every date has exactly one right answer.
#
# ## 5. Training on dates
#
# The task of lesson 05: a date as people write it → `YYYY-MM-DD`, one character per token, with
# gold spans for scoring the attention. `make_splits("dates")` draws the command line's splits;
# we train on the first 8,000 of its 20,000 training dates and test on its 1,000 test dates
# (no test source occurs in training). The model is smaller than the command line's (D = 32
# instead of 64, d_ff = 64, 4 heads, two encoder and two decoder layers, post-LN, float32), and
# trains 6 epochs with Adam at $\beta = (0.9, 0.98)$ and the warm-up with linear decay of
# section 3.

# %%
splits = make_splits("dates")
train_examples, test = splits["train"][:N_TRAIN], splits["test"]
src_vocab = Vocab.build([eg.src for eg in train_examples])
tgt_vocab = Vocab.build([eg.tgt for eg in train_examples])
print(f"{len(train_examples)} training and {len(test)} test dates; vocabularies "
      f"{len(src_vocab)} -> {len(tgt_vocab)} tokens")
print(f'e.g. {"".join(test[0].src)!r} -> {"".join(test[0].tgt)}')

model = ta.Transformer(len(src_vocab), len(tgt_vocab), d_model=D_MODEL, num_heads=4, d_ff=64,
                       num_encoder_layers=2, num_decoder_layers=2, pad_id=Vocab.pad_id,
                       rng=np.random.default_rng(0), dtype=np.float32)
print(f"{sum(p.size for _, p, _ in model.named_parameters()):,} parameters")
opt = ta.Adam(model.named_parameters(), betas=(0.9, 0.98))
schedule = ta.WarmupLinear(opt, peak=PEAK, warmup=WARMUP, total=TOTAL)
trainer = ta.Trainer(model, opt, schedule=schedule, pad_id=Vocab.pad_id, sos_id=Vocab.sos_id,
                     eos_id=Vocab.eos_id, batch_size=BATCH, clip=5.0,
                     rng=np.random.default_rng(0), show_progress=False)
start = time.perf_counter()
trainer.fit(encode_pairs(train_examples, src_vocab, tgt_vocab), epochs=EPOCHS,
            on_epoch=lambda r: print(f"epoch {r.epoch}: train loss {r.train_loss:.4f}, "
                                     f"lr at the end {r.lr:.2e}"))
print(f"training took {time.perf_counter() - start:.1f} s")

src_ids, src_lens = pad_ids([src_vocab.encode(eg.src) for eg in test], Vocab.pad_id)
hyps = model.greedy_decode(src_ids, src_lens, max_len=15, sos_id=Vocab.sos_id,
                           eos_id=Vocab.eos_id)
outputs = [tgt_vocab.decode(h.tokens) for h in hyps]
correct = [out == list(eg.tgt) for out, eg in zip(outputs, test)]
print(f"held-out exact match: {np.mean(correct):.1%} ({sum(correct)} of {len(test)})")
for out, eg in [(o, e) for o, e, ok in zip(outputs, test, correct) if not ok][:3]:
    print(f'  wrong: {"".join(eg.src)!r} -> {"".join(out)} (reference {"".join(eg.tgt)})')

# %% [markdown]
# 98.9 % of the held-out dates (989 of 1000) come out exactly right, after the training time
# printed above on one core. Three of the errors: the century of a two-digit year (5/30/54
# became 5454 instead of 1954), and two digits swapped, in a year and in a day. Lesson 05's
# Bahdanau model, trained on the same 8,000 dates and tested on the same 1,000 with more than
# four times the parameters, gets a few more right; this model is small and its run short.
#
# **Which heads align?** Each decoder layer has 4 cross-attention heads, each its own
# distribution over the source characters for every output character. For each layer and head,
# the alignment accuracy (§11.3, lesson 05: the share of output characters with a gold span
# whose most-attended source character lies in it), teacher-forced on the 1,000 test dates;
# plus the heads' average in each layer. The last layer's average is `model.attention_weights`,
# what `tinyattn evaluate` scores and `tinyattn plot` draws.

# %%
model.eval()
test_batch = pad_batch(encode_pairs(test, src_vocab, tgt_vocab), pad_id=Vocab.pad_id,
                       sos_id=Vocab.sos_id, eos_id=Vocab.eos_id)
model(*test_batch)  # teacher-forced: every reference character gets its row of weights
golds = [list(eg.gold) for eg in test]


def accuracy_of(weights):
    """Alignment accuracy of (B, T, S) weights: each example's real rows and columns."""
    return alignment_accuracy([weights[b, :len(eg.tgt) + 1, :len(eg.src)]
                               for b, eg in enumerate(test)], golds)


n_layers, n_heads = len(model.decoder), model.config["num_heads"]
table = np.array([[accuracy_of(layer.cross_weights[:, h]) for h in range(n_heads)]
                  + [accuracy_of(layer.cross_weights.mean(axis=1))] for layer in model.decoder])
print(f"{'alignment accuracy':20}" + "".join(f"{f'head {h}':>9}" for h in range(n_heads))
      + f"{'averaged':>10}")
for l, row in enumerate(table):
    print(f"{f'decoder layer {l}':20}" + "".join(f"{a:9.1%}" for a in row[:-1])
          + f"{row[-1]:10.1%}")
last_avg = accuracy_of(model.attention_weights)
assert np.isclose(last_avg, table[-1, -1])
print(f"model.attention_weights (last layer, heads averaged): {last_avg:.1%}")

# per gold-aligned character: how many of a layer's heads peak inside its gold span?
aligned = [(b, t, span) for b, eg in enumerate(test) for t, span in enumerate(eg.gold) if span]
for l, layer in enumerate(model.decoder):
    peaks = layer.cross_weights.argmax(axis=-1)  # (B, n, T): pads have weight 0, never a peak
    hits = np.array([(start <= peaks[b, :, t]) & (peaks[b, :, t] < end)
                     for b, t, (start, end) in aligned])  # (characters, heads)
    assert np.allclose(hits.mean(axis=0), table[l, :n_heads])  # the table's columns again
    shares = np.bincount(hits.sum(axis=1), minlength=n_heads + 1) / len(hits)
    print(f"decoder layer {l}: characters hit by 0..{n_heads} heads:",
          " ".join(f"{share:.1%}" for share in shares))

fig, ax = plt.subplots(figsize=(7.5, 2.9), layout="constrained")
im = ax.imshow(100 * table, cmap="viridis", vmin=0, vmax=100)
for (l, h), a in np.ndenumerate(table):
    ax.text(h, l, f"{a:.1%}", ha="center", va="center", color="white" if a < 0.7 else "black")
ax.set_xticks(range(n_heads + 1), [f"head {h}" for h in range(n_heads)] + ["averaged"])
ax.set_yticks(range(n_layers), [f"decoder layer {l}" for l in range(n_layers)])
ax.set_title("Cross-attention: alignment accuracy on 1,000 test dates")
fig.colorbar(im, ax=ax, label="alignment accuracy (%)")
plt.show()

# %% [markdown]
# Every head aligns, more or less: each puts its peak inside the gold span for most output
# characters, from 77.3 % (layer 0, head 3) to 93.3 % (layer 0, head 0); in both layers head
# 3 is the weakest (the heads' numbers mean nothing across layers or runs: lesson 14 showed
# that their order is arbitrary). The heads' average aligns better than any single head:
# 97.3 % in layer 0, 91.3 % in layer 1. The last line says why: in layer 0, 59.6 % of the
# characters are hit by all four heads and only 0.1 % by none, so where one head's peak slips
# off the span, the others' weight usually keeps the average's peak in it. Layer 1 has more
# characters that no head hits (3.6 %). Note that the number the command line reports, the
# last layer's average, is not the best layer's here: the first decoder layer aligns better
# than the second. Nothing in the loss asked for alignment; it asked only for the next
# character. Every layer and head for one held-out date, with the gold spans in red:

# %%
k = next(i for i, eg in enumerate(test) if correct[i] and "," in eg.src and len(eg.src) > 18)
eg = test[k]
rows_k, cols_k = len(eg.tgt) + 1, len(eg.src)  # the reference's characters and <eos>
grid = np.stack([layer.cross_weights[k, :, :rows_k, :cols_k] for layer in model.decoder])
fig = plot_heads(grid, eg.src, list(eg.tgt) + ["<eos>"], layer_names=["decoder layer 0",
                 "decoder layer 1"], title=f'"{"".join(eg.src)}" → {"".join(eg.tgt)}: '
                 "cross-attention of every head, gold spans in red")
for ax in fig.axes[:n_layers * n_heads]:  # the panels; the last axes is the colour bar
    for t, span in enumerate(eg.gold):
        if span is not None:  # cell j spans j − 0.5 .. j + 0.5
            ax.add_patch(Rectangle((span[0] - 0.5, t - 0.5), span[1] - span[0], 1.0,
                                   fill=False, edgecolor="red", linewidth=1.5))
plt.show()

# %% [markdown]
# Most panels show lesson 05's staircase, here running from the top right (the year comes last
# in this source and first in the output): year digits on the year, month digits on "July",
# day digits on "15th", and little weight on "Sunday", which an ISO date does not need. Some heads read one source character per output character: layer 1, head 0 puts the
# day's "1" on the source "1" and its "5" on the "5"; others spread over a whole field, the
# four year rows of layer 0, head 3 over all of "1979". The rows without a gold span, the two
# "-" and `<eos>`, read the edge of a field or spread out: in layer 1, heads 0 and 1, the "-"
# after the year peaks on the year's last "9", and head 1's second "-" on the spaces around
# "July". A "-" is written because a field has ended, not because of any one character.
#
# ## 6. "An RNN cannot be parallelised", measured
#
# Document 003 ends its first part on the RNN's weakness: 无法平行化处理, it cannot be
# parallelised, so training takes long. The recurrence $h_t = f(h_{t-1}, x_t)$ forces a loop over
# the positions, in the encoder, in the decoder and again in each backward; a Transformer layer
# computes all positions at once in a few large matrix products (the causal mask replaces the
# loop in the decoder, section 1). On a GPU the large products run on thousands of cores at
# once. This notebook runs on one CPU core, NumPy with one BLAS thread (the first cell), so
# every product runs on that core: nothing runs "in parallel" here. What can still differ is how the work is cut up. The
# recurrent model's forward runs its loop body about $3T$ times ($T$ steps in each direction of
# the encoder, $T + 1$ in the decoder), and its backward as many, each a few small products on
# a (16, 64) state; the Transformer's step is the same short list of products at every length,
# only larger ((B·T, D) rows; the attention's $T \times T$ scores grow as $T^2$).
#
# Two models of about the same size on copy (the output is the input; lengths fixed per batch):
# a bidirectional GRU encoder with a GRU decoder and Bahdanau attention (the model of lesson 05,
# E = 32, H = 64), and a Transformer with D = 64, 4 heads, d_ff = 192, two encoder and two
# decoder layers. One training step is forward, backward and an Adam update on a batch of 16,
# float64, timed three times after a warm-up, the two models interleaved, the median kept.
#
# **Predict.** At length 10, which step is faster? When the length grows from 10 to 100, how
# does each one's time grow: tenfold, more, less?

# %%
V_copy = 30
rnn = ta.Seq2Seq(V_copy, V_copy, emb_size=32, hidden_size=64, attention="bahdanau",
                 rng=np.random.default_rng(0))
transformer = ta.Transformer(V_copy, V_copy, d_model=64, num_heads=4, d_ff=192,
                             num_encoder_layers=2, num_decoder_layers=2,
                             rng=np.random.default_rng(0))
models = {"GRU + Bahdanau": rnn, "Transformer": transformer}
for name, m in models.items():
    print(f"{name:15} {sum(p.size for _, p, _ in m.named_parameters()):,} parameters")
optimisers = {name: ta.Adam(m.named_parameters(), lr=1e-3) for name, m in models.items()}


def train_step(name, batch):
    m = models[name]
    m.zero_grad()
    m(*batch)
    m.backward()
    optimisers[name].step()


lengths = (10, 20, 40, 70, 100)
step_ms = {name: [] for name in models}
print(f"{'length':>6} {'GRU + Bahdanau (ms)':>20} {'Transformer (ms)':>17} {'ratio':>6}")
for L in lengths:
    examples = make_task("copy", 16, seed=L, min_len=L, max_len=L)
    vocab = Vocab.build([eg.src for eg in examples])
    batch = pad_batch([(vocab.encode(eg.src), vocab.encode(eg.tgt)) for eg in examples],
                      pad_id=Vocab.pad_id, sos_id=Vocab.sos_id, eos_id=Vocab.eos_id)
    samples = {name: [] for name in models}
    for rep in range(4):  # round 0 warms up; the models take turns
        for name in models:
            start = time.perf_counter()
            train_step(name, batch)
            if rep:
                samples[name].append(1e3 * (time.perf_counter() - start))
    for name in models:
        step_ms[name].append(np.median(samples[name]))
    r, t = step_ms["GRU + Bahdanau"][-1], step_ms["Transformer"][-1]
    print(f"{L:6d} {r:20.1f} {t:17.1f} {r / t:6.2f}")
print("the faster step at each length:",
      {L: min(models, key=lambda name: step_ms[name][i]) for i, L in enumerate(lengths)})
print(f"time at T = {lengths[-1]} / time at T = {lengths[0]}:",
      ", ".join(f"{name} {ms[-1] / ms[0]:.1f}×" for name, ms in step_ms.items()))

# %%
fig, axes = plt.subplots(1, 2, figsize=(11, 4), layout="constrained")
for name, marker in zip(models, "os"):
    ms = np.array(step_ms[name])
    axes[0].plot(lengths, ms, marker=marker, label=name)
    axes[1].plot(lengths, ms / np.array(lengths), marker=marker, label=name)
axes[0].set_ylabel("time per training step (ms)")
axes[0].set_title("One step: forward, backward, Adam (batch 16, one core)")
axes[1].set_ylabel("time per step / length (ms per position)")
axes[1].set_title("The same, per position")
for ax in axes:
    ax.set_xlabel("sequence length T (source = target)")
    ax.set_xticks(lengths)
    ax.set_ylim(bottom=0)
    ax.legend()
plt.show()

# %% [markdown]
# What the stored run shows (the printed lines above): the Transformer's step was the faster at
# every length, by a larger margin at the long lengths than at the short ones. Neither model's time is proportional to
# $T$: both grew more than tenfold from $T = 10$ to $T = 100$ (the last printed line), the
# recurrent model's by more, and the right-hand panel, time per position, ends higher than it
# starts for both. The recurrent model's because Bahdanau's decoder scores every source
# position at each of its steps ($T \cdot S$ scores, $S$ at a time), on top of its $3T$ loop
# steps; the Transformer's because its attention matrices are $T \times T$, while its
# projections and feed-forward networks grow as $T$.
#
# So what did we measure of 无法平行化处理? Not parallelism: on one core neither model computes
# two things at once. We measured the shape of the work. The Transformer's step is a fixed,
# short list of large matrix products over all $B \cdot T$ positions, with no loop over the
# positions; the recurrent model's is $T$ small steps that must run one after another, each
# paying Python's and NumPy's per-call costs for products too small to keep the core busy. On a
# GPU the shape is what decides: the Transformer's large products spread over thousands of
# cores, while the RNN's step $t$ cannot start before step $t - 1$ ends, however many cores
# there are. Here, on the CPU, the gap is the smaller one these timings print.
#
# ## 7. "Attention ignores the relations within a sentence", on real sentences
#
# Document 003 names a second weakness of the attention models of lessons 05–07: 「context vector
# 计算的是输入句、目标句间的关联，却忽略了输入句中文字间的关联，和目标句中文字间的关联性」 (the context
# vector relates the input sentence to the target sentence, but ignores the relations between
# the words within the input sentence, and within the target sentence). Bahdanau's weights
# $\alpha_{ij}$ form a target × source matrix: each output word against each source word. A
# Transformer encoder layer's self-attention forms a source × source matrix per head: each
# source word's new vector is a weighted sum over all the words of its own sentence
# (`docs/equations.md` §7.1).
#
# We look at both on real sentences: the Tatoeba English → Chinese pairs of lesson 11 with at
# most 8 tokens a side, split by source sentence (no test sentence occurs in training). Two
# small models, each trained for less than a minute on one core: a Transformer shaped like
# section 6's (D = 64, 4 heads, two encoder and two decoder layers) with d_ff = 128 and
# dropout 0.1, 6 epochs with the warm-up and linear decay of section 3 (peak 0.003); and a
# smaller version of lesson 11's model, E = H = 64 (a bidirectional GRU encoder, Bahdanau
# attention), 3 epochs of Adam at 0.003. The corpus is not part of the
# repository: this section runs when it is stored (`tinyattn data fetch cmn-eng`, or a folder
# named by `TINYATTN_DATA`) and says so and skips otherwise.

# %%
from tinyattn.cli.dataspec import DataSpec, load_examples
from tinyattn.cli.evaluation import evaluate_examples, teacher_forced
from tinyattn.cli.run import Run
from tinyattn.data import locate
from tinyattn.plot import plot_alignment

have_corpus = locate("cmn-eng") is not None
if not have_corpus:
    print("the cmn-eng corpus is not stored here: `tinyattn data fetch cmn-eng` (or set "
          "TINYATTN_DATA) and run this section again; it is skipped")
else:
    spec = DataSpec("cmn-eng", max_len=8)
    zh_splits, _ = load_examples(spec, progress=False)
    zh_test = zh_splits["test"]
    zh_src = Vocab.build([e.src for e in zh_splits["train"]])
    zh_tgt = Vocab.build([e.tgt for e in zh_splits["train"]])
    zh_train = encode_pairs(zh_splits["train"], zh_src, zh_tgt)
    zh_run = Run(directory=None, data=spec, model_options={}, src_vocab=zh_src,
                 tgt_vocab=zh_tgt, train_options={"max_decode_len": 2 * max(
                     len(e.tgt) for e in zh_splits["train"]) + 5})
    print(f"{len(zh_train)} training pairs, {len(zh_test)} test pairs; vocabularies "
          f"{len(zh_src)} English words -> {len(zh_tgt)} Chinese characters")


def train_zh(model, opt, epochs, schedule=None):
    """Train on the cmn-eng pairs as the command line does; print the loss by epoch."""
    trainer = ta.Trainer(model, opt, schedule=schedule, pad_id=Vocab.pad_id,
                         sos_id=Vocab.sos_id, eos_id=Vocab.eos_id, batch_size=64, clip=5.0,
                         rng=np.random.default_rng(0), show_progress=False)
    start = time.perf_counter()
    trainer.fit(zh_train, epochs=epochs, on_epoch=lambda r: print(
        f"  epoch {r.epoch}: train loss {r.train_loss:.3f}"))
    seconds = time.perf_counter() - start
    scores = evaluate_examples(model, zh_run, zh_test)
    print(f"  {seconds:.0f} s of training; test BLEU {scores['bleu']:.2f} (all references), "
          f"{scores['bleu_single_ref']:.2f} (one)\n  {scores['bleu_signature']}")
    return model


# %%
if have_corpus:
    zh_transformer = ta.Transformer(len(zh_src), len(zh_tgt), d_model=64, num_heads=4,
                                    d_ff=128, num_encoder_layers=2, num_decoder_layers=2,
                                    dropout=0.1, pad_id=Vocab.pad_id,
                                    rng=np.random.default_rng(0), dtype=np.float32)
    zh_opt = ta.Adam(zh_transformer.named_parameters(), betas=(0.9, 0.98))
    zh_steps = 6 * -(-len(zh_train) // 64)  # 6 epochs of batches of 64
    print(f"Transformer, {zh_transformer.num_parameters():,} parameters")
    train_zh(zh_transformer, zh_opt, 6, ta.WarmupLinear(zh_opt, peak=0.003, warmup=300,
                                                       total=zh_steps))

# %%
if have_corpus:
    zh_rnn = ta.Seq2Seq(len(zh_src), len(zh_tgt), emb_size=64, hidden_size=64,
                        attention="bahdanau", pad_id=Vocab.pad_id,
                        rng=np.random.default_rng(0), dtype=np.float32)
    print(f"GRU + Bahdanau, {zh_rnn.num_parameters():,} parameters")
    train_zh(zh_rnn, ta.Adam(zh_rnn.named_parameters(), lr=0.003), 3)

# %% [markdown]
# One held-out sentence, both models fed its reference translation (teacher forcing, as
# `tinyattn plot` does): first what Bahdanau's attention relates, each Chinese character of
# the reference to the English words; then what the Transformer's encoder relates, each English
# word to the English words, every layer and head.

# %%
if have_corpus:
    want = "my father is fifty years old .".split()
    zh_k = next((i for i, e in enumerate(zh_test) if list(e.src) == want), 0)
    zh_eg = zh_test[zh_k]
    print(f'test pair {zh_k}: "{" ".join(zh_eg.src)}" -> {"".join(zh_eg.tgt)}')
    (alpha,), _ = teacher_forced(zh_rnn, zh_run, [zh_eg.src], [zh_eg.tgt])
    fig, ax = plt.subplots(figsize=(4.8, 4.6), layout="constrained")
    plot_alignment(alpha, zh_eg.src, list(zh_eg.tgt) + ["<eos>"], ax=ax,
                   title="GRU + Bahdanau: target × source")
    plt.show()

    zh_transformer.eval()
    one_ids, one_len = pad_ids([zh_src.encode(zh_eg.src)], Vocab.pad_id)
    zh_transformer.encode(one_ids, one_len)  # every encoder layer keeps its weights (B, n, S, S)
    S = len(zh_eg.src)
    grid = np.stack([layer.attn_weights[0, :, :S, :S] for layer in zh_transformer.encoder])
    plot_heads(grid, zh_eg.src, zh_eg.src, axis_labels=("key", "query"),
               layer_names=[f"encoder layer {l}" for l in range(len(zh_transformer.encoder))],
               title=f'Transformer encoder self-attention: source × source, "{" ".join(zh_eg.src)}"')
    plt.show()

# %% [markdown]
# **Read the two pictures.** Bahdanau's weights (the model fed the reference 我父亲五十岁了。)
# relate each character to English words: 父 to "father", 五 and 十 mostly to "years" with
# some weight on "fifty", 岁 and the characters after it to "old"; 我 is split between "my" and
# "father". Nothing in that matrix says how "is" relates to "father", or "fifty" to "years":
# the source words meet only through the bidirectional GRU's states, where no weight shows it.
# The encoder's heads draw exactly those relations, one English word against another, and each
# head draws different ones. In layer 0, head 2, "is" puts most of its weight on "father" (the
# verb reads its subject) and "my" on "is"; head 3 of the same layer sends "years" to "father";
# head 1 sends "is", "fifty", "old" and "." to "years". In layer 1, head 1, "is" reads "fifty"
# and "years" reads "is"; head 3 gathers most rows on "years". Which of these relations help
# the translation is our reading, not something the pictures prove: nothing in the loss asked
# for any of them, and lesson 14 showed that the heads' order is arbitrary.
#
# Are such weights focused, and on whom? Over all test sentences, for every real source word
# (a query row) of every head: the largest weight in its row, against $1/S$ for a head that
# spreads evenly over the $S$ words of the sentence; and how often that largest weight falls on
# another word than the query itself, against $1 - 1/S$ if the peak fell anywhere at random.

# %%
if have_corpus:
    zh_ids, zh_lens = pad_ids([zh_src.encode(e.src) for e in zh_test], Vocab.pad_id)
    zh_transformer.encode(zh_ids, zh_lens)
    lengths_zh = np.array([len(e.src) for e in zh_test])
    positions = np.arange(zh_ids.shape[1])
    real = positions[None, :] < lengths_zh[:, None]  # (B, S) real words
    even = np.repeat(1.0 / lengths_zh, lengths_zh).mean()  # 1/S, averaged over the query rows
    print(f"{'':18}{'peak weight':>12}{'1/S':>7}{'peak on another word':>22}{'1 - 1/S':>9}")
    for l, layer in enumerate(zh_transformer.encoder):
        for h in range(layer.attn_weights.shape[1]):
            w = layer.attn_weights[:, h]  # (B, S, S): 0 at pad keys, pad query rows are 0
            peak, where = w.max(axis=-1)[real], w.argmax(axis=-1)
            other = (where != positions[None, :])[real]
            print(f"encoder {l}, head {h}{peak.mean():12.2f}{even:7.2f}"
                  f"{other.mean():22.1%}{1 - even:9.1%}")

# %% [markdown]
# The heads are focused: the mean largest weight of a row is between 0.38 and 0.48 for every
# head, more than twice the 0.18 of a head spreading evenly. And the largest weight falls on
# another word than the query between 75.1 % and 85.8 % of the time, around the 82.4 % of a
# peak placed at random: no head prefers the word itself, none avoids it. So a word's new
# vector is mostly built from the other words of its sentence, chosen by what they are rather
# than where they are, which is the within-sentence relation the document says attention
# lacked. (Both models are small and trained for less than a minute here: test BLEU 17.89 for
# the Transformer and 15.40 for the recurrent model, all references; lesson 11's larger
# recurrent model, trained twice as long, does better. The same pictures for a run of the command
# line: `tinyattn train cmn-eng --arch transformer --out runs/zh`, then
# `tinyattn plot runs/zh --heads --self`.)
#
# ## 8. What next: the same model in PyTorch
#
# A GPU runs the Transformer's large products in parallel; NumPy does not use one. The library
# hands a trained model over: `tinyattn.interop.to_torch(model)` returns a `TorchTransformer`
# built from PyTorch's own `nn.TransformerEncoderLayer` and `nn.TransformerDecoderLayer`, with
# the same weights and the same call, `twin(src, src_lengths, tgt_in, tgt_out, tgt_lengths)` →
# the loss; autograd then gives the gradients that tinyattn's backward passes compute by hand.
# Our dates model on 256 test dates, two steps of PyTorch's own Adam, and back with
# `from_torch`:

# %%
import torch

from tinyattn.interop import from_torch, to_torch

torch.set_num_threads(1)  # one core, as everywhere in this notebook
twin = to_torch(model).eval()
small = pad_batch(encode_pairs(test[:256], src_vocab, tgt_vocab), pad_id=Vocab.pad_id,
                  sos_id=Vocab.sos_id, eos_id=Vocab.eos_id)
with torch.no_grad():
    ours, theirs = model.eval()(*small), twin(*small).item()
print(f"loss: tinyattn {ours:.6f}, PyTorch {theirs:.6f} (difference {abs(ours - theirs):.1e})")

torch_opt = torch.optim.Adam(twin.parameters(), lr=1e-4, betas=(0.9, 0.98))
twin.train()
for step in range(2):
    torch_opt.zero_grad()
    loss = twin(*small)
    loss.backward()
    torch_opt.step()
    print(f"PyTorch step {step + 1}: loss before it {loss.item():.6f}")
back = from_torch(twin.eval())
with torch.no_grad():
    print(f"after two steps: PyTorch {twin(*small).item():.6f}, "
          f"back in tinyattn {back.eval()(*small):.6f} ({type(back).__name__})")
(hyp,) = back.greedy_decode(src_ids[:1], src_lens[:1], max_len=15, sos_id=Vocab.sos_id,
                            eos_id=Vocab.eos_id)
print(f'back in tinyattn, decoding {"".join(test[0].src)!r}: {"".join(tgt_vocab.decode(hyp.tokens))}')

# %% [markdown]
# The two losses agree to the printed digits (float32 in both: the same weights, PyTorch's own
# layers and autograd instead of tinyattn's hand-written backward passes). Two steps of
# `torch.optim.Adam` lower the loss on this batch, and `from_torch` returns a
# `tinyattn.Transformer` carrying PyTorch's new weights: the same loss again, and it decodes a
# date. From there `twin.to("cuda")` would move the model to a GPU (this machine has none, and
# nothing here measures one). README's section "Moving a model to PyTorch" trains a model for
# two more epochs in PyTorch and brings it back; `tinyattn/torch_transformer.py` is the model,
# whose losses and gradients `tests/test_torch_transformer.py` checks against tinyattn's.
#
# **To remember.** At inference a Transformer decoder keeps, per layer, the keys and values of
# the positions it has produced (§7.2): step $t$ appends one key and one value and computes one
# query row, and equals the teacher-forced forward to rounding; recomputing the prefix instead
# costs $n(n+1)/2$ positions for $n$ tokens. The Noam rate, $\text{factor} \cdot D^{-1/2}
# \min(s^{-1/2}, s \cdot \text{warmup}^{-3/2})$, peaks at $\text{factor} \cdot (D \cdot
# \text{warmup})^{-1/2}$ and then falls slowly; a linear decay to almost 0 ends the run with
# small steps (§9.7). Label smoothing is a train-mode loss whose floor is the entropy of $q$:
# compare models in eval mode. A small Transformer learns dates in seconds, and its
# cross-attention heads align without being asked, each imperfectly, their average better.
# On one core "parallel" means nothing; what the Transformer removes is the loop over the
# positions, which is what a GPU needs.
#
# **Try it yourself.** Train the dates model with `NoamSchedule` at the same peak (section 3)
# and compare the exact match; then with `label_smoothing=0.1`, and compare its train-mode and
# eval-mode losses. Decode with `model.beam_search` and check that its caches are reordered with
# the beams (lesson 09): does a beam of 4 fix any of the wrong dates? Time one decoder step of
# the cached decoder at $t = 10$ and $t = 100$: where does its cost start to grow? Re-run
# section 6 with `Seq2Seq(..., attention=None)`: how much of the recurrent model's time is its
# attention?
#
# **The end of the course.** From the RNN step and its gradient check (lesson 00) to a
# Transformer trained, decoded with a cache and handed to PyTorch, every equation of
# `docs/equations.md` has been computed by hand and checked against the library. The papers
# cited along the way (`docs/sources.md`) are the next reading.
