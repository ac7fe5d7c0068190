"""The `Module` base class: parameters, gradients and the one-cache rule.

Every layer in tinyattn is a `Module`. A module owns two dicts with the
same keys and shapes, ``params`` and ``grads``; gradients accumulate
(``+=``) because a recurrent weight is used at every time step, and
`zero_grad` resets them. Child modules are plain attributes; they are
found in definition order, so `named_parameters` walks the tree in a
fixed order with dotted names (``fwd.W_x``, ``bwd.W_x``, ...). A list of
modules is not a child: `ModuleList` holds numbered ones (``layers.0.W_x``).

A sequence module's ``forward`` keeps exactly one cache and its
``backward`` consumes it (docs/design.md §2, "one forward, one backward").
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import numpy as np

from tinyattn._validate import check_dtype_name

FLOAT_DTYPES = (np.float32, np.float64)


@contextlib.contextmanager
def eval_mode(model):
    """Run the ``with`` body with ``model`` in eval mode (no dropout), then give
    it back the mode it had. A model without modes (no ``training``
    attribute: a hand-made table of probabilities, say) is left as it is."""
    if not hasattr(model, "training"):
        yield model
        return
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)


class Module:
    """Base class of every layer: parameters, gradients, children, cache.

    Subclasses call ``super().__init__(dtype)`` first, then register
    parameters with `add_param` and children as attributes.
    """

    def __init__(self, dtype=np.float64):
        self.dtype = check_dtype_name(dtype)
        self.params: dict[str, np.ndarray] = {}
        self.grads: dict[str, np.ndarray] = {}
        self._cache = None
        self.training = True  # train mode; eval() switches it off (dropout reads it)

    def add_param(self, name: str, value: np.ndarray) -> np.ndarray:
        """Register a parameter and a zero gradient of the same shape."""
        value = np.ascontiguousarray(value, dtype=self.dtype)
        self.params[name] = value
        self.grads[name] = np.zeros_like(value)
        return value

    def children(self) -> Iterator[tuple[str, Module]]:
        """Yield ``(attribute_name, module)`` for direct children, in order."""
        for name, value in vars(self).items():
            if isinstance(value, Module):
                yield name, value

    def named_modules(self, prefix: str = "") -> Iterator[tuple[str, Module]]:
        """Yield ``(dotted_prefix, module)`` for this module (prefix ``""``) and
        every descendant, in the order of `named_parameters`."""
        yield prefix, self
        for name, child in self.children():
            yield from child.named_modules(prefix + name + ".")

    def named_parameters(
        self, prefix: str = ""
    ) -> Iterator[tuple[str, np.ndarray, np.ndarray]]:
        """Yield ``(dotted_name, value, grad)`` for this module and children.

        Own parameters come first, in registration order, then each
        child's in attribute definition order. Optimisers update
        ``value`` in place, so every module keeps seeing the same array.
        """
        for name, value in self.params.items():
            yield prefix + name, value, self.grads[name]
        for child_name, child in self.children():
            yield from child.named_parameters(prefix + child_name + ".")

    def train(self, mode: bool = True):
        """Set train mode (``mode=False``: eval mode) here and in every child; returns self."""
        for _, module in self.named_modules():
            module.training = bool(mode)
        return self

    def eval(self):
        """Eval mode (no dropout, when a layer has it); returns self."""
        return self.train(False)

    def zero_grad(self) -> None:
        """Set every gradient of this module and its children to zero."""
        for _, _, grad in self.named_parameters():
            grad.fill(0.0)

    def num_parameters(self) -> int:
        """Total number of scalar parameters, children included."""
        return sum(value.size for _, value, _ in self.named_parameters())

    def _take_cache(self):
        """Return the forward cache and forget it; raise if there is none."""
        cache, self._cache = self._cache, None
        if cache is None:
            raise RuntimeError(
                f"{type(self).__name__}.backward() called without a forward "
                "pass: call the module first (each forward allows one backward)"
            )
        return cache

    def forward(self, *args, **kwargs):
        """The module's computation; subclasses define it (``module(...)`` calls it)."""
        raise NotImplementedError

    def __call__(self, *args, **kwargs):
        """``module(...)`` is ``module.forward(...)``."""
        return self.forward(*args, **kwargs)


class ModuleList(Module):
    """Numbered children: a list of modules that `named_parameters` walks.

    A plain list attribute is not a child (`Module.children` finds only
    `Module` attributes), so a stack of layers keeps them here. Child ``k``
    of the list is named ``str(start + k)``: ``layers.0.W_x``, ``layers.1.W_x``,
    ... (``start=1`` when the list holds the layers from 1 on, e.g.
    ``bridges.1`` beside a ``bridge`` for layer 0).

    Parameters
    ----------
    modules : iterable of Module
        At least one; their dtype is the list's.
    start : int, default 0
        The name of the first child.
    """

    def __init__(self, modules, *, start: int = 0):
        modules = list(modules)
        if not modules or not all(isinstance(m, Module) for m in modules):
            raise TypeError(f"ModuleList needs one or more Modules, got "
                            f"{[type(m).__name__ for m in modules]}")
        super().__init__(modules[0].dtype)
        self._modules = modules
        self.start = start

    def children(self) -> Iterator[tuple[str, Module]]:
        """Yield ``(str(start + k), module)`` for the k-th module."""
        for k, module in enumerate(self._modules):
            yield str(self.start + k), module

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[Module]:
        return iter(self._modules)

    def __getitem__(self, k: int) -> Module:
        """The k-th module of the list (its position, whatever ``start`` is)."""
        return self._modules[k]
