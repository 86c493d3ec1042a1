import json
import re
import signal
import sys
import threading
from pathlib import Path

import pytest
import yaml
from cli_fake_api import FakeApi, function, revision
from cli_support import Fn, Watched


def replica(name: str, port: int, pid: int, ready: bool = True) -> dict[str, object]:
    return {
        "name": name,
        "address": f"127.0.0.1:{port}",
        "ready": ready,
        "pid": pid,
        "startedAt": "2026-01-01T00:00:00Z",
        "restarts": 0 if ready else 2,
    }


@pytest.fixture
def two_functions(fake: FakeApi) -> FakeApi:
    split = [{"revision": "hello-00001", "percent": 80}, {"revision": "hello-00002", "percent": 20}]
    fake.add(function(created="hello-00002", ready_revision="hello-00002", traffic=split))
    fake.add(revision("hello-00001", replicas=[replica("hello-00001-a", 41001, 101)]))
    fake.add(
        revision(
            "hello-00002",
            ready=1,
            desired=2,
            replicas=[
                replica("hello-00002-a", 41002, 102),
                replica("hello-00002-b", 41003, 103, False),
            ],
        )
    )
    fake.add(
        function(
            "a-much-longer-name",
            created="a-much-longer-name-00001",
            ready_revision=None,
            ready="False",
            reason="RevisionFailed",
        )
    )
    fake.add(function("other", "team", created="other-00001", ready_revision="other-00001"))
    fake.add(revision("other-00001", "other", "team", ready=0, desired=0))
    return fake


def test_list_table(fn: Fn, two_functions: FakeApi, capsys: pytest.CaptureFixture[str]) -> None:
    assert fn("list") == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["NAME", "REVISION", "READY", "REPLICAS", "URL", "AGE"]
    assert lines[1].split()[:5] == [
        "a-much-longer-name",
        "-",
        "False",
        "-",
        "http://127.0.0.1:8080/fn/a-much-longer-name/",
    ]
    # both revisions in the split serve: 1/1 + 1/2
    assert lines[2].split()[:5] == [
        "hello",
        "hello-00002",
        "True",
        "2/3",
        "http://127.0.0.1:8080/fn/hello/",
    ]
    assert len(lines) == 3
    second_column = {re.search(r"\s{3}\S", line).end() - 1 for line in lines}  # type: ignore[union-attr]
    assert second_column == {len("a-much-longer-name   ")}, "columns are not aligned"
    assert lines[2].split()[-1].endswith("d")  # an age, in days


def test_list_all_namespaces(
    fn: Fn, two_functions: FakeApi, capsys: pytest.CaptureFixture[str]
) -> None:
    assert fn("list", "-A") == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:2] == ["NAME", "NAMESPACE"]
    assert [line.split()[:2] for line in lines[1:]] == [
        ["a-much-longer-name", "default"],
        ["hello", "default"],
        ["other", "team"],
    ]
    assert lines[3].split()[4] == "0/0"
    assert two_functions.asked("GET", "/apis/fnmesh.dev/v1alpha1/functions")
    assert two_functions.asked("GET", "/namespaces/team/revisions")


def test_list_json_and_yaml(
    fn: Fn, two_functions: FakeApi, capsys: pytest.CaptureFixture[str]
) -> None:
    assert fn("list", "-o", "json") == 0
    listing = json.loads(capsys.readouterr().out)
    assert listing["kind"] == "FunctionList"
    assert sorted(item["metadata"]["name"] for item in listing["items"]) == [
        "a-much-longer-name",
        "hello",
    ]
    assert fn("list", "-o", "yaml", "-n", "team") == 0
    listing = yaml.safe_load(capsys.readouterr().out)
    assert [item["metadata"]["name"] for item in listing["items"]] == ["other"]


def test_list_empty(fn: Fn, fake: FakeApi, capsys: pytest.CaptureFixture[str]) -> None:
    assert fn("list") == 0
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "No functions in namespace default" in captured.err


def test_describe(fn: Fn, two_functions: FakeApi, capsys: pytest.CaptureFixture[str]) -> None:
    assert fn("describe", "hello") == 0
    out = capsys.readouterr().out
    assert "Name:         hello\n" in out
    assert "URL:          http://127.0.0.1:8080/fn/hello/\n" in out
    assert "Handler:      main:handle\n" in out
    assert "Scale:        min 0, max 10, target 100 concurrency\n" in out
    assert "Artifact:     sha256:abc123 (build b-1)\n" in out
    conditions = out.split("Conditions:\n")[1].split("\n\n")[0].splitlines()
    assert conditions[1].split() == ["Ready", "True", "Ready", "-"]
    revisions = out.split("Revisions:\n")[1].split("\n\n")[0].splitlines()
    assert revisions[0].split() == ["NAME", "READY", "REPLICAS", "TRAFFIC", "CREATED"]
    assert [r.split()[:4] for r in revisions[1:]] == [
        ["hello-00002", "True", "1/2", "20%"],
        ["hello-00001", "True", "1/1", "80%"],
    ]
    replicas = out.split("Replicas:\n")[1].splitlines()
    assert replicas[0].split() == ["REVISION", "NAME", "ADDRESS", "READY", "PID", "RESTARTS", "AGE"]
    assert [r.split()[:6] for r in replicas[1:]] == [
        ["hello-00002", "hello-00002-a", "127.0.0.1:41002", "True", "102", "0"],
        ["hello-00002", "hello-00002-b", "127.0.0.1:41003", "False", "103", "2"],
        ["hello-00001", "hello-00001-a", "127.0.0.1:41001", "True", "101", "0"],
    ]
    [asked] = two_functions.asked("GET", "/revisions")
    assert asked.query == {"function": "hello"}


def test_describe_json(fn: Fn, two_functions: FakeApi, capsys: pytest.CaptureFixture[str]) -> None:
    assert fn("describe", "hello", "-o", "json") == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["function"]["metadata"]["name"] == "hello"
    assert [r["metadata"]["name"] for r in shown["revisions"]] == ["hello-00002", "hello-00001"]


def test_describe_scaled_to_zero(
    fn: Fn, two_functions: FakeApi, capsys: pytest.CaptureFixture[str]
) -> None:
    assert fn("describe", "other", "-n", "team") == 0
    out = capsys.readouterr().out
    assert "URL:          http://127.0.0.1:8080/fn/other.team/" in out
    assert "scaled to zero" in out


def test_revisions(fn: Fn, two_functions: FakeApi, capsys: pytest.CaptureFixture[str]) -> None:
    assert fn("revisions", "hello") == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("NAME ")
    assert [line.split()[0] for line in lines[1:]] == ["hello-00002", "hello-00001"]
    assert fn("revisions", "hello", "-o", "json") == 0
    assert json.loads(capsys.readouterr().out)["kind"] == "RevisionList"


def test_logs(fn: Fn, fake: FakeApi, capsys: pytest.CaptureFixture[str]) -> None:
    fake.add(function())
    fake.logs = "2026-11-25T21:20:01.123Z hello-00001-x7k2p stdout: hi ✓\n"
    assert fn("logs", "hello", "--tail", "5") == 0
    assert capsys.readouterr().out == fake.logs
    [asked] = fake.asked("GET", "/logs")
    assert asked.query == {"tail": "5"}


def test_logs_follow_until_the_stream_ends_or_ctrl_c(
    fn: Fn, fake: FakeApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake.add(function())
    fake.follow_lines = ["line one", "line two"]
    out = Watched()
    monkeypatch.setattr(sys, "stdout", out)
    main_thread = threading.main_thread().ident
    assert main_thread is not None

    def interrupt() -> None:  # Ctrl-C once both lines are on the terminal
        if out.wait_for("line two\n"):
            signal.pthread_kill(main_thread, signal.SIGINT)
            # a signal landing just before the reader enters recv() is only seen when
            # recv() returns: send one more line so that it does
            fake.nudge.set()

    presser = threading.Thread(target=interrupt, daemon=True)
    presser.start()
    assert fn("logs", "hello", "-f") == 0
    presser.join(10)
    assert out.getvalue() in ("line one\nline two\n", "line one\nline two\nnudge\n")
    [asked] = fake.asked("GET", "/logs")
    assert asked.query == {"follow": "true"}


def test_build_log(fn: Fn, fake: FakeApi, capsys: pytest.CaptureFixture[str]) -> None:
    fake.build_logs["b-7"] = "step 1\nstep 2"
    assert fn("build-log", "hello", "b-7") == 0
    assert capsys.readouterr().out == "step 1\nstep 2\n"
    assert fn("build-log", "hello", "b-8") == 1
    assert "build b-8 not found" in capsys.readouterr().err


def test_delete(fn: Fn, fake: FakeApi, capsys: pytest.CaptureFixture[str]) -> None:
    fake.add(function())
    assert fn("delete", "hello") == 0  # stdin is not a terminal: no question
    assert capsys.readouterr().out == "function default/hello deleted\n"
    assert fake.asked("DELETE", "/namespaces/default/functions/hello")
    assert fn("delete", "hello", "--yes") == 1
    assert capsys.readouterr().err == "error: function default/hello not found\n"


def test_delete_asks_on_a_terminal(
    fn: Fn, fake: FakeApi, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    fake.add(function())

    class Terminal:
        def isatty(self) -> bool:
            return True

    monkeypatch.setattr(sys, "stdin", Terminal())
    monkeypatch.setattr("builtins.input", lambda prompt: "n")
    assert fn("delete", "hello") == 1
    assert "was not deleted" in capsys.readouterr().err
    assert not fake.asked("DELETE")
    monkeypatch.setattr("builtins.input", lambda prompt: "y")
    assert fn("delete", "hello") == 0
    assert fake.asked("DELETE")


def test_invoke(fn: Fn, fake: FakeApi, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert fn("invoke", "hello") == 0
    echo = json.loads(capsys.readouterr().out)
    assert (echo["method"], echo["path"]) == ("GET", "/fn/hello/")
    body = tmp_path / "body.json"
    body.write_text('{"name": "world"}')
    assert (
        fn(
            "invoke",
            "hello",
            "-n",
            "team",
            "--data",
            f"@{body}",
            "--path",
            "/greet",
            "-H",
            "X-Trace: 42",
        )
        == 0
    )
    echo = json.loads(capsys.readouterr().out)
    assert (echo["method"], echo["path"], echo["body"]) == (
        "POST",
        "/fn/hello.team/greet",
        '{"name": "world"}',
    )
    assert echo["headers"]["x-trace"] == "42"
    assert fn("invoke", "hello", "--data-file", str(body), "-X", "put") == 0
    assert json.loads(capsys.readouterr().out)["method"] == "PUT"


def test_invoke_include_and_failure(
    fn: Fn, fake: FakeApi, capsys: pytest.CaptureFixture[str]
) -> None:
    assert fn("invoke", "hello", "-i", "--path", "/?status=503") == 1
    out = capsys.readouterr().out
    assert out.startswith("HTTP/1.1 503 Service Unavailable\n")
    head, _, body = out.partition("\n\n")
    assert "x-fake: yes" in head
    assert json.loads(body)["path"] == "/fn/hello/"
    assert fn("invoke", "hello", "-H", "no colon") == 2
    assert "write it as 'Name: value'" in capsys.readouterr().err
