"""Lists every package under the mapped top-level folders (see pyproject.toml).

Folders with an ``__init__.py`` are packages; the function examples and templates are
shipped as data folders of ``fnmesh.functions`` (listed too, so setuptools installs
their files and does not warn about importable folders it was not told of).
"""

from pathlib import Path

from setuptools import setup

ROOTS = {
    "platform": "fnmesh.platform",
    "activator": "fnmesh.activator",
    "autoscaler": "fnmesh.autoscaler",
    "functions": "fnmesh.functions",
}
DATA_FOLDERS = ("functions/examples", "functions/templates")


def _name(folder: Path) -> str:
    top, *rest = folder.parts
    return ".".join((ROOTS[top], *rest))


def packages() -> list[str]:
    found = set()
    for folder in ROOTS:
        for init in Path(folder).rglob("__init__.py"):
            if "__pycache__" not in init.parts:
                found.add(_name(init.parent))
    for data in DATA_FOLDERS:
        for folder in (Path(data), *Path(data).rglob("*")):
            if folder.is_dir() and "__pycache__" not in folder.parts:
                found.add(_name(folder))
    return sorted(found)


def package_data() -> dict[str, list[str]]:
    data = {}
    for name in packages():
        if name.startswith(("fnmesh.functions.examples", "fnmesh.functions.templates")):
            data[name] = ["*", ".*"]
    return data


setup(packages=packages(), package_data=package_data())
