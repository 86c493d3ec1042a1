"""A hostile function: it tries every attack it is given and reports which succeeded.

Deployed by tests/security/test_hostile.py. Each attack returns None when it was
blocked and a description of what it got when it succeeded.
"""

import contextlib
import glob
import json
import os
import socket
import subprocess
import sys


def _read(path):
    with open(path, "rb") as source:
        return source.read(200)


def read_files(paths):
    got = []
    for pattern in paths:
        for path in glob.glob(pattern, recursive=True) or [pattern]:
            with contextlib.suppress(OSError):
                got.append(f"{path}: {_read(path)[:40]!r}")
    return got or None


def list_folders(paths):
    got = []
    for path in paths:
        with contextlib.suppress(OSError):
            got.append(f"{path}: {os.listdir(path)[:5]}")
    return got or None


def write_files(paths):
    got = []
    for pattern in paths:
        for path in glob.glob(pattern) or [pattern]:
            try:
                with open(path, "a") as out:
                    out.write("\nPWNED = True\n")
                got.append(path)
            except OSError:
                pass
    return got or None


def environ_of_others():
    got = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) in (os.getpid(), os.getppid()):
            continue
        try:
            data = _read(f"/proc/{pid}/environ")
        except OSError:
            continue
        if data:
            got.append(f"{pid}: {data[:40]!r}")
    return got or None


def signal_others(limit):
    mine = {os.getpid(), os.getppid()} | {int(t) for t in os.listdir("/proc/self/task")}
    got = []
    for pid in range(1, limit):
        if pid in mine:
            continue
        try:
            os.kill(pid, 0)
        except OSError:
            continue
        got.append(pid)
    return got or None


def connect_ports(ports):
    got = []
    for host, port in ports:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                got.append(f"{host}:{port}")
        except OSError:
            pass
    return got or None


def egress_of_others(patterns):
    got = []
    for pattern in patterns:
        for path in glob.glob(pattern):
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(2)
            try:
                sock.connect(path)
                sock.sendall(b"GET /secret HTTP/1.1\r\nHost: vault\r\nConnection: close\r\n\r\n")
                answer = sock.recv(200)
                got.append(f"{path}: {answer[:40]!r}")
            except OSError:
                pass
            finally:
                sock.close()
    return got or None


def outlive():
    """Leave a process behind that tries to survive the replica."""
    marker = os.environ.get("OUTLIVE_MARKER", "fnmesh-outlive")
    subprocess.Popen(
        [sys.executable, "-c", f"import time, sys; sys.argv.append({marker!r}); time.sleep(600)"],
        start_new_session=True,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return "started"


def handle(req):
    plan = req.json() if req.body else {}
    if req.path.endswith("/outlive"):
        return {"outlive": outlive()}
    if req.path.endswith("/call"):
        return call_permitted()
    if req.path.endswith("/secret"):
        with open("/var/run/secrets/fnmesh/evil-creds/token") as source:
            return {"token": source.read(), "mode": oct(os.stat(source.name).st_mode & 0o777)}
    if req.path.endswith("/whoami"):
        return {"uid": os.getuid(), "gid": os.getgid(), "groups": os.getgroups()}
    home = plan.get("home", os.path.expanduser("~/.fnmesh"))
    report = {
        "uid": os.getuid(),
        "read platform secrets": read_files(
            [
                f"{home}/identity/*",
                f"{home}/context.json",
                f"{home}/state.db",
                f"{home}/keys/*",
                f"{home}/sandbox/*",
                "/root/.fnmesh/*",
            ]
        ),
        "list the platform home": list_folders([home, f"{home}/build", f"{home}/identity"]),
        "read other functions' code": read_files([f"{home}/build/artifacts/*/*.py"]),
        "read other functions' secrets": read_files(
            ["/var/run/secrets/fnmesh/vault-creds/*", f"{home}/keys/*", f"{home}/*.key"]
        ),
        "tamper with artifacts": write_files(
            [f"{home}/build/artifacts/*/main.py", "/srv/fn/code/main.py"]
        ),
        "tamper with policy": write_files([f"{home}/run/policy/*/*.json"]),
        "write outside scratch": write_files(
            ["/pwned", "/etc/pwned", "/srv/fn/code/pwned", "/run/fnmesh/pwned", "/usr/pwned"]
        ),
        "read other processes' environment": environ_of_others(),
        "signal other processes": signal_others(int(plan.get("pidLimit", 4096))),
        "connect to local ports": connect_ports([tuple(p) for p in plan.get("ports", [])]),
        "use another function's egress": egress_of_others(plan.get("egress", [])),
    }
    scratch = "/tmp/scratch-works"
    with open(scratch, "w") as out:
        out.write("ok")
    report["scratch"] = _read(scratch).decode()
    report["environment"] = sorted(os.environ)
    return json.loads(json.dumps(report))


def call_permitted():
    from fnmesh.functions import call

    reply = call("helper", "/")
    return {"status": reply.status, "body": reply.text}
