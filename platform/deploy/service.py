"""The deploy service: bundle -> checked manifest -> build -> Function spec."""

from __future__ import annotations

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
    ) -> None:
        self.store = store
        self.builder = builder
        self.limits = limits
        self.secrets = secrets
        self.resources = resources  # the platform's maximums, checked before a build

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
    ) -> DeployResult:
        """Build, then create or update the function. Raises BuildFailed on a failed build."""
        built = await self.builder.build(bundle, build_id=build_id, log=log)
        environment = built.env_dir.name if built.env_dir is not None else None
        artifact = Artifact(
            digest=built.digest, environment=environment, build=build_id, commit=commit
        )
        spec = replace(manifest.spec, artifact=artifact)
        for _ in range(10):
            try:
                current = Function.from_dict(
                    self.store.get("Function", manifest.namespace, manifest.name)
                )
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


def _keep_traffic(spec: FunctionSpec, current: Function) -> FunctionSpec:
    """Weights and tags set by hand (``fn traffic``, previews) outlive a deploy whose
    ``fn.yaml`` says nothing about traffic; one that declares traffic replaces them."""
    if spec.traffic or not current.spec.traffic:
        return spec
    return replace(spec, traffic=list(current.spec.traffic))
