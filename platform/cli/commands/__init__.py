"""One module per ``fn`` sub-command.

Each module has ``register(subparsers)``, which adds the command's parser and sets
``run`` as its default, and ``run(args, env) -> int``, which returns the exit code and
raises ``CliError`` for expected failures. Commands import heavier parts of fnmesh inside
``run`` so that ``fn`` starts fast.
"""
