import pytest

from fnmesh.platform.gateway.choice import pick_weighted
from fnmesh.platform.gateway.routing import resolve

D = b"fn.localhost"


@pytest.mark.parametrize(
    ("host", "target", "expected"),
    [
        (None, b"/fn/hello", ("default", "hello", b"/", b"/fn/hello", None)),
        (None, b"/fn/hello/", ("default", "hello", b"/", b"/fn/hello", None)),
        (None, b"/fn/hello/a/b?x=1", ("default", "hello", b"/a/b?x=1", b"/fn/hello", None)),
        (None, b"/fn/hello?x=1", ("default", "hello", b"/?x=1", b"/fn/hello", None)),
        (None, b"/fn/hello.team/x", ("team", "hello", b"/x", b"/fn/hello.team", None)),
        (None, b"/fn/hello@beta/x", ("default", "hello", b"/x", b"/fn/hello@beta", "beta")),
        (b"hello.team.fn.localhost:8080", b"/x?y", ("team", "hello", b"/x?y", b"", None)),
        (b"HELLO.team.fn.localhost.", b"/", ("team", "hello", b"/", b"", None)),
        (b"127.0.0.1:8080", b"/fn/a/", ("default", "a", b"/", b"/fn/a", None)),
    ],
)
def test_requests_resolve_to_functions(host, target, expected) -> None:  # type: ignore[no-untyped-def]
    route = resolve(host, target, D)
    assert route is not None
    assert (route.namespace, route.function, route.target, route.prefix, route.tag) == expected


@pytest.mark.parametrize("target", [b"/", b"/fn/", b"/fn", b"/other/hello", b"/fn/a.b.c/"])
def test_other_paths_do_not_resolve(target: bytes) -> None:
    assert resolve(b"localhost", target, D) is None


def test_weights_split_the_unit_interval() -> None:
    backends = [("a", 90), ("b", 10), ("c", 0)]
    picks = [pick_weighted(backends, i / 1000) for i in range(1000)]
    assert picks.count("a") == 900 and picks.count("b") == 100 and "c" not in picks
    assert pick_weighted([("a", 0)], 0.5) is None
    assert pick_weighted([], 0.5) is None
