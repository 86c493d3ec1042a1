"""A function with a dependency: GET /?bytes=123456 -> {"natural": "123.5 kB"}."""

from typing import Any

import humanize  # type: ignore[import-not-found, unused-ignore]

from fnmesh.functions import Request


def handle(req: Request) -> dict[str, Any] | tuple[dict[str, Any], int]:
    raw = req.query.get("bytes", "")
    if not raw.isdigit():
        return {"error": "pass a number of bytes, e.g. ?bytes=123456"}, 400
    return {"natural": humanize.naturalsize(int(raw))}
