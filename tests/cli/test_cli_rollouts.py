"""`fn traffic`, `fn rollout`, `fn rollback`, `fn promote` and `fn revisions` against the
real API and controller (replicas and metrics are stand-ins)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_support import write_context
from support.rollouts import ThreadedPlatform, erroring, healthy

from fnmesh.platform.cli.main import main

CANARY = """\
name: hello
handler: main:handle
rollout: {strategy: canary, stepWeight: 25, maxWeight: 50, interval: 300ms, threshold: 2}
"""


@pytest.fixture
def platform(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ThreadedPlatform]:
    monkeypatch.delenv("FNMESH_HOME", raising=False)
    running = ThreadedPlatform(tmp_path)
    running.start()
    write_context(tmp_path / "home", running.url, "http://127.0.0.1:8080", running.token)
    try:
        yield running
    finally:
        running.stop()


def fn(platform: ThreadedPlatform, *args: str) -> int:
    return main([*args, "--home", str(platform.home / "home")])


def lines(capsys: pytest.CaptureFixture[str]) -> list[str]:
    return capsys.readouterr().out.splitlines()


def test_traffic_shows_pins_and_tags(
    platform: ThreadedPlatform, capsys: pytest.CaptureFixture[str]
) -> None:
    platform.deploy_and_wait(1)
    platform.deploy_and_wait(2)
    assert fn(platform, "traffic", "hello") == 0
    out = lines(capsys)
    assert out[0].split() == ["REVISION", "PERCENT", "TAGS", "TAG", "URL"]
    assert out[1].split()[:2] == ["hello-00002", "100%"]
    assert "rollout: promoted" in out[2]

    assert (
        fn(platform, "traffic", "hello", "--set", "hello-00001=80", "2=20", "--tag", "old=1") == 0
    )
    out = lines(capsys)
    rows = {line.split()[0]: line.split()[1:] for line in out[1:3]}
    assert rows["hello-00001"][:2] == ["80%", "old"]
    assert rows["hello-00001"][2] == "http://127.0.0.1:8080/fn/hello@old/"
    assert rows["hello-00002"][:2] == ["20%", "-"]
    assert any("pinned by hand" in line for line in out)
    assert platform.weights() == {"hello-00001": 80, "hello-00002": 20}

    assert fn(platform, "traffic", "hello", "--auto", "--untag", "old", "-o", "json") == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["pinned"] == [] and shown["traffic"] == [
        {"revision": "hello-00002", "percent": 100}
    ]


def test_traffic_mistakes_are_usage_errors(
    platform: ThreadedPlatform, capsys: pytest.CaptureFixture[str]
) -> None:
    platform.deploy_and_wait(1)
    assert fn(platform, "traffic", "hello", "--set", "hello-00001") == 2
    assert "write REVISION=PERCENT" in capsys.readouterr().err
    assert fn(platform, "traffic", "hello", "--untag", "nope") == 2
    assert "has no such tag" in capsys.readouterr().err
    assert fn(platform, "traffic", "hello", "--set", "hello-00001=60") == 2
    assert "add up to 60" in capsys.readouterr().err
    assert fn(platform, "traffic", "hello", "--tag", "x=hello-00007") == 2
    assert "does not exist" in capsys.readouterr().err


def test_rollback_and_promote_each_take_one_command(
    platform: ThreadedPlatform, capsys: pytest.CaptureFixture[str]
) -> None:
    platform.deploy_and_wait(1)
    platform.deploy_and_wait(2)
    assert fn(platform, "rollback", "hello") == 0
    assert lines(capsys) == ["default/hello rolled back: hello-00001 takes 100%"]
    assert platform.weights() == {"hello-00001": 100}
    assert fn(platform, "rollback", "hello") == 2
    assert "no earlier ready revision" in capsys.readouterr().err
    assert fn(platform, "promote", "hello") == 0
    assert lines(capsys) == ["default/hello promoted: hello-00002 takes 100%"]
    platform.deploy_and_wait(3)
    assert fn(platform, "rollback", "hello", "1") == 0
    assert lines(capsys) == ["default/hello rolled back: hello-00001 takes 100%"]


def test_revisions_show_traffic_tags_and_commits(
    platform: ThreadedPlatform, capsys: pytest.CaptureFixture[str]
) -> None:
    platform.deploy_and_wait(1)
    platform.deploy_and_wait(2)
    assert fn(platform, "traffic", "hello", "--tag", "first=hello-00001") == 0
    capsys.readouterr()
    assert fn(platform, "revisions", "hello") == 0
    out = lines(capsys)
    assert out[0].split() == ["NAME", "READY", "REPLICAS", "TRAFFIC", "TAGS", "COMMIT", "CREATED"]
    assert out[1].split()[:6] == ["hello-00002", "True", "1/0", "100%", "-", "2" * 12]
    assert out[2].split()[3:6] == ["0%", "first", "1" * 12]


def test_rollout_follows_a_healthy_canary_to_its_promotion(
    platform: ThreadedPlatform, capsys: pytest.CaptureFixture[str]
) -> None:
    platform.deploy_and_wait(1, CANARY)
    platform.metrics.samples["hello-00002"] = healthy()
    platform.deploy_and_wait(2, CANARY)
    assert fn(platform, "rollout", "hello", "--poll", "0.02", "--timeout", "20") == 0
    out = lines(capsys)
    assert out[-1] == "default/hello: promoted"
    assert any("[Progressing: " in line for line in out)  # seen at least once on its way
    assert any("hello-00002 100% [Promoted: Promoted" in line for line in out)


def test_rollout_exits_1_when_the_canary_is_rolled_back(
    platform: ThreadedPlatform, capsys: pytest.CaptureFixture[str]
) -> None:
    platform.deploy_and_wait(1, CANARY)
    platform.metrics.samples["hello-00002"] = erroring(0.05)
    platform.deploy_and_wait(2, CANARY)
    assert fn(platform, "rollout", "hello", "--poll", "0.02", "--timeout", "20") == 1
    out = lines(capsys)
    assert out[-1] == "default/hello: rolled back"
    assert "success rate 95.00% is below 99%" in out[-2]
    assert platform.weights() == {"hello-00001": 100}


def test_rollout_gives_up_at_its_timeout(
    platform: ThreadedPlatform, capsys: pytest.CaptureFixture[str]
) -> None:
    platform.deploy_and_wait(1, CANARY)
    platform.deploy_and_wait(2, CANARY)  # no metrics: the canary waits at 25 %
    assert fn(platform, "rollout", "hello", "--poll", "0.02", "--timeout", "0.3") == 1
    assert "was not over after 0.3s" in capsys.readouterr().err
