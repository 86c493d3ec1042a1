"""``python -m fnmesh.platform.cli``: the same as the ``fn`` command."""

import sys

from fnmesh.platform.cli.main import main

sys.exit(main())
