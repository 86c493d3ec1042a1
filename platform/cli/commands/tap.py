"""``fn tap NAME``: the requests a function's replicas are answering, live.

The API fans in the tap events of every replica proxy of the function (request-init,
response-init, response-end; see ``fnmesh.platform.mesh.tap``) as NDJSON. Each becomes one
line, the way ``linkerd viz tap`` prints them::

    req id=4f2a src=gateway... dst=hello... tls=true :method=GET :authority=... :path=/x
    rsp id=4f2a src=gateway... dst=hello... tls=true :status=200 latency=1.2ms
    end id=4f2a src=gateway... dst=hello... tls=true duration=1.2ms bytes=10

``-o json`` prints the events themselves, one JSON object a line. Sessions start on the
replicas with their next stats report, so the first events may take a second to come.
Proxies tap at most 100 requests a second each; what is over that is not shown.
"""

from __future__ import annotations

import argparse
import http.client
import json
import sys
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

from fnmesh.platform.cli.arguments import add_home, add_namespace, connect, namespace
from fnmesh.platform.cli.client import namespaced, set_read_timeout, with_query

KINDS = {"request-init": "req", "response-init": "rsp", "response-end": "end"}
# the API sends a line at least every 15 s; silence for longer means it is gone
READ_TIMEOUT = 60.0
_REMEMBERED = 10_000  # request start times kept to time responses by


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "tap",
        help="watch a function's requests live",
        description=(
            "Print the requests a function's replicas answer, as they happen: one line "
            "when a request arrives (req), when its response starts (rsp) and when it ends "
            "(end). Stop with Ctrl-C."
        ),
    )
    parser.add_argument("name", metavar="NAME")
    add_home(parser)
    add_namespace(parser)
    parser.add_argument("--method", metavar="M", help="only requests with this method")
    parser.add_argument(
        "--path", metavar="PREFIX", type=path_prefix, help="only paths starting with PREFIX"
    )
    parser.add_argument("--revision", metavar="R", help="only requests to revision R")
    parser.add_argument(
        "-o",
        "--output",
        choices=("lines", "json"),
        default="lines",
        help="output format: lines (default) or one JSON event a line",
    )
    parser.set_defaults(run=run)


def path_prefix(value: str) -> str:
    if not value.startswith("/"):
        raise argparse.ArgumentTypeError(f"{value!r} is not a path: it must start with '/'")
    return value


class TapPrinter:
    """Turns tap events into lines; remembers request starts to time their responses."""

    def __init__(self) -> None:
        self._started: OrderedDict[str, float] = OrderedDict()

    def line(self, event: Mapping[str, Any]) -> str | None:
        """The line for ``event``, or None for what is not a tap event (keep-alives)."""
        kind = KINDS.get(str(event.get("type")))
        if kind is None:
            return None
        request_id = str(event.get("id") or "-")
        parts = [
            kind,
            f"id={request_id}",
            f"src={event.get('source') or '-'}",
            f"dst={event.get('destination') or '-'}",
            f"tls={'true' if event.get('tls') else 'false'}",
        ]
        if kind == "req":
            self._remember(request_id, event.get("time"))
            parts += [
                f":method={event.get('method') or '-'}",
                f":authority={event.get('authority') or '-'}",
                f":path={event.get('path') or '-'}",
            ]
            return " ".join(parts)
        took = self._elapsed_ms(request_id, event, forget=kind == "end")
        if kind == "rsp":
            parts += [f":status={event.get('status', '-')}", f"latency={duration(took)}"]
        else:
            parts += [f"duration={duration(took)}", f"bytes={event.get('bytes', '-')}"]
        return " ".join(parts)

    def _remember(self, request_id: str, time: object) -> None:
        if not isinstance(time, int | float):
            return
        self._started[request_id] = float(time)
        if len(self._started) > _REMEMBERED:
            self._started.popitem(last=False)

    def _elapsed_ms(
        self, request_id: str, event: Mapping[str, Any], *, forget: bool
    ) -> float | None:
        """Milliseconds since the request arrived: the proxy's measure where the event has
        one (response-end), else from the times of this event and its request's."""
        start = self._started.pop(request_id, None) if forget else self._started.get(request_id)
        latency = event.get("latencyMs")
        if isinstance(latency, int | float):
            return float(latency)
        time = event.get("time")
        if start is not None and isinstance(time, int | float):
            return max(0.0, (float(time) - start) * 1000.0)
        return None


def duration(ms: float | None) -> str:
    """``850µs``, ``1.2ms``, ``340ms``, ``2.5s``; ``-`` when unknown."""
    if ms is None:
        return "-"
    if ms < 1:
        return f"{ms * 1000:.0f}µs"
    if ms < 100:
        return f"{ms:.1f}ms"
    if ms < 10_000:
        return f"{ms:.0f}ms"
    return f"{ms / 1000:.1f}s"


def run(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    client = connect(args, env)
    ns = namespace(args)
    path = with_query(
        namespaced(ns, "functions", args.name, "tap"),
        {"method": args.method, "path": args.path, "revision": args.revision},
    )
    printer = TapPrinter()
    try:
        with client.open("GET", path, timeout=client.timeout) as response:
            set_read_timeout(response, READ_TIMEOUT)
            print(f"tapping {ns}/{args.name} (Ctrl-C to stop)", file=sys.stderr, flush=True)
            while True:
                try:
                    raw = response.readline()
                except (OSError, http.client.HTTPException) as error:
                    raise client.lost(error) from None
                if not raw:
                    break
                shown = _show(raw, printer, args.output)
                if shown is not None:
                    sys.stdout.write(shown + "\n")
                    sys.stdout.flush()
    except KeyboardInterrupt:
        return 0
    print("the platform ended the tap session", file=sys.stderr)
    return 0


def _show(raw: bytes, printer: TapPrinter, output: str) -> str | None:
    try:
        event = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(event, dict) or event.get("type") not in KINDS:
        return None  # keep-alives and the session's "started" line
    if output == "json":
        return json.dumps(event, ensure_ascii=False)
    return printer.line(event)
