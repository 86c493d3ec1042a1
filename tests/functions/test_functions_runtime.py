"""The runtime as a process: every handler form and return type over real HTTP."""

from __future__ import annotations

import re
import threading
from pathlib import Path

import pytest
from runtimekit import Reply, Runtime, Runtimes, write_source

SYNC = """
import threading

from fnmesh.functions import HttpError, Response

state = {}


def init():
    state["ready"] = "initialised"


class Odd:
    pass


def handle(req):
    path = req.path
    if path == "/text":
        return "plain text"
    if path == "/bytes":
        return b"\\x00\\x01"
    if path == "/dict":
        return {"a": 1, "path": req.path}
    if path == "/list":
        return [1, "two"]
    if path == "/none":
        return None
    if path == "/response":
        return Response(b"made", 201, {"X-Made": "yes", "Content-Type": "text/x-made"})
    if path == "/response-json":
        return Response.json({"ok": True}, status=202)
    if path == "/tuple":
        return "created", 201
    if path == "/tuple-headers":
        return {"id": 7}, 201, {"location": "/things/7"}
    if path == "/init":
        return state["ready"]
    if path == "/thread":
        return threading.current_thread().name
    if path == "/query":
        return {"query": req.query, "params": req.query_params}
    if path == "/headers":
        return {"thing": req.headers["X-THING"], "has": "x-thing" in req.headers}
    if path == "/json":
        return {"got": req.json()}
    if path == "/teapot":
        raise HttpError(418, "short and stout")
    if path == "/raise":
        raise ValueError("the handler broke")
    if path == "/odd":
        return Odd()
    if path == "/print":
        print("hello from the handler")
        return "printed"
    if path == "/id":
        return req.request_id
    return {"unknown": path}
"""

ASYNC = """
import asyncio

started = []


async def init():
    await asyncio.sleep(0)
    started.append(True)


async def handle(req):
    if req.path == "/slow":
        print("slow request started")
        await asyncio.sleep(0.5)
        return "slow done"
    await asyncio.sleep(0)
    return {"async": True, "init": bool(started), "body": req.text}
"""


@pytest.fixture(scope="module")
def sync_runtime(module_runtimes: Runtimes, tmp_path_factory: pytest.TempPathFactory) -> Runtime:
    source = write_source(tmp_path_factory.mktemp("sync"), {"main.py": SYNC})
    return module_runtimes.start(source, "main:handle", "--concurrency", "4")


@pytest.mark.parametrize(
    ("target", "status", "content_type", "body"),
    [
        ("/text", 200, "text/plain; charset=utf-8", b"plain text"),
        ("/bytes", 200, "application/octet-stream", b"\x00\x01"),
        ("/dict", 200, "application/json", b'{"a": 1, "path": "/dict"}'),
        ("/list", 200, "application/json", b'[1, "two"]'),
        ("/none", 204, None, b""),
        ("/response", 201, "text/x-made", b"made"),
        ("/response-json", 202, "application/json", b'{"ok": true}'),
        ("/tuple", 201, "text/plain; charset=utf-8", b"created"),
        ("/init", 200, "text/plain; charset=utf-8", b"initialised"),
    ],
)
def test_return_values_become_responses(
    sync_runtime: Runtime, target: str, status: int, content_type: str | None, body: bytes
) -> None:
    reply = sync_runtime.request("GET", target)
    assert (reply.status, reply.headers.get("content-type"), reply.body) == (
        status, content_type, body,
    )  # fmt: skip


def test_response_headers_and_tuple_headers_are_sent(sync_runtime: Runtime) -> None:
    assert sync_runtime.request("GET", "/response").headers["x-made"] == "yes"
    reply = sync_runtime.request("GET", "/tuple-headers")
    assert (reply.status, reply.headers["location"], reply.json()) == (201, "/things/7", {"id": 7})


def test_sync_handlers_run_in_the_thread_pool(sync_runtime: Runtime) -> None:
    name = sync_runtime.request("GET", "/thread").text
    assert name.startswith("handler") and name != "MainThread"


def test_the_request_carries_query_headers_and_path(sync_runtime: Runtime) -> None:
    reply = sync_runtime.request("GET", "/query?a=1&b=x%20y&a=2&empty=")
    assert reply.json() == {
        "query": {"a": "2", "b": "x y", "empty": ""},
        "params": [["a", "1"], ["b", "x y"], ["a", "2"], ["empty", ""]],
    }
    reply = sync_runtime.request("GET", "/headers", headers={"x-Thing": "42"})
    assert reply.json() == {"thing": "42", "has": True}
    assert sync_runtime.request("GET", "/%64ict").json()["path"] == "/dict"


def test_json_bodies_are_parsed_and_bad_json_is_400(sync_runtime: Runtime) -> None:
    reply = sync_runtime.request("POST", "/json", b'{"x": [1, 2]}')
    assert reply.json() == {"got": {"x": [1, 2]}}
    reply = sync_runtime.request("POST", "/json", b"{not json", {"x-request-id": "req-json"})
    assert reply.status == 400
    error = reply.json()
    assert "not valid JSON" in error["error"]
    assert error["requestId"] == "req-json"


def test_http_errors_raised_by_the_handler_set_the_status(sync_runtime: Runtime) -> None:
    reply = sync_runtime.request("GET", "/teapot")
    assert reply.status == 418
    assert reply.json()["error"] == "short and stout"


def test_request_ids_are_echoed_or_made(sync_runtime: Runtime) -> None:
    reply = sync_runtime.request("GET", "/id", headers={"X-Request-Id": "abc-123"})
    assert (reply.text, reply.headers["x-request-id"]) == ("abc-123", "abc-123")
    made = sync_runtime.request("GET", "/id")
    assert re.fullmatch(r"[0-9a-f]{16}", made.headers["x-request-id"])
    assert made.text == made.headers["x-request-id"]


def test_a_raising_handler_is_500_with_the_request_id_and_the_replica_lives_on(
    sync_runtime: Runtime,
) -> None:
    reply = sync_runtime.request("GET", "/raise", headers={"x-request-id": "req-boom"})
    assert reply.status == 500
    assert reply.json() == {"error": "the function raised ValueError", "requestId": "req-boom"}
    assert reply.headers["x-request-id"] == "req-boom"
    sync_runtime.wait_for_line(sync_runtime.stderr, "request req-boom")
    sync_runtime.wait_for_line(sync_runtime.stderr, "ValueError: the handler broke")
    assert sync_runtime.request("GET", "/text").status == 200


def test_an_unsupported_return_type_is_500_naming_it(sync_runtime: Runtime) -> None:
    reply = sync_runtime.request("GET", "/odd")
    assert reply.status == 500
    message = reply.json()["error"]
    assert "returned Odd" in message and "str, bytes, dict, list, None" in message


def test_the_health_path_is_answered_by_the_runtime(sync_runtime: Runtime) -> None:
    reply = sync_runtime.request("GET", "/_fnmesh/health")
    assert (reply.status, reply.body) == (200, b"ok")


def test_print_reaches_stdout_at_once(sync_runtime: Runtime) -> None:
    assert sync_runtime.request("GET", "/print").text == "printed"
    sync_runtime.wait_for_line(sync_runtime.stdout, "hello from the handler")


def test_async_handler_and_async_init_and_graceful_sigterm(
    runtimes: Runtimes, tmp_path: Path
) -> None:
    runtime = runtimes.start(write_source(tmp_path, {"main.py": ASYNC}))
    reply = runtime.request("POST", "/x", "héllo".encode())
    assert reply.json() == {"async": True, "init": True, "body": "héllo"}

    replies: list[Reply] = []
    slow = threading.Thread(target=lambda: replies.append(runtime.request("GET", "/slow")))
    slow.start()
    runtime.wait_for_line(runtime.stdout, "slow request started")
    runtime.process.terminate()  # SIGTERM while the request is in flight
    slow.join(20)
    assert [(r.status, r.body) for r in replies] == [(200, b"slow done")]
    assert runtime.wait() == 0
