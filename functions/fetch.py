"""A replica's init container: fetch the revision's artifact (and environment), verified.

    python -m fnmesh.functions.fetch --url URL --digest sha256:... --dest DIR \\
        --token-file FILE [--environment-url URL --environment-dest DIR]

The artifact service answers a tar (gzip'ed) of the built source; this checks it exactly
as the builder checks an uploaded bundle (``fnmesh.platform.build.bundle``: no absolute
or ``..`` paths, no links out of the tree, no hard links or devices, size and file
limits), unpacks it into a fresh folder next to ``--dest``, hashes what it wrote and only
then puts it in place -- when the hash is ``--digest``. A tampered or truncated artifact
never reaches the runtime. The dependency environment has no digest of its own (its key
names its inputs, not its files): it gets the same safety checks and limits of its own.

The request carries the pod's projected identity token (``--token-file``) as a bearer
token. Transient failures (the API restarting, a 5xx) are retried a few times; a refusal
(4xx) or a bad artifact is not. Standard library only, plus the builder's checks.

Exit status: 0 done, 2 bad arguments, 3 the artifact was refused (unsafe, over a limit,
or not the digest), 4 it could not be downloaded.
"""

from __future__ import annotations

import argparse
import secrets
import shutil
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from fnmesh.platform.build.bundle import BuildLimits, BundleError, check_bundle
from fnmesh.platform.build.digest import digest_hex
from fnmesh.platform.build.extract import extract_bundle

EXIT_OK, EXIT_USAGE, EXIT_REFUSED, EXIT_DOWNLOAD = 0, 2, 3, 4
ARTIFACT_LIMITS = BuildLimits()
ENVIRONMENT_LIMITS = BuildLimits(
    max_bundle_bytes=1024 * 1024 * 1024,
    max_unpacked_bytes=4 * 1024 * 1024 * 1024,
    max_files=500_000,
)
_CHUNK = 1 << 20


class Refused(Exception):
    """The download is not acceptable; str() says why and what to do."""


class DownloadFailed(Exception):
    """The download did not complete; ``transient`` when trying again may help."""

    def __init__(self, message: str, *, transient: bool) -> None:
        super().__init__(message)
        self.transient = transient


@dataclass(frozen=True, slots=True)
class Fetch:
    url: str
    dest: Path
    limits: BuildLimits
    digest: str | None = None  # verified when given


def download(url: str, token: str, limit: int, timeout: float) -> bytes:
    """The whole body of ``url``; Refused when it is over ``limit`` bytes."""
    request = urllib.request.Request(
        url,
        headers={"Authorization": f"Bearer {token}", "Accept": "application/gzip"},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            body = bytearray()
            while chunk := response.read(_CHUNK):
                body += chunk
                if len(body) > limit:
                    raise Refused(f"{url} sent more than {limit} bytes: refusing it")
            return bytes(body)
    except urllib.error.HTTPError as error:
        detail = error.read(2000).decode("utf-8", "replace").strip()
        raise DownloadFailed(
            f"{url} answered {error.code}: {detail or error.reason}",
            transient=error.code >= 500 or error.code == 429,
        ) from None
    except (urllib.error.URLError, OSError, TimeoutError) as error:
        reason = getattr(error, "reason", error)
        raise DownloadFailed(f"{url} could not be fetched: {reason}", transient=True) from None


def install(data: bytes, fetch: Fetch) -> str:
    """Check ``data``, unpack it beside ``fetch.dest``, verify, move it in; the digest."""
    try:
        check_bundle(data, fetch.limits)
    except BundleError as error:
        raise Refused(f"{fetch.url} is not a safe archive: {error}") from None
    fetch.dest.parent.mkdir(parents=True, exist_ok=True)
    partial = fetch.dest.with_name(f".{fetch.dest.name}.{secrets.token_hex(4)}")
    try:
        try:
            digest, _, _ = extract_bundle(data, fetch.limits, partial)
        except BundleError as error:
            raise Refused(f"{fetch.url} is not a safe archive: {error}") from None
        if fetch.digest is not None and digest != fetch.digest:
            raise Refused(
                f"{fetch.url} holds {digest}, not {fetch.digest}: the artifact was changed "
                "on its way or in the store; it is not used"
            )
        if fetch.dest.exists():
            shutil.rmtree(fetch.dest)
        partial.rename(fetch.dest)
        return digest
    finally:
        shutil.rmtree(partial, ignore_errors=True)


def fetch_one(fetch: Fetch, token: str, *, attempts: int, delay: float, timeout: float) -> str:
    """Download and install ``fetch``, retrying transient failures; the digest."""
    for attempt in range(1, attempts + 1):
        try:
            data = download(fetch.url, token, fetch.limits.max_bundle_bytes, timeout)
        except DownloadFailed as failure:
            if not failure.transient or attempt == attempts:
                raise
            print(f"fetch: {failure}; trying again in {delay:g}s", file=sys.stderr, flush=True)
            time.sleep(delay)
            delay = min(delay * 2, 30.0)
            continue
        return install(data, fetch)
    raise AssertionError("unreachable")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m fnmesh.functions.fetch",
        description="Fetch a revision's artifact (and environment), check it and verify its "
        "digest before putting it in place.",
    )
    parser.add_argument("--url", required=True, help="the artifact service's URL of the artifact")
    parser.add_argument("--digest", required=True, help="the artifact's digest, sha256:<hex>")
    parser.add_argument("--dest", required=True, type=Path, help="where the source goes")
    parser.add_argument("--token-file", required=True, type=Path, help="the bearer token's file")
    parser.add_argument("--environment-url", help="the URL of its dependency environment")
    parser.add_argument("--environment-dest", type=Path, help="where the environment goes")
    parser.add_argument("--attempts", type=int, default=5, help="tries per download (default 5)")
    parser.add_argument("--retry-delay", type=float, default=1.0, help="first wait, in seconds")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds per request")
    args = parser.parse_args(argv)
    if (args.environment_url is None) != (args.environment_dest is None):
        parser.error("--environment-url and --environment-dest go together: give both or neither")
    if args.attempts < 1:
        parser.error("--attempts must be 1 or more")
    try:
        digest_hex(args.digest)
    except ValueError as error:
        parser.error(str(error))
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        token = args.token_file.read_text(encoding="utf-8").strip()
    except OSError as error:
        print(f"fetch: cannot read the token file {args.token_file}: {error}", file=sys.stderr)
        return EXIT_USAGE
    plan = [Fetch(args.url, args.dest, ARTIFACT_LIMITS, args.digest)]
    if args.environment_url:
        plan.append(Fetch(args.environment_url, args.environment_dest, ENVIRONMENT_LIMITS))
    for fetch in plan:
        try:
            digest = fetch_one(
                fetch, token, attempts=args.attempts, delay=args.retry_delay, timeout=args.timeout
            )
        except Refused as refusal:
            print(f"fetch: {refusal}", file=sys.stderr, flush=True)
            return EXIT_REFUSED
        except DownloadFailed as failure:
            print(f"fetch: {failure}", file=sys.stderr, flush=True)
            return EXIT_DOWNLOAD
        print(f"fetch: {fetch.dest} <- {fetch.url} ({digest})", flush=True)
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
