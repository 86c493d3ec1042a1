"""Ten `fn deploy` processes of different code to one function at once: every upload
gets a revision of its own, and each CLI reports the revision stamped from its own
upload -- or says clearly why it did not -- never another's."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from support.e2e import Platform, http

NS = "/apis/fnmesh.dev/v1alpha1/namespaces/default"
DEPLOYS = 10
READY = re.compile(r"^Revision (hello-\d{5}) is ready", re.MULTILINE)


def folder(root: Path, index: int) -> Path:
    path = root / f"hello-{index}"
    path.mkdir()
    (path / "fn.yaml").write_text("name: hello\nhandler: main:handle\n")
    (path / "main.py").write_text(f"MARK = 'upload-{index}'\n\ndef handle(req):\n    return MARK\n")
    return path


def marker(platform: Platform, revision: dict[str, object]) -> str:
    """Which upload a revision runs, from the source stored under its artifact digest."""
    spec = revision["spec"]
    assert isinstance(spec, dict)
    digest = str(spec["artifact"]["digest"]).removeprefix("sha256:")
    text = (platform.home / "build" / "artifacts" / digest / "main.py").read_text()
    found = re.search(r"upload-(\d+)", text)
    assert found, text
    return found.group(0)


def test_ten_concurrent_deploys_each_get_and_report_their_own_revision(
    platform: Platform, tmp_path: Path
) -> None:
    folders = [folder(tmp_path, i) for i in range(DEPLOYS)]
    running = [
        subprocess.Popen(
            [sys.executable, "-m", "fnmesh.platform.cli", "deploy", str(f), "--timeout", "400"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=platform.env(),
        )
        for f in folders
    ]
    outcomes = []
    for process in running:
        out, err = process.communicate(timeout=500)
        outcomes.append((process.returncode, out, err))

    reply = http("GET", f"{platform.api}{NS}/revisions?function=hello", headers=platform.auth)
    revisions = {item["metadata"]["name"]: item for item in reply.json()["items"]}
    context = "\n".join(f"[{i}] exit {c}\n{o}\n{e}" for i, (c, o, e) in enumerate(outcomes))

    # nothing lost: one revision per upload, each running a different upload's code
    assert len(revisions) == DEPLOYS, context
    assert sorted(marker(platform, r) for r in revisions.values()) == sorted(
        f"upload-{i}" for i in range(DEPLOYS)
    ), context

    reported: list[str] = []
    for index, (code, out, err) in enumerate(outcomes):
        found = READY.findall(out)
        if code == 0:
            (name,) = found
            # the revision a CLI reports runs the code that CLI uploaded
            assert marker(platform, revisions[name]) == f"upload-{index}", context
            reported.append(name)
        else:
            assert not found, context
            assert "replaced" in err or "went first" in err, context
    assert len(reported) == len(set(reported)), context
    assert len(reported) >= DEPLOYS // 2, context  # most see their revision ready
    print(f"{len(reported)} of {DEPLOYS} deploys saw their own revision ready")
