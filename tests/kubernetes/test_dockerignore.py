"""The image build context: what the Dockerfiles copy, and nothing secret besides."""

from __future__ import annotations

import fnmatch
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
IMAGES = ROOT / "charts" / "fnmesh" / "images"


def ignored(path: str, patterns: list[str]) -> bool:
    """Whether ``path`` is left out by .dockerignore's patterns (no negations are used)."""
    parts = path.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    for pattern in patterns:
        anywhere = pattern.startswith("**/")  # else the pattern is anchored at the root
        for prefix in prefixes:
            name = prefix.split("/")[-1]
            if fnmatch.fnmatch(prefix, pattern) or (
                anywhere and fnmatch.fnmatch(name, pattern[3:])
            ):
                return True
    return False


def patterns() -> list[str]:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    found = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    assert not [p for p in found if p.startswith("!")], "negations are not modelled here"
    return found


def test_what_the_dockerfiles_copy_is_in_the_context() -> None:
    rules = patterns()
    for dockerfile in IMAGES.glob("*.Dockerfile"):
        for line in dockerfile.read_text().splitlines():
            match = re.match(r"COPY (?!--from)(.+) \S+$", line)
            for source in match.group(1).split() if match else ():
                assert (ROOT / source).exists(), f"{dockerfile.name} copies missing {source}"
                assert not ignored(source, rules), f"{dockerfile.name} needs {source}"
                for path in (ROOT / source).rglob("*.py") if (ROOT / source).is_dir() else ():
                    relative = str(path.relative_to(ROOT))
                    if "__pycache__" not in relative:
                        assert not ignored(relative, rules), relative


def test_secrets_and_local_state_stay_out() -> None:
    rules = patterns()
    for path in (
        ".venv/bin/python",
        ".git/config",
        "platform/.fnmesh/keys/ca.key",
        "home/.fnmesh/tokens.json",
        "issuer.key",
        "ca.pem",
        "kubeconfig",
        "tests/kubernetes/kmockapi.py",
        "platform/api/__pycache__/app.cpython-311.pyc",
    ):
        assert ignored(path, rules), path
