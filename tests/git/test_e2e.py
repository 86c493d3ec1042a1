"""`git push` against `fn up`: the real git client, CLI, platform and function replicas."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from gitkit import WorkTree, git_env, timed_run
from support.e2e import EXAMPLES, Platform, wait_for

BROKEN_REQUIREMENTS = "--no-index\nfnmesh-no-such-package-anywhere==1.0\n"


def user_env(platform: Platform, tmp_path: Path) -> dict[str, str]:
    """The platform's CLI environment, with git isolated from this machine's config."""
    return {**platform.env(), **git_env(tmp_path / "user")}


def fn_git_remote(platform: Platform, work: WorkTree, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "fnmesh.platform.cli", "git-remote", *args],
        cwd=work.path,
        env=work.env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def hello_tree(platform: Platform, tmp_path: Path) -> WorkTree:
    work = WorkTree(tmp_path / "hello", user_env(platform, tmp_path))
    work.commit({p.name: p.read_text() for p in (EXAMPLES / "hello").iterdir()})
    url = fn_git_remote(platform, work, "hello")
    assert url == f"{platform.api}/git/hello.git"
    return work


def served(platform: Platform, text: str) -> bool:
    reply = platform.invoke("/fn/hello/?name=git")
    return reply.status == 200 and text.encode() in reply.body


def test_push_deploys_new_code_and_a_failed_build_keeps_the_old_code_serving(
    platform: Platform, tmp_path: Path
) -> None:
    work = hello_tree(platform, tmp_path)
    first = work.run("push", "fn", "main", check=False)
    assert first.code == 0, first.text + platform.logs()
    remote = [line for line in first.err.splitlines() if line.startswith("remote:")]
    assert "revision hello-00001 serves commit" in remote[-2]
    assert f"URL: {platform.gateway}/fn/hello/" in remote[-1]
    assert served(platform, "Hello, git!")

    main = work.path / "main.py"
    howdy = work.commit({"main.py": main.read_text().replace("Hello", "Howdy")})
    second = work.run("push", "fn", "main", check=False)
    assert second.code == 0, second.text + platform.logs()
    assert served(platform, "Howdy, git!")  # ready means served: no waiting here

    work.commit({"requirements.txt": BROKEN_REQUIREMENTS, "main.py": "raise SystemExit\n"})
    broken = work.run("push", "fn", "main", check=False)
    assert broken.code != 0
    assert "! [remote rejected] main -> main" in broken.err
    assert "fnmesh-no-such-package-anywhere" in broken.err
    assert work.run("ls-remote", "fn", "main").out.split()[0] == howdy
    assert served(platform, "Howdy, git!")


def test_wrong_or_missing_tokens_are_refused(platform: Platform, tmp_path: Path) -> None:
    env = user_env(platform, tmp_path)
    work = WorkTree(tmp_path / "hello", env)
    work.commit({p.name: p.read_text() for p in (EXAMPLES / "hello").iterdir()})
    url = f"{platform.api}/git/hello.git"
    missing = work.run("push", url, "main", check=False)
    assert missing.code != 0 and "terminal prompts disabled" in missing.err
    wrong = work.run("push", url.replace("http://", "http://fn:fnm_wrong@"), "main", check=False)
    assert wrong.code != 0 and "Authentication failed" in wrong.err
    assert "API token" in wrong.err  # the platform's 401 text, shown as a remote: line
    functions = platform.fn("list", "-o", "json", check=True)
    assert "hello" not in functions.stdout


def test_build_lines_reach_git_while_the_push_runs(platform: Platform, tmp_path: Path) -> None:
    work = WorkTree(tmp_path / "slow", user_env(platform, tmp_path))
    work.commit(
        {
            "fn.yaml": "name: slow\nhandler: main:handle\n",
            # the replica is ready only after init: the push waits for it after the build
            "main.py": "import time\n\ndef init():\n    time.sleep(1.5)\n\n"
            "def handle(req):\n    return 'slow'\n",
        }
    )
    fn_git_remote(platform, work, "slow")
    code, lines = timed_run(["git", "push", "fn", "main"], work.path, work.env)
    text = "\n".join(line.text for line in lines)
    assert code == 0, text + platform.logs()
    built = next(line for line in lines if "succeeded in" in line.text)
    serving = next(line for line in lines if "revision slow-00001 serves" in line.text)
    assert serving.at - built.at >= 1.0, text  # it came while the replica was starting
    wait_for("slow to answer", lambda: platform.invoke("/fn/slow/").status == 200)
