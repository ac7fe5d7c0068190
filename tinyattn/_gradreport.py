"""What a gradient check reports: per array, per gate slice, per time step.

`tinyattn.gradcheck` computes the errors; these classes hold and print
them (both are re-exported there).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class ArrayReport:
    """The check of one array: its worst error and, if useful, a breakdown."""

    name: str
    error: float
    max_abs_diff: float
    tol: float
    parts: dict[str, float] = field(default_factory=dict)
    numerical: np.ndarray | None = field(default=None, repr=False)
    analytic: np.ndarray | None = field(default=None, repr=False)

    @property
    def passed(self) -> bool:
        return bool(self.error <= self.tol)

    def where(self) -> str:
        """``"   wrong in: gate f, gate o   (right in: gate i, gate g)"``, or ``""``."""
        bad = [k for k, v in self.parts.items() if v > self.tol]
        if not bad:
            return ""
        ok = [k for k, v in self.parts.items() if v <= self.tol]
        return f"   wrong in: {', '.join(bad)}" + (f"   (right in: {', '.join(ok)})"
                                                   if ok else "")

    def line(self) -> str:
        mark = "✓" if self.passed else "✗"
        return f"{mark} {self.name:<14} max rel error {self.error:.2e}" + self.where()


class GradCheckResult:
    """Per-array results of a gradient check; ``str()`` prints a table.

    ``reports`` (one `ArrayReport` per array), ``tol``, ``floor`` (the
    noise floor of the relative error) and ``douts`` (the random upstream
    gradients, shaped like the outputs).
    """

    def __init__(self, reports: list[ArrayReport], tol: float, floor: float = 0.0,
                 douts=None):
        self.reports = reports
        self.tol = tol
        self.floor = floor
        self.douts = douts

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.reports)

    @property
    def max_error(self) -> float:
        return max((r.error for r in self.reports), default=0.0)

    @property
    def failed(self) -> list[str]:
        return [r.name for r in self.reports if not r.passed]

    def __getitem__(self, name: str) -> ArrayReport:
        for r in self.reports:
            if r.name == name:
                return r
        raise KeyError(f"no array named {name!r}; checked: {[r.name for r in self.reports]}")

    def __str__(self) -> str:
        head = f"gradient check (tolerance {self.tol:.0e}, floor {self.floor:.0e}): " + (
            "passed" if self.passed else f"FAILED for {', '.join(self.failed)}"
        )
        return "\n".join([head] + ["  " + r.line() for r in self.reports])

    __repr__ = __str__

    def assert_ok(self) -> GradCheckResult:
        """Raise `AssertionError` with the table if any array failed."""
        if not self.passed:
            raise AssertionError(str(self))
        return self


def _breakdown(err, gates, time_axis) -> dict[str, float]:
    parts: dict[str, float] = {}
    if gates:
        for label, chunk in zip(gates, np.split(err, len(gates), axis=-1)):
            parts[f"gate {label}"] = float(chunk.max(initial=0.0))
    if time_axis is not None:
        for t in range(err.shape[time_axis]):
            parts[f"t={t}"] = float(np.take(err, t, axis=time_axis).max(initial=0.0))
    return parts
