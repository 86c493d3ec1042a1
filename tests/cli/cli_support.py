"""Shared pieces of the CLI tests: the context file, a watchable stdout."""

import io
import json
import threading
import time
from collections.abc import Callable
from pathlib import Path

from cli_fake_api import TOKEN

Fn = Callable[..., int]


def write_context(home: Path, api: str, gateway: str, token: str = TOKEN) -> Path:
    home.mkdir(parents=True, exist_ok=True)
    path = home / "context.json"
    context = {"api": api, "gateway": gateway, "token": token, "domain": "fn.localhost"}
    path.write_text(json.dumps(context))
    path.chmod(0o600)
    return path


class Watched(io.StringIO):
    """stdout that lets another thread wait until some text has been printed."""

    def __init__(self) -> None:
        super().__init__()
        self.changed = threading.Condition()

    def write(self, text: str) -> int:
        with self.changed:
            count = super().write(text)
            self.changed.notify_all()
        return count

    def wait_for(self, text: str, timeout: float = 10.0) -> bool:
        deadline = time.monotonic() + timeout
        with self.changed:
            while text not in self.getvalue():
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.changed.wait(left)
        return True
