"""Tables of conditions, revisions and replicas, shared by ``describe`` and ``revisions``."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fnmesh.platform.cli.output import age, table
from fnmesh.platform.cli.views import conditions, name_of, ready, replicas, section, traffic


def condition_table(resource: Any, indent: str = "") -> str:
    rows = [
        [c.get("type"), c.get("status"), c.get("reason"), c.get("message")]
        for c in conditions(resource)
    ]
    return table(["TYPE", "STATUS", "REASON", "MESSAGE"], rows, indent=indent)


def revision_table(
    function: Any, revisions: list[dict[str, Any]], now: datetime, indent: str = ""
) -> str:
    shares = traffic(function)
    rows = []
    for revision in revisions:
        status = section(revision, "status")
        name = name_of(revision)
        rows.append(
            [
                name,
                ready(revision),
                f"{status.get('readyReplicas') or 0}/{status.get('desiredReplicas') or 0}",
                f"{shares.get(name, 0)}%",
                age(section(revision, "metadata").get("creationTimestamp"), now),
            ]
        )
    return table(["NAME", "READY", "REPLICAS", "TRAFFIC", "CREATED"], rows, indent=indent)


def replica_table(revisions: list[dict[str, Any]], now: datetime, indent: str = "") -> str:
    rows = [
        [
            name_of(revision),
            replica.get("name"),
            replica.get("address"),
            bool(replica.get("ready")),
            replica.get("pid"),
            replica.get("restarts") or 0,
            age(replica.get("startedAt"), now),
        ]
        for revision in revisions
        for replica in replicas(revision)
    ]
    return table(
        ["REVISION", "NAME", "ADDRESS", "READY", "PID", "RESTARTS", "AGE"], rows, indent=indent
    )
