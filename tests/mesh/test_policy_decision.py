"""Authorization policy: the pure decision as a table, and the file the platform writes."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from proxykit import ACTIVATOR, CALLER, GATEWAY, STRANGER, write_policy

from fnmesh.platform.mesh.policy.decision import DENY_ALL, allowed, parse_policy
from fnmesh.platform.mesh.policy.watch import PolicyFile
from fnmesh.platform.model.errors import ValidationError

PUBLIC_CALLERS = frozenset({GATEWAY, ACTIVATOR})


@pytest.mark.parametrize(
    ("document", "identity", "expected"),
    [
        ({"public": True, "allow": []}, GATEWAY, True),
        ({"public": True, "allow": []}, ACTIVATOR, True),
        ({"public": True, "allow": []}, CALLER, False),
        ({"public": True, "allow": [CALLER]}, CALLER, True),
        ({"public": False, "allow": [CALLER]}, CALLER, True),
        ({"public": False, "allow": [CALLER]}, GATEWAY, False),
        ({"public": False, "allow": [CALLER]}, ACTIVATOR, False),
        ({"public": False, "allow": [CALLER]}, STRANGER, False),
        ({"public": True, "allow": []}, None, False),
        ({}, GATEWAY, False),  # private and nobody allowed by default
    ],
)
def test_public_functions_accept_the_platform_callers_private_ones_only_allow(
    document: dict[str, object], identity: str | None, expected: bool
) -> None:
    ok, reason = allowed(parse_policy(document, PUBLIC_CALLERS), identity)
    assert ok is expected
    assert (reason == "") is expected


def test_a_refusal_says_who_and_why() -> None:
    policy = parse_policy({"public": False, "allow": []}, PUBLIC_CALLERS, source="policy /p")
    ok, reason = allowed(policy, STRANGER)
    assert not ok
    assert STRANGER in reason and "private" in reason and "/p" in reason
    assert allowed(policy, None) == (False, "the client presented no identity")


def test_nothing_is_allowed_without_a_policy() -> None:
    assert not allowed(DENY_ALL, GATEWAY)[0]


def test_every_problem_of_a_bad_document_is_named() -> None:
    with pytest.raises(ValidationError) as caught:
        parse_policy({"public": "yes", "allow": [CALLER, 3, ""], "deny": []}, PUBLIC_CALLERS)
    fields = {error.path for error in caught.value.errors}
    assert fields == {"public", "allow[1]", "allow[2]", "deny"}
    with pytest.raises(ValidationError, match="JSON object"):
        parse_policy([], PUBLIC_CALLERS)


def _bump_mtime(path: Path, seconds: int) -> None:
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + seconds * 1_000_000_000))


def test_the_file_is_reread_at_most_once_per_interval_when_it_changes(tmp_path: Path) -> None:
    path = tmp_path / "policy.json"
    write_policy(path, public=False, allow=(CALLER,))
    policies = PolicyFile(path, PUBLIC_CALLERS, every=1.0)
    assert allowed(policies.current(100.0), CALLER)[0]
    write_policy(path, public=True, allow=())
    _bump_mtime(path, 5)
    assert allowed(policies.current(100.5), CALLER)[0], "re-read before the interval passed"
    assert not allowed(policies.current(101.0), CALLER)[0]
    assert allowed(policies.current(101.0), GATEWAY)[0]


def test_a_missing_file_refuses_everyone_until_it_appears(tmp_path: Path) -> None:
    path = tmp_path / "policy.json"
    policies = PolicyFile(path, PUBLIC_CALLERS)
    ok, reason = allowed(policies.current(0.0), GATEWAY)
    assert not ok and "does not exist" in reason
    write_policy(path, public=True)
    assert allowed(policies.current(1.0), GATEWAY)[0]
    path.unlink()
    assert not allowed(policies.current(2.0), GATEWAY)[0]


def test_a_broken_file_keeps_the_last_good_policy(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "policy.json"
    write_policy(path, allow=(CALLER,))
    policies = PolicyFile(path, PUBLIC_CALLERS)
    assert allowed(policies.current(0.0), CALLER)[0]
    path.write_text("{not json")
    _bump_mtime(path, 5)
    assert allowed(policies.current(1.0), CALLER)[0]
    assert "is not JSON" in caplog.text
    caplog.clear()
    assert allowed(policies.current(2.0), CALLER)[0]
    assert caplog.text == "", "the same broken file is reported once"
    path.write_text(json.dumps({"public": 1}))
    _bump_mtime(path, 10)
    assert allowed(policies.current(3.0), CALLER)[0]
    assert "public: must be true or false" in caplog.text
