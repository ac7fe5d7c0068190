# Source of lessons/08_hard_attention.ipynb (learner) and
# lessons/solutions/08_hard_attention.ipynb (instructor): edit here, then run
# `.venv/bin/python lessons/build.py 08` (see lessons/build.py).

# %% [markdown]
# # Lesson 08 — Soft vs hard attention
#
# **Goal.** Every attention so far (lessons 05–07) is *soft*: the context is the expectation
# $c_i = \sum_j \alpha_{ij} h_j$, a smooth function of the scores, so backprop reaches them. *Hard*
# attention reads **one** annotation, $c_i = h_{j_i}$ with $j_i$ drawn from $\alpha_i$. Nothing
# differentiable connects the draw to the scores, so they are trained by the score-function
# (REINFORCE) estimate instead. In this lesson you will
#
# 1. compute a soft and a hard context for the same scores, and compare many hard draws with
#    the soft one;
# 2. derive the REINFORCE gradient, check by sampling that it is unbiased, and see what a
#    baseline does to its variance;
# 3. write that gradient for one decoder step (baseline and entropy bonus included), graded;
# 4. train soft and hard attention on the same copy task with the same updates, and compare
#    accuracy, training curves over three seeds, the noise of the gradient, and time per step.
#
# **Sources.** Document 003 (`docs/sources.md`) names *Show, Attend and Tell* as the paper that
# introduced soft/hard attention (软/硬注意力), next to Luong's global/local, and says that the
# score it describes is of the global, soft kind. The paper: K. Xu et al., *Show, Attend and
# Tell: Neural Image Caption Generation with Visual Attention*, ICML 2015 (arXiv:1502.03044),
# §4.1 (stochastic "hard" attention: the sampled location, the Monte Carlo gradient, the moving
# average baseline, the entropy term) and §4.2 (deterministic "soft" attention). Soft attention's
# equations are `docs/equations.md` §4 and the masked softmax §8.2. The estimator is R. J.
# Williams, *Simple statistical gradient-following algorithms for connectionist reinforcement
# learning*, Machine Learning 8, 1992.
#
# ![soft attention reads the weighted sum of all annotations; hard attention samples one position and reads only it](../docs/images/hard_vs_soft.png)
#
# In the figure, compare the arrows into the context: soft attention has one from every
# annotation, weighted by $\alpha_{ij}$; hard attention has a single one, from the sampled
# position, and the gradient reaches the scores only through the dashed REINFORCE path.

# %%
import time

import matplotlib.pyplot as plt
import numpy as np

import tinyattn as ta
import tinyattn.exercises as ex
from tinyattn.attention import BahdanauAttention
from tinyattn.cli.evaluation import evaluate_examples
from tinyattn.cli.run import DataSpec, Run, encode_pairs, load_examples
from tinyattn.data import Vocab
from tinyattn.training.batching import make_batches

np.set_printoptions(precision=3, suppress=True)
plt.rcParams["figure.dpi"] = 80

# %% [markdown]
# ## 1. One step, two contexts
#
# A batch of B = 2 sources of length S = 5; the second has 3 real positions (a mask as in
# `docs/equations.md` §1.5). The library's Bahdanau attention (lesson 05) gives the weights
# $\alpha$ for one decoder query and the soft context $\alpha\, h$. The hard context samples $j$
# by the inverse CDF: draw $u \sim U[0, 1)$ and take the first position whose cumulative weight
# exceeds $u$. A pad has weight exactly 0, so its interval is empty: it is never drawn.

# %%
B, S, Hq, Hk, A = 2, 5, 3, 4, 6
rng = np.random.default_rng(0)
mask = np.array([[True] * 5, [True, True, True, False, False]])
enc = rng.standard_normal((B, S, Hk)) * mask[:, :, None]  # the encoder outputs 0 at pads
attn = BahdanauAttention(Hq, Hk, A, rng=rng)
soft_ctx, alpha = attn(rng.standard_normal((B, 1, Hq)) * 2, enc, mask)
soft_ctx, alpha = soft_ctx[:, 0], alpha[:, 0]  # one step: (B, Hk), (B, S)


def hard_context(alpha, enc, rng):
    cdf = np.cumsum(alpha, axis=1)
    j = (cdf <= rng.random((len(alpha), 1)) * cdf[:, -1:]).sum(axis=1)  # first cdf > u
    return enc[np.arange(len(alpha)), j], j


print("alpha:\n", alpha)
print("soft context, example 1:", soft_ctx[1])
print("one hard draw, example 1: j =", hard_context(alpha, enc, rng)[1][1])

# %% [markdown]
# **Predict.** Draw the hard context 20,000 times. How often is a pad position (3 or 4 of
# example 1) drawn, and how far is the *mean* hard context from the soft one?

# %%
M = 20_000
draws = [hard_context(alpha, enc, rng) for _ in range(M)]
ctxs = np.stack([c for c, _ in draws])  # (M, B, Hk)
js = np.stack([j for _, j in draws])  # (M, B)
freq1 = np.bincount(js[:, 1], minlength=S) / M
stderr = ctxs.std(axis=0) / np.sqrt(M)
print("draw frequencies, example 1:", freq1, " alpha:", alpha[1])
print(f"pads drawn: {int((~mask[1][js[:, 1]]).sum())}")
print(f"max |mean hard context - soft context| = {np.abs(ctxs.mean(0) - soft_ctx).max():.4f}"
      f"  (largest standard error of the mean: {stderr.max():.4f})")

# %% [markdown]
# No pad is ever drawn, the frequencies follow $\alpha$, and the mean hard context is the soft
# context to within a few standard errors: $E_{j \sim \alpha}[h_j] = \sum_j \alpha_j h_j$. Soft
# attention *is* the expectation that hard attention samples (Xu et al. §4.2 make this point).
# A single hard context, though, is one annotation, and which one changes from draw to draw.
#
# ## 2. The gradient that sampling hides
#
# With hard attention the loss depends on the scores $e_i$ only through *which* $j$ gets drawn:
# $\partial c_i / \partial e_i = 0$ almost everywhere. What is differentiable is the expected
# reward $J = E_{j \sim \alpha}[R(j)] = \sum_j \alpha_j R(j)$. Since $\nabla \alpha_j = \alpha_j
# \nabla \log \alpha_j$,
#
# $$\nabla_e J = \sum_j \alpha_j\, R(j)\, \nabla_e \log \alpha_j
#   = E_{j \sim \alpha}\big[(R(j) - b)\, (\text{onehot}(j) - \alpha)\big]$$
#
# because $\partial \log \alpha_j / \partial e = \text{onehot}(j) - \alpha$ for a softmax, and
# any constant $b$ (the **baseline**) drops out: $E[\text{onehot}(j) - \alpha] = 0$. One sample
# gives an unbiased estimate. In a decoder, Xu et al. use $R = \log p(y \mid x, j_1 .. j_T)$, the
# log-likelihood of the target with the positions drawn, so that $R$ is large when the reads
# were useful; $b$ is a moving average of recent $R$.
#
# **Predict.** Rewards here are log-likelihoods, all far below 0: $R = (-11, -14, -10.5, -9)$
# at the four real positions of one row. Average the one-sample estimate over 4,000 draws, with
# $b = 0$ and with $b = E[R]$. Which is closer to the exact gradient $\alpha \odot (R - E[R])$,
# and by how much do their standard deviations differ?

# %%
mask4 = np.array([True, True, True, True, False])
a4 = alpha[0, :4] / alpha[0, :4].sum()
a = np.append(a4, 0.0)  # weights of one row with one pad
R = np.array([-11.0, -14.0, -10.5, -9.0, 0.0])
exact = a * (R - a @ R)
j = (np.cumsum(a)[None, :] <= rng.random((4000, 1))).sum(axis=1)
onehot = np.eye(S)[j]
for b in (0.0, a @ R):
    est = (R[j] - b)[:, None] * (onehot - a)  # (4000, S): one estimate per draw
    print(f"b = {b:7.3f}: max |mean - exact| = {np.abs(est.mean(0) - exact).max():.4f}, "
          f"std per draw (summed over positions) = {est.std(0).sum():.3f}")
print("exact gradient:", exact)

# %% [markdown]
# Both means approach the exact gradient (the estimator is unbiased for any $b$), but without a
# baseline each single estimate is dominated by the size of $R$ itself: every draw says "push
# the drawn position *down*", by an amount proportional to $|R|$, and only the small
# differences between draws carry the signal. Subtracting $b$ keeps only those differences.
#
# **The loss to minimise.** In code we minimise a *surrogate* whose gradient is the estimate,
# with the drawn $j$ and the advantage $R - b$ held constant, plus Xu et al.'s entropy bonus
# $\lambda_e H(\alpha)$ (it keeps $\alpha$ from collapsing onto one position too early):
#
# $$L_s = -(R - b) \log \alpha_j - \lambda_e H(\alpha), \qquad
# \frac{\partial L_s}{\partial e} = -(R - b)(\text{onehot}(j) - \alpha)
#   + \lambda_e\, \alpha \odot (\log \alpha + H(\alpha)),$$
#
# using $\partial H / \partial e_k = -\alpha_k (\log \alpha_k + H)$; both terms are 0 at pads.
# Everything else in the network (the decoder RNN, the output layer, the annotation $h_j$ that
# was read) gets its ordinary backprop gradient.
#
# ## 3. Exercise: the REINFORCE gradient of one step
#
# Write `reinforce_score_grad(scores, mask, positions, reward, baseline, entropy_weight)` →
# `dscores (B, S)`, the equation above for each row: scores (B, S), mask (B, S) bool, positions
# (B,) the drawn $j$, reward (B,) the $R$, baseline a float, entropy_weight $\lambda_e$.
# $\alpha$ is the *masked* softmax of the scores (`docs/equations.md` §8.2). `ex.check` compares
# your outputs with the library's on a padded and an unpadded batch, then runs the gradient
# checker on $L_s$ with your function as its backward. First, what it says about a version that
# forgets the baseline:

# %%
def masked_softmax(scores, mask):
    z = np.where(mask, scores, -np.inf)
    w = np.exp(z - z.max(axis=1, keepdims=True))
    return w / w.sum(axis=1, keepdims=True)


def grad_without_baseline(scores, mask, positions, reward, baseline, entropy_weight):
    alpha = masked_softmax(scores, mask)
    onehot = np.eye(scores.shape[1])[positions]
    log_a = np.log(alpha + ~mask)  # log 1 = 0 at pads
    H = -np.sum(alpha * log_a, axis=1, keepdims=True)
    d = -reward[:, None] * (onehot - alpha)  # BUG: R, not R - b
    d += entropy_weight * alpha * (log_a + H)
    return d * mask


buggy = ex.check("reinforce_score_grad", grad_without_baseline)
assert buggy.status == "failed"

# %% [markdown]
# Every row is wrong, and the report names the mistake. Now yours: replace the `raise` line.

# %%
def my_reinforce_score_grad(scores, mask, positions, reward, baseline, entropy_weight):
    """∂L_s/∂scores for one step of hard attention (Xu et al. 2015, §4.1).

    scores (B, S) e_ij; mask (B, S) bool, True at real source positions;
    positions (B,) the sampled j (real positions); reward (B,) R, the
    log-likelihood of each target; baseline b (a float); entropy_weight λ_e.
    α = masked softmax of the scores (0 at pads), H(α) = −Σ_j α_j log α_j.
    The surrogate loss (minimised) and its gradient::

        L_s = −Σ_b (R_b − b) log α_{b j_b} − λ_e Σ_b H(α_b)
        ∂L_s/∂e_b = −(R_b − b) (onehot(j_b) − α_b) + λ_e α_b ⊙ (log α_b + H(α_b))

    Returns dscores (B, S), exactly 0 at pads.
    """
    # BEGIN SOLUTION
    alpha = masked_softmax(scores, mask)  # 0 at pads
    onehot = np.eye(scores.shape[1])[positions]  # (B, S)
    log_a = np.log(np.where(mask & (alpha > 0), alpha, 1.0))  # 0 log 0 = 0: pads, and any α = 0
    H = -(alpha * log_a).sum(axis=1, keepdims=True)  # (B, 1)
    adv = (reward - baseline)[:, None]
    d = -adv * (onehot - alpha) + entropy_weight * alpha * (log_a + H)
    return np.where(mask, d, 0.0)
    # END SOLUTION

# %%
result = ex.check("reinforce_score_grad", my_reinforce_score_grad)
assert result.status in ("passed", "not implemented"), "read the report above"

# %% [markdown]
# The library's version is `tinyattn.hard_attention.reinforce_score_grad(alpha, positions, mask,
# advantage, entropy_weight)`; `HardAttention` wraps any soft attention of the library, draws
# $j$ with the generator you give it in train mode and, in eval mode, reads the **argmax**
# position instead of the expectation: the decoder was trained on single annotations $h_j$, never
# on a mixture $\sum_j \alpha_j h_j$, and the argmax makes decoding deterministic.
# `HardSeq2Seq` is a `Seq2Seq` with Bahdanau scores and hard reads: its forward hands each
# example's $R = \sum_i \log p(y_i)$ to the attention, so the ordinary `Trainer` trains it.
# `tests/test_hard_attention.py` checks the estimator with the gradient checker (the drawn
# positions fixed) and its mean against the exact gradient.
#
# ## 4. Soft and hard on the same copy task
#
# The task `copy` (`tinyattn.data`): repeat a string of letters. Both models are the same
# network (bidirectional GRU encoder, E = 32, H = 32, Bahdanau scores, float32), trained on the
# same 2,000 examples in the same order (Adam, learning rate 0.01, batches of 32, gradient norm
# clipped at 5, 5 epochs of 63 batches: 315 updates), from seeds 0, 1 and 2. The only difference: soft reads
# $\sum_j \alpha_{ij} h_j$, hard reads one $h_j$ (entropy weight $\lambda_e$ = 0.01, baseline
# decay 0.9). Both are scored with greedy decoding on 200 test strings.
#
# **Predict.** After the same 315 updates, which reaches the lower training loss, and will the
# hard model's exact match be close to the soft one's?

# %%
spec = DataSpec("copy", train_size=2000)
splits, info = load_examples(spec)
src_vocab = Vocab.build([e.src for e in splits["train"]])
tgt_vocab = Vocab.build([e.tgt for e in splits["train"]])
train = encode_pairs(splits["train"], src_vocab, tgt_vocab)
test = splits["test"][:200]
OPTIONS = dict(emb_size=32, hidden_size=32, pad_id=Vocab.pad_id, dtype=np.float32)


def new_model(kind, seed):
    rng = np.random.default_rng(seed)
    if kind == "soft":
        model = ta.Seq2Seq(len(src_vocab), len(tgt_vocab), attention="bahdanau", rng=rng,
                           **OPTIONS)
    else:
        model = ta.HardSeq2Seq(len(src_vocab), len(tgt_vocab), rng=rng,
                               sample_rng=np.random.default_rng(seed + 100),
                               entropy_weight=0.01, baseline_decay=0.9, **OPTIONS)
    return model, ta.Adam(model.named_parameters(), lr=0.01)


def train_and_score(kind, seed):
    model, opt = new_model(kind, seed)
    trainer = ta.Trainer(model, opt, pad_id=Vocab.pad_id, sos_id=Vocab.sos_id,
                         eos_id=Vocab.eos_id, batch_size=32, clip=5.0,
                         rng=np.random.default_rng(seed), show_progress=False)
    trainer.fit(train, epochs=5)
    run = Run(directory=None, data=spec, model_options=model.config,
              train_options={"max_decode_len": 12}, src_vocab=src_vocab, tgt_vocab=tgt_vocab)
    return model, trainer.batch_losses, evaluate_examples(model, run, test)


SEEDS, KINDS = (0, 1, 2), ("soft", "hard")
models, curves, scores = {}, {}, {}
start = time.perf_counter()
for kind in KINDS:
    for seed in SEEDS:
        models[kind, seed], curves[kind, seed], scores[kind, seed] = train_and_score(kind, seed)
print(f"6 models trained and scored in {time.perf_counter() - start:.0f} s")
print(f"{'model':6} {'seed':>4} {'last-epoch loss':>16} {'exact match':>12} {'token acc':>10}")
for (kind, seed), s in scores.items():
    last = np.mean(curves[kind, seed][-63:])  # the 63 updates of the last epoch
    print(f"{kind:6} {seed:4} {last:16.3f} {s['exact_match']:12.1%} {s['token_accuracy']:10.1%}")

# %%
fig, ax = plt.subplots(figsize=(7, 3.5))
for kind, color in zip(KINDS, ("tab:blue", "tab:red")):
    for seed in SEEDS:
        c = np.convolve(curves[kind, seed], np.ones(20) / 20, mode="valid")  # 20-update mean
        ax.plot(np.arange(20, len(c) + 20), c, color=color, alpha=0.8,
                label=f"{kind} attention" if seed == 0 else None)
ax.set_xlabel("update (batch of 32)")
ax.set_ylabel("training loss (cross-entropy per token,\nmean of the last 20 updates)")
ax.set_title("copy: soft vs hard attention, seeds 0, 1, 2")
ax.legend()
plt.show()

# %% [markdown]
# Read the table and the curves for your prediction. Within this budget hard attention learns
# clearly worse on every seed: its loss falls more slowly and stays noisier, its last-epoch loss
# is several times the soft model's, and greedy decoding copies far fewer strings exactly (the
# exact-match column). Each update of the hard model moves the attention
# by one sampled read per step and batch, and the copy task needs a *precise* alignment (output
# $i$ reads input $i$); the soft model gets the exact gradient of that alignment at every step.
#
# ## 5. How noisy is the hard gradient?
#
# **Predict.** Take the seed-0 models after training and one fixed batch of 32. Run forward
# and backward 30 times. The soft model's gradient is the same every time; by how much does the
# hard model's vary, relative to its mean, in the attention's own parameters ($W_a, U_a, v_a$)
# and in the output layer?

# %%
batch = make_batches(train[:32], 32, pad_id=Vocab.pad_id, sos_id=Vocab.sos_id,
                     eos_id=Vocab.eos_id)[0]


def grad_spread(model, names, repeats=30):
    """E||g − ḡ||² / ||ḡ||² over repeated forward/backward passes on one batch."""
    gs = []
    for _ in range(repeats):
        model.zero_grad()
        model(*batch)
        model.backward()
        gs.append(np.concatenate([g.ravel() for n, _, g in model.named_parameters()
                                  if n.split(".")[-1] in names and "decoder" in n]))
    gs = np.array(gs, dtype=np.float64)
    mean = gs.mean(axis=0)
    return ((gs - mean) ** 2).sum(axis=1).mean() / (mean @ mean)


for kind in KINDS:
    model = models[kind, 0]
    print(f"{kind}: relative variance of the gradient, attention (W_a, U_a, v_a): "
          f"{grad_spread(model, ('W_a', 'U_a', 'v_a')):.3g}; output layer (W, b): "
          f"{grad_spread(model, ('W', 'b')):.3g}")

# %% [markdown]
# The soft model's spread is 0: no randomness. In the hard model's attention parameters the
# squared deviation of one pass's gradient from the mean is, on average, many times the squared
# norm of the mean itself (the first number on the hard line): a single update there is mostly
# noise, and only the average over many updates points downhill. The output layer gets ordinary
# backprop; it varies only because it reads different annotations, and far less (the second
# number). Xu et al. (§4.1) fight this variance with the moving-average baseline and the
# entropy term, both used here; more samples per example would lower it further, at their cost.
#
# ## 6. What each costs
#
# One training step (forward, backward, clipping, Adam), timed round-robin on fresh models as in
# lesson 06: each round times one step of each model on the same batch; the median of 20 rounds.

# %%
batches = make_batches(train[:160], 32, pad_id=Vocab.pad_id, sos_id=Vocab.sos_id,
                       eos_id=Vocab.eos_id)
fresh = {kind: new_model(kind, 0) for kind in KINDS}
times = {kind: [] for kind in KINDS}
for b in batches * 4:  # 20 rounds
    for kind, (model, opt) in fresh.items():
        t0 = time.perf_counter()
        model.zero_grad()
        model(*b)
        model.backward()
        ta.clip_grad_norm(model, 5.0)
        opt.step()
        times[kind].append(time.perf_counter() - t0)
for kind in KINDS:
    ratio = np.median(np.array(times[kind]) / np.array(times["soft"]))
    print(f"{kind}: median {1000 * np.median(times[kind]):.1f} ms per step; "
          f"median of the per-round ratios to soft: {ratio:.2f}")

# %% [markdown]
# Read the per-round ratio, not the quotient of the two medians: both models are timed in the
# same round, so a busy moment slows both, while the two medians may come from different
# moments. Hard attention is not cheaper here: the scores and $\alpha$ are
# computed either way, reading one $h_j$ instead of the weighted sum saves only an O(S·Hk)
# product per step, and on top come the sampling, the REINFORCE term with its logarithms, and
# the rewards (a log-softmax over the logits). Reading one annotation pays only when the
# annotations are many and large and reading them all is what costs; with S in the tens it is
# not. Here hard attention buys no speed and costs accuracy in the same number of updates.
#
# **Summary.** Soft attention reads the expectation and gets an exact gradient; hard attention
# reads a sample, is right on average, and trains its scores with a noisy, unbiased estimate
# that needs a baseline (and an entropy bonus) to be usable. Lesson 09 returns to soft
# attention and decodes with it.
