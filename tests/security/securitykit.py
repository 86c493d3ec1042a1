"""Bundles and a scripted pip that reports what it can see, for the hostile-build tests."""

from __future__ import annotations

import io
import os
import shutil
import tarfile
import tempfile
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

SYSTEM_PYTHON = "/usr/bin/python3"


def bundle(files: dict[str, str]) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w:gz") as tar:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
    return raw.getvalue()


def function(body: str, requirements: str | None = None) -> bytes:
    files = {"fn.yaml": "name: hello\nhandler: main:handle\n", "main.py": body}
    if requirements is not None:
        files["requirements.txt"] = requirements
    return bundle(files)


@contextmanager
def open_folder() -> Iterator[Path]:
    """A fresh folder under /tmp that any user may enter (0755), removed afterwards."""
    folder = Path(tempfile.mkdtemp(prefix="fnmesh-test-"))
    folder.chmod(0o755)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


# Stands in for "python -m pip install ... --target T -r requirements.txt": it prints what
# it sees, then behaves as the requirement names ask.
_SCRIPT = """\
#!{python}
import os, subprocess, sys, time
args = sys.argv[1:]
if args[:1] == ["-c"]:
    os.execv({python!r}, [{python!r}, *args])
target = args[args.index("--target") + 1]
wanted = [l.split("#")[0].strip() for l in open(args[args.index("-r") + 1])]
print("uid", os.getuid(), "gid", os.getgid(), "groups", sorted(os.getgroups()), flush=True)
print("cwd", os.getcwd(), flush=True)
print("env", " ".join(sorted(os.environ)), flush=True)
print("home", os.environ.get("HOME"), flush=True)
for probe in {probes!r}:
    try:
        os.listdir(probe)
        print("listed", probe, flush=True)
    except OSError as error:
        print("cannot list", probe, type(error).__name__, flush=True)
for poke in {pokes!r}:
    try:
        with open(poke, "a") as f:
            f.write("PWNED")
        print("wrote", poke, flush=True)
    except OSError as error:
        print("cannot write", poke, type(error).__name__, flush=True)
os.makedirs(target, exist_ok=True)
for name in wanted:
    if name == "hang":
        child = subprocess.Popen([{python!r}, "-c", "import time; time.sleep(120)"])
        print("child", child.pid, flush=True)
        time.sleep(120)
    if name == "chatty":
        for i in range(100000):
            print("x" * 60, i, flush=False)
    if name == "escape":
        os.symlink("/etc/passwd", os.path.join(target, "passwd"))
    if name == "fifo":
        os.mkfifo(os.path.join(target, "pipe"))
    if name:
        open(os.path.join(target, name + ".py"), "w").write("VERSION = 1\\n")
os.chmod(target, 0o777)
print("Successfully installed", " ".join(wanted), flush=True)
"""


def make_reporting_pip(folder: Path, *, probes: list[str], pokes: list[str]) -> str:
    script = folder / "python"
    script.write_text(
        textwrap.dedent(_SCRIPT.format(python=SYSTEM_PYTHON, probes=probes, pokes=pokes))
    )
    script.chmod(0o755)
    return str(script)


def require_root_and_system_python() -> None:
    if os.geteuid() != 0:
        raise AssertionError("these tests switch users: run them as root (CI does)")
    if not os.access(SYSTEM_PYTHON, os.X_OK):
        raise AssertionError(f"{SYSTEM_PYTHON} is needed to run pip as the build user")
