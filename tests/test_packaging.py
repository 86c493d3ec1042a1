"""A normal (non-editable) install ships every module, example and template."""

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = {
    "platform": "fnmesh/platform",
    "activator": "fnmesh/activator",
    "autoscaler": "fnmesh/autoscaler",
    "functions": "fnmesh/functions",
}


def test_the_wheel_holds_every_module_and_data_file(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(tmp_path), str(ROOT)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = tmp_path.glob("fnmesh-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = set()
    for folder, package in FOLDERS.items():
        for path in (ROOT / folder).rglob("*"):
            if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
                relative = path.relative_to(ROOT / folder).as_posix()
                expected.add(f"{package}/{relative}")
    assert expected - names == set()
    assert "fnmesh/functions/templates/python/.fnignore" in names
    assert not any(n.startswith("platform/") for n in names)  # never shadow the stdlib
    assert "fnmesh/platform/__init__.py" not in names
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    assert (
        "fn = fnmesh.platform.cli.main:main" in zipfile.ZipFile(wheel).read(entry_points).decode()
    )
