"""Resource types and their validation: Function, Revision, TrafficSplit.

Purely computational: no I/O, no clock, no environment here. Everything above (store,
API, controller, gateway, CLI) speaks these types; validation reports every error with
its field path and the fix.
"""

from fnmesh.platform.model.errors import FieldError, ValidationError
from fnmesh.platform.model.manifest import Manifest, parse_manifest
from fnmesh.platform.model.names import DEFAULT_NAMESPACE, check_name
from fnmesh.platform.model.resources import (
    API_VERSION,
    Artifact,
    Condition,
    Function,
    FunctionSpec,
    FunctionStatus,
    ObjectMeta,
    ReplicaStatus,
    ResourcesSpec,
    Revision,
    RevisionSpec,
    RevisionStatus,
    RolloutSpec,
    ScaleSpec,
    TrafficTarget,
)

__all__ = [
    "API_VERSION",
    "DEFAULT_NAMESPACE",
    "Artifact",
    "Condition",
    "FieldError",
    "Function",
    "FunctionSpec",
    "FunctionStatus",
    "Manifest",
    "ObjectMeta",
    "ReplicaStatus",
    "ResourcesSpec",
    "Revision",
    "RevisionSpec",
    "RevisionStatus",
    "RolloutSpec",
    "ScaleSpec",
    "TrafficTarget",
    "ValidationError",
    "check_name",
    "parse_manifest",
]
