"""The one gradient checker that tests, lessons and exercises all use.

A backward pass is checked against centered finite differences of the
scalar ``L = Σ_k sum(out_k * dout_k)`` with a random upstream gradient
``dout_k`` for every output: a random ``dout`` exercises every path,
where ``dout = 1`` can hide a transposed or summed-away gradient.

Every entry of every input and parameter is perturbed; errors are
reported per array, and, when an array fails, per gate slice of a fused
gate matrix (``W_h`` of an LSTM splits into i, f, g, o) and per time step
of a sequence input.

Error of one entry, with analytic ``a`` and numerical ``n``::

    err = |a − n| / max(|a|, |n|, floor)        floor = noise / tol

``noise`` estimates how far a centered difference can be off by itself:
round-off ``eps · Σ|out · dout| / h`` plus truncation ``h²``. Dividing by
the tolerance makes the floor the size below which an entry cannot be
resolved to ``tol`` relative accuracy; there the comparison becomes an
absolute one, ``|a − n| ≤ noise``. So tiny true gradients (a saturated
tanh gives 1e-6) raise no false alarms, while a real bug, which is off by
about the size of the gradient itself, still fails loudly.
"""

from __future__ import annotations

import inspect

import numpy as np

from tinyattn._gradreport import ArrayReport, GradCheckResult, _breakdown
from tinyattn._validate import check_real, check_size
from tinyattn.module import Module

# Tolerances in one place (docs/design.md §7).
TOL_STEP = 1e-7  # a pure step function
TOL_LAYER = 1e-6  # a sequence layer
TOL_MODEL = 1e-5  # a whole model's loss

# Centered differences have truncation error ~ h^2 f'''/6 and round-off
# ~ eps |L| / h; h = 1e-5 balances the two for float64 and O(1) values
# (measured on an RNN step: abs errors ~1e-10 at 1e-5, ~5e-10 at 1e-6,
# ~5e-9 at 1e-7).
STEP = 1e-5
EPS = float(np.finfo(np.float64).eps)


def _require_float64(name: str, x) -> np.ndarray:
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{name} must be a numpy ndarray, got {type(x).__name__}")
    if x.dtype != np.float64:
        raise TypeError(
            f"gradient checks need float64 (float32 rounding, ~1e-7, swamps the "
            f"finite differences): {name} has dtype {x.dtype.name}"
        )
    return x


def _flatten(tree) -> list:
    """Arrays of a nested tuple/list structure, depth first; None kept."""
    if isinstance(tree, (tuple, list)):
        return [leaf for item in tree for leaf in _flatten(item)]
    return [tree]


def _like(tree, make):
    """A structure shaped like ``tree`` with ``make(leaf)`` at each array; a tuple
    subclass (a stack's `tinyattn.recurrent.StackState`) keeps its type."""
    if isinstance(tree, (tuple, list)):
        items = tuple(_like(item, make) for item in tree)
        keep = isinstance(tree, tuple) and type(tree) is not tuple and not hasattr(tree, "_fields")
        return type(tree)(items) if keep else items  # (a namedtuple becomes a tuple)
    return None if tree is None else make(tree)


def numerical_gradient(f, x: np.ndarray, step: float = STEP) -> np.ndarray:
    """Centered-difference gradient of the scalar ``f()`` w.r.t. ``x``.

    ``x`` is perturbed in place, one entry at a time, and restored.
    """
    grad = np.zeros_like(x)
    flat, gflat = x.reshape(-1), grad.reshape(-1)
    if not np.shares_memory(flat, x):
        raise ValueError("numerical_gradient needs a contiguous array to perturb")
    for k in range(flat.size):
        old = flat[k]
        flat[k] = old + step
        plus = f()
        flat[k] = old - step
        minus = f()
        flat[k] = old
        gflat[k] = (plus - minus) / (2.0 * step)
    return grad


def noise_level(outs, douts, step: float = STEP) -> float:
    """Estimated error of one centered difference of ``Σ out · dout``."""
    scale = sum(float(np.abs(o * d).sum())
                for o, d in zip(_flatten(outs), _flatten(douts)) if o is not None)
    return EPS * max(scale, 1.0) / step + step * step


def _errors(a: np.ndarray, n: np.ndarray, floor: float) -> np.ndarray:
    return np.abs(a - n) / np.maximum(np.maximum(np.abs(a), np.abs(n)), floor)


def check_gradients(forward, backward, arrays: dict, *, tol: float = TOL_LAYER,
                    seed: int = 0, step: float = STEP,
                    gates: dict | None = None, time_axes: dict | None = None):
    """Compare analytic gradients with centered differences.

    Parameters
    ----------
    forward : callable ``() -> outputs``
        Computes the outputs (an array, or a nested tuple of arrays and
        Nones) from the arrays in ``arrays``, read in place.
    backward : callable ``(douts) -> dict``
        Given upstream gradients shaped like the outputs, returns the
        analytic gradient of each name in ``arrays``.
    arrays : dict of name -> float64 ndarray
        Every input and parameter to check; perturbed in place, restored.
        A backward that writes into them (or into the upstream gradients
        it is given) changes nothing: both are restored after it runs.
    tol : float
        Largest error accepted (`TOL_STEP`, `TOL_LAYER`, `TOL_MODEL`).
    seed : int
        Seed of the random upstream gradients.
    gates : dict of name -> tuple of str, optional
        Fused gate matrices: the last axis splits into these slices.
    time_axes : dict of name -> int, optional
        Sequence arrays: report errors per index of this axis.

    Returns
    -------
    GradCheckResult
        Per-array reports; its ``douts`` are the upstream gradients used.
    """
    for name, fn in (("forward", forward), ("backward", backward)):
        if not callable(fn):
            raise TypeError(f"{name} must be callable, got {type(fn).__name__}")
    if not isinstance(arrays, dict):
        raise TypeError(f"arrays must be a dict of name -> float64 ndarray, "
                        f"got {type(arrays).__name__}")
    tol, step = check_real(tol, "tol", "(0, inf)"), check_real(step, "step", "(0, inf)")
    seed = check_size(seed, "seed", low=0)
    for name, x in arrays.items():
        _require_float64(name, x)
    gates, time_axes = gates or {}, time_axes or {}
    outs = forward()
    for k, out in enumerate(_flatten(outs)):
        if out is not None:
            _require_float64(f"output {k}", out)
    rng = np.random.default_rng(seed)
    douts = _like(outs, lambda o: rng.standard_normal(o.shape))
    flat_douts = _flatten(douts)
    floor = noise_level(outs, douts, step) / tol
    saved = {name: x.copy() for name, x in arrays.items()}
    try:
        analytic = backward(_like(douts, np.copy))
        analytic = {k: None if v is None else np.array(v, dtype=np.float64)  # a copy
                    for k, v in analytic.items()}
    finally:  # even when the backward raises, leave the arrays as they were
        for name, x in arrays.items():
            np.copyto(x, saved[name])

    def loss() -> float:
        total = 0.0
        for out, dout in zip(_flatten(forward()), flat_douts):
            if out is not None:
                total += float(np.sum(out * dout))
        return total

    reports = []
    for name, x in arrays.items():
        a = analytic.get(name)
        a = np.zeros_like(x) if a is None else np.asarray(a)
        if a.shape != x.shape:
            raise ValueError(
                f"backward returned a gradient of shape {a.shape} for {name}, "
                f"which has shape {x.shape}"
            )
        n = numerical_gradient(loss, x, step)
        err = _errors(a, n, floor)
        report = ArrayReport(
            name, float(err.max(initial=0.0)),
            float(np.abs(a - n).max(initial=0.0)), tol, numerical=n, analytic=a,
        )
        if not report.passed:
            report.parts = _breakdown(err, gates.get(name), time_axes.get(name))
        reports.append(report)
    return GradCheckResult(reports, tol, floor, douts)


def check_function(forward_fn, backward_fn, *args, tol: float = TOL_STEP,
                   names=None, gates: dict | None = None, seed: int = 0,
                   **kwargs) -> GradCheckResult:
    """Check a pure forward/backward pair (docs/design.md §2).

    ``forward_fn(*args, **kwargs)`` returns ``(out, cache)`` with ``out``
    an array or a tuple of arrays; ``backward_fn(*douts, cache)`` returns
    one gradient per argument of ``forward_fn``, in order. ``names``
    defaults to the parameter names of ``forward_fn``.

    Examples
    --------
    >>> from tinyattn.rnn import rnn_step_forward, rnn_step_backward
    >>> rng = np.random.default_rng(0)
    >>> args = [rng.standard_normal(s) for s in [(2, 5), (2, 6), (5, 6), (6, 6), (6,)]]
    >>> check_function(rnn_step_forward, rnn_step_backward, *args).passed
    True
    """
    for name, fn in (("forward_fn", forward_fn), ("backward_fn", backward_fn)):
        if not callable(fn):
            raise TypeError(f"{name} must be callable, got {type(fn).__name__}")
    if names is None:
        names = list(inspect.signature(forward_fn).parameters)[: len(args)]
    if len(names) != len(args):
        raise ValueError(f"names has {len(names)} entries for {len(args)} arguments")
    arrays = dict(zip(names, args))

    def forward():
        return forward_fn(*args, **kwargs)[0]

    def backward(douts):
        _, cache = forward_fn(*args, **kwargs)
        douts = douts if isinstance(douts, tuple) else (douts,)
        grads = backward_fn(*douts, cache)
        if len(args) == 1 and isinstance(grads, np.ndarray):
            grads = (grads,)  # a one-argument backward may return the bare array
        if not isinstance(grads, tuple) or len(grads) != len(args):
            raise ValueError(
                f"{getattr(backward_fn, '__name__', 'backward')} must return a tuple "
                f"of {len(args)} gradients (one per argument of forward: "
                f"{', '.join(names)}), got "
                f"{len(grads) if isinstance(grads, tuple) else type(grads).__name__}"
            )
        return dict(zip(names, grads))

    return check_gradients(forward, backward, arrays, tol=tol, seed=seed,
                           gates=gates)


def _arg_names(module, args) -> list:
    """``x``, ``state0[0]``, ...: a tuple argument's arrays by index, nested
    tuples (a stack of LSTM states) by index path, ``h0[1][0]``."""
    def name(prefix, arg):
        if isinstance(arg, tuple):
            return tuple(name(f"{prefix}[{i}]", a) for i, a in enumerate(arg))
        return prefix

    params = list(inspect.signature(module.forward).parameters)
    return [name(pname, arg) for pname, arg in zip(params, args)]


def check_module(module, *args, tol: float = TOL_LAYER, names=None,
                 seed: int = 0, **kwargs) -> GradCheckResult:
    """Check a module's backward for every input and parameter.

    ``module(*args, **kwargs)`` is the forward; by the mirror rule
    ``module.backward(*douts)`` returns gradients shaped like ``args``
    (nested tuples such as an LSTM's ``(h0, c0)`` included). ``None``
    arguments are not checked. Parameters appear by dotted name; a fused
    gate matrix of a module with a ``GATES`` attribute is broken down by
    gate on failure, and a (B, T, ...) input by time step.
    """
    if not isinstance(module, Module):
        raise TypeError(f"module must be a tinyattn Module (a layer with forward and "
                        f"backward), got {type(module).__name__}")
    names = _arg_names(module, args) if names is None else names
    flat_args, flat_names = _flatten(args), _flatten(names)
    if not isinstance(names, (list, tuple)) or len(flat_names) != len(flat_args) or not all(
            isinstance(n, str) for n in flat_names):
        raise TypeError(f"names must be a list of str, one per argument (a tuple of str for "
                        f"a tuple argument such as (h0, c0)): {len(flat_args)} in all, "
                        f"got {names!r:.80}")
    # Integer arrays (token ids, lengths) have no gradient; None is "not given".
    arrays = {n: a for n, a in zip(flat_names, flat_args)
              if isinstance(a, np.ndarray) and a.dtype.kind == "f"}
    gates, time_axes = {}, {}
    for n, a in arrays.items():
        if a.ndim == 3:
            time_axes[n] = 1
    for prefix, mod in module.named_modules():
        for pname, value in mod.params.items():
            arrays[prefix + pname] = value
            if getattr(mod, "GATES", None):
                gates[prefix + pname] = mod.GATES

    def forward():
        return module(*args, **kwargs)

    def backward(douts):
        module.zero_grad()
        module(*args, **kwargs)
        in_grads = (module.backward(*douts) if isinstance(douts, tuple)
                    else module.backward(douts))
        # Mirror rule: backward returns one gradient per forward input, so
        # the first len(args) entries belong to the arguments passed here.
        if not isinstance(in_grads, tuple):
            in_grads = (in_grads,)
        in_grads = in_grads[: len(args)]
        grads = {n: g for n, g in zip(flat_names, _flatten(in_grads))}
        for name, _, grad in module.named_parameters():
            grads[name] = grad.copy()
        return grads

    return check_gradients(forward, backward, arrays, tol=tol, seed=seed,
                           gates=gates, time_axes=time_axes)


def check_all_layers(seed: int = 0, verbose: bool = True) -> dict[str, GradCheckResult]:
    """Gradient-check every recurrent layer on a small padded batch.

    ``python -m tinyattn.gradcheck`` runs this and prints one table per
    layer: a quick way to see what a passing check looks like.
    """
    import tinyattn as ta  # imported here: the layers do not depend on the checker
    from tinyattn.recurrent import StackState
    from tinyattn.stacked import StackedRNN

    rng = np.random.default_rng(seed)
    B, T, D, H = 2, 4, 5, 6
    makers = {
        "RNN": lambda: ta.RNN(D, H, rng=rng),
        "GRU (reset_after=True)": lambda: ta.GRU(D, H, rng=rng),
        "GRU (reset_after=False)": lambda: ta.GRU(D, H, reset_after=False, rng=rng),
        "LSTM": lambda: ta.LSTM(D, H, rng=rng),
        "Bidirectional(LSTM)": lambda: ta.Bidirectional(ta.LSTM(D, H, rng=rng),
                                                        ta.LSTM(D, H, rng=rng)),
        "StackedRNN(2 x LSTM)": lambda: StackedRNN([ta.LSTM(D, H, rng=rng),
                                                    ta.LSTM(H, H, rng=rng)]),
    }
    results = {}
    for name, make in makers.items():
        layer = make()
        x = rng.standard_normal((B, T, D))
        h0 = rng.standard_normal((B, layer.hidden_size))
        state0 = (h0, rng.standard_normal(h0.shape)) if "LSTM" in name else h0
        names = ["x", ("h0", "c0") if "LSTM" in name else "h0"]
        if isinstance(layer, StackedRNN):  # a state per layer: (h0, c0) of layers 0 and 1
            state0 = StackState([state0, (rng.standard_normal(h0.shape),
                                          rng.standard_normal(h0.shape))])
            names = ["x", (("h0[0]", "c0[0]"), ("h0[1]", "c0[1]"))]
        result = check_module(layer, x, state0, lengths=np.array([T, 2]), names=names)
        results[name] = result
        if verbose:
            print(f"{name}, lengths [4, 2]\n{result}\n")
    return results


if __name__ == "__main__":
    outcome = check_all_layers()
    raise SystemExit(0 if all(r.passed for r in outcome.values()) else 1)
