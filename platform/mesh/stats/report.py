"""The stats report a replica proxy sends, and the reply it reads (pure).

Report (JSON)::

    {"namespace", "function", "revision", "replica",
     "time": <Unix seconds at the end of the interval>,
     "interval": <seconds covered>,
     "concurrency": <time-weighted average of requests in flight (queued included)>,
     "requests": <requests received>, "success": n, "failure": n,
     "latencyBuckets": {"<upper bound in ms>" | "+Inf": n, ...},  # non-zero buckets only
     "tap": [<tap events>]}

``requests`` counts every request that reached the proxy (refused ones too: a 503 for a
full queue is demand); ``success``/``failure`` count the responses completed in the
interval, 5xx being failures. Requests the activator sends count like any other.

Reply: ``{"tap": null}`` or ``{"tap": {"filters": {"method": ..., "pathPrefix": ...}}}``
while a tap session wants this replica's requests.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fnmesh.platform.mesh.metrics.responses import ResponseTotals
from fnmesh.platform.mesh.stats.load import LoadSample
from fnmesh.platform.mesh.tap.filters import TapFilter, parse_filter
from fnmesh.platform.mesh.tap.recorder import TapEvent


@dataclass(frozen=True, slots=True)
class ReportLabels:
    namespace: str
    function: str
    revision: str
    replica: str


def build_report(
    labels: ReportLabels,
    time: float,
    load: LoadSample,
    responses: ResponseTotals,
    tap: list[TapEvent],
) -> dict[str, Any]:
    """The report for one interval (``responses`` is the interval's difference of totals)."""
    return {
        "namespace": labels.namespace,
        "function": labels.function,
        "revision": labels.revision,
        "replica": labels.replica,
        "time": round(time, 3),
        "interval": round(load.interval, 6),
        "concurrency": round(load.concurrency, 6),
        "requests": responses.requests,
        "success": responses.success,
        "failure": responses.failure,
        "latencyBuckets": responses.bucket_counts(),
        "tap": tap,
    }


@dataclass(frozen=True, slots=True)
class StatsReply:
    tap: TapFilter | None  # the filters of the open tap session, None when there is none


def parse_reply(body: object) -> StatsReply:
    """Read the stats endpoint's answer; ValueError says what is wrong with it."""
    if not isinstance(body, dict):
        raise ValueError('the stats reply must be a JSON object like {"tap": null}')
    tap = body.get("tap")
    if tap is None:
        return StatsReply(None)
    if not isinstance(tap, dict):
        raise ValueError('"tap" in the stats reply must be null or {"filters": {...}}')
    return StatsReply(parse_filter(tap.get("filters")))
