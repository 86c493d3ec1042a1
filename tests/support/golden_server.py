"""A stand-in telemetry hub over HTTP: answers ``GET /v1/golden`` from a table.

``answers[revision]`` is what the hub says of a revision: a JSON-able body (200), or an
``int`` status to answer instead. Revisions not in the table are 404 (no outcomes yet).
Every request's query is kept in ``asked``. Served by a real socket on 127.0.0.1.
"""

from __future__ import annotations

import json
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class GoldenServer:
    def __init__(self) -> None:
        self.answers: dict[str, Any] = {}
        self.asked: list[dict[str, str]] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                parsed = urllib.parse.urlsplit(self.path)
                query = dict(urllib.parse.parse_qsl(parsed.query))
                owner.asked.append(query)
                answer = owner.answers.get(query.get("revision", ""), 404)
                if parsed.path != "/v1/golden":
                    answer = 404
                if isinstance(answer, int):
                    self.send_response(answer)
                    self.send_header("content-length", "0")
                    self.end_headers()
                    return
                body = answer if isinstance(answer, bytes) else json.dumps(answer).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> GoldenServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(10)


def healthy_body(requests: int = 100) -> dict[str, Any]:
    return {"requests": requests, "successRate": 1.0, "p99Ms": 20.0, "rps": 10.0}


def erroring_body(fraction: float, requests: int = 1000) -> dict[str, Any]:
    return {"requests": requests, "successRate": 1.0 - fraction, "p99Ms": 20.0}
