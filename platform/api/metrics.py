"""``GET /metrics``: the platform's own Prometheus metrics, for a token of role viewer
or above that is not limited to a namespace (the metrics name every namespace's
functions).

The platform's registry holds the local runtime's cold-start histogram and scale-event
counters and the gateway's outbound request metrics. It is served on the API port so
that a scraper needs no second address; Prometheus sends the token with
``authorization: {credentials_file: ...}`` in its scrape config.
"""

from __future__ import annotations

from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from starlette.requests import Request
from starlette.responses import Response

from fnmesh.platform.api.deps import deps


async def platform_metrics(request: Request) -> Response:
    registry = deps(request).metrics
    body = generate_latest(registry) if registry is not None else b""
    return Response(body, headers={"content-type": CONTENT_TYPE_LATEST})
