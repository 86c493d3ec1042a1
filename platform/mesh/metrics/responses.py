"""Request and response counters and the latency histogram, by status and peer identity.

Linkerd's families and labels: ``request_total``, ``response_total{classification,
status_code}`` and ``response_latency_ms{status_code}``, each with ``direction``, ``tls``,
the peer's identity (``client_id`` inbound, ``server_id`` outbound) and the constant labels
given (``namespace``, ``function``, ``revision``). A response is a failure when its status
is 5xx (Linkerd's default classification).

Recording touches one cached ``ResponseCounts`` per (peer, status): a few integer
additions and a bisect into the bucket bounds. Rendering happens on a scrape.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from fnmesh.platform.mesh.metrics.exposition import Family, PrometheusCollector

LATENCY_BUCKETS_MS: tuple[float, ...] = (
    1, 2, 3, 4, 5, 10, 20, 30, 40, 50, 100, 200, 300, 400, 500,
    1000, 2000, 3000, 4000, 5000, 10000, 20000, 30000, 40000, 50000,
)  # fmt: skip
BUCKET_NAMES: tuple[str, ...] = (*(f"{bound:g}" for bound in LATENCY_BUCKETS_MS), "+Inf")


def is_failure(status: int) -> bool:
    """Linkerd's default response classification: a 5xx status is a failure."""
    return status >= 500


class ResponseCounts:
    """Responses of one status to one peer: count, latency buckets (not cumulative), sum."""

    __slots__ = ("buckets", "count", "failure", "peer", "status", "sum_ms")

    def __init__(self, status: int, peer: str) -> None:
        self.status = status
        self.peer = peer
        self.failure = is_failure(status)
        self.count = 0
        self.sum_ms = 0.0
        self.buckets = [0] * (len(LATENCY_BUCKETS_MS) + 1)


@dataclass(frozen=True, slots=True)
class ResponseTotals:
    """Everything recorded so far, over all peers and statuses (or a difference of two)."""

    requests: int
    success: int
    failure: int
    buckets: tuple[int, ...]  # per bucket of LATENCY_BUCKETS_MS, then +Inf; not cumulative

    def __sub__(self, earlier: ResponseTotals) -> ResponseTotals:
        return ResponseTotals(
            self.requests - earlier.requests,
            self.success - earlier.success,
            self.failure - earlier.failure,
            tuple(a - b for a, b in zip(self.buckets, earlier.buckets, strict=True)),
        )

    def bucket_counts(self) -> dict[str, int]:
        """Non-zero buckets by their upper bound in ms (``"+Inf"`` for the last)."""
        return {name: n for name, n in zip(BUCKET_NAMES, self.buckets, strict=True) if n}


NO_RESPONSES = ResponseTotals(0, 0, 0, (0,) * len(BUCKET_NAMES))


class ResponseMetrics(PrometheusCollector):
    """The request/response families of one direction; register it in a registry (an
    ``exposition.Registry`` or a ``prometheus_client`` one)."""

    def __init__(
        self,
        *,
        direction: str,
        peer_label: str,
        tls: bool,
        labels: Mapping[str, str],
    ) -> None:
        self.direction = direction
        self.peer_label = peer_label
        self.tls = "true" if tls else "false"
        self.const_names = tuple(labels)
        self.const_values = tuple(labels.values())
        self._requests: dict[str, int] = {}
        self._responses: dict[str, dict[int, ResponseCounts]] = {}

    def request(self, peer: str) -> None:
        """A request from (inbound) or to (outbound) ``peer`` started."""
        requests = self._requests
        requests[peer] = requests.get(peer, 0) + 1

    def response(self, status: int, peer: str, latency_ms: float) -> None:
        """A response with ``status`` took ``latency_ms`` milliseconds."""
        by_status = self._responses.get(peer)
        if by_status is None:
            by_status = self._responses[peer] = {}
        counts = by_status.get(status)
        if counts is None:
            counts = by_status[status] = ResponseCounts(status, peer)
        counts.count += 1
        counts.sum_ms += latency_ms
        counts.buckets[bisect_left(LATENCY_BUCKETS_MS, latency_ms)] += 1

    def totals(self) -> ResponseTotals:
        """The sums over every peer and status (for interval reports: subtract two)."""
        success = failure = 0
        buckets = [0] * len(BUCKET_NAMES)
        for counts in self._each():
            if counts.failure:
                failure += counts.count
            else:
                success += counts.count
            for index, value in enumerate(counts.buckets):
                buckets[index] += value
        return ResponseTotals(sum(self._requests.values()), success, failure, tuple(buckets))

    def _each(self) -> Iterator[ResponseCounts]:
        for by_status in self._responses.values():
            yield from by_status.values()

    def families(self) -> Iterator[Family]:
        base = (*self.const_names, "direction", "tls", self.peer_label)
        fixed = (*self.const_values, self.direction, self.tls)
        requests = Family("request", "counter", "Total count of HTTP requests.")
        for peer, count in sorted(self._requests.items()):
            requests.add(base, (*fixed, peer), count)
        responses = Family("response", "counter", "Total count of HTTP responses.")
        latency = Family(
            "response_latency_ms",
            "histogram",
            "Elapsed times between a request being received and its response being"
            " ready to send, in milliseconds.",
        )
        with_status = (*base, "status_code")
        with_class = (*with_status, "classification")
        with_bound = (*with_status, "le")
        for counts in sorted(self._each(), key=lambda c: (c.peer, c.status)):
            status = str(counts.status)
            classification = "failure" if counts.failure else "success"
            responses.add(with_class, (*fixed, counts.peer, status, classification), counts.count)
            labels = (*fixed, counts.peer, status)
            cumulative = 0
            for name, value in zip(BUCKET_NAMES, counts.buckets, strict=True):
                cumulative += value
                latency.add(with_bound, (*labels, name), cumulative, "_bucket")
            latency.add(with_status, labels, counts.count, "_count")
            latency.add(with_status, labels, counts.sum_ms, "_sum")
        yield requests
        yield responses
        yield latency
