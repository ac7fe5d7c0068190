"""`check`: run the shared gradient checker on a learner's backward.

The learner's function is graded by `tinyattn.gradcheck` alone: the
library forward builds the cache from small random float64 arrays, the
learner's backward turns random upstream gradients into gradients, and
centered differences say whether they are right. Only when they are not
does `tinyattn.exercises._diagnose` compare the numbers with known
mistakes to say what is likely wrong.
"""

from __future__ import annotations

import traceback
from dataclasses import dataclass, field

import numpy as np

from tinyattn.exercises._chain import chained_check
from tinyattn.exercises._diagnose import diagnose, shape_message
from tinyattn.exercises._outputs import OutputExercise, check_outputs
from tinyattn.exercises._registry import B, exercises
from tinyattn.gradcheck import TOL_STEP, check_function


@dataclass
class CheckResult:
    """What `check` found; ``str()`` is the printed report.

    Attributes
    ----------
    name : str
        The exercise.
    status : str
        ``"passed"``, ``"failed"`` (a gradient is wrong), ``"not implemented"``,
        ``"error"`` (the function raised) or ``"shape"`` (wrong return shapes).
    errors : dict of gradient name -> float
        Max relative error per gradient (empty when none was computed).
    diagnoses : list of str
        The recognised likely mistakes.
    text : str
        The full report.
    """

    name: str
    status: str
    errors: dict = field(default_factory=dict)
    diagnoses: list = field(default_factory=list)
    text: str = ""

    @property
    def passed(self) -> bool:
        return self.status == "passed"

    def __bool__(self) -> bool:
        return self.passed

    def __str__(self) -> str:
        return self.text

    def __repr__(self) -> str:
        return f"<CheckResult {self.name}: {self.status}>"


def _as_tuple(grads, n):
    if isinstance(grads, np.ndarray) and n == 1:
        return (grads,)  # a one-gradient backward may return the bare array
    return tuple(grads) if isinstance(grads, (tuple, list)) else grads


def _validate(ex, grads) -> list[str]:
    """Problems with the returned gradients' number, type and shapes."""
    names = ex.grad_names
    grads = _as_tuple(grads, len(names))
    if not isinstance(grads, tuple) or len(grads) != len(names):
        got = len(grads) if isinstance(grads, tuple) else type(grads).__name__
        why = " (is the return statement missing?)" if grads is None else ""
        return [f"{ex.name} must return {len(names)} gradient(s), ({', '.join(names)}), "
                f"got {got}{why}"]
    problems = []
    for gname, (arg, shape), g in zip(names, ex.shapes.items(), grads):
        if not isinstance(g, np.ndarray):
            problems.append(f"{gname} is {type(g).__name__}, not a numpy array")
        elif g.shape != shape:
            problems.append(shape_message(gname, arg, shape, g.shape, B))
    return problems


def _raised(ex, err: Exception) -> str:
    frames = traceback.extract_tb(err.__traceback__)
    where = f" (line {frames[-1].lineno}: {frames[-1].line})" if frames else ""
    msg = f"your {ex.name} raised {type(err).__name__}: {err}{where}"
    if "matmul" in str(err) or ("shapes" in str(err) and "align" in str(err)):
        msg += ("\n  a matrix product got mismatched shapes: write each array's shape next "
                "to the line; a weight is probably missing a .T (or has one too many)")
    return msg


def check(name: str, fn, *, seed: int = 0, verbose: bool = True) -> CheckResult:
    """Gradient-check a learner's backward for the exercise ``name``.

    Parameters
    ----------
    name : str
        One of `names()`.
    fn : callable
        The learner's function, with the library's signature (see `stub`):
        a backward, graded by the gradient checker on the library's
        forward, or a function graded by its outputs (`OutputExercise`).
    seed : int
        Seed of the random inputs and upstream gradients.
    verbose : bool
        Print the report.

    Returns
    -------
    CheckResult
        Never raises because of the learner's code: a stub that raises
        `NotImplementedError` gives status "not implemented".
    """
    table = exercises()
    if name not in table:
        raise ValueError(f"unknown exercise {name!r}; choose from {sorted(table)}")
    ex = table[name]
    head = f"{name}: {ex.signature}"

    def done(status, lines, errors=None, diags=()):
        text = "\n".join([head] + lines)
        if verbose:
            print(text)
        return CheckResult(name, status, dict(errors or {}), list(diags), text)

    if isinstance(ex, OutputExercise):
        return check_outputs(ex, fn, seed, _raised, done)
    rng = np.random.default_rng(seed)
    arrays = {a: rng.standard_normal(s) for a, s in ex.shapes.items()}
    args = list(arrays.values())
    out, cache = ex.forward(*[a.copy() for a in args])  # a first call, on copies
    douts = tuple(rng.standard_normal(o.shape) for o in (out if isinstance(out, tuple)
                                                         else (out,)))
    try:
        grads = fn(*douts, cache)
    except NotImplementedError:
        return done("not implemented", [
            f"not implemented yet: fill in {name} and run this cell again"])
    except Exception as err:  # the learner's code: report, never crash the notebook
        return done("error", ["✗ " + _raised(ex, err)])
    problems = _validate(ex, grads)
    if problems:
        return done("shape", ["✗ " + p for p in problems])

    def backward(*d):  # the shapes are right (checked above); lists become tuples
        return _as_tuple(fn(*d), len(args))

    try:  # check_gradients restores arrays a backward writes into
        result = check_function(ex.forward, backward, *args, tol=TOL_STEP, seed=seed,
                                names=list(ex.shapes), gates=ex.gates)
    except Exception as err:  # e.g. a backward that behaves differently on a second call
        return done("error", ["✗ " + _raised(ex, err)])
    lines, errors = [], {}
    for gname, rep in zip(ex.grad_names, result.reports):
        errors[gname] = rep.error
        lines.append(f"  {gname:<9} {'✓' if rep.passed else '✗'} {rep.error:.1e}"
                     + rep.where())
    if result.passed:
        return done("passed", lines + [
            f"passed: every gradient agrees with the numerical one "
            f"(max relative error {result.max_error:.1e} ≤ {TOL_STEP:.0e})"], errors)

    failed = ["d" + r.name for r in result.reports if not r.passed]
    learner = {"d" + r.name: r.analytic for r in result.reports}
    numerical = {"d" + r.name: r.numerical for r in result.reports}
    gates = {"d" + k: v for k, v in ex.gates.items()}
    douts = result.douts if isinstance(result.douts, tuple) else (result.douts,)
    diags = diagnose(ex.bugs, ex.grad_names, learner, numerical, failed, douts,
                     ex.forward(*args)[1], ex.ctx, gates)
    lines.append(f"FAILED: wrong {', '.join(failed)} (tolerance {TOL_STEP:.0e})")
    if ex.n_state:
        chain_line, chain_diag = chained_check(ex, fn, seed)
        lines.append(chain_line)
        diags += chain_diag
    if diags:
        lines.append("likely:")
        lines += [f"  - {m}" for m in diags]
    else:
        lines.append(f"no known mistake matches these numbers; compare your formula for "
                     f"{', '.join(failed)} with the equations ({ex.reference})")
    return done("failed", lines, errors, diags)
