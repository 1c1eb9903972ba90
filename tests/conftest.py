"""Shared fixtures: a manager whose loop runs in a thread for the test, then is checked."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from netcomp import Manager
from netcomp.testing import Recorder, running


@pytest.fixture
def manager() -> Manager:
    """A fresh, not yet running root manager."""
    return Manager()


@pytest.fixture
def app(manager: Manager) -> Iterator[tuple[Manager, Recorder]]:
    """A manager running in a thread (started handled), with a recorder of its events.

    Teardown stops it, checks the thread ended and fails on unexpected handler errors.
    """
    with running(manager) as recorder:
        yield manager, recorder
