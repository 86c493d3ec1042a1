"""A real git client on a throw-away HOME, and function folders to commit with it."""

from __future__ import annotations

import asyncio
import os
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

HELLO_YAML = "name: hello\nhandler: main:handle\n"
HELLO_MAIN = "def handle(req):\n    return 'hello from git'\n"


def git_env(home: Path) -> dict[str, str]:
    """git with no system or user configuration of this machine, and no prompts."""
    home.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(
        HOME=str(home),
        XDG_CONFIG_HOME=str(home / ".config"),
        GIT_CONFIG_NOSYSTEM="1",
        GIT_TERMINAL_PROMPT="0",
        GIT_AUTHOR_NAME="Dev",
        GIT_AUTHOR_EMAIL="dev@example.com",
        GIT_COMMITTER_NAME="Dev",
        GIT_COMMITTER_EMAIL="dev@example.com",
        LC_ALL="C",
    )
    return env


@dataclass
class Done:
    code: int
    out: str
    err: str

    @property
    def text(self) -> str:
        return self.out + self.err


class WorkTree:
    """A git work tree the tests commit to and push from."""

    def __init__(self, path: Path, env: dict[str, str]) -> None:
        self.path = path
        self.env = env
        path.mkdir(parents=True, exist_ok=True)
        self.run("init", "--quiet", "--initial-branch=main")

    def run(self, *args: str, check: bool = True) -> Done:
        done = subprocess.run(
            ["git", *args],
            cwd=self.path,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        result = Done(done.returncode, done.stdout, done.stderr)
        if check and done.returncode != 0:
            raise AssertionError(f"git {' '.join(args)} exited {done.returncode}:\n{result.text}")
        return result

    async def arun(self, *args: str, on_line: Callable[[str], None] | None = None) -> Done:
        """Run git without blocking the event loop (the platform may share it)."""
        process = await asyncio.create_subprocess_exec(
            "git",
            *args,
            cwd=self.path,
            env=self.env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        assert process.stdout is not None and process.stderr is not None
        err: list[str] = []

        async def read_err() -> None:
            assert process.stderr is not None
            buffer = b""
            while chunk := await process.stderr.read(1024):
                buffer += chunk
                # git rewrites progress lines with \r; both end a line here
                *lines, buffer = buffer.replace(b"\r", b"\n").split(b"\n")
                for line in lines:
                    text = line.decode("utf-8", "replace")
                    err.append(text + "\n")
                    if on_line is not None:
                        on_line(text)
            if buffer:
                err.append(buffer.decode("utf-8", "replace"))

        out, _ = await asyncio.wait_for(
            asyncio.gather(process.stdout.read(), read_err()), timeout=120
        )
        code = await process.wait()
        return Done(code, out.decode("utf-8", "replace"), "".join(err))

    def write(self, files: dict[str, str]) -> None:
        for name, text in files.items():
            target = self.path / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)

    def commit(self, files: dict[str, str], message: str = "change") -> str:
        self.write(files)
        self.run("add", "--all")
        self.run("commit", "--quiet", "--allow-empty", "-m", message)
        return self.head()

    def head(self, ref: str = "HEAD") -> str:
        return self.run("rev-parse", ref).out.strip()


def remote_head(repo: Path, ref: str = "refs/heads/main") -> str | None:
    done = subprocess.run(
        ["git", f"--git-dir={repo}", "rev-parse", "--verify", "--quiet", ref],
        capture_output=True,
        text=True,
    )
    return done.stdout.strip() or None


async def wait_until(what: str, check: Callable[[], object], within: float = 30.0) -> None:
    deadline = time.monotonic() + within
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within}s waiting for {what}")
        await asyncio.sleep(0.01)


@dataclass
class TimedLine:
    at: float  # time.monotonic() when the line arrived
    text: str


def timed_run(args: list[str], cwd: Path, env: dict[str, str]) -> tuple[int, list[TimedLine]]:
    """Run a command; stamp every line of its stderr with the time it arrived."""
    lines: list[TimedLine] = []
    buffer = b""
    with subprocess.Popen(
        args, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    ) as process:
        assert process.stderr is not None
        while chunk := process.stderr.read1(4096):
            buffer += chunk
            *complete, buffer = buffer.replace(b"\r", b"\n").split(b"\n")
            now = time.monotonic()
            lines += [TimedLine(now, line.decode("utf-8", "replace")) for line in complete]
        if buffer:
            lines.append(TimedLine(time.monotonic(), buffer.decode("utf-8", "replace")))
        return process.wait(timeout=120), lines
