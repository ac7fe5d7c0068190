"""Checkpoints: a no-pickle ``.npz`` round trip, atomic writes, format versions,
and clear errors when parameters do not fit the model (docs/design.md §5)."""

import os

import numpy as np
import pytest

import tinyattn as ta
import tinyattn.training.checkpoint as ckpt
from tinyattn.module import Module
from tinyattn.training.checkpoint import (
    FORMAT_VERSION,
    load_checkpoint,
    load_params_into,
    module_params,
    save_checkpoint,
)
from tinyattn.training.optim import Adam

CONFIG = {"in_size": 3, "hidden": 4, "out_size": 2, "dims": [3, 4, 2], "name": "tiny"}


class Tiny(Module):
    """Two linear layers, so parameter names are dotted (``enc.W``, ``dec.b``)."""

    def __init__(self, in_size=3, hidden=4, out_size=2, *, seed=0, bias=True,
                 dtype=np.float64):
        super().__init__(dtype)
        rng = np.random.default_rng(seed)
        self.enc = ta.Linear(in_size, hidden, rng=rng, dtype=dtype)
        self.dec = ta.Linear(hidden, out_size, rng=rng, bias=bias, dtype=dtype)

    def train_step(self, opt, x):
        opt.zero_grad()
        h = np.tanh(self.enc(x))
        y = self.dec(h)
        dh = self.dec.backward(y)  # loss 0.5 * sum(y**2): dL/dy = y
        self.enc.backward(dh * (1 - h**2))  # tanh' = 1 - h**2
        opt.step()


def _x(dtype=np.float64):
    return np.random.default_rng(7).standard_normal((5, 3)).astype(dtype)


def _trained(steps=2, dtype=np.float64):
    model = Tiny(dtype=dtype)
    opt = Adam(model.named_parameters(), lr=0.01)
    for _ in range(steps):
        model.train_step(opt, _x(dtype))
    return model, opt


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_round_trip(tmp_path, dtype):
    model, opt = _trained(dtype=dtype)
    path = tmp_path / "model.npz"
    extra = {"epoch": np.array(5), "history": np.array([2.5, 1.5]), "note": np.array("hi")}
    save_checkpoint(path, params=module_params(model), config=CONFIG,
                    optimizer_state=opt.state_dict(), extra=extra)
    ck = load_checkpoint(path)
    assert ck.format_version == FORMAT_VERSION and ck.config == CONFIG
    assert list(ck.params) == ["enc.W", "enc.b", "dec.W", "dec.b"]
    for name, value, _ in model.named_parameters():
        assert ck.params[name].dtype == dtype
        np.testing.assert_array_equal(ck.params[name], value)
    assert set(ck.optimizer_state) == set(opt.state_dict())
    for k, v in opt.state_dict().items():
        np.testing.assert_array_equal(ck.optimizer_state[k], v)
        assert ck.optimizer_state[k].dtype == v.dtype
    assert ck.extra["epoch"] == 5 and ck.extra["note"] == "hi"
    np.testing.assert_array_equal(ck.extra["history"], [2.5, 1.5])


def test_file_loads_with_allow_pickle_false(tmp_path):
    model, opt = _trained()
    path = tmp_path / "model.npz"
    save_checkpoint(path, params=module_params(model), config=CONFIG,
                    optimizer_state=opt.state_dict())
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    assert {"meta", "param/enc.W", "param/dec.b", "optim/t", "optim/m/enc.W"} <= set(arrays)
    assert all(not a.dtype.hasobject for a in arrays.values())
    assert arrays["meta"].shape == () and arrays["meta"].dtype.kind == "U"


def test_resume_from_file_equals_uninterrupted_run(tmp_path):
    model, opt = _trained(steps=6)
    want = module_params(model)
    half, half_opt = _trained(steps=3)
    save_checkpoint(tmp_path / "c.npz", params=module_params(half), config=CONFIG,
                    optimizer_state=half_opt.state_dict())
    ck = load_checkpoint(tmp_path / "c.npz")
    resumed = Tiny(seed=99)  # other initial values, overwritten by the checkpoint
    opt2 = Adam(resumed.named_parameters(), lr=0.5)
    load_params_into(resumed, ck.params)
    opt2.load_state_dict(ck.optimizer_state)
    for _ in range(3):
        resumed.train_step(opt2, _x())
    for name, value in module_params(resumed).items():
        np.testing.assert_array_equal(value, want[name])


def test_no_optimizer_state_loads_as_none(tmp_path):
    save_checkpoint(tmp_path / "c.npz", params=module_params(Tiny()), config={})
    ck = load_checkpoint(tmp_path / "c.npz")
    assert ck.optimizer_state is None and ck.extra == {} and ck.config == {}


def test_path_is_written_as_given(tmp_path):
    save_checkpoint(tmp_path / "model.ckpt", params=module_params(Tiny()), config=CONFIG)
    assert os.listdir(tmp_path) == ["model.ckpt"]
    assert load_checkpoint(str(tmp_path / "model.ckpt")).config == CONFIG


class Crash(Exception):
    pass


def _partial_savez(f, **arrays):
    f.write(b"PK\x03\x04 half a zip file")
    raise Crash("disk full")


def _failing_replace(src, dst):
    raise Crash("power cut")


def _interrupting_savez(f, **arrays):
    raise KeyboardInterrupt


@pytest.mark.parametrize("target, fake, exc", [
    ("np.savez", _partial_savez, Crash),
    ("os.replace", _failing_replace, Crash),
    ("np.savez", _interrupting_savez, KeyboardInterrupt),
])
def test_crash_mid_save_keeps_previous_checkpoint(tmp_path, monkeypatch, target, fake, exc):
    path = tmp_path / "model.npz"
    save_checkpoint(path, params=module_params(Tiny(seed=0)), config=CONFIG)
    old_bytes = path.read_bytes()
    module, attr = target.split(".")
    monkeypatch.setattr(getattr(ckpt, module), attr, fake)
    with pytest.raises(exc):
        save_checkpoint(path, params=module_params(Tiny(seed=1)), config={"new": True})
    monkeypatch.undo()
    assert os.listdir(tmp_path) == ["model.npz"]  # no temporary file left behind
    assert path.read_bytes() == old_bytes
    ck = load_checkpoint(path)
    assert ck.config == CONFIG
    np.testing.assert_array_equal(ck.params["enc.W"], Tiny(seed=0).enc.params["W"])


def test_crash_on_first_save_leaves_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(ckpt.np, "savez", _partial_savez)
    with pytest.raises(Crash):
        save_checkpoint(tmp_path / "model.npz", params=module_params(Tiny()), config=CONFIG)
    assert os.listdir(tmp_path) == []


def test_format_version_mismatch(tmp_path):
    path = tmp_path / "future.npz"
    save_checkpoint(path, params=module_params(Tiny()), config=CONFIG,
                    format_version=FORMAT_VERSION + 1)
    with pytest.raises(ValueError, match=rf"format version {FORMAT_VERSION + 1}, but this "
                                         rf"tinyattn reads format version {FORMAT_VERSION}"):
        load_checkpoint(path)


def test_not_a_checkpoint(tmp_path):
    np.savez(tmp_path / "plain.npz", W=np.zeros(3))
    np.save(tmp_path / "array.npy", np.zeros(3))
    (tmp_path / "junk.npz").write_bytes(b"definitely not a zip file")
    (tmp_path / "empty.npz").write_bytes(b"")
    np.savez(tmp_path / "meta.npz", meta=np.array('{"format": "other"}'))
    for name in ["plain.npz", "array.npy", "junk.npz", "empty.npz", "meta.npz"]:
        with pytest.raises(ValueError, match="is not a tinyattn checkpoint"):
            load_checkpoint(tmp_path / name)


def test_missing_file_is_named(tmp_path):
    path = tmp_path / "nope.npz"
    with pytest.raises(FileNotFoundError, match="nope.npz"):
        load_checkpoint(path)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        save_checkpoint(tmp_path / "no_dir" / "c.npz", params={}, config={})


def test_save_rejects_unserialisable_input_before_writing(tmp_path):
    params = module_params(Tiny())
    with pytest.raises(TypeError, match="config must be JSON-serialisable"):
        save_checkpoint(tmp_path / "c.npz", params=params, config={"rng": object()})
    with pytest.raises(TypeError, match="config must be a dict"):
        save_checkpoint(tmp_path / "c.npz", params=params, config=[1, 2])
    with pytest.raises(TypeError, match=r"extra\['bad'\].*never pickled"):
        save_checkpoint(tmp_path / "c.npz", params=params, config={},
                        extra={"bad": np.array([{}], dtype=object)})
    assert os.listdir(tmp_path) == []


def test_load_params_into_mismatched_configuration():
    params = module_params(Tiny())
    bigger = Tiny(hidden=5)
    before = module_params(bigger)
    with pytest.raises(ValueError, match=r"enc.W: expected shape \(3, 5\), got \(3, 4\); "
                                         r"enc.b: expected shape \(5,\), got \(4,\)") as err:
        load_params_into(bigger, params)
    assert "another configuration" in str(err.value)
    with pytest.raises(ValueError, match=r"missing \[\], unexpected \['dec.b'\]"):
        load_params_into(Tiny(bias=False), params)
    with pytest.raises(ValueError, match=r"missing \['dec.b'\], unexpected \[\]"):
        load_params_into(Tiny(), {k: v for k, v in params.items() if k != "dec.b"})
    with pytest.raises(TypeError, match="enc.W: expected float32, got float64"):
        load_params_into(Tiny(dtype=np.float32), params)
    with pytest.raises(ValueError, match=r"NaN or inf: \['dec.W'\]"):
        load_params_into(Tiny(), {**params, "dec.W": np.full((4, 2), np.nan)})
    for name, value in module_params(bigger).items():  # nothing was copied
        np.testing.assert_array_equal(value, before[name])


def test_load_params_into_copies_in_place():
    src, dst = Tiny(seed=0), Tiny(seed=1)
    arrays = {name: value for name, value, _ in dst.named_parameters()}
    params = module_params(src)
    load_params_into(dst, params)
    for name, value, _ in dst.named_parameters():
        assert value is arrays[name] and value is not params[name]
        np.testing.assert_array_equal(value, params[name])
