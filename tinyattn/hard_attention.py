"""Hard (stochastic) attention: read ONE annotation per step, trained with REINFORCE.

Soft attention (docs/equations.md §4) reads the expectation ``c_i = Σ_j α_ij
h_j``. Hard attention (Xu et al. 2015, §4.1; document 003 of
docs/sources.md) samples one source position and reads its annotation::

    j_i ~ Categorical(α_i)   (real positions only: α_ij = 0 at pads)
    c_i = h_{j_i}

The sample is not differentiable, so the scores get the score-function
(REINFORCE) estimate of the gradient of the expected loss, with a
moving-average baseline b and an entropy bonus λ_e H(α_i); everything
else (the decoder, the output layer, the annotation h_{j_i} that was read)
gets ordinary backprop. In row-vector form, for the surrogate loss whose
gradient is the estimator (minimised)::

    L_s = −Σ_i (R − b) log α_{i j_i} − λ_e Σ_i H(α_i)
    ∂L_s/∂e_i = −(R − b) (onehot(j_i) − α_i) + λ_e α_i ⊙ (log α_i + H(α_i))

with 0 at pads, R the example's log-likelihood log p(y | x, j_1..T).

Eval mode reads the argmax position, not the expectation: the decoder was
trained on single annotations h_j, never on a mixture Σ_j α_ij h_j, and the
argmax makes decoding deterministic.

Pieces: `sample_positions`, `reinforce_surrogate_forward` /
`reinforce_surrogate_backward` (a pure pair, for the gradient checker),
`reinforce_score_grad` (the estimator itself), `HardAttention` (wraps any
soft `tinyattn.attention.Attention` and plugs into `BahdanauDecoder`), and
`HardSeq2Seq` (a `tinyattn.Seq2Seq` with Bahdanau scores and hard reads,
trained by the ordinary `model(...)`, `model.backward()` loop).
"""

from __future__ import annotations

import numpy as np

from tinyattn._validate import check_array, check_real, check_rng
from tinyattn.attention import Attention
from tinyattn.functional import log_softmax, masked_softmax_forward
from tinyattn.memory import Memory
from tinyattn.module import Module
from tinyattn.seq2seq import Seq2Seq


def _check_alpha_mask(alpha, mask, name="alpha"):
    alpha = check_array(alpha, name, (None, None), None)
    mask = np.asarray(mask)
    if mask.dtype != bool or mask.shape != alpha.shape:
        raise ValueError(f"mask must be a bool array of the shape of {name} {alpha.shape}, "
                         f"got {mask.dtype} {mask.shape}")
    if not mask.any(axis=1).all():
        raise ValueError("mask must have at least one real (True) position in every row")
    return alpha, mask


def _check_positions(positions, mask):
    positions = np.asarray(positions)
    B, S = mask.shape
    if positions.shape != (B,) or positions.dtype.kind not in "iu":
        raise ValueError(f"positions must be B={B} integers, got {positions.dtype} "
                         f"{positions.shape}")
    if (positions < 0).any() or (positions >= S).any() or not mask[np.arange(B), positions].all():
        raise ValueError("positions must index real (unmasked) source positions")
    return positions


def sample_positions(alpha, mask, rng):
    """One position per row, ``j_b ~ Categorical(alpha[b])``, never a pad.

    alpha (B, S) attention weights (0 at pads), mask (B, S) bool, rng a
    `np.random.Generator` (the only randomness). Returns ``(B,)`` ints.
    Inverse CDF: j is the first position whose cumulative weight exceeds
    u ~ U[0, 1); a pad adds no weight, so its interval is empty.
    """
    alpha, mask = _check_alpha_mask(alpha, mask)
    return _sample(alpha, mask, check_rng(rng))


def _sample(alpha, mask, rng):
    """`sample_positions` without the checks (any float dtype)."""
    cdf = np.cumsum(np.where(mask, alpha, 0.0), axis=1)
    cdf = cdf / cdf[:, -1:]  # exactly 1 at the end, even after rounding
    u = rng.random((alpha.shape[0], 1))
    return (cdf <= u).sum(axis=1)  # the first index with cdf > u


def reinforce_score_grad(alpha, positions, mask, advantage, entropy_weight):
    """∂L_s/∂scores (B, S) of the surrogate loss (see the module docstring).

    ``advantage (B,)`` is R − b; the estimator is ``−advantage ⊙ (onehot(j) −
    α) + λ_e α ⊙ (log α + H)``, exactly 0 at pads.
    """
    alpha, mask = _check_alpha_mask(alpha, mask)
    positions = _check_positions(positions, mask)
    advantage = check_array(advantage, "advantage", (alpha.shape[0],), None)
    entropy_weight = check_real(entropy_weight, "entropy_weight", "[0, inf)")
    return _score_grad(alpha, positions, mask, advantage, entropy_weight)


def _score_grad(alpha, positions, mask, advantage, entropy_weight):
    """`reinforce_score_grad` without the checks (any float dtype)."""
    onehot = np.zeros_like(alpha)
    onehot[np.arange(alpha.shape[0]), positions] = 1.0
    log_a = np.log(np.where(mask & (alpha > 0), alpha, 1.0))  # 0 where α = 0: 0 log 0 = 0
    H = -(alpha * log_a).sum(axis=1, keepdims=True)
    d = -advantage[:, None] * (onehot - alpha) + entropy_weight * alpha * (log_a + H)
    return np.where(mask, d, 0.0)


def reinforce_surrogate_forward(scores, mask, positions, advantage, entropy_weight):
    """``L_s = −Σ_b adv_b log α_{b j_b} − λ_e Σ_b H(α_b)``, α = masked softmax(scores).

    The samples and advantages are constants: this is the loss whose exact
    gradient is the REINFORCE estimate, so the gradient checker can check it.
    Returns ``(L_s, cache)``.
    """
    scores = check_array(scores, "scores", (None, None), None)
    alpha, _ = masked_softmax_forward(scores, mask)
    alpha, mask = _check_alpha_mask(alpha, mask)
    positions = _check_positions(positions, mask)
    B = scores.shape[0]
    advantage = check_array(advantage, "advantage", (B,), None)
    entropy_weight = check_real(entropy_weight, "entropy_weight", "[0, inf)")
    log_a = np.log(np.where(mask & (alpha > 0), alpha, 1.0))  # 0 log 0 = 0
    H = -(alpha * log_a).sum(axis=1)
    loss = -(advantage * log_a[np.arange(B), positions]).sum() - entropy_weight * H.sum()
    return np.asarray(loss), (alpha, positions, mask, advantage, entropy_weight)


def reinforce_surrogate_backward(dloss, cache):
    """Backward of `reinforce_surrogate_forward`: ``(dscores,)``."""
    alpha, positions, mask, advantage, entropy_weight = cache
    return (float(dloss) * reinforce_score_grad(alpha, positions, mask, advantage,
                                                 entropy_weight),)


class HardAttention(Module):
    """Hard attention around a soft one: same scores, one sampled annotation.

    Parameters
    ----------
    base : Attention
        The score (e.g. `BahdanauAttention`); its parameters are this
        module's ``base.*``.
    rng : numpy.random.Generator
        Draws the positions (train mode only).
    entropy_weight : float
        λ_e ≥ 0.
    baseline_decay : float in [0, 1)
        b ← decay · b + (1 − decay) · mean(R), after each `set_reward`.

    The decoder calls ``prepare``/``step``/``step_backward``/
    ``prepare_backward`` as on any attention; between forward and backward
    the caller gives the rewards with `set_reward` (`HardSeq2Seq` does).
    """

    def __init__(self, base: Attention, *, rng, entropy_weight=0.0, baseline_decay=0.9):
        if not isinstance(base, Attention):
            raise TypeError(f"base must be a tinyattn Attention, got {type(base).__name__}")
        super().__init__(base.dtype)
        self.base = base
        self.rng = check_rng(rng)
        self.entropy_weight = check_real(entropy_weight, "entropy_weight", "[0, inf)")
        self.baseline_decay = check_real(baseline_decay, "baseline_decay", "[0, 1)")
        self.baseline = None  # set by the first rewards
        self.positions = None  # no window centres
        self.samples = []  # (B,) positions read at each step of the last forward
        self._advantage = None

    def prepare(self, enc_hs, src_mask) -> Memory:
        """The base attention's memory; starts a new list of samples."""
        self.samples = []
        return self.base.prepare(enc_hs, src_mask)

    def prepare_backward(self, memory: Memory):
        """``denc_hs (B, S, Hk)``, as the base attention finishes it."""
        self._advantage = None  # one reward per forward
        return self.base.prepare_backward(memory)

    def step(self, query, memory: Memory, t: int = 0):
        """``context = h_j (B, Hk)``, ``alpha (B, S)`` (the distribution), cache."""
        check_array(query, "query", (memory.annotations.shape[0], self.base.query_size),
                    self.dtype)
        scores, score_cache = self.base._scores(query[:, None, :], memory, np.array([t]))
        alpha, _ = masked_softmax_forward(scores, self.base._mask(memory, score_cache))
        alpha = alpha[:, 0]
        if self.training:
            j = _sample(alpha, memory.mask, self.rng)
        else:
            j = np.argmax(np.where(memory.mask, alpha, -1.0), axis=1)
        self.samples.append(j)
        B = alpha.shape[0]
        context = memory.annotations[np.arange(B), j]  # (B, Hk)
        return context, alpha, (score_cache, alpha, j, t)

    def attend(self, queries, memory: Memory, steps=None):
        """Not available: hard attention runs one step at a time (`step`)."""
        raise NotImplementedError("HardAttention runs one decoder step at a time (step / "
                                  "step_backward), as BahdanauDecoder calls it")

    def set_reward(self, reward, step_mask):
        """Rewards R (B,) of the last forward, and which of its T steps count
        ((B, T) bool: real target tokens). Updates the baseline."""
        batch = len(self.samples[0]) if self.samples else None
        reward = check_array(reward, "reward", (batch,), None)
        step_mask = np.asarray(step_mask, bool)
        if step_mask.shape != (reward.shape[0], len(self.samples)):
            raise ValueError(f"step_mask must be (B, T) = {(reward.shape[0], len(self.samples))}"
                             f", got {step_mask.shape}")
        b = reward.mean() if self.baseline is None else self.baseline
        self._advantage = (reward - b, step_mask)  # advantage against the old baseline
        d = self.baseline_decay
        self.baseline = d * b + (1.0 - d) * float(reward.mean())

    def step_backward(self, dcontext, cache, memory: Memory, dalpha=None):
        """``dquery (B, Hq)``: backprop into h_j, REINFORCE into the scores."""
        if dalpha is not None:
            raise ValueError("hard attention takes no dalpha: α is not read by the loss")
        if self._advantage is None:
            raise RuntimeError("call set_reward(reward, step_mask) before the backward")
        score_cache, alpha, j, t = cache
        onehot = np.zeros_like(alpha)
        onehot[np.arange(alpha.shape[0]), j] = 1.0
        memory.pending.append((onehot[:, None, :], dcontext[:, None, :]))  # c = h_j
        advantage, step_mask = self._advantage
        real = step_mask[:, t]
        n = max(int(step_mask.sum()), 1)  # the loss is a mean over real target tokens
        dscores = _score_grad(alpha, j, memory.mask, (advantage / n).astype(alpha.dtype),
                              self.entropy_weight / n)
        dscores = np.where(real[:, None], dscores, 0.0)  # pad steps: no reward, no bonus
        return self.base._scores_backward(dscores[:, None, :], score_cache, memory)[:, 0]


class HardSeq2Seq(Seq2Seq):
    """`Seq2Seq` with Bahdanau scores and hard reads (`HardAttention`).

    Takes Seq2Seq's arguments (``attention`` is always "bahdanau";
    ``label_smoothing`` must be 0) plus ``sample_rng``,
    ``entropy_weight`` and ``baseline_decay``. ``model(...)`` returns
    the mean cross-entropy with the sampled reads and hands each
    example's reward R = Σ_i log p(y_i) to the attention, so
    ``model.backward()`` fills REINFORCE score gradients and ordinary
    ones elsewhere: any training loop that runs forward then backward
    trains it. `save` refuses: a checkpoint's config would load as Bahdanau.
    """

    def __init__(self, *args, sample_rng, entropy_weight=0.0, baseline_decay=0.9,
                 **kwargs):
        if kwargs.get("label_smoothing", 0.0):
            raise ValueError("HardSeq2Seq needs label_smoothing=0 (R is the "
                             "log-likelihood of the target)")
        kwargs["attention"] = "bahdanau"
        super().__init__(*args, **kwargs)
        self.decoder.attn = HardAttention(self.decoder.attn, rng=sample_rng,
                                          entropy_weight=entropy_weight,
                                          baseline_decay=baseline_decay)

    def save(self, path, **kwargs):
        """Refused: a checkpoint's config would load as a soft Bahdanau `Seq2Seq`."""
        raise TypeError(f"HardSeq2Seq cannot be saved to {str(path)!r}: a checkpoint records "
                        "a Seq2Seq config, which would load as a soft Bahdanau model; keep "
                        "model.params (a dict of arrays) with numpy.savez if you need them")

    def forward(self, src, src_lengths, tgt_in, tgt_out, tgt_lengths):
        """Seq2Seq's loss; in train mode also the rewards for the backward."""
        loss = super().forward(src, src_lengths, tgt_in, tgt_out, tgt_lengths)
        if self.training:
            tgt_out = np.asarray(tgt_out)
            T = tgt_out.shape[1]
            mask = np.arange(T)[None, :] < np.asarray(tgt_lengths)[:, None]
            logp = log_softmax(self.logits, axis=1)  # (N, V), row-major tokens
            tok = logp[np.arange(len(logp)), tgt_out[mask]]
            reward = np.zeros(tgt_out.shape[0])
            np.add.at(reward, np.nonzero(mask)[0], tok)  # R_b = Σ_i log p(y_bi)
            self.decoder.attn.set_reward(reward, mask)
        return loss
