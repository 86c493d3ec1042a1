"""The entry-point shell as a process: configuration once, start failures, signals, stops."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from fnmesh.platform.model.errors import FieldError, ValidationError
from fnmesh.platform.shell import EXIT_CONFIG, EXIT_OK, EXIT_START, CannotStart, Shell, Stops, run


def test_a_bad_configuration_is_reported_whole_before_anything_starts(
    capsys: pytest.CaptureFixture[str],
) -> None:
    started: list[object] = []

    def load() -> None:
        problems = [
            FieldError("listen.api_port", "must be a port number 0-65535, not 70000"),
            FieldError("gateway.domain", "must be a DNS name, not 'a b'"),
        ]
        raise ValidationError(problems, "the configuration")

    async def main(shell: Shell, config: None) -> None:
        started.append(config)

    code = run("fn up", load, main, env={"FNMESH_LOG_LEVEL": "loud"})

    assert code == EXIT_CONFIG and started == []
    err = capsys.readouterr().err
    assert "fn up: the configuration is invalid (2 problems)" in err
    assert "  - listen.api_port: must be a port number 0-65535, not 70000" in err
    assert "  - gateway.domain: must be a DNS name" in err
    assert "fn up: FNMESH_LOG_LEVEL: must be one of DEBUG, INFO" in err and "'loud'" in err


def test_a_bad_log_level_alone_stops_the_start(capsys: pytest.CaptureFixture[str]) -> None:
    async def main(shell: Shell, config: int) -> int:
        raise AssertionError("must not start")

    assert run("fnmesh gateway", lambda: 1, main, env={"FNMESH_LOG_LEVEL": "chatty"}) == 2
    assert "fnmesh gateway: FNMESH_LOG_LEVEL: must be one of" in capsys.readouterr().err


def test_a_start_that_fails_half_way_stops_what_started_last_first(
    capsys: pytest.CaptureFixture[str],
) -> None:
    stopped: list[str] = []

    async def main(shell: Shell, config: None) -> None:
        shell.on_stop("store", lambda: stopped.append("store"))

        async def close_mesh() -> None:
            stopped.append("mesh")

        shell.on_stop("mesh", close_mesh)
        raise CannotStart("the routes could not be read from the cluster")

    code = run("fnmesh gateway", lambda: None, main, env={})

    assert code == EXIT_START
    assert stopped == ["mesh", "store"]
    err = capsys.readouterr().err
    assert err == "fnmesh gateway: the routes could not be read from the cluster\n"


def test_listed_start_errors_exit_1_and_others_propagate_after_the_stops(
    capsys: pytest.CaptureFixture[str],
) -> None:
    stopped: list[str] = []

    async def taken(shell: Shell, config: None) -> None:
        shell.on_stop("lock", lambda: stopped.append("lock"))
        raise OSError("cannot listen on 127.0.0.1:1: permission denied")

    assert run("fn up", lambda: None, taken, start_errors=(OSError,), env={}) == EXIT_START
    assert "fn up: cannot listen on 127.0.0.1:1" in capsys.readouterr().err
    assert stopped == ["lock"]

    async def broken(shell: Shell, config: None) -> None:
        shell.on_stop("lock", lambda: stopped.append("lock again"))
        raise RuntimeError("a bug")

    with pytest.raises(RuntimeError, match="a bug"):
        run("fn up", lambda: None, broken, start_errors=(OSError,), env={})
    assert stopped == ["lock", "lock again"]


def test_sigterm_sets_the_stop_event_and_the_steps_run_after_main() -> None:
    events: list[str] = []

    async def main(shell: Shell, config: str) -> None:
        assert config == "loaded once"
        shell.on_stop("server", lambda: events.append("stopped"))
        os.kill(os.getpid(), signal.SIGTERM)
        await asyncio.wait_for(shell.wait(), 5)
        events.append("woke")

    assert run("fnmesh api", lambda: "loaded once", main, env={}) == EXIT_OK
    assert events == ["woke", "stopped"]


def test_main_chooses_its_exit_status() -> None:
    async def main(shell: Shell, config: None) -> int:
        return 3

    assert run("fnmesh api", lambda: None, main, env={}) == 3


def test_an_asgi_server_serves_on_its_bound_socket_until_stopped() -> None:
    async def hello(request: Request) -> PlainTextResponse:
        return PlainTextResponse("hello")

    app = Starlette(routes=[Route("/", hello)])
    seen: dict[str, object] = {}

    async def main(shell: Shell, config: None) -> None:
        sock = shell.listen("127.0.0.1", 0)  # port 0: the kernel picks
        port = sock.getsockname()[1]
        seen["port"] = port
        await shell.serve_asgi("API", app, sock)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        seen["answer"] = await asyncio.wait_for(reader.read(), 5)
        writer.close()
        seen["pending"] = shell.stops.pending

    assert run("fnmesh api", lambda: None, main, env={}) == 0
    answer = seen["answer"]
    assert isinstance(answer, bytes) and answer.startswith(b"HTTP/1.1 200") and b"hello" in answer
    assert seen["pending"] == ["API", f"listener on 127.0.0.1:{seen['port']}"]
    with socket.socket() as probe:  # stopped: nothing listens there any more
        assert probe.connect_ex(("127.0.0.1", int(str(seen["port"])))) != 0


async def test_a_failing_stop_step_is_logged_and_the_rest_still_run(
    caplog: pytest.LogCaptureFixture,
) -> None:
    stops = Stops()
    ran: list[str] = []
    stops.add("store", lambda: ran.append("store"))

    def fail() -> None:
        raise OSError("disk gone")

    stops.add("log book", fail)
    stops.add("gateway", lambda: ran.append("gateway"))
    with caplog.at_level(logging.ERROR):
        await stops.run()
    assert ran == ["gateway", "store"]
    assert "stopping the log book failed; stopping the rest" in caplog.text
    assert stops.pending == []
