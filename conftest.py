"""Doctest setup: docstring examples in tinyattn/ run with ``np`` imported
(`make test` runs them with ``--doctest-modules``). PyTorch is optional: without
it the examples that need it are skipped, as the parity tests are."""

import importlib.util

import numpy as np
import pytest

HAS_TORCH = importlib.util.find_spec("torch") is not None
try:
    import torch  # noqa: F401
except ImportError:
    HAS_TORCH = False

# modules that import torch at their top: not even collected without it
collect_ignore = [] if HAS_TORCH else ["tinyattn/torch_model.py"]
NEEDS_TORCH = ("tinyattn.interop.", "tinyattn.interop_transformer")  # doctests calling PyTorch


@pytest.fixture(autouse=True)
def _doctest_numpy(doctest_namespace):
    doctest_namespace["np"] = np


def pytest_collection_modifyitems(config, items):
    if HAS_TORCH:
        return
    skip = pytest.mark.skip(reason="PyTorch is not installed (make torch)")
    for item in items:
        if item.name.startswith(NEEDS_TORCH):
            item.add_marker(skip)
