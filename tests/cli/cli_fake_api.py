"""A small stand-in for the control-plane API (and the gateway), on a real socket.

A Starlette app served by uvicorn in a thread. Tests set what it answers (functions,
revisions, build events, logs) and read back what it was asked (``requests``).
"""

from __future__ import annotations

import asyncio
import json
import re
import socket
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

GROUP = "/apis/fnmesh.dev/v1alpha1"
TOKEN = "test-token-0123"
_NS = re.compile(rf"^{GROUP}/namespaces/(?P<ns>[^/]+)/(?P<rest>.*)$")


def status(code: int, message: str, causes: list[dict[str, str]] | None = None) -> dict[str, Any]:
    reasons = {400: "BadRequest", 401: "Unauthorized", 404: "NotFound", 422: "Invalid"}
    body: dict[str, Any] = {
        "kind": "Status",
        "apiVersion": "v1",
        "status": "Failure",
        "code": code,
        "reason": reasons.get(code, "InternalError"),
        "message": message,
    }
    if causes:
        body["details"] = {"causes": causes}
    return body


def function(
    name: str = "hello",
    namespace: str = "default",
    *,
    generation: int = 1,
    observed: int | None = 1,
    created: str | None = "hello-00001",
    ready_revision: str | None = "hello-00001",
    ready: str = "True",
    reason: str = "Ready",
    message: str = "",
    url: str | None = None,
    traffic: list[dict[str, Any]] | None = None,
    timestamp: str = "2026-01-01T00:00:00Z",
) -> dict[str, Any]:
    if traffic is None:
        traffic = [{"revision": ready_revision, "percent": 100}] if ready_revision else []
    target = name if namespace == "default" else f"{name}.{namespace}"
    return {
        "apiVersion": "fnmesh.dev/v1alpha1",
        "kind": "Function",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "uid": f"uid-{name}",
            "resourceVersion": "7",
            "generation": generation,
            "creationTimestamp": timestamp,
        },
        "spec": {
            "handler": "main:handle",
            "runtime": "python",
            "env": {"GREETING": "hi"},
            "timeout": 30.0,
            "concurrency": 0,
            "visibility": "public",
            "scale": {"min": 0, "max": 10, "target": 100, "metric": "concurrency"},
            "artifact": {"digest": "sha256:abc123", "build": "b-1"},
        },
        "status": {
            "observedGeneration": observed,
            "latestCreatedRevision": created,
            "latestReadyRevision": ready_revision,
            "url": url or f"http://127.0.0.1:8080/fn/{target}/",
            "traffic": traffic,
            "conditions": [
                {"type": "Ready", "status": ready, "reason": reason, "message": message}
            ],
        },
    }


def revision(
    name: str,
    function_name: str = "hello",
    namespace: str = "default",
    *,
    ready: int = 1,
    desired: int = 1,
    replicas: list[dict[str, Any]] | None = None,
    timestamp: str = "2026-01-01T00:00:00Z",
) -> dict[str, Any]:
    return {
        "apiVersion": "fnmesh.dev/v1alpha1",
        "kind": "Revision",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {"fnmesh.dev/function": function_name},
            "creationTimestamp": timestamp,
        },
        "spec": {"function": function_name, "handler": "main:handle"},
        "status": {
            "desiredReplicas": desired,
            "readyReplicas": ready,
            "replicas": replicas or [],
            "conditions": [{"type": "Ready", "status": "True" if ready else "Unknown"}],
        },
    }


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes


@dataclass
class FakeApi:
    """What the fake platform holds and answers; tests change these fields freely."""

    functions: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    # successive answers to GET of one function; the last one sticks
    function_states: dict[tuple[str, str], list[dict[str, Any]]] = field(default_factory=dict)
    revisions: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    # successive answers to GET revisions (each a list of items); the last one sticks
    revision_states: list[list[dict[str, Any]]] = field(default_factory=list)
    source_events: list[dict[str, Any]] = field(default_factory=list)
    # successive answers to uploads: events to stream, or (status, body) to refuse with;
    # once used up, uploads get source_events
    source_attempts: list[list[dict[str, Any]] | tuple[int, dict[str, Any]]] = field(
        default_factory=list
    )
    source_error: tuple[int, dict[str, Any]] | None = None
    # the build stream waits for this before sending events after a "hold" marker
    release: threading.Event = field(default_factory=threading.Event)
    logs: str = ""
    follow_lines: list[str] = field(default_factory=list)
    follow_sent: threading.Event = field(default_factory=threading.Event)
    # once set, the follow stream sends one more line (wakes a reader blocked in recv)
    nudge: threading.Event = field(default_factory=threading.Event)
    build_logs: dict[str, str] = field(default_factory=dict)
    requests: list[Recorded] = field(default_factory=list)
    closing: bool = False
    failing_tasks: list[dict[str, Any]] = field(default_factory=list)  # shown by /healthz

    def add(self, resource: dict[str, Any]) -> None:
        meta = resource["metadata"]
        key = (meta["namespace"], meta["name"])
        if resource["kind"] == "Function":
            self.functions[key] = resource
        else:
            self.revisions[key] = resource

    def asked(self, method: str, fragment: str = "") -> list[Recorded]:
        return [r for r in self.requests if r.method == method and fragment in r.path]

    # -- the app ---------------------------------------------------------------------------

    async def handle(self, request: Request) -> Response:
        body = await request.body()
        path = request.url.path
        self.requests.append(
            Recorded(
                request.method,
                path,
                dict(request.query_params),
                {k.lower(): v for k, v in request.headers.items()},
                body,
            )
        )
        if path.startswith("/fn/"):
            return self.gateway(request, body)
        if path == "/healthz":
            failing = self.failing_tasks
            body = {"status": "failing" if failing else "ok", "failing": failing}
            return JSONResponse(body, status_code=503 if failing else 200)
        if request.headers.get("authorization") != f"Bearer {TOKEN}":
            return JSONResponse(status(401, "the bearer token was refused"), status_code=401)
        if path == f"{GROUP}/functions" and request.method == "GET":
            return self.listing("Function", list(self.functions.values()))
        match = _NS.match(path)
        if not match:
            return JSONResponse(status(404, f"no such API path: {path}"), status_code=404)
        return await self.namespaced(request, match["ns"], match["rest"].split("/"))

    async def namespaced(self, request: Request, ns: str, parts: list[str]) -> Response:
        method = request.method
        if parts == ["functions"] and method == "GET":
            found = [f for (n, _), f in self.functions.items() if n == ns]
            return self.listing("Function", found)
        if parts == ["revisions"] and method == "GET" and self.revision_states:
            states = self.revision_states
            return self.listing("Revision", states.pop(0) if len(states) > 1 else states[0])
        if parts == ["revisions"] and method == "GET":
            wanted = request.query_params.get("function")
            found = [
                r
                for (n, _), r in self.revisions.items()
                if n == ns
                and (not wanted or r["metadata"]["labels"]["fnmesh.dev/function"] == wanted)
            ]
            return self.listing("Revision", found)
        if len(parts) == 2 and parts[0] == "functions":
            return self.one_function(method, ns, parts[1])
        if len(parts) == 3 and parts[2] == "source" and method == "POST":
            return self.source()
        if len(parts) == 3 and parts[2] == "logs" and method == "GET":
            if request.query_params.get("follow") == "true":
                return StreamingResponse(self.follow(), media_type="text/plain")
            return PlainTextResponse(self.logs)
        if len(parts) == 5 and parts[2] == "builds" and parts[4] == "log":
            if parts[3] not in self.build_logs:
                return JSONResponse(status(404, f"build {parts[3]} not found"), status_code=404)
            return PlainTextResponse(self.build_logs[parts[3]])
        return JSONResponse(status(404, f"no such API path: {request.url.path}"), status_code=404)

    def listing(self, kind: str, items: list[dict[str, Any]]) -> JSONResponse:
        return JSONResponse(
            {"apiVersion": "fnmesh.dev/v1alpha1", "kind": f"{kind}List", "items": items}
        )

    def one_function(self, method: str, ns: str, name: str) -> Response:
        key = (ns, name)
        states = self.function_states.get(key)
        if method == "GET" and states:
            return JSONResponse(states.pop(0) if len(states) > 1 else states[0])
        if key not in self.functions:
            return JSONResponse(status(404, f"function {ns}/{name} not found"), status_code=404)
        if method == "GET":
            return JSONResponse(self.functions[key])
        if method == "DELETE":
            return JSONResponse(self.functions.pop(key))
        return JSONResponse(status(405, f"{method} not allowed"), status_code=405)

    def source(self) -> Response:
        if self.source_error is not None:
            code, body = self.source_error
            return JSONResponse(body, status_code=code)
        events = self.source_events
        if self.source_attempts:
            attempt = self.source_attempts.pop(0)
            if isinstance(attempt, tuple):
                return JSONResponse(attempt[1], status_code=attempt[0])
            events = attempt
        return StreamingResponse(self.build_stream(events), media_type="application/x-ndjson")

    async def build_stream(self, events: list[dict[str, Any]]) -> AsyncIterator[bytes]:
        for event in events:
            if event.get("event") == "hold":
                deadline = time.monotonic() + 10
                while not (self.release.is_set() or self.closing) and time.monotonic() < deadline:
                    await asyncio.sleep(0.01)
                if not self.release.is_set():
                    yield b'{"event": "log", "line": "the fake server was never released"}\n'
                continue
            yield json.dumps(event).encode() + b"\n"
            await asyncio.sleep(0.005)

    async def follow(self) -> AsyncIterator[bytes]:
        for line in self.follow_lines:
            yield f"{line}\n".encode()
        self.follow_sent.set()
        nudged = False
        while not self.closing:  # hold the stream open like a live follow
            if self.nudge.is_set() and not nudged:
                nudged = True
                yield b"nudge\n"
            await asyncio.sleep(0.02)

    def gateway(self, request: Request, body: bytes) -> Response:
        code = int(request.query_params.get("status", "200"))
        echo = {
            "method": request.method,
            "path": request.url.path,
            "body": body.decode(),
            "headers": {k.lower(): v for k, v in request.headers.items()},
        }
        return JSONResponse(echo, status_code=code, headers={"x-fake": "yes"})


class FakeServer:
    """Serves a FakeApi on 127.0.0.1 in a thread until ``stop``."""

    def __init__(self, api: FakeApi) -> None:
        self.api = api
        app = Starlette(
            routes=[Route("/{path:path}", api.handle, methods=["GET", "POST", "PUT", "DELETE"])]
        )
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        config = uvicorn.Config(
            app, log_level="warning", lifespan="off", timeout_graceful_shutdown=1
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise AssertionError("the fake API server did not start")
            time.sleep(0.01)

    def stop(self) -> None:
        self.api.closing = True
        self.server.should_exit = True
        self.thread.join(10)
        self.sock.close()
        assert not self.thread.is_alive(), "the fake API server did not stop"
