"""``fn up --backend kubernetes`` as a real process, through the entry-point shell, against
an in-memory Kubernetes API: it holds the home, writes the context with a token the
cluster knows, keeps that token across restarts and stops on SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kmockapi import ApiThread, KubeApi
from support.e2e import http, wait_for

pytestmark = pytest.mark.e2e


@pytest.fixture
def cluster() -> Iterator[ApiThread]:
    with ApiThread(KubeApi(), namespaces=("default", "fnmesh-system")) as thread:
        yield thread


def environment(tmp_path: Path, cluster: ApiThread) -> dict[str, str]:
    # the kubeconfig of a cluster admin: `fn up --backend kubernetes` runs as its user
    kubeconfig = cluster.kubeconfig(tmp_path / "kubeconfig")
    return {**os.environ, "KUBECONFIG": str(kubeconfig)}


def up(home: Path, env: dict[str, str], *options: str) -> subprocess.Popen[str]:
    command = [sys.executable, "-m", "fnmesh.platform.cli", "up", "--home", str(home)]
    command += ["--backend", "kubernetes", "--api-port", "0", *options]
    return subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def context_of(home: Path, process: subprocess.Popen[str]) -> dict[str, Any]:
    def written() -> dict[str, Any] | None:
        assert process.poll() is None, process.communicate()
        path = home / "context.json"
        found = json.loads(path.read_text()) if path.exists() else {}
        return found if "api" in found else None  # written by this start

    found: dict[str, Any] = wait_for("the context file", written, timeout=60)
    return found


def stopped(process: subprocess.Popen[str]) -> tuple[int, str, str]:
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=30)
    return process.returncode, out, err


def test_up_serves_the_clusters_api_and_keeps_its_token(tmp_path: Path, cluster: ApiThread) -> None:
    env = environment(tmp_path, cluster)
    home = tmp_path / "home"
    first = up(home, env, "--gateway-port", "18080")
    try:
        context = context_of(home, first)
        assert context["backend"] == "kubernetes"
        assert context["gateway"] == "http://127.0.0.1:18080"
        auth = {"Authorization": f"Bearer {context['token']}"}
        listed = http("GET", context["api"] + "/apis/fnmesh.dev/v1alpha1/functions", headers=auth)
        assert listed.status == 200, listed.body
        second = up(home, env)  # the home is held
        code, _, err = second.wait(30), *second.communicate()
        assert code == 1 and f"fn up: a platform is already running in {home}" in err
    finally:
        code, out, err = stopped(first)
    assert code == 0, err
    assert out.splitlines()[0] == f"fnmesh API for the cluster is up (home {home})"
    assert out.splitlines()[-1] == "fnmesh is stopping..."
    (home / "context.json").write_text(json.dumps({"token": context["token"]}))
    again = up(home, env)
    try:
        assert context_of(home, again)["token"] == context["token"]  # the CLI stays logged in
    finally:
        assert stopped(again)[0] == 0


def test_up_refuses_an_example_and_a_bad_environment(tmp_path: Path, cluster: ApiThread) -> None:
    env = environment(tmp_path, cluster)
    home = tmp_path / "home"
    example = up(home, env, "--example", "hello")
    assert example.wait(30) == 2
    assert "fn up: --example needs the embedded backend" in example.communicate()[1]
    bad = up(home, {**env, "FNMESH_PLATFORM_NAMESPACE": "Not_A_Name"})
    assert bad.wait(30) == 2
    assert "FNMESH_PLATFORM_NAMESPACE" in bad.communicate()[1]
    assert not (home / "context.json").exists()
