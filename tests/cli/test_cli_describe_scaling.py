"""``fn describe`` shows how each revision is scaled, from the runtime's Revision status."""

import pytest
from cli_fake_api import FakeApi, function, revision
from cli_support import Fn

from fnmesh.platform.cli.commands.describe import duration
from fnmesh.platform.cli.views import scaling


def scaling_rows(out: str) -> list[list[str]]:
    section = out.split("Scaling:\n")[1].split("\n\n")[0].splitlines()
    assert section[0].split() == [
        "REVISION",
        "DESIRED",
        "READY",
        "PANIC",
        "REASON",
        "LAST",
        "COLD",
        "START",
    ]
    return [line.split() for line in section[1:]]


def test_describe_shows_desired_ready_panic_reason_and_last_cold_start(
    fn: Fn, fake: FakeApi, capsys: pytest.CaptureFixture[str]
) -> None:
    fake.add(function(created="hello-00002", ready_revision="hello-00002"))
    busy = revision("hello-00002", ready=3, desired=5)
    busy["status"].update(panic=True, scalingReason="panic", lastColdStartSeconds=0.0421)
    fake.add(busy)
    idle = revision("hello-00001", ready=0, desired=0)
    idle["status"].update(panic=False, scalingReason="at-zero", lastColdStartSeconds=1.5)
    fake.add(idle)
    assert fn("describe", "hello") == 0
    assert scaling_rows(capsys.readouterr().out) == [
        ["hello-00002", "5", "3", "yes", "panic", "42ms"],
        ["hello-00001", "0", "0", "no", "at-zero", "1.50s"],
    ]


def test_a_revision_the_autoscaler_has_not_decided_on_shows_dashes(
    fn: Fn, fake: FakeApi, capsys: pytest.CaptureFixture[str]
) -> None:
    fake.add(function(created="hello-00001", ready_revision=None))
    fake.add(revision("hello-00001", ready=0, desired=0))
    assert fn("describe", "hello") == 0
    assert scaling_rows(capsys.readouterr().out) == [["hello-00001", "0", "0", "-", "-", "-"]]


def test_the_scaling_view_tolerates_a_missing_or_odd_status() -> None:
    assert scaling({}) == {
        "desired": 0,
        "ready": 0,
        "panic": None,
        "reason": None,
        "lastColdStart": None,
    }
    odd = {"status": {"panic": "yes", "lastColdStartSeconds": "soon", "desiredReplicas": 2}}
    assert scaling(odd)["panic"] is None and scaling(odd)["lastColdStart"] is None
    assert scaling(odd)["desired"] == 2


@pytest.mark.parametrize(
    ("seconds", "shown"), [(None, None), (0.0004, "0ms"), (0.25, "250ms"), (2.0, "2.00s")]
)
def test_durations(seconds: float | None, shown: str | None) -> None:
    assert duration(seconds) == shown


def resource_rows(out: str) -> list[list[str]]:
    section = out.split("Resources:\n")[1].split("\n\n")[0].splitlines()
    assert section[0].split() == ["REVISION", "MEMORY", "CPU", "PIDS"]
    return [line.split() for line in section[1:]]


def test_describe_shows_the_resources_of_the_function_and_each_revision(
    fn: Fn, fake: FakeApi, capsys: pytest.CaptureFixture[str]
) -> None:
    asked = {"memory": 512 * 1024 * 1024, "cpu": 0.5, "pids": 128}
    fake.add(function(created="hello-00002", ready_revision="hello-00002"))
    fake.functions[("default", "hello")]["spec"]["resources"] = asked
    newer = revision("hello-00002")
    newer["spec"]["resources"] = asked
    fake.add(newer)
    older = revision("hello-00001", ready=0, desired=0)
    older["spec"]["resources"] = {"cpu": 2}
    fake.add(older)
    assert fn("describe", "hello") == 0
    out = capsys.readouterr().out
    assert "Resources:    memory 512Mi, cpu 500m, pids 128" in out
    assert resource_rows(out) == [
        ["hello-00002", "512Mi", "500m", "128"],
        ["hello-00001", "default", "2", "default"],
    ]


def test_describe_shows_the_failing_reconcile_of_a_revision_and_of_the_function(
    fn: Fn, fake: FakeApi, capsys: pytest.CaptureFixture[str]
) -> None:
    fake.add(function(created="hello-00001", ready_revision="hello-00001"))
    fake.add(revision("hello-00001", ready=1, desired=1))
    full = "status not written: the store could not write (database or disk is full)"
    fake.failing_tasks = [
        {"name": "revision default/hello-00001", "consecutiveFailures": 3, "lastError": full},
        {"name": "revision default/other-00001", "consecutiveFailures": 1, "lastError": "x"},
        {
            "name": "controller worker",
            "consecutiveFailures": 2,
            "lastError": "reconciling function default/hello: disk I/O error",
        },
        {
            "name": "controller worker",
            "consecutiveFailures": 2,
            "lastError": "reconciling function default/hello2: disk I/O error",
        },
    ]
    assert fn("describe", "hello") == 0
    failing = capsys.readouterr().out.split("Failing:\n")[1].split("\n\n")[0].splitlines()
    assert failing == [
        f"  revision default/hello-00001 is failing (3 in a row): {full}",
        "  controller worker is failing (2 in a row): reconciling function default/hello: "
        "disk I/O error",
    ]


def test_describe_without_failing_tasks_has_no_failing_section(
    fn: Fn, fake: FakeApi, capsys: pytest.CaptureFixture[str]
) -> None:
    fake.add(function(created="hello-00001", ready_revision="hello-00001"))
    assert fn("describe", "hello") == 0
    assert "Failing:" not in capsys.readouterr().out
