"""The harness's error tree and how each branch maps to a CLI exit code.

Every error a user can cause or meet is a :class:`HarnessError`; the CLI
prints ``str(error)`` as one line and exits with ``error.exit_code``. Anything
else is a bug in nats-chaos and keeps its traceback.

::

    HarnessError
    ├── BadInput                 exit 2: the user's input is wrong
    │   ├── ScenarioError        a scenario file or --set override
    │   └── HistoryError         a history file that does not follow the contract
    └── CannotRun                exit 3: the harness cannot run here
        ├── ServerBinaryError    no nats-server binary and no way to get one
        ├── PrivilegeError       not root / no network namespaces
        └── Unsupported          a fault this kernel or host cannot provide
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_ANOMALY = 1
EXIT_BAD_INPUT = 2
EXIT_CANNOT_RUN = 3


class HarnessError(Exception):
    """Root of every error nats-chaos reports to a user as one line."""

    exit_code = EXIT_CANNOT_RUN


class BadInput(HarnessError):
    """The user's input (options, scenario, history) is wrong: exit 2."""

    exit_code = EXIT_BAD_INPUT


class ScenarioError(BadInput):
    """A scenario file or override is invalid; the message names file and field."""


class HistoryError(BadInput):
    """A history file breaks the JSONL contract; the message names the line."""


class CannotRun(HarnessError):
    """The host lacks something the run needs: exit 3."""

    exit_code = EXIT_CANNOT_RUN


class ServerBinaryError(CannotRun):
    """No usable nats-server binary; the message says which command fixes it."""


class PrivilegeError(CannotRun):
    """The run needs root (network namespaces, iptables, FUSE mounts)."""


class Unsupported(CannotRun):
    """A requested fault cannot be provided on this host or kernel."""
