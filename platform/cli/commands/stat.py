"""``fn stat NAME``: a function's golden metrics per revision, from its proxies' reports.

Success rate (responses that are not 5xx), requests per second and latency percentiles
over the last ``--window`` (default 1m), as the platform's mesh telemetry has them.
Percentiles are estimated from the latency histogram the way Prometheus'
``histogram_quantile`` does, so they are as fine as its buckets (1, 2, 3, 4, 5, 10 ms...).
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
from typing import Any

from fnmesh.platform.cli.arguments import add_home, add_namespace, add_output, connect, namespace
from fnmesh.platform.cli.client import namespaced
from fnmesh.platform.cli.output import render, table

MIN_WINDOW = 1.0
MAX_WINDOW = 600.0
HEADERS = ("REVISION", "SUCCESS", "RPS", "LATENCY_P50", "LATENCY_P95", "LATENCY_P99", "REQUESTS")


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "stat",
        help="show a function's success rate, RPS and latency",
        description=(
            "Show each revision's golden metrics: success rate, requests per second and "
            "p50/p95/p99 latency over the last window."
        ),
    )
    parser.add_argument("name", metavar="NAME")
    add_home(parser)
    add_namespace(parser)
    parser.add_argument(
        "-w",
        "--window",
        type=window,
        default=60.0,
        metavar="DURATION",
        help="how far back to look, 1s to 10m, e.g. 30s or 5m (default: 1m)",
    )
    add_output(parser)
    parser.set_defaults(run=run)


def window(value: str) -> float:
    from fnmesh.platform.model.durations import parse_duration  # the CLI starts without model

    seconds = parse_duration(value)
    if seconds is None or not MIN_WINDOW <= seconds <= MAX_WINDOW:
        raise argparse.ArgumentTypeError(
            f"{value!r} is not a window from 1s to 10m: write it like 30s, 90 or 5m"
        )
    return seconds


def percent(value: object) -> str | None:
    if not isinstance(value, int | float) or isinstance(value, bool):
        return None
    return f"{value * 100:.2f}%"


def rate(value: object) -> str | None:
    if not isinstance(value, int | float) or isinstance(value, bool):
        return None
    return f"{value:.1f}"


def millis(value: object) -> str | None:
    if not isinstance(value, int | float) or isinstance(value, bool):
        return None
    return f"{value:.0f}ms" if value >= 100 else f"{value:.2g}ms" if value < 1 else f"{value:.1f}ms"


def stat_rows(rows: Sequence[Mapping[str, Any]]) -> list[list[object]]:
    """Table rows of the stats answer; a revision without traffic shows dashes."""
    shown: list[list[object]] = []
    for row in sorted(rows, key=lambda r: str(r.get("revision") or ""), reverse=True):
        shown.append(
            [
                row.get("revision"),
                percent(row.get("successRate")),
                rate(row.get("rps")),
                millis(row.get("p50Ms")),
                millis(row.get("p95Ms")),
                millis(row.get("p99Ms")),
                row.get("requests"),
            ]
        )
    return shown


def run(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    client = connect(args, env)
    ns = namespace(args)
    answer = client.get_json(
        namespaced(ns, "functions", args.name, "stats"), {"window": args.window}
    )
    if args.output != "table":
        print(render(answer, args.output))
        return 0
    rows = answer.get("revisions") if isinstance(answer, dict) else None
    rows = [row for row in rows if isinstance(row, dict)] if isinstance(rows, list) else []
    if not rows:
        print(f"{ns}/{args.name} has no revisions yet: deploy it with `fn deploy`")
        return 0
    print(table(HEADERS, stat_rows(rows)))
    if not any(row.get("requests") for row in rows):
        from fnmesh.platform.model.durations import format_duration

        print(f"(no requests in the last {format_duration(args.window)})")
    return 0
