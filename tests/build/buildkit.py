"""Tar construction, log sinks and a scripted stand-in for pip, shared by the builder tests."""

from __future__ import annotations

import asyncio
import io
import sys
import tarfile
import textwrap
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from fnmesh.platform.build.sandbox import SandboxSettings

# The scripted pip lives in the test's private folder, which no build user can reach.
UNSANDBOXED = SandboxSettings(run_as=None)


@dataclass
class Entry:
    name: str
    data: bytes = b""
    type: bytes = tarfile.REGTYPE
    mode: int = 0o644
    linkname: str = ""
    mtime: int = 0
    uid: int = 0
    pax: dict[str, str] = field(default_factory=dict)


def make_tar(entries: list[Entry], *, gz: bool = True) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w:gz" if gz else "w", format=tarfile.PAX_FORMAT) as tar:
        for entry in entries:
            info = tarfile.TarInfo(entry.name)
            info.type = entry.type
            info.mode = entry.mode
            info.linkname = entry.linkname
            info.mtime = entry.mtime
            info.uid = entry.uid
            info.pax_headers = dict(entry.pax)
            if entry.type == tarfile.REGTYPE:
                info.size = len(entry.data)
                tar.addfile(info, io.BytesIO(entry.data))
            else:
                tar.addfile(info)
    return raw.getvalue()


def function_tar(main: str = "def handle(req):\n    return 'hi'\n", **extra: str) -> bytes:
    """A small function bundle; ``extra`` maps file names (``requirements_txt``) to content."""
    entries = [
        Entry("fn.yaml", b"name: hello\nhandler: main:handle\n"),
        Entry("main.py", main.encode()),
    ]
    for name, text in extra.items():
        entries.append(Entry(name.replace("_txt", ".txt"), text.encode()))
    return make_tar(entries)


async def wait_until(condition: Callable[[], bool], within: float = 20.0) -> None:
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met before the deadline")
        await asyncio.sleep(0.01)


class Lines:
    """A log sink that keeps every line."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    async def __call__(self, line: str) -> None:
        self.lines.append(line)

    def has(self, text: str) -> bool:
        return any(text in line for line in self.lines)


_FAKE_PIP = """\
#!{python}
# Stands in for "python -m pip install ... --target T -r R" and behaves as R asks.
import os, pathlib, re, sys, time
args = sys.argv[1:]
if args[:1] == ["-c"]:
    os.execv({python!r}, [{python!r}, *args])
state = pathlib.Path({state!r})
target = pathlib.Path(args[args.index("--target") + 1])
wanted = [line.split("#")[0].strip() for line in open(args[args.index("-r") + 1])]
wanted = [line for line in wanted if line and not line.startswith("-")]
with open(state / "runs", "a") as runs:
    runs.write(" ".join(args) + "\\n")
for name in wanted:
    print("Collecting " + name, flush=True)
    if name == "fail":
        print("ERROR: No matching distribution found for fail", file=sys.stderr, flush=True)
        sys.exit(1)
    if name == "hang":
        (state / "pid").write_text(str(os.getpid()))
        time.sleep(120)
    if name == "wait-for-go":
        deadline = time.monotonic() + 30
        while not (state / "go").exists():
            if time.monotonic() > deadline:
                print("ERROR: go never came", flush=True)
                sys.exit(3)
            time.sleep(0.01)
target.mkdir(parents=True, exist_ok=True)
for name in wanted:
    (target / (re.sub(r"\\W+", "_", name) + ".py")).write_text("")
print("Successfully installed " + " ".join(wanted), flush=True)
"""


@dataclass
class FakePip:
    python: str
    state: Path

    @property
    def runs(self) -> int:
        path = self.state / "runs"
        return len(path.read_text().splitlines()) if path.exists() else 0

    def go(self) -> None:
        (self.state / "go").write_text("")


def make_fake_pip(folder: Path) -> FakePip:
    folder.mkdir()
    script = folder / "python"
    script.write_text(textwrap.dedent(_FAKE_PIP.format(python=sys.executable, state=str(folder))))
    script.chmod(0o755)
    return FakePip(str(script), folder)
