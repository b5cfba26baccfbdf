"""What ``nats-chaos run`` shows while it runs: phase lines, and a live status line on a terminal.

In: the phase names and timings the runner goes through and, during the main
phase, a :class:`Status` (elapsed / limit, acknowledged, failed and unknown
publishes, active faults) every :attr:`Progress.interval` seconds. Out: on a
terminal (stderr is a TTY), one line per phase plus a live line redrawn in
place (rich) that disappears when the phase ends; elsewhere (CI logs, pipes,
tests) one line per phase and a plain status line every 5 s, as before.
Nothing here knows about clusters or faults; the runner hands it numbers.
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from rich.console import Console
from rich.live import Live
from rich.spinner import Spinner
from rich.table import Table
from rich.text import Text

PLAIN_INTERVAL = 5.0
LIVE_INTERVAL = 0.5


@dataclass(frozen=True)
class Status:
    """The main phase at one moment."""

    elapsed: float
    limit: float
    ok: int
    fail: int
    info: int
    faults: list[str] = field(default_factory=list)

    def plain(self) -> str:
        """The line printed every few seconds when stderr is not a terminal."""
        active = ",".join(self.faults) or "none"
        return (
            f"         {self.elapsed:5.0f}/{self.limit:.0f}s  ok={self.ok:,} fail={self.fail:,} "
            f"info={self.info:,}  active faults: {active}"
        )

    def rich(self) -> Text:
        """The same facts, styled for the live line."""
        t = Text()
        t.append(f"{self.elapsed:5.1f}/{self.limit:.0f}s", style="bold")
        t.append("  acknowledged ")
        t.append(f"{self.ok:,}", style="green")
        t.append("  errors ")
        t.append(f"{self.fail:,} fail", style="yellow" if self.fail else "dim")
        t.append(" · ")
        t.append(f"{self.info:,} info", style="red" if self.info else "dim")
        t.append("  faults: ")
        t.append(", ".join(self.faults) or "none", style="magenta" if self.faults else "dim")
        return t


class Progress:
    """Phase lines and, on a terminal, a live status line; see the module docstring.

    ``echo`` prints one line (the CLI passes ``click.echo`` to stderr);
    ``live`` defaults to whether stderr is a terminal.
    """

    def __init__(
        self,
        echo: Callable[[str], object],
        live: bool | None = None,
        console: Console | None = None,
    ) -> None:
        self.echo = echo
        self.live = sys.stderr.isatty() if live is None else live
        self.console = console or Console(stderr=True)
        self.interval = LIVE_INTERVAL if self.live else PLAIN_INTERVAL
        self._phase = ""
        self._phase_start = time.monotonic()
        self._status: Status | None = None
        self._spinner = Spinner("dots", style="cyan")

    @contextlib.contextmanager
    def phase(self, name: str, since_start: float) -> Iterator[None]:
        """Announce phase ``name`` (``since_start`` seconds into the run) and show it live."""
        self.echo(f"[{since_start:6.1f}s] {name}")
        if not self.live:
            yield
            return
        self._phase, self._phase_start, self._status = name, time.monotonic(), None
        live = Live(
            get_renderable=self._render,
            console=self.console,
            refresh_per_second=8,
            transient=True,
            redirect_stdout=False,
            redirect_stderr=True,
        )
        try:
            with live:
                yield
        finally:
            self._status = None

    def update(self, status: Status) -> None:
        """New main-phase numbers: redrawn live, or printed as a line when not on a terminal."""
        if self.live:
            self._status = status
        else:
            self.echo(status.plain())

    def _render(self) -> Table:
        grid = Table.grid(padding=(0, 1))
        phase = Text(self._phase.split(" (")[0], style="bold cyan")
        if self._status is not None:
            grid.add_row(self._spinner, phase, self._status.rich())
        else:
            grid.add_row(self._spinner, phase, Text(f"{time.monotonic() - self._phase_start:.1f}s"))
        return grid
