"""The builder: a source bundle (tar or tar.gz bytes) becomes a content-addressed artifact.

``check_bundle`` and ``read_member`` look at a bundle without writing anything; ``pack``
turns a folder into a bundle; ``Builder.build`` stores the source under its digest and
installs its ``requirements.txt`` into a cached environment. What belongs here: bundle
safety and limits, packing and ignore rules, digests, the environment cache and the build
log. Nothing here knows about functions, revisions or the store.
"""

from fnmesh.platform.build.builder import Builder, BuildFailed, BuildResult
from fnmesh.platform.build.bundle import (
    BuildLimits,
    BundleError,
    BundleMember,
    check_bundle,
    read_member,
)
from fnmesh.platform.build.digest import digest_hex
from fnmesh.platform.build.extract import bundle_digest
from fnmesh.platform.build.pack import pack

__all__ = [
    "BuildFailed",
    "BuildLimits",
    "BuildResult",
    "Builder",
    "BundleError",
    "BundleMember",
    "bundle_digest",
    "check_bundle",
    "digest_hex",
    "pack",
    "read_member",
]
