"""Fault families and the registry that maps a scenario's fault ``kind`` to a class.

A new fault is one module with a class built from its spec (``kind``,
``start(ctx)``, ``stop(ctx)``; see :mod:`harness.faults.base`) plus one line
in :data:`REGISTRY` and its spec in :mod:`harness.scenario`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from harness.faults.base import Fault, FaultContext
from harness.faults.compose import ComposeFault
from harness.faults.corrupt import CorruptFault
from harness.faults.netem import DelayFault, LossFault
from harness.faults.partition import PartitionFault
from harness.faults.power import PowerLossFault
from harness.faults.process import KillFault, PauseFault
from harness.faults.stepdown import StepDownFault

REGISTRY: dict[str, Callable[[Any], Fault]] = {
    "kill": KillFault,
    "pause": PauseFault,
    "power-loss": PowerLossFault,
    "partition": PartitionFault,
    "step-down": StepDownFault,
    "corrupt": CorruptFault,
    "delay": DelayFault,
    "loss": LossFault,
    "compose": lambda spec: ComposeFault(spec, REGISTRY),
}

__all__ = ["REGISTRY", "Fault", "FaultContext"]
