"""The sandbox layout is decided purely from the host's facts (table tests)."""

from __future__ import annotations

import pytest

from fnmesh.platform.sandbox.layout import CODE, DEPS, SOCKETS, Bind, Host, Layout, plan
from fnmesh.platform.sandbox.uids import allocate

HOST = Host(
    system={"/usr": None, "/etc": None, "/bin": "usr/bin", "/lib": "usr/lib"},
    runtime=("/opt/py", "/opt/py/lib/python3.11", "/srv/app/.venv", "/srv/app/functions"),
    home="/srv/app/.fnmesh",
)


def layout(**overrides: object) -> Layout:
    options: dict[str, object] = {
        "uid": 6000001,
        "gid": 6000001,
        "hostname": "hello-00001-abc",
        "root": "/tmp/s/r-abc/root",
        "source": "/srv/app/.fnmesh/build/artifacts/aa",
        "sites": ["/srv/app/.fnmesh/build/envs/e1"],
        "sockets": "/tmp/s/r-abc/sock",
    }
    options.update(overrides)
    return plan(HOST, **options)  # type: ignore[arg-type]


def test_system_folders_are_bound_and_symlinks_recreated() -> None:
    built = layout()
    assert Bind("/usr", "/usr") in built.binds
    assert Bind("/etc", "/etc") in built.binds
    assert set(built.symlinks) == {("/bin", "usr/bin"), ("/lib", "usr/lib")}


def test_the_runtime_is_bound_once_at_its_own_paths() -> None:
    targets = [b.target for b in layout().binds]
    assert "/opt/py" in targets
    assert "/opt/py/lib/python3.11" not in targets  # inside /opt/py already
    assert {"/srv/app/.venv", "/srv/app/functions"} <= set(targets)


def test_the_function_sees_its_artifact_deps_and_sockets_at_fixed_paths() -> None:
    binds = {b.target: b for b in layout().binds}
    assert binds[CODE] == Bind("/srv/app/.fnmesh/build/artifacts/aa", CODE, read_only=True)
    assert binds[f"{DEPS}/0"].source == "/srv/app/.fnmesh/build/envs/e1"
    assert binds[SOCKETS] == Bind("/tmp/s/r-abc/sock", SOCKETS, read_only=True)
    assert all(b.read_only for b in binds.values())


@pytest.mark.parametrize(
    ("runtime", "home", "masks"),
    [
        (("/srv/app",), "/srv/app/.fnmesh", ("/srv/app/.fnmesh",)),
        (("/srv/app/.venv",), "/srv/app/.fnmesh", ()),
        (("/root",), "/root", ("/root",)),
    ],
)
def test_a_bind_that_would_show_the_home_hides_it(
    runtime: tuple[str, ...], home: str, masks: tuple[str, ...]
) -> None:
    host = Host(system={}, runtime=runtime, home=home)
    built = plan(
        host,
        uid=1,
        gid=1,
        hostname="h",
        root="/r",
        source="/a",
        sites=[],
        sockets="/s",
    )
    assert built.masks == masks


def test_layouts_travel_as_json_with_secrets() -> None:
    built = layout(secrets={"db": {"password": b"\x00s3cret"}})
    assert Layout.from_json(built.to_json()) == built


@pytest.mark.parametrize(
    ("taken", "key", "uid"),
    [
        ({}, "default/a", 100),
        ({"default/a": 100}, "default/a", 100),
        ({"default/a": 100}, "default/b", 101),
        ({"default/a": 101}, "default/b", 100),
    ],
)
def test_uids_are_kept_and_never_shared(taken: dict[str, int], key: str, uid: int) -> None:
    assert allocate(taken, key, first=100, size=10) == uid


def test_the_uid_range_can_run_out() -> None:
    with pytest.raises(OverflowError, match="no free uid"):
        allocate({"a": 100}, "b", first=100, size=1)
