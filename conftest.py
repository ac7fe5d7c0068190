"""Doctest setup: docstring examples in tinyattn/ run with ``np`` imported
(`make test` runs them with ``--doctest-modules``)."""

import numpy as np
import pytest


@pytest.fixture(autouse=True)
def _doctest_numpy(doctest_namespace):
    doctest_namespace["np"] = np
