"""Runtimes started by a test (or a module of tests) are stopped after it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from runtimekit import Runtimes


@pytest.fixture
def runtimes() -> Iterator[Runtimes]:
    found = Runtimes()
    yield found
    for runtime in found.started:
        runtime.stop()


@pytest.fixture(scope="module")
def module_runtimes() -> Iterator[Runtimes]:
    found = Runtimes()
    yield found
    for runtime in found.started:
        runtime.stop()
