"""``fn logs`` on a cluster: a function's replica output, read from its pods' logs.

The replicas are the pods labelled ``fnmesh.dev/function=<name>``; their runtime container
(``function``) writes what the handler prints. Lines come back in the API's shape,
``<time> <pod> stdout: <message>`` (the cluster keeps one stream per container, so every
line is called stdout), oldest first. ``follow`` streams the pods that exist when it
starts; replicas started later show up in the next ``fn logs``.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator
from typing import Any

from fnmesh.platform.model.resources import LABEL_FUNCTION
from fnmesh.platform.runtime.kubernetes.builders import RUNTIME_CONTAINER
from fnmesh.platform.store.errors import StoreError
from fnmesh.platform.store.kubernetes import KubeClient

FOLLOW_TIMEOUT = 3600


def log_line(raw: str, pod: str) -> str:
    """A line of ``kubectl logs --timestamps`` in the API's shape (milliseconds, UTC)."""
    stamp, _, message = raw.partition(" ")
    if stamp.endswith("Z") and "." in stamp:
        whole, _, fraction = stamp[:-1].partition(".")
        stamp = f"{whole}.{fraction[:3].ljust(3, '0')}Z"
    elif stamp.endswith("Z"):
        stamp = f"{stamp[:-1]}.000Z"
    return f"{stamp} {pod} stdout: {message}"


class PodLogs:
    """The API's ``Logs`` through the pods/log API (the API may get and list pods)."""

    def __init__(self, client: KubeClient, *, container: str = RUNTIME_CONTAINER) -> None:
        self.client = client
        self.container = container

    def _pods(self, namespace: str, function: str) -> list[str]:
        listed = self.client.request(
            "GET",
            f"/api/v1/namespaces/{namespace}/pods",
            query={"labelSelector": f"{LABEL_FUNCTION}={function}"},
        )
        return sorted(str(p["metadata"]["name"]) for p in listed.get("items") or [])

    def _open(self, namespace: str, pod: str, query: dict[str, str], read_timeout: float) -> Any:
        path = f"/api/v1/namespaces/{namespace}/pods/{pod}/log"
        base = {"container": self.container, "timestamps": "true"}
        return self.client.open_stream(path, {**base, **query}, read_timeout)

    def tail(self, namespace: str, function: str, lines: int) -> list[str]:
        found: list[str] = []
        for pod in self._pods(namespace, function):
            try:
                response = self._open(namespace, pod, {"tailLines": str(lines)}, 30.0)
            except StoreError:  # not started yet, or gone since the list
                continue
            try:
                text = response.read().decode("utf-8", "replace")
            finally:
                response.release_conn()
            found += [log_line(raw, pod) for raw in text.splitlines() if raw]
        found.sort()
        return found[-lines:] if lines else []

    async def follow(self, namespace: str, function: str, lines: int) -> AsyncIterator[str]:
        for line in await asyncio.to_thread(self.tail, namespace, function, lines):
            yield line
        pods = await asyncio.to_thread(self._pods, namespace, function)
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[str] = asyncio.Queue()
        streams: list[Any] = []
        stopped = threading.Event()

        def pump(pod: str) -> None:
            try:
                query = {"follow": "true", "tailLines": "0"}
                response = self._open(namespace, pod, query, FOLLOW_TIMEOUT)
            except StoreError:
                return
            streams.append(response)
            pending = b""
            with contextlib.suppress(Exception):  # the stream ends or is shut down
                for chunk in response.stream(4096, decode_content=True):
                    pending += chunk
                    while b"\n" in pending and not stopped.is_set():
                        raw, pending = pending.split(b"\n", 1)
                        line = log_line(raw.decode("utf-8", "replace"), pod)
                        loop.call_soon_threadsafe(queue.put_nowait, line)

        for pod in pods:
            threading.Thread(target=pump, args=(pod,), name=f"logs {pod}", daemon=True).start()
        try:
            while True:
                yield await queue.get()
        finally:
            stopped.set()
            for response in streams:
                with contextlib.suppress(Exception):
                    response.shutdown()
