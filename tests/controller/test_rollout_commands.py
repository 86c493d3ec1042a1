"""Rollback and promote requests, carried out once by plan()."""

from __future__ import annotations

from dataclasses import replace

from rolloutkit import CANARY, T0, function, healthy, revision, step, weights

from fnmesh.platform.controller.commands import (
    ANNOTATION_COMMAND,
    Command,
    parse_command,
    refusal,
    rollback_target,
)
from fnmesh.platform.model import Function, RolloutSpec, TrafficTarget

IMMEDIATE = RolloutSpec()


def asked(fn: Function, command: Command) -> Function:
    annotations = {**fn.metadata.annotations, ANNOTATION_COMMAND: command.encode()}
    return replace(fn, metadata=replace(fn.metadata, annotations=annotations))


def deployed_twice(rollout: RolloutSpec = IMMEDIATE) -> Function:
    fn, _ = step(function(1, rollout=rollout), [revision(1)], T0)
    fn = replace(function(2, rollout=rollout), status=fn.status)
    fn, _ = step(fn, [revision(1), revision(2)], T0)
    return fn


def test_commands_round_trip_and_bad_ones_are_ignored() -> None:
    command = Command("c1", "rollback", "hello-00002", "hello-00001")
    assert parse_command({ANNOTATION_COMMAND: command.encode()}) == command
    for raw in ("", "{", "[]", '{"action": "explode", "id": "x", "latest": "y"}', '{"id": 1}'):
        assert parse_command({ANNOTATION_COMMAND: raw}) is None
    assert parse_command({}) is None


def test_rollback_restores_the_previous_revision_in_one_step() -> None:
    fn = deployed_twice()
    assert weights(fn) == {"hello-00002": 100}
    revisions = [revision(1, "Unknown", reason="ScaledToZero"), revision(2)]
    fn, decided = step(asked(fn, Command("c1", "rollback", "hello-00002")), revisions, T0 + 5)
    assert weights(fn) == {"hello-00001": 100}
    state = fn.status.rollout
    assert state is not None
    assert (state.phase, state.reason, state.command) == ("RolledBack", "RolledBackByHand", "c1")
    assert decided.active == ["hello-00001"] and decided.inactive == ["hello-00002"]
    # carried out once: the same request stays put, even once 2 scales to zero
    fn, _ = step(fn, [revision(1), revision(2, "Unknown", reason="ScaledToZero")], T0 + 9)
    assert weights(fn) == {"hello-00001": 100}
    # promote sends everything back to the newest
    fn, _ = step(asked(fn, Command("c2", "promote", "hello-00002")), [revision(1), revision(2)], T0)
    assert weights(fn) == {"hello-00002": 100}
    assert fn.status.rollout is not None and fn.status.rollout.reason == "PromotedByHand"


def test_a_newer_deploy_takes_over_and_old_requests_do_not_come_back() -> None:
    fn = deployed_twice()
    fn, _ = step(
        asked(fn, Command("c1", "rollback", "hello-00002")), [revision(1), revision(2)], T0
    )
    assert weights(fn) == {"hello-00001": 100}
    annotations = fn.metadata.annotations
    fn = replace(function(3, rollout=IMMEDIATE), status=fn.status)
    fn = replace(fn, metadata=replace(fn.metadata, annotations=annotations))
    fn, _ = step(fn, [revision(1), revision(2), revision(3)], T0)
    assert weights(fn) == {"hello-00003": 100}
    fn, _ = step(fn, [revision(1), revision(2), revision(3)], T0 + 1)
    assert weights(fn) == {"hello-00003": 100}


def test_rollback_during_a_canary_goes_to_the_stable_revision() -> None:
    fn = deployed_twice(CANARY)
    fn, _ = step(fn, [revision(1), revision(2)], T0 + 30, healthy())
    assert weights(fn) == {"hello-00001": 80, "hello-00002": 20}
    fn, decided = step(
        asked(fn, Command("c", "rollback", "hello-00002")), [revision(1), revision(2)], T0 + 31
    )
    assert weights(fn) == {"hello-00001": 100}
    assert decided.requeue_after is None


def test_promote_during_a_canary_sends_it_everything() -> None:
    fn = deployed_twice(CANARY)
    fn, _ = step(
        asked(fn, Command("p", "promote", "hello-00002")), [revision(1), revision(2)], T0 + 1
    )
    assert weights(fn) == {"hello-00002": 100}
    assert fn.status.rollout is not None and fn.status.rollout.phase == "Promoted"


def test_rollback_to_a_named_revision() -> None:
    fn, _ = step(function(1), [revision(1)], T0)
    fn = replace(function(3, rollout=IMMEDIATE), status=fn.status)
    revisions = [revision(1), revision(2), revision(3)]
    fn, _ = step(fn, revisions, T0)
    fn, _ = step(asked(fn, Command("c", "rollback", "hello-00003", "hello-00001")), revisions, T0)
    assert weights(fn) == {"hello-00001": 100}


def test_refused_requests_change_nothing() -> None:
    fn = deployed_twice()
    broken = [revision(1, "False", reason="ReplicaFailed", message="boom"), revision(2)]
    fn, _ = step(asked(fn, Command("c", "rollback", "hello-00002", "hello-00001")), broken, T0)
    assert weights(fn) == {"hello-00002": 100} and fn.status.rollout is None


def test_defaults_and_refusals() -> None:
    revisions = [revision(1), revision(2), revision(3)]
    serving3 = [TrafficTarget("hello-00003", 100)]
    assert rollback_target(None, serving3, revisions) == "hello-00002"
    assert rollback_target(None, [TrafficTarget("hello-00001", 100)], revisions) is None
    latest = revisions[-1]
    assert (
        refusal(Command("x", "rollback", "hello-00003"), latest, revisions, None, serving3) is None
    )
    cases = {
        Command("x", "rollback", "hello-00002"): "was deployed since",
        Command("x", "rollback", "hello-00003", "hello-00009"): "does not exist",
        Command("x", "rollback", "hello-00003", "hello-00003"): "fn promote",
    }
    for command, words in cases.items():
        problem = refusal(command, latest, revisions, None, serving3)
        assert problem is not None and words in problem, (command, problem)
    starting = [revision(1), revision(2, "Unknown", reason="Starting")]
    problem = refusal(Command("x", "promote", "hello-00002"), starting[1], starting, None, [])
    assert problem is not None and "not ready" in problem
    none_before = refusal(
        Command("x", "rollback", "hello-00001"), revisions[0], revisions[:1], None, []
    )
    assert none_before is not None and "no earlier ready revision" in none_before
