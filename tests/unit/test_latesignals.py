"""The late signal handlers: the first signal is recorded, the second stops, and a stop that
the interrupted code drops is delivered again until the runner has it."""

from __future__ import annotations

import io
import logging
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.latesignals import AGAIN, AGAIN_EVERY, LateSignals, StopNow


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
    with pytest.raises(StopNow):
        signal.raise_signal(signal.SIGINT)
        _spin(1)
    handlers.landed()
    assert handlers.caught == ["SIGTERM", "SIGINT"]
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
    with pytest.raises(StopNow):
        handlers.stop_if_asked_twice()
    handlers.landed()


def test_a_stop_the_interrupted_code_drops_is_delivered_again(late, caplog) -> None:
    handlers, _ = late
    signal.raise_signal(signal.SIGINT)
    handlers.at_once = True
    went_on = False
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, "nats-chaos"), pytest.raises(StopNow):
        _DropsWhatItMeets()  # garbage at once: its finalizer runs the second signal's handler
        went_on = True
        _spin(10 * AGAIN_EVERY)
    handlers.landed()
    assert went_on  # the first stop was dropped: this test met the case it is about
    assert handlers.caught == ["SIGINT", "SIGTERM"]
    assert time.monotonic() - started < 5 * AGAIN_EVERY
    assert "the stop was dropped by the code it interrupted: stopping again" in caplog.text


def test_once_the_stop_has_landed_it_is_not_delivered_again(late) -> None:
    handlers, _ = late
    handlers.at_once = True
    signal.raise_signal(signal.SIGINT)
    with pytest.raises(StopNow):
        signal.raise_signal(signal.SIGINT)
    handlers.landed()
    _spin(3 * AGAIN_EVERY)  # no StopNow here
    assert handlers.again is not None
    handlers.again.join(2 * AGAIN_EVERY)
    assert not handlers.again.is_alive()


def test_no_stop_no_thread(late) -> None:
    handlers, _ = late
    signal.raise_signal(signal.SIGINT)
    _spin(0.05)
    assert handlers.again is None and handlers.caught == ["SIGINT"]
