# Lesson 03 source, in the percent format of lessons/build.py (no solution blocks).
# Built and executed by lessons/build.py into lessons/03_bidirectional.ipynb.

# %% [markdown]
# # Lesson 03 — The bidirectional encoder
#
# **Goal.** A recurrent encoder that reads left to right knows, at each word, only what came
# before it. Often the meaning of a word is settled by what comes *after*. A bidirectional
# encoder (双向循环神经网络) runs a second RNN right to left and joins the two states at every
# position. In this lesson you will
#
# 1. write out the equations, and correct what document 000 says about them;
# 2. reproduce document 003's 苹果 example: compare a forward RNN's state at 苹果 in
#    "我喜欢苹果，因为它很好吃" and "我喜欢苹果，因为他比安卓稳定", and the backward direction's;
# 3. see what a naive `np.flip` gets wrong when a batch is padded, with the numbers;
# 4. write the encoder yourself, reversing each sequence *within its own length* (exercise
#    `bidirectional_encode`, graded), and only then compare with the library's `Bidirectional`;
# 5. gradient-check the bidirectional layer;
# 6. train two small taggers on dates, forward-only and bidirectional, and measure what the
#    future is worth: a forward-only tagger has a hard ceiling that no training can lift.
# 7. stack two layers by hand, one reading the other's outputs, and check `StackedRNN` against it
#    (`docs/equations.md` §3.1).
#
# **Sources.** `docs/equations.md` §3. Document 003 (`docs/sources.md`, "从 Seq2seq 到 Attention
# 模型到 Self Attention（一）"), the end of its "Attention model" section: the attention model's
# encoder is a bidirectional RNN, because a one-way RNN at time t can only use earlier information,
# while a prediction sometimes needs later information too; one hidden layer reads left to right,
# the other right to left; and the 苹果 example. Document 000 (`docs/sources.md`), its "Encoder模块"
# section, describes the same encoder with some errors (section 1). Papers: M. Schuster and
# K. K. Paliwal, *Bidirectional Recurrent Neural Networks*, IEEE Trans. Signal Processing 45(11),
# 1997 (the idea); D. Bahdanau, K. Cho, Y. Bengio, *Neural Machine Translation by Jointly Learning
# to Align and Translate*, ICLR 2015 (arXiv:1409.0473), §3.2 (its use as the encoder of an
# attention model: the annotations $h_j$ of lesson 05).
#
# The whole notebook runs in well under a minute on two CPU cores.

# %%
from collections import Counter, defaultdict

import matplotlib.pyplot as plt
import numpy as np

import tinyattn as ta
import tinyattn.exercises as ex
from tinyattn.training.batching import pad_ids
from tinyattn.data import Vocab, make_splits, tokenize
from tinyattn.plot.figures import setup_fonts
from tinyattn.gradcheck import TOL_LAYER, check_module
from tinyattn.losses import sequence_cross_entropy

np.set_printoptions(precision=3, suppress=True)
_ = setup_fonts()  # a CJK font as fallback, so Chinese tick labels render

# %% [markdown]
# ## 1. The equations
#
# Source positions $j = 1..S$. Two RNNs of the same kind and size $H$ (here GRUs, lesson 02), each
# with **its own weights**, read the embedded source $x_1 .. x_S$ in opposite directions:
#
# $$\overrightarrow{h}_j = f(x_j, \overrightarrow{h}_{j-1}), \qquad
# \overleftarrow{h}_j = f'(x_j, \overleftarrow{h}_{j+1}), \qquad
# h_j = [\overrightarrow{h}_j ; \overleftarrow{h}_j]$$
#
# $\overrightarrow{h}_j$ summarises $x_1 .. x_j$ (the past and the word itself),
# $\overleftarrow{h}_j$ summarises $x_j .. x_S$ (the word and the future); their concatenation
# $h_j$, of size $2H$, is what Bahdanau et al. call the **annotation** of position $j$, and what the
# attention of lesson 05 averages. Each direction starts from its own initial state (zeros by
# default): $\overrightarrow{h}_0$ before $x_1$, $\overleftarrow{h}_{S+1}$ after $x_S$.
#
# | maths | meaning | in the code | shape |
# |---|---|---|---|
# | $x_j$ | embedding of source token $j$ | `x[:, j]` | (B, S, E) for all $j$ |
# | $\overrightarrow{h}_j$ | forward state, has read $x_1..x_j$ | `hs[:, j, :H]` | (B, S, H) |
# | $\overleftarrow{h}_j$ | backward state, has read $x_S..x_j$ | `hs[:, j, H:]` | (B, S, H) |
# | $h_j$ | annotation | `hs[:, j]` | (B, S, 2H) |
# | $f$, $f'$ | the two RNNs (same class and size, separate weights) | `gru_fwd`, `gru_bwd` | `W_x (E, 3H)`, `W_h (H, 3H)` each |
# | final state | $[\overrightarrow{h}_S ; \overleftarrow{h}_1]$ | `h_last` | (B, 2H) |
#
# The final state pairs the forward state at the *last* token with the backward state at the
# *first* token: those are the two states that have read the whole sentence. (Bahdanau et al.
# start their decoder from $\overleftarrow{h}_1$.)
#
# **Corrections to document 000** (`docs/sources.md`). Its "Encoder模块" section says the
# left and right RNNs get initial states computed from `<SOS>`/`<EOS>` and the first/last word,
# and that at every step the latest states of the two are *merged* to start the next step. In the
# standard bidirectional encoder neither happens: the two directions never see each other's states
# and are joined only at the end, position by position (section 5 checks this on the library).
# Its "Decoder模块" section calls the decoder bidirectional too. It cannot be: the decoder writes
# the output left to right and has no future tokens to read. Only the encoder is bidirectional.

# %% [markdown]
# ## 2. 苹果: fruit or phone?
#
# Document 003's example: in "我喜欢苹果，因为它很好吃" ("I like apples, because they taste good")
# and "我喜欢苹果，因为他比安卓稳定" ("I like Apple, because it is more stable than Android"), if you
# only read "我喜欢苹果" you cannot tell whether 苹果 is the fruit or the phone; the rest of the
# sentence decides.
#
# We tokenise both with the library's Chinese tokeniser (one token per character, so the word
# 苹果 is the two tokens 苹 and 果), build a vocabulary, and embed them with random weights
# (E = 8). Nothing is trained in this section: the argument is about *what each state can depend
# on*, which holds for any weights.

# %%
apple_fruit = "我喜欢苹果，因为它很好吃"
apple_phone = "我喜欢苹果，因为他比安卓稳定"
tok_fruit, tok_phone = tokenize(apple_fruit, "zh"), tokenize(apple_phone, "zh")
print(tok_fruit, len(tok_fruit))
print(tok_phone, len(tok_phone))

vocab = Vocab.build([tok_fruit, tok_phone])
shared = 8  # both sentences start with the same 8 tokens: 我 喜 欢 苹 果 ， 因 为
assert tok_fruit[:shared] == tok_phone[:shared] and tok_fruit[shared] != tok_phone[shared]
j_ping, j_guo = tok_fruit.index("苹"), tok_fruit.index("果")  # positions 3 and 4 (from 0)

E, H = 8, 6
rng = np.random.default_rng(0)
emb = ta.Embedding(len(vocab), E, rng=rng, pad_id=Vocab.pad_id)
gru_fwd = ta.GRU(E, H, rng=rng)  # float64 by default
gru_bwd = ta.GRU(E, H, rng=rng)
x_fruit = emb(np.array([vocab.encode(tok_fruit)]))  # (1, 12, E)
x_phone = emb(np.array([vocab.encode(tok_phone)]))  # (1, 14, E)
assert x_fruit.shape == (1, 12, E) and x_phone.shape == (1, 14, E)

# %% [markdown]
# **A forward RNN alone.** Run the forward GRU on each sentence (one sentence per call) and
# compare its state at 果, the end of the word 苹果.
#
# **Predict.** The two sentences differ from their 9th token on (它 against 他). How far apart
# will the forward states at 果 (the 5th token) be: about as far as two random states, a little,
# or not at all? Decide, then run the cell.

# %%
hs_fruit, _ = gru_fwd(x_fruit)  # (1, 12, H)
hs_phone, _ = gru_fwd(x_phone)  # (1, 14, H)
print("forward state at 果, fruit sentence:", hs_fruit[0, j_guo])
print("forward state at 果, phone sentence:", hs_phone[0, j_guo])
assert np.array_equal(hs_fruit[0, :shared], hs_phone[0, :shared])  # bit for bit, not "close"

# %% [markdown]
# Identical, to the last bit, at every position of the shared prefix 我喜欢苹果，因为: the two
# computations are the same arithmetic on the same numbers up to 为. That is not a
# property of these random weights: $\overrightarrow{h}_j$ is a function of $x_1 .. x_j$ only, and
# those are the same tokens. So **any** classifier that reads only the forward state at 苹果 gives
# the same answer for both sentences, and is wrong on one of them, however well it is trained.
#
# **Adding the backward direction.** For *one* sentence, unpadded, the backward direction is easy:
# reverse the sentence, run the second GRU on it, and reverse its outputs back, so that position
# $j$ holds $\overleftarrow{h}_j$, the state after reading $x_S .. x_j$. (A padded batch is
# another matter: section 3.)

# %%
def bidirectional_one(x):
    """Annotations (1, S, 2H) and final state (1, 2H) of ONE unpadded sentence x (1, S, E)."""
    hs_f, last_f = gru_fwd(x)  # →h_1 .. →h_S
    hs_b, last_b = gru_bwd(x[:, ::-1].copy())  # reads x_S first: its output p is ←h_{S-p}
    return (np.concatenate([hs_f, hs_b[:, ::-1]], axis=2),  # back in sentence order
            np.concatenate([last_f, last_b], axis=1))  # [→h_S ; ←h_1]


ann_fruit, final_fruit = bidirectional_one(x_fruit)  # (1, 12, 2H), (1, 2H)
ann_phone, final_phone = bidirectional_one(x_phone)  # (1, 14, 2H), (1, 2H)
assert ann_fruit.shape == (1, 12, 2 * H) and final_fruit.shape == (1, 2 * H)
assert np.array_equal(ann_fruit[..., :H], hs_fruit)  # forward half = the forward GRU alone
# final state = [forward state at the last token ; backward state at the first token]
assert np.array_equal(final_fruit, np.concatenate([ann_fruit[0, -1, :H], ann_fruit[0, 0, H:]])[None])

for j in (j_ping, j_guo):
    d_fwd = np.abs(ann_fruit[0, j, :H] - ann_phone[0, j, :H]).max()
    d_bwd = np.abs(ann_fruit[0, j, H:] - ann_phone[0, j, H:]).max()
    print(f"at {tok_fruit[j]}: max |difference| forward half {d_fwd:.3g}, backward half {d_bwd:.3g}")
    assert d_fwd == 0.0 and d_bwd > 0.0

# %% [markdown]
# The annotation $h_j = [\overrightarrow{h}_j ; \overleftarrow{h}_j]$ at 苹 and at 果 differs between
# the two sentences, and all of the difference sits in the backward half: $\overleftarrow{h}_j$ has
# read 它很好吃 in one sentence and 他比安卓稳定 in the other. The information needed to tell fruit
# from phone is now *in* the annotation; a trained model can learn to use it (with random
# weights, nothing says which is which).
#
# The figure shows, per position of the shared prefix and per hidden unit, how much the two
# sentences' states differ, for each half.

# %%
diff_fwd = np.abs(ann_fruit[0, :shared, :H] - ann_phone[0, :shared, :H]).T  # (H, 8)
diff_bwd = np.abs(ann_fruit[0, :shared, H:] - ann_phone[0, :shared, H:]).T  # (H, 8)
vmax = diff_bwd.max()
fig, axes = plt.subplots(1, 2, figsize=(9, 3.2), sharey=True, layout="constrained")
for ax, d, name in zip(axes, (diff_fwd, diff_bwd), ("forward half →h_j", "backward half ←h_j")):
    im = ax.imshow(d, cmap="magma", vmin=0.0, vmax=vmax, aspect="auto")
    ax.set_xticks(range(shared), tok_fruit[:shared], fontsize=12)
    ax.set_xlabel("position j (the shared prefix)")
    ax.set_title(f"{name}: max {d.max():.3g}")
axes[0].set_yticks(range(H))
axes[0].set_ylabel("hidden unit")
fig.colorbar(im, ax=axes, label="|fruit − phone|")
fig.suptitle("我喜欢苹果，因为它很好吃  vs  我喜欢苹果，因为他比安卓稳定 (random weights)")
plt.show()

# %% [markdown]
# The left panel is exactly zero everywhere. The right panel is not, and it fades from right to
# left: the backward state at 为, right next to where the sentences part, differs most; at 我,
# seven shared tokens further on, the difference has shrunk (these are
# untrained weights, whose GRU slowly forgets; a trained encoder may keep more). This is the
# "focus" Bahdanau et al. (§3.2) describe: because RNNs represent recent inputs best, the
# annotation $h_j$ is mostly about the words around $x_j$.

# %% [markdown]
# ## 3. Reversal under padding
#
# To train on batches, sentences of different lengths are padded to the longest one. Put our two
# sentences in one batch: the fruit sentence (12 tokens) gets 2 pads, `<pad>` = id 0, whose
# embedding row is kept at zero.

# %%
ids, lengths = pad_ids([vocab.encode(tok_fruit), vocab.encode(tok_phone)], Vocab.pad_id)
x = emb(ids)  # (2, 14, E)
B, T = ids.shape
print("ids:\n", ids)
print("lengths:", lengths)
assert (B, T) == (2, 14) and x.shape == (B, T, E) and not x[0, 12:].any()

# %% [markdown]
# **The naive reversal.** `np.flip(x, axis=1)` reverses the whole padded row. For the fruit
# sentence the backward GRU then reads:

# %%
print("np.flip reads:", " ".join(vocab.decode(np.flip(ids, axis=1)[0], strip_special=False)))

# %% [markdown]
# (`strip_special=False` makes `decode` show the `<pad>` tokens instead of dropping them.) The
# backward RNN reads two pads *first*.
#
# **Predict.** A pad's embedding is a zero vector. Does reading two zero vectors first change the
# backward states of the fruit sentence at all? And if we also pass `lengths`, so that the layer
# stops after each sentence's 12 or 14 steps, which positions come out wrong? Then run the cell:
# it computes $\overleftarrow{h}_j$ of the fruit sentence with `np.flip`, without and with
# `lengths`, and compares it with the truth, the sentence run alone (section 2).

# %%
truth = ann_fruit[0, :, H:]  # (12, H): ←h_j of the fruit sentence run alone, unpadded

# flipped position p holds original position 13 - p, so flipping the outputs back puts
# ←h_j at index j again; the fruit sentence's real tokens are j = 0..11
naive, _ = gru_bwd(np.flip(x, axis=1).copy())  # pads first, no lengths
naive = naive[0, ::-1][:12]
naive_len, _ = gru_bwd(np.flip(x, axis=1).copy(), None, lengths)  # pads first, with lengths
naive_len = naive_len[0, ::-1][:12]
errors = {"np.flip, no lengths": np.abs(naive - truth).max(axis=1),
          "np.flip, with lengths": np.abs(naive_len - truth).max(axis=1)}


def error_table(rows):
    print("max |error| of ←h_j per position j of the fruit sentence:")
    print("                       " + "".join(f"{t:>7}" for t in tok_fruit))
    for name, err in rows.items():
        print(f"{name:22} " + "".join(f"{e:8.0e}" if e else "       0" for e in err))


error_table(errors)
assert errors["np.flip, no lengths"].min() > 0 and not naive_len[:2].any()

# %% [markdown]
# Read the rows from the right, the order in which the backward GRU reads. **Without lengths**, the
# two pads come first and shift the state: a zero embedding is not "nothing" to a GRU, its biases
# still move the state. The error is largest at 吃, the first real token read after the pads, and
# fades as real tokens wash the pads out (with these random weights the GRU forgets quickly; the
# error never reaches 0). **With lengths**, the layer stops after 12 steps of the flipped row, so
# 喜 and 我 are never read: their "states" come out as pad outputs, 0, wrong by the size of the
# states themselves (the errors 4e-01 and 6e-01 in the first two columns), and the other states
# carry the same error as without lengths.
#
# ## 4. Your turn: `bidirectional_encode`
#
# Write the bidirectional encoder of a padded batch from two GRU layers. The forward layer runs on
# `x` as it is; the backward layer must read each sequence **reversed within its own length**,
# with the pads left where they are (after the real tokens), and its outputs must be put back in
# sentence order the same way. With positions from 0 (`docs/equations.md` §3, "Padding"):
#
# $$\text{idx}[b, t] = L_b - 1 - t \ \text{ for } t < L_b, \qquad \text{idx}[b, t] = t \ \text{ for a pad},$$
#
# and `np.take_along_axis(a, idx[:, :, None], axis=1)` gathers `a (B, T, ·)` in that order.
# Return `hs (B, T, 2H)` $= [\overrightarrow{h}_j ; \overleftarrow{h}_j]$ and the final state
# `h_last (B, 2H)` $= [\overrightarrow{h}_{L_b} ; \overleftarrow{h}_1]$. Each layer, called as
# `fwd(x, None, lengths)`, returns `(hs (B, T, H), h_last (B, H))`, and with `lengths` it keeps
# its state after the last real token and outputs 0 at the pads (`docs/equations.md` §1.5).
# Think about where each direction *ends*: that is the state its `h_last` holds.
#
# `ex.check("bidirectional_encode", fn)` runs your function and the library's on a padded batch
# (lengths 5, 3, 1) and on an unpadded one, compares both outputs, and names the mistake when one
# is recognised. First, what it says about the naive version above:

# %%
def encode_with_flip(x, lengths, fwd, bwd):
    hs_f, last_f = fwd(x, None, lengths)
    hs_b, last_b = bwd(np.flip(x, axis=1).copy(), None, lengths)  # BUG: pads read first
    return (np.concatenate([hs_f, np.flip(hs_b, axis=1)], axis=2),
            np.concatenate([last_f, last_b], axis=1))


flipped = ex.check("bidirectional_encode", encode_with_flip)
assert flipped.status == "failed"

# %% [markdown]
# Right on the unpadded batch, wrong on the padded one: `np.flip` is the right reversal exactly
# when there are no pads, which is why a test on equal-length sentences never catches it. Now
# yours: replace the `raise` line, then run the cell after it.

# %%
def my_bidirectional_encode(x, lengths, fwd, bwd):
    """A bidirectional encoder from two GRU layers, on a padded batch.

    x (B, T, D), pads past ``lengths[b]``; ``fwd(x, None, lengths)`` returns
    ``(hs (B, T, H), h_last (B, H))`` and so does ``bwd``.
    Returns ``hs (B, T, 2H) = [→h_j ; ←h_j]`` and ``h_last (B, 2H) = [→h_L ; ←h_1]``.
    """
    # BEGIN SOLUTION
    T = x.shape[1]
    t = np.arange(T)[None, :]  # (1, T)
    idx = np.where(t < lengths[:, None], lengths[:, None] - 1 - t, t)  # (B, T)

    def reverse(a):  # within each length; pads stay put; its own inverse
        return np.take_along_axis(a, idx[:, :, None], axis=1)

    fwd_hs, fwd_last = fwd(x, None, lengths)  # fwd_last = →h at each sequence's last real token
    bwd_hs, bwd_last = bwd(reverse(x), None, lengths)  # bwd_last = ←h_1, where it ends
    hs = np.concatenate([fwd_hs, reverse(bwd_hs)], axis=-1)  # (B, T, 2H), sentence order
    h_last = np.concatenate([fwd_last, bwd_last], axis=-1)  # (B, 2H)
    return hs, h_last
    # END SOLUTION

# %%
mine = ex.check("bidirectional_encode", my_bidirectional_encode)
assert mine.status in ("passed", "not implemented"), "read the report above"

# %% [markdown]
# ## 5. The library's `Bidirectional`
#
# `ta.Bidirectional(forward_layer, backward_layer)` is that function as a layer, with a backward.
# Its reversal is `reverse_index` in `tinyattn/bidirectional.py`, the index of section 4; it
# gathers with it before and after the backward layer:

# %%
from tinyattn.bidirectional import reverse_index

bi = ta.Bidirectional(gru_fwd, gru_bwd)  # the same two GRU objects as in section 2
per_seq_idx = reverse_index(lengths, B, T)
print("np.flip reads positions:      ", np.arange(T)[::-1])
print("reverse_index reads positions:", per_seq_idx[0])
print("fruit sentence, per sequence: ", " ".join(vocab.decode(ids[0, per_seq_idx[0]],
                                                            strip_special=False)))
assert np.array_equal(per_seq_idx[1], np.arange(T)[::-1])  # the full-length sentence: same
assert np.array_equal(per_seq_idx[0], [11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0, 12, 13])
assert np.array_equal(np.take_along_axis(per_seq_idx, per_seq_idx, axis=1),
                      np.broadcast_to(np.arange(T), (B, T)))  # applied twice: the identity

hs_batch, final_batch = bi(x, None, lengths)  # (2, 14, 2H), (2, 2H)
errors["library"] = np.abs(hs_batch[0, :12, H:] - truth).max(axis=1)
error_table(errors)
assert np.allclose(hs_batch[0, :12, H:], truth, rtol=1e-12, atol=1e-14)

# %% [markdown]
# The library's padded batch reproduces the sentence run alone, up to rounding: its row is at most
# 1e-16, the size of float64's last bit on numbers of this size.
#
# That is the library's padding contract (`docs/design.md` §3), and we check all of it here: for
# each sentence, the annotations of the padded batch equal those of the sentence run alone
# (section 2's `bidirectional_one`, which needs no padding); the outputs at pads are **exactly**
# 0; and the final state is the forward state at the sentence's own last real token (not at a
# pad) joined with the backward state at its first token.

# %%
for b, (xb, L) in enumerate(zip((x_fruit, x_phone), lengths)):
    hs_alone, final_alone = bidirectional_one(xb)
    assert np.allclose(hs_batch[b, :L], hs_alone[0], rtol=1e-12, atol=1e-14)
    assert np.allclose(final_batch[b], final_alone[0], rtol=1e-12, atol=1e-14)
    assert not hs_batch[b, L:].any()  # exactly 0.0 at every pad, both halves
print("every annotation value at the fruit sentence's two pads == 0.0:",
      bool((hs_batch[0, 12:] == 0.0).all()))
print("final state of the fruit sentence = [→h at 吃 ; ←h at 我]:",
      np.allclose(final_batch[0], np.concatenate([hs_batch[0, 11, :H], hs_batch[0, 0, H:]])))

# %% [markdown]
# **The two directions are independent** (the correction to document 000 in section 1). Change
# every weight of the backward GRU: the forward half does not move.

# %%
other_bwd = ta.GRU(E, H, rng=np.random.default_rng(99))
ann_other, _ = ta.Bidirectional(gru_fwd, other_bwd)(x_fruit)
assert np.array_equal(ann_other[..., :H], ann_fruit[..., :H])
assert not np.allclose(ann_other[..., H:], ann_fruit[..., H:])
print("forward half unchanged when the backward GRU's weights change:",
      np.array_equal(ann_other[..., :H], ann_fruit[..., :H]))

# %% [markdown]
# ## 6. Gradient check
#
# The wrapper's backward is short (`tinyattn/bidirectional.py`): the gradient of the forward half
# goes to the forward layer; the gradient of the backward half is put in reversed order with the
# *same* per-sequence index (reversal is its own inverse), sent through the backward layer, and its
# input gradient reversed back; the input $x_j$ feeds both directions, so its two gradients add.
#
# `check_module` perturbs every entry of the input, of both initial states and of both GRUs'
# parameters, in float64, on a padded batch (lengths 4 and 2). **What to expect:** relative errors
# far below the layer tolerance $10^{-6}$ (`TOL_LAYER`), as in lesson 00; a wrong backward would
# be off by about the size of the gradient itself. Sizes are small and all different (B = 2,
# T = 4, D = 5, H = 6) so that a transposed gradient cannot hide.

# %%
rng_check = np.random.default_rng(1)
bi_check = ta.Bidirectional(ta.GRU(5, 6, rng=rng_check), ta.GRU(5, 6, rng=rng_check))
x_check = rng_check.standard_normal((2, 4, 5))
h0_check = rng_check.standard_normal((2, 12))  # [→h_0 ; ←h_{S+1}]
result = check_module(bi_check, x_check, h0_check, lengths=np.array([4, 2]))
print(result)
print(f"largest relative error: {result.max_error:.2e}")
assert result.passed and result.max_error < TOL_LAYER

# %% [markdown]
# ## 7. What the future is worth: tagging dates
#
# An experiment where the answer at a position depends on what comes later. The library's
# `date-fields` task labels every character of a date string with its field: `Y` year, `M` month,
# `D` day, `W` weekday, `O` anything else. Numbers are ambiguous until you see what follows them:
# the conventions are month/day/year with slashes and day.month.year with dots, so the first
# character of "5/6/84" is a month and the first character of "5.6.84" is a day. A forward-only
# tagger at position 0 has read only "5".
#
# **A ceiling for every forward-only tagger.** Its prediction at position $k$ can only depend on
# the first $k+1$ characters. So on a test set, the best any forward-only tagger can do at $k$ is:
# group the test strings by their first $k+1$ characters, and within each group get the most
# common tag right. We compute that ceiling exactly, from the data alone. It is chosen with
# hindsight (it knows the test tags), so it is an upper bound: no forward-only tagger, however
# trained, can pass it, and one trained on other strings may well stay below it.

# %%
splits = make_splits("date-fields")  # the seeded splits of data/date-fields/*.tsv
train_ex, test_ex = splits["train"][:2000], splits["test"]
for item in splits["train"][:3]:
    print(f'{"".join(item.src)!r:28} {"".join(item.tgt)}')


def forward_ceiling(examples, k):
    """Best accuracy at position k of any tagger that sees only the first k+1 characters."""
    groups = defaultdict(Counter)
    for item in examples:
        if len(item.src) > k:
            groups[item.src[:k + 1]][item.tgt[k]] += 1
    return sum(max(c.values()) for c in groups.values()) / sum(
        sum(c.values()) for c in groups.values())


ceiling = [forward_ceiling(test_ex, k) for k in range(8)]
print("forward-only ceiling by position:", np.round(ceiling, 3))

# %% [markdown]
# From the third character on, the prefix decides the tag in this test set ("5/6", "23." and
# "Tue" leave no doubt), but at the first two characters a forward-only tagger must guess.
#
# **The two taggers.** Embedding (E = 16) → a GRU (H = 32), or a bidirectional GRU (H = 32 per
# direction) → a linear layer to 5 tag scores at every position, trained with the library's
# masked cross-entropy (`sequence_cross_entropy`, pads do not count) and Adam, on the first 2,000
# training strings for 3 epochs, in float32. Batches hold strings of similar length, so there is
# little padding; the bidirectional one still gets ragged batches, and `lengths` keeps its backward
# direction honest (sections 3–5).
#
# **Predict.** Before you run it: where will the forward tagger lose its points, and can it do
# better than the ceiling at positions 0 and 1 (0.79 and 0.93 above) if it trains long enough?
# Where will the bidirectional one lose its points?

# %%
TAGS = ("Y", "M", "D", "W", "O")
char_vocab = Vocab.build([item.src for item in splits["train"]])


def encode(examples):
    return [(char_vocab.encode(item.src), [TAGS.index(t) for t in item.tgt]) for item in examples]


def pad(pairs):
    """(ids (B, T), lengths (B,), tags (B, T), mask (B, T))."""
    ids, lens = pad_ids([p[0] for p in pairs], Vocab.pad_id)
    tags, _ = pad_ids([p[1] for p in pairs], 0)
    return ids, lens, tags, np.arange(ids.shape[1])[None, :] < lens[:, None]


class Tagger(ta.Module):
    """Embedding -> GRU or bidirectional GRU -> Linear, one tag per character."""

    def __init__(self, bidirectional, *, seed, E=16, H=32, dtype=np.float32):
        super().__init__(dtype)
        rng = np.random.default_rng(seed)
        self.emb = ta.Embedding(len(char_vocab), E, rng=rng, pad_id=Vocab.pad_id, dtype=dtype)
        self.rnn = (ta.Bidirectional(ta.GRU(E, H, rng=rng, dtype=dtype),
                                     ta.GRU(E, H, rng=rng, dtype=dtype))
                    if bidirectional else ta.GRU(E, H, rng=rng, dtype=dtype))
        self.out = ta.Linear(self.rnn.hidden_size, len(TAGS), rng=rng, dtype=dtype)

    def forward(self, ids, lengths=None):
        hs, _ = self.rnn(self.emb(ids), None, lengths)  # (B, T, H or 2H)
        return self.out(hs)  # (B, T, 5) tag scores

    def backward(self, dlogits):
        dx, _ = self.rnn.backward(self.out.backward(dlogits))
        self.emb.backward(dx)


train_pairs = sorted(encode(train_ex), key=lambda p: len(p[0]))  # similar lengths together
test_batch = pad(encode(test_ex))


def train(bidirectional, epochs=3, batch_size=32, lr=0.01):
    model = Tagger(bidirectional, seed=0)
    opt = ta.Adam(model.named_parameters(), lr=lr)
    order_rng = np.random.default_rng(0)
    for _ in range(epochs):
        for start in order_rng.permutation(np.arange(0, len(train_pairs), batch_size)):
            ids, lens, tags, mask = pad(train_pairs[start:start + batch_size])
            model.zero_grad()
            loss, dlogits = sequence_cross_entropy(model(ids, lens), tags, mask)
            model.backward(dlogits)
            ta.clip_grad_norm(model, 5.0)
            opt.step()
    ids, lens, tags, mask = test_batch
    correct = (model(ids, lens).argmax(-1) == tags) & mask  # (B, T)
    return model, correct, loss


results = {}
for name, bidir in (("forward GRU", False), ("bidirectional GRU", True)):
    model, correct, last_loss = train(bidir)
    results[name] = (model, correct)
    mask = test_batch[3]
    whole = np.mean([c[m].all() for c, m in zip(correct, mask)])
    print(f"{name:18}: last batch loss {last_loss:.3f}; test: {correct.sum() / mask.sum():.1%} "
          f"of characters, {whole:.1%} of strings fully right")

# %% [markdown]
# Per position, counted from the start of the string, next to the ceiling:

# %%
K = 8
mask = test_batch[3]
short = {"forward GRU": "forward", "bidirectional GRU": "bidir."}
by_pos = {name: correct[:, :K].sum(0) / mask[:, :K].sum(0) for name, (_, correct) in results.items()}
print(f"{'position':>8} " + " ".join(f"{k:>6}" for k in range(K)))
for name, acc in by_pos.items():
    print(f"{short[name]:>8} " + " ".join(f"{a:6.1%}" for a in acc))
print(f"{'ceiling':>8} " + " ".join(f"{c:6.1%}" for c in ceiling))
assert np.all(by_pos["forward GRU"] <= np.array(ceiling) + 1e-12)  # it cannot beat the ceiling
assert by_pos["bidirectional GRU"][0] > ceiling[0] + 0.1

fig, ax = plt.subplots(figsize=(6.5, 3.6), layout="constrained")
ax.plot(range(K), by_pos["forward GRU"], "o-", label="forward GRU")
ax.plot(range(K), by_pos["bidirectional GRU"], "s-", label="bidirectional GRU")
ax.plot(range(K), ceiling, "k--", lw=1, zorder=3, label="ceiling of any forward-only tagger")
ax.set_xlabel("character position in the date string (0 = first)")
ax.set_ylabel("test accuracy of the tag")
ax.set_ylim(0.7, 1.02)
ax.set_title("date-fields: tagging a character needs what comes after it")
ax.legend(loc="lower right")
plt.show()

# %% [markdown]
# **The answer to the prediction.** The forward tagger loses its points at the first positions,
# where the character alone does not say which field it starts, and it cannot beat the
# ceiling: the assert above holds at every position (the dashed line is never crossed). The
# bidirectional tagger, which reads the rest of the string, is well above the ceiling at
# position 0.
#
# Two strings that a forward-only tagger cannot tell apart at their first character:

# %%
def tag_string(model, text):
    return "".join(TAGS[k] for k in model(np.array([char_vocab.encode(list(text))])).argmax(-1)[0])


print(f"{'date':12} {'truth':12} {'forward':12} bidirectional")
for slash, dot, truth_slash, truth_dot in (("5/6/84", "5.6.84", "MODOYY", "DOMOYY"),
                                           ("12/10/1999", "12.10.1999", "MMODDOYYYY",
                                            "DDOMMOYYYY")):
    fwd = [tag_string(results["forward GRU"][0], s) for s in (slash, dot)]
    for s, truth_tags, f in zip((slash, dot), (truth_slash, truth_dot), fwd):
        print(f"{s:12} {truth_tags:12} {f:12} {tag_string(results['bidirectional GRU'][0], s)}")
    n_same = 1 if len(slash) == 6 else 2  # "5" / "12": the prefix before the separator
    assert fwd[0][:n_same] == fwd[1][:n_same]  # same prefix, same forward tags: one is wrong

# what the training strings say about a leading number: the tag of its first character
for number in ("5", "12"):
    n = len(number)
    tags = Counter(item.tgt[0] for item in train_ex
                   if "".join(item.src[:n]) == number and not item.src[n].isdigit())
    print(f'training strings that start with the number "{number}": month {tags["M"]} times, '
          f'day {tags["D"]} times')

# %% [markdown]
# Up to the separator, the forward tagger *must* give the slash and the dot version the same tags,
# so one of each pair is wrong there, whichever it guesses; in this run it guesses month for "5"
# and day for "12". (The last two lines count the 2,000 training strings: the trained forward
# tagger does not simply pick the majority, and it does not matter, as one of each pair is lost
# anyway.) The bidirectional tagger has read the separator and, in this run, tags all four strings right.

# %% [markdown]
# ## 8. Stacking layers
#
# Deep encoders stack recurrent layers (`docs/equations.md` §3.1; Sutskever et al. 2014 use four
# LSTM layers; Luong et al. 2015, §3, attend with the top layer's state): layer $l$ reads, at
# every position, the output of layer $l - 1$, and layer 1 reads the input,
#
# $$h^0_t = x_t, \qquad h^l_t = f_l(h^{l-1}_t, h^l_{t-1}), \quad l = 1..L,$$
#
# each layer with its own weights and its own initial state. The stack's outputs are the top
# layer's $h^L_1..h^L_T$; its final state is every layer's $(h^1_T, \dots, h^L_T)$. (In train mode
# `Seq2Seq(num_layers=L, dropout=p)` also applies inverted dropout to each layer's input above the
# first, §9.6; the stacks here have none.) Two GRU layers by hand, with the GRU step of lesson 02,
# against `tinyattn.stacked.StackedRNN`, on a batch without padding (sizes D = 3, H = 4 then 5):

# %%
from tinyattn.gru import gru_step_forward
from tinyattn.stacked import StackedRNN

rng_st = np.random.default_rng(5)
layer1, layer2 = ta.GRU(3, 4, rng=rng_st), ta.GRU(4, 5, rng=rng_st)
x_st = rng_st.standard_normal((2, 6, 3))


def gru_by_hand(layer, x_seq):
    """All states of one GRU layer over x_seq (B, T, D), from h_0 = 0, step by step."""
    h, out = np.zeros((x_seq.shape[0], layer.hidden_size)), []
    for t in range(x_seq.shape[1]):
        h, _ = gru_step_forward(x_seq[:, t], h, *(layer.params[k] for k in
                                                  ("W_x", "W_h", "b_x", "b_h")))
        out.append(h)
    return np.stack(out, axis=1)


h1_hand = gru_by_hand(layer1, x_st)  # layer 1 reads the input
h2_hand = gru_by_hand(layer2, h1_hand)  # layer 2 reads layer 1's outputs, at every position
stack = StackedRNN([layer1, layer2])
hs_st, final_st = stack(x_st)
assert np.allclose(hs_st, h2_hand)  # the stack's outputs: the top layer's
assert np.allclose(final_st[0], h1_hand[:, -1]) and np.allclose(final_st[1], h2_hand[:, -1])
print("outputs", hs_st.shape, "(the top layer's); final states", [f.shape for f in final_st])

# %% [markdown]
# With bidirectional layers, layer 2 reads layer 1's 2H-wide annotations $[\overrightarrow{h}^1_t ;
# \overleftarrow{h}^1_t]$, so both of its directions see the whole sentence from the first layer
# on. With padding every layer runs with the same lengths (each freezes after the last real token
# and writes 0 at pads, §1.5). The padded batch of sections 3 and 5 (the two 苹果 sentences),
# through two bidirectional layers wired by hand, against the same two layers as one `StackedRNN`:

# %%
bi1 = ta.Bidirectional(ta.GRU(E, H, rng=rng_st), ta.GRU(E, H, rng=rng_st))
bi2 = ta.Bidirectional(ta.GRU(2 * H, H, rng=rng_st), ta.GRU(2 * H, H, rng=rng_st))
ann1, fin1 = bi1(x, None, lengths)  # layer 1: (2, 14, 2H)
ann2, fin2 = bi2(ann1, None, lengths)  # layer 2 reads layer 1's annotations
hs_bi, final_bi = StackedRNN([bi1, bi2])(x, None, lengths)
assert np.allclose(hs_bi, ann2) and np.allclose(final_bi[0], fin1) and np.allclose(final_bi[1], fin2)
assert not hs_bi[0, lengths[0]:].any()  # pads: exactly 0 at the top, as in one layer
print("stacked bidirectional outputs", hs_bi.shape, "; final state per layer",
      [f.shape for f in final_bi], "; all 0 at the pads:", not hs_bi[0, lengths[0]:].any())

# %% [markdown]
# A stack changes nothing inside a layer: it only feeds each layer's outputs to the next, so
# everything above (the equations, the reversal under padding, the gradient check) holds for each
# layer of it. What it adds is depth: the top layer's annotation of a word is a function of the
# whole sentence's first-layer annotations.

# %% [markdown]
# ## 9. What we saw
#
# - **The forward state cannot know the future.** At 苹果 the forward GRU's state was bit for bit
#   the same in both sentences. On dates, the forward tagger's accuracy at the first two
#   characters sits at or below a ceiling computed from the data alone, and no amount of
#   training lifts it; the bidirectional tagger, which has read the separator after the first
#   number, tags it right.
# - **The backward direction carries it, locally.** The difference between the two 苹果
#   sentences lives entirely in $\overleftarrow{h}_j$ and fades with distance from where the
#   sentences part: an annotation is mostly about its neighbourhood (Bahdanau et al. §3.2).
# - **Pads go last, per sequence.** Reversing a padded batch with `np.flip` makes the backward
#   RNN read the pads first (and, with `lengths`, drop real tokens). The library reverses each
#   sequence within its own length, its outputs at pads are exactly 0, and a padded batch gives
#   the same annotations as each sentence alone.
# - **Document 000, corrected.** The two directions run independently and are joined per
#   position afterwards; their states are never merged step by step. Only the encoder is
#   bidirectional; the decoder generates left to right.
# - **Stacks wire layers, nothing more.** Layer 2 reads layer 1's outputs at every position
#   (2H wide for bidirectional layers); the stack's outputs are the top layer's, its final state
#   one per layer (§3.1), and padding behaves in every layer as in one.
#
# **To remember.** $h_j = [\overrightarrow{h}_j ; \overleftarrow{h}_j]$ (size 2H); the final state
# $[\overrightarrow{h}_S ; \overleftarrow{h}_1]$; pass `lengths` and never flip a padded batch
# yourself.
#
# **Try it yourself.** Use LSTMs instead of GRUs (`ta.Bidirectional(ta.LSTM(...), ta.LSTM(...))`;
# the state is then a pair); give the forward tagger a look-ahead by feeding it the string shifted
# by one or two characters and watch the ceiling move; build the backward half yourself with
# `reverse_index` and a second GRU and check it against `Bidirectional` on a padded batch.
#
# **Next.** Lesson 04: the encoder's final state as the decoder's only view of the source, and
# what one fixed-size vector costs on long inputs.
