"""The request timeout: a request that takes longer in the proxy is answered 504.

The time counts from the moment the request passed authorization, so a wait in the
concurrency queue is part of it. One ``call_later`` handle per request cancels the
request's task when the time is up (cheaper than ``asyncio.wait_for``, which runs the
inner handler in a task of its own); the cancellation is told apart from any other by its
message, and ``Task.uncancel`` keeps another canceller's request intact.
"""

from __future__ import annotations

import asyncio

from fnmesh.platform.http import Handler, Peer, Request, Response, json_error

_EXPIRED = "fnmesh: request timeout"


class Timeout:
    def __init__(self, inner: Handler, seconds: float) -> None:
        if seconds <= 0:
            raise ValueError(f"the request timeout must be positive, not {seconds}")
        self.inner = inner
        self.seconds = seconds
        self._message = f"the function did not answer within {seconds:g}s"
        # looked up once: on Python 3.11 get_running_loop() costs a getpid() system call
        self._loop: asyncio.AbstractEventLoop | None = None

    async def __call__(self, request: Request, peer: Peer) -> Response:
        loop = self._loop
        if loop is None or not loop.is_running():
            loop = self._loop = asyncio.get_running_loop()
        task = asyncio.current_task(loop)
        assert task is not None
        handle = loop.call_later(self.seconds, task.cancel, _EXPIRED)
        try:
            return await self.inner(request, peer)
        except asyncio.CancelledError as error:
            if error.args and error.args[0] == _EXPIRED and task.uncancel() == 0:
                return json_error(504, self._message)
            raise
        finally:
            handle.cancel()
