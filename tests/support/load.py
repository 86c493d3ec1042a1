"""Constant load on a URL from a few threads, each on one keep-alive connection.

Counts every answer by its body (functions under test answer with their version) and
every failure: a status other than 200, or a request that broke off.
"""

from __future__ import annotations

import collections
import http.client
import threading
import time
from urllib.parse import urlsplit


class Load:
    def __init__(self, url: str, *, threads: int = 4, host: str | None = None) -> None:
        parts = urlsplit(url)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 80
        self.target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self.headers = {"Host": host} if host else {}
        self.count = threads
        self.answers: collections.Counter[str] = collections.Counter()
        self.failures: list[str] = []
        self.failed_at: list[float] = []  # time.monotonic() at each failure's start
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.threads: list[threading.Thread] = []
        self.limit: int | None = None
        self._inflight = 0

    @property
    def requests(self) -> int:
        with self.lock:
            return sum(self.answers.values()) + len(self.failures)

    def start(self, limit: int | None = None) -> Load:
        """Send until ``stop`` (or until ``limit`` requests have been sent in all)."""
        self.limit = limit
        self.threads = [
            threading.Thread(target=self._run, name=f"load-{i}", daemon=True)
            for i in range(self.count)
        ]
        for thread in self.threads:
            thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        for thread in self.threads:
            thread.join(30)

    def wait(self, timeout: float) -> None:
        """Until ``limit`` requests were sent (or ``timeout`` passes)."""
        deadline = time.monotonic() + timeout
        for thread in self.threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    def _run(self) -> None:
        connection = http.client.HTTPConnection(self.host, self.port, timeout=30)
        try:
            while not self.stopping.is_set():
                with self.lock:
                    sent = sum(self.answers.values()) + len(self.failures) + self._inflight
                    if self.limit is not None and sent >= self.limit:
                        return
                    self._inflight += 1
                began = time.monotonic()
                outcome, failure = self._one(connection)
                with self.lock:
                    self._inflight -= 1
                    if failure is None:
                        self.answers[outcome] += 1
                    else:
                        self.failures.append(failure)
                        self.failed_at.append(began)
                if failure is not None:
                    connection.close()
                    connection = http.client.HTTPConnection(self.host, self.port, timeout=30)
        finally:
            connection.close()

    def _one(self, connection: http.client.HTTPConnection) -> tuple[str, str | None]:
        try:
            connection.request("GET", self.target, headers=self.headers)
            response = connection.getresponse()
            body = response.read().decode("utf-8", "replace").strip()
        except (OSError, http.client.HTTPException) as error:
            return "", f"{type(error).__name__}: {error}"
        if response.status != 200:
            return "", f"{response.status}: {body[:200]}"
        return body, None
