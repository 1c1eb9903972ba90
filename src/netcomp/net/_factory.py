"""How a worker process finds the factory of its tree, and what it is told.

Rules (docs/architecture.md, "Processes"): a worker is another interpreter, so the factory
travels by name: ``"module:attr"``, a module-level function (its module and qualified
name), or a function of the ``__main__`` script (its path: the worker runs the file under
another name, so the script's ``if __name__ == "__main__"`` part does not run again). The
arguments, and everything else a worker is told, are JSON values, checked in the
supervisor when it is made.
"""

from __future__ import annotations

import importlib
import json
import os
import runpy
import sys
from collections.abc import Callable, Sequence
from typing import Any

from ..core import Manager

__all__ = ["build", "describe_factory", "factory_spec", "worker_config"]


def factory_spec(factory: str | Callable[..., Any]) -> dict[str, str]:
    """How a worker process finds ``factory``: ``"module:attr"``, or a module-level
    function (one of the ``__main__`` script too: the worker runs the script's file
    under another name, so its ``if __name__ == "__main__"`` part does not run)."""
    if isinstance(factory, str):
        module, sep, attr = factory.partition(":")
        if not (sep and module and attr):
            raise ValueError(f"factory {factory!r}: expected 'module:attr', as in 'myapp:build'")
        return {"module": module, "attr": attr}
    if not callable(factory):
        raise TypeError(f"factory must be 'module:attr' or a function, not {factory!r}")
    owner = getattr(factory, "__module__", None)
    qualname: str = getattr(factory, "__qualname__", "")
    if not owner or not qualname or "<" in qualname:
        raise TypeError(
            f"{factory!r} cannot be found by name in a worker process (a lambda or a "
            "nested function); give a module-level function, or 'module:attr'"
        )
    if owner != "__main__":
        return {"module": owner, "attr": qualname}
    main = sys.modules["__main__"]
    spec = getattr(main, "__spec__", None)
    if spec is not None and spec.name:  # python -m package.module
        return {"module": spec.name, "attr": qualname}
    path = getattr(main, "__file__", None)
    if not path:
        raise TypeError(f"{factory!r} is defined interactively; put it in a module")
    return {"path": os.path.abspath(path), "attr": qualname}


def build(config: dict[str, Any]) -> Manager:
    """The tree the configuration's factory makes: ``module:attr`` (or a script's path
    and attribute) naming a component tree, or a callable returning one, called with the
    configuration's ``args`` and ``kwargs``."""
    spec = config["factory"]
    if "path" in spec:
        target: Any = runpy.run_path(spec["path"], run_name="__netcomp_worker__")
        target = target[spec["attr"].split(".")[0]]
        parts = spec["attr"].split(".")[1:]
    else:
        target = importlib.import_module(spec["module"])
        parts = spec["attr"].split(".")
    for part in parts:
        target = getattr(target, part)
    if not isinstance(target, Manager) and callable(target):
        target = target(*config.get("args", ()), **config.get("kwargs", {}))
    if not isinstance(target, Manager):
        raise TypeError(
            f"{describe_factory(spec)} gave a {type(target).__name__}; expected a component "
            "tree (a Manager), or a factory that returns one"
        )
    return target.root


def describe_factory(spec: dict[str, Any]) -> str:
    """``module:attr`` (or ``path:attr``) of a factory spec, as the user wrote it."""
    return f"{spec.get('module') or spec.get('path')}:{spec['attr']}"


def worker_config(
    factory: dict[str, str],
    args: Sequence[Any],
    kwargs: dict[str, Any] | None,
    timeout: float,
    stop_timeout: float | None,
    log_level: str | None,
) -> dict[str, Any]:
    """What every worker is told; checked for JSON now (a worker is another process)."""
    config = {
        "factory": factory,
        "args": list(args),
        "kwargs": dict(kwargs or {}),
        "path": list(sys.path),
        "heartbeat": min(timeout / 4, 5.0),
        "stop_timeout": stop_timeout,
        "log_level": log_level,
    }
    try:
        json.dumps(config)
    except (TypeError, ValueError) as error:
        raise TypeError(f"a worker's args and kwargs must be JSON values: {error}") from None
    return config
