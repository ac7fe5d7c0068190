"""The model protocol (docs/models.md) is the seam: a second, unrelated model
class runs through Trainer, greedy and beam decoding and checkpoints with no
special case for it."""

import numpy as np

from tinyattn.decoding import beam_search, greedy_decode
from tinyattn.functional import length_mask, log_softmax
from tinyattn.gradcheck import TOL_MODEL, check_gradients
from tinyattn.layers import Embedding, Linear
from tinyattn.losses import sequence_cross_entropy
from tinyattn.module import Module
from tinyattn.training.checkpoint import SavesCheckpoints
from tinyattn.training.optim import Adam
from tinyattn.training.trainer import Trainer

PAD, SOS, EOS = 0, 1, 2


class BagModel(SavesCheckpoints, Module):
    """The next token from the previous one plus the mean source embedding:
    ``logits_i = (E_tgt[y_{i-1}] + mean_j E_src[x_j]) @ W + b``."""

    def __init__(self, src_vocab, tgt_vocab, *, size, attention=None, rng, dtype=np.float64):
        assert attention is None  # this model does not attend
        super().__init__(dtype)
        self.config = dict(src_vocab=src_vocab, tgt_vocab=tgt_vocab, size=size,
                           attention=None, dtype=np.dtype(dtype).name)
        self.src_emb = Embedding(src_vocab, size, pad_id=PAD, rng=rng, dtype=dtype)
        self.tgt_emb = Embedding(tgt_vocab, size, pad_id=PAD, rng=rng, dtype=dtype)
        self.out = Linear(size, tgt_vocab, rng=rng, dtype=dtype)
        self.attention_weights = self.attention_positions = None

    def start(self, src, src_lengths):
        lengths = np.asarray(src_lengths)
        mask = length_mask(lengths, src.shape[1])[..., None]  # (B, S, 1)
        return (self.src_emb(src) * mask).sum(axis=1) / lengths[:, None], None  # (B, E)

    def forward(self, src, src_lengths, tgt_in, tgt_out, tgt_lengths):
        mean = self.start(src, src_lengths)[0]
        logits = self.out(self.tgt_emb(tgt_in) + mean[:, None, :])  # (B, T, V)
        loss, dlogits = sequence_cross_entropy(
            logits, np.asarray(tgt_out), length_mask(np.asarray(tgt_lengths), tgt_in.shape[1]))
        self._cache = (dlogits, np.asarray(src_lengths), src.shape[1])
        return loss

    def backward(self):
        dlogits, lengths, S = self._take_cache()
        dx = self.out.backward(dlogits)  # (B, T, E)
        self.tgt_emb.backward(dx)
        dmean = dx.sum(axis=1) / lengths[:, None]  # the mean fed every step
        mask = length_mask(lengths, S)[..., None]
        self.src_emb.backward(np.broadcast_to(dmean[:, None, :], mask.shape[:2] + dmean.shape[1:])
                              * mask)

    def decode_step(self, y_prev, memory, carry, t):
        logits = self.out.apply(self.tgt_emb.params["W"][y_prev] + memory)  # (B, V)
        return log_softmax(logits, axis=1), carry, None


def _pairs(n, rng):
    """Target: the source's distinct tokens in increasing order (a set task)."""
    pairs = []
    for _ in range(n):
        src = list(rng.integers(3, 9, size=rng.integers(2, 6)))
        pairs.append((src, sorted(set(int(x) for x in src))))
    return pairs


def test_a_second_model_trains_decodes_and_resumes(tmp_path):
    rng = np.random.default_rng(0)
    model = BagModel(9, 9, size=16, rng=rng)
    train = _pairs(400, rng)
    trainer = Trainer(model, Adam(model.named_parameters(), lr=0.05), pad_id=PAD, sos_id=SOS,
                      eos_id=EOS, batch_size=32, rng=np.random.default_rng(1),
                      show_progress=False)
    before = trainer.evaluate(train)
    history = trainer.fit(train, train[:100], epochs=3, checkpoint_path=tmp_path / "m.npz")
    assert history[-1].train_loss < 0.6 * before
    assert model.training  # Trainer leaves the model in train mode

    src = np.array([[3, 5, 5, 0], [8, 4, 0, 0]])
    lengths = np.array([3, 2])
    greedy = greedy_decode(model, src, lengths, max_len=6, sos_id=SOS, eos_id=EOS)
    beams = beam_search(model, src, lengths, beam_size=3, max_len=6, sos_id=SOS, eos_id=EOS)
    assert model.training  # the decoders restore the mode
    for hyp, nbest in zip(greedy, beams):
        assert hyp.tokens and hyp.attention is None
        assert nbest[0].score >= hyp.score - 1e-12  # beam finds at least greedy's score

    loaded = BagModel.load(tmp_path / "m.npz")
    for (name, a, _), (_, b, _) in zip(model.named_parameters(), loaded.named_parameters()):
        np.testing.assert_array_equal(a, b, err_msg=name)
    again = greedy_decode(loaded, src, lengths, max_len=6, sos_id=SOS, eos_id=EOS)
    assert [h.tokens for h in again] == [h.tokens for h in greedy]


def test_the_second_model_s_gradients_are_right():
    """Its backward passes the same whole-model gradient check as Seq2Seq's."""
    rng = np.random.default_rng(3)
    model = BagModel(9, 9, size=5, rng=rng)
    src = np.array([[3, 5, 6], [4, 7, 0]])
    batch = (src, np.array([3, 2]), np.array([[SOS, 3, 5], [SOS, 4, 0]]),
             np.array([[3, 5, EOS], [4, EOS, 0]]), np.array([3, 2]))

    def forward():
        return np.array(model(*batch))

    def backward(dloss):
        model.zero_grad()
        model(*batch)
        model.backward()
        return {name: float(dloss) * grad.copy() for name, _, grad in model.named_parameters()}

    arrays = {name: value for name, value, _ in model.named_parameters()}
    result = check_gradients(forward, backward, arrays, tol=TOL_MODEL)
    assert result.passed, str(result)
