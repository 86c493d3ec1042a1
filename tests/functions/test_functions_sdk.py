"""The SDK in-process: Request parsing, Headers, and the return-value table."""

from __future__ import annotations

from typing import Any

import pytest

from fnmesh.functions import BadRequest, Headers, Request, Response
from fnmesh.functions.asgi import is_asgi
from fnmesh.functions.response import UnsupportedReturn, to_http


def make(target: bytes = b"/", body: bytes = b"", headers: Any = ()) -> Request:
    return Request("POST", target, list(headers), body, "rid")


def test_headers_are_case_insensitive_read_only_and_join_repeats() -> None:
    headers = Headers([(b"x-a", b"1"), (b"accept", b"a"), (b"accept", b"b")])
    assert headers["X-A"] == "1"
    assert headers["Accept"] == "a, b"
    assert headers.get_all("ACCEPT") == ["a", "b"]
    assert "x-a" in headers and "X-a" in headers and "nope" not in headers
    assert headers.get("missing", "d") == "d"
    assert dict(headers) == {"x-a": "1", "accept": "a, b"}
    assert len(headers) == 2
    with pytest.raises(TypeError):
        headers["x-a"] = "2"  # type: ignore[index]


def test_path_and_query_are_decoded_lazily() -> None:
    request = make(b"/a%20b/c?x=1&y=%C3%A9&x=3&flag")
    assert request.path == "/a b/c"
    assert request.query == {"x": "3", "y": "é", "flag": ""}
    assert request.query_params == [("x", "1"), ("y", "é"), ("x", "3"), ("flag", "")]
    assert make(b"").path == "/"
    assert make(b"/p").query == {}


def test_json_and_text_raise_bad_request_with_the_reason() -> None:
    assert make(body=b'{"a": [1]}').json() == {"a": [1]}
    with pytest.raises(BadRequest, match="not valid JSON") as info:
        make(body=b"{oops").json()
    assert info.value.status == 400
    with pytest.raises(BadRequest, match="body is empty"):
        make(body=b"  ").json()
    assert make(body="é".encode()).text == "é"
    with pytest.raises(BadRequest, match="not valid UTF-8"):
        _ = make(body=b"\xff").text


@pytest.mark.parametrize(
    ("result", "status", "headers", "body"),
    [
        ("hi", 200, [(b"content-type", b"text/plain; charset=utf-8")], b"hi"),
        (b"\x00", 200, [(b"content-type", b"application/octet-stream")], b"\x00"),
        ({"a": "é"}, 200, [(b"content-type", b"application/json")], '{"a": "é"}'.encode()),
        ([], 200, [(b"content-type", b"application/json")], b"[]"),
        (None, 204, [], b""),
        ((None, 202), 202, [], b""),
        (("gone", 410), 410, [(b"content-type", b"text/plain; charset=utf-8")], b"gone"),
        (
            ({"id": 1}, 201, {"Location": "/1"}),
            201,
            [(b"location", b"/1"), (b"content-type", b"application/json")],
            b'{"id": 1}',
        ),
        (Response(), 200, [], b""),
        (Response("x", 404), 404, [(b"content-type", b"text/plain; charset=utf-8")], b"x"),
        (
            Response(b"<p>", headers={"Content-Type": "text/html"}),
            200,
            [(b"content-type", b"text/html")],
            b"<p>",
        ),
        (Response.json([1], status=201), 201, [(b"content-type", b"application/json")], b"[1]"),
    ],
)
def test_return_values_map_to_responses(
    result: object, status: int, headers: list[tuple[bytes, bytes]], body: bytes
) -> None:
    response = to_http(result)
    assert (response.status, response.headers, response.body) == (status, headers, body)


@pytest.mark.parametrize(
    ("result", "message"),
    [
        (42, "returned int; return str, bytes"),
        ({1, 2}, "returned set"),
        ({"x": object()}, "not JSON-serializable"),
        (("a", 200, {}, 1), "tuple of 4 items"),
        (("a", "200"), "status '200'"),
        (("a", 99), "status 99"),
        (("a", True), "status True"),
        (("a", 200, ["x"]), "headers of type list"),
        (("a", 200, {"bad name": "v"}), "cannot be sent"),
        (("a", 200, {"x": "line\r\nbreak"}), "cannot be sent"),
        (("a", 200, {"x": 1}), "must be str"),
        (Response(123), "Response whose body is int"),  # type: ignore[arg-type]
        ((Response(), 200), "Response inside a tuple"),
    ],
)
def test_unsupported_returns_say_what_and_how_to_fix(result: object, message: str) -> None:
    with pytest.raises(UnsupportedReturn, match=message):
        to_http(result)


async def _asgi(scope: Any, receive: Any, send: Any) -> None:
    pass


class _AsgiObject:
    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        pass


async def _handler(req: Any) -> None:
    pass


@pytest.mark.parametrize(
    ("candidate", "expected"),
    [(_asgi, True), (_AsgiObject(), True), (_handler, False), (print, False), ("x", False)],
)
def test_asgi_applications_are_told_from_handlers(candidate: object, expected: bool) -> None:
    assert is_asgi(candidate) is expected
