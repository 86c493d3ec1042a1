"""What a dependency environment is keyed by (pure).

The key is the sha256 of the normalized ``requirements.txt`` (with the files it includes
through ``-r``/``-c``), the Python version and platform tag of the interpreter that runs
pip, and the extra pip arguments. Comments, blank lines, line endings and surrounding
spaces do not change the key. A requirement that points into the source itself (``.``,
``./pkg``, ``-e .``, ``file:``, a local wheel) makes the environment depend on the code, so
the source digest joins the key.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass

REQUIREMENTS_FILE = "requirements.txt"

_COMMENT = re.compile(r"(^|\s)#.*$")
_INCLUDE = re.compile(r"^(?:-r|-c|--requirement|--constraint)(?:\s*=\s*|\s+|(?<=-[rc]))(\S.*)$")
_ARCHIVES = (".whl", ".tar.gz", ".tgz", ".zip", ".tar.bz2", ".tar.xz")


@dataclass(frozen=True, slots=True)
class Interpreter:
    version: str  # major.minor, e.g. "3.11"
    platform_tag: str  # e.g. "cpython-311-linux-x86_64"


def normalize_requirements(text: str) -> str:
    """The requirement lines that matter, one per line, in their original order."""
    joined = re.sub(r"\\\r?\n", "", text.replace("\r\n", "\n").replace("\r", "\n"))
    lines = [_COMMENT.sub("", line).strip() for line in joined.split("\n")]
    return "\n".join(line for line in lines if line)


def included_files(normalized: str) -> list[str]:
    """Files named by ``-r``/``-c`` lines, relative to the requirements file's folder."""
    found = []
    for line in normalized.split("\n"):
        match = _INCLUDE.match(line)
        if match:
            found.append(match.group(1).strip())
    return found


def is_local(line: str) -> bool:
    """Whether one normalized requirement line points at files of the source itself."""
    if _INCLUDE.match(line):
        return False
    if line.startswith(("-e", "--editable")):
        return True
    if line.startswith("-"):
        return False  # --index-url, --hash, ...: options, not files
    spec = line.split(";", 1)[0].strip()
    if "@" in spec:
        spec = spec.split("@", 1)[1].strip()
    if spec.startswith("file:"):
        return True
    if "://" in spec:
        return False
    return spec.startswith((".", "/", "~")) or "/" in spec or spec.endswith(_ARCHIVES)


def uses_local_files(normalized: str) -> bool:
    return any(is_local(line) for line in normalized.split("\n") if line)


def environment_key(
    requirements: str,
    interpreter: Interpreter,
    pip_args: Sequence[str],
    source_digest: str | None = None,
) -> str:
    """The cache key: 64 hex digits. ``requirements`` is already normalized."""
    material = json.dumps(
        {
            "format": 1,
            "requirements": requirements,
            "python": interpreter.version,
            "platform": interpreter.platform_tag,
            "pip_args": list(pip_args),
            "source": source_digest,
        },
        sort_keys=True,
    )
    return hashlib.sha256(material.encode("utf-8", "surrogateescape")).hexdigest()
