"""What a push's ref updates mean for the function (pure).

- ``refs/heads/main``: build and deploy the commit; deleting it is refused.
- any other branch: build a preview of the commit under a tag named after the branch;
  deleting the branch removes the preview.
- tags (``refs/tags/*``): kept as pushed, nothing is built.
- anything else (``refs/notes/*``, ``refs/for/*``, ...): refused.

Like git with ``receive.denyNonFastForwards``, a branch update that does not fast-forward
is refused even when forced, and so is an update whose old value is not the ref's current
value (another push got there first). One refused update refuses the whole push: nothing
is built then.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

MAIN_BRANCH = "main"
HEADS = "refs/heads/"
TAGS = "refs/tags/"
MAX_TAG = 40


def is_zero(object_id: str) -> bool:
    """Whether ``object_id`` is git's null id (40 or 64 zeros): no ref before or after."""
    return not object_id.strip("0")


@dataclass(frozen=True, slots=True)
class RefUpdate:
    old: str
    new: str
    ref: str

    @property
    def branch(self) -> str | None:
        return self.ref[len(HEADS) :] if self.ref.startswith(HEADS) else None

    @property
    def created(self) -> bool:
        return is_zero(self.old)

    @property
    def deleted(self) -> bool:
        return is_zero(self.new)


@dataclass(frozen=True, slots=True)
class Deploy:
    """Build ``update.new`` and roll it out as the function's next revision."""

    update: RefUpdate


@dataclass(frozen=True, slots=True)
class BuildPreview:
    """Build ``update.new`` and record it as the preview of ``branch`` under ``tag``."""

    update: RefUpdate
    branch: str
    tag: str


@dataclass(frozen=True, slots=True)
class RemovePreview:
    update: RefUpdate
    branch: str
    tag: str


@dataclass(frozen=True, slots=True)
class Keep:
    """Let the update through without building anything (tags)."""

    update: RefUpdate


Action = Deploy | BuildPreview | RemovePreview | Keep


@dataclass(frozen=True, slots=True)
class Refusal:
    ref: str
    message: str


@dataclass(frozen=True, slots=True)
class PushPlan:
    actions: tuple[Action, ...]
    refusals: tuple[Refusal, ...]

    @property
    def accepted(self) -> bool:
        return not self.refusals


def needs_ancestry(update: RefUpdate) -> bool:
    """Whether deciding ``update`` needs to know if ``old`` is an ancestor of ``new``."""
    return update.branch is not None and not update.created and not update.deleted


def preview_tag(branch: str) -> str | None:
    """The traffic tag of a branch's preview: a DNS label, or None when none can be made."""
    tag = re.sub(r"[^a-z0-9]+", "-", branch.lower()).strip("-")
    return tag[:MAX_TAG].rstrip("-") or None


def plan_push(
    updates: Iterable[RefUpdate],
    *,
    current: Mapping[str, str],
    fast_forward: Mapping[str, bool],
    previews: Mapping[str, str] | None = None,
    main_branch: str = MAIN_BRANCH,
) -> PushPlan:
    """Decide every update. ``current`` maps existing refs to their ids; ``fast_forward``
    says, for each update that ``needs_ancestry``, whether ``old`` is an ancestor of ``new``;
    ``previews`` maps the tags of recorded previews to their branches.
    """
    actions: list[Action] = []
    refusals: list[Refusal] = []
    owners = dict(previews or {})
    for update in updates:
        decided = _decide(update, current, fast_forward, main_branch)
        if isinstance(decided, BuildPreview):
            owner = owners.setdefault(decided.tag, decided.branch)
            if owner != decided.branch:
                decided = Refusal(
                    update.ref,
                    f"{update.ref}: its preview tag {decided.tag!r} is taken by branch "
                    f"{owner!r}; rename the branch (or delete {owner!r})",
                )
        elif isinstance(decided, RemovePreview) and owners.get(decided.tag) == decided.branch:
            del owners[decided.tag]
        if isinstance(decided, Refusal):
            refusals.append(decided)
        else:
            actions.append(decided)
    return PushPlan(tuple(actions), tuple(refusals))


def _decide(
    update: RefUpdate,
    current: Mapping[str, str],
    fast_forward: Mapping[str, bool],
    main_branch: str,
) -> Action | Refusal:
    ref = update.ref
    if not ref.startswith((HEADS, TAGS)):
        return Refusal(ref, f"{ref}: only branches and tags can be pushed to a function")
    now = current.get(ref)
    if (now or "") != ("" if update.created else update.old):
        return Refusal(
            ref,
            f"{ref}: changed on the platform while this push was on its way (another push "
            "got there first); fetch, merge and push again",
        )
    branch = update.branch
    if branch is None:
        return Keep(update)
    if needs_ancestry(update) and not fast_forward.get(ref, False):
        return Refusal(
            ref,
            f"{ref}: non-fast-forward update refused; the function's history is never "
            "rewritten: fetch, merge (or rebase) and push again",
        )
    if branch == main_branch:
        if update.deleted:
            return Refusal(
                ref,
                f"{ref}: deleting {main_branch} is refused; it holds the function's deployed "
                "source (delete the function with `fn delete` instead)",
            )
        return Deploy(update)
    tag = preview_tag(branch)
    if tag is None:
        return Refusal(
            ref,
            f"{ref}: a preview needs a branch name with letters or digits in it; rename the branch",
        )
    if update.deleted:
        return RemovePreview(update, branch, tag)
    return BuildPreview(update, branch, tag)
