"""Loading a function: import paths, failures and their exit codes, ASGI applications."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from runtimekit import Runtimes, write_source


def test_an_import_failure_exits_3_with_the_traceback(runtimes: Runtimes, tmp_path: Path) -> None:
    source = write_source(tmp_path, {"main.py": "import no_such_module_here\n"})
    runtime = runtimes.start(source)
    assert runtime.port is None
    assert runtime.wait() == 3
    errors = "\n".join(runtime.stderr)
    assert "Traceback" in errors and "no_such_module_here" in errors


def test_a_missing_handler_attribute_exits_3_naming_it(runtimes: Runtimes, tmp_path: Path) -> None:
    source = write_source(tmp_path, {"main.py": "def other(req):\n    return 'x'\n"})
    runtime = runtimes.start(source, "main:handle")
    assert runtime.wait() == 3
    assert any("has no attribute 'handle'" in line for line in runtime.stderr)


def test_a_handler_that_is_not_module_colon_attribute_exits_3(
    runtimes: Runtimes, tmp_path: Path
) -> None:
    runtime = runtimes.start(write_source(tmp_path, {"main.py": ""}), "main")
    assert runtime.wait() == 3
    assert any("is not 'module:attribute'" in line for line in runtime.stderr)


def test_an_init_failure_exits_4(runtimes: Runtimes, tmp_path: Path) -> None:
    source = write_source(
        tmp_path,
        {"main.py": "def init():\n    raise RuntimeError('no db')\n\ndef handle(req):\n    pass\n"},
    )
    runtime = runtimes.start(source)
    assert runtime.wait() == 4
    assert any("RuntimeError: no db" in line for line in runtime.stderr)


def test_sites_are_importable_and_the_source_comes_first(
    runtimes: Runtimes, tmp_path: Path
) -> None:
    site = write_source(
        tmp_path / "site",
        {"depmod.py": "VALUE = 'from site'\n", "shadow.py": "WHO = 'site'\n"},
    )
    source = write_source(
        tmp_path / "src",
        {
            "shadow.py": "WHO = 'source'\n",
            "pkg/__init__.py": "",
            "pkg/entry.py": (
                "import depmod, shadow\n\n"
                "class Api:\n"
                "    @staticmethod\n"
                "    def call(req):\n"
                "        return {'dep': depmod.VALUE, 'shadow': shadow.WHO}\n"
            ),
        },
    )
    runtime = runtimes.start(source, "pkg.entry:Api.call", "--site", str(site))
    assert runtime.request("GET", "/").json() == {"dep": "from site", "shadow": "source"}


STARLETTE_APP = """
import contextlib

from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route


@contextlib.asynccontextmanager
async def lifespan(app):
    print("lifespan startup")
    yield {"greeting": "hi"}
    print("lifespan shutdown")


async def things(request):
    body = await request.body()
    return JSONResponse({
        "greeting": request.state.greeting,
        "path": request.url.path,
        "query": request.url.query,
        "body": body.decode(),
        "id": request.headers["x-request-id"],
    }, status_code=201)


app = Starlette(routes=[Route("/things/{n}", things, methods=["POST"])], lifespan=lifespan)
"""


def test_an_asgi_application_with_lifespan_is_served(runtimes: Runtimes, tmp_path: Path) -> None:
    runtime = runtimes.start(write_source(tmp_path, {"web.py": STARLETTE_APP}), "web:app")
    runtime.wait_for_line(runtime.stdout, "lifespan startup")
    reply = runtime.request("POST", "/things/1?x=1", b"payload", {"x-request-id": "asgi-1"})
    assert reply.status == 201
    assert reply.json() == {
        "greeting": "hi", "path": "/things/1", "query": "x=1", "body": "payload", "id": "asgi-1",
    }  # fmt: skip
    assert reply.headers["x-request-id"] == "asgi-1"
    assert runtime.request("GET", "/nowhere").status == 404
    assert runtime.request("GET", "/_fnmesh/health").body == b"ok"
    runtime.process.terminate()
    assert runtime.wait() == 0
    assert "lifespan shutdown" in runtime.stdout


RAW_ASGI = """
class App:
    async def __call__(self, scope, receive, send):
        assert scope["type"] == "http"  # no lifespan support: raises on that scope
        event = await receive()
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": b"raw ", "more_body": True})
        await send({"type": "http.response.body", "body": event["body"]})


app = App()


async def broken(scope, receive, send):
    raise KeyError("nothing sent")
"""


def test_an_asgi_application_without_lifespan_support_is_served(
    runtimes: Runtimes, tmp_path: Path
) -> None:
    runtime = runtimes.start(write_source(tmp_path, {"raw.py": RAW_ASGI}), "raw:app")
    assert runtime.request("PUT", "/", b"body").body == b"raw body"


def test_an_asgi_application_that_raises_is_500(runtimes: Runtimes, tmp_path: Path) -> None:
    runtime = runtimes.start(write_source(tmp_path, {"raw.py": RAW_ASGI}), "raw:broken")
    reply = runtime.request("GET", "/", headers={"x-request-id": "r-1"})
    assert reply.status == 500
    assert reply.json() == {"error": "the function raised KeyError", "requestId": "r-1"}


def test_the_runtime_imports_nothing_heavy() -> None:
    """Cold starts pay for every import: the runtime stays on the standard library."""
    probe = (
        "import sys, fnmesh.functions.main\n"
        "heavy = {'starlette', 'aiohttp', 'uvicorn', 'yaml', 'kopf', 'kubernetes'}\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy))\n"
    )
    found = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert (found.returncode, found.stdout.strip()) == (0, "[]"), found.stderr
