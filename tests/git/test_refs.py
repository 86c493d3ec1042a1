"""Which pushed ref updates deploy, preview, stay or are refused (a table of cases)."""

from __future__ import annotations

import pytest

from fnmesh.platform.git.refs import (
    BuildPreview,
    Deploy,
    Keep,
    RefUpdate,
    RemovePreview,
    needs_ancestry,
    plan_push,
    preview_tag,
)

A, B, C, ZERO = "a" * 40, "b" * 40, "c" * 40, "0" * 40
MAIN = "refs/heads/main"


def test_a_new_main_deploys() -> None:
    update = RefUpdate(ZERO, A, MAIN)
    plan = plan_push([update], current={}, fast_forward={})
    assert plan.accepted and plan.actions == (Deploy(update),)


def test_a_fast_forward_of_main_deploys() -> None:
    update = RefUpdate(A, B, MAIN)
    assert needs_ancestry(update)
    plan = plan_push([update], current={MAIN: A}, fast_forward={MAIN: True})
    assert plan.actions == (Deploy(update),)


@pytest.mark.parametrize(
    ("update", "current", "fast_forward", "words"),
    [
        (RefUpdate(A, B, MAIN), {MAIN: A}, {MAIN: False}, "non-fast-forward"),
        (RefUpdate(A, ZERO, MAIN), {MAIN: A}, {}, "deleting main is refused"),
        (RefUpdate(A, B, MAIN), {MAIN: C}, {MAIN: True}, "another push got there first"),
        (RefUpdate(ZERO, B, MAIN), {MAIN: C}, {}, "another push got there first"),
        (RefUpdate(ZERO, A, "refs/notes/commits"), {}, {}, "only branches and tags"),
        (RefUpdate(ZERO, A, "refs/heads/___"), {}, {}, "letters or digits"),
        (RefUpdate(A, B, "refs/heads/x"), {"refs/heads/x": A}, {}, "non-fast-forward"),
    ],
)
def test_refused_updates(
    update: RefUpdate, current: dict[str, str], fast_forward: dict[str, bool], words: str
) -> None:
    plan = plan_push([update], current=current, fast_forward=fast_forward)
    assert not plan.accepted
    assert plan.actions == ()
    assert words in plan.refusals[0].message
    assert plan.refusals[0].ref == update.ref


def test_one_refused_update_is_reported_next_to_the_accepted_ones() -> None:
    good = RefUpdate(ZERO, A, MAIN)
    bad = RefUpdate(ZERO, A, "refs/pull/1")
    plan = plan_push([good, bad], current={}, fast_forward={})
    assert not plan.accepted
    assert [r.ref for r in plan.refusals] == ["refs/pull/1"]


def test_other_branches_are_previews_and_tags_are_kept() -> None:
    branch = RefUpdate(ZERO, A, "refs/heads/Feature/Login_Page")
    gone = RefUpdate(B, ZERO, "refs/heads/old-idea")
    tag = RefUpdate(ZERO, A, "refs/tags/v1.0")
    moved_tag = RefUpdate(A, B, "refs/tags/v1.0")
    plan = plan_push(
        [branch, gone, tag],
        current={"refs/heads/old-idea": B},
        fast_forward={},
    )
    assert plan.actions == (
        BuildPreview(branch, "Feature/Login_Page", "feature-login-page"),
        RemovePreview(gone, "old-idea", "old-idea"),
        Keep(tag),
    )
    assert not needs_ancestry(moved_tag)
    forced = plan_push([moved_tag], current={"refs/tags/v1.0": A}, fast_forward={})
    assert forced.actions == (Keep(moved_tag),)


def test_a_preview_tag_belongs_to_one_branch() -> None:
    update = RefUpdate(ZERO, A, "refs/heads/feature-x")
    taken = plan_push([update], current={}, fast_forward={}, previews={"feature-x": "feature/x"})
    assert "taken by branch 'feature/x'" in taken.refusals[0].message
    again = plan_push([update], current={}, fast_forward={}, previews={"feature-x": "feature-x"})
    assert again.accepted
    twins = plan_push(
        [update, RefUpdate(ZERO, A, "refs/heads/feature/x")], current={}, fast_forward={}
    )
    assert [r.ref for r in twins.refusals] == ["refs/heads/feature/x"]
    swap = plan_push(
        [RefUpdate(B, ZERO, "refs/heads/feature/x"), update],
        current={"refs/heads/feature/x": B},
        fast_forward={},
        previews={"feature-x": "feature/x"},
    )
    assert swap.accepted


@pytest.mark.parametrize(
    ("branch", "tag"),
    [
        ("feature/login", "feature-login"),
        ("UPPER_case", "upper-case"),
        ("--x--", "x"),
        ("a" * 60, "a" * 40),
        ("x" * 39 + "/y", "x" * 39),
        ("ü", None),
    ],
)
def test_preview_tags_are_dns_labels(branch: str, tag: str | None) -> None:
    assert preview_tag(branch) == tag
