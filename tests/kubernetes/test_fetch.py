"""The replicas' init container: an artifact is checked, verified, then put in place."""

from __future__ import annotations

import datetime
import gzip
import http.server
import io
import ssl
import tarfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509

from fnmesh.functions import fetch
from fnmesh.platform.build import bundle_digest, pack
from fnmesh.platform.mesh.identity.ca import CertificateAuthority
from fnmesh.platform.mesh.identity.csr import make_csr
from fnmesh.platform.mesh.identity.names import component_identity
from fnmesh.platform.mesh.identity.tls import TlsCredentials, server_context

SERVER_IDENTITY = component_identity("identity")

FILES = {"fn.yaml": "name: hello\nhandler: main:handle\n", "main.py": "def handle(req): ...\n"}


def source_bundle(tmp_path: Path, files: dict[str, str] = FILES) -> tuple[bytes, str]:
    folder = tmp_path / "src"
    folder.mkdir(exist_ok=True)
    for name, text in files.items():
        (folder / name).write_text(text)
    data = pack(folder)
    return data, bundle_digest(data)


def tar_of(*members: tuple[tarfile.TarInfo, bytes | None]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        for info, content in members:
            if content is not None:
                info.size = len(content)
            tar.addfile(info, io.BytesIO(content) if content is not None else None)
    return gzip.compress(out.getvalue())


def member(
    name: str, content: bytes | None = b"x", **fields: object
) -> tuple[tarfile.TarInfo, bytes | None]:
    info = tarfile.TarInfo(name)
    for key, value in fields.items():
        setattr(info, key, value)
    return info, content


# -- install: the checks, without the network ---------------------------------------------


def test_a_good_artifact_is_put_in_place(tmp_path: Path) -> None:
    data, digest = source_bundle(tmp_path)
    dest = tmp_path / "artifact" / "source"
    got = fetch.install(data, fetch.Fetch("http://x/a", dest, fetch.ARTIFACT_LIMITS, digest))
    assert got == digest
    assert {p.name for p in dest.iterdir()} == set(FILES)
    assert (dest / "main.py").read_text() == FILES["main.py"]
    assert [p.name for p in dest.parent.iterdir()] == ["source"]  # no scratch left behind


def test_a_tampered_artifact_is_refused_and_nothing_is_left(tmp_path: Path) -> None:
    _, digest = source_bundle(tmp_path)
    tampered, _ = source_bundle(tmp_path, {**FILES, "main.py": "import os; os.system('x')\n"})
    dest = tmp_path / "artifact" / "source"
    with pytest.raises(fetch.Refused, match=f"not {digest}"):
        fetch.install(tampered, fetch.Fetch("http://x/a", dest, fetch.ARTIFACT_LIMITS, digest))
    assert not dest.exists()
    assert list(dest.parent.iterdir()) == []


def test_an_existing_destination_is_replaced(tmp_path: Path) -> None:
    data, digest = source_bundle(tmp_path)
    dest = tmp_path / "source"
    dest.mkdir()
    (dest / "stale.py").write_text("old")
    fetch.install(data, fetch.Fetch("http://x/a", dest, fetch.ARTIFACT_LIMITS, digest))
    assert not (dest / "stale.py").exists()


UNSAFE = [
    ("an absolute path", [member("/etc/cron.d/x")], "absolute paths"),
    ("a path leaving the tree", [member("../outside.py")], "inside the bundle"),
    (
        "a symlink out of the tree",
        [member("evil", None, type=tarfile.SYMTYPE, linkname="../../etc/passwd")],
        "leaves the bundle",
    ),
    (
        "an absolute symlink",
        [member("evil", None, type=tarfile.SYMTYPE, linkname="/etc/passwd")],
        "leaves the bundle",
    ),
    (
        "a hard link",
        [member("a.py"), member("b.py", None, type=tarfile.LNKTYPE, linkname="a.py")],
        "hard links",
    ),
    ("a device", [member("dev", None, type=tarfile.CHRTYPE)], "device files"),
    (
        "a file under a symlink",
        [member("lib", None, type=tarfile.SYMTYPE, linkname="."), member("lib/x.py")],
        "through the symlink",
    ),
]


@pytest.mark.parametrize(("what", "members", "why"), UNSAFE, ids=[case[0] for case in UNSAFE])
def test_unsafe_archives_are_refused_before_anything_is_written(
    tmp_path: Path, what: str, members: list[tuple[tarfile.TarInfo, bytes | None]], why: str
) -> None:
    dest = tmp_path / "artifact" / "source"
    for digest in ("sha256:" + "0" * 64, None):  # the environment has no digest: same checks
        limits = fetch.ARTIFACT_LIMITS if digest else fetch.ENVIRONMENT_LIMITS
        with pytest.raises(fetch.Refused, match=why):
            fetch.install(tar_of(*members), fetch.Fetch("http://x/a", dest, limits, digest))
        assert not dest.parent.exists() or list(dest.parent.iterdir()) == []


def test_a_corrupt_archive_is_refused(tmp_path: Path) -> None:
    data, digest = source_bundle(tmp_path)
    with pytest.raises(fetch.Refused, match="not a valid tar"):
        fetch.install(
            data[: len(data) // 2],
            fetch.Fetch("http://x/a", tmp_path / "d", fetch.ARTIFACT_LIMITS, digest),
        )


# -- main: the whole init container against an HTTP server ---------------------------------


def authority() -> CertificateAuthority:
    return CertificateAuthority.create(datetime.datetime.now(datetime.UTC))


def tls_server_context(ca: CertificateAuthority, identity: str = SERVER_IDENTITY) -> ssl.SSLContext:
    """What the artifact service presents: a certificate for ``identity`` from ``ca``."""
    request = make_csr(identity)
    csr = x509.load_pem_x509_csr(request.csr_pem.encode())
    issued = ca.issuer.sign(csr, identity, datetime.datetime.now(datetime.UTC))
    credentials = TlsCredentials(issued.chain_pem, request.key_pem)
    return server_context(ca.trust_anchors_pem, credentials, require_client_cert=False)


class Server:
    """Answers every GET over TLS from a script of (status, body); records the requests."""

    def __init__(self, context: ssl.SSLContext | None = None) -> None:
        self.ca = authority()
        self.script: list[tuple[int, bytes]] = []
        self.seen: list[tuple[str, str | None]] = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.seen.append((self.path, self.headers.get("authorization")))
                status, body = outer.script.pop(0) if len(outer.script) > 1 else outer.script[0]
                self.send_response(status)
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.context = context or tls_server_context(self.ca)
        self.httpd.socket = self.context.wrap_socket(self.httpd.socket, server_side=True)
        self.url = f"https://127.0.0.1:{self.httpd.server_address[1]}"

    def __enter__(self) -> Server:
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server() -> Iterator[Server]:
    with Server() as running:
        yield running


def run_fetch(
    tmp_path: Path, url: str, digest: str, *extra: str, anchors: str | None = None
) -> int:
    token = tmp_path / "token"
    token.write_text("projected-token\n")
    return fetch.main(
        [
            "--url", url, "--digest", digest, "--dest", str(tmp_path / "out" / "source"),
            "--token-file", str(token), "--retry-delay", "0.01",
            "--server-identity", SERVER_IDENTITY, *extra,
        ],
        env={"FNMESH_TRUST_ANCHORS": anchors} if anchors is not None else {},
    )  # fmt: skip


def test_main_fetches_with_the_token_and_verifies(tmp_path: Path, server: Server) -> None:
    data, digest = source_bundle(tmp_path)
    server.script = [(200, data)]
    code = run_fetch(
        tmp_path, f"{server.url}/artifacts/{digest}", digest, anchors=server.ca.trust_anchors_pem
    )
    assert code == fetch.EXIT_OK
    assert server.seen == [(f"/artifacts/{digest}", "Bearer projected-token")]
    assert (tmp_path / "out" / "source" / "fn.yaml").is_file()


def test_main_fetches_the_environment_too(tmp_path: Path, server: Server) -> None:
    data, digest = source_bundle(tmp_path)
    site = tar_of(member("pkg/__init__.py", b"VALUE = 1\n"))
    server.script = [(200, data), (200, site)]
    code = run_fetch(
        tmp_path,
        f"{server.url}/artifacts/{digest}",
        digest,
        "--environment-url", f"{server.url}/environments/abc",
        "--environment-dest", str(tmp_path / "out" / "site"),
        anchors=server.ca.trust_anchors_pem,
    )  # fmt: skip
    assert code == fetch.EXIT_OK
    assert (tmp_path / "out" / "site" / "pkg" / "__init__.py").read_text() == "VALUE = 1\n"


def test_main_refuses_a_tampered_artifact(tmp_path: Path, server: Server) -> None:
    data, _ = source_bundle(tmp_path)
    claimed = "sha256:" + "1" * 64
    server.script = [(200, data)]
    code = run_fetch(tmp_path, f"{server.url}/a", claimed, anchors=server.ca.trust_anchors_pem)
    assert code == fetch.EXIT_REFUSED
    assert not (tmp_path / "out" / "source").exists()


def test_main_retries_while_the_service_is_unavailable(tmp_path: Path, server: Server) -> None:
    data, digest = source_bundle(tmp_path)
    server.script = [(503, b"starting"), (502, b"starting"), (200, data)]
    code = run_fetch(tmp_path, f"{server.url}/a", digest, anchors=server.ca.trust_anchors_pem)
    assert code == fetch.EXIT_OK
    assert len(server.seen) == 3


def test_main_does_not_retry_a_refusal(tmp_path: Path, server: Server) -> None:
    server.script = [(403, b'{"message": "runs no revision using it"}')]
    anchors = server.ca.trust_anchors_pem
    code = run_fetch(tmp_path, f"{server.url}/a", "sha256:" + "2" * 64, anchors=anchors)
    assert code == fetch.EXIT_DOWNLOAD
    assert len(server.seen) == 1


def test_main_gives_up_on_an_unreachable_service(tmp_path: Path) -> None:
    with Server() as gone:
        url, anchors = gone.url, gone.ca.trust_anchors_pem
    code = run_fetch(tmp_path, f"{url}/a", "sha256:" + "2" * 64, "--attempts", "2", anchors=anchors)
    assert code == fetch.EXIT_DOWNLOAD


def test_main_refuses_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as exited:
        run_fetch(tmp_path, "https://x/a", "md5:abc")
    assert exited.value.code == fetch.EXIT_USAGE
    with pytest.raises(SystemExit):
        run_fetch(tmp_path, "https://x/a", "sha256:" + "2" * 64, "--environment-url", "https://x/e")


# -- the token travels only over TLS, to the platform --------------------------------------


@pytest.mark.parametrize(
    ("flag", "url"),
    [("--url", "http://fnmesh-api:8081/artifacts/x"), ("--environment-url", "http://api/e")],
)
def test_a_plain_http_url_is_refused_before_the_token_is_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], flag: str, url: str
) -> None:
    extra = ["--environment-dest", str(tmp_path / "site")]
    args = [flag, url, *extra] if flag == "--environment-url" else []
    main_url = url if flag == "--url" else "https://api/a"
    with pytest.raises(SystemExit) as exited:
        run_fetch(tmp_path, main_url, "sha256:" + "2" * 64, *args, anchors="x")
    assert exited.value.code == fetch.EXIT_USAGE
    error = capsys.readouterr().err
    assert f"{flag} {url!r} is not an https:// URL" in error
    assert "the identity token is only sent over TLS" in error


def test_without_trust_anchors_nothing_is_sent(
    tmp_path: Path, server: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    server.script = [(200, b"")]
    assert run_fetch(tmp_path, f"{server.url}/a", "sha256:" + "2" * 64) == fetch.EXIT_USAGE
    assert "no trust anchors: give --trust-anchors FILE or $FNMESH_TRUST_ANCHORS" in (
        capsys.readouterr().err
    )
    assert server.seen == []


def test_a_server_of_another_authority_never_sees_the_token(
    tmp_path: Path, server: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    server.script = [(200, b"")]
    stranger = authority().trust_anchors_pem
    code = run_fetch(tmp_path, f"{server.url}/a", "sha256:" + "2" * 64, anchors=stranger)
    assert code == fetch.EXIT_DOWNLOAD
    assert "is not the platform's artifact service" in capsys.readouterr().err
    assert server.seen == []


def test_a_server_with_another_identity_never_sees_the_token(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ca = authority()
    impostor = tls_server_context(ca, component_identity("gateway"))
    with Server(impostor) as server:
        server.script = [(200, b"")]
        anchors = tmp_path / "anchors.pem"
        anchors.write_text(ca.trust_anchors_pem)
        code = run_fetch(
            tmp_path, f"{server.url}/a", "sha256:" + "2" * 64, "--trust-anchors", str(anchors)
        )
    assert code == fetch.EXIT_DOWNLOAD
    assert "is not the platform's artifact service" in capsys.readouterr().err
    assert server.seen == []
