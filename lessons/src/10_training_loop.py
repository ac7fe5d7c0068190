# Source of lessons/10_training_loop.ipynb (learner) and
# lessons/solutions/10_training_loop.ipynb (instructor): edit here, then run
# `.venv/bin/python lessons/build.py 10` (see lessons/build.py).

# %% [markdown]
# # Lesson 10 — The training loop: masked cross-entropy and Adam
#
# **Goal.** From lesson 04 on, `Seq2Seq`, `Trainer` and `Run` have been black boxes that turn
# sentence pairs into a falling loss. This lesson opens the box. You will
#
# 1. write the loss every lesson trains with, the mean cross-entropy over the *real* target
#    tokens of a padded batch, and its gradient, and have both checked;
# 2. write one Adam update, and have it checked;
# 3. write a training loop by hand around a small `Seq2Seq`: forward, backward, clipping, Adam;
# 4. run the two sanity checks practitioners run first: the loss of an untrained model is
#    about $\ln V$, and a model can drive the loss on one batch to almost 0;
# 5. check that the library's `Trainer`, given the same seed, data and number of updates,
#    produces the same losses as your loop, to the last digits;
# 6. compute label smoothing, SGD with momentum, two learning-rate schedules and dropout by hand,
#    and assert each against the library.
#
# **Sources.** `docs/equations.md` §6 (teacher forcing, the masked loss and its gradient; document
# 000, section "模型训练", trains with cross-entropy and Adam), §8.2 (softmax and log-softmax
# with the maximum subtracted), §9.2 (Adam: D. P. Kingma and J. Ba, *Adam: A Method for
# Stochastic Optimization*, ICLR 2015, arXiv:1412.6980, Algorithm 1) and §9.3 (clipping by the
# global norm: R. Pascanu, T. Mikolov, Y. Bengio, *On the difficulty of training recurrent neural
# networks*, ICML 2013, §3.2). The code: `tinyattn/losses.py`, `tinyattn/training/optim.py`,
# `tinyattn/training/trainer.py`. The whole notebook runs in a few seconds.

# %%
import math
import time

import matplotlib.pyplot as plt
import numpy as np

import tinyattn as ta
import tinyattn.exercises as ex
from tinyattn.cli.run import encode_pairs
from tinyattn.data import Vocab, make_task
from tinyattn.training.batching import make_batches

np.set_printoptions(precision=4, suppress=True)

# %% [markdown]
# ## 1. The loss of a padded batch
#
# A batch holds B target sequences of different lengths, padded to the longest, T. The model
# gives logits of shape (B, T, V) (V: the target vocabulary), one row of scores per position,
# pads included. With $m_{bt} = 1$ at a real target token and 0 at a pad, and
# $N = \sum_{b,t} m_{bt}$ the number of real tokens (`docs/equations.md` §6):
#
# $$L = -\frac{1}{N} \sum_{b,t:\ m_{bt} = 1} \log p_{bt}[y_{bt}], \qquad
# p_{bt} = \text{softmax}(\text{logits}_{bt}).$$
#
# **Its gradient.** For one row $z$ with target $y$, $-\log \text{softmax}(z)[y] = -z_y + \log
# \sum_w e^{z_w}$, whose derivative in $z_v$ is $-[v = y] + e^{z_v} / \sum_w e^{z_w} = p_v -
# [v = y]$. The mean multiplies each real row by $1/N$, and a pad row contributes nothing:
#
# $$\frac{\partial L}{\partial\, \text{logits}_{bt}} = (p_{bt} - \text{onehot}(y_{bt}))\,
# \frac{m_{bt}}{N}, \qquad \text{exactly 0 at pads.}$$
#
# Three details decide whether the code is right:
#
# - **divide by N**, the real tokens, not by B (sequences) or B·T (positions, pads included):
#   the loss of a sentence must not depend on how much padding its batch happens to have;
# - the targets at pads hold the pad id (or anything): they must be **masked**, not scored;
# - **subtract each row's maximum** before `exp` (§8.2): softmax does not change, and
#   `np.exp(800)` is `inf` in float64.
#
# **Predict.** A model that knows nothing gives every token the same logit. What loss does it
# get on a batch over a vocabulary of V = 40 tokens, and does the padding change it?

# %%
V = 40
logits = np.zeros((3, 6, V))  # an untrained model's ideal: no preference at all
lengths = np.array([6, 4, 1])
mask = np.arange(6)[None, :] < lengths[:, None]
targets = np.where(mask, np.random.default_rng(0).integers(4, V, size=(3, 6)), 0)
z = logits - logits.max(axis=-1, keepdims=True)
log_p = z - np.log(np.exp(z).sum(axis=-1, keepdims=True))  # log-softmax, §8.2
loss = -np.take_along_axis(log_p, targets[..., None], axis=-1)[..., 0][mask].mean()
print(f"loss {loss:.4f}, ln V = {math.log(V):.4f}, N = {mask.sum()} real tokens of "
      f"{mask.size} positions")

# %% [markdown]
# Every token gets $p = 1/V$, so each real token costs $-\log(1/V) = \ln V$ = 3.6889 nats, and
# so does their mean, whatever the padding. That is the first sanity check of any classifier:
# **at initialisation the loss should be close to $\ln V$** (section 4 runs it on a real model).
# Much higher means the initial logits are large and confidently wrong; lower means a bug, or
# that the model sees the answer.
#
# ## 2. Exercise: the masked cross-entropy and its gradient
#
# Write `masked_cross_entropy(logits, targets, mask)` returning `loss` (a float) and `dlogits`
# (B, T, V). `ex.check` runs it beside the library's loss on three batches (one padded, one with
# logits near 800, one without padding), then gradient-checks your `dlogits` against centered
# differences of your `loss` (lesson 00), and names the likely mistake. First, what it says about
# the mistake of d2l's `MaskedSoftmaxCELoss` (d2l-ai/d2l-en issue 2076): pads are masked out of
# the sum, but the mean is still taken over all B·T positions.

# %%
def ce_mean_over_padded_length(logits, targets, mask):
    z = logits - logits.max(axis=-1, keepdims=True)
    p = np.exp(z) / np.exp(z).sum(axis=-1, keepdims=True)
    onehot = np.eye(logits.shape[-1])[targets]
    nll = -np.log((p * onehot).sum(axis=-1))
    count = mask.size  # BUG: B·T positions, pads included; the real tokens are mask.sum()
    return (nll * mask).sum() / count, (p - onehot) * mask[..., None] / count


wrong = ex.check("masked_cross_entropy", ce_mean_over_padded_length)
assert wrong.status == "failed"

# %% [markdown]
# Read it: the batch without padding passes (there B·T = N), the two padded batches fail in both
# outputs, and the "likely" line names the mistake. The gradient check did not run: it runs only
# once every output agrees with the library's. Now yours (`ex.stub("masked_cross_entropy")`
# prints the starting point): replace the `raise` line, then run the cell after it.

# %%
def my_masked_cross_entropy(logits, targets, mask):
    """Mean cross-entropy over the real tokens of a padded batch, and its gradient.

    logits (B, T, V) float; targets (B, T) int (pads hold any id); mask (B, T)
    bool, True at real target tokens. With N = mask.sum() and p = softmax(logits)
    over the last axis (subtract each row's maximum before exp):
        loss    = -(1/N) Σ_{b,t: mask} log p[b, t, targets[b, t]]        (a float)
        dlogits = (p - onehot(targets)) · mask / N                        (B, T, V)
    """
    # BEGIN SOLUTION
    z = logits - logits.max(axis=-1, keepdims=True)  # the row maximum: no overflow
    e = np.exp(z)
    p = e / e.sum(axis=-1, keepdims=True)
    log_p_y = np.take_along_axis(z, targets[..., None], axis=-1)[..., 0] \
        - np.log(e.sum(axis=-1))  # log softmax(z)[y], (B, T)
    n = mask.sum()
    loss = -(log_p_y * mask).sum() / n
    dlogits = p.copy()
    np.put_along_axis(dlogits, targets[..., None],
                      np.take_along_axis(p, targets[..., None], axis=-1) - 1.0, axis=-1)
    return float(loss), dlogits * mask[..., None] / n
    # END SOLUTION

# %%
mine = ex.check("masked_cross_entropy", my_masked_cross_entropy)
assert mine.status in ("passed", "not implemented"), "read the report above"

# %% [markdown]
# **The library's loss** is `tinyattn.losses.sequence_cross_entropy` (with, in addition, label
# smoothing, §6.1, and care for logits near the float range). Why N and not B·T matters: the same
# three sentences, padded once to T = 6 and once, in a batch with a longer sentence, to T = 12.
# The library's loss (and yours) does not move; the mean over the padded length halves.

# %%
from tinyattn.losses import sequence_cross_entropy  # after the exercise

rng = np.random.default_rng(1)
logits6 = rng.standard_normal((3, 6, V))
logits12 = np.concatenate([logits6, rng.standard_normal((3, 6, V))], axis=1)  # 6 more pad rows
mask12 = np.concatenate([mask, np.zeros((3, 6), bool)], axis=1)
targets12 = np.concatenate([targets, np.zeros((3, 6), int)], axis=1)
lib6, dlib6 = sequence_cross_entropy(logits6, targets, mask)
lib12, dlib12 = sequence_cross_entropy(logits12, targets12, mask12)
print(f"library, T = 6: {lib6:.4f}   T = 12: {lib12:.4f}")
print(f"mean over B·T, T = 6: {ce_mean_over_padded_length(logits6, targets, mask)[0]:.4f}   "
      f"T = 12: {ce_mean_over_padded_length(logits12, targets12, mask12)[0]:.4f}")
assert np.isclose(lib6, lib12) and np.allclose(dlib12[:, :6], dlib6) and not dlib12[:, 6:].any()
assert np.isclose(lib6, -np.take_along_axis(  # the formula of section 1
    logits6 - np.log(np.exp(logits6).sum(-1, keepdims=True)), targets[..., None], -1)[mask].mean())

# %% [markdown]
# ## 3. Exercise: one Adam update
#
# Adam (`docs/equations.md` §9.2; Kingma & Ba 2015, Algorithm 1) keeps, for every weight, running
# means of the gradient ($m$) and of its square ($v$), and steps by their ratio. At update
# $t = 1, 2, \dots$, from $m = v = 0$:
#
# $$m \leftarrow \beta_1 m + (1 - \beta_1)\, g, \qquad v \leftarrow \beta_2 v + (1 - \beta_2)\, g^2,$$
#
# $$\hat m = \frac{m}{1 - \beta_1^t}, \qquad \hat v = \frac{v}{1 - \beta_2^t}, \qquad
# w \leftarrow w - \text{lr} \cdot \frac{\hat m}{\sqrt{\hat v} + \varepsilon}.$$
#
# The **bias corrections** undo the start at 0: after the first update $m = (1 - \beta_1) g$, a
# tenth of the gradient, and $\hat m = g$ again. The defaults are $\beta_1 = 0.9$,
# $\beta_2 = 0.999$, $\varepsilon = 10^{-8}$; $\varepsilon$ is added to $\sqrt{\hat v}$, not to
# $\hat v$ under the root. Write `adam_step(w, g, m, v, t, lr, beta1, beta2, eps)` returning the
# new `(w, m, v)` for one array; `t` is this update's number, 1 for the first. `ex.check` runs it
# beside one step of `ta.Adam` on a first update with gradients of size 1 and on a fifth with
# gradients of size $10^{-4}$. A version without the bias corrections, first:

# %%
def adam_without_correction(w, g, m, v, t, lr, beta1, beta2, eps):
    m_new, v_new = beta1 * m + (1 - beta1) * g, beta2 * v + (1 - beta2) * g**2
    return w - lr * m_new / (np.sqrt(v_new) + eps), m_new, v_new  # BUG: no 1 − β^t


wrong_adam = ex.check("adam_step", adam_without_correction)
assert wrong_adam.status == "failed"

# %% [markdown]
# The moments are right, the weights are not: at $t = 1$ this version steps by
# $\text{lr} \cdot 0.1\, g / (\sqrt{0.001}\, |g|) = \text{lr} \cdot \text{sign}(g) / \sqrt{0.1}$,
# more than three times too far, and in later updates the factors $1 - \beta^t$ still differ from 1. Now yours:

# %%
def my_adam_step(w, g, m, v, t, lr, beta1, beta2, eps):
    """One Adam update (Kingma & Ba 2015, Algorithm 1) of one parameter array.

    w, g, m, v: arrays of one shape (weights, gradient, first and second moments
    before this update); t: this update's number, 1 for the first. Returns the
    new (w, m, v), as new arrays:
        m = β1 m + (1 − β1) g;   v = β2 v + (1 − β2) g²
        m̂ = m / (1 − β1^t);     v̂ = v / (1 − β2^t)
        w = w − lr · m̂ / (√v̂ + eps)
    """
    # BEGIN SOLUTION
    m = beta1 * m + (1 - beta1) * g
    v = beta2 * v + (1 - beta2) * g * g
    m_hat, v_hat = m / (1 - beta1**t), v / (1 - beta2**t)
    return w - lr * m_hat / (np.sqrt(v_hat) + eps), m, v
    # END SOLUTION

# %%
mine_adam = ex.check("adam_step", my_adam_step)
assert mine_adam.status in ("passed", "not implemented"), "read the report above"

# %% [markdown]
# **Predict.** Two weights start at 0, one with gradient $10^{-3}$, the other $10^{3}$. After one
# update with lr = 0.01, where is each? (SGD would move them by $10^{-5}$ and by 10.)

# %%
w = np.zeros(2)
grad = np.array([1e-3, 1e3])
opt = ta.Adam([("w", w, grad)], lr=0.01)  # the library's Adam, after the exercise
opt.step()
print("after one Adam update:", w)
assert np.allclose(w, -0.01, rtol=1e-4)

# %% [markdown]
# Both move by $-0.01$, the learning rate: at $t = 1$, $\hat m / \sqrt{\hat v} = g / |g|$, so the
# first update is $-\text{lr} \cdot \text{sign}(g)$ whatever the gradient's size. Adam's step is
# set by lr, not by the gradient's scale; that is why one learning rate (0.01 in lesson 04,
# 0.003 in lesson 11) works for embeddings, recurrent weights and output layers alike.
#
# ## 4. A training loop by hand, and two sanity checks
#
# The task is `copy` from `tinyattn.data` (lesson 04): write a string of 3 to 10 letters a–t back
# out. 2,000 training strings, a vocabulary of the 20 letters and 4 specials (`<pad>` = 0,
# `<sos>`, `<eos>`, `<unk>`), and a small Bahdanau model (E = 16, H = 32, float64).

# %%
train = make_task("copy", 2000, seed=0)
vocab = Vocab.build([e.src for e in train])
pairs = encode_pairs(train, vocab, vocab)
ids = dict(pad_id=Vocab.pad_id, sos_id=Vocab.sos_id, eos_id=Vocab.eos_id)


def new_model():
    return ta.Seq2Seq(len(vocab), len(vocab), emb_size=16, hidden_size=32, attention="bahdanau",
                      pad_id=Vocab.pad_id, rng=np.random.default_rng(0))


print(f"{len(pairs)} pairs, V = {len(vocab)}, {new_model().num_parameters():,} parameters; e.g.",
      "".join(train[0].src), "->", "".join(train[0].tgt))

# %% [markdown]
# One update is four lines (`docs/equations.md` §6, "one training step"): `model(*batch)` runs
# the forward with teacher forcing and returns the loss of section 2 (`tgt_out` holds the targets,
# `tgt_lengths` the mask); `model.backward()` fills every parameter's gradient; the global norm
# of all gradients is clipped to 5 (§9.3); Adam, as in section 3, updates every weight in place.
# `model.named_parameters()` yields `(name, weight, gradient)` for each parameter array.

# %%
class HandAdam:
    """Adam of section 3 over every parameter of a model, with clipping before it."""

    def __init__(self, model, lr, beta1=0.9, beta2=0.999, eps=1e-8, clip=5.0):
        self.model, self.lr, self.b1, self.b2, self.eps, self.clip = (
            model, lr, beta1, beta2, eps, clip)
        self.m = {n: np.zeros_like(w) for n, w, _ in model.named_parameters()}
        self.v = {n: np.zeros_like(w) for n, w, _ in model.named_parameters()}
        self.t = 0

    def step(self, batch):
        model = self.model
        model.zero_grad()  # gradients accumulate: clear them first
        loss = model(*batch)
        model.backward()
        params = list(model.named_parameters())
        norm = math.sqrt(sum(float((g * g).sum()) for _, _, g in params))
        scale = self.clip / norm if norm > self.clip else 1.0  # §9.3: one factor for all
        self.t += 1
        for name, w, g in params:
            g = g * scale
            self.m[name] = self.b1 * self.m[name] + (1 - self.b1) * g
            self.v[name] = self.b2 * self.v[name] + (1 - self.b2) * g * g
            m_hat = self.m[name] / (1 - self.b1**self.t)
            v_hat = self.v[name] / (1 - self.b2**self.t)
            w -= self.lr * m_hat / (np.sqrt(v_hat) + self.eps)  # in place: the model's array
        return loss

# %% [markdown]
# **Predict.** The untrained model scores its first batch of 32 strings. What loss do you expect?
# (The vocabulary has V = 24 tokens.)

# %%
batches = make_batches(pairs, 32, **ids)  # in the given order, for the checks
model = new_model()
init_loss = model(*batches[0])
print(f"untrained: loss {init_loss:.4f}   ln V = ln {len(vocab)} = {math.log(len(vocab)):.4f}")
loud = new_model()
loud.decoder.out.params["W"] *= 30  # the same model with 30 times larger output weights
print(f"output weights × 30: loss {loud(*batches[0]):.4f}")
assert abs(init_loss - math.log(len(vocab))) < 0.1

# %% [markdown]
# The untrained model scores 3.2295 against $\ln 24$ = 3.1781: its initial weights are small, so
# its logits are nearly equal and its predictions nearly uniform, as in section 1. The same model
# with output weights 30 times larger starts at 12.8440, far above $\ln V$: confident and wrong,
# it would spend its first updates only undoing that confidence. A first loss far from $\ln V$ is a
# reason to look at the initialisation (or the loss) before training at all.
#
# **Predict.** The second check: train on **one** batch of 16 strings, over and over, 150 updates
# with lr = 0.01. How low will the loss go?

# %%
one = make_batches(pairs[:16], 16, **ids)[0]
model = new_model()
hand = HandAdam(model, lr=0.01)
start = time.perf_counter()
one_batch_losses = [hand.step(one) for _ in range(150)]
for step in (1, 10, 25, 50, 100, 150):
    print(f"update {step:3}: loss {one_batch_losses[step - 1]:.6f}")
print(f"({time.perf_counter() - start:.1f} s)")
assert one_batch_losses[-1] < 0.01

# %% [markdown]
# To almost nothing (left of the figure below, on a log scale): the model has memorised the 16
# strings. This proves little about generalisation but a lot about the plumbing: the forward,
# the loss, the backward and the optimiser fit together, so the model can represent and reach
# the targets. A loss that stalls
# well above 0 on one batch points at a bug: a gradient with a wrong sign or factor, a mask that
# hides the targets, parameters the optimiser does not update, gradients that are never zeroed.
# (A model too small to memorise 16 strings is rare; lowering the learning rate is the first
# thing to try when the loss jumps around instead.)
#
# ## 5. Your loop against the library's `Trainer`
#
# `Trainer.fit` does what `HandAdam.step` does, batch after batch: each epoch it shuffles the
# pairs with its `rng` and groups them by source length into batches of 32
# (`make_batches(..., rng=rng, bucket=True)`), then runs forward, backward, `clip_grad_norm` and
# `Adam.step`. Given the same seed, the same data and the same number of updates, the two must give
# the same loss at every update: here 3 epochs of 63 updates each.

# %%
def hand_fit(epochs, seed=0):
    model, rng = new_model(), np.random.default_rng(seed)
    hand = HandAdam(model, lr=0.01)
    losses = []
    for _ in range(epochs):
        for batch in make_batches(pairs, 32, rng=rng, bucket=True, **ids):
            losses.append(hand.step(batch))
    return losses


start = time.perf_counter()
hand_losses = hand_fit(3)
print(f"hand loop: {len(hand_losses)} updates in {time.perf_counter() - start:.1f} s")

model = new_model()
trainer = ta.Trainer(model, ta.Adam(model.named_parameters(), lr=0.01), batch_size=32, clip=5.0,
                     rng=np.random.default_rng(0), show_progress=False, **ids)
trainer.fit(pairs, epochs=3)
lib_losses = np.array(trainer.batch_losses)
diff = np.abs(np.array(hand_losses) - lib_losses).max()
for k in (0, 1, 62, 125, 188):
    print(f"update {k + 1:3}: hand {hand_losses[k]:.10f}   Trainer {lib_losses[k]:.10f}")
print(f"largest difference over {len(lib_losses)} updates: {diff:.1e}")
print("Trainer's epoch means:", " ".join(f"{r.train_loss:.4f}" for r in trainer.history))
assert len(hand_losses) == len(lib_losses) and diff < 1e-9

fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.4))
ax1.semilogy(range(1, 151), one_batch_losses, color="C0")
ax1.axhline(math.log(len(vocab)), color="gray", ls="--", lw=1)
ax1.text(120, math.log(len(vocab)) * 0.5, "ln V", color="gray")
ax1.set(title="one batch of 16, over and over", xlabel="update", ylabel="loss (nats, log scale)")
ax2.plot(range(1, len(lib_losses) + 1), lib_losses, "o", ms=5, color="C1", label="Trainer.fit")
ax2.plot(range(1, len(hand_losses) + 1), hand_losses, ".", ms=3, color="k", label="hand loop")
ax2.set(title="2,000 strings, 3 epochs", xlabel="update", ylabel="loss of the batch (nats)")
ax2.legend()
fig.tight_layout()

# %% [markdown]
# Right: the same 189 losses, to the last printed digit (the black dots sit in the orange ones).
# The largest difference, printed above, is round-off: the library writes the Adam step as
# `(lr / (1 − β1^t)) · m / (√(v / (1 − β2^t)) + ε)`, the same expression in another order (§9.2). The epoch means the `Trainer` records are means
# over tokens (each batch's loss weighted by its real tokens), not over batches.
#
# What the `Trainer` adds to these lines is bookkeeping, not mathematics: a learning-rate
# schedule (§9.4, §9.5), validation and early stopping, checkpoints that resume exactly, and
# checks that stop training when a loss or gradient becomes NaN or inf before it reaches the
# weights.
#
# ## 6. The rest of the toolbox, by hand
#
# Five more pieces of `docs/equations.md` that `Seq2Seq`, `Trainer` and lesson 11 use. Each is a few
# lines of NumPy; here each is computed by hand on tiny arrays and asserted against the library.
#
# **Label smoothing** (§6.1; C. Szegedy et al., *Rethinking the Inception Architecture for
# Computer Vision*, CVPR 2016, §7). Each real token's target becomes
# $q_{bt} = (1 - \varepsilon)\, \text{onehot}(y_{bt}) + \varepsilon u$, with $u$ uniform over the
# $V - 1$ classes other than `<pad>` ($u_{\text{pad}} = 0$: the pad is never a target); then
# $L = -\frac{1}{N} \sum_{b,t:\ m_{bt} = 1} \sum_v q_{bt}[v] \log p_{bt}[v]$ and
# $\partial L / \partial\, \text{logits}_{bt} = (p_{bt} - q_{bt})\, m_{bt} / N$. The batch of
# section 2 (`logits6`, pads at `<pad>` = 0), with $\varepsilon = 0.1$:

# %%
eps_ls, pad = 0.1, 0
q = np.full((3, 6, V), eps_ls / (V - 1))  # ε u on the V − 1 classes other than <pad>
q[..., pad] = 0.0
np.put_along_axis(q, targets[..., None], 1 - eps_ls + eps_ls / (V - 1), axis=-1)  # + (1 − ε) at y
log_p6 = logits6 - np.log(np.exp(logits6).sum(-1, keepdims=True))  # §8.2 (small logits: no shift)
n_real = mask.sum()
hand_ls = -(q * log_p6).sum(-1)[mask].sum() / n_real
hand_dls = (np.exp(log_p6) - q) * mask[..., None] / n_real
lib_ls, lib_dls = sequence_cross_entropy(logits6, targets, mask, label_smoothing=eps_ls, pad_id=pad)
assert np.isclose(hand_ls, lib_ls) and np.allclose(hand_dls, lib_dls)
assert not lib_dls[~mask].any() and np.allclose(q[mask].sum(-1), 1.0)
# a model that predicts p = q exactly (the <pad> logit far below the rest) scores the entropy of q
entropy_q = -(q[mask] * np.log(q[mask], where=q[mask] > 0, out=np.zeros_like(q[mask]))).sum(-1)
best, _ = sequence_cross_entropy(np.where(q > 0, np.log(np.maximum(q, 1e-300)), -60.0), targets,
                                 mask, label_smoothing=eps_ls, pad_id=pad)
print(f"smoothed loss: by hand {hand_ls:.6f}, library {lib_ls:.6f} (unsmoothed {lib6:.6f})")
print(f"least possible smoothed loss, at p = q: {best:.6f} = entropy of q {entropy_q.mean():.6f}")
assert np.isclose(best, entropy_q.mean())

# %% [markdown]
# A smoothed loss never reaches 0: at best, 0.673844 nats per token (V = 40, ε = 0.1), the entropy
# of $q$, reached when the model predicts $q$ itself. So the gradient stops pushing the target's logit up once its
# probability reaches $1 - \varepsilon + \varepsilon / (V - 1)$: the logits stay finite, and the
# model stays less sure of itself than the training data would make it.
#
# **SGD** (§9.1), with PyTorch's momentum $\mu$ and weight decay $\lambda$:
# $g \leftarrow g + \lambda w$, $b \leftarrow \mu b + g$ (from $b = 0$), $w \leftarrow w -
# \text{lr} \cdot b$. Three updates with a constant gradient:

# %%
w_sgd, g_sgd = np.array([1.0, -2.0]), np.array([0.5, 0.25])
sgd = ta.SGD([("w", w_sgd, g_sgd)], lr=0.1, momentum=0.9, weight_decay=0.01)
w_hand, b_hand = w_sgd.copy(), np.zeros(2)
for t in range(1, 4):
    g_t = g_sgd + 0.01 * w_hand  # weight decay, added to the gradient
    b_hand = 0.9 * b_hand + g_t  # momentum buffer
    w_hand = w_hand - 0.1 * b_hand
    sgd.step()  # updates w_sgd in place
    print(f"update {t}: by hand {w_hand}, ta.SGD {w_sgd}, step size {np.abs(0.1 * b_hand)}")
    assert np.allclose(w_sgd, w_hand)

# %% [markdown]
# With momentum the steps grow while the gradient keeps its direction, towards
# $\text{lr} \cdot g / (1 - \mu)$, ten times plain SGD's step for $\mu = 0.9$: momentum speeds up
# travel along a consistent direction and averages out gradients that flip sign.
#
# **Learning-rate schedules.** Step decay (§9.4): $\text{lr}_e = \text{lr}_0 \cdot
# \gamma^{\lfloor e / \text{step\_size} \rfloor}$ in epoch $e = 0, 1, \dots$ Decay on a plateau
# (§9.5): after each epoch's validation loss $L_e$, if $\text{best} - L_e > \text{threshold} \cdot
# |\text{best}|$ then $\text{best} = L_e$ and $\text{bad} = 0$, else $\text{bad}$ grows by one;
# when $\text{bad}$ reaches the patience, $\text{lr} = \max(\text{factor} \cdot \text{lr},
# \text{min\_lr})$ and $\text{bad} = 0$. Both by hand, against `ta.StepDecay` and
# `ta.PlateauDecay`, over a made-up sequence of validation losses (the schedules only set `opt.lr`):

# %%
def optimiser_with_lr(lr):  # a schedule only reads and sets its optimiser's lr
    return ta.SGD([("w", np.zeros(1), np.zeros(1))], lr=lr)


opt_step = optimiser_with_lr(0.1)
step_decay = ta.StepDecay(opt_step, step_size=2, gamma=0.5)
step_lib = [opt_step.lr] + [step_decay.step() for _ in range(5)]  # lr of epochs 0..5
step_hand = [0.1 * 0.5 ** (e // 2) for e in range(6)]
assert np.allclose(step_lib, step_hand)
print("step decay, epochs 0-5:", step_lib)

valid = [2.0, 1.5, 1.49995, 1.6, 1.4, 1.45, 1.41, 1.3]  # 1.49995: better by less than 1e-4 · 1.5
opt_plateau = optimiser_with_lr(0.1)
plateau = ta.PlateauDecay(opt_plateau, factor=0.5, patience=2, threshold=1e-4)
best_h, bad, lr_h = math.inf, 0, 0.1
for e, loss_e in enumerate(valid):
    improved = math.isinf(best_h) or best_h - loss_e > 1e-4 * abs(best_h)
    best_h, bad = (loss_e, 0) if improved else (best_h, bad + 1)
    if bad == 2:  # patience
        lr_h, bad = max(0.5 * lr_h, 0.0), 0
    lr_lib = plateau.step(loss_e)
    print(f"epoch {e}: valid loss {loss_e:<8} improved {improved!s:5}  next lr: by hand {lr_h}, "
          f"PlateauDecay {lr_lib}")
    assert lr_lib == lr_h and plateau.best == best_h

# %% [markdown]
# Step decay follows the calendar; plateau decay follows the validation loss. Epoch 2's loss is
# lower than epoch 1's but by less than the relative threshold, so it counts as no improvement,
# and with epoch 3 that makes two bad epochs in a row: the rate halves. The lower losses that
# follow are improvements, but two more bad epochs halve it again.
#
# **Dropout** (§9.6; N. Srivastava et al., *Dropout: a simple way to prevent neural networks from
# overfitting*, JMLR 2014). In train mode $y = x \odot m$ with $m_i = [u_i \ge p] / (1 - p)$, $u_i$
# uniform in [0, 1), and $dx = dy \odot m$; in eval mode the identity. `tinyattn.layers.Dropout`
# draws $u$ from its `rng`; the same seed gives us the same mask by hand:

# %%
from tinyattn.layers import Dropout

p_drop = 0.4
x_d, dy_d = np.random.default_rng(2).standard_normal((2, 2, 5))
drop = Dropout(p_drop)
drop.rng = np.random.default_rng(7)
y_d = drop(x_d)
m_d = (np.random.default_rng(7).random(x_d.shape) >= p_drop) / (1 - p_drop)  # the same draws
assert np.array_equal(y_d, x_d * m_d) and np.array_equal(drop.backward(dy_d), dy_d * m_d)
print("mask m:\n", m_d)
drop.eval()
assert drop(x_d) is x_d  # eval mode: the identity, no scaling
drop.train()
drop.rng = np.random.default_rng(3)
ones = np.ones((1000, 1000))
kept = drop(ones)
print(f"train mode on 10^6 ones: kept {(kept > 0).mean():.4f} of them, mean output {kept.mean():.4f}")
assert abs(kept.mean() - 1.0) < 0.01

# %% [markdown]
# Each kept unit is scaled by $1/(1 - p)$, so the output's expectation is the input: the mean over a
# million ones is close to 1 although four in ten are dropped. The scaling happens while training
# ("inverted" dropout), so the trained model is used as it is in eval mode; the backward is the
# same mask, so with the mask held fixed the gradient check of lesson 00 applies unchanged.
#
# ## 7. Summary
#
# - The loss is the mean of $-\log p[y]$ over the **N real tokens**; its gradient is
#   $(p - \text{onehot}(y))\, m / N$, zero at pads. Dividing by B·T makes a sentence's loss depend
#   on the padding of its batch; dividing the gradient by B scales every update wrongly.
# - Adam: $m$, $v$ as running means, bias-corrected with $t$ from 1, $\varepsilon$ outside the
#   root; its first step is $-\text{lr} \cdot \text{sign}(g)$.
# - Before training for real: the untrained loss should be near $\ln V$, and one batch should be
#   learnable to a loss near 0.
# - A hand loop of forward, backward, clip and Adam gives, update for update, the losses of
#   `Trainer.fit`.
# - Label smoothing (§6.1) replaces the one-hot target by $q$, which gives `<pad>` nothing; SGD with
#   momentum (§9.1), step and plateau decay (§9.4, §9.5) and inverted dropout (§9.6) are each a
#   few lines, and the library's versions compute exactly those lines.
#
# **Try next.** Remove `model.zero_grad()` from `HandAdam.step` and rerun the one-batch check:
# what happens to the loss, and why? Replace the hand Adam
# by SGD (`w -= lr * g`): which learning rate overfits the batch in 150 updates?
#
# **Next.** Lesson 11: a real corpus, English → Chinese, trained with exactly this loop.
