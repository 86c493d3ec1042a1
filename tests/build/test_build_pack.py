import gzip
import io
import os
import socket
import tarfile
from pathlib import Path

import pytest

from fnmesh.platform.build import BuildLimits, BundleError, bundle_digest, check_bundle, pack


def write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def names(data: bytes) -> list[str]:
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return tar.getnames()


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return write(
        tmp_path / "fn",
        {
            "fn.yaml": "name: hello\nhandler: main:handle\n",
            "main.py": "def handle(req):\n    return 'hi'\n",
            "pkg/__init__.py": "",
            "pkg/mod.py": "X = 1\n",
        },
    )


def test_packing_twice_gives_the_same_bytes(folder: Path) -> None:
    first = pack(folder)
    os.utime(folder / "main.py", (1_000_000, 1_000_000))
    (folder / "pkg" / "mod.py").chmod(0o600)
    assert pack(folder) == first
    assert gzip.decompress(first)  # a gzip stream
    with tarfile.open(fileobj=io.BytesIO(first)) as tar:
        for info in tar:
            assert (info.mtime, info.uid, info.gid, info.uname, info.gname) == (0, 0, 0, "", "")
            assert info.mode == 0o644


def test_entries_are_sorted_and_folders_implied(folder: Path) -> None:
    (folder / "empty").mkdir()
    assert names(pack(folder)) == ["fn.yaml", "main.py", "pkg/__init__.py", "pkg/mod.py"]


def test_a_change_of_content_or_exec_bit_changes_the_bundle(folder: Path) -> None:
    first = pack(folder)
    (folder / "main.py").chmod(0o755)
    executable = pack(folder)
    assert executable != first
    assert bundle_digest(executable) != bundle_digest(first)
    with tarfile.open(fileobj=io.BytesIO(executable)) as tar:
        assert tar.getmember("main.py").mode == 0o755


def test_always_skipped_entries(folder: Path) -> None:
    write(
        folder,
        {
            ".git/HEAD": "ref: refs/heads/main\n",
            ".venv/bin/python": "",
            "pkg/__pycache__/mod.cpython-311.pyc": "",
            "stale.pyc": "",
            ".fnignore": "!.venv\n!*.pyc\n",
        },
    )
    assert names(pack(folder)) == [
        ".fnignore",
        "fn.yaml",
        "main.py",
        "pkg/__init__.py",
        "pkg/mod.py",
    ]


def test_gitignore_and_fnignore_rules(folder: Path) -> None:
    write(
        folder,
        {
            ".gitignore": "*.log\nbuild/\n/notes.txt\ndist/**\nlogs/**/*.tmp\n",
            ".fnignore": "!important.log\n/data\n",
            "debug.log": "",
            "important.log": "",
            "pkg/trace.log": "",
            "build/out.bin": "",
            "pkg/build": "a file named build is kept",
            "notes.txt": "",
            "pkg/notes.txt": "",
            "dist/a/b.whl": "",
            "logs/x/y/z.tmp": "",
            "logs/keep.txt": "",
            "data/big.csv": "",
            "pkg/data/small.csv": "",
        },
    )
    assert names(pack(folder)) == [
        ".fnignore",
        ".gitignore",
        "fn.yaml",
        "important.log",
        "logs/keep.txt",
        "main.py",
        "pkg/__init__.py",
        "pkg/build",
        "pkg/data/small.csv",
        "pkg/mod.py",
        "pkg/notes.txt",
    ]


def test_nested_ignore_files_apply_below_their_folder(folder: Path) -> None:
    write(
        folder,
        {
            ".gitignore": "*.csv\n",
            "pkg/.gitignore": "!keep.csv\n/local.txt\n",
            "pkg/keep.csv": "",
            "pkg/drop.csv": "",
            "pkg/local.txt": "",
            "pkg/sub/local.txt": "",
            "local.txt": "",
            "top.csv": "",
        },
    )
    packed = names(pack(folder))
    assert "pkg/keep.csv" in packed
    assert "pkg/sub/local.txt" in packed
    assert "local.txt" in packed
    assert "pkg/drop.csv" not in packed
    assert "pkg/local.txt" not in packed
    assert "top.csv" not in packed


def test_nothing_inside_an_ignored_folder_comes_back(folder: Path) -> None:
    write(folder, {".gitignore": "vendor/\n!vendor/keep.py\n", "vendor/keep.py": ""})
    assert "vendor/keep.py" not in names(pack(folder))


def test_links_inside_are_kept_and_links_outside_refused(folder: Path, tmp_path: Path) -> None:
    (folder / "alias.py").symlink_to("pkg/mod.py")
    (folder / "pkglink").symlink_to("pkg")
    data = pack(folder)
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        assert tar.getmember("alias.py").linkname == "pkg/mod.py"
        assert tar.getmember("pkglink").issym()
    (folder / "secret").symlink_to(tmp_path)
    with pytest.raises(BundleError) as caught:
        pack(folder)
    assert caught.value.member == "secret"
    assert "leaves the bundle" in str(caught.value)


def test_sockets_are_left_out(folder: Path) -> None:
    with socket.socket(socket.AF_UNIX) as server:
        server.bind(str(folder / "dev.sock"))
        assert "dev.sock" not in names(pack(folder))


def test_limits_are_checked_while_packing(folder: Path) -> None:
    with pytest.raises(BundleError) as caught:
        pack(folder, limits=BuildLimits(max_files=3))
    assert "build.max_files" in str(caught.value)
    assert ".fnignore" in str(caught.value)
    (folder / "big.bin").write_bytes(os.urandom(4000))
    with pytest.raises(BundleError, match=r"build\.max_unpacked_bytes"):
        pack(folder, limits=BuildLimits(max_unpacked_bytes=3000))
    with pytest.raises(BundleError, match=r"build\.max_bundle_bytes"):
        pack(folder, limits=BuildLimits(max_bundle_bytes=3000))


def test_the_packed_bundle_passes_the_builders_checks(folder: Path) -> None:
    members = check_bundle(pack(folder), BuildLimits())
    assert {m.path for m in members} == {"fn.yaml", "main.py", "pkg/__init__.py", "pkg/mod.py"}


def test_packing_something_that_is_not_a_folder(tmp_path: Path) -> None:
    with pytest.raises(BundleError, match="is not a folder"):
        pack(tmp_path / "missing")
