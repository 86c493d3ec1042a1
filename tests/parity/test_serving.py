"""Deploy, invoke, scale from zero and keep few revisions: on both backends."""

from __future__ import annotations

import pytest
from support.backends import ApiBackend, Functions
from support.e2e import Reply

pytestmark = pytest.mark.e2e

HELLO = """\
def handle(req):
    return "Hello, " + req.query.get("name", "world") + "!"
"""
KEEP_REVISIONS = 10  # the controller's default


def answered(backend: ApiBackend, path: str) -> Reply:
    """The first 200 from ``path``. ``fn deploy`` returns once the revision is ready; the
    gateway routes to it once it has seen the traffic move, which can be a moment later."""
    reply: Reply = backend.wait_for(
        f"{path} to answer", lambda: (r := backend.invoke(path)).status == 200 and r, timeout=10
    )
    return reply


def test_a_deployed_function_answers(backend: ApiBackend, functions: Functions) -> None:
    output = functions.deploy("greet", HELLO)
    assert "greet-00001" in output, output
    reply = answered(backend, "/fn/greet/?name=parity")
    assert reply.body == b"Hello, parity!"
    assert [r["metadata"]["name"] for r in backend.revisions("greet")] == ["greet-00001"]

    functions.deploy("greet", HELLO.replace("Hello", "Howdy"))
    backend.wait_for(
        "the new revision to answer",
        lambda: answered(backend, "/fn/greet/?name=parity").body == b"Howdy, parity!",
        timeout=10,
    )
    assert [r["metadata"]["name"] for r in backend.revisions("greet")] == [
        "greet-00001",
        "greet-00002",
    ]


def test_a_request_at_zero_is_answered(backend: ApiBackend, functions: Functions) -> None:
    functions.deploy("sleepy", HELLO, "scale: {stableWindow: 2s, scaleToZeroGracePeriod: 0s}\n")
    backend.wait_for("sleepy to scale to zero", lambda: backend.at_zero("sleepy-00001"), 40)
    reply = backend.invoke("/fn/sleepy/?name=again")
    assert reply.status == 200, reply
    assert reply.body == b"Hello, again!"
    assert backend.ready_replicas("sleepy-00001") >= 1


def test_old_revisions_beyond_the_kept_ones_are_deleted(
    backend: ApiBackend, functions: Functions
) -> None:
    # revisions that never start (initial scale 0) cost nothing but their stamp
    total = KEEP_REVISIONS + 2

    def kept() -> list[str]:
        return [r["metadata"]["name"] for r in backend.revisions("churn")]

    for n in range(1, total + 1):
        functions.deploy("churn", HELLO, f"scale: {{initial: 0}}\nenv: {{N: '{n}'}}\n", "--no-wait")
        stamped = f"churn-{n:05d}"
        backend.wait_for(f"{stamped} to be stamped", lambda: stamped in kept())  # noqa: B023

    def collected() -> list[str] | None:
        names = kept()
        return names if len(names) <= KEEP_REVISIONS else None

    names = backend.wait_for(f"only {KEEP_REVISIONS} revisions kept", collected, timeout=10)
    assert f"churn-{total:05d}" in names, names  # never the newest
