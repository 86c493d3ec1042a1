"""``python -m fnmesh.platform.mesh.proxy``: see ``fnmesh.platform.mesh.proxy.main``."""

import sys

from fnmesh.platform.mesh.proxy.main import main

sys.exit(main())
