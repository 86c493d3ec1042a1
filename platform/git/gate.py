"""The build gates the push: what the pre-receive hook asks the platform to decide.

For the pushed ref updates: plan them (``refs.plan_push``), refuse the push when any is
refused, build and deploy ``main`` through the same ``DeployService`` as ``fn deploy`` and
wait for its revision, build previews of other branches and serve each from a revision of
its own under the branch's tag (``preview_revisions``), then drop the previews of deleted
branches. Every line -- the build log included -- goes to ``say`` as it happens; the
answer (True: let the refs move) comes last. Nothing here speaks HTTP.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from fnmesh.platform.build import BuildFailed, BuildLimits, BuildResult, BundleError
from fnmesh.platform.deploy import DeployResult, NameMismatch
from fnmesh.platform.deploy.service import LogSink, new_build_id
from fnmesh.platform.git.preview_revisions import PreviewStore, drop_preview, serve_preview
from fnmesh.platform.git.previews import Preview, PreviewRecords
from fnmesh.platform.git.readiness import RevisionFailed, wait_ready
from fnmesh.platform.git.refs import (
    BuildPreview,
    Deploy,
    Keep,
    PushPlan,
    RefUpdate,
    RemovePreview,
    needs_ancestry,
    plan_push,
)
from fnmesh.platform.git.repos import GitFailed, Objects, Repositories
from fnmesh.platform.git.source import SourceRefused, commit_bundle
from fnmesh.platform.git.urls import RepoRef
from fnmesh.platform.model import Manifest, ValidationError
from fnmesh.platform.store import NotFound

log = logging.getLogger("fnmesh.git")
Say = Callable[[str], Awaitable[None]]
PREFIX = "fnmesh: "


class Deployer(Protocol):
    """The deploy service's two steps (``fnmesh.platform.deploy.DeployService``)."""

    limits: BuildLimits

    def prepare(self, namespace: str, name: str | None, bundle: bytes) -> Manifest: ...

    async def deploy(
        self,
        manifest: Manifest,
        bundle: bytes,
        *,
        build_id: str,
        commit: str | None = None,
        log: LogSink | None = None,
    ) -> DeployResult: ...


class ArtifactBuilder(Protocol):
    async def build(
        self, bundle: bytes, *, build_id: str, log: LogSink | None = None
    ) -> BuildResult: ...


@dataclass(frozen=True, slots=True)
class Push:
    """One receive-pack run: which function, and its repository on disk."""

    repo: RepoRef
    path: Path
    user: str


class Refused(Exception):
    """The push is refused; the message is the reason shown to the pusher."""


class PushGate:
    def __init__(
        self,
        repos: Repositories,
        deployer: Deployer,
        builder: ArtifactBuilder,
        functions: PreviewStore,
        *,
        scratch: Path,
        ready_timeout: float = 120.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.repos = repos
        self.deployer = deployer
        self.builder = builder
        self.functions = functions
        self.scratch = scratch
        self.ready_timeout = ready_timeout
        self.clock = clock

    async def decide(
        self, push: Push, updates: Sequence[RefUpdate], quarantine: Path | None, say: Say
    ) -> bool:
        """Build what the push asks for; True when the refs may move."""
        objects = Objects(push.path, quarantine)
        previews = PreviewRecords(push.path)
        try:
            plan = await self._plan(objects, updates, previews)
            if not plan.accepted:
                for refusal in plan.refusals:
                    await say(f"error: {refusal.message}")
                return False
            for action in plan.actions:
                if isinstance(action, Deploy):
                    await self._deploy(push, objects, action.update, say)
                elif isinstance(action, BuildPreview):
                    await self._preview(push, objects, action, previews, say)
            for action in plan.actions:
                if isinstance(action, RemovePreview):
                    removed = previews.remove(action.tag)
                    drop_preview(self.functions, push.repo.namespace, push.repo.name, action.tag)
                    if removed:
                        await say(f"{PREFIX}preview {action.tag!r} of {action.branch} removed")
                elif isinstance(action, Keep):
                    await say(f"{PREFIX}{action.update.ref} updated (nothing to build)")
        except Refused as refused:
            await say(f"error: {refused}")
            return False
        except GitFailed as error:
            log.warning("push to %s: %s", push.repo.describe(), error)
            await say(f"error: the platform could not read the pushed objects: {error}")
            return False
        except Exception as error:  # the pusher is waiting on these lines: say why
            log.exception("push to %s failed", push.repo.describe())
            await say(f"error: the push failed on the platform: {type(error).__name__}: {error}")
            return False
        return True

    async def _plan(
        self, objects: Objects, updates: Sequence[RefUpdate], previews: PreviewRecords
    ) -> PushPlan:
        current = await self.repos.refs(objects.repo)
        fast_forward = {
            u.ref: await self.repos.is_ancestor(objects, u.old, u.new)
            for u in updates
            if needs_ancestry(u)
        }
        return plan_push(
            updates, current=current, fast_forward=fast_forward, previews=previews.owners()
        )

    async def _source(self, push: Push, objects: Objects, commit: str) -> tuple[bytes, Manifest]:
        try:
            bundle = await commit_bundle(
                self.repos,
                objects,
                commit,
                push.repo.subdir,
                scratch=self.scratch,
                limits=self.deployer.limits,
            )
            # bundle checks inflate and parse the whole tar: off the event loop
            manifest = await asyncio.to_thread(
                self.deployer.prepare, push.repo.namespace, push.repo.name, bundle
            )
        except SourceRefused as error:
            raise Refused(str(error)) from None
        except BundleError as error:
            raise Refused(f"the source was refused: {error}") from None
        except ValidationError as error:
            raise Refused(error.render()) from None
        except NameMismatch as error:
            raise Refused(
                f"{error} (this repository deploys function {push.repo.describe()})"
            ) from None
        return bundle, manifest

    async def _deploy(self, push: Push, objects: Objects, update: RefUpdate, say: Say) -> None:
        commit = update.new
        started = self.clock()
        await say(f"{PREFIX}building {push.repo.describe()} from {update.ref} at {commit[:12]}")
        bundle, manifest = await self._source(push, objects, commit)
        build_id = new_build_id()

        async def build_line(line: str) -> None:
            await say(f"  {line}")

        try:
            result = await self.deployer.deploy(
                manifest, bundle, build_id=build_id, commit=commit, log=build_line
            )
        except BuildFailed as failed:
            raise Refused(
                f"build {build_id} failed: {failed.reason}; the running revision keeps serving"
            ) from None
        await say(f"{PREFIX}rolling out generation {result.generation}")
        try:
            served = await wait_ready(
                self.functions,
                push.repo.namespace,
                push.repo.name,
                result.generation,
                timeout=self.ready_timeout,
                clock=self.clock,
            )
        except RevisionFailed as failed:
            raise Refused(f"{failed}; the previous revision keeps serving") from None
        except TimeoutError as error:
            raise Refused(f"{error}; the previous revision keeps serving") from None
        took = self.clock() - started
        await say(
            f"{PREFIX}revision {served.revision} serves commit {commit[:12]} "
            f"(built and rolled out in {took:.1f}s)"
        )
        await say(f"{PREFIX}URL: {served.url}")

    async def _preview(
        self,
        push: Push,
        objects: Objects,
        action: BuildPreview,
        previews: PreviewRecords,
        say: Say,
    ) -> None:
        commit = action.update.new
        await say(
            f"{PREFIX}building a preview of {push.repo.describe()} from branch "
            f"{action.branch} at {commit[:12]}"
        )
        bundle, manifest = await self._source(push, objects, commit)
        build_id = new_build_id()

        async def build_line(line: str) -> None:
            await say(f"  {line}")

        try:
            built = await self.builder.build(bundle, build_id=build_id, log=build_line)
        except BuildFailed as failed:
            raise Refused(f"build {build_id} failed: {failed.reason}") from None
        preview = Preview(
            branch=action.branch,
            tag=action.tag,
            commit=commit,
            build=build_id,
            digest=built.digest,
            environment=built.env_dir.name if built.env_dir is not None else None,
            handler=manifest.spec.handler,
        )
        previews.save(preview)
        await say(f"{PREFIX}preview {action.tag!r} built ({built.digest[:19]})")
        namespace, name = push.repo.namespace, push.repo.name
        revision = serve_preview(self.functions, namespace, name, preview, manifest.spec)
        if revision is None:
            await say(
                f"{PREFIX}{push.repo.describe()} has no deployed main branch yet: push main "
                "first, then push this branch again to serve its preview"
            )
            return
        url = self._tag_url(namespace, name, action.tag)
        await say(f"{PREFIX}revision {revision} serves the preview at {url or 'its tag'}")

    def _tag_url(self, namespace: str, name: str, tag: str) -> str | None:
        """Where a tag reaches the function: its URL with ``@<tag>`` after the name."""
        try:
            url = self.functions.get("Function", namespace, name).get("status", {}).get("url")
        except NotFound:
            return None
        return f"{str(url).rstrip('/')}@{tag}/" if url else None
