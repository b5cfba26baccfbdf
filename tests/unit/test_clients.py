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
        (  # sent while applying a committed entry: the followers may have stored it
            APIError(code=503, err_code=10077, description="no space left on device"),
            "info",
            "api-error 10077: no space left on device",
        ),
        (
            APIError(
                code=503, err_code=10063, description="expected stream sequence does not match"
            ),
            "info",
            "api-error 10063: expected stream sequence does not match",
        ),
        (  # the leader's own check before it proposes: nothing stored
            APIError(code=400, err_code=10071, description="wrong last sequence: 7"),
            "fail",
            "api-error 10071: wrong last sequence: 7",
        ),
        (
            APIError(code=503, err_code=10023, description="insufficient resources"),
            "fail",
            "api-error 10023: insufficient resources",
        ),
        (NatsTimeout(), "info", "timeout"),
        (TimeoutError(), "info", "timeout"),
        (ConnectionClosedError(), "info", "ConnectionClosedError: nats: connection closed"),
        (RuntimeError(), "info", "RuntimeError"),
    ],
)
def test_classify(exc: BaseException, kind: str, error: str) -> None:
    assert classify(exc) == (kind, error)
