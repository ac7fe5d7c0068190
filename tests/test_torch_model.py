"""`tinyattn.interop.to_torch` / `from_torch` of a whole `Seq2Seq` (issue 12 §5):
the PyTorch model computes the same loss, attention weights and gradients,
to 1e-10 in float64, for every attention, both cells, with and without a
bidirectional encoder, stacked layers, no bridge, label smoothing and (in
eval mode) dropout; a model
trained on in PyTorch comes back to tinyattn with the same loss."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from tinyattn import Seq2Seq  # noqa: E402
from tinyattn.interop import from_torch, to_torch  # noqa: E402
from tinyattn.seq2seq import SIZED_ATTENTIONS  # noqa: E402
from tinyattn.torch_model import TorchSeq2Seq, parameter_map  # noqa: E402

pytestmark = pytest.mark.torch

TOL = 1e-10
SRC = np.array([[3, 4, 5, 6, 7], [6, 7, 8, 0, 0], [9, 3, 0, 0, 0]])
SRC_LENGTHS = np.array([5, 3, 2])
TGT = np.array([[1, 8, 9, 10, 11, 2], [1, 10, 12, 2, 0, 0], [1, 3, 2, 0, 0, 0]])
BATCH = (SRC, SRC_LENGTHS, TGT[:, :-1], TGT[:, 1:], np.array([5, 3, 2]))

CONFIGS = {  # id -> Seq2Seq keyword arguments
    "bahdanau-gru": dict(attention="bahdanau"),
    "bahdanau-lstm-uni": dict(attention="bahdanau", cell="lstm", bidirectional=False),
    "dot-lstm": dict(attention="dot", cell="lstm"),
    "scaled_dot-gru": dict(attention="scaled_dot"),
    "general-gru-feed": dict(attention="general", input_feeding=True),
    "concat-gru-feed": dict(attention="concat", input_feeding=True, attn_size=6),
    "local-m-gru": dict(attention="local-m", window=1),
    "local-p-lstm": dict(attention="local-p", cell="lstm", window=1, attn_size=3),
    "plain-gru": dict(attention=None),
    "plain-lstm-uni": dict(attention=None, cell="lstm", bidirectional=False),
    "bahdanau-smoothed": dict(attention="bahdanau", label_smoothing=0.1),
    "general-dropout-eval": dict(attention="general", dropout=0.3),
    "bahdanau-gru-2": dict(attention="bahdanau", num_layers=2),
    "bahdanau-lstm-3-dropout-eval": dict(attention="bahdanau", cell="lstm", num_layers=3,
                                         dropout=0.2),
    "general-gru-feed-2-uni": dict(attention="general", input_feeding=True, num_layers=2,
                                   bidirectional=False),
    "local-p-gru-2": dict(attention="local-p", window=1, num_layers=2),
    "plain-lstm-2": dict(attention=None, cell="lstm", num_layers=2),
    "bahdanau-gru-no-bridge": dict(attention="bahdanau", bridge=False),
    "general-lstm-2-no-bridge": dict(attention="general", cell="lstm", num_layers=2,
                                     bridge=False),
    "plain-gru-no-bridge": dict(attention=None, bridge=False),
}


def make(seed=0, **kw):
    return Seq2Seq(11, 13, **{"emb_size": 5, "hidden_size": 4, **kw},
                   rng=np.random.default_rng(seed))


def torch_grads(twin, config):
    """The torch gradients under tinyattn's names (transposed, biases summed back)."""
    theirs = dict(twin.named_parameters())
    grads = {}
    for name, source, how in parameter_map(config):
        if how == "sum":
            g = theirs[source[0]].grad  # b feeds both of PyTorch's biases alike
            assert torch.allclose(g, theirs[source[1]].grad, rtol=0, atol=TOL)
        else:
            g = theirs[source].grad.T if how == "T" else theirs[source].grad
        grads[name] = g.numpy()
    return grads


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_same_loss_attention_and_gradients(name):
    model = make(**CONFIGS[name])
    if model.uses_dropout:
        model.eval()  # the two draw their masks differently
    twin = to_torch(model)
    assert isinstance(twin, TorchSeq2Seq) and twin.training == model.training
    loss = model(*BATCH)
    model.zero_grad()
    model.backward()
    t_loss = twin(*BATCH)  # NumPy arrays in, as tinyattn takes them
    t_loss.backward()
    assert abs(loss - t_loss.item()) <= TOL, (loss, t_loss.item())
    if model.attention_weights is not None:
        err = np.max(np.abs(model.attention_weights - twin.attention_weights.detach().numpy()))
        assert err <= TOL
    grads = torch_grads(twin, model.config)
    assert sorted(grads) == sorted(n for n, _, _ in model.named_parameters())
    for pname, _, grad in model.named_parameters():
        err = np.max(np.abs(grad - grads[pname]))
        assert err <= TOL * max(1.0, np.max(np.abs(grad))), f"{name}: {pname} off by {err:.3g}"


def test_a_wrong_weight_copy_is_caught():
    """The comparison can fail: a transposition left out of the copy (here a
    square W_a, so the shapes still fit) changes the loss."""
    model = make(attention="bahdanau")
    twin = to_torch(model)
    with torch.no_grad():
        twin.W_a.copy_(twin.W_a.T.clone())
    assert abs(model(*BATCH) - twin(*BATCH).item()) > 1e-6


@pytest.mark.parametrize("num_layers", [1, 2])
def test_round_trip_and_mode(num_layers):
    model = make(attention="local-p", cell="lstm", dropout=0.2, num_layers=num_layers)
    back = from_torch(to_torch(model))
    assert back.config == model.config and back.training
    for (n, a, _), (_, b, _) in zip(model.named_parameters(), back.named_parameters()):
        np.testing.assert_array_equal(a, b, err_msg=n)
    assert to_torch(model.eval()).training is False
    twin = to_torch(model.train())
    torch.manual_seed(0)
    first, second = twin(*BATCH).item(), twin(*BATCH).item()
    assert first != second  # PyTorch's dropout is on in train mode
    twin.eval()
    assert twin(*BATCH).item() == pytest.approx(model.eval()(*BATCH), abs=TOL)


def test_train_in_torch_then_come_back():
    """Continue training in PyTorch (its Adam), bring the model back: tinyattn
    computes the loss PyTorch reached."""
    model = make(attention="bahdanau")
    start = model(*BATCH)
    twin = to_torch(model)
    opt = torch.optim.Adam(twin.parameters(), lr=0.05)
    for _ in range(30):
        opt.zero_grad()
        loss = twin(*BATCH)
        loss.backward()
        opt.step()
    reached = twin(*BATCH).item()
    assert reached < start / 2
    back = from_torch(twin)
    assert back(*BATCH) == pytest.approx(reached, abs=TOL)
    # an LSTM's two PyTorch biases both moved: tinyattn's one bias is their sum
    model = make(attention="dot", cell="lstm")
    twin = to_torch(model)
    opt = torch.optim.SGD(twin.parameters(), lr=0.5)
    for _ in range(3):
        opt.zero_grad()
        twin(*BATCH).backward()
        opt.step()
    assert twin.cells[0].bias_hh.abs().max() > 0
    assert from_torch(twin)(*BATCH) == pytest.approx(twin(*BATCH).item(), abs=TOL)


def test_float32_and_refusals():
    model = Seq2Seq(11, 13, emb_size=5, hidden_size=4, attention="dot",
                    rng=np.random.default_rng(0), dtype=np.float32)
    twin = to_torch(model)
    assert twin.out.weight.dtype == torch.float32
    assert abs(model(*BATCH) - twin(*BATCH).item()) < 1e-5
    assert from_torch(twin).dtype == np.float32


@pytest.mark.parametrize("attention", [a for a in SIZED_ATTENTIONS])
def test_attn_size_other_than_the_state(attention):
    model = make(attention=attention, attn_size=7)
    twin = to_torch(model)
    assert abs(model(*BATCH) - twin(*BATCH).item()) <= TOL
