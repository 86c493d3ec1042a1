#!/usr/bin/env python3
"""The pre-receive hook of the platform's repositories: the platform builds the push.

git runs it with the pushed ref updates on stdin (``<old> <new> <ref>`` per line). It
sends them to the platform that runs receive-pack (the URL and a one-push secret come in
the environment), prints every line of the answer as it arrives (git shows them to the
pusher as ``remote:`` lines) and exits non-zero -- which refuses the whole push -- unless
the platform accepts it. Standard library only, so it starts in a few milliseconds; it is
copied into each repository as ``hooks/pre-receive``.
"""

from __future__ import annotations

import json
import os
import sys
import urllib.error
import urllib.request
from collections.abc import Iterable

URL_ENV = "FNMESH_GIT_HOOK_URL"
SECRET_ENV = "FNMESH_GIT_PUSH_SECRET"
SECRET_HEADER = "Fnmesh-Push-Secret"
QUARANTINE_ENV = "GIT_QUARANTINE_PATH"


def say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def read_updates(lines: Iterable[str]) -> list[dict[str, str]]:
    updates = []
    for line in lines:
        parts = line.split()
        if len(parts) == 3:
            updates.append({"old": parts[0], "new": parts[1], "ref": parts[2]})
    return updates


def relay(answer: Iterable[bytes]) -> bool:
    """Print the platform's lines as they come; True when it accepted the push."""
    for raw in answer:
        try:
            item = json.loads(raw)
        except ValueError:
            continue
        if not isinstance(item, dict):
            continue
        if isinstance(item.get("line"), str):
            say(item["line"])
        if "ok" in item:
            return item["ok"] is True
    say("error: the platform stopped answering before it decided about the push; push again")
    return False


def main() -> int:
    url = os.environ.get(URL_ENV)
    secret = os.environ.get(SECRET_ENV)
    if not url or not secret:
        say(
            "error: this repository takes pushes through the platform's API only: "
            "push to the remote that `fn git-remote NAME` adds"
        )
        return 1
    body = json.dumps(
        {"updates": read_updates(sys.stdin), "quarantine": os.environ.get(QUARANTINE_ENV)}
    ).encode()
    request = urllib.request.Request(
        url,
        data=body,
        method="POST",
        headers={"Content-Type": "application/json", SECRET_HEADER: secret},
    )
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(request) as answer:
            return 0 if relay(answer) else 1
    except urllib.error.HTTPError as error:
        text = error.read().decode("utf-8", "replace").strip()
        say(f"error: the platform refused the push's hook call ({error.code}): {text}")
    except OSError as error:
        say(f"error: cannot reach the platform at {url}: {error}")
    return 1


if __name__ == "__main__":
    sys.exit(main())
