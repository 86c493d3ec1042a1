"""Lists every package under the mapped top-level folders (see pyproject.toml)."""

from pathlib import Path

from setuptools import setup

ROOTS = {
    "platform": "fnmesh.platform",
    "activator": "fnmesh.activator",
    "autoscaler": "fnmesh.autoscaler",
    "functions": "fnmesh.functions",
}


def packages() -> list[str]:
    found = []
    for folder, name in ROOTS.items():
        root = Path(folder)
        for init in sorted(root.rglob("__init__.py")):
            relative = init.parent.relative_to(root).parts
            found.append(".".join((name, *relative)))
    return found


def package_data() -> dict[str, list[str]]:
    return {"fnmesh.functions": ["templates/**/*", "examples/**/*"]}


setup(packages=packages(), package_data=package_data())
