"""Shared fixtures: a manager whose loop runs in a thread for the test, then is checked;
``vapp`` runs it on virtual time that the test moves."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from netcomp import Manager
from netcomp.testing import Recorder, VirtualTime, running


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


@pytest.fixture
def vapp(manager: Manager) -> Iterator[tuple[Manager, Recorder, VirtualTime]]:
    """Like ``app``, on virtual time that moves only when the test says so.

    The third item drives it: ``time.advance(seconds)`` returns once the loop has run what
    became due (see :class:`netcomp.testing.VirtualTime`).
    """
    time = VirtualTime(manager.loop)
    with running(manager) as recorder:
        yield manager, recorder, time
