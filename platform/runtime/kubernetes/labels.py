"""Labels, owner references and metadata shared by every object the operator writes."""

from __future__ import annotations

from typing import Any

from fnmesh.platform.model.resources import (
    API_VERSION,
    LABEL_FUNCTION,
    LABEL_REVISION,
    Function,
    Revision,
)

PART_OF = "fnmesh"
MANAGED_BY = "fnmesh-operator"


def function_labels(function: str) -> dict[str, str]:
    """Labels of every object that belongs to ``function``."""
    return {
        LABEL_FUNCTION: function,
        "app.kubernetes.io/name": function,
        "app.kubernetes.io/part-of": PART_OF,
        "app.kubernetes.io/managed-by": MANAGED_BY,
    }


def revision_labels(revision: Revision) -> dict[str, str]:
    """Labels of a revision's Deployment, pods and Service."""
    return {
        **function_labels(revision.spec.function),
        LABEL_REVISION: revision.name,
        "app.kubernetes.io/instance": revision.name,
        "app.kubernetes.io/component": "function",
    }


def owner_reference(owner: Function | Revision) -> dict[str, Any]:
    """A controller reference to ``owner``; it must come from the cluster (it needs a uid)."""
    if not owner.metadata.uid:
        raise ValueError(
            f"{owner.kind} {owner.namespace}/{owner.name} has no metadata.uid: build owned "
            "objects from the object as the cluster returned it"
        )
    return {
        "apiVersion": API_VERSION,
        "kind": owner.kind,
        "name": owner.name,
        "uid": owner.metadata.uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }


def metadata(name: str, owner: Function | Revision, labels: dict[str, str]) -> dict[str, Any]:
    """Metadata of an object named ``name`` in ``owner``'s namespace, controlled by it."""
    return {
        "name": name,
        "namespace": owner.namespace,
        "labels": labels,
        "ownerReferences": [owner_reference(owner)],
    }


def service_account_name(function: Function) -> str:
    """The account a function's replicas run as: ``spec.serviceAccount`` or its own name."""
    return function.spec.service_account or function.name
