"""gitignore-style patterns, as ``.gitignore`` and ``.fnignore`` use them (pure).

Supported: ``#`` comments, ``\\`` escapes, ``!`` negation, a trailing ``/`` for folders
only, a leading or inner ``/`` to anchor a pattern to the folder of its ignore file, ``*``,
``?``, ``[...]`` classes and ``**`` (``**/x``, ``x/**``, ``a/**/b``). The last matching
pattern decides; patterns of a deeper folder come after those of its parents, and within
one folder ``.fnignore`` comes after ``.gitignore``, so it can re-include what git skips.
As in git, nothing inside an ignored folder can be re-included.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

IGNORE_FILES = (".gitignore", ".fnignore")
ALWAYS_SKIPPED_NAMES = frozenset({".git", "__pycache__", ".venv"})
ALWAYS_SKIPPED_SUFFIXES = (".pyc",)


@dataclass(frozen=True, slots=True)
class Pattern:
    base: str  # the folder of the ignore file, relative to the packed folder ('' = root)
    regex: re.Pattern[str]
    negated: bool
    folders_only: bool
    text: str


def always_skipped(name: str) -> bool:
    return name in ALWAYS_SKIPPED_NAMES or name.endswith(ALWAYS_SKIPPED_SUFFIXES)


def parse_patterns(text: str, base: str = "") -> list[Pattern]:
    """The patterns of one ignore file found in folder ``base``."""
    found = []
    for raw in text.splitlines():
        line = _strip_trailing_spaces(raw)
        if not line or line.startswith("#"):
            continue
        negated = line.startswith("!")
        if negated or line.startswith(("\\!", "\\#")):
            line = line[1:]
        folders_only = line.endswith("/") and not line.endswith("\\/")
        line = line.rstrip("/")
        if not line:
            continue
        anchored = "/" in line
        line = line.removeprefix("/")
        body = _translate(line)
        regex = re.compile(body if anchored else f"(?:.*/)?{body}", re.DOTALL)
        found.append(Pattern(base, regex, negated, folders_only, raw))
    return found


def _strip_trailing_spaces(line: str) -> str:
    stripped = line.rstrip(" ")
    if stripped.endswith("\\") and len(stripped) < len(line):
        stripped += " "  # "\ " keeps one escaped space
    return stripped


def _translate(pattern: str) -> str:
    out = []
    i, n = 0, len(pattern)
    while i < n:
        char = pattern[i]
        if char == "*":
            star_end = i
            while star_end < n and pattern[star_end] == "*":
                star_end += 1
            whole_segment = (i == 0 or pattern[i - 1] == "/") and (
                star_end == n or pattern[star_end] == "/"
            )
            if star_end - i >= 2 and whole_segment:
                if star_end == n:
                    out.append(".*")  # "x/**" or "**": everything below
                    i = star_end
                else:
                    out.append("(?:.*/)?")  # "**/": zero or more folders
                    i = star_end + 1
            else:
                out.append("[^/]*")
                i = star_end
        elif char == "?":
            out.append("[^/]")
            i += 1
        elif char == "[":
            end, klass = _char_class(pattern, i)
            out.append(klass)
            i = end
        elif char == "\\" and i + 1 < n:
            out.append(re.escape(pattern[i + 1]))
            i += 2
        else:
            out.append(re.escape(char))
            i += 1
    return "".join(out)


def _char_class(pattern: str, start: int) -> tuple[int, str]:
    """``[...]`` at ``start`` as a regex class; an unclosed '[' is a literal."""
    i = start + 1
    negate = i < len(pattern) and pattern[i] in "!^"
    if negate:
        i += 1
    members = []
    first = True
    while i < len(pattern) and (pattern[i] != "]" or first):
        char = pattern[i]
        if char == "\\" and i + 1 < len(pattern):
            members.append(re.escape(pattern[i + 1]))
            i += 2
        else:
            members.append(char if char == "-" else re.escape(char))
            i += 1
        first = False
    if i >= len(pattern):
        return start + 1, re.escape("[")
    body = "".join(members)
    return i + 1, f"[^/{body}]" if negate else f"[{body}]"


class IgnoreRules:
    """The patterns in force for one folder: its own plus those of every parent."""

    def __init__(self, patterns: Sequence[Pattern] = ()) -> None:
        self.patterns = tuple(patterns)

    def below(self, patterns: Iterable[Pattern]) -> IgnoreRules:
        """The rules of a subfolder that has ignore files of its own."""
        return IgnoreRules((*self.patterns, *patterns))

    def ignored(self, path: str, *, is_folder: bool) -> bool:
        """Whether ``path`` (relative to the packed folder, '/'-separated) is left out."""
        if always_skipped(path.rsplit("/", 1)[-1]):
            return True
        decision = False
        for pattern in self.patterns:
            if pattern.folders_only and not is_folder:
                continue
            if pattern.base:
                if not path.startswith(pattern.base + "/"):
                    continue
                relative = path[len(pattern.base) + 1 :]
            else:
                relative = path
            if pattern.regex.fullmatch(relative):
                decision = not pattern.negated
        return decision
