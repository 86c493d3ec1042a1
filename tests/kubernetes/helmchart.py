"""The Helm chart as tests see it: ``helm template`` output, and the RBAC it grants.

helm comes from scripts/install-helm.sh (the test command runs it). Tests that need the
chart fail, naming the missing binary and the command that installs it, when it is not
there: the test cluster's RBAC comes from the rendered chart.
"""

from __future__ import annotations

import functools
import os
import subprocess
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "fnmesh"
HELM = ROOT / ".tools" / "helm"
NAMESPACE = "fnmesh-system"
RELEASE = "fnmesh"
MISSING = f"the helm binary {HELM} is missing: run scripts/install-helm.sh"


def have_helm() -> bool:
    return os.access(HELM, os.X_OK)


def helm(*args: str) -> str:
    assert have_helm(), MISSING
    done = subprocess.run(
        [str(HELM), *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={
            **os.environ,
            "HELM_CACHE_HOME": "/tmp/fnmesh-helm/cache",
            "HELM_CONFIG_HOME": "/tmp/fnmesh-helm/config",
            "HELM_DATA_HOME": "/tmp/fnmesh-helm/data",
        },
    )
    assert done.returncode == 0, f"helm {' '.join(args)} failed:\n{done.stderr}{done.stdout}"
    return done.stdout


def template(*args: str) -> str:
    """``helm template`` of the chart, CRDs included, exactly as helm writes it."""
    return helm("template", RELEASE, str(CHART), "--namespace", NAMESPACE, "--include-crds", *args)


@functools.cache
def _render(*args: str) -> tuple[str, ...]:
    return tuple(yaml.safe_dump(doc) for doc in yaml.safe_load_all(template(*args)) if doc)


def render(*args: str) -> list[dict[str, Any]]:
    """The chart's objects for ``helm template`` with ``args`` (cached; fresh copies)."""
    return [yaml.safe_load(doc) for doc in _render(*args)]


def service_account(component: str) -> tuple[str, str]:
    """(namespace, name) of a component's ServiceAccount in the rendered chart."""
    return NAMESPACE, f"{RELEASE}-{component}"
