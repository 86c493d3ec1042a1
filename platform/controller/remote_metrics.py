"""``Metrics`` over HTTP: a canary's golden metrics from a telemetry hub in another process.

On one machine the controller asks the hub in its own process. On a cluster the hub
runs in a component of its own, and the operator asks it::

    GET <url>/v1/golden?namespace=<ns>&revision=<revision>&window=<seconds>
    200 {"requests": 120, "successRate": 0.99, "p99Ms": 41.5, ...}   (other fields ignored)
    404                                                              (no outcomes yet)

Anything else -- the hub unreachable, slow, answering an error or a body that is not that
shape -- counts as no sample: the rollout neither steps nor counts a failed check (as
with too few requests), and a warning is logged once per streak of failures. Calls block
(the driver runs them in a thread) and are bounded by ``timeout`` and ``MAX_BODY``.
"""

from __future__ import annotations

import json
import logging
import ssl
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any

log = logging.getLogger("fnmesh.controller.metrics")
PATH = "/v1/golden"
MAX_BODY = 64 * 1024


@dataclass(frozen=True, slots=True)
class RemoteSample:
    """One revision's outcomes over a window, as the hub reported them."""

    requests: int
    success_rate: float | None
    p99_ms: float | None


def parse_sample(body: Any) -> RemoteSample:
    """The sample in a hub's answer; ValueError naming the field that is wrong."""
    if not isinstance(body, dict):
        raise ValueError("the answer must be a JSON object")
    requests = body.get("requests")
    if isinstance(requests, bool) or not isinstance(requests, int) or requests < 0:
        raise ValueError(f"requests must be a whole number of 0 or more, not {requests!r}")
    rate = _number(body, "successRate", 0.0, 1.0)
    p99 = _number(body, "p99Ms", 0.0, None)
    return RemoteSample(requests, rate, p99)


def _number(body: dict[str, Any], name: str, low: float, high: float | None) -> float | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{name} must be a number or null, not {value!r}")
    if value < low or (high is not None and value > high):
        bound = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise ValueError(f"{name} must be {bound}, not {value!r}")
    return float(value)


class RemoteMetrics:
    """Implements the controller's ``Metrics`` by asking a telemetry hub at ``url``."""

    def __init__(self, url: str, *, timeout: float = 2.0, ca_file: str | None = None) -> None:
        parsed = urllib.parse.urlsplit(url)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise ValueError(f"the telemetry URL must be http(s)://host[:port], not {url!r}")
        self.url = url.rstrip("/")
        self.timeout = timeout
        self._context = ssl.create_default_context(cafile=ca_file) if ca_file else None
        self._failing = False

    def golden(self, namespace: str, revision: str, window: float) -> RemoteSample | None:
        query = urllib.parse.urlencode(
            {"namespace": namespace, "revision": revision, "window": f"{window:g}"}
        )
        request = urllib.request.Request(
            f"{self.url}{PATH}?{query}", headers={"Accept": "application/json"}
        )
        try:
            with urllib.request.urlopen(
                request, timeout=self.timeout, context=self._context
            ) as response:
                raw = response.read(MAX_BODY + 1)
            if len(raw) > MAX_BODY:
                raise ValueError(f"the answer is larger than {MAX_BODY} bytes")
            sample = parse_sample(json.loads(raw))
        except urllib.error.HTTPError as error:
            if error.code == 404:
                self._recovered()
                return None
            self._failed(namespace, revision, f"it answered {error.code}")
            return None
        except (OSError, ValueError) as error:
            self._failed(namespace, revision, str(error))
            return None
        self._recovered()
        return sample

    def _failed(self, namespace: str, revision: str, why: str) -> None:
        if not self._failing:
            log.warning(
                "no metrics for %s/%s from the telemetry hub at %s: %s (the rollout waits)",
                namespace,
                revision,
                self.url,
                why,
            )
        self._failing = True
        return

    def _recovered(self) -> None:
        if self._failing:
            log.info("the telemetry hub at %s answers again", self.url)
        self._failing = False
