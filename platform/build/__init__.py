"""The builder: a source bundle (tar or tar.gz bytes) becomes a content-addressed artifact.

``check_bundle`` and ``read_member`` look at a bundle without writing anything; ``pack``
turns a folder into a bundle; ``Builder.build`` stores the source under its digest, sealed,
and installs its ``requirements.txt`` into a cached environment with pip sandboxed
(``SandboxSettings``). ``verify_artifact(path, digest)`` is the check a runtime makes before
starting a replica from an artifact. What belongs here: bundle
safety and limits, packing and ignore rules, digests, the environment cache and the build
log. Nothing here knows about functions, revisions or the store.
"""

from fnmesh.platform.build.builder import Builder, BuildFailed, BuildResult
from fnmesh.platform.build.bundle import (
    BuildLimits,
    Bundle,
    BundleError,
    BundleMember,
    check_bundle,
    read_member,
)
from fnmesh.platform.build.digest import digest_hex
from fnmesh.platform.build.extract import bundle_digest
from fnmesh.platform.build.pack import pack
from fnmesh.platform.build.sandbox import BuildUser, SandboxSettings
from fnmesh.platform.build.seal import TreeTampered, verify_artifact, verify_environment

__all__ = [
    "BuildFailed",
    "BuildLimits",
    "BuildResult",
    "BuildUser",
    "Builder",
    "Bundle",
    "BundleError",
    "BundleMember",
    "SandboxSettings",
    "TreeTampered",
    "bundle_digest",
    "check_bundle",
    "digest_hex",
    "pack",
    "read_member",
    "verify_artifact",
    "verify_environment",
]
