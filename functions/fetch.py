"""A replica's init container: fetch the revision's artifact (and environment), verified.

    python -m fnmesh.functions.fetch --url https://... --digest sha256:... --dest DIR \\
        --token-file FILE --server-identity NAME [--trust-anchors FILE] \\
        [--environment-url https://... --environment-dest DIR]

The artifact service answers a tar (gzip'ed) of the built source; this checks it exactly
as the builder checks an uploaded bundle (``fnmesh.platform.build.bundle``: no absolute
or ``..`` paths, no links out of the tree, no hard links or devices, size and file
limits), unpacks it into a fresh folder next to ``--dest``, hashes what it wrote and only
then puts it in place -- when the hash is ``--digest``. A tampered or truncated artifact
never reaches the runtime. The dependency environment has no digest of its own (its key
names its inputs, not its files): it gets the same safety checks and limits of its own.

The request carries the pod's projected identity token (``--token-file``) as a bearer
token, so it goes only over TLS to a server whose certificate chains to the platform's
trust anchor (``--trust-anchors``, else the PEM in ``$FNMESH_TRUST_ANCHORS``) and names
``--server-identity``: an ``http://`` URL, or a fetch without trust anchors, is refused
before the token is read. Redirects are not followed. Transient failures (the API
restarting, a 5xx) are retried a few times; a refusal (4xx) or a bad artifact is not.
Standard library only, plus the builder's checks.

Exit status: 0 done, 2 bad arguments, 3 the artifact was refused (unsafe, over a limit,
or not the digest), 4 it could not be downloaded.
"""

from __future__ import annotations

import argparse
import http.client
import os
import secrets
import shutil
import socket
import ssl
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

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
TRUST_ANCHORS_ENV = "FNMESH_TRUST_ANCHORS"


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


@dataclass(frozen=True, slots=True)
class Tls:
    """How the artifact service is checked: the anchors its chain must reach, its name."""

    context: ssl.SSLContext
    server_identity: str


def tls_for(trust_anchors_pem: str, server_identity: str) -> Tls:
    """A client context that trusts only ``trust_anchors_pem`` and checks the name."""
    try:
        context = ssl.create_default_context(cadata=trust_anchors_pem)
    except (ssl.SSLError, ValueError) as error:
        raise Refused(f"the trust anchors are not PEM certificates: {error}") from None
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return Tls(context, server_identity)


def check_url(url: str, what: str) -> str | None:
    """Why the token may not be sent to ``url``, or None."""
    parts = urlsplit(url)
    if parts.scheme != "https" or not parts.hostname:
        return (
            f"{what} {url!r} is not an https:// URL: the identity token is only sent over TLS "
            "to the platform's artifact service; give its https:// address (the operator's "
            "artifact_url)"
        )
    return None


class _Connection(http.client.HTTPSConnection):
    """HTTPS to ``host`` whose certificate must name ``server_identity``, not the host."""

    def __init__(self, host: str, port: int | None, tls: Tls, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout, context=tls.context)
        self._tls = tls

    def connect(self) -> None:
        self.sock = socket.create_connection((self.host, self.port), self.timeout)
        self.sock = self._tls.context.wrap_socket(
            self.sock, server_hostname=self._tls.server_identity
        )


def download(url: str, token: str, limit: int, timeout: float, tls: Tls) -> bytes:
    """The whole body of ``url``; Refused when it is over ``limit`` bytes or not https."""
    why = check_url(url, "the URL")
    if why:
        raise Refused(why)
    parts = urlsplit(url)
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    connection = _Connection(parts.hostname or "", parts.port, tls, timeout)
    try:
        connection.request(
            "GET",
            target or "/",
            headers={"Authorization": f"Bearer {token}", "Accept": "application/gzip"},
        )
        response = connection.getresponse()
        if response.status != 200:
            detail = response.read(2000).decode("utf-8", "replace").strip()
            raise DownloadFailed(
                f"{url} answered {response.status}: {detail or response.reason}",
                transient=response.status >= 500 or response.status == 429,
            )
        body = bytearray()
        while chunk := response.read(_CHUNK):
            body += chunk
            if len(body) > limit:
                raise Refused(f"{url} sent more than {limit} bytes: refusing it")
        return bytes(body)
    except ssl.SSLCertVerificationError as error:
        raise DownloadFailed(
            f"{url} is not the platform's artifact service: its certificate does not chain to "
            f"the trust anchors for {tls.server_identity!r} ({error.verify_message})",
            transient=False,
        ) from None
    except (OSError, http.client.HTTPException) as error:
        raise DownloadFailed(f"{url} could not be fetched: {error}", transient=True) from None
    finally:
        connection.close()


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


def fetch_one(
    fetch: Fetch, token: str, tls: Tls, *, attempts: int, delay: float, timeout: float
) -> str:
    """Download and install ``fetch``, retrying transient failures; the digest."""
    for attempt in range(1, attempts + 1):
        try:
            data = download(fetch.url, token, fetch.limits.max_bundle_bytes, timeout, tls)
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
    parser.add_argument(
        "--server-identity",
        help="the name the artifact service's certificate must carry (default: the URL's host)",
    )
    parser.add_argument(
        "--trust-anchors",
        type=Path,
        help=f"PEM file of the platform's trust anchors (default: ${TRUST_ANCHORS_ENV})",
    )
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
    for flag, url in (("--url", args.url), ("--environment-url", args.environment_url)):
        why = check_url(url, flag) if url is not None else None
        if why:
            parser.error(why)
    try:
        digest_hex(args.digest)
    except ValueError as error:
        parser.error(str(error))
    return args


def trust_anchors(args: argparse.Namespace, env: Mapping[str, str]) -> str:
    """The PEM of the trust anchors; ValueError saying where to put them when missing."""
    if args.trust_anchors is not None:
        try:
            return str(args.trust_anchors.read_text(encoding="utf-8"))
        except OSError as error:
            raise ValueError(f"cannot read --trust-anchors {args.trust_anchors}: {error}") from None
    pem = env.get(TRUST_ANCHORS_ENV, "")
    if "-----BEGIN CERTIFICATE-----" not in pem:
        raise ValueError(
            f"no trust anchors: give --trust-anchors FILE or ${TRUST_ANCHORS_ENV} (the "
            "platform's PEM), so the artifact service's certificate can be checked before "
            "the token is sent"
        )
    return pem


def main(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> int:
    args = parse_args(argv)
    try:
        anchors = trust_anchors(args, os.environ if env is None else env)
        tls = tls_for(anchors, args.server_identity or urlsplit(args.url).hostname or "")
    except (ValueError, Refused) as error:
        print(f"fetch: {error}", file=sys.stderr)
        return EXIT_USAGE
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
                fetch,
                token,
                tls,
                attempts=args.attempts,
                delay=args.retry_delay,
                timeout=args.timeout,
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
