"""`to_torch(Transformer)`: the same loss and gradients in PyTorch (float64, 1e-10),
back with `from_torch`, and training continued in PyTorch."""

import numpy as np
import pytest

import tinyattn as ta

torch = pytest.importorskip("torch")
from tinyattn.interop import from_torch, to_torch  # noqa: E402
from tinyattn.torch_transformer import TorchTransformer, copy_out  # noqa: E402

SRC = np.array([[3, 4, 5, 6], [6, 7, 0, 0], [5, 0, 0, 0]])
SRC_LEN = np.array([4, 2, 1])
TGT = np.array([[1, 8, 9, 10, 2], [1, 10, 2, 0, 0], [1, 4, 5, 2, 0]])
TGT_LEN = np.array([4, 2, 3])
BATCH = (SRC, SRC_LEN, TGT[:, :-1], TGT[:, 1:], TGT_LEN)
CONFIGS = [{}, {"norm_first": True, "tie_embeddings": True, "label_smoothing": 0.1},
           {"num_encoder_layers": 1, "num_decoder_layers": 3, "num_heads": 4}]


def _model(seed=0, **kw):
    rng = np.random.default_rng(seed)
    opts = dict(d_model=8, num_heads=2, d_ff=7, num_encoder_layers=2, num_decoder_layers=2)
    model = ta.Transformer(11, 13, rng=rng, **{**opts, **kw})
    for _, value, _ in model.named_parameters():  # generic gains and biases
        value += 0.1 * rng.standard_normal(value.shape)
    return model


def _torch_grads(twin, like):
    """The twin's gradients as a tinyattn model's parameters (by copying them out)."""
    grads = from_torch(twin)
    with torch.no_grad():
        for p in twin.parameters():
            p.copy_(p.grad if p.grad is not None else torch.zeros_like(p))
    copy_out(twin, grads)
    return {n: v for n, v, _ in grads.named_parameters()}


@pytest.mark.parametrize("kw", CONFIGS, ids=["post-LN", "pre-LN tied smoothed", "1x3 layers"])
def test_loss_and_every_gradient_equal_pytorch(kw):
    model = _model(**kw)
    model.zero_grad()
    loss = model(*BATCH)
    model.backward()
    twin = to_torch(model)
    assert isinstance(twin, TorchTransformer) and twin.training
    tloss = twin(*BATCH)
    tloss.backward()
    assert abs(loss - tloss.item()) <= 1e-10
    got = _torch_grads(twin, model)
    for name, _, grad in model.named_parameters():
        np.testing.assert_allclose(got[name], grad, rtol=0, atol=1e-10, err_msg=name)


def test_round_trip_and_eval_mode():
    model = _model(dropout=0.2, norm_first=True).eval()
    twin = to_torch(model)
    assert not twin.training
    assert abs(model(*BATCH) - twin(*BATCH).item()) <= 1e-10  # eval: no dropout in either
    back = from_torch(twin)
    assert back.config == model.config and not back.training
    for (n, a, _), (_, b, _) in zip(model.named_parameters(), back.named_parameters()):
        np.testing.assert_array_equal(a, b, err_msg=n)


def test_train_in_tinyattn_continue_in_pytorch():
    """The documented path: a few Adam steps here, then the same in PyTorch."""
    model = _model(seed=1)
    opt = ta.Adam(model.named_parameters(), lr=0.01)
    for _ in range(3):
        model.zero_grad()
        model(*BATCH)
        model.backward()
        opt.step()
    before = model(*BATCH)
    twin = to_torch(model)
    topt = torch.optim.Adam(twin.parameters(), lr=0.01)
    for _ in range(5):
        topt.zero_grad()
        loss = twin(*BATCH)
        loss.backward()
        topt.step()
    assert twin(*BATCH).item() < before
    assert from_torch(twin)(*BATCH) == pytest.approx(twin(*BATCH).item(), abs=1e-10)
