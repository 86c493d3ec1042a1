import gzip
import io
import sys
import tarfile
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from cli_fake_api import FakeApi, function, status
from cli_support import Fn, Watched

MAIN = "def handle(req):\n    return 'hello'\n"


def folder(root: Path, manifest: str = "name: hello\nhandler: main:handle\n") -> Path:
    path = root / "hello"
    path.mkdir()
    (path / "fn.yaml").write_text(manifest)
    (path / "main.py").write_text(MAIN)
    return path


def result(generation: int = 2, build: str = "b-2") -> dict[str, Any]:
    return {
        "event": "result",
        "ok": True,
        "build": build,
        "digest": "sha256:abc",
        "function": function(generation=generation),
        "generation": generation,
    }


def revision(
    name: str, build: str, ready: str = "Unknown", reason: str = "Starting", message: str = ""
) -> dict[str, Any]:
    return {
        "apiVersion": "fnmesh.dev/v1alpha1",
        "kind": "Revision",
        "metadata": {
            "name": name,
            "namespace": "default",
            "labels": {"fnmesh.dev/function": "hello"},
        },
        "spec": {"function": "hello", "artifact": {"digest": "sha256:abc", "build": build}},
        "status": {
            "conditions": [{"type": "Ready", "status": ready, "reason": reason, "message": message}]
        },
    }


def becoming_ready(fake: FakeApi) -> None:
    fake.function_states[("default", "hello")] = [
        function(generation=1),  # read before the upload
        function(generation=2, observed=1),  # the controller has not seen it yet
        function(generation=2, observed=2, created="hello-00002"),  # stamped, starting
        function(generation=2, observed=2, created="hello-00002", ready_revision="hello-00002"),
    ]
    old = revision("hello-00001", "b-1", "True", "ReplicasReady")
    fake.revision_states = [
        [old],
        [old, revision("hello-00002", "b-2")],
        [old, revision("hello-00002", "b-2", "True", "ReplicasReady")],
    ]


def test_deploy_streams_the_build_and_waits_for_ready(
    fn: Fn, fake: FakeApi, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = folder(tmp_path)
    fake.source_events = [
        {"event": "log", "line": "unpacking 2 files"},
        {"event": "log", "line": "no requirements.txt: nothing to install"},
        result(),
    ]
    becoming_ready(fake)
    assert fn("deploy", str(source)) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith(f"Deploying hello from {source} (2 files, ")
    assert out[0].endswith(" B)")
    assert out[1:3] == ["  unpacking 2 files", "  no requirements.txt: nothing to install"]
    assert out[3].startswith("Revision hello-00002 is ready (") and out[3].endswith(" s)")
    assert out[4] == "URL: http://127.0.0.1:8080/fn/hello/"
    [upload] = fake.asked("POST", "/source")
    assert upload.path == "/apis/fnmesh.dev/v1alpha1/namespaces/default/functions/hello/source"
    assert upload.query == {"ifGeneration": "1"}  # the generation read before
    assert upload.headers["content-type"] == "application/gzip"
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(upload.body))) as tar:
        assert sorted(tar.getnames()) == ["fn.yaml", "main.py"]
    assert len(fake.asked("GET", "/functions/hello")) == 4  # read once, polled until ready


def test_relative_folder_is_shown_as_typed(
    fn: Fn,
    fake: FakeApi,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    folder(tmp_path)
    monkeypatch.chdir(tmp_path)
    fake.source_events = [result()]
    assert fn("deploy", "hello", "--no-wait") == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("Deploying hello from ./hello (2 files, ")
    assert out[1] == "Build b-2 done; the new revision is starting: see `fn describe hello`"
    assert len(fake.asked("GET", "/functions/hello")) == 1  # read once; --no-wait: no polling
    assert not fake.asked("GET", "/revisions")


def test_build_log_lines_are_printed_as_they_come(
    fn: Fn, fake: FakeApi, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = folder(tmp_path)
    # the server holds the rest of the build until the first line has reached the terminal
    fake.source_events = [{"event": "log", "line": "step 1"}, {"event": "hold"}, result()]
    fake.function_states[("default", "hello")] = [function(generation=2, observed=2)]
    fake.revision_states = [[revision("hello-00002", "b-2", "True", "ReplicasReady")]]
    out = Watched()
    monkeypatch.setattr(sys, "stdout", out)

    def release_once_printed() -> None:
        if out.wait_for("  step 1\n"):
            fake.release.set()

    releaser = threading.Thread(target=release_once_printed, daemon=True)
    releaser.start()
    code = fn("deploy", str(source))
    releaser.join(10)
    assert fake.release.is_set(), "the first build line was not printed before the build ended"
    assert code == 0
    assert "never released" not in out.getvalue()


def test_failed_build_prints_the_message_and_the_log_tail(
    fn: Fn, fake: FakeApi, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = folder(tmp_path)
    fake.source_events = [
        {"event": "log", "line": "installing requirements"},
        {
            "event": "result",
            "ok": False,
            "build": "b-9",
            "message": "pip install failed (exit 1)",
            "logTail": ["installing requirements", "ERROR: No matching distribution for nope"],
        },
    ]
    assert fn("deploy", str(source)) == 1
    captured = capsys.readouterr()
    assert "  installing requirements" in captured.out
    assert "Build b-9 of default/hello failed: pip install failed (exit 1)" in captured.err
    assert "  ERROR: No matching distribution for nope" in captured.err
    assert "fn build-log hello b-9" in captured.err
    assert not fake.asked("GET", "/revisions")


def test_invalid_manifest_names_every_field_and_uploads_nothing(
    fn: Fn, fake: FakeApi, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = folder(tmp_path, "name: Bad_Name\ntimeout: soon\nscale:\n  min: x\n")
    assert fn("deploy", str(source)) == 2
    err = capsys.readouterr().err
    assert "(4 problems)" in err
    for field in ("- name:", "- handler:", "- timeout:", "- scale.min:"):
        assert field in err
    assert "Traceback" not in err
    assert fake.requests == []


def test_missing_manifest(
    fn: Fn, fake: FakeApi, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert fn("deploy", str(tmp_path)) == 2
    assert "fn.yaml not found" in capsys.readouterr().err
    assert fake.requests == []


def test_refused_upload_prints_the_causes(
    fn: Fn, fake: FakeApi, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = folder(tmp_path)
    fake.source_error = (
        422,
        status(
            422,
            "fn.yaml is invalid",
            [{"field": "runtime", "message": "python3.9 does not match the platform's python3.11"}],
        ),
    )
    assert fn("deploy", str(source)) == 2
    err = capsys.readouterr().err
    assert "fn.yaml is invalid" in err
    assert "  runtime: python3.9 does not match the platform's python3.11" in err


def test_revision_that_fails_to_start(
    fn: Fn, fake: FakeApi, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = folder(tmp_path)
    fake.source_events = [result()]
    failing = "the replica exited with code 1: ImportError: no module named 'mian'"
    fake.function_states[("default", "hello")] = [function(generation=2, observed=2)]
    fake.revision_states = [
        [revision("hello-00002", "b-2")],
        [revision("hello-00002", "b-2", "False", "RevisionFailed", failing)],
    ]
    assert fn("deploy", str(source)) == 1
    err = capsys.readouterr().err
    assert "Revision hello-00002 failed to start: RevisionFailed: the replica exited" in err
    assert "fn logs hello" in err


def test_timeout_waiting_for_ready(
    fn: Fn, fake: FakeApi, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = folder(tmp_path)
    fake.source_events = [result()]
    fake.function_states[("default", "hello")] = [
        function(generation=2, observed=2, created="hello-00002")
    ]
    fake.revision_states = [[revision("hello-00002", "b-2")]]
    started = time.monotonic()
    assert fn("deploy", str(source), "--timeout", "0.5") == 1
    assert time.monotonic() - started < 10
    err = capsys.readouterr().err
    assert "revision hello-00002 of default/hello was not ready within 0.5 s" in err
    assert len(fake.asked("GET", "/functions/hello")) >= 2


def test_timeout_during_the_build(
    fn: Fn, fake: FakeApi, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = folder(tmp_path)
    fake.source_events = [{"event": "log", "line": "installing"}, {"event": "hold"}, result()]
    started = time.monotonic()
    assert fn("deploy", str(source), "--timeout", "0.5") == 1
    assert time.monotonic() - started < 5
    captured = capsys.readouterr()
    assert "  installing" in captured.out
    assert "the build of default/hello did not finish within 0.5 s" in captured.err


def test_namespace_flag_wins_over_the_manifest(
    fn: Fn, fake: FakeApi, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = folder(tmp_path, "name: hello\nnamespace: team\nhandler: main:handle\n")
    fake.source_events = [result()]
    assert fn("deploy", str(source), "--no-wait") == 0
    assert fake.asked("POST", "/namespaces/team/functions/hello/source")
    assert fn("deploy", str(source), "--no-wait", "-n", "other") == 0
    assert fake.asked("POST", "/namespaces/other/functions/hello/source")


def conflict_result(message: str) -> dict[str, Any]:
    return {"event": "result", "ok": False, "status": 409, "conflict": True, "message": message}


def test_a_deploy_that_loses_the_race_reads_again_and_uploads_again(
    fn: Fn, fake: FakeApi, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = folder(tmp_path)
    went_first = "function default/hello changed since this deploy read it"
    fake.source_attempts = [
        [{"event": "log", "line": "unpacking"}, conflict_result(went_first)],  # lost while building
        (409, status(409, went_first)),  # lost before building
        [result(generation=4, build="b-mine")],
    ]
    fake.function_states[("default", "hello")] = [
        function(generation=1),
        function(generation=2),
        function(generation=3),
        function(generation=4, observed=4),
    ]
    fake.revision_states = [[revision("hello-00004", "b-mine", "True", "ReplicasReady")]]
    assert fn("deploy", str(source)) == 0
    out = capsys.readouterr().out
    assert f"  {went_first}\n  uploading again (attempt 2 of 10)\n" in out
    assert "uploading again (attempt 3 of 10)" in out
    assert "Revision hello-00004 is ready" in out
    uploads = fake.asked("POST", "/source")
    assert [u.query["ifGeneration"] for u in uploads] == ["1", "2", "3"]
    assert len({u.body for u in uploads}) == 1  # the same folder each time


def test_a_deploy_that_keeps_losing_gives_up_and_says_so(
    fn: Fn, fake: FakeApi, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = folder(tmp_path)
    fake.source_events = [conflict_result("another deploy went first")]
    fake.function_states[("default", "hello")] = [function(generation=1)]
    assert fn("deploy", str(source)) == 1
    err = capsys.readouterr().err
    assert "gave up after 10 attempts" in err
    assert "nothing of this upload was deployed" in err
    assert len(fake.asked("POST", "/source")) == 10
    assert not fake.asked("GET", "/revisions")


def test_the_first_deploy_expects_no_function(fn: Fn, fake: FakeApi, tmp_path: Path) -> None:
    source = folder(tmp_path)
    fake.source_events = [result(generation=1, build="b-1")]
    assert fn("deploy", str(source), "--no-wait") == 0
    [upload] = fake.asked("POST", "/source")
    assert upload.query == {"ifGeneration": "0"}


def test_waits_for_its_own_revision_never_a_later_one(
    fn: Fn, fake: FakeApi, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = folder(tmp_path)
    fake.source_events = [result(generation=2, build="b-2")]
    later = revision("hello-00003", "b-3", "True", "ReplicasReady")  # someone else's, ready
    fake.function_states[("default", "hello")] = [
        function(generation=1),
        function(generation=3, observed=3, created="hello-00003", ready_revision="hello-00003"),
    ]
    fake.revision_states = [
        [revision("hello-00002", "b-2"), later],
        [revision("hello-00002", "b-2"), later],
        [revision("hello-00002", "b-2", "True", "ReplicasReady"), later],
    ]
    assert fn("deploy", str(source)) == 0
    out = capsys.readouterr().out
    assert "Revision hello-00002 is ready" in out
    assert "hello-00003" not in out
    assert len(fake.asked("GET", "/revisions")) == 3


def test_an_upload_replaced_before_it_was_stamped_is_reported(
    fn: Fn, fake: FakeApi, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = folder(tmp_path)
    fake.source_events = [result(generation=2, build="b-2")]
    fake.function_states[("default", "hello")] = [
        function(generation=1),
        function(generation=3, observed=3, created="hello-00002", ready_revision="hello-00002"),
    ]
    fake.revision_states = [[revision("hello-00002", "b-3", "True", "ReplicasReady")]]
    assert fn("deploy", str(source)) == 1
    captured = capsys.readouterr()
    assert "is ready" not in captured.out
    assert "Build b-2 of default/hello: no revision was stamped from build b-2" in captured.err


def test_a_revision_replaced_and_scaled_down_before_it_was_ready_is_reported(
    fn: Fn, fake: FakeApi, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = folder(tmp_path)
    fake.source_events = [result(generation=2, build="b-2")]
    fake.function_states[("default", "hello")] = [function(generation=1), function(generation=3)]
    fake.revision_states = [
        [
            revision("hello-00002", "b-2", "Unknown", "ScaledToZero"),
            revision("hello-00003", "b-3", "True", "ReplicasReady"),
        ]
    ]
    assert fn("deploy", str(source)) == 1
    err = capsys.readouterr().err
    assert "revision hello-00002 (from this upload) was replaced by the newer hello-00003" in err
