"""The embedded platform end to end: real processes, sockets, files."""

from __future__ import annotations

import io
import json
import shutil
import socket
import tarfile
from pathlib import Path

from support.e2e import EXAMPLES, Platform, http, wait_for

NS = "/apis/fnmesh.dev/v1alpha1/namespaces/default"


def copy_example(name: str, dest: Path) -> Path:
    target = dest / name
    shutil.copytree(EXAMPLES / name, target)
    return target


def tar(files: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as bundle:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            bundle.addfile(info, io.BytesIO(data))
    return out.getvalue()


def revisions(platform: Platform, name: str) -> list[str]:
    reply = http("GET", f"{platform.api}{NS}/revisions?function={name}", headers=platform.auth)
    return [item["metadata"]["name"] for item in reply.json()["items"]]


def test_deploy_invoke_redeploy_and_restart(platform: Platform, tmp_path: Path) -> None:
    hello = copy_example("hello", tmp_path)
    done = platform.fn("deploy", str(hello), check=True)
    assert "/fn/hello/" in done.stdout

    reply = platform.invoke("/fn/hello/?name=fnmesh")
    assert reply.status == 200, reply
    first_output = reply.body
    assert b"fnmesh" in first_output

    main = hello / "main.py"
    main.write_text(main.read_text().replace("Hello", "Howdy"))
    platform.fn("deploy", str(hello), check=True)
    reply = platform.invoke("/fn/hello/?name=fnmesh")
    assert reply.status == 200
    assert b"Howdy" in reply.body and reply.body != first_output
    assert revisions(platform, "hello") == ["hello-00001", "hello-00002"]

    assert platform.stop() == 0
    platform.start()
    reply = wait_for(
        "hello to be served after a restart",
        lambda: (r := platform.invoke("/fn/hello/?name=again")).status == 200 and r,
    )
    assert b"Howdy" in reply.body
    assert revisions(platform, "hello") == ["hello-00001", "hello-00002"]


def test_functions_are_reached_by_host_name(platform: Platform) -> None:
    platform.fn("deploy", str(EXAMPLES / "echo"), check=True)
    body = json.dumps({"a": 1}).encode()
    reply = platform.invoke(
        "/things?x=1",
        "POST",
        body,
        {"Host": "echo.default.fn.localhost", "Content-Type": "application/json"},
    )
    assert reply.status == 200, reply
    data = reply.json()
    assert data["echo"] == {"a": 1}
    assert data["path"] == "/things"


def test_every_api_call_but_health_needs_the_token(platform: Platform) -> None:
    assert http("GET", platform.api + "/healthz").status == 200
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic eDp5"}):
        reply = http("GET", f"{platform.api}{NS}/functions", headers=headers)
        assert reply.status == 401
        assert reply.json()["reason"] == "Unauthorized"
    assert http("GET", f"{platform.api}{NS}/functions", headers=platform.auth).status == 200


def test_bad_uploads_are_refused_and_change_nothing(platform: Platform) -> None:
    url = f"{platform.api}{NS}/functions/bad/source"
    cases = {
        "invalid fn.yaml": (
            tar({"fn.yaml": b"name: bad\nhandler: nope\ntimeout: soon\n"}),
            ["handler", "timeout"],
        ),
        "no fn.yaml": (tar({"main.py": b"x = 1\n"}), ["fn.yaml"]),
        "escaping path": (tar({"fn.yaml": b"name: bad\nhandler: m:f\n", "../evil": b"x"}), [".."]),
        "absolute path": (
            tar({"fn.yaml": b"name: bad\nhandler: m:f\n", "/etc/x": b"x"}),
            ["/etc/x"],
        ),
        "name differs": (tar({"fn.yaml": b"name: other\nhandler: m:f\n"}), ["other"]),
        "not a tar": (b"plain text", []),
    }
    for what, (bundle, words) in cases.items():
        reply = http("POST", url, bundle, {**platform.auth, "Content-Type": "application/gzip"})
        assert reply.status == 422, (what, reply)
        status = reply.json()
        for word in words:
            assert word in status["message"] or any(
                word in c["field"] or word in c["message"]
                for c in status.get("details", {}).get("causes", [])
            ), (what, status)
    reply = http("GET", f"{platform.api}{NS}/functions", headers=platform.auth)
    assert reply.json()["items"] == []

    bad_name = http("GET", f"{platform.api}{NS}/functions/Bad_Name", headers=platform.auth)
    assert bad_name.status == 400 and "DNS-1123" in bad_name.json()["message"]


def test_invalid_manifest_is_refused_by_the_cli_before_upload(
    platform: Platform, tmp_path: Path
) -> None:
    folder = copy_example("hello", tmp_path)
    (folder / "fn.yaml").write_text("name: hello\nhandler: main\nscale: {min: 5, max: 1}\n")
    done = platform.fn("deploy", str(folder))
    assert done.returncode == 2
    assert "handler" in done.stdout + done.stderr and "scale.min" in done.stdout + done.stderr
    assert revisions(platform, "hello") == []


def test_unknown_function_oversize_body_and_a_raising_handler(
    platform: Platform, tmp_path: Path
) -> None:
    reply = platform.invoke("/fn/nothing-here/")
    assert reply.status == 404 and "nothing-here" in reply.json()["error"]

    folder = tmp_path / "boom"
    folder.mkdir()
    (folder / "fn.yaml").write_text("name: boom\nhandler: main:handle\n")
    (folder / "main.py").write_text(
        "def handle(req):\n"
        "    if req.query.get('fail'):\n"
        "        raise RuntimeError('kaboom')\n"
        "    return 'fine'\n"
    )
    platform.fn("deploy", str(folder), check=True)

    reply = platform.invoke("/fn/boom/?fail=1")
    assert reply.status == 500
    error = reply.json()
    assert "RuntimeError" in error["error"] and error["requestId"]
    assert platform.invoke("/fn/boom/").body == b"fine"  # the replica stayed up
    logs = wait_for(
        "the traceback in the logs",
        lambda: "kaboom" in (out := platform.fn("logs", "boom").stdout) and out,
    )
    assert error["requestId"] in logs

    # The gateway answers 413 from the declared length, before the body is sent.
    host, port = platform.gateway.removeprefix("http://").rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(b"POST /fn/boom/ HTTP/1.1\r\nHost: x\r\nContent-Length: 11534336\r\n\r\n")
        answer = sock.recv(65536)
    assert answer.startswith(b"HTTP/1.1 413"), answer
