"""The replica proxy's families besides requests and responses.

``tcp_open_total`` / ``tcp_open_connections`` (accepted inbound connections),
``inbound_tls_handshake_failure_total{reason}`` (refused handshakes: plaintext, untrusted
certificate, ...), ``inbound_http_authz_deny_total{client_id}`` and
``identity_cert_expiration_timestamp_seconds``. Counters are plain integers bumped by the
layers; gauges are read from callables on a scrape.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping

from fnmesh.platform.mesh.metrics.exposition import Family, PrometheusCollector


def _no_connections() -> int:
    return 0


def _no_certificate() -> float | None:
    return None


class ProxyMetrics(PrometheusCollector):
    def __init__(self, labels: Mapping[str, str]) -> None:
        self.const_names = tuple(labels)
        self.const_values = tuple(labels.values())
        self.tcp_opened = 0
        self.handshake_failures: dict[str, int] = {}
        self.authz_denials: dict[str, int] = {}
        self.open_connections: Callable[[], int] = _no_connections
        self.cert_expiration: Callable[[], float | None] = _no_certificate

    def connection_opened(self) -> None:
        self.tcp_opened += 1

    def handshake_failed(self, reason: str) -> None:
        self.handshake_failures[reason] = self.handshake_failures.get(reason, 0) + 1

    def authz_denied(self, client_id: str) -> None:
        self.authz_denials[client_id] = self.authz_denials.get(client_id, 0) + 1

    def families(self) -> Iterator[Family]:
        names, values = self.const_names, self.const_values
        tcp = (*names, "direction", "tls")
        inbound = (*values, "inbound", "true")
        opened = Family("tcp_open", "counter", "Total count of opened TCP connections.")
        opened.add(tcp, inbound, self.tcp_opened)
        yield opened
        open_now = Family(
            "tcp_open_connections", "gauge", "Number of currently-open TCP connections."
        )
        open_now.add(tcp, inbound, self.open_connections())
        yield open_now
        failures = Family(
            "inbound_tls_handshake_failure",
            "counter",
            "Total count of inbound connections refused at the TLS handshake.",
        )
        for reason, count in sorted(self.handshake_failures.items()):
            failures.add((*names, "reason"), (*values, reason), count)
        yield failures
        denied = Family(
            "inbound_http_authz_deny",
            "counter",
            "Total count of inbound HTTP requests refused by authorization policy.",
        )
        for client_id, count in sorted(self.authz_denials.items()):
            denied.add((*names, "client_id"), (*values, client_id), count)
        yield denied
        expiration = self.cert_expiration()
        if expiration is not None:
            gauge = Family(
                "identity_cert_expiration_timestamp_seconds",
                "gauge",
                "Time when this proxy's current mTLS identity certificate will expire,"
                " in seconds since the Unix epoch.",
            )
            gauge.add(names, values, expiration)
            yield gauge
