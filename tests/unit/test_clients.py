"""The one mapping from client exceptions to op types: certain failures vs unknown outcomes."""

from __future__ import annotations

import pytest
from nats.errors import ConnectionClosedError, NoRespondersError
from nats.errors import TimeoutError as NatsTimeout
from nats.js.errors import APIError, NoStreamResponseError

from harness.clients import classify


@pytest.mark.parametrize(
    ("exc", "kind", "error"),
    [
        (NoRespondersError(), "fail", "no-responders"),
        (NoStreamResponseError(), "fail", "no-responders"),
        (
            APIError(code=503, err_code=10008, description="stream busy"),
            "fail",
            "api-error 10008: stream busy",
        ),
        (NatsTimeout(), "info", "timeout"),
        (TimeoutError(), "info", "timeout"),
        (ConnectionClosedError(), "info", "ConnectionClosedError: nats: connection closed"),
        (RuntimeError(), "info", "RuntimeError"),
    ],
)
def test_classify(exc: BaseException, kind: str, error: str) -> None:
    assert classify(exc) == (kind, error)
