"""``fn token create|list|revoke`` and ``$FNMESH_TOKEN`` against the real API."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from api.apikit import Api, running_api
from cli_support import write_context

from fnmesh.platform.cli.main import main


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Api]:
    async with running_api(tmp_path / "platform", controller=False) as running:
        yield running


@pytest.fixture
def home(tmp_path: Path, api: Api, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("FNMESH_HOME", raising=False)
    monkeypatch.delenv("FNMESH_TOKEN", raising=False)
    write_context(tmp_path / "home", api.url, api.url, token=api.token)
    return tmp_path / "home"


async def fn(home: Path, *args: str) -> int:
    """``fn ARGS --home HOME`` off the loop (the API is served on it)."""
    return await asyncio.to_thread(main, [*args, "--home", str(home)])


async def test_create_prints_the_secret_alone_and_list_never_shows_it(
    home: Path, api: Api, capsys: pytest.CaptureFixture[str]
) -> None:
    code = await fn(
        home, "token", "create", "--role", "deployer", "--namespace", "team-a", "--expires",
        "30d", "--name", "ci",
    )  # fmt: skip
    assert code == 0
    out, err = capsys.readouterr()
    secret = out.strip()
    assert secret.startswith("fnm_") and "\n" not in secret
    assert "role deployer" in err and "namespace team-a" in err and "not stored" in err
    assert api.tokens.verify(secret) is not None

    assert await fn(home, "token", "list") == 0
    out, _ = capsys.readouterr()
    assert secret not in out
    header, *lines = out.splitlines()
    assert header.split()[:4] == ["ID", "NAME", "ROLE", "NAMESPACE"]
    ci = next(line for line in lines if " ci " in line)
    assert "deployer" in ci and "team-a" in ci and "valid" in ci

    assert await fn(home, "token", "list", "-o", "json") == 0
    listed = json.loads(capsys.readouterr().out)
    assert secret not in json.dumps(listed)


async def test_revoke_then_the_token_is_refused_with_the_reason(
    home: Path, api: Api, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    secret, grant = api.tokens.create("viewer")
    assert await fn(home, "token", "revoke", grant.id) == 0
    assert grant.id in capsys.readouterr().out
    monkeypatch.setenv("FNMESH_TOKEN", secret)
    assert await fn(home, "list") == 1
    err = capsys.readouterr().err
    assert "was refused" in err and "revoked" in err


async def test_a_viewer_token_is_refused_a_deploy_with_the_role_it_needs(
    home: Path, api: Api, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    secret, _ = api.tokens.create("viewer")
    monkeypatch.setenv("FNMESH_TOKEN", secret)
    assert await fn(home, "delete", "hello", "--yes") == 1
    err = capsys.readouterr().err
    assert "role 'viewer'" in err and "'deployer'" in err
    assert await fn(home, "token", "list") == 1
    assert "'admin'" in capsys.readouterr().err


async def test_bad_input_names_the_field(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert await fn(home, "token", "create", "--role", "viewer", "--expires", "soon") == 2
    assert "expires" in capsys.readouterr().err
    assert main(["token", "create", "--role", "root", "--home", str(home)]) == 2
    assert "invalid choice: 'root'" in capsys.readouterr().err
