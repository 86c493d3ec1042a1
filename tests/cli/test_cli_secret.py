"""``fn secret create``'s options, collected into keys and values (no platform needed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from fnmesh.platform.cli.commands.secret import collect, rows
from fnmesh.platform.cli.errors import UsageError
from fnmesh.platform.cli.main import build_parser


def test_literals_and_files_mix(tmp_path: Path) -> None:
    (tmp_path / "tls.crt").write_bytes(b"\x00cert")
    (tmp_path / "other").write_bytes(b"k2")
    data = collect(
        ["user=app", "password=a=b"],
        [str(tmp_path / "tls.crt"), f"key2={tmp_path / 'other'}"],
    )
    assert data == {"user": b"app", "password": b"a=b", "tls.crt": b"\x00cert", "key2": b"k2"}


def test_every_problem_is_named_with_its_option(tmp_path: Path) -> None:
    with pytest.raises(UsageError) as caught:
        collect(["a/b=1", "ok=1", "ok=2", "nothing"], [f"f={tmp_path / 'missing'}"])
    message = caught.value.message
    assert "--from-literal a/b:" in message
    assert "--from-literal ok: key 'ok' is given twice" in message
    assert "--from-literal: must be KEY=VALUE" in message
    assert f"--from-file f: cannot read {tmp_path / 'missing'}" in message
    assert caught.value.code == 2


def test_the_parser_knows_the_subcommands() -> None:
    args = build_parser().parse_args(
        ["secret", "create", "db", "--from-literal", "a=1", "--from-file", "b=x", "--replace"]
    )
    assert (args.name, args.from_literal, args.from_file, args.replace) == (
        "db",
        ["a=1"],
        ["b=x"],
        True,
    )
    assert build_parser().parse_args(["secret", "list", "-n", "team"]).namespace == "team"


def test_listing_rows_show_keys_and_ages_only() -> None:
    from datetime import UTC, datetime

    now = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    item = {
        "metadata": {"name": "db", "creationTimestamp": "2026-12-01T11:00:00Z"},
        "keys": ["password", "user"],
        "updated": "2026-12-01T11:59:00Z",
    }
    assert rows([item], now) == [["db", "password, user", "60m", "60s"]]
