# Lesson 09 source, in the percent format of lessons/build.py (one solution block: the
# exercise beam_search). Built and executed by lessons/build.py into lessons/09_decoding.ipynb
# (learner) and lessons/solutions/09_decoding.ipynb (instructor).

# %% [markdown]
# # Lesson 09 — Decoding: greedy vs beam search
#
# **Goal.** A trained encoder–decoder gives a probability to every possible output sequence, but
# it does not tell us which sequence is the most probable: we have to *search* for it. In this
# lesson you will
#
# 1. see why the best sequence $y^* = \arg\max_y p(y \mid x)$ cannot be found by trying them all;
# 2. run greedy decoding (贪心解码) and beam search (束搜索) by hand on a tiny table of
#    next-token probabilities, with no network at all, where greedy misses the best sequence and
#    a beam of 2 finds it;
# 3. write beam search yourself, graded against `tinyattn.decoding.beam_search` on hand-made
#    tables and on a small model (the exercise `beam_search`);
# 4. draw the beam's search tree: which partial hypotheses it kept, which it pruned;
# 5. meet the bias of beam search towards *short* outputs, and the GNMT length penalty that
#    counters it;
# 6. compare greedy and beam search (K = 1, 2, 4, 8) on a small, deliberately under-trained
#    attention model for dates, and sort its mistakes into those a better search can fix and
#    those it cannot.
#
# **Sources.** `docs/equations.md` §6: "At inference there is no true token to read: it reads its
# own previous prediction (greedy or beam search), as §10 describes." Of the two documents, only
# document 000 (`docs/sources.md`, its "Decoder模块" section) describes decoding: at $t = 1$ the
# decoder produces the first word, and "在之后的时间t>1时，使用前面一步预测的单词来决定后续的词"
# (at every later step it uses the word predicted at the previous step to decide the next one),
# stopping "当读完整个输入序列或达到最大长度时"
# (once the whole input has been read, or at a maximum length; a decoder has no input to
# finish reading, so this library stops at `<eos>` or at `max_len`). It names no search
# strategy. Document 003 says it concentrates on the decoder's generation process ("着墨在
# Decoder 生成过程"), but it describes the decoder's recurrence (an RNN step that also reads
# the context vector) and how that context is computed, not how the output words are chosen.
# (Document 000 also calls the decoder a bidirectional RNN; it cannot be one (`docs/sources.md`):
# it generates left to right and has no future tokens to read. This lesson makes that
# concrete: every step depends on the tokens chosen before it.) The papers: Sutskever et al.
# 2014 (arXiv:1409.3215, §3.2) decode with a simple left-to-right beam search and report that
# their system does well even with a beam of 1 (greedy) and that a beam of 2 gives most of the
# benefit of beam search (their Table 1, BLEU on English→French); Bahdanau et al. 2015
# (arXiv:1409.0473) use beam search too; the length penalty is Wu et al. 2016, *Google's
# Neural Machine Translation System* (arXiv:1609.08144), §7; search errors vs model errors
# and the empty output, Stahlberg & Byrne 2019 (arXiv:1908.10090);
# translation getting worse with very large beams, Koehn & Knowles 2017 (arXiv:1706.03872).
#
# The whole notebook runs in well under a minute on two CPU cores.

# %%
import io
import time

import matplotlib.pyplot as plt
import numpy as np
import PIL.Image
from IPython.display import Image, display
from matplotlib.lines import Line2D

import tinyattn as ta
from tinyattn.training.batching import pad_ids
from tinyattn.data import Vocab
from tinyattn.decoding import gnmt_length_penalty, greedy_decode
import tinyattn.exercises as ex
from tinyattn.cli.run import DataSpec, Run, encode_pairs, load_examples
from tinyattn.plot import plot_hypotheses

np.set_printoptions(precision=3, suppress=True)

# %% [markdown]
# ## 1. The equations
#
# The decoder factorises the probability of an output $y = (y_1, \dots, y_T)$, which ends with
# `<eos>`, into next-token probabilities (`docs/equations.md` §2 and §4):
#
# $$p(y \mid x) = \prod_{i=1}^{T} p(y_i \mid y_{<i}, x), \qquad
# \log p(y \mid x) = \sum_{i=1}^{T} \log p(y_i \mid y_{<i}, x).$$
#
# We work with the sum of logs: a product of many numbers below 1 underflows, a sum does not.
#
# **Exact search** wants $y^* = \arg\max_y \log p(y \mid x)$. With a vocabulary of $V$ tokens
# there are $V^T$ sequences of length $T$, and because $p(y_i \mid y_{<i}, x)$ depends on the
# whole prefix (the decoder state $s_{i-1}$ summarises it), no dynamic programme shares work
# between prefixes. For the dates below, $V = 15$ and $T = 11$: $15^{11} \approx 8.6 \times
# 10^{12}$ sequences. Intractable; we search approximately.
#
# **Greedy decoding** takes the most probable token at every step and feeds it back:
# $\hat y_i = \arg\max_{v} p(v \mid \hat y_{<i}, x)$, until `<eos>`. One decoder step per token,
# but a choice, once made, is never revisited.
#
# **Beam search** with beam size $K$ keeps the $K$ best *partial hypotheses* (prefixes) at every
# step. Each is extended by every token ($K \cdot V$ candidates), scored by its sum of
# log-probabilities, and the $K$ best candidates survive; a candidate that ends with `<eos>` is
# set aside as a finished hypothesis. `tinyattn.decoding.beam_search` stops an example when $K$
# hypotheses have finished (or at `max_len`) and returns them best first. $K = 1$ is greedy
# decoding.
#
# **Length penalty** (Wu et al. 2016, §7). Each extra token multiplies $p(y \mid x)$ by a number
# below 1, so a sum of log-probabilities favours short outputs. GNMT ranks finished hypotheses by
#
# $$s(y) = \frac{\log p(y \mid x)}{lp(y)}, \qquad lp(y) = \left(\frac{5 + |y|}{6}\right)^{\alpha},$$
#
# where $|y|$ is the length (tinyattn counts the `<eos>` token) and $\alpha \ge 0$; $\alpha = 0$
# gives $lp = 1$, the plain sum. (GNMT's score also has a *coverage penalty*, which tinyattn does
# not implement.)
#
# | maths | meaning | in the code | shape |
# |---|---|---|---|
# | $\log p(y_i \mid y_{<i}, x)$ | next-token log-probabilities | `logp` from `model.decode_step` | (N, V) for N rows |
# | $\sum_i \log p(y_i \mid \cdot)$ | a hypothesis' score before normalising | `Hypothesis.logprob` | scalar |
# | $s(y)$ | the ranking score | `Hypothesis.score` | scalar |
# | $lp(y)$ | GNMT length penalty | `gnmt_length_penalty(len, alpha)` | scalar |
# | $K$ | beam size | `beam_size` | — |
# | $\alpha$ | length-penalty exponent | `length_penalty` | — |
# | partial hypotheses | the live beams, B·K rows per step | `carry` rows, `BeamStep.tokens` | (B, K) |
# | back-pointers | which beam each survivor extends | `BeamStep.parents` | (B, K) |

# %% [markdown]
# ## 2. What the search needs from a model: three members
#
# `greedy_decode` and `beam_search` never look inside the network. They need:
#
# - `model.config["tgt_vocab"]`, the output vocabulary size $V$;
# - `model.start(src, src_lengths) -> (memory, carry)`: encode the source; `memory` is what every
#   step reads (the encoder states), `carry` the decoder state, one row per hypothesis;
# - `model.decode_step(y_prev, memory, carry, t) -> (logp, carry, alpha)`: one decoder step
#   for N rows at once: `y_prev (N,)` in, log-probabilities `(N, V)`, the new carry and the
#   attention rows `(N, S)` (or None) out.
#
# Beam search reorders the hypotheses after each step by taking rows of the carry
# (`carry[rows]`), so the carry may be any array (or tuple of arrays) with one row per
# hypothesis. That is enough to drive the library with a **hand-made table** instead of a
# network: our fake model's carry is simply the prefix itself, an (N, t) array of the tokens
# chosen so far, and its next-token distribution is looked up in a dictionary.

# %%
PAD, SOS, EOS, TOK_A, TOK_B = 0, 1, 2, 3, 4  # the toy vocabulary
NAMES = ["<pad>", "<sos>", "<eos>", "a", "b"]


class TableModel:
    """A fake decoder: p(next token | prefix) comes from ``probs(prefix)``, a dict."""

    def __init__(self, probs):
        self.probs = probs
        self.config = {"tgt_vocab": len(NAMES)}

    def start(self, src, src_lengths):
        return None, np.zeros((len(src), 0), int)  # no memory; carry = empty prefixes (N, 0)

    def decode_step(self, y_prev, memory, carry, t):
        if t > 0:  # the first step reads <sos>, which is not part of the prefix
            carry = np.concatenate([carry, y_prev[:, None]], axis=1)  # (N, t-1) -> (N, t)
        logp = np.full((len(carry), len(NAMES)), -np.inf)  # log 0 for unlisted tokens
        for row, prefix in enumerate(carry):
            for tok, p in self.probs(tuple(prefix)).items():
                logp[row, tok] = np.log(p)
        return logp, carry, None  # no attention


def show(tokens):
    """A token-id sequence as text, e.g. 'b a <eos>'."""
    return " ".join(NAMES[t] for t in tokens)


# The table: p(next | prefix). Any prefix not listed ends at once: p(<eos>) = 1.
TABLE = {(): {TOK_A: 0.5, TOK_B: 0.4, EOS: 0.1},
         (TOK_A,): {TOK_A: 0.4, TOK_B: 0.35, EOS: 0.25},
         (TOK_B,): {TOK_A: 0.9, TOK_B: 0.05, EOS: 0.05},
         (TOK_A, TOK_A): {EOS: 0.5, TOK_A: 0.25, TOK_B: 0.25},
         (TOK_A, TOK_B): {EOS: 0.6, TOK_A: 0.2, TOK_B: 0.2},
         (TOK_B, TOK_A): {EOS: 0.9, TOK_A: 0.05, TOK_B: 0.05},
         (TOK_B, TOK_B): {EOS: 0.5, TOK_A: 0.25, TOK_B: 0.25}}
toy = TableModel(lambda prefix: TABLE.get(prefix, {EOS: 1.0}))

print(f"{'prefix':8} {'p(a)':>6} {'p(b)':>6} {'p(<eos>)':>9}")
for prefix, dist in TABLE.items():
    print(f"{show(prefix) or '(empty)':8} {dist[TOK_A]:6.2f} {dist[TOK_B]:6.2f} "
          f"{dist[EOS]:9.2f}")

SRC1, LEN1 = np.zeros((1, 1), int), np.array([1])  # one dummy source: the table ignores it
KW = dict(max_len=4, sos_id=SOS, eos_id=EOS)

# %% [markdown]
# ## 3. Greedy is not optimal; a beam of two is
#
# **By hand.** Greedy takes "a" (0.5 beats 0.4), then "a" again (0.4 beats 0.35 and 0.25), then
# `<eos>` (0.5): $p(\text{a a <eos>}) = 0.5 \times 0.4 \times 0.5 = 0.100$.
#
# A beam of $K = 2$ keeps the two best first tokens, "a" (0.5) and "b" (0.4). At step 2 it
# extends both by every token:
#
# | candidate | product | probability | |
# |---|---|---|---|
# | b a | 0.4 × 0.9 | 0.360 | kept |
# | a a | 0.5 × 0.4 | 0.200 | kept |
# | a b | 0.5 × 0.35 | 0.175 | pruned (3rd) |
# | a `<eos>` | 0.5 × 0.25 | 0.125 | pruned |
# | b b, b `<eos>` | 0.4 × 0.05 | 0.020 | pruned |
#
# At step 3 "b a" ends with `<eos>` at $0.360 \times 0.9 = 0.324$ and "a a" with
# $0.200 \times 0.5 = 0.100$: two finished hypotheses, the beam stops. "b a `<eos>`" is more than
# three times as probable as greedy's answer: the "b" that looked worse at step 1 led to a much
# better continuation.
#
# **Greedy, and exact search for once.** The library's greedy decoder agrees with the first
# line. The table is small enough to list *every* sequence (at most three tokens and `<eos>`): a
# depth-first walk multiplies the probabilities along each path, and the most probable of all,
# the true $y^*$, is the beam's "b a `<eos>`".

# %%
(g,) = greedy_decode(toy, SRC1, LEN1, **KW)
print(f"greedy     : {show(g.tokens):12} log p = {g.logprob:.3f}  (p = {np.exp(g.logprob):.3f})")
assert g.tokens == [TOK_A, TOK_A, EOS] and np.isclose(g.logprob, np.log(0.5 * 0.4 * 0.5))


def all_sequences(probs, prefix=(), logp=0.0, max_len=4):
    """Every complete sequence (ending with <eos>) and its log-probability."""
    if len(prefix) == max_len:
        return []
    out = []
    for tok, p in probs(prefix).items():
        if tok == EOS:
            out.append(((*prefix, EOS), logp + np.log(p)))
        else:
            out += all_sequences(probs, (*prefix, tok), logp + np.log(p), max_len)
    return out


everything = sorted(all_sequences(toy.probs), key=lambda s: -s[1])
print(f"{len(everything)} complete sequences, total probability "
      f"{sum(np.exp(lp) for _, lp in everything):.3f}; the five most probable:")
for seq, lp in everything[:5]:
    print(f"  {show(seq):16} p = {np.exp(lp):.3f}")
assert everything[0][0] == (TOK_B, TOK_A, EOS)
assert np.isclose(everything[0][1], np.log(0.4 * 0.9 * 0.9))

# %% [markdown]
# ## 4. Your turn: beam search
#
# Write `my_beam_search(next_logp, K, max_len, eos_id, alpha=0.0)`. It reaches the decoder only
# through `next_logp(prefix)`, which returns the (V,) log-probabilities of the next token after
# `prefix`, a tuple of the token ids chosen so far (`()` at the first step; −inf where p = 0).
# A table gives them by a dictionary lookup (`table_logp` below; for the prefix "a" of
# our table it prints the row), a model by running its decoder over the prefix; your function
# cannot tell which, so one search serves both. The rules are those of `tinyattn.decoding.beam_search`, whose outputs grade yours:
#
# - start from one live prefix, `()`, with $\log p = 0$;
# - at each step extend every live prefix by every token, $K \cdot V$ candidates listed
#   prefix by prefix (in the order the prefixes were kept), token ids in increasing order, each
#   scored $\log p(\text{prefix}) + $ `next_logp(prefix)[token]`;
# - rank them best first with a *stable* sort (ties keep the listing order), and walk down the
#   ranking until $K$ live prefixes are kept: a candidate that ends with `eos_id` met on the way
#   is *finished* (set aside; it takes no slot), one at −inf is never kept, and everything
#   ranked below the $K$-th live prefix is pruned, an `<eos>` included;
# - stop once $K$ hypotheses have finished; after `max_len` steps the live prefixes count as
#   finished, as they are;
# - rank the finished by $s(y) = \log p(y) / lp(y)$, with $lp$ from
#   `gnmt_length_penalty(len(y), alpha)` ($|y|$ counts the `<eos>`), best first (stable), and
#   return the $K$ best as three lists: `tokens` (lists of ids), `logprobs` and `scores`.
#
# `ex.stub("beam_search")` prints the starting point. `ex.check("beam_search", fn)` runs your
# function and the library's on four cases: two hand-made tables (K = 3 with α = 0, K = 2 with
# α = 1) and a small random attention model (K = 3 with α = 0, K = 4 with α = 1.5). It compares
# every output and, when one differs, names the likely mistake: the final ranking sorted the
# wrong way, an `<eos>` finished below the K live beams, the length normalisation left out, or
# the ranking done by log p instead of by the score.
#
# First, what it says about a function that is *not* beam search: the $K$ best complete
# sequences by exhaustive enumeration, as `all_sequences` found them above, ranked by $s(y)$.

# %%
def table_logp(probs):
    """``next_logp`` of a table: the (V,) log-probabilities after ``prefix``, -inf where p = 0."""
    def next_logp(prefix):
        out = np.full(len(NAMES), -np.inf)
        for tok, p in probs(tuple(prefix)).items():
            out[tok] = np.log(p)
        return out
    return next_logp


toy_logp = table_logp(toy.probs)
print("next_logp(('a',)) =", toy_logp((TOK_A,)), " (ids: <pad> <sos> <eos> a b)")
assert np.allclose(np.exp(toy_logp((TOK_A,)))[[EOS, TOK_A, TOK_B]], [0.25, 0.4, 0.35])


def exact_top_k(next_logp, K, max_len, eos_id, alpha=0.0):
    """NOT beam search: every sequence ending with eos_id within max_len tokens, K best by s(y)."""
    def walk(prefix, lp):
        if len(prefix) == max_len:
            return []
        out = []
        for tok, step in enumerate(next_logp(prefix)):
            if np.isfinite(step):
                seq = (*prefix, tok)
                out += [(seq, lp + step)] if tok == eos_id else walk(seq, lp + step)
        return out
    hyps = [(list(s), lp, lp / gnmt_length_penalty(len(s), alpha)) for s, lp in walk((), 0.0)]
    hyps.sort(key=lambda h: -h[2])
    return [h[0] for h in hyps[:K]], [h[1] for h in hyps[:K]], [h[2] for h in hyps[:K]]


exact = ex.check("beam_search", exact_top_k)
assert exact.status == "failed"

# %% [markdown]
# Read the report. Both tables pass: on them a beam of this width happens to return the $K$
# most probable sequences. On the random model it does not: with K = 3 the enumeration's third
# sequence is "3 `<eos>`" (token ids), which the beam never finished, and which is *more*
# probable than the beam's own third, "4 3 4 `<eos>`". (In the model cases only `<eos>` = 2 ends
# a sequence, and the enumeration stops at `max_len`.) No known mistake matches: this is not a
# slip in the code but another algorithm, and beam search is graded on being beam search. Now
# yours: replace the `raise` line, then run the cell after it.

# %%
def my_beam_search(next_logp, K, max_len, eos_id, alpha=0.0):
    """Beam search over ``next_logp``; the K best ``tokens, logprobs, scores``, best first."""
    # BEGIN SOLUTION
    live, finished = [((), 0.0)], []
    for _ in range(max_len):
        candidates = []
        for prefix, lp in live:
            step = next_logp(prefix)  # (V,)
            candidates += [((*prefix, tok), lp + step[tok]) for tok in range(len(step))]
        candidates.sort(key=lambda c: -c[1])  # best first; stable: ties keep the listing order
        live = []
        for seq, lp in candidates:
            if len(live) == K or not np.isfinite(lp):
                break  # everything below the K-th live candidate is pruned, <eos> or not
            (finished if seq[-1] == eos_id else live).append((seq, lp))
        if len(finished) >= K:
            break
    else:
        finished += live  # out of steps: the unfinished compete too
    scored = [(list(s), lp, lp / gnmt_length_penalty(len(s), alpha)) for s, lp in finished]
    scored = sorted(scored, key=lambda h: -h[2])[:K]
    return [h[0] for h in scored], [h[1] for h in scored], [h[2] for h in scored]
    # END SOLUTION

# %%
result = ex.check("beam_search", my_beam_search)
assert result.status in ("passed", "not implemented"), "read the report above"

# %% [markdown]
# ## 5. The library's `beam_search`
#
# From here on the lesson uses `tinyattn.decoding.beam_search`, which drives a model of the
# protocol of §2 directly (B·K rows per decoder step, for a whole batch of examples), keeps one
# attention row per token of each hypothesis and returns `Hypothesis` objects. First the beam of
# two computed by hand in §3:

# %%
from tinyattn.decoding import beam_search

(best, second), = beam_search(toy, SRC1, LEN1, beam_size=2, **KW)
for h in (best, second):
    print(f"beam K = 2 : {show(h.tokens):12} log p = {h.logprob:.3f}  "
          f"(p = {np.exp(h.logprob):.3f})")
assert best.tokens == [TOK_B, TOK_A, EOS]
assert np.isclose(best.logprob, np.log(0.4 * 0.9 * 0.9))
assert second.tokens == [TOK_A, TOK_A, EOS]
assert np.isclose(second.logprob, np.log(0.5 * 0.4 * 0.5))

# %% [markdown]
# **Predict.** With $K = 3$ the beam keeps three live prefixes per step on a table with only
# two tokens besides `<eos>`. Will it return the three most probable sequences of the list in §3
# ("b a `<eos>`", "a `<eos>`", "a b `<eos>`")?

# %%
for K in (1, 2, 3):
    (lib,) = beam_search(toy, SRC1, LEN1, beam_size=K, **KW)
    print(f"K = {K}: " + ",  ".join(f"{show(h.tokens)} ({np.exp(h.logprob):.3f})" for h in lib))
print("exact  : " + ",  ".join(f"{show(s)} ({np.exp(lp):.3f})" for s, lp in everything[:3]))
assert [TOK_A, EOS] not in [h.tokens for h in lib]  # K = 3 misses the second most probable

# %% [markdown]
# No. Beam search stays approximate even when the beam is as wide as this tiny problem: with
# K = 3 the second most probable sequence, "a `<eos>`" (0.125), is missing. At step 2 it ranks
# fourth, behind three live prefixes ("b a" 0.36, "a a" 0.20, "a b" 0.175), and whatever ranks
# below the K-th live candidate is pruned, finished or not. (Third place is a tie: "a a
# `<eos>`" also finished, with the same 0.100 as "`<eos>`"; the sort keeps the one that
# finished first.) This is the rule your `my_beam_search` had to follow, and the one the
# "finished an `<eos>` candidate ranked below the K live beams" diagnosis is about.
#
# ## 6. The search tree
#
# ![A beam-search tree: a few partial hypotheses kept per step, the others pruned](../docs/images/beam_tree.png)
#
# The schematic shows the shape of the search: at every step only $K$ nodes are extended,
# every other candidate is a dead end, and a hypothesis that reaches `<eos>` leaves the beam.
# Look at where the final best path passes through a node that was not the best at its step.
#
# `beam_search(..., trace=steps)` appends one `BeamStep` per step to the list `steps`: the
# candidates it ranked (at most $2K$ per example, best first), each with its parent beam, its
# token, its running log-probability and what happened to it (`"kept"`, `"finished"`,
# `"pruned"`), plus the back-pointers `parents (B, K)` and tokens `tokens (B, K)` of the beams
# that survived. That is all we need to draw the tree: one column per step, one node per
# candidate, an edge to the beam it extends. Following the back-pointers from a finished node
# to step 0 spells out its hypothesis.

# %%
STYLE = {"kept": dict(fc="#cfe2f3", ec="#1f4e79", ls="-"),
         "finished": dict(fc="#d9ead3", ec="#274e13", ls="-"),
         "pruned": dict(fc="white", ec="#999999", ls=":")}


def draw_beam_tree(trace, hyps, names, b=0, ax=None, title=None, width=1.6, max_pruned=None):
    """Draw example ``b``'s beam-search tree from a ``trace``; highlight ``hyps``.

    ``max_pruned``: draw at most this many pruned candidates per step (the best ones).
    """
    # (step, rank in that step's candidates) of every node; y positions per column
    pos, live_pos = {}, {0: 0.0}  # live_pos: beam index -> y of its node, previous step
    for step in trace:
        cands = step.candidates[b]
        if not cands:
            break
        pruned = [r for r, c in enumerate(cands) if c[3] == "pruned"]
        hidden = pruned[max_pruned:] if max_pruned is not None else []
        shown = [r for r in range(len(cands)) if r not in hidden]  # in rank order
        # children sit in the order of their parents (top first), then of their rank
        order = sorted(shown, key=lambda r: (-live_pos[cands[r][0]], r))
        ys = {r: -i for i, r in enumerate(order)}
        new_live = {}
        for r in shown:
            parent, status = cands[r][0], cands[r][3]
            pos[step.t, r] = (step.t * width, ys[r], parent, live_pos[parent])
            if status == "kept":
                new_live[len(new_live)] = ys[r]
        live_pos = new_live
    # the path of each final hypothesis, as a set of (step, rank)
    on_path = {}
    for k, h in enumerate(hyps):
        beam, nodes = None, []
        for step in reversed(trace[:len(h.tokens)]):
            cands = step.candidates[b]
            if beam is None:  # the last token: the finished (or live) candidate itself
                r = next(r for r, c in enumerate(cands) if c[1] == h.tokens[-1]
                         and np.isclose(c[2], h.logprob) and c[3] != "pruned")
            else:  # the kept candidate that became beam `beam`
                r = [r for r, c in enumerate(cands) if c[3] == "kept"][beam]
            nodes.append((step.t, r))
            beam = cands[r][0]
        for node in nodes:
            on_path.setdefault(node, k)
    if ax is None:
        n_rows = max(-y for _, y, _, _ in pos.values()) + 1
        _, ax = plt.subplots(figsize=(max(6, 1.2 * width * len(trace) + 1.5),
                                      0.62 * n_rows + 1.4), layout="constrained")
    colours = plt.get_cmap("tab10")
    root = (-width, 0.0)
    ax.text(*root, "<sos>", ha="center", va="center", fontsize=9,
            bbox=dict(boxstyle="round", fc="#eeeeee", ec="black"))
    for (t, r), (x, y, _, y_parent) in pos.items():
        status = trace[t].candidates[b][r][3]
        path = on_path.get((t, r))
        x0 = root[0] if t == 0 else x - width
        ax.plot([x0 + 0.35, x - 0.42], [y_parent, y], lw=2.4 if path is not None else 0.8,
                color=colours(path) if path is not None else "#bbbbbb", zorder=1,
                ls=":" if status == "pruned" else "-")
    for (t, r), (x, y, _, _) in pos.items():
        _, tok, lp, status = trace[t].candidates[b][r]
        st = STYLE[status]
        path = on_path.get((t, r))
        ax.text(x, y, f"{names[tok]}\n{lp:.2f}", ha="center", va="center", fontsize=8,
                color="#777777" if status == "pruned" else "black", zorder=2,
                bbox=dict(boxstyle="round,pad=0.25", fc=st["fc"], ls=st["ls"],
                          ec=colours(path) if path is not None else st["ec"],
                          lw=2.4 if path is not None else 1.0))
    ax.set_xlim(root[0] - 0.6, width * (len(trace) - 1) + 0.7)
    ys = [y for _, y, _, _ in pos.values()]
    ax.set_ylim(min(ys) - 0.7, 0.7)
    ax.set_xticks([root[0]] + [width * s.t for s in trace],
                  ["start"] + [f"step {s.t + 1}" for s in trace])
    ax.set_yticks([])
    ax.set_xlabel("decoding step (each node: token and its running log p)")
    for side in ("left", "right", "top"):
        ax.spines[side].set_visible(False)
    handles = [Line2D([], [], marker="s", ls="", ms=10, mfc=STYLE[s]["fc"], mec=STYLE[s]["ec"],
                      label=label) for s, label in
               (("kept", "kept (a live beam)"), ("finished", "finished with <eos>"),
                ("pruned", "pruned"))]
    handles += [Line2D([], [], color=colours(k), lw=2.4,
                       label=f"#{k + 1}: log p {h.logprob:.2f}, score {h.score:.2f}")
                for k, h in enumerate(hyps)]
    ax.get_figure().legend(handles=handles, loc="outside lower center", ncols=4, fontsize=8,
                           frameon=False)
    if title:
        ax.set_title(title)
    return ax


steps = []
hyps = beam_search(toy, SRC1, LEN1, beam_size=2, trace=steps, **KW)[0]
for step in steps:
    print(f"step {step.t + 1}: " + ",  ".join(
        f"{NAMES[tok]}<-beam {parent} {lp:.3f} {status}"
        for parent, tok, lp, status in step.candidates[0]))
assert [c[3] for c in steps[1].candidates[0]] == ["kept", "kept", "pruned", "pruned"]
assert steps[1].parents.shape == steps[1].tokens.shape == (1, 2)  # (B, K)
assert list(steps[1].parents[0]) == [1, 0]  # "b a" extends beam 1 ("b"), "a a" beam 0 ("a")
_ = draw_beam_tree(steps, hyps, NAMES, title="Beam search, K = 2, on the hand-made table")

# %% [markdown]
# Read the tree left to right. At step 1 the two kept beams are "a" and "b"; `<eos>` (log 0.1 =
# −2.303) ranked below both and was pruned. At step 2 the four best of the six extensions are
# shown: "b a" and "a a" survive; "a b" (−1.743) and "a `<eos>`" (−2.079) are pruned. At step 3
# both beams end with `<eos>`: two hypotheses have finished, so the search stops, and the two
# new live beams "a a a" and "a a b" (−2.996) are never extended. The thick coloured paths are
# the two returned hypotheses; a node's number is the running $\sum \log p$, which only ever
# goes down along a path.

# %% [markdown]
# ## 7. Short outputs, and the length penalty
#
# A second table shows what goes wrong when the search gets *better*. At step 1 the model gives
# `<eos>` (an empty output) probability 0.3, and "a" 0.5. After that it is sure of itself: it
# continues "a" with probability 0.78 and, after four tokens, stops with probability 0.9. The
# answer we would want is "a a a a `<eos>`":
# $0.5 \times 0.78^3 \times 0.9 \approx 0.214$, less than the empty output's 0.3. Every extra
# token, however confident, costs a factor below 1.

# %%
def long_table(prefix):
    """p(next | prefix) for the second table: an empty output or a confident long one."""
    n = len(prefix)
    if n == 0:
        return {TOK_A: 0.5, TOK_B: 0.2, EOS: 0.3}
    if n < 4:
        if prefix[-1] == TOK_A:
            return {TOK_A: 0.78, TOK_B: 0.2, EOS: 0.02}
        return {TOK_A: 0.55, TOK_B: 0.43, EOS: 0.02}
    if n == 4:
        return {EOS: 0.9, TOK_A: 0.05, TOK_B: 0.05}
    return {EOS: 1.0}


short = TableModel(long_table)
KW2 = dict(max_len=6, sos_id=SOS, eos_id=EOS)
(g2,) = greedy_decode(short, SRC1, LEN1, **KW2)
print(f"greedy      : {show(g2.tokens):16} log p = {g2.logprob:.3f}")
for K in (2, 3):
    (h,) = beam_search(short, SRC1, LEN1, beam_size=K, n_best=1, **KW2)[0]
    print(f"beam K = {K}  : {show(h.tokens):16} log p = {h.logprob:.3f}")
exact = max(all_sequences(long_table, max_len=6), key=lambda s: s[1])
print(f"exact search: {show(exact[0]):16} log p = {exact[1]:.3f}")
assert g2.tokens == [TOK_A] * 4 + [EOS]
assert np.isclose(g2.logprob, np.log(0.5 * 0.78**3 * 0.9))
assert h.tokens == [EOS] and list(exact[0]) == [EOS]

# %% [markdown]
# Greedy, the *worse* search, returns the long output; beam search and exact search both return
# the empty one, because under this model it *is* the most probable sequence. That is not a bug
# of the search but a model that spreads probability over many long outputs while keeping a
# lump on the short one. Real translation models do this too: Stahlberg & Byrne (2019, *On NMT
# search errors and model errors: cat got your tongue?*) found with exact search that the empty
# translation is the most probable one for more than half of the sentences of a test set, and
# Koehn & Knowles (2017, *Six challenges for neural machine translation*, arXiv:1706.03872)
# that translation quality drops when the beam grows large.
#
# **The length penalty by hand.** With $\alpha = 1$: the empty output has $|y| = 1$ (just
# `<eos>`), $lp = (5 + 1)/6 = 1$, so its score stays $\log 0.3 = -1.204$; the long output has
# $|y| = 5$, $lp = 10/6$, score $-1.544 / 1.667 = -0.926$, now the better of the two. They tie
# where $(10/6)^\alpha = 1.544 / 1.204$, at $\alpha = \ln(1.544 / 1.204) / \ln(10 / 6)$, which the next cell prints.

# %%
empty_lp, long_lp = np.log(0.3), np.log(0.5 * 0.78**3 * 0.9)
cross = np.log(long_lp / empty_lp) / np.log(10 / 6)
print(f"log p: empty {empty_lp:.3f}, long {long_lp:.3f};  the ranking flips at alpha = {cross:.3f}")
print(f"{'alpha':>5}  {'winner (K = 3)':16} {'score':>7}   {'runner-up':16} {'score':>7}")
for alpha in (0.0, 0.25, 0.45, 0.55, 1.0, 2.0):
    first, runner_up = beam_search(short, SRC1, LEN1, beam_size=3, n_best=2,
                                   length_penalty=alpha, **KW2)[0]
    print(f"{alpha:5.2f}  {show(first.tokens):16} {first.score:7.3f}   "
          f"{show(runner_up.tokens):16} {runner_up.score:7.3f}")
    assert np.isclose(first.score, first.logprob / gnmt_length_penalty(len(first.tokens), alpha))
    assert (first.tokens == [EOS]) == (alpha < cross)
print(f"lp(1) = {gnmt_length_penalty(1, 1.0):.3f}, lp(5) = {gnmt_length_penalty(5, 1.0):.3f} "
      "(alpha = 1)")
assert np.isclose(gnmt_length_penalty(5, 1.0), 10 / 6)

# %% [markdown]
# Below the printed crossing, $\alpha = 0.487$, the empty output wins, above it the long one. Two details of
# `beam_search` matter here. The penalty only re-ranks *finished* hypotheses; the live beams
# are still compared by their raw sums, so the penalty changes which answer wins,
# not which prefixes survive. And the search stops once $K$ hypotheses have finished: with a
# small beam, a short hypothesis that finishes early can fill the quota before a long one
# arrives, and no $\alpha$ can rescue a hypothesis that was never finished.

# %% [markdown]
# ## 8. A real model: dates, trained only a little
#
# Now the same searches on an attention model. The task and the model are those of lesson 05 (a
# bidirectional GRU encoder, a GRU decoder with Bahdanau attention, float32, Adam, batches of
# 64, gradients clipped at 5), made smaller on purpose, H = 32 instead of 64, and trained for
# one epoch on 8,000 dates, so that it still makes mistakes: search can only matter where the
# model is unsure.

# %%
from tinyattn.cli.evaluation import decode  # greedy_decode for K = 1, beam_search otherwise

spec = DataSpec("dates", train_size=8000)
splits, info = load_examples(spec)
src_vocab = Vocab.build([ex.src for ex in splits["train"]])
tgt_vocab = Vocab.build([ex.tgt for ex in splits["train"]])
model = ta.Seq2Seq(len(src_vocab), len(tgt_vocab), emb_size=32, hidden_size=32,
                   attention="bahdanau", pad_id=Vocab.pad_id, rng=np.random.default_rng(0),
                   dtype=np.float32)
trainer = ta.Trainer(model, ta.Adam(model.named_parameters(), lr=0.004), pad_id=Vocab.pad_id,
                     sos_id=Vocab.sos_id, eos_id=Vocab.eos_id, batch_size=64, clip=5.0,
                     rng=np.random.default_rng(0), show_progress=False)
start = time.perf_counter()
trainer.fit(encode_pairs(splits["train"], src_vocab, tgt_vocab), epochs=1)
print(f"{info}; target vocabulary V = {len(tgt_vocab)}")
print(f"1 epoch: train loss {trainer.history[-1].train_loss:.3f}, "
      f"{time.perf_counter() - start:.1f} s")

run = Run(directory=None, data=spec, model_options=model.config,
          train_options={"max_decode_len": 2 * max(len(ex.tgt) for ex in splits["train"]) + 5},
          src_vocab=src_vocab, tgt_vocab=tgt_vocab)
test = splits["test"][:500]
sources, refs = [list(ex.src) for ex in test], [list(ex.tgt) for ex in test]

# %% [markdown]
# **Greedy against beam search** on the first 500 test dates. For each beam size: the exact match
# (the whole date right), the mean $\log p$ of the returned output (the quantity the search
# maximises), the mean length in tokens (`<eos>` included) and the decoding time. "fixed" and
# "broken" count the dates that beam search gets right and greedy wrong, and the reverse.
#
# **Predict.** A wider beam finds outputs the model finds at least as probable. Will K = 8 get
# right every date that greedy gets right, that is, will its "broken" count be 0?

# %%
results = {}
print(f"{'K':>2} {'exact match':>12} {'mean log p':>11} {'mean length':>12} {'time (s)':>9} "
      f"{'fixed':>6} {'broken':>7}")
for K in (1, 2, 4, 8):
    start = time.perf_counter()
    out = decode(model, run, sources, beam=K)  # K = 1 is greedy_decode
    seconds = time.perf_counter() - start
    words = [o[0][0] for o in out]
    hyps = [o[0][1] for o in out]
    right = np.array([w == r for w, r in zip(words, refs)])
    results[K] = dict(right=right, words=words, hyps=hyps, seconds=seconds)
    fixed = int((right & ~results[1]["right"]).sum())
    broken = int((~right & results[1]["right"]).sum())
    print(f"{K:2d} {right.mean():12.1%} {np.mean([h.logprob for h in hyps]):11.3f} "
          f"{np.mean([len(h.tokens) for h in hyps]):12.2f} {seconds:9.2f} {fixed:6d} {broken:7d}")
    assert all(len(h.tokens) == 11 for h in hyps)  # every output: 10 characters and <eos>
mean_logp = [np.mean([h.logprob for h in results[K]["hyps"]]) for K in (1, 2, 4, 8)]
assert np.all(np.diff(mean_logp) >= -1e-9)  # here a wider beam never lowers the mean log p
print("time / time of K = 2: " + ",  ".join(
    f"K = {K}: {results[K]['seconds'] / results[2]['seconds']:.2f} (K / 2 = {K // 2})"
    for K in (4, 8)))

# %% [markdown]
# No: K = 8 breaks 3 dates that greedy got right (§9 shows that the model prefers each of
# those wrong outputs to the reference). In the stored run, beam search raises the exact
# match from 58.0% (greedy) to 59.2% with K = 2 and 59.6% with K = 4; K = 8 adds nothing more.
# As Sutskever et al. found for translation, a beam of 2 gives most of the gain: here it wins
# 6 dates net (9 fixed, 3 broken) of the 8 that K = 4 wins. The mean log p of the outputs
# rises with K, by small amounts (−1.226 → −1.208). Every output is 11 tokens long (the code
# asserts both).
#
# The time column grows with K, and greedy, which ranks nothing, is the cheapest. The last
# line divides each beam's time by that of K = 2 and sets it beside $K / 2$, the ratio a time
# proportional to the number of decoder rows would give. It need not be that: besides running
# the decoder on B·K rows, each beam step sorts B rankings of K·V candidates (which grows faster
# than K) and walks them in a Python loop, and every call has a fixed cost that does not grow
# with K. Which of these weighs more depends on the machine and on its load, and changes from
# one run to the next: read the seconds as a comparison within one run, not as a property of
# beam search.

# %% [markdown]
# ## 9. Search errors and model errors
#
# A wrong output has one of two causes (in the terms Stahlberg & Byrne use). Either the model
# gives the reference a *higher* probability than the output, and the search failed to find it
# (a **search error**, which a wider beam may fix), or the model itself prefers the wrong output
# (a **model error**: even exact search would return something wrong). To tell them apart we need
# $\log p(\text{reference} \mid x)$, one teacher-forced pass over the reference: feed the gold
# token at every step and add up the log-probabilities it receives. Every reference here is
# 10 characters plus `<eos>`, so one batch holds them all. The check against the library: the
# mean of $-\log p$ per token is the model's training loss on these pairs.

# %%
src_ids, src_len = pad_ids([src_vocab.encode(s) for s in sources], Vocab.pad_id)
ref_ids = np.array([tgt_vocab.encode(r) + [Vocab.eos_id] for r in refs])  # (N, 11)
N, T = ref_ids.shape
assert (N, T) == (len(test), 11)
memory, carry = model.start(src_ids, src_len)
y_prev = np.full(N, Vocab.sos_id)
ref_logp = np.zeros(N)
for t in range(T):
    logp, carry, _ = model.decode_step(y_prev, memory, carry, t)  # (N, V)
    assert logp.shape == (N, len(tgt_vocab))
    ref_logp += logp[np.arange(N), ref_ids[:, t]]  # the gold token's log-probability
    y_prev = ref_ids[:, t]  # teacher forcing: feed the gold token, not the prediction
tgt_in = np.concatenate([np.full((N, 1), Vocab.sos_id), ref_ids[:, :-1]], axis=1)
loss = model(src_ids, src_len, tgt_in, ref_ids, np.full(N, T))  # mean -log p per token
assert np.isclose(-ref_logp.sum() / (N * T), loss, rtol=1e-4)
print(f"mean log p(reference) = {ref_logp.mean():.3f};  loss {loss:.4f} = "
      f"{-ref_logp.sum() / (N * T):.4f}")

for K in (1, 8):
    r = results[K]
    out_logp = np.array([h.logprob for h in r["hyps"]])
    wrong = ~r["right"]
    search = wrong & (ref_logp > out_logp + 1e-4)
    print(f"K = {K}: {wrong.sum():3d} wrong, of which {search.sum():2d} search errors "
          f"(the reference is more probable) and {(wrong & ~search).sum():3d} model errors")
greedy_search = ~results[1]["right"] & (
    ref_logp > np.array([h.logprob for h in results[1]["hyps"]]) + 1e-4)
beam_logp = np.array([h.logprob for h in results[8]["hyps"]])
broken = results[1]["right"] & ~results[8]["right"]
print(f"of greedy's {greedy_search.sum()} search errors, K = 8 gets "
      f"{(greedy_search & results[8]['right']).sum()} right")
print(f"of the {broken.sum()} dates greedy gets right and K = 8 wrong, the model prefers "
      f"K = 8's wrong output to the reference in {(broken & (beam_logp > ref_logp)).sum()}")
worse = (beam_logp < np.array([h.logprob for h in results[1]["hyps"]]) - 1e-4).sum()
print(f"dates where K = 8 returns a less probable output than greedy: {worse}")
assert worse == 0  # not guaranteed in general (see below), but true for this model

# %% [markdown]
# In the stored run most of greedy's mistakes (196 of 210) are model errors: the model itself
# ranks a wrong date above the right one, and no search can help. The few search errors are
# what a beam can fix, and K = 8 leaves none: it gets 11 of greedy's 14 right, and for the
# other 3 it finds a wrong date that the model likes even more than the reference. The
# "broken" dates are the other side of the same coin: greedy got them right by luck, a better
# search finds a wrong date the model likes more. A wider beam finds more probable outputs
# (the mean log p column grows with K; this is not guaranteed for every sentence, since a beam
# can prune the greedy path, but here it never returned a less probable output than greedy),
# and it turns that into accuracy only where the model ranks the right answer first.

# %% [markdown]
# ## 10. One date, greedy vs beam
#
# A date that greedy gets wrong and a beam of 4 gets right, its search tree (K = 4) and one
# attention heatmap per final hypothesis.

# %%
fixed = [i for i in range(len(test)) if results[4]["right"][i] and not results[1]["right"][i]]
i = fixed[0]
print(f'source   : "{"".join(sources[i])}"')
print(f"reference: {''.join(refs[i])}   log p = {ref_logp[i]:.3f}")
print(f"greedy   : {''.join(results[1]['words'][i])}   log p = "
      f"{results[1]['hyps'][i].logprob:.3f}")
src_i, len_i = pad_ids([src_vocab.encode(sources[i])], Vocab.pad_id)
trace = []
nbest = beam_search(model, src_i, len_i, beam_size=4, max_len=run.train_options["max_decode_len"],
                    sos_id=Vocab.sos_id, eos_id=Vocab.eos_id, trace=trace)[0]
greedy_tokens = results[1]["hyps"][i].tokens
for k, h in enumerate(nbest, 1):
    note = "  <- greedy's output" if h.tokens == greedy_tokens else ""
    print(f"beam #{k}  : {''.join(tgt_vocab.decode(h.tokens))}   log p = {h.logprob:.3f}{note}")
assert nbest[0].tokens == results[4]["hyps"][i].tokens
print("step 1 of the beam, best first: " + ",  ".join(
    f"{tgt_vocab.tokens[tok]!r} p = {np.exp(lp):.3f} {status}"
    for _, tok, lp, status in trace[0].candidates[0][:4]))


def running_logp(trace, h, b=0):
    """The running sum of log p of hypothesis ``h`` after each step, by the back-pointers."""
    cands = trace[len(h.tokens) - 1].candidates[b]
    last = next(c for c in cands if c[1] == h.tokens[-1] and np.isclose(c[2], h.logprob)
                and c[3] != "pruned")
    out, beam = [last[2]], last[0]
    for step in reversed(trace[:len(h.tokens) - 1]):
        kept = [c for c in step.candidates[b] if c[3] == "kept"]
        out.append(kept[beam][2])
        beam = kept[beam][0]
    return out[::-1]


print("running log p after each step:")
for k, h in enumerate(nbest, 1):
    path = running_logp(trace, h)
    assert np.isclose(path[-1], h.logprob)
    print(f"  #{k} {''.join(tgt_vocab.decode(h.tokens)):10} " + " ".join(f"{v:6.2f}" for v in path))

# %%
def show_few_colours(fig, colours=64):
    """Display ``fig`` as a PNG with a ``colours``-colour palette, then close it.

    Only to keep the stored notebook small: a tree with a hundred labels makes a full-colour
    PNG of about 150 KB; with 64 colours it is about a quarter of that and looks the same.
    """
    full, small = io.BytesIO(), io.BytesIO()
    fig.savefig(full, format="png", bbox_inches="tight")
    plt.close(fig)
    PIL.Image.open(full).convert("RGB").quantize(colours).save(small, format="png", optimize=True)
    display(Image(small.getvalue()))


tgt_names = [t if t != Vocab.EOS else "</s>" for t in tgt_vocab.tokens]
fig, ax = plt.subplots(figsize=(16, 6), layout="constrained")
_ = draw_beam_tree(trace, nbest, tgt_names, ax=ax, width=1.45, max_pruned=1,
                   title=f'Beam search, K = 4, on "{"".join(sources[i])}" (</s> is <eos>; '
                         "of the pruned candidates, only each step's best is drawn)")
show_few_colours(fig)

# %% [markdown]
# In the run stored here the date is "4/29/61", and the hard part is the century. At step 1
# the model is almost undecided between "2" (p = 0.516) and "1" (p = 0.479). Greedy commits
# to "2" and ends with "2016-04-29" (it even swaps the year's digits); the beam keeps "1" alive
# as its second beam, and at the end "1961-04-29" (log p = −1.312) beats greedy's output
# (−2.027, hypothesis #2, orange). Each step ranks the $2K = 8$ best extensions: the four with
# a light-blue fill survive, those with a green fill have finished, and of the pruned ones only
# the best is drawn (dotted). Once past the century, the blue path (#1) is confident: its
# running log p (printed above, one column per step) goes from −0.74 at step 1 to −0.83 at
# step 6; it pays most at the month's "4" (step 7, from −0.83 to −1.03) and at the day's last
# digit (step 10, from −1.06 to −1.31), where the green hypothesis "1961-04-22" branches off
# (−2.80). The red one, "2061-04-29", leaves greedy's path at step 3 ("206" at −2.22 against
# "201" at −0.98).

# %%
labels = [tgt_vocab.decode(h.tokens) + ["<eos>"] for h in nbest]
fig = plot_hypotheses(nbest, sources[i], labels,
                      title=f'The {len(nbest)} final hypotheses for "{"".join(sources[i])}"')

# %% [markdown]
# One heatmap per final hypothesis (`tinyattn.plot.plot_hypotheses`; every hypothesis keeps its
# own attention rows, followed through the back-pointers). In #1 the year digits "6" and "1"
# each look at their own source character; in greedy's "2016" (#2) the rows for "1" and "6"
# spread over both: once committed to the wrong century, the model lost track of the order.

# %% [markdown]
# ## 11. Length penalty on the dates
#
# On dates every correct output has the same length, 11 tokens (`<eos>` included). Where all
# finished hypotheses have the same length, the penalty divides all their scores by the same
# number and cannot change the ranking; it can only matter where a date's hypotheses differ in
# length. Let us count on 200 dates with K = 4, $\alpha$ = 0 and 1:

# %%
src200, len200 = pad_ids([src_vocab.encode(s) for s in sources[:200]], Vocab.pad_id)
top = {}
for alpha in (0.0, 1.0):
    nbest200 = beam_search(model, src200, len200, beam_size=4, length_penalty=alpha,
                           max_len=run.train_options["max_decode_len"], sos_id=Vocab.sos_id,
                           eos_id=Vocab.eos_id)
    top[alpha] = [hs[0].tokens for hs in nbest200]
    em = np.mean([tgt_vocab.decode(t) == r for t, r in zip(top[alpha], refs[:200])])
    print(f"alpha = {alpha}: exact match {em:.1%}")
    if alpha == 0.0:
        odd = [(hs[0].logprob - h.logprob, len(h.tokens)) for hs in nbest200 for h in hs
               if len(h.tokens) != 11]
        print(f"  {len(odd)} of the {sum(map(len, nbest200))} hypotheses are not 11 tokens long "
              f"(lengths {sorted({n for _, n in odd})}); the closest one is "
              f"{min(gap for gap, _ in odd):.2f} below its date's best log p")
changed = sum(t0 != t1 for t0, t1 in zip(top[0.0], top[1.0]))
print(f"best hypothesis changed by the penalty for {changed} of 200 dates")

# %% [markdown]
# In the stored run only 4 of the 800 hypotheses have 10 or 12 tokens, each at least 1.5
# below its date's best log p, and the penalty changes no winner: this model has learned that
# an ISO date is 10 characters long. The length penalty matters for tasks whose outputs vary
# in length, such as translation (lesson 11).

# %% [markdown]
# ## 12. What to remember
#
# - Decoding is a **search** over sequences scored by $\sum_i \log p(y_i \mid y_{<i}, x)$;
#   exact search is out of reach ($V^T$ sequences), greedy is one path, beam search keeps $K$.
# - Search only needs the step interface: `start` and `decode_step`, with a carry whose rows
#   can be reordered. A beam of K runs the decoder on B·K rows per step and ranks K·V
#   candidates per example, so it costs more than greedy, more as K grows.
# - A better search finds more probable outputs; it helps accuracy only where the model ranks
#   the right answer first (search errors). On the under-trained date model most mistakes were
#   model errors.
# - Unnormalised scores favour short outputs, sometimes the empty one; the GNMT length penalty
#   $lp(y) = ((5 + |y|)/6)^\alpha$ divides the score and flips the ranking once $\alpha$ is
#   large enough.
#
# **Try it yourself.** Train for two epochs instead of one and run the table again: how many
# search errors remain? Change the hand-made table so that greedy is optimal. In the second
# table, give `<eos>` at step 1 probability 0.4 (and "b" 0.1): at which $\alpha$ does the
# ranking flip now?
#
# **Next.** Lesson 10: the training loop the lessons have used so far, written out: the masked
# loss, Adam, and the sanity checks to run first.
