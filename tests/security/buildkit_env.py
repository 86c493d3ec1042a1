"""A scripted pip, run as the platform's user, that installs one module per requirement."""

import sys
import textwrap
from pathlib import Path

_SCRIPT = """\
#!{python}
import os, sys
args = sys.argv[1:]
if args[:1] == ["-c"]:
    os.execv({python!r}, [{python!r}, *args])
target = args[args.index("--target") + 1]
os.makedirs(target, exist_ok=True)
for line in open(args[args.index("-r") + 1]):
    name = line.split("#")[0].strip()
    if name:
        open(os.path.join(target, name + ".py"), "w").write("VERSION = 1\\n")
print("Successfully installed", flush=True)
"""


def make_env_pip(folder: Path) -> str:
    folder.mkdir(parents=True)
    script = folder / "python"
    script.write_text(textwrap.dedent(_SCRIPT.format(python=sys.executable)))
    script.chmod(0o755)
    return str(script)
