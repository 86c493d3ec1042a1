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


@pytest.mark.parametrize(
    ("resource", "generation", "expected"),
    [
        # the controller has not seen the new generation: the old Ready says nothing
        (function(observed=1, ready="False"), 2, Verdict("waiting", "hello-00001")),
        (
            function(generation=2, observed=2, created="hello-00002"),
            2,
            Verdict("waiting", "hello-00002"),
        ),
        (
            function(generation=2, observed=2, created="hello-00002", ready_revision="hello-00002"),
            2,
            Verdict("ready", "hello-00002"),
        ),
        (
            function(
                generation=2,
                observed=2,
                created="hello-00002",
                ready="False",
                reason="RevisionFailed",
                message="the handler raised",
            ),
            2,
            Verdict("failed", "hello-00002", "RevisionFailed", "the handler raised"),
        ),
        (function(observed=None, created=None, ready_revision=None), 1, Verdict("waiting")),
    ],
)
def test_readiness_verdict(resource: dict[str, object], generation: int, expected: Verdict) -> None:
    assert verdict(resource, generation) == expected


def test_serving_revisions_follow_traffic() -> None:
    split = [{"revision": "hello-00001", "percent": 80}, {"revision": "hello-00002", "percent": 20}]
    assert serving(function(traffic=split)) == ["hello-00001", "hello-00002"]
    assert serving(function(traffic=[])) == ["hello-00001"]


def test_invocation_url() -> None:
    assert invocation_url("http://gw:8080/", "hello", "default") == "http://gw:8080/fn/hello/"
    assert invocation_url("http://gw:8080", "hello", "team") == "http://gw:8080/fn/hello.team/"
