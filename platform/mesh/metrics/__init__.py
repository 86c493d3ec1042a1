"""Prometheus metrics with Linkerd's names and labels, cheap on the request path.

``responses`` counts requests and responses by status and peer identity into plain
per-(status, peer) objects made once and reused (no label dicts per request), and renders
them as ``request_total``, ``response_total`` and ``response_latency_ms`` for either
direction; ``proxy`` holds the replica proxy's other families (TCP, authorization,
identity); ``process`` the process' own (CPU, memory, file descriptors); ``layer`` is the
inbound layer that records each request. ``exposition`` writes them in Prometheus' text
format without importing ``prometheus_client`` (the replica proxy's ``/metrics``), and
hands them to a ``prometheus_client`` registry where one is used (the platform's own).
"""
