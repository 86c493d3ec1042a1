"""Outbound request metrics: the mesh's response families, one set per destination.

``fnmesh.platform.mesh.metrics.responses.ResponseMetrics`` records Linkerd's
``request_total``, ``response_total{classification, status_code}`` and
``response_latency_ms`` with constant labels; here each destination gets one, with
``direction="outbound"``, ``server_id`` (the identity of the endpoint that answered, ""
when the stack answered itself) and the destination's ``namespace``/``function``/
``revision``. ``OutboundMetrics`` is the single collector on the caller's registry: it
merges the destinations' samples into one family per name, as the exposition format
requires. Counts of a destination are kept for the life of the process.
"""

from __future__ import annotations

from collections.abc import Iterator

from fnmesh.platform.mesh.metrics.exposition import Family, MetricsRegistry, PrometheusCollector
from fnmesh.platform.mesh.metrics.responses import ResponseMetrics

DIRECTION = "outbound"
PEER_LABEL = "server_id"


class OutboundMetrics(PrometheusCollector):
    """Every destination's response metrics, collected as one set of families."""

    def __init__(self, registry: MetricsRegistry, *, tls: bool) -> None:
        self.tls = tls
        self._destinations: dict[tuple[str, str, str], ResponseMetrics] = {}
        registry.register(self)

    def for_destination(self, namespace: str, function: str, revision: str) -> ResponseMetrics:
        """The destination's metrics, made on first use and kept."""
        key = (namespace, function, revision)
        metrics = self._destinations.get(key)
        if metrics is None:
            metrics = self._destinations[key] = ResponseMetrics(
                direction=DIRECTION,
                peer_label=PEER_LABEL,
                tls=self.tls,
                labels={"namespace": namespace, "function": function, "revision": revision},
            )
        return metrics

    def families(self) -> Iterator[Family]:
        merged: dict[str, Family] = {}
        for metrics in list(self._destinations.values()):
            for family in metrics.families():
                into = merged.get(family.name)
                if into is None:
                    merged[family.name] = family
                else:
                    into.samples.extend(family.samples)
        yield from merged.values()
