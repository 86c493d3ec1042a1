"""The platform's home folder: private to its user, held by one platform at a time."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import IO

LOCK_FILE = "platform.lock"


class HomeLocked(OSError):
    """Another platform holds the home."""


def hold_home(home: Path) -> IO[str]:
    """Make ``home`` (mode 0700) and hold its lock until the returned file is closed.

    The lock file names the holder's pid, so a second start can say who holds it.
    """
    home.mkdir(parents=True, exist_ok=True, mode=0o700)
    home.chmod(0o700)  # an older or hand-made home may be open to other users
    handle = (home / LOCK_FILE).open("a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "another process"
        handle.close()
        raise HomeLocked(
            f"a platform is already running in {home} (pid {holder}): stop it, or "
            "use another --home"
        ) from None
    handle.seek(0)
    handle.truncate()
    handle.write(str(os.getpid()))
    handle.flush()
    return handle
