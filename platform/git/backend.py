"""One smart-HTTP request served by the real ``git http-backend``, run as a CGI program.

The request body streams into the program as it arrives and its answer streams out as it
is produced (a push's build lines reach the pusher while the build runs). With a body
limit, the answer is held back until the whole body is in: a body over the limit stops
the program (receive-pack then drops the half-received objects), the rest of the body is
read and thrown away, and ``refuse(head)`` answers instead, from the first bytes of the
body (a push's commands).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from starlette.types import Receive, Send

log = logging.getLogger("fnmesh.git")

HEAD_BYTES = 256 * 1024  # kept for refuse(): a push's commands come first
DRAIN_FACTOR = 16  # read at most this many times the limit of a refused body
READ_SIZE = 64 * 1024
HELD_CHUNKS = 64  # output read ahead of the client; then git waits (backpressure)
STOP_TIMEOUT = 10.0


@dataclass(frozen=True, slots=True)
class Refusal:
    content_type: str
    body: bytes


@dataclass(frozen=True, slots=True)
class BodyLimit:
    max_bytes: int
    refuse: Callable[[bytes, int], Refusal]  # (head of the body, bytes seen) -> answer


@dataclass
class _Fed:
    head: bytearray
    seen: int = 0
    over: bool = False
    gone: bool = False  # the client disconnected


async def run_cgi(
    argv: Sequence[str],
    env: Mapping[str, str],
    receive: Receive,
    send: Send,
    *,
    limit: BodyLimit | None = None,
    declared: int | None = None,
) -> None:
    """Serve one request with the CGI program ``argv`` (``git http-backend``)."""
    if limit is not None and declared is not None and declared > limit.max_bytes:
        fed = _Fed(bytearray())
        await _feed(None, receive, fed, limit)
        await _answer_refusal(send, fed, limit)
        return
    process = await asyncio.create_subprocess_exec(
        *argv,
        env=dict(env),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None and process.stderr is not None
    output: asyncio.Queue[bytes] = asyncio.Queue(HELD_CHUNKS)
    pumps = [
        asyncio.create_task(_pump(process.stdout, output)),
        asyncio.create_task(_log_errors(process.stderr, argv[-1])),
    ]
    fed = _Fed(bytearray())
    feeding = asyncio.create_task(_feed(process, receive, fed, limit))
    pumps.append(feeding)
    try:
        if limit is None:
            # nothing to hold back: answer while the body is still coming in (fetches)
            await _answer(send, output)
            await feeding
        else:
            await feeding
            if fed.over or fed.gone:
                pumps.append(asyncio.create_task(_discard(output)))
                await _stop(process)
                if fed.over:
                    await _answer_refusal(send, fed, limit)
            else:
                await _answer(send, output)
    finally:
        await _stop(process)
        for task in pumps:
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await asyncio.gather(*pumps, return_exceptions=True)


async def _feed(
    process: asyncio.subprocess.Process | None, receive: Receive, fed: _Fed, limit: BodyLimit | None
) -> None:
    """Copy the request body into the program; count it, keep its head, stop at the limit."""
    stdin = process.stdin if process is not None else None
    cap = limit.max_bytes * DRAIN_FACTOR if limit is not None else None
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            fed.gone = True
            break
        chunk: bytes = message.get("body", b"")
        fed.seen += len(chunk)
        if len(fed.head) < HEAD_BYTES:
            fed.head += chunk[: HEAD_BYTES - len(fed.head)]
        if limit is not None and fed.seen > limit.max_bytes:
            fed.over = True
            if stdin is not None and not stdin.is_closing():
                stdin.close()
            if cap is not None and fed.seen > cap:
                break
        elif stdin is not None and chunk and not stdin.is_closing():
            try:
                stdin.write(chunk)
                await stdin.drain()
            except (BrokenPipeError, ConnectionResetError):
                stdin.close()  # the program stopped reading; it answers on its own
        if not message.get("more_body", False):
            break
    if stdin is not None and not stdin.is_closing():
        stdin.close()


async def _pump(stream: asyncio.StreamReader, into: asyncio.Queue[bytes]) -> None:
    while chunk := await stream.read(READ_SIZE):
        await into.put(chunk)
    await into.put(b"")


async def _discard(output: asyncio.Queue[bytes]) -> None:
    while await output.get():
        pass


async def _log_errors(stream: asyncio.StreamReader, program: str) -> None:
    while line := await stream.readline():
        log.info("%s: %s", program, line.decode("utf-8", "replace").rstrip())


async def _answer(send: Send, output: asyncio.Queue[bytes]) -> None:
    """Parse the CGI headers, then stream the rest of the program's output as the body."""
    buffer = b""
    ended = False
    while b"\r\n\r\n" not in buffer and b"\n\n" not in buffer:
        chunk = await output.get()
        if not chunk:
            ended = True
            break
        buffer += chunk
    if ended and b"\n\n" not in buffer and b"\r\n\r\n" not in buffer:
        await _plain(send, 500, "git http-backend ended without an answer; see the platform log")
        return
    status, headers, rest = parse_cgi_head(buffer)
    await send({"type": "http.response.start", "status": status, "headers": headers})
    if rest:
        await send({"type": "http.response.body", "body": rest, "more_body": True})
    while chunk := await output.get():
        await send({"type": "http.response.body", "body": chunk, "more_body": True})
    await send({"type": "http.response.body", "body": b"", "more_body": False})


def parse_cgi_head(data: bytes) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    """Status, headers and the start of the body of a CGI program's output."""
    crlf, lf = data.find(b"\r\n\r\n"), data.find(b"\n\n")
    if crlf != -1 and (lf == -1 or crlf < lf):
        head, rest = data[:crlf], data[crlf + 4 :]
    else:
        head, rest = data[:lf], data[lf + 2 :]
    status = 200
    headers: list[tuple[bytes, bytes]] = []
    for line in head.splitlines():
        name, _, value = line.partition(b":")
        name, value = name.strip().lower(), value.strip()
        if name == b"status":
            status = int(value.split()[0])
        elif name:
            headers.append((name, value))
    return status, headers, rest


async def _answer_refusal(send: Send, fed: _Fed, limit: BodyLimit) -> None:
    refusal = limit.refuse(bytes(fed.head), fed.seen)
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [
                (b"content-type", refusal.content_type.encode()),
                (b"cache-control", b"no-cache"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": refusal.body, "more_body": False})


async def _plain(send: Send, status: int, text: str) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"text/plain; charset=utf-8")],
        }
    )
    await send({"type": "http.response.body", "body": text.encode() + b"\n"})


async def _stop(process: asyncio.subprocess.Process) -> None:
    """End the program: closed input first (git cleans up), a signal if it lingers."""
    if process.returncode is not None:
        return
    if process.stdin is not None and not process.stdin.is_closing():
        process.stdin.close()
    try:
        await asyncio.wait_for(process.wait(), STOP_TIMEOUT)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            process.terminate()
        try:
            await asyncio.wait_for(process.wait(), STOP_TIMEOUT)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()
