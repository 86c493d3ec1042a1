"""``fn deploy [DIR]``: check fn.yaml, upload the folder, follow the build, wait for ready.

The upload carries the generation of the function it read (``?ifGeneration=``). When
another deploy went first the platform answers 409; the command reads the function
again and uploads the same folder again, at most ``ATTEMPTS`` times. It then waits for
the revision stamped from its own build -- never a later deploy's -- and says so when a
later deploy replaced its upload before that revision was ready (exit code 1).
"""

from __future__ import annotations

import argparse
import http.client
import io
import json
import sys
import tarfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fnmesh.platform.cli.arguments import add_home, add_namespace, connect
from fnmesh.platform.cli.client import ApiClient, ApiFailure, namespaced, set_read_timeout
from fnmesh.platform.cli.errors import CliError, UsageError
from fnmesh.platform.cli.output import size
from fnmesh.platform.cli.readiness import verdict
from fnmesh.platform.cli.views import function_url, items

MANIFEST = "fn.yaml"
POLL = 0.05
ATTEMPTS = 10  # uploads of one deploy when other deploys keep going first


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "deploy",
        help="build and deploy a function folder",
        description="Upload a function folder, build it and wait for its new revision.",
    )
    parser.add_argument(
        "dir", nargs="?", default=".", metavar="DIR", help="the function's folder (default: .)"
    )
    add_home(parser)
    add_namespace(parser)
    parser.add_argument(
        "--no-wait", action="store_true", help="return once built; do not wait for ready"
    )
    parser.add_argument(
        "--timeout",
        type=positive_seconds,
        default=120.0,
        metavar="SECONDS",
        help="give up after this long (default: 120)",
    )
    parser.set_defaults(run=run)


def positive_seconds(value: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        seconds = -1.0
    if not seconds > 0:
        raise argparse.ArgumentTypeError(f"{value!r} is not a positive number of seconds")
    return seconds


@dataclass(frozen=True, slots=True)
class Source:
    name: str
    namespace: str
    bundle: bytes
    files: int


def shown(folder: str) -> str:
    """The folder as the user gave it, with ``./`` in front of a bare relative name."""
    text = folder.rstrip("/") or "/"
    if text.startswith(("/", ".", "~")):
        return text
    return f"./{text}"


def prepare(folder: Path, namespace: str | None) -> Source:
    """Validate ``fn.yaml`` and pack the folder; UsageError lists every problem."""
    from fnmesh.platform.build import BundleError, pack
    from fnmesh.platform.model import ValidationError, parse_manifest

    manifest_path = folder / MANIFEST
    if not folder.is_dir():
        raise UsageError(f"{folder} is not a folder: give the function's folder (default: .)")
    try:
        text = manifest_path.read_bytes()
    except FileNotFoundError:
        raise UsageError(
            f"{manifest_path} not found: a function folder needs an fn.yaml with at least "
            "'name' and 'handler' (`fn init NAME` creates one)"
        ) from None
    except OSError as error:
        raise UsageError(f"cannot read {manifest_path}: {error.strerror}") from None
    try:
        manifest = parse_manifest(text, source=str(manifest_path))
    except ValidationError as error:
        raise UsageError(error.render()) from None
    try:
        bundle = pack(folder)
    except BundleError as error:
        raise UsageError(f"cannot pack {folder}: {error}") from None
    return Source(manifest.name, namespace or manifest.namespace, bundle, count_files(bundle))


def count_files(bundle: bytes) -> int:
    with tarfile.open(fileobj=io.BytesIO(bundle), mode="r:*") as tar:
        return sum(1 for member in tar if not member.isdir())


@dataclass(frozen=True, slots=True)
class Deadline:
    seconds: float
    clock: Callable[[], float]
    start: float

    def left(self) -> float:
        return self.seconds - (self.clock() - self.start)

    def elapsed(self) -> float:
        return self.clock() - self.start


def run(
    args: argparse.Namespace,
    env: Mapping[str, str],
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    source = prepare(Path(args.dir), args.namespace)
    client = connect(args, env)
    deadline = Deadline(args.timeout, clock, clock())
    print(
        f"Deploying {source.name} from {shown(args.dir)} "
        f"({source.files} file{'' if source.files == 1 else 's'}, {size(len(source.bundle))})",
        flush=True,
    )
    built = upload_until_accepted(client, source, deadline, sleep)
    result = built.result
    if not result.get("ok"):
        return report_build_failure(source, built)
    generation = int(result.get("generation") or 0)
    build = str(result.get("build") or "")
    if args.no_wait:
        print(f"Build {build} done; the new revision is starting: see `fn describe {source.name}`")
        return 0
    return wait_ready(client, source, build, generation, deadline, sleep)


def is_conflict(result: Mapping[str, Any]) -> bool:
    return not result.get("ok") and (result.get("conflict") is True or result.get("status") == 409)


def upload_until_accepted(
    client: ApiClient, source: Source, deadline: Deadline, sleep: Callable[[float], None]
) -> Built:
    """Upload with the generation just read; after a 409 (another deploy went first)
    read again and upload again, up to ATTEMPTS times."""
    for attempt in range(1, ATTEMPTS + 1):
        built = upload(client, source, deadline, read_generation(client, source))
        if not is_conflict(built.result):
            return built
        message = str(built.result.get("message") or "another deploy went first")
        if attempt == ATTEMPTS or deadline.left() <= 0:
            raise CliError(
                f"{message}\ngave up after {attempt} attempt{'' if attempt == 1 else 's'}: "
                f"other deploys of {source.namespace}/{source.name} kept going first; "
                "nothing of this upload was deployed. Run `fn deploy` again"
            )
        print(f"  {message}", flush=True)
        print(f"  uploading again (attempt {attempt + 1} of {ATTEMPTS})", flush=True)
        sleep(min(POLL * attempt, max(deadline.left(), 0)))
    raise AssertionError("unreachable")


def read_generation(client: ApiClient, source: Source) -> int:
    """The function's generation now; 0 when it does not exist yet."""
    path = namespaced(source.namespace, "functions", source.name)
    try:
        function = client.get_json(path)
    except ApiFailure as failure:
        if failure.status == 404:
            return 0
        raise
    meta = function.get("metadata") if isinstance(function, dict) else None
    generation = meta.get("generation") if isinstance(meta, dict) else None
    return generation if isinstance(generation, int) and generation > 0 else 0


@dataclass(frozen=True, slots=True)
class Built:
    """The build's result event and the log lines printed while it ran."""

    result: dict[str, Any]
    shown: list[str]


def upload(client: ApiClient, source: Source, deadline: Deadline, generation: int) -> Built:
    """POST the bundle if the function is still at ``generation``; print build log lines
    as they come; return the result event (a 409 becomes a conflict result)."""
    path = namespaced(source.namespace, "functions", source.name, "source")
    path += f"?ifGeneration={generation}"
    headers = {"Content-Type": "application/gzip", "Accept": "application/x-ndjson"}
    seen: list[str] = []
    try:
        with client.open(
            "POST", path, body=source.bundle, headers=headers, timeout=max(deadline.left(), 0.01)
        ) as response:
            while True:
                left = deadline.left()
                if left <= 0:
                    raise timed_out(source, deadline, "the build")
                set_read_timeout(response, left)
                try:
                    raw = response.readline()
                except TimeoutError:
                    raise timed_out(source, deadline, "the build") from None
                except (OSError, http.client.HTTPException) as error:
                    raise client.lost(error) from None
                if not raw:
                    raise CliError(
                        "the platform API ended the build stream without a result: "
                        f"see `fn describe {source.name}`"
                    )
                event = parse_event(raw)
                if event.get("event") == "log":
                    line = str(event.get("line", ""))
                    seen.append(line)
                    print(f"  {line}", flush=True)
                elif event.get("event") == "result":
                    return Built(event, seen)
    except ApiFailure as failure:
        if failure.status == 409:
            conflict = {"ok": False, "status": 409, "conflict": True, "message": failure.message}
            return Built({"event": "result", **conflict}, seen)
        if 400 <= failure.status < 500:
            raise UsageError(failure.message) from None
        raise


def parse_event(raw: bytes) -> dict[str, Any]:
    try:
        event = json.loads(raw)
    except ValueError:
        event = None
    if not isinstance(event, dict):
        text = raw.decode("utf-8", errors="replace").strip()
        raise CliError(f"the platform API sent a build event that is not a JSON object: {text!r}")
    return event


def timed_out(source: Source, deadline: Deadline, what: str) -> CliError:
    return CliError(
        f"{what} of {source.namespace}/{source.name} did not finish within "
        f"{deadline.seconds:g} s (the platform carries on): see `fn describe {source.name}`, "
        "or deploy with a longer --timeout"
    )


def report_build_failure(source: Source, built: Built) -> int:
    result = built.result
    build = result.get("build") or "?"
    message = result.get("message") or "the build failed"
    seen = built.shown
    tail = [str(line) for line in result.get("logTail") or []]
    err = sys.stderr
    print(f"Build {build} of {source.namespace}/{source.name} failed: {message}", file=err)
    if tail and seen[-len(tail) :] != tail:
        print("Last lines of the build log:", file=err)
        for line in tail:
            print(f"  {line}", file=err)
    print(f"Whole log: fn build-log {source.name} {build}", file=err)
    return 1


def wait_ready(
    client: ApiClient,
    source: Source,
    build: str,
    generation: int,
    deadline: Deadline,
    sleep: Callable[[float], None],
) -> int:
    """Wait for the revision stamped from ``build``, and only that one."""
    path = namespaced(source.namespace, "functions", source.name)
    listing = namespaced(source.namespace, "revisions")
    while True:
        function = client.get_json(path)  # before the revisions: see readiness
        revisions = items(client.get_json(listing, {"function": source.name}))
        found = verdict(function, revisions, build, generation)
        if found.state == "superseded":
            print(
                f"Build {build} of {source.namespace}/{source.name}: {found.message}",
                file=sys.stderr,
            )
            print(f"See `fn revisions {source.name}`", file=sys.stderr)
            return 1
        if found.state == "ready":
            print(f"Revision {found.revision} is ready ({deadline.elapsed():.1f} s)")
            print(f"URL: {function_url(function, client.context.gateway)}")
            return 0
        if found.state == "failed":
            revision = found.revision or f"the new revision of {source.name}"
            reason = f"{found.reason}: " if found.reason else ""
            print(
                f"Revision {revision} failed to start: {reason}{found.message or 'not ready'}",
                file=sys.stderr,
            )
            print(f"See `fn logs {source.name}` and `fn describe {source.name}`", file=sys.stderr)
            return 1
        if deadline.left() <= 0:
            what = f"revision {found.revision}" if found.revision else "the new revision"
            raise CliError(
                f"{what} of {source.namespace}/{source.name} was not ready within "
                f"{deadline.seconds:g} s: see `fn describe {source.name}` and "
                f"`fn logs {source.name}`, or deploy with a longer --timeout"
            )
        sleep(min(POLL, max(deadline.left(), 0)))
