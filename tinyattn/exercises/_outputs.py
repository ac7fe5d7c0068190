"""Exercises graded by their outputs: a forward, a search, a loss, an update.

Not every piece a learner writes is a backward. Reversing a padded batch,
one decoder step, beam search, a masked loss or an Adam update is graded
by running the learner's function and the library's on the same inputs
(a few cases, each labelled) and comparing every output. When an output
differs, each known mistake of the exercise (`Bug`, whose ``predict``
here is a whole buggy implementation taking the same arguments) is run on
the same cases: a mistake whose outputs the learner's match, where they
differ from the right ones, is named.

An exercise whose function also returns gradients lists them among its
outputs; `OutputExercise.gradcheck` adds the library's gradient checker
on the learner's function (``tinyattn.gradcheck``), so that a gradient is
graded against centered differences, not only against the library.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from tinyattn.exercises._diagnose import close

RTOL, ATOL = 1e-7, 1e-10


@dataclass
class OutputExercise:
    """One function to write, graded by comparing outputs with the library's.

    Parameters
    ----------
    name : str
    signature : str
        How the learner's function is called and what it returns.
    solution : callable
        The library's answer, with the learner's signature.
    cases : callable ``rng -> list of (label, args)``
        The inputs: each ``args`` is a tuple passed as ``fn(*args)`` (every
        call gets a deep copy, containers and layers included, so a function
        writing into its inputs cannot change another call's).
    outputs : tuple of str
        Names of the returned values, in order (one name: a bare value).
    reference : str
        Where the equations are (docs/equations.md section, paper).
    bugs : list of Bug
        ``Bug.predict(*args)`` returns what a function with that mistake
        returns on ``args``.
    starter : callable
        The learner's starting point (`tinyattn.exercises.stub` prints it).
    gradcheck : callable ``(fn, rng) -> (names, result)``, optional
        A gradient check of the learner's function with the library's
        checker, returning the gradient names and a `GradCheckResult`.
    """

    name: str
    signature: str
    solution: Callable
    cases: Callable
    outputs: tuple
    reference: str
    bugs: list = field(default_factory=list)
    starter: Callable | None = None
    gradcheck: Callable | None = None


def same(a, b, nonfinite_ok: bool = False) -> bool:
    """Whether two outputs agree: arrays to 1e-7 relative, scalars, nested lists.

    ``nonfinite_ok``: entries that are NaN or ±inf in both count as agreeing
    (a mistake that overflows, matched against its prediction)."""
    if isinstance(a, (list, tuple)) or isinstance(b, (list, tuple)):
        numeric = _numeric(a), _numeric(b)
        if all(n is not None for n in numeric):  # [1, 2] and array([1, 2]) are the same numbers
            return same(*numeric, nonfinite_ok=nonfinite_ok)
        if not isinstance(a, (list, tuple)) or not isinstance(b, (list, tuple)):
            return False
        return len(a) == len(b) and all(same(x, y, nonfinite_ok) for x, y in zip(a, b))
    if isinstance(a, dict) or isinstance(b, dict):
        return (isinstance(a, dict) and isinstance(b, dict) and a.keys() == b.keys()
                and all(same(a[k], b[k], nonfinite_ok) for k in a))
    try:
        x, y = np.asarray(a), np.asarray(b)
    except Exception:  # an object numpy cannot hold
        return a == b
    if x.dtype.kind in "fciub" and y.dtype.kind in "fciub":
        if x.shape != y.shape:
            return False
        if x.dtype.kind == "b" or y.dtype.kind == "b":
            return bool(np.array_equal(x, y))
        if nonfinite_ok and x.dtype.kind in "fc" and y.dtype.kind in "fc":
            both = ~np.isfinite(x) & ~np.isfinite(y)
            x, y = np.where(both, 0.0, x), np.where(both, 0.0, y)
        return bool(np.allclose(x, y, rtol=RTOL, atol=ATOL, equal_nan=False))
    return bool(np.all(x == y)) if x.shape == y.shape else False


def _numeric(value):
    """``value`` as a numeric array when it is a rectangular list of numbers, else None."""
    try:
        x = np.asarray(value)
    except (ValueError, TypeError):  # ragged, or objects numpy cannot hold
        return None
    return x if x.dtype.kind in "fciub" else None


def as_outputs(value, n: int):
    """A function's return value as a tuple of its ``n`` outputs (None when it cannot be)."""
    if n == 1:  # a bare value; a one-array tuple (dx,) is read as dx
        if (isinstance(value, (tuple, list)) and len(value) == 1
                and isinstance(value[0], np.ndarray)):
            return (value[0],)
        return (value,)
    return tuple(value) if isinstance(value, (tuple, list)) else None


def _copy(args):
    """A fresh copy of every argument, containers and layers included, for one call."""
    try:
        return copy.deepcopy(tuple(args))
    except Exception:  # an argument that cannot be copied: copy its arrays at least
        return tuple(a.copy() if isinstance(a, np.ndarray) else a for a in args)


def _describe(mine, want) -> str:
    """How far an output is off, in words a learner reads."""
    try:
        x, y = np.asarray(mine, dtype=float), np.asarray(want, dtype=float)
    except (TypeError, ValueError):
        return f"got {mine!r}, expected {want!r}"
    if x.shape != y.shape:
        return f"shape {x.shape}, expected {y.shape}"
    if x.ndim == 0:
        return f"got {float(x):.6g}, expected {float(y):.6g}"
    return f"max |yours − expected| = {float(np.abs(x - y).max(initial=0.0)):.1e}"


def _generic(name, mine, want) -> str | None:
    """A signature of a wrong array output against the right one."""
    try:
        x, y = np.asarray(mine, dtype=float), np.asarray(want, dtype=float)
    except (TypeError, ValueError):
        return None
    if x.shape != y.shape or x.size == 0:
        return None
    if not np.all(np.isfinite(x)) and np.all(np.isfinite(y)):
        return (f"{name} has NaN or inf entries: an exp that overflowed (shift by the "
                "maximum first), a log of 0, or a division by 0")
    if not np.abs(x).max() > 0 and np.abs(y).max() > 1e-8:
        return f"{name} is all zeros: it is not computed, or every path into it is missing"
    if close(x, -y):
        return f"{name} has the wrong sign"
    denom = float(np.sum(y * y))
    if denom > 0:
        factor = float(np.sum(x * y)) / denom
        if abs(factor - 1.0) > 1e-3 and abs(factor) > 1e-3 and close(x, factor * y):
            return (f"{name} is {factor:.3g} × the right value: a constant factor is off "
                    "(a mean over the wrong count, or a factor too many)")
    return None


def check_outputs(ex: OutputExercise, fn, seed, raised, done):
    """Grade ``fn`` on ``ex``'s cases; ``raised`` and ``done`` format the report."""
    rng = np.random.default_rng(seed)
    cases = ex.cases(rng)
    n = len(ex.outputs)
    lines, wrong, errors = [], {}, {}
    for label, args in cases:
        want = as_outputs(ex.solution(*_copy(args)), n)
        try:
            got = fn(*_copy(args))
        except NotImplementedError:
            return done("not implemented", [
                f"not implemented yet: fill in {ex.name} and run this cell again"])
        except Exception as err:  # the learner's code: report, never crash the notebook
            return done("error", [f"✗ {label}: " + raised(ex, err)])
        mine = None if got is None else as_outputs(got, n)
        if mine is None or len(mine) != n:
            count = len(got) if isinstance(got, (tuple, list)) else type(got).__name__
            why = " (is the return statement missing?)" if got is None else ""
            return done("shape", [f"✗ {ex.name} must return {n} value(s), "
                                  f"({', '.join(ex.outputs)}), got {count}{why}"])
        lines.append(f"  {label}:")
        for oname, m, w in zip(ex.outputs, mine, want):
            ok = same(m, w)
            lines.append(f"    {oname:<10} {'✓' if ok else '✗ ' + _describe(m, w)}")
            if not ok:
                wrong.setdefault(oname, []).append((args, m, w))
    grad_lines, grad_failed = [], []
    if ex.gradcheck is not None and not wrong:
        try:
            names, result = ex.gradcheck(fn, np.random.default_rng(seed + 7))
        except Exception as err:  # the learner's code, called again: report, never crash
            return done("error", lines + ["✗ gradient check: " + raised(ex, err)])
        for gname, rep in zip(names, result.reports):
            errors[gname] = rep.error
            grad_lines.append(f"    {gname:<10} {'✓' if rep.passed else '✗'} {rep.error:.1e}"
                              + rep.where())
            if not rep.passed:
                grad_failed.append(gname)
        lines += ["  gradient check (centered differences):"] + grad_lines
    if not wrong and not grad_failed:
        return done("passed", lines + ["passed: every output agrees with the library's"
                                       + (" and every gradient with the numerical one"
                                          if ex.gradcheck else "")], errors)
    failed = sorted(wrong) + grad_failed
    lines.append(f"FAILED: wrong {', '.join(failed)}")
    diags = _diagnose(ex, wrong)
    if diags:
        lines.append("likely:")
        lines += [f"  - {d}" for d in diags]
    else:
        lines.append(f"no known mistake matches these numbers; compare your {', '.join(failed)} "
                     f"with the equations ({ex.reference})")
    return done("failed", lines, errors, diags)


def _diagnose(ex: OutputExercise, wrong: dict) -> list[str]:
    """The known mistakes whose outputs the learner's reproduce where they are wrong."""
    idx = {o: i for i, o in enumerate(ex.outputs)}
    explained = []
    for bug in ex.bugs:
        hit = []
        for oname, rows in wrong.items():
            ok = True
            for args, m, w in rows:
                try:
                    pred = as_outputs(bug.predict(*_copy(args)), len(ex.outputs))
                except Exception:  # a mistake that cannot run on these inputs explains nothing
                    ok = False
                    break
                p = pred[idx[oname]]
                if same(p, w) or not same(m, p, nonfinite_ok=True):
                    ok = False
                    break
            if ok:
                hit.append(oname)
        if hit:
            explained.append((bug, hit))
    full = [(b, h) for b, h in explained if set(h) >= set(wrong)]
    chosen = full or sorted(explained, key=lambda bh: -len(bh[1]))
    msgs = [b.message(h) for b, h in chosen]
    covered = {o for _, h in chosen for o in h}
    for oname, rows in wrong.items():
        if oname not in covered:
            sig = _generic(oname, rows[0][1], rows[0][2])
            if sig:
                msgs.append(sig)
    return msgs
