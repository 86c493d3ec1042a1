import sys

from fnmesh.functions.main import main

sys.exit(main())
