"""The late signal handlers: the first signal is recorded, the second stops, and a stop that
the interrupted code drops is raised again (but never one still on its way)."""

from __future__ import annotations

import io
import logging
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.latesignals import AGAIN, LateSignals, StopNow


@pytest.fixture
def late(tmp_path: Path) -> Iterator[tuple[LateSignals, list[str]]]:
    said: list[str] = []
    handlers = LateSignals([], said.append, tmp_path)
    before = {s: signal.getsignal(s) for s in (*LateSignals.SIGNALS, AGAIN)}
    handlers.install()
    try:
        yield handlers, said
    finally:
        handlers.restore()
        assert {s: signal.getsignal(s) for s in before} == before


class _DropsWhatItMeets(io.RawIOBase):
    """A file whose finalizer meets the signal: io's finalizer clears what ``closed`` raises."""

    @property
    def closed(self) -> bool:
        signal.raise_signal(signal.SIGTERM)
        return True


def _spin(seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        sum(range(100))


def test_the_first_signal_is_recorded_and_the_second_stops_at_once(late) -> None:
    handlers, said = late
    handlers.at_once = True
    signal.raise_signal(signal.SIGTERM)
    assert handlers.caught == ["SIGTERM"]
    assert said == ["SIGTERM: finishing the checks and the report (again to stop now)"]
    with pytest.raises(StopNow) as stopped:
        signal.raise_signal(signal.SIGINT)
        _spin(1)
    handlers.has_landed = True
    del stopped
    assert handlers.caught == ["SIGTERM", "SIGINT"] and handlers.dropped == 0
    assert signal.getsignal(signal.SIGINT) is signal.SIG_DFL  # a third: the default, at once
    error = handlers.stopped()
    assert error.exit_code == 143  # the first names the exit code
    assert str(error).startswith("stopped by a second SIGINT; the history and the files written")


def test_in_teardown_the_second_signal_waits_for_stop_if_asked_twice(late) -> None:
    handlers, _ = late
    signal.raise_signal(signal.SIGINT)
    signal.raise_signal(signal.SIGINT)
    _spin(0.05)
    assert handlers.caught == ["SIGINT", "SIGINT"]
    with pytest.raises(StopNow) as stopped:
        handlers.stop_if_asked_twice()
    handlers.has_landed = True
    del stopped
    assert handlers.dropped == 0


def test_a_stop_the_interrupted_code_drops_is_raised_again(late, caplog) -> None:
    handlers, _ = late
    signal.raise_signal(signal.SIGINT)
    handlers.at_once = True
    with caplog.at_level(logging.WARNING, "nats-chaos"), pytest.raises(StopNow) as stopped:
        _DropsWhatItMeets()  # garbage at once: its finalizer runs the second signal's handler
        _spin(1)
    handlers.has_landed = True  # as the runner does: while it holds the stop
    del stopped
    assert handlers.dropped == 1  # this test met the case it is about
    assert handlers.caught == ["SIGINT", "SIGTERM"]
    assert "the stop was dropped by the code it interrupted: stopping again" in caplog.text


def test_a_stop_on_its_way_is_not_raised_twice(late, caplog) -> None:
    handlers, _ = late
    signal.raise_signal(signal.SIGINT)
    handlers.at_once = True

    def cleans_up_slowly() -> None:
        try:
            signal.raise_signal(signal.SIGINT)
            _spin(1)
        finally:
            _spin(0.5)  # the stop is on its way through this cleanup: alive, not dropped

    with caplog.at_level(logging.WARNING, "nats-chaos"), pytest.raises(StopNow) as stopped:
        cleans_up_slowly()
    handlers.has_landed = True
    del stopped  # freed once landed: not raised again
    _spin(0.2)
    assert handlers.dropped == 0 and "dropped" not in caplog.text


def test_no_stop_no_handler_for_again(late) -> None:
    handlers, _ = late
    signal.raise_signal(signal.SIGINT)
    _spin(0.05)
    assert handlers.caught == ["SIGINT"] and handlers.again is None
