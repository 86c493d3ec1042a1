from datetime import UTC, datetime

import pytest
from cli_fake_api import function

from fnmesh.platform.cli.output import age, fields, render, seconds, size, table
from fnmesh.platform.cli.readiness import Verdict, verdict
from fnmesh.platform.cli.views import invocation_url, serving

NOW = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)


def test_table_aligns_columns_and_marks_missing_values() -> None:
    text = table(
        ["NAME", "READY", "URL"], [["hello", True, "http://x/"], ["a-longer-name", None, ""]]
    )
    lines = text.splitlines()
    assert lines[0] == "NAME            READY   URL"
    assert lines[1] == "hello           True    http://x/"
    assert lines[2] == "a-longer-name   -       -"
    assert [line.index(lines[0].split()[1]) for line in lines[:1]] == [16]


def test_fields_align_values() -> None:
    assert fields([("Name", "hello"), ("Namespace", None)]) == ("Name:       hello\nNamespace:  -")


@pytest.mark.parametrize(
    ("timestamp", "expected"),
    [
        ("2026-01-01T11:59:15Z", "45s"),
        ("2026-01-01T11:48:00Z", "12m"),
        ("2026-01-01T09:00:00+00:00", "3h"),
        ("2025-12-27T12:00:00Z", "5d"),
        ("2026-01-01T12:00:05Z", "0s"),  # a clock slightly ahead of ours
        (None, "-"),
        ("yesterday", "-"),
    ],
)
def test_age(timestamp: str | None, expected: str) -> None:
    assert age(timestamp, NOW) == expected


@pytest.mark.parametrize(
    ("count", "expected"),
    [
        (0, "0 B"),
        (999, "999 B"),
        (3400, "3.4 kB"),
        (12_000_000, "12.0 MB"),
        (5 * 10**12, "5000.0 GB"),
    ],
)
def test_size(count: int, expected: str) -> None:
    assert size(count) == expected


@pytest.mark.parametrize(
    ("value", "expected"), [(30.0, "30s"), (0.5, "500ms"), (120, "2m"), (90, "90s"), (None, "-")]
)
def test_seconds(value: float | None, expected: str) -> None:
    assert seconds(value) == expected


def test_render_json_and_yaml() -> None:
    data = {"function": {"name": "hello"}, "revisions": [{"name": "hello-00001"}]}
    assert render(data, "json").startswith('{\n  "function"')
    assert render(data, "yaml") == "function:\n  name: hello\nrevisions:\n- name: hello-00001"
    with pytest.raises(ValueError, match="unknown output format"):
        render(data, "xml")


def rev(name: str, build: str, ready: str = "", reason: str = "") -> dict[str, object]:
    conditions = [{"type": "Ready", "status": ready, "reason": reason}] if ready else []
    return {
        "metadata": {"name": name},
        "spec": {"artifact": {"build": build}},
        "status": {"conditions": conditions},
    }


@pytest.mark.parametrize(
    ("resource", "revisions", "expected"),
    [
        # not stamped yet, and the controller has not seen generation 2
        (function(observed=1), [rev("hello-00001", "b1", "True")], Verdict("waiting")),
        (
            function(generation=2, observed=2),
            [rev("hello-00002", "b2")],
            Verdict("waiting", "hello-00002"),
        ),
        (
            function(generation=2, observed=2),
            [rev("hello-00002", "b2", "True", "ReplicasReady")],
            Verdict("ready", "hello-00002"),
        ),
        # a later deploy's ready revision does not answer for this one
        (
            function(generation=3, observed=3),
            [rev("hello-00002", "b2", "Unknown", "Starting"), rev("hello-00003", "b3", "True")],
            Verdict("waiting", "hello-00002"),
        ),
        (
            function(generation=2, observed=2),
            [rev("hello-00002", "b2", "False", "ReplicaFailed")],
            Verdict("failed", "hello-00002", "ReplicaFailed"),
        ),
        # the same build stamped twice (a later spec change): the first one is this deploy's
        (
            function(generation=3, observed=3),
            [rev("hello-00003", "b2", "True"), rev("hello-00002", "b2", "Unknown", "Starting")],
            Verdict("waiting", "hello-00002"),
        ),
    ],
)
def test_readiness_verdict(
    resource: dict[str, object], revisions: list[dict[str, object]], expected: Verdict
) -> None:
    assert verdict(resource, revisions, "b2", 2) == expected


def test_readiness_superseded() -> None:
    unstamped = verdict(
        function(generation=3, observed=3), [rev("hello-00003", "b3", "True")], "b2", 2
    )
    assert unstamped.state == "superseded" and unstamped.revision is None
    assert "no revision was stamped from build b2" in unstamped.message
    replaced = [rev("hello-00002", "b2", "Unknown", "ScaledToZero"), rev("hello-00003", "b3")]
    found = verdict(function(generation=3, observed=3), replaced, "b2", 2)
    assert (found.state, found.revision) == ("superseded", "hello-00002")
    assert "replaced by the newer hello-00003" in found.message
    # scaled to zero with nothing newer: an idle revision, not a replaced one
    idle = [rev("hello-00002", "b2", "Unknown", "ScaledToZero")]
    assert verdict(function(generation=2, observed=2), idle, "b2", 2).state == "waiting"


def test_serving_revisions_follow_traffic() -> None:
    split = [{"revision": "hello-00001", "percent": 80}, {"revision": "hello-00002", "percent": 20}]
    assert serving(function(traffic=split)) == ["hello-00001", "hello-00002"]
    assert serving(function(traffic=[])) == ["hello-00001"]


def test_invocation_url() -> None:
    assert invocation_url("http://gw:8080/", "hello", "default") == "http://gw:8080/fn/hello/"
    assert invocation_url("http://gw:8080", "hello", "team") == "http://gw:8080/fn/hello.team/"
