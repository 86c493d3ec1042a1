"""plan() with rollouts: canary steps, automatic rollback, pins, tags, previews, limits."""

from __future__ import annotations

from dataclasses import replace

from rolloutkit import (
    CANARY,
    NOW,
    T0,
    erroring,
    function,
    healthy,
    revision,
    step,
    weights,
)

from fnmesh.platform.controller.plan import active_revisions, plan
from fnmesh.platform.model import Function, RolloutSpec, TrafficTarget
from fnmesh.platform.model.resources import LABEL_COMMIT, condition


def serving(version: int, rollout: RolloutSpec = CANARY) -> Function:
    """Function at ``version`` with revision 1 ready and serving everything."""
    fn, _ = step(function(1, rollout=rollout), [revision(1)], T0)
    assert weights(fn) == {"hello-00001": 100}
    return replace(function(version, rollout=rollout), status=fn.status)


def test_the_first_revision_takes_all_traffic_at_once_even_with_canary() -> None:
    fn, decided = step(function(1), [revision(1)], T0)
    assert weights(fn) == {"hello-00001": 100}
    assert fn.status.rollout is None and decided.requeue_after is None


def test_a_new_revision_is_started_before_it_takes_traffic() -> None:
    fn = serving(2)
    fn, decided = step(fn, [revision(1), revision(2, "Unknown", reason="Starting")], T0)
    assert weights(fn) == {"hello-00001": 100}
    assert decided.active == ["hello-00001", "hello-00002"]
    assert fn.status.rollout is None


def test_a_healthy_canary_walks_the_steps_and_is_promoted() -> None:
    fn = serving(2)
    revisions = [revision(1), revision(2)]
    fn, decided = step(fn, revisions, T0)
    assert weights(fn) == {"hello-00001": 90, "hello-00002": 10}
    assert decided.requeue_after == 30.0
    assert decided.active == ["hello-00001", "hello-00002"]
    ready = condition(fn.status.conditions, "Rollout")
    assert ready is not None and ready.status == "Unknown"
    seen = []
    for k in range(1, 6):
        fn, decided = step(fn, revisions, T0 + 30.0 * k, healthy())
        seen.append(weights(fn))
    assert seen == [
        {"hello-00001": 80, "hello-00002": 20},
        {"hello-00001": 70, "hello-00002": 30},
        {"hello-00001": 60, "hello-00002": 40},
        {"hello-00001": 50, "hello-00002": 50},
        {"hello-00002": 100},
    ]
    assert fn.status.rollout is not None and fn.status.rollout.phase == "Promoted"
    assert decided.requeue_after is None
    assert decided.active == ["hello-00002"] and decided.inactive == ["hello-00001"]
    done = condition(fn.status.conditions, "Rollout")
    assert done is not None and (done.status, done.reason) == ("True", "Promoted")
    again, decided = step(fn, revisions, T0 + 999.0, erroring(0.5))
    assert weights(again) == {"hello-00002": 100} and decided.requeue_after is None


def test_an_erroring_canary_is_rolled_back_and_status_says_why() -> None:
    fn = serving(2)
    revisions = [revision(1), revision(2)]
    fn, _ = step(fn, revisions, T0)
    for k in (1, 2):
        fn, _ = step(fn, revisions, T0 + 30.0 * k, erroring(0.05))
        assert weights(fn) == {"hello-00001": 90, "hello-00002": 10}
    fn, decided = step(fn, revisions, T0 + 90.0, erroring(0.05))
    assert weights(fn) == {"hello-00001": 100}
    state = fn.status.rollout
    assert state is not None and state.phase == "RolledBack" and state.failed_checks == 3
    assert state.message is not None and "success rate 95.00%" in state.message
    rollout = condition(fn.status.conditions, "Rollout")
    assert rollout is not None and (rollout.status, rollout.reason) == ("False", "ChecksFailed")
    ready = condition(fn.status.conditions, "Ready")
    assert ready is not None and ready.status == "True" and "rolled back" in (ready.message or "")
    # the canary is held back: scaled to zero, kept, never retried on its own
    assert decided.active == ["hello-00001"] and decided.inactive == ["hello-00002"]
    assert decided.delete == [] and decided.requeue_after is None
    zero = [revision(1), revision(2, "Unknown", reason="ScaledToZero")]
    later, _ = step(fn, zero, T0 + 500.0, healthy())
    assert weights(later) == {"hello-00001": 100}


def test_a_canary_revision_that_fails_is_rolled_back_at_once() -> None:
    fn = serving(2)
    fn, _ = step(fn, [revision(1), revision(2)], T0)
    crashed = revision(2, "False", reason="ReplicaFailed", message="exited with 1")
    fn, _ = step(fn, [revision(1), crashed], T0 + 1.0)
    assert weights(fn) == {"hello-00001": 100}
    state = fn.status.rollout
    assert state is not None and state.reason == "RevisionFailed"
    assert "exited with 1" in (state.message or "")


def test_a_newer_revision_replaces_the_canary_and_keeps_the_stable_one() -> None:
    fn = serving(2)
    fn, _ = step(fn, [revision(1), revision(2)], T0)
    fn, _ = step(fn, [revision(1), revision(2)], T0 + 30.0, healthy())
    assert weights(fn) == {"hello-00001": 80, "hello-00002": 20}
    fn = replace(function(3), status=fn.status)
    three = [revision(1), revision(2), revision(3, "Unknown", reason="Starting")]
    fn, decided = step(fn, three, T0 + 40.0)
    assert weights(fn) == {"hello-00001": 80, "hello-00002": 20}  # 3 is not ready yet
    three[-1] = revision(3)
    fn, decided = step(fn, three, T0 + 50.0)
    assert weights(fn) == {"hello-00001": 90, "hello-00003": 10}
    assert fn.status.rollout is not None and fn.status.rollout.stable == "hello-00001"
    assert decided.inactive == ["hello-00002"]


def test_immediate_strategy_is_unchanged() -> None:
    immediate = RolloutSpec()
    fn = serving(2, immediate)
    fn, decided = step(fn, [revision(1), revision(2)], T0)
    assert weights(fn) == {"hello-00002": 100}
    assert fn.status.rollout is None and decided.requeue_after is None
    assert condition(fn.status.conditions, "Rollout") is None


def test_pinned_weights_win_and_the_rollout_waits() -> None:
    fn = serving(2)
    fn, _ = step(fn, [revision(1), revision(2)], T0)
    pins = [TrafficTarget("hello-00001", 70), TrafficTarget("hello-00002", 30, tag="next")]
    fn = replace(fn, spec=replace(fn.spec, traffic=pins))
    fn, decided = step(fn, [revision(1), revision(2)], T0 + 300.0, erroring(0.5))
    assert weights(fn) == {"hello-00001": 70, "hello-00002": 30}
    assert fn.status.traffic == pins
    assert fn.status.rollout is not None and fn.status.rollout.weight == 10  # untouched
    assert decided.requeue_after is None  # unpinning is a spec change: it is looked at then


def test_tags_reach_revisions_at_zero_percent_and_keep_them_running() -> None:
    fn = serving(3, RolloutSpec())
    tags = [TrafficTarget("hello-00001", tag="old"), TrafficTarget("hello-00002", tag="b")]
    fn = replace(fn, spec=replace(fn.spec, traffic=tags))
    fn, decided = step(fn, [revision(1), revision(2), revision(3)], T0)
    assert fn.status.traffic == [
        TrafficTarget("hello-00003", 100),
        TrafficTarget("hello-00001", 0, "old"),
        TrafficTarget("hello-00002", 0, "b"),
    ]
    assert decided.active == ["hello-00003", "hello-00001", "hello-00002"]
    assert decided.inactive == []
    assert [t.revision for t in decided.traffic if t.percent] == ["hello-00003"]


def test_a_traffic_change_alone_stamps_no_revision() -> None:
    fn, _ = step(function(1), [revision(1)], T0)
    tagged = replace(
        fn,
        spec=replace(fn.spec, traffic=[TrafficTarget("hello-00001", tag="v1")]),
        metadata=replace(fn.metadata, generation=2),
    )
    decided = plan(tagged, [revision(1)], url=None, now=NOW, clock=T0)
    assert decided.create is None
    assert decided.status.observed_generation == 2


def test_a_revision_carries_its_commit_as_a_label() -> None:
    decided = plan(function(1, commit="a" * 40), [], url=None, now=NOW, clock=T0)
    assert decided.create is not None
    assert decided.create.metadata.labels[LABEL_COMMIT] == "a" * 40
    odd = plan(function(1, commit="not a sha!"), [], url=None, now=NOW, clock=T0)
    assert odd.create is not None and LABEL_COMMIT not in odd.create.metadata.labels


def test_previews_are_never_the_newest_revision() -> None:
    fn, _ = step(function(1, rollout=RolloutSpec()), [revision(1)], T0)
    preview = revision(2, preview="feature-x")
    tags = [TrafficTarget("hello-00002", tag="feature-x")]
    fn = replace(fn, spec=replace(fn.spec, traffic=tags))
    fn, decided = step(fn, [revision(1), preview], T0)
    assert weights(fn) == {"hello-00001": 100}
    assert fn.status.latest_created_revision == "hello-00001"
    assert decided.active == ["hello-00001", "hello-00002"]
    # the tag removed: the preview goes at once
    fn = replace(fn, spec=replace(fn.spec, traffic=[]))
    fn, decided = step(fn, [revision(1), preview], T0)
    assert decided.delete == ["hello-00002"] and decided.inactive == []


def test_old_revisions_past_the_limit_are_deleted_oldest_first() -> None:
    fn = serving(6, RolloutSpec())
    tags = [TrafficTarget("hello-00002", tag="keep")]
    fn = replace(fn, spec=replace(fn.spec, traffic=tags))
    revisions = [revision(n) for n in range(1, 7)]
    _, decided = step(fn, revisions, T0, keep=3)
    # 6 revisions, keep 3: the oldest go but 2 (tagged) and 6 (serving) stay
    assert decided.delete == ["hello-00001", "hello-00003", "hello-00004"]
    assert decided.inactive == ["hello-00005"]
    _, decided = step(fn, revisions, T0)  # default limit 10
    assert decided.delete == []


def test_the_rollout_names_are_never_deleted() -> None:
    fn = serving(2)
    fn, _ = step(fn, [revision(1), revision(2)], T0)
    for k in (1, 2, 3):
        fn, _ = step(fn, [revision(1), revision(2)], T0 + 30.0 * k, erroring(0.2))
    assert fn.status.rollout is not None and fn.status.rollout.phase == "RolledBack"
    _, decided = step(fn, [revision(1), revision(2)], T0 + 200.0, keep=1)
    assert decided.delete == []


def test_the_status_tells_a_reader_the_active_revisions_plan_decided() -> None:
    """The autoscaler on a cluster reads the active revisions off the written status
    (``active_revisions``); at every step of a rollout it agrees with ``plan``."""
    fn = serving(2)
    revisions = [revision(1), revision(2, "Unknown", reason="Starting")]
    fn, decided = step(fn, revisions, T0)
    timeline = [(fn, revisions, decided)]
    revisions = [revision(1), revision(2), revision(3, preview="feature-x")]
    for k, sample in enumerate([None, erroring(0.05), erroring(0.05), erroring(0.05)]):
        fn, decided = step(fn, revisions, T0 + 30.0 * k, sample)
        timeline.append((fn, revisions, decided))
    assert fn.status.rollout is not None and fn.status.rollout.phase == "RolledBack"
    assert decided.active == ["hello-00001"]  # the rolled-back canary is held back
    for written, seen, decided in timeline:
        assert active_revisions(written.status, seen) == decided.active
    tagged = replace(fn, spec=replace(fn.spec, traffic=[TrafficTarget("hello-00002", tag="old")]))
    tagged, decided = step(tagged, revisions, T0 + 200)
    assert (
        active_revisions(tagged.status, revisions)
        == decided.active
        == [
            "hello-00001",
            "hello-00002",
        ]
    )
