"""Starting points for new functions, as ``fn init NAME`` writes them.

Each folder here is one template; every file in it is copied with ``{{name}}`` replaced by
the function's name. Nothing existing is ever overwritten.
"""

from __future__ import annotations

from pathlib import Path

from fnmesh.platform.model import check_name

TEMPLATES = Path(__file__).parent


def available() -> list[str]:
    """The names of the templates, e.g. ``["python"]``."""
    return sorted(
        entry.name
        for entry in TEMPLATES.iterdir()
        if entry.is_dir() and not entry.name.startswith(("_", "."))
    )


def render(template: str, name: str, dest: Path) -> list[Path]:
    """Write template ``template`` for function ``name`` into ``dest``; the files written.

    Raises ValueError for an unknown template or an invalid name, and FileExistsError
    (before writing anything) when any of the files already exists in ``dest``.
    """
    if template not in available():
        raise ValueError(
            f"unknown template {template!r}; choose one of: {', '.join(available())}"
        )
    problem = check_name(name, what="function name")
    if problem:
        raise ValueError(problem)
    source = TEMPLATES / template
    files = sorted(
        path
        for path in source.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"
    )
    targets = [(path, dest / path.relative_to(source)) for path in files]
    existing = [target for _, target in targets if target.exists() or target.is_symlink()]
    if existing:
        shown = ", ".join(str(path) for path in existing)
        raise FileExistsError(
            f"refusing to overwrite existing files: {shown}; pick another folder (--dir)"
            " or move them away"
        )
    written = []
    for path, target in targets:
        target.parent.mkdir(parents=True, exist_ok=True)
        text = path.read_text(encoding="utf-8").replace("{{name}}", name)
        target.write_text(text, encoding="utf-8")
        written.append(target)
    return written
