"""More than one operator: the chart's peering, RBAC and probe, with the real entry point.

Two operator processes run as the chart runs them with ``operator.replicas=2``: the
operator's ServiceAccount under the RBAC that rendering gives, the peering name and the
liveness endpoint in their environment. Both answer their liveness probe and register in
the ClusterKopfPeering with different priorities, so exactly one of them acts.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

from helmchart import render
from kmockapi import ApiThread, KubeApi
from rbac import Rbac
from support.e2e import wait_for

PEERINGS = "/apis/kopf.dev/v1/clusterkopfpeerings"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def healthy(port: int) -> bool:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as answer:
        return bool(answer.status == 200)


def peers(cluster: ApiThread) -> dict[str, Any]:
    return dict(cluster.request("GET", f"{PEERINGS}/fnmesh").get("status") or {})


def test_two_operators_peer_and_answer_their_liveness_probe(tmp_path: Path) -> None:
    chart = render("--set", "operator.replicas=2")
    (peering,) = [o for o in chart if o["kind"] == "ClusterKopfPeering"]
    api = KubeApi(rbac=Rbac.from_objects(chart))
    with ApiThread(api, namespaces=("team-a",)) as cluster:
        cluster.request("POST", PEERINGS, peering)
        config = cluster.kubeconfig(tmp_path / "kubeconfig", "operator")
        ports = [free_port(), free_port()]
        running = []
        for index, port in enumerate(ports):
            env = {
                **os.environ,
                "KUBECONFIG": str(config),
                "FNMESH_OPERATOR_PEERING": "fnmesh",
                "FNMESH_OPERATOR_LIVENESS": f"http://127.0.0.1:{port}/healthz",
            }
            log = (tmp_path / f"operator-{index}.log").open("wb")
            command = [sys.executable, "-m", "fnmesh.platform.runtime.kubernetes.operator"]
            process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
            running.append((process, log))
        try:
            for port in ports:
                wait_for(
                    f"the operator's liveness endpoint on {port}",
                    lambda port=port: healthy(port),
                    60,
                )
            registered = wait_for(
                "both operators in the peering",
                lambda: len(peers(cluster)) == 2 and peers(cluster),
                60,
            )
            priorities = {entry["priority"] for entry in registered.values()}
            assert len(priorities) == 2, registered  # equal priorities would pause them both
        finally:
            for process, _ in running:
                process.send_signal(signal.SIGTERM)
            codes = [process.wait(30) for process, _ in running]
            for _, log in running:
                log.close()
        logs = [(tmp_path / f"operator-{i}.log").read_text() for i in range(2)]
        assert codes == [0, 0], logs
        assert "forbidden" not in "".join(logs).lower(), logs
