"""What the retry policy lets through, as a table."""

from __future__ import annotations

import pytest

from fnmesh.platform.mesh.outbound.retry import Failure, RetryPolicy

POLICY = RetryPolicy()
BIG = 64 * 1024 + 1


@pytest.mark.parametrize(
    ("failure", "method", "size", "expected"),
    [
        (Failure.CONNECT, "POST", 10, True),  # nothing was sent: any method
        (Failure.CONNECT, "PATCH", 0, True),
        (Failure.CONNECT, "GET", BIG, False),  # never a body over 64 KiB
        (Failure.RESET, "GET", 0, True),
        (Failure.RESET, "PUT", 100, True),
        (Failure.RESET, "DELETE", 0, True),
        (Failure.RESET, "POST", 0, False),  # the upstream may have acted on it
        (Failure.TIMEOUT, "HEAD", 0, True),
        (Failure.TIMEOUT, "OPTIONS", 0, True),
        (Failure.TIMEOUT, "TRACE", 0, True),
        (Failure.TIMEOUT, "PATCH", 0, False),
        (Failure.TIMEOUT, "GET", 64 * 1024, True),  # exactly 64 KiB is still fine
        (Failure.TIMEOUT, "GET", BIG, False),
        (Failure.PROTOCOL, "GET", 0, False),
    ],
)
def test_failures(failure: Failure, method: str, size: int, expected: bool) -> None:
    assert POLICY.retries_failure(failure, method, size) is expected


@pytest.mark.parametrize(
    ("status", "method", "size", "expected"),
    [
        (502, "GET", 0, True),
        (503, "GET", 0, True),
        (504, "PUT", 0, True),
        (500, "GET", 0, False),  # not in the configured list
        (503, "POST", 0, False),
        (503, "GET", BIG, False),
    ],
)
def test_statuses(status: int, method: str, size: int, expected: bool) -> None:
    assert POLICY.retries_status(status, method, size) is expected


def test_configured_statuses_and_limits() -> None:
    policy = RetryPolicy(statuses=frozenset({500}), max_body_bytes=10)
    assert policy.retries_status(500, "GET", 10)
    assert not policy.retries_status(502, "GET", 0)
    assert not policy.retries_failure(Failure.CONNECT, "GET", 11)


def test_bad_policies_are_named() -> None:
    with pytest.raises(ValueError, match=r"statuses \[404\]"):
        RetryPolicy(statuses=frozenset({404}))
    with pytest.raises(ValueError, match="max_retries"):
        RetryPolicy(max_retries=-1)
