"""SIGINT/SIGTERM once the cluster's part of a run is over (teardown, checks, report).

In: the run's list of caught signal names (shared with the main phase), the
echo that prints to the user, the run's folder. Out: :class:`LateSignals`,
which the runner installs after the main phase, and :class:`StopNow`, the
exception a second signal raises.

The first signal is recorded (the run's exit code becomes 130/143) and the
run goes on writing its folder. A second one raises ``StopNow`` — at once
when ``at_once`` is set, else (in teardown, which must release the cluster)
at :meth:`LateSignals.stop_if_asked_twice` — and the runner reports it as
:meth:`LateSignals.stopped`. A third one meets the default handlers: the
process ends at once.

Python runs signal handlers in the main thread between bytecodes, so the
handler's exception lands in whatever Python code runs at that moment — and
some of that code drops it without a word: a file object that is garbage
collected runs its ``closed`` property (``gzip.GzipFile``'s is Python) in
its finalizer, and the finalizer clears any exception. A run stopped that
way would finish its checks and its report as if asked once. So each
``StopNow`` is watched (a weak reference): if it is freed before the runner
has said it landed (``has_landed``, set first thing in its ``except
StopNow`` block, with no call a handler could enter), it was dropped, and the
stop is raised again at once — through :data:`AGAIN`, a signal only this
module handles, simulated from a thread of its own a moment later (not from
where it was dropped, which would drop it again). A stop on its way
(through ``finally`` blocks, a thread being stopped) is alive, so it is
never raised twice. ``StopNow`` can end a file write midway; the writes are atomic
(``checkers.files``), so no file is left half-written.
"""

from __future__ import annotations

import _thread
import contextlib
import logging
import signal
import threading
import time
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any

from harness.errors import Stopped

__all__ = ["AGAIN", "LateSignals", "StopNow"]

log = logging.getLogger("nats-chaos")

AGAIN = signal.SIGUSR2  # a dropped stop raised again: simulated (_thread.interrupt_main)


class StopNow(BaseException):
    """Raised by a second signal; a BaseException, so no ``except Exception`` swallows it."""


class LateSignals:
    """The handlers of SIGINT/SIGTERM after the main phase (see the module doc)."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self, caught: list[str], echo: Callable[[str], Any], run_dir: Path) -> None:
        self.caught = caught
        self.echo = echo
        self.run_dir = run_dir
        self.at_once = False
        self.has_landed = False  # the runner has the stop (see the module doc)
        self.dropped = 0  # stops freed before they landed (each raised again)
        self.old: dict[signal.Signals, Any] = {}
        self.watched: weakref.ref[StopNow] | None = None  # kept: a freed ref calls nothing
        self.wake = threading.Event()  # set where a stop was dropped
        self.again: threading.Thread | None = None

    def install(self) -> None:
        """Take over SIGINT/SIGTERM (again: a no-op)."""
        if not self.old:
            self.old = {s: signal.signal(s, self._on_signal) for s in self.SIGNALS}

    def restore(self) -> None:
        """The handlers from before :meth:`install` (a stop freed from now on was not
        dropped: the runner is done with it)."""
        self.has_landed = True
        if self.again is not None:
            self.wake.set()
            self.again.join()
        for s, handler in self.old.items():
            signal.signal(s, handler)
        self.old = {}

    def _on_signal(self, signum: int, _frame: Any) -> None:
        name = signal.Signals(signum).name
        self.caught.append(name)
        if len(self.caught) == 1:
            log.warning("%s after the main phase: finishing the run's folder", name)
            with contextlib.suppress(RuntimeError):  # a print it interrupted: say it in the log
                self.echo(f"{name}: finishing the checks and the report (again to stop now)")
            return
        log.warning("%s again: stopping %s", name, "now" if self.at_once else "after teardown")
        if self.at_once:
            self._stop()

    def stop_if_asked_twice(self) -> None:
        if len(self.caught) > 1:
            self._stop()

    def _stop(self) -> None:
        for s in self.SIGNALS:  # a third signal: the default, at once
            signal.signal(s, signal.SIG_DFL)
        if self.again is None:
            self.old[AGAIN] = signal.signal(AGAIN, self._on_again)
            self.again = threading.Thread(target=self._raise_again, daemon=True)
            self.again.start()
        raise self._watched()

    def _watched(self) -> StopNow:
        """A new ``StopNow``, raised again if it is freed before it lands (not kept in a
        local of the raising frame: its traceback would keep it alive)."""
        stop = StopNow()
        self.watched = weakref.ref(stop, self._freed)
        return stop

    def _freed(self, _ref: weakref.ref[StopNow]) -> None:
        if not self.has_landed:  # runs where the stop was dropped: raise nothing here
            self.dropped += 1
            self.wake.set()

    def _raise_again(self) -> None:
        while True:
            self.wake.wait()
            self.wake.clear()
            time.sleep(0.001)  # the main thread leaves the code that dropped the stop
            if self.has_landed:
                return
            _thread.interrupt_main(AGAIN)

    def _on_again(self, _signum: int, _frame: Any) -> None:
        if not self.has_landed:
            log.warning("the stop was dropped by the code it interrupted: stopping again")
            raise self._watched()

    def stopped(self) -> Stopped:
        """The one-line error of a run stopped by a second signal."""
        where = self.run_dir
        return Stopped(
            f"stopped by a second {self.caught[-1]}; the history and the files written so far "
            f"are in {where} (check them again with: nats-chaos report {where})",
            self.caught[0],
        )
