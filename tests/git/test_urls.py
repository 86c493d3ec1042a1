"""Repository URLs: parsing what git requests, making what `fn git-remote` prints."""

from __future__ import annotations

import pytest

from fnmesh.platform.git.urls import (
    GitRequestPath,
    PathError,
    RepoRef,
    parse_request_path,
    remote_url,
)


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/hello.git/info/refs", GitRequestPath(RepoRef("default", "hello"), "info/refs")),
        (
            "/team/hello.git/git-receive-pack",
            GitRequestPath(RepoRef("team", "hello"), "git-receive-pack"),
        ),
        (
            "/hello.git/services/hello/git-upload-pack",
            GitRequestPath(RepoRef("default", "hello", "services/hello"), "git-upload-pack"),
        ),
        (
            "/hello.git/info/info/refs",
            GitRequestPath(RepoRef("default", "hello", "info"), "info/refs"),
        ),
    ],
)
def test_request_paths(path: str, expected: GitRequestPath) -> None:
    assert parse_request_path(path) == expected


@pytest.mark.parametrize(
    ("path", "words"),
    [
        ("/hello.git/HEAD", "not a git smart-HTTP endpoint"),
        ("/hello/info/refs", "names no repository"),
        ("/a/b/hello.git/info/refs", "names no repository"),
        ("/Hello.git/info/refs", "DNS-1123"),
        ("/Team/hello.git/info/refs", "namespace 'Team'"),
        ("/hello.git/../x/info/refs", "sub-folder"),
    ],
)
def test_bad_paths_say_what_a_repository_url_is(path: str, words: str) -> None:
    with pytest.raises(PathError) as caught:
        parse_request_path(path)
    assert words in str(caught.value)
    assert "<api>/git/NAME.git" in str(caught.value) or "sub-folder" in str(caught.value)


def test_remote_urls() -> None:
    api = "http://127.0.0.1:8081/"
    assert remote_url(api, "default", "hello") == "http://127.0.0.1:8081/git/hello.git"
    assert remote_url(api, "team", "hello") == "http://127.0.0.1:8081/git/team/hello.git"
    assert (
        remote_url(api, "default", "hello", "/fns/my hello/")
        == "http://127.0.0.1:8081/git/hello.git/fns/my%20hello"
    )
    url = remote_url(api, "team", "hello", "fns/hello")
    assert parse_request_path(url.split("/git", 1)[1] + "/info/refs").repo == RepoRef(
        "team", "hello", "fns/hello"
    )
