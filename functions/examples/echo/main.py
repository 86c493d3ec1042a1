"""JSON in, JSON out: answers with the JSON body it got, and where it was sent.

A body that is not JSON is answered with 400 and the reason (``req.json()`` raises).
"""

from typing import Any

from fnmesh.functions import Request


def handle(req: Request) -> dict[str, Any]:
    return {"echo": req.json(), "method": req.method, "path": req.path, "query": req.query}
