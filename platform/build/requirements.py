"""What a ``requirements.txt`` may say, and what a dependency environment is keyed by (pure).

``requirements.txt`` is written by whoever deploys the function, so pip only ever sees
requirement files that passed ``check_requirements``: no ``-r``/``-c`` include that leaves
the bundle (or is a URL), no ``file:`` URL, no local path (``./x``, ``/x``, ``../x``,
``~/x``, a local archive), no editable install (``-e``), and no option that changes where
packages come from (``--index-url``, ``--extra-index-url``, ``--trusted-host``,
``--find-links``) unless the operator allowed those. Any other option not
known to be harmless is refused too. Every refusal names the file, the line and the fix.

The key is the sha256 of the normalized ``requirements.txt`` (with the files it includes
through ``-r``/``-c``), the Python version and platform tag of the interpreter that runs
pip, and the extra pip arguments. Comments, blank lines, line endings and surrounding
spaces do not change the key.
"""

from __future__ import annotations

import hashlib
import json
import posixpath
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

REQUIREMENTS_FILE = "requirements.txt"

_COMMENT = re.compile(r"(^|\s)#.*$")
_INCLUDE = re.compile(r"^(?:-r|-c|--requirement|--constraint)(?:\s*=\s*|\s+|(?<=-[rc]))(\S.*)$")
_ARCHIVES = (".whl", ".tar.gz", ".tgz", ".zip", ".tar.bz2", ".tar.xz")
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")
_INCLUDE_OPTIONS = ("-r", "-c", "--requirement", "--constraint")
_EDITABLE = ("-e", "--editable")
# Options that change where packages come from: only with the operator's consent.
INDEX_OPTIONS = (
    "-i",
    "--index-url",
    "--extra-index-url",
    "--trusted-host",
    "-f",
    "--find-links",
)
# Options that only change how pip chooses among the index's packages.
_HARMLESS_OPTIONS = (
    "--pre",
    "--prefer-binary",
    "--only-binary",
    "--no-binary",
    "--require-hashes",
    "--hash",
    "--config-settings",
    "--no-index",  # with no --find-links, it can only make the install fail
)


@dataclass(frozen=True, slots=True)
class Interpreter:
    version: str  # major.minor, e.g. "3.11"
    platform_tag: str  # e.g. "cpython-311-linux-x86_64"


@dataclass(frozen=True, slots=True)
class RequirementProblem:
    file: str  # the requirements file's path inside the bundle
    line: int  # 1-based; a continued line is reported at its first line
    message: str  # what is wrong and how to fix it

    def render(self) -> str:
        return f"{self.file} line {self.line}: {self.message}"


@dataclass(frozen=True, slots=True)
class Include:
    line: int
    option: str  # -r or -c as written
    name: str  # as written
    path: str | None  # normalized path inside the bundle, or None when it leaves it


def logical_lines(text: str) -> list[tuple[int, str]]:
    """(first physical line number, content without comment) for every non-empty line."""
    physical = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    found = []
    number = 0
    while number < len(physical):
        start = number
        line = physical[number]
        while line.endswith("\\") and number + 1 < len(physical):
            number += 1
            line = line[:-1] + physical[number]
        number += 1
        content = _COMMENT.sub("", line).strip()
        if content:
            found.append((start + 1, content))
    return found


def normalize_requirements(text: str) -> str:
    """The requirement lines that matter, one per line, in their original order."""
    return "\n".join(content for _, content in logical_lines(text))


def includes(text: str, file: str) -> list[Include]:
    """The ``-r``/``-c`` files of ``file`` (a path inside the bundle), resolved lexically."""
    found = []
    folder = posixpath.dirname(file)
    for number, content in logical_lines(text):
        match = _INCLUDE.match(content)
        if not match:
            continue
        name = match.group(1).strip()
        option = content[: len(content) - len(match.group(1))].strip(" =")
        path: str | None = None
        if not _URL.match(name) and not name.startswith(("/", "~")):
            joined = posixpath.normpath(posixpath.join(folder, name))
            if joined != ".." and not joined.startswith("../"):
                path = joined
        found.append(Include(number, option, name, path))
    return found


def included_files(normalized: str) -> list[str]:
    """Files named by ``-r``/``-c`` lines, as written."""
    return [include.name for include in includes(normalized, REQUIREMENTS_FILE)]


def _option(token: str) -> str:
    return token.split("=", 1)[0]


def is_local(requirement: str) -> bool:
    """Whether a requirement (not an option) points at files rather than the package index."""
    spec = requirement.split(";", 1)[0].strip()
    if "@" in spec:
        spec = spec.split("@", 1)[1].strip()
    spec = spec.split()[0] if spec else ""
    lowered = spec.lower()
    if lowered.startswith("file:"):
        return True
    if _URL.match(spec):
        return False  # https://..., git+https://...: fetched over the network
    return (
        spec.startswith((".", "/", "~"))
        or "/" in spec
        or "\\" in spec
        or lowered.endswith(_ARCHIVES)
    )


def check_requirements(
    text: str, *, file: str = REQUIREMENTS_FILE, allow_index_options: bool = False
) -> list[RequirementProblem]:
    """Every reason to refuse ``text`` (the file ``file`` of the bundle); [] when it is fine."""
    problems = []

    def refuse(number: int, message: str) -> None:
        problems.append(RequirementProblem(file, number, message))

    included = {include.line: include for include in includes(text, file)}
    for number, content in logical_lines(text):
        if "file:" in content.lower():
            refuse(
                number,
                "file: URLs are not allowed (they read the build machine's files); "
                "name the package and version from the package index instead",
            )
            continue
        if number in included:
            include = included[number]
            if include.path is None:
                refuse(
                    number,
                    f"{include.option} {include.name} points outside the function's folder; "
                    "include only files inside it with a relative path (e.g. -r base.txt)",
                )
            continue
        tokens = content.split()
        head = tokens[0]
        if _option(head) in _EDITABLE or head.startswith("-e"):
            refuse(
                number,
                "editable installs (-e) are not allowed; list the package by name and "
                "version, or put its code in the function's folder and import it from there",
            )
            continue
        if head.startswith("-"):
            _check_options(tokens, number, refuse, allow_index_options)
            continue
        requirement = content.split(" --", 1)[0]
        if is_local(requirement):
            refuse(
                number,
                f"local paths are not allowed ({requirement.split()[0]!r}); name the "
                "package and version from the package index, or put the code in the "
                "function's folder and import it from there",
            )
            continue
        options = [t for t in tokens[1:] if t.startswith("-")]
        _check_options(options, number, refuse, allow_index_options)
    return problems


def _check_options(
    tokens: Sequence[str],
    number: int,
    refuse: Callable[[int, str], None],
    allow_index_options: bool,
) -> None:
    for token in tokens:
        if not token.startswith("-"):
            continue
        option = _option(token)
        if option in INDEX_OPTIONS or (option[:2] in ("-i", "-f") and not option.startswith("--")):
            if not allow_index_options:
                refuse(
                    number,
                    f"{option} is not allowed: packages come from the platform's package "
                    "index; remove the line (the operator can allow index options with "
                    "build.allow_index_options)",
                )
            continue
        if option in _INCLUDE_OPTIONS or option in _EDITABLE:
            continue
        if option not in _HARMLESS_OPTIONS:
            refuse(
                number,
                f"the pip option {option} is not allowed in requirements.txt; remove it "
                f"(allowed: {', '.join(_HARMLESS_OPTIONS)})",
            )


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
