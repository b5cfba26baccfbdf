"""Deferred imports, so ``nats-chaos --version`` and ``--help`` start in a blink.

In: a module name (``lazy_module("harness.results")``), or a module name and
a mapping in it whose keys are a click option's choices
(``LazyChoice("harness.workloads", "REGISTRY")``). Out: a module object that
imports the real module on first attribute access (the standard library's
:class:`importlib.util.LazyLoader`), or a :class:`click.Choice` that imports
its module the first time a command parses, completes or documents the
option. The command line imports the heavy layers (pandas, numpy,
matplotlib, docker, nats-py, the columnar engine) only through these, so a
command pays only for what it uses; ``tests/unit/test_fast_start.py`` keeps
it so.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from collections.abc import Sequence
from types import ModuleType
from typing import Any

import click


def lazy_module(name: str) -> ModuleType:
    """``name``, imported on first attribute access (at once if it is already imported)."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.find_spec(name)
    if spec is None or spec.loader is None:
        raise ImportError(f"no module named {name!r}")
    loader = importlib.util.LazyLoader(spec.loader)
    spec.loader = loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    loader.exec_module(module)
    return module


class LazyChoice(click.Choice):
    """A :class:`click.Choice` of the sorted keys of ``module.attribute``, looked up when used."""

    def __init__(self, module: str, attribute: str) -> None:
        super().__init__(())
        self._source = (module, attribute)
        self._loaded: tuple[str, ...] | None = None

    @property  # type: ignore[override]
    def choices(self) -> Sequence[Any]:
        if self._loaded is None:
            module, attribute = self._source
            self._loaded = tuple(sorted(getattr(importlib.import_module(module), attribute)))
        return self._loaded

    @choices.setter
    def choices(self, value: Sequence[Any]) -> None:
        self._loaded = tuple(value) or None
