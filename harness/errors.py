"""The harness's error tree and how each branch maps to a CLI exit code.

Every error a user can cause or meet is a :class:`HarnessError`; the CLI
prints ``str(error)`` as one line and exits with ``error.exit_code``. Anything
else is a bug in nats-chaos and keeps its traceback.

::

    HarnessError
    ├── BadInput                 exit 2: the user's input is wrong
    │   ├── ScenarioError        a scenario file or --set override
    │   └── HistoryError         a history file that does not follow the contract
    ├── CannotRun                exit 3: the harness cannot run here (preflight facts)
    │   ├── ServerBinaryError    no nats-server binary and no way to get one
    │   ├── PrivilegeError       not root / no network namespaces
    │   ├── Unsupported          a fault this kernel, host or backend cannot provide
    │   └── ResultsNotWritten    a run's result folder could not be written (a full disk)
    ├── RunBroken                exit 4: the run started, then the harness or cluster broke
        ├── ClusterNotFormed     no JetStream meta leader on every node
        ├── NoStreamLeader       the workload's stream never got its replicas and a leader
        ├── PhaseDeadline        a phase passed its deadline
        ├── ClientProcessFailed  a client process could not start, or died mid-phase
        └── TeardownFailed       a resource of the run could not be released
    └── Stopped                  exit 130/143: a second SIGINT/SIGTERM stopped the run at once

A run that started records everything it could before it reports the
error: a ``CannotRun`` raised after preflight (a host command failing
mid-run) is reported as ``RunBroken``, since only preflight facts mean
"cannot run here". SIGINT and SIGTERM end a run with 130 and 143: the first
one still lets the run release its cluster and write its result folder; a
second one after the main phase is :class:`Stopped`.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_ANOMALY = 1
EXIT_BAD_INPUT = 2
EXIT_CANNOT_RUN = 3
EXIT_RUN_BROKEN = 4
EXIT_SIGINT = 130
EXIT_SIGTERM = 143
EXIT_CODES = {
    EXIT_OK: "the outcome matched expectations (valid, or the anomalies `expect:` declares)",
    EXIT_ANOMALY: "an unexpected anomaly, or valid: false",
    EXIT_BAD_INPUT: "bad input (scenario, options, history file), with a one-line reason",
    EXIT_CANNOT_RUN: "cannot run here (no nats-server, no privileges, no Docker, a fault "
    "the backend cannot do), or the result folder could not be written (a full disk)",
    EXIT_RUN_BROKEN: "the run started but the harness or the cluster broke (cluster never "
    "formed, stream never led, a phase passed its deadline, teardown failed); the result "
    "folder holds everything recorded",
    EXIT_SIGINT: "interrupted by SIGINT (Ctrl-C)",
    EXIT_SIGTERM: "interrupted by SIGTERM",
}


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


class ResultsNotWritten(CannotRun):
    """The result folder could not be written; the message says what was kept, and where."""


class RunBroken(HarnessError):
    """The run started, then the harness or the cluster broke: exit 4."""

    exit_code = EXIT_RUN_BROKEN


class ClusterNotFormed(RunBroken):
    """The nodes never agreed on a JetStream meta leader."""


class NoStreamLeader(RunBroken):
    """The workload's stream never got its replicas and a leader."""


class PhaseDeadline(RunBroken):
    """A phase of the run passed its deadline."""

    def __init__(self, phase: str, seconds: float) -> None:
        super().__init__(f"phase {phase!r} passed its deadline of {seconds:g}s")
        self.phase = phase
        self.seconds = seconds


class ClientProcessFailed(RunBroken):
    """A client process (``harness.clientprocs``) could not start, or died in the main phase."""


class TeardownFailed(RunBroken):
    """A resource of the run could not be released (``nats-chaos clean`` finishes it)."""


class Stopped(HarnessError):
    """A second SIGINT/SIGTERM stopped a run before its result folder was complete."""

    def __init__(self, message: str, first_signal: str) -> None:
        super().__init__(message)
        self.signal = first_signal
        self.exit_code = EXIT_SIGINT if first_signal == "SIGINT" else EXIT_SIGTERM
