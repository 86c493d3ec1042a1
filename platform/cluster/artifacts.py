"""The artifact service: a revision's code and dependencies, for its replicas' init container.

``GET /artifacts/<digest>`` and ``GET /environments/<key>`` answer a gzip'ed tar of the
folder the builder keeps under that name: files (the executable bit kept) and relative
symlinks, nothing else -- what ``fnmesh.functions.fetch`` checks like an uploaded bundle
and hashes to verify the digest. Built folders never change, so each tar is made once
and kept under the service's cache folder.

Who may fetch: the caller sends the pod's projected identity token (``Authorization:
Bearer``) -- over TLS only: the service refuses a request that did not come over TLS
(403, before looking at the token), and ``fnmesh.functions.fetch`` sends the token only
to a server whose certificate chains to the trust anchor. The cluster reviews the token
(TokenReview, audience ``identity.fnmesh.dev``). A service account may fetch what a
Revision of its own namespace, running as that account, uses -- so a replica gets its
own revision's code and nothing of another function's.
Refusals are JSON Status objects, like the API's: 401 without a usable token, 403 for
an artifact the account does not run, 404 for one the builder does not have, 503 when
the cluster cannot review tokens.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import secrets
import stat
import tarfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Route

from fnmesh.platform.api.errors import failure
from fnmesh.platform.build.digest import digest_hex
from fnmesh.platform.mesh.identity.tokenreview import (
    AUDIENCE,
    USER_PREFIX,
    Review,
    ReviewUnavailable,
    TokenReviews,
)
from fnmesh.platform.model.names import check_name
from fnmesh.platform.store import Store, StoreError

log = logging.getLogger("fnmesh.cluster.artifacts")
Obj = dict[str, Any]
MEDIA_TYPE = "application/gzip"
_ENVIRONMENT_KEY = re.compile(r"^[0-9a-f]{64}$")
ARTIFACTS, ENVIRONMENTS = "artifacts", "environments"


# -- decisions (pure) --------------------------------------------------------------------


def requester(review: Review, audience: str = AUDIENCE) -> tuple[str, str] | str:
    """(namespace, service account) the reviewed token belongs to, or why it is refused."""
    if not review.authenticated:
        why = f": {review.error}" if review.error else ""
        return f"the token was not accepted by the cluster{why}"
    if audience not in review.audiences:
        return f"the token is not bound to the audience {audience!r}: send the projected token"
    namespace, _, account = review.username.removeprefix(USER_PREFIX).partition(":")
    if (
        not review.username.startswith(USER_PREFIX)
        or check_name(namespace, limit=63)
        or check_name(account, limit=253)
    ):
        return f"{review.username!r} is not a service account: send a pod's projected token"
    return namespace, account


def runs(revision: Obj, account: str, *, digest: str | None, environment: str | None) -> bool:
    """Whether ``revision`` runs as ``account`` with that artifact (or environment)."""
    spec = revision.get("spec") or {}
    artifact = spec.get("artifact") or {}
    if (spec.get("serviceAccount") or spec.get("function")) != account:
        return False
    if digest is not None:
        return bool(artifact.get("digest") == digest)
    return environment is not None and artifact.get("environment") == environment


# -- tars --------------------------------------------------------------------------------


def write_tar(folder: Path, target: Path) -> None:
    """Write ``folder``'s files and symlinks as a tar.gz at ``target`` (atomically)."""
    partial = target.with_name(f".{target.name}.{secrets.token_hex(4)}")
    try:
        with tarfile.open(partial, "w:gz", compresslevel=5, format=tarfile.PAX_FORMAT) as tar:
            for path in sorted(_entries(folder)):
                info, source = _member(folder, path)
                if source is None:
                    tar.addfile(info)
                    continue
                with source:
                    tar.addfile(info, source)
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)


def _entries(folder: Path) -> list[str]:
    found = []
    for parent, dirs, files in os.walk(folder):
        for name in [*files, *(d for d in dirs if os.path.islink(os.path.join(parent, d)))]:
            found.append(os.path.relpath(os.path.join(parent, name), folder))
    return found


def _member(folder: Path, relative: str) -> tuple[tarfile.TarInfo, BinaryIO | None]:
    path = folder / relative
    info = tarfile.TarInfo(relative.replace(os.sep, "/"))
    status = path.lstat()
    if stat.S_ISLNK(status.st_mode):
        info.type = tarfile.SYMTYPE
        info.linkname = os.readlink(path)
        info.mode = 0o777
        return info, None
    if not stat.S_ISREG(status.st_mode):
        raise OSError(f"{path} is neither a file nor a symlink: the artifact cannot be served")
    info.size = status.st_size
    info.mode = 0o755 if status.st_mode & 0o111 else 0o644
    return info, path.open("rb")


# -- the service -------------------------------------------------------------------------


class ArtifactService:
    """The two routes above, over the builder's folders (see the module's docstring)."""

    def __init__(
        self,
        *,
        store: Store,
        reviews: TokenReviews,
        artifact_dir: Callable[[str], Path],
        environment_dir: Callable[[str], Path],
        cache: Path,
        audience: str = AUDIENCE,
    ) -> None:
        self.store = store
        self.reviews = reviews
        self.artifact_dir = artifact_dir
        self.environment_dir = environment_dir
        self.cache = cache
        self.audience = audience
        self._locks: dict[Path, asyncio.Lock] = {}
        for kind in (ARTIFACTS, ENVIRONMENTS):
            (cache / kind).mkdir(parents=True, exist_ok=True)

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/artifacts/{digest}", self.artifact, methods=["GET"]),
                Route("/environments/{key}", self.environment, methods=["GET"]),
            ]
        )

    async def artifact(self, request: Request) -> Response:
        digest = request.path_params["digest"]
        try:
            hexpart = digest_hex(digest)
        except ValueError as error:
            return failure(400, str(error))
        return await self._serve(
            request, ARTIFACTS, hexpart, self.artifact_dir(digest), digest=digest
        )

    async def environment(self, request: Request) -> Response:
        key = request.path_params["key"]
        if not _ENVIRONMENT_KEY.match(key):
            return failure(
                400, f"environment key {key!r} is not 64 hex digits: copy it from the revision"
            )
        return await self._serve(
            request, ENVIRONMENTS, key, self.environment_dir(key), environment=key
        )

    async def _serve(
        self,
        request: Request,
        kind: str,
        name: str,
        folder: Path,
        *,
        digest: str | None = None,
        environment: str | None = None,
    ) -> Response:
        if request.url.scheme != "https":
            return failure(
                403,
                "the artifact service answers over https only: the identity token must not "
                "travel in plaintext; use the https:// artifact URL (FNMESH_ARTIFACT_URL)",
            )
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return failure(
                401, "send the pod's projected identity token: 'Authorization: Bearer <token>'"
            )
        try:
            review = await self.reviews.review(token.strip(), [self.audience])
        except ReviewUnavailable as error:
            return failure(503, str(error))
        who = requester(review, self.audience)
        if isinstance(who, str):
            return failure(401, who)
        namespace, account = who
        try:
            revisions, _ = await asyncio.to_thread(self.store.list, "Revision", namespace)
        except StoreError as error:  # e.g. a namespace outside the platform's (rbac.namespaces)
            return failure(error.status, f"cannot read the revisions of {namespace}: {error}")
        if not any(runs(r, account, digest=digest, environment=environment) for r in revisions):
            what = digest or environment
            return failure(
                403,
                f"service account {namespace}/{account} runs no revision using {kind} {what}",
            )
        if not await asyncio.to_thread(folder.is_dir):
            return failure(404, f"{kind} {digest or environment} is not kept by this platform")
        target = self.cache / kind / f"{name}.tar.gz"
        async with self._locks.setdefault(target, asyncio.Lock()):
            if not await asyncio.to_thread(target.is_file):
                await asyncio.to_thread(write_tar, folder, target)
                log.info("%s %s packed for %s/%s", kind, name, namespace, account)
        return FileResponse(target, media_type=MEDIA_TYPE, filename=None)
