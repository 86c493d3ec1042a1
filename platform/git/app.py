"""The git receiver as an ASGI app, mounted at ``/git`` in the API.

Routes (below the mount):

    GET  /<repo>/info/refs?service=git-upload-pack|git-receive-pack   ref advertisement
    POST /<repo>/git-upload-pack                                      fetch, clone
    POST /<repo>/git-receive-pack                                     push
    POST /-/pre-receive               the hook of a push in flight (its secret, no token)

where ``<repo>`` is ``NAME.git`` or ``NAMESPACE/NAME.git``, optionally followed by the
sub-folder that holds ``fn.yaml``. Every git route needs HTTP basic auth whose password is
an API token (any user name); git asks its credential helper for it after the first 401.
A push needs a token that may write ``source`` in the repository's namespace (deployer,
admin); a fetch or clone one that may read it (the same roles: source is not a viewer's).
A push holds its function's lock for the whole receive-pack run, so pushes to one function
take turns; its request body is limited to ``max_push_bytes``.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from starlette.types import Receive, Scope, Send

from fnmesh.platform.git import pre_receive
from fnmesh.platform.git.backend import BodyLimit, Refusal, run_cgi
from fnmesh.platform.git.gate import Push
from fnmesh.platform.git.pktline import parse_push_head, refuse_push
from fnmesh.platform.git.refs import RefUpdate
from fnmesh.platform.git.repos import check_quarantine, clean_env
from fnmesh.platform.git.service import GitService, service_for
from fnmesh.platform.git.urls import SERVICES, GitRequestPath, PathError, parse_request_path
from fnmesh.platform.model.access import Grant, decide

log = logging.getLogger("fnmesh.git")
HOOK_PATH = "/-/pre-receive"
REALM = 'Basic realm="fnmesh", charset="UTF-8"'
MAX_HOOK_BODY = 1024 * 1024


def route_path(scope: Scope) -> str:
    """The path below the mount point."""
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    if root and path.startswith(root) and path[len(root) : len(root) + 1] in ("", "/"):
        return path[len(root) :]
    return path


def basic_password(header: str) -> str | None:
    """The password of an HTTP basic ``Authorization`` header, or None."""
    scheme, _, encoded = header.strip().partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    _, colon, password = decoded.partition(":")
    return password if colon and password else None


def headers_of(scope: Scope) -> dict[str, str]:
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}


class GitApp:
    """ASGI app: git's smart HTTP for the platform's repositories."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        service = service_for(scope["app"])
        path = route_path(scope)
        method = scope["method"]
        if path == HOOK_PATH:
            if method != "POST":
                await plain(send, 405, "the hook endpoint takes POST")
                return
            await self.hook(service, scope, receive, send)
            return
        try:
            request = parse_request_path(path)
        except PathError as error:
            await plain(send, 404, str(error))
            return
        headers = headers_of(scope)
        grant = self.authenticate(service, headers)
        if not isinstance(grant, Grant):
            await plain(
                send,
                401,
                f"authentication required: {grant}; use an API token as the password "
                "(`fn git-remote NAME` sets up git's credential helper)",
                [(b"www-authenticate", REALM.encode())],
            )
            return
        user = grant.id
        wanted = (method, request.endpoint)
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        pushing = wanted == ("POST", "git-receive-pack") or (
            wanted == ("GET", "info/refs") and query.get("service") == ["git-receive-pack"]
        )
        denial = decide(grant, "source", "write" if pushing else "read", request.repo.namespace)
        if denial is not None:
            await plain(send, 403, denial.message)
            return
        if wanted == ("GET", "info/refs"):
            service_name = query.get("service", [""])[0]
            if service_name not in SERVICES:
                await plain(
                    send,
                    403,
                    "only git's smart HTTP protocol is served: use git 1.6.6 or newer",
                )
                return
            await self.serve(service, scope, receive, send, request, user, service_name)
        elif wanted == ("POST", "git-upload-pack"):
            await self.serve(service, scope, receive, send, request, user, "git-upload-pack")
        elif wanted == ("POST", "git-receive-pack"):
            await self.push(service, scope, receive, send, request, user)
        else:
            await plain(send, 405, f"{method} is not allowed on {request.endpoint}")

    def authenticate(self, service: GitService, headers: dict[str, str]) -> Grant | str:
        """The token's grant, or why there is none."""
        password = basic_password(headers.get("authorization", ""))
        if password is None:
            return "no token was sent"
        return service.tokens.authenticate(password)

    async def serve(
        self,
        service: GitService,
        scope: Scope,
        receive: Receive,
        send: Send,
        request: GitRequestPath,
        user: str,
        service_name: str,
    ) -> None:
        """A ref advertisement or a fetch: git http-backend, no lock, no limit."""
        if service_name == "git-receive-pack":
            await service.repos.ensure(request.repo)  # a first push creates the repository
        elif not service.repos.exists(request.repo):
            await plain(
                send,
                404,
                f"function {request.repo.describe()} has no repository yet: push to it first",
            )
            return
        env = cgi_env(service, scope, request, user)
        await run_cgi([service.settings.git, "http-backend"], env, receive, send)

    async def push(
        self,
        service: GitService,
        scope: Scope,
        receive: Receive,
        send: Send,
        request: GitRequestPath,
        user: str,
    ) -> None:
        """receive-pack under the function's lock, with the hook's way back in."""
        path = await service.repos.ensure(request.repo)
        limit = service.settings.max_push_bytes
        declared = headers_of(scope).get("content-length", "")
        async with service.turn(request.repo.key):
            secret = service.open_push(Push(request.repo, path, user))
            try:
                env = cgi_env(service, scope, request, user)
                env[pre_receive.URL_ENV] = hook_url(scope)
                env[pre_receive.SECRET_ENV] = secret
                await run_cgi(
                    [service.settings.git, "http-backend"],
                    env,
                    receive,
                    send,
                    limit=BodyLimit(limit, _too_large(limit)),
                    declared=int(declared) if declared.isdigit() else None,
                )
            finally:
                service.close_push(secret)

    async def hook(self, service: GitService, scope: Scope, receive: Receive, send: Send) -> None:
        """The pre-receive hook asks: stream the gate's lines, then its answer, as NDJSON."""
        secret = headers_of(scope).get(pre_receive.SECRET_HEADER.lower(), "")
        push = service.take_push(secret) if secret else None
        if push is None:
            await plain(send, 403, "no push in flight has this secret")
            return
        try:
            body = json.loads(await read_body(receive, MAX_HOOK_BODY))
            updates = [RefUpdate(u["old"], u["new"], u["ref"]) for u in body["updates"]]
            quarantine = check_quarantine(push.path, body.get("quarantine"))
        except (ValueError, KeyError, TypeError) as error:
            await plain(send, 400, f"the hook's request is not understood: {error}")
            return
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/x-ndjson")],
            }
        )
        async for item in decide_lines(service, push, updates, quarantine):
            await send(
                {
                    "type": "http.response.body",
                    "body": json.dumps(item).encode() + b"\n",
                    "more_body": True,
                }
            )
        await send({"type": "http.response.body", "body": b"", "more_body": False})


_END = object()


async def decide_lines(
    service: GitService, push: Push, updates: list[RefUpdate], quarantine: Path | None
) -> AsyncIterator[dict[str, Any]]:
    """The gate's lines as they come, then ``{"ok": ...}``; the gate finishes even when
    nobody listens any more (the function stays consistent)."""
    lines: asyncio.Queue[object] = asyncio.Queue()

    async def say(line: str) -> None:
        await lines.put({"line": line})

    async def run() -> None:
        try:
            ok = await service.gate.decide(push, updates, quarantine, say)
            await lines.put({"ok": ok})
        finally:
            await lines.put(_END)

    task = asyncio.create_task(run())
    try:
        while (item := await lines.get()) is not _END:
            assert isinstance(item, dict)
            yield item
    finally:
        if not task.done():
            with contextlib.suppress(Exception):
                await asyncio.shield(task)


def _too_large(limit: int) -> Callable[[bytes, int], Refusal]:
    def refuse(head: bytes, seen: int) -> Refusal:
        push = parse_push_head(head)
        body = refuse_push(
            push,
            f"push over the size limit of {limit} bytes",
            [
                f"error: this push is over {limit} bytes (build.max_bundle_bytes), so it was "
                "refused before anything was stored or built;",
                "error: keep large files out of the repository, or raise "
                "build.max_bundle_bytes in the platform's config.yaml",
            ],
        )
        return Refusal("application/x-git-receive-pack-result", body)

    return refuse


def hook_url(scope: Scope) -> str:
    """How the hook reaches this app: the address the push came in on."""
    server = scope.get("server")
    if not server:
        raise RuntimeError("the git receiver needs a TCP listener (no server address in scope)")
    host, port = server
    host = f"[{host}]" if ":" in host else host
    return f"{scope.get('scheme', 'http')}://{host}:{port}{scope.get('root_path', '')}{HOOK_PATH}"


def cgi_env(
    service: GitService, scope: Scope, request: GitRequestPath, user: str
) -> dict[str, str]:
    headers = headers_of(scope)
    client = scope.get("client") or ("", 0)
    env = clean_env(
        {
            "GIT_PROJECT_ROOT": str(service.settings.root),
            "GIT_HTTP_EXPORT_ALL": "1",
            "GATEWAY_INTERFACE": "CGI/1.1",
            "SERVER_PROTOCOL": f"HTTP/{scope.get('http_version', '1.1')}",
            "REQUEST_METHOD": scope["method"],
            "PATH_INFO": request.repo.path_info(request.endpoint),
            "QUERY_STRING": scope.get("query_string", b"").decode("latin-1"),
            "REMOTE_USER": user,
            "REMOTE_ADDR": str(client[0]),
        }
    )
    for header, variable in (
        ("content-type", "CONTENT_TYPE"),
        ("content-length", "CONTENT_LENGTH"),
        ("content-encoding", "HTTP_CONTENT_ENCODING"),
        ("git-protocol", "GIT_PROTOCOL"),
    ):
        if header in headers:
            env[variable] = headers[header]
    return env


async def read_body(receive: Receive, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ValueError("the hook went away")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise ValueError(f"the hook's request is over {limit} bytes")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


async def plain(
    send: Send, status: int, text: str, headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    """A text answer; git shows a text/plain error body to the user as ``remote:`` lines."""
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"text/plain; charset=utf-8"), *(headers or [])],
        }
    )
    await send({"type": "http.response.body", "body": text.encode() + b"\n"})
