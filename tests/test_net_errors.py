"""The net layer's errors are NetcompErrors that keep their builtin meaning."""

from __future__ import annotations

import builtins

import pytest

import netcomp
from netcomp import NetcompError
from netcomp.net import ConnectTimeout, HandshakeTimeout, NotConnected


@pytest.mark.parametrize(
    ("cls", "builtin"),
    [
        (NotConnected, builtins.ConnectionError),
        (ConnectTimeout, builtins.TimeoutError),
        (HandshakeTimeout, builtins.TimeoutError),
    ],
)
def test_each_net_error_is_a_netcomp_error_and_its_builtin(
    cls: type[Exception], builtin: type[Exception]
) -> None:
    assert issubclass(cls, NetcompError)
    assert issubclass(cls, builtin)
    assert cls.__doc__ and cls.__doc__.strip()
    with pytest.raises(builtin):
        raise cls("x")
    with pytest.raises(NetcompError):
        raise cls("x")


@pytest.mark.parametrize("cls", [ConnectTimeout, HandshakeTimeout])
def test_timeouts_are_caught_by_except_timeout_error(cls: type[Exception]) -> None:
    try:
        raise cls("late")
    except builtins.TimeoutError as err:  # what code written for the builtin says
        caught: BaseException = err
    assert isinstance(caught, netcomp.TimeoutError)
    assert issubclass(cls, OSError)  # the builtin TimeoutError is an OSError


def test_the_two_timeouts_are_told_apart() -> None:
    assert not issubclass(ConnectTimeout, HandshakeTimeout)
    assert not issubclass(HandshakeTimeout, ConnectTimeout)
