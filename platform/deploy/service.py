"""The deploy service: bundle -> checked manifest -> build -> Function spec."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any

from fnmesh.platform.build import (
    Builder,
    BuildLimits,
    BuildResult,
    Bundle,
    check_bundle,
    read_member,
)
from fnmesh.platform.model import Artifact, Function, FunctionSpec, Manifest, parse_manifest
from fnmesh.platform.model.errors import FieldError, ValidationError
from fnmesh.platform.model.manifest import MANIFEST_FILE
from fnmesh.platform.model.resource_policy import ResourcePolicy
from fnmesh.platform.store import Conflict, NotFound, SecretStore, Store
from fnmesh.platform.store.secrets import missing_references

LogSink = Callable[[str], Awaitable[None]]


class NameMismatch(ValueError):
    pass


class DeployConflict(Conflict):
    """The deploy's precondition failed, or the previous change was never stamped."""


@dataclass(frozen=True, slots=True)
class DeployResult:
    function: dict[str, Any]
    generation: int
    build: BuildResult


def new_build_id() -> str:
    return f"b{time.strftime('%Y%m%d%H%M%S', time.gmtime())}-{secrets.token_hex(3)}"


class DeployService:
    def __init__(
        self,
        store: Store,
        builder: Builder,
        limits: BuildLimits,
        secrets: SecretStore | None = None,
        *,
        resources: ResourcePolicy | None = None,
        settle_timeout: float = 15.0,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.builder = builder
        self.limits = limits
        self.secrets = secrets
        self.resources = resources  # the platform's maximums, checked before a build
        self.settle_timeout = settle_timeout  # how long a deploy waits for the last stamp
        self.sleep = sleep
        self.clock = clock

    def prepare(self, namespace: str, name: str | None, bundle: Bundle) -> Manifest:
        """Check the bundle and its ``fn.yaml`` before anything is built or written.

        CPU-heavy (it inflates and parses the whole bundle): callers on an event loop run
        it in a thread.

        Raises BundleError, ValidationError or NameMismatch, each naming what to fix; a
        secret (or a key of one) that ``fn.yaml`` names and the namespace lacks is refused
        here, before the build.
        """
        check_bundle(bundle, self.limits)
        text = read_member(bundle, MANIFEST_FILE, self.limits)
        if text is None:
            raise ValidationError(
                [
                    FieldError(
                        MANIFEST_FILE,
                        "is missing from the source: add an fn.yaml with at "
                        "least 'name' and 'handler' at its root ('fn init' writes one)",
                    )
                ],
                "the source",
            )
        manifest = parse_manifest(text)
        if self.resources is not None:
            refusals = self.resources.refusals(manifest.spec.resources)
            if refusals:
                raise ValidationError(refusals, MANIFEST_FILE)
        if name is not None and manifest.name != name:
            raise NameMismatch(
                f"fn.yaml names the function {manifest.name!r} but it was "
                f"uploaded as {name!r}: make them agree"
            )
        if manifest.namespace != namespace:
            manifest = replace(manifest, namespace=namespace)
        spec = manifest.spec
        missing = missing_references(
            self.secrets, manifest.namespace, spec.secrets, spec.secret_env
        )
        if missing:
            raise ValidationError(missing, MANIFEST_FILE)
        return manifest

    async def deploy(
        self,
        manifest: Manifest,
        bundle: Bundle,
        *,
        build_id: str,
        commit: str | None = None,
        log: LogSink | None = None,
        expect_generation: int | None = None,
    ) -> DeployResult:
        """Build, then create or update the function. Raises BuildFailed on a failed build,
        DeployConflict when ``expect_generation`` (the generation the deployer read; 0: the
        function must not exist) no longer holds, or when the previous change is not
        stamped into a revision within ``settle_timeout``."""
        self.check(manifest.namespace, manifest.name, expect_generation)
        built = await self.builder.build(bundle, build_id=build_id, log=log)
        environment = built.env_dir.name if built.env_dir is not None else None
        artifact = Artifact(
            digest=built.digest, environment=environment, build=build_id, commit=commit
        )
        spec = replace(manifest.spec, artifact=artifact)
        for _ in range(10):
            try:
                current = await self._settled(manifest.namespace, manifest.name, expect_generation)
            except NotFound:
                try:
                    body = self.store.create(replace(manifest.function(), spec=spec).to_dict())
                except Conflict:
                    continue
                return DeployResult(body, int(body["metadata"]["generation"]), built)
            try:
                body = self.store.update(
                    replace(current, spec=_keep_traffic(spec, current)).to_dict()
                )
            except Conflict:
                continue
            return DeployResult(body, int(body["metadata"]["generation"]), built)
        raise Conflict(
            f"function {manifest.namespace}/{manifest.name} kept changing during "
            "the deploy: try again"
        )

    def check(self, namespace: str, name: str, expect_generation: int | None) -> Function | None:
        """The function as it is now, if ``expect_generation`` holds; else DeployConflict."""
        try:
            current = Function.from_dict(self.store.get("Function", namespace, name))
        except NotFound:
            if expect_generation:
                raise DeployConflict(
                    f"function {namespace}/{name} was deleted since this deploy read it "
                    f"(generation {expect_generation}): read it again and redeploy"
                ) from None
            return None
        generation = current.metadata.generation or 1
        if expect_generation is not None and expect_generation != generation:
            read = (
                "did not exist"
                if expect_generation == 0
                else f"was at generation {expect_generation}"
            )
            raise DeployConflict(
                f"function {namespace}/{name} changed since this deploy read it (it {read}, "
                f"now generation {generation}): another deploy or change went first; read "
                "it again and redeploy"
            )
        return current

    async def _settled(self, namespace: str, name: str, expect_generation: int | None) -> Function:
        """The function once its current generation is stamped (raises NotFound when it
        does not exist): replacing a spec the controller has not seen yet would lose it."""
        deadline = self.clock() + self.settle_timeout
        while True:
            current = self.check(namespace, name, expect_generation)
            if current is None:
                raise NotFound(f"Function {namespace}/{name} not found")
            generation = current.metadata.generation or 1
            if current.spec.artifact is None or current.status.observed_generation == generation:
                return current
            if self.clock() >= deadline:
                build = current.spec.artifact.build or "?"
                raise DeployConflict(
                    f"the previous deploy of {namespace}/{name} (build {build}, generation "
                    f"{generation}) has not been stamped into a revision after "
                    f"{self.settle_timeout:g} s, and replacing it now would lose it: try "
                    f"again shortly, and see `fn describe {name}` (is the controller running?)"
                )
            await self.sleep(0.02)


def _keep_traffic(spec: FunctionSpec, current: Function) -> FunctionSpec:
    """Weights and tags set by hand (``fn traffic``, previews) outlive a deploy whose
    ``fn.yaml`` says nothing about traffic; one that declares traffic replaces them."""
    if spec.traffic or not current.spec.traffic:
        return spec
    return replace(spec, traffic=list(current.spec.traffic))
