"""The shell's parts: the home's lock, listeners, the context file and its admin token."""

from __future__ import annotations

import json
import os
import re
import stat
from pathlib import Path

import pytest

from fnmesh.platform.shell import (
    HomeLocked,
    admin_token,
    hold_home,
    listen,
    read_token,
    url,
    write_context,
)
from fnmesh.platform.store import SqliteStore
from fnmesh.platform.store.tokens import Tokens


def test_a_home_is_private_and_held_by_one_platform_at_a_time(tmp_path: Path) -> None:
    home = tmp_path / "home"
    first = hold_home(home)
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    assert (home / "platform.lock").read_text() == str(os.getpid())
    message = rf"a platform is already running in {re.escape(str(home))} \(pid {os.getpid()}\)"
    with pytest.raises(HomeLocked, match=message + ": stop it, or use another --home"):
        hold_home(home)
    first.close()
    hold_home(home).close()  # let go: the next start takes it


def test_an_open_home_is_closed_to_other_users(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir(mode=0o755)
    home.chmod(0o755)
    hold_home(home).close()
    assert stat.S_IMODE(home.stat().st_mode) == 0o700


def test_a_listener_takes_port_0_and_a_taken_port_names_the_address_and_the_fix() -> None:
    sock = listen("127.0.0.1", 0)
    try:
        port = sock.getsockname()[1]
        assert port > 0 and not sock.getblocking()
        with pytest.raises(OSError, match="cannot listen on") as caught:
            listen("127.0.0.1", port)
        assert str(caught.value).startswith(f"cannot listen on 127.0.0.1:{port}: ")
        assert str(caught.value).endswith("; choose another port (0 picks a free one)")
    finally:
        sock.close()


def test_urls_bracket_ipv6_hosts() -> None:
    assert url("127.0.0.1", 8080) == "http://127.0.0.1:8080"
    assert url("::1", 8443, "https") == "https://[::1]:8443"


def test_the_context_keeps_its_admin_token_while_it_is_an_admin_of_every_namespace(
    tmp_path: Path,
) -> None:
    store = SqliteStore(tmp_path / "state.db")
    try:
        tokens = Tokens(store)
        context = tmp_path / "context.json"
        first = admin_token(tokens, context, "admin")  # no context yet: minted
        write_context(context, {"api": "http://127.0.0.1:1", "token": first})
        assert stat.S_IMODE(context.stat().st_mode) == 0o600
        assert json.loads(context.read_text())["api"] == "http://127.0.0.1:1"
        assert read_token(context) == first
        assert admin_token(tokens, context, "admin") == first  # a restart keeps the CLI in

        limited, _ = tokens.create("admin", namespace="team")
        write_context(context, {"token": limited})
        fresh = admin_token(tokens, context, "admin")
        grant = tokens.verify(fresh)
        assert fresh not in (first, limited) and grant is not None and grant.role == "admin"
        assert grant.namespace is None
        assert tokens.verify(first) is None  # minted again under the same name: replaced
    finally:
        store.close()


def test_a_context_without_a_readable_token_has_none(tmp_path: Path) -> None:
    assert read_token(tmp_path / "missing.json") is None
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    assert read_token(broken) is None
    write_context(broken, {"token": 7})
    assert read_token(broken) is None
