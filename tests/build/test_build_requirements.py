"""What requirements.txt may say: every refusal names the file, the line and the fix."""

import pytest

from fnmesh.platform.build.requirements import (
    check_requirements,
    includes,
    logical_lines,
    normalize_requirements,
)


@pytest.mark.parametrize(
    "text",
    [
        "requests==2.31.0\n",
        "six\n# a comment\n\nnumpy>=1.26 ; python_version >= '3.10'\n",
        "Django[argon2]~=5.0 --hash=sha256:" + "a" * 64 + "\n",
        "--pre\n--prefer-binary\n--only-binary=:all:\n--require-hashes\n--no-index\n",
        "pkg @ https://example.org/pkg-1.0-py3-none-any.whl\n",
        "pkg @ git+https://example.org/pkg.git@v1\n",
        "-r base.txt\n-c constraints.txt\n--requirement=sub/more.txt\n-rbase.txt\n",
        "-r sub/../base.txt\n",
        "long \\\n  ==1.0\n",
    ],
)
def test_lines_the_platform_accepts(text: str) -> None:
    assert check_requirements(text) == []


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        ("six\n-r ../other/requirements.txt\n", 2, "points outside the function's folder"),
        ("-r /etc/passwd\n", 1, "points outside"),
        ("-c ~/constraints.txt\n", 1, "points outside"),
        ("--constraint=https://example.org/c.txt\n", 1, "points outside"),
        ("-r sub/../../x.txt\n", 1, "points outside"),
        ("pkg @ file:///etc/passwd\n", 1, "file: URLs are not allowed"),
        ("file:../other#egg=x\n", 1, "file: URLs"),
        ("./vendor/lib\n", 1, "local paths are not allowed"),
        ("/srv/wheels/x-1.0-py3-none-any.whl\n", 1, "local paths"),
        ("../sibling\n", 1, "local paths"),
        ("dist/pkg-1.0.tar.gz\n", 1, "local paths"),
        ("pkg @ ./vendor/pkg\n", 1, "local paths"),
        ("-e .\n", 1, "editable installs (-e) are not allowed"),
        ("--editable=git+https://example.org/x.git\n", 1, "editable installs"),
        ("six\n\n--index-url https://evil.example/simple\n", 3, "--index-url is not allowed"),
        ("-i https://evil.example/simple\n", 1, "-i is not allowed"),
        ("--extra-index-url=https://evil.example\n", 1, "--extra-index-url is not allowed"),
        ("--trusted-host evil.example\n", 1, "--trusted-host is not allowed"),
        ("-f https://evil.example/wheels\n", 1, "-f is not allowed"),
        ("--find-links /opt/wheels\n", 1, "--find-links is not allowed"),
        ("six \\\n  --index-url=https://evil\n", 1, "--index-url is not allowed"),
        ("--use-feature=truststore\n", 1, "the pip option --use-feature is not allowed"),
        ("pkg --global-option=--evil\n", 1, "--global-option is not allowed"),
    ],
)
def test_lines_the_platform_refuses(text: str, line: int, words: str) -> None:
    problems = check_requirements(text)
    assert len(problems) == 1, problems
    problem = problems[0]
    assert (problem.file, problem.line) == ("requirements.txt", line)
    assert words in problem.message
    rendered = problem.render()
    assert rendered.startswith(f"requirements.txt line {line}: ")
    assert ";" in problem.message  # every message says what to do instead


def test_index_options_pass_when_the_operator_allows_them() -> None:
    text = "--index-url https://mirror.example/simple\n--trusted-host mirror.example\nsix\n"
    assert [p.line for p in check_requirements(text)] == [1, 2]
    assert check_requirements(text, allow_index_options=True) == []
    assert "build.allow_index_options" in check_requirements(text)[0].message


def test_every_problem_is_reported_with_its_own_line() -> None:
    text = "six\n-e .\n# fine\n./x\n--index-url https://evil\nfile:/etc\n"
    assert [p.line for p in check_requirements(text, file="sub/reqs.txt")] == [2, 4, 5, 6]
    assert all(p.file == "sub/reqs.txt" for p in check_requirements(text, file="sub/reqs.txt"))


def test_includes_are_resolved_from_the_including_file() -> None:
    found = includes("-r base.txt\n-c ../c.txt\n-r ../../out.txt\n", "sub/requirements.txt")
    assert [(i.line, i.option, i.path) for i in found] == [
        (1, "-r", "sub/base.txt"),
        (2, "-c", "c.txt"),
        (3, "-r", None),
    ]


def test_continued_lines_keep_their_first_line_number() -> None:
    assert logical_lines("a \\\n  ==1\r\n\r\nb # c\n") == [(1, "a   ==1"), (4, "b")]
    assert normalize_requirements("# x\nalpha   # first\r\n\r\nbeta==1\r\n") == "alpha\nbeta==1"
