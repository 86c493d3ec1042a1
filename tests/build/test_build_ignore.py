import pytest

from fnmesh.platform.build.ignore import IgnoreRules, parse_patterns


def rules(text: str) -> IgnoreRules:
    return IgnoreRules(parse_patterns(text))


# (ignore file, path, is the path a folder, ignored?)
CASES = [
    ("*.log", "debug.log", False, True),
    ("*.log", "deep/down/debug.log", False, True),
    ("*.log", "debug.log.txt", False, False),
    ("# a comment\n\n*.log", "# a comment", False, False),
    ("\\#hash", "#hash", False, True),
    ("debug?.txt", "debug1.txt", False, True),
    ("debug?.txt", "debug10.txt", False, False),
    ("debug[0-9].txt", "debug7.txt", False, True),
    ("debug[!0-9].txt", "debugx.txt", False, True),
    ("debug[!0-9].txt", "debug7.txt", False, False),
    ("[unclosed", "[unclosed", False, True),
    # a trailing slash matches folders only
    ("build/", "build", True, True),
    ("build/", "build", False, False),
    ("build/", "src/build", True, True),
    # a leading or inner slash anchors the pattern to the ignore file's folder
    ("/todo.txt", "todo.txt", False, True),
    ("/todo.txt", "sub/todo.txt", False, False),
    ("docs/*.md", "docs/a.md", False, True),
    ("docs/*.md", "docs/deep/a.md", False, False),
    ("docs/*.md", "other/docs/a.md", False, False),
    # '*' does not cross folders, '**' does
    ("**/logs", "logs", True, True),
    ("**/logs", "a/b/logs", True, True),
    ("**/logs/x", "a/logs/x", False, True),
    ("logs/**", "logs/a/b.txt", False, True),
    ("logs/**", "logs", True, False),
    ("a/**/b", "a/b", False, True),
    ("a/**/b", "a/x/y/b", False, True),
    ("a/**/b", "a/x/y/c", False, False),
    ("a*b", "a/b", False, False),
    # '!' re-includes; the last matching pattern wins
    ("*.txt\n!keep.txt", "keep.txt", False, False),
    ("*.txt\n!keep.txt", "drop.txt", False, True),
    ("!keep.txt\n*.txt", "keep.txt", False, True),
    ("\\!bang", "!bang", False, True),
    ("/*\n!/src", "src", True, False),
    ("/*\n!/src", "README", False, True),
    # trailing spaces are dropped unless escaped
    ("notes.txt   ", "notes.txt", False, True),
    ("space\\ ", "space ", False, True),
    # always skipped, whatever the ignore files say
    ("", ".git", True, True),
    ("!.venv\n!__pycache__", ".venv", True, True),
    ("", "pkg/__pycache__", True, True),
    ("!*.pyc", "mod.pyc", False, True),
    ("", "main.py", False, False),
]


@pytest.mark.parametrize(("text", "path", "is_folder", "ignored"), CASES)
def test_patterns(text: str, path: str, is_folder: bool, ignored: bool) -> None:
    assert rules(text).ignored(path, is_folder=is_folder) is ignored


def test_patterns_of_a_subfolder_apply_below_it_and_win() -> None:
    top = rules("*.dat")
    below = top.below(parse_patterns("!keep.dat\n/local.txt", "sub"))
    assert below.ignored("sub/x.dat", is_folder=False)
    assert not below.ignored("sub/keep.dat", is_folder=False)
    assert below.ignored("sub/local.txt", is_folder=False)
    assert not below.ignored("local.txt", is_folder=False)
    assert not below.ignored("sub/deeper/local.txt", is_folder=False)
    assert not below.ignored("subway/local.txt", is_folder=False)
