"""The control-plane REST API (Starlette): functions, source upload, revisions, logs.

Kubernetes-shaped paths and objects (``/apis/fnmesh.dev/v1alpha1/namespaces/{ns}/...``),
bearer-token authentication for everything but ``/healthz`` and ``/openapi.json``, and
errors as Kubernetes ``Status`` objects that name the field and the fix.
"""

from fnmesh.platform.api.app import build_app
from fnmesh.platform.api.deps import ApiDeps

__all__ = ["ApiDeps", "build_app"]
