"""The warm pool: runtime processes started ahead of need, specialized on a cold start.

``take`` hands out a warm process (it has the runtime imported and waits on stdin for
the function to become), so a scale-from-zero costs the user's import and a bind instead
of an interpreter start. ``refill`` tops the pool up in the background, ``refill_delay``
seconds after the cold start that took a process is over. A new warm process costs the
platform a fork and the machine hundreds of milliseconds of imports; started at once, it
competes with the cold start it replaces and then with the first requests the new
replica serves (the activator releases them the moment it is ready). On two cores,
refilling at the take doubled the time from a request at zero to its response, and
refilling at ready still added a third.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from fnmesh.platform.runtime.local.process import Output, Process, base_env, spawn

log = logging.getLogger("fnmesh.runtime")
WARM_TIMEOUT = 30.0


RUNTIME_POOL = "fnmesh.functions.pool"
PROXY_POOL = "fnmesh.platform.mesh.proxy.pool"


class WarmPool:
    """Warm processes of one kind: ``module`` is the runtime's or the proxy's pool entry."""

    def __init__(
        self,
        size: int,
        module: str = RUNTIME_POOL,
        *,
        refill_delay: float = 0.5,
        prepare: Callable[[int], None] | None = None,
    ) -> None:
        self.size = size
        self.prepare = prepare  # called with a new warm process's pid (e.g. its cgroup)
        self.module = module
        self.refill_delay = refill_delay
        self._warm: list[Process] = []
        self._refill: asyncio.Task[None] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._closed = False
        self._wanted = asyncio.Event()

    def start(self) -> None:
        if self.size > 0:
            self._refill = asyncio.create_task(self._keep_full(), name="warm pool")
            self._wanted.set()

    def take(self) -> Process | None:
        """A warm process, or None when none is ready; call ``refill`` after the cold start."""
        while self._warm:
            process = self._warm.pop()
            if process.process.returncode is None:
                return process
        return None

    def refill(self) -> None:
        """Top the pool up in the background after ``refill_delay`` seconds (calls made
        meanwhile join that one; a no-op while the pool is full)."""
        if self._closed or len(self._warm) >= self.size or self._timer is not None:
            return
        self._timer = asyncio.get_running_loop().call_later(self.refill_delay, self._due)

    def _due(self) -> None:
        self._timer = None
        self._wanted.set()

    @property
    def warm(self) -> int:
        return len(self._warm)

    async def close(self) -> None:
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
        if self._refill is not None:
            self._refill.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._refill
        warm, self._warm = self._warm, []
        for process in warm:
            if process.process.stdin is not None:
                process.process.stdin.close()  # an unused warm process exits on EOF
        await asyncio.gather(*(self._reap(p) for p in warm))

    @staticmethod
    async def _reap(process: Process) -> None:
        try:
            await asyncio.wait_for(process.wait(), 5)
        except TimeoutError:
            await process.kill()

    async def _keep_full(self) -> None:
        while not self._closed:
            await self._wanted.wait()
            self._wanted.clear()
            while len(self._warm) < self.size and not self._closed:
                try:
                    process = await self._one()
                except Exception as error:
                    log.warning("warm pool: could not start a runtime: %s", error)
                    await asyncio.sleep(1.0)
                    continue
                if process is not None:
                    self._warm.append(process)

    async def _one(self) -> Process | None:
        output = Output(name="warm")
        process = await spawn(self.module, [], base_env(), stdin=True, output=output)
        line = await process.read_line(WARM_TIMEOUT)
        if line != "warm":
            await process.kill()
            log.warning("warm pool: a runtime did not start: %s", "\n".join(output.recent))
            return None
        if self.prepare is not None:
            try:
                self.prepare(process.pid)
            except Exception as error:  # the cold start makes the group instead
                log.warning("warm pool: could not prepare a runtime: %s", error)
        return process
