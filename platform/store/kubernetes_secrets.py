"""Secrets on a cluster: core ``Secret`` objects (type Opaque), one per function secret.

The platform manages only Secrets labelled ``fnmesh.dev/secret: "true"``: it lists only
those, and refuses to replace or delete a Secret of the same name that it did not make
(a service account's token, the chart's admin token). The Secret's name is the secret's
name, so a pod mounts it as it is; the kubelet, not the platform, hands values to pods.
The API never answers with ``data``: it is dropped as soon as an object is read.
"""

from __future__ import annotations

import base64
import datetime
from collections.abc import Callable, Mapping
from typing import Any

from fnmesh.platform.model.secrets import SecretInfo
from fnmesh.platform.store.errors import Conflict, NotFound
from fnmesh.platform.store.kubernetes import KubeClient, Resource

LABEL_SECRET = "fnmesh.dev/secret"
ANNOTATION_UPDATED = "fnmesh.dev/updated"
SECRETS = Resource("", "v1", "secrets", "Secret")


def _utc_now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def make_secret(
    namespace: str, name: str, data: Mapping[str, bytes], updated: str
) -> dict[str, Any]:
    """The Secret object holding ``data`` (pure)."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {LABEL_SECRET: "true"},
            "annotations": {ANNOTATION_UPDATED: updated},
        },
        "type": "Opaque",
        "data": {key: base64.b64encode(data[key]).decode() for key in sorted(data)},
    }


def managed(obj: Mapping[str, Any]) -> bool:
    labels = (obj.get("metadata") or {}).get("labels") or {}
    return labels.get(LABEL_SECRET) == "true"


def info_of(obj: Mapping[str, Any]) -> SecretInfo:
    """What may be said of a Secret object: its name and keys, never its values."""
    meta = obj.get("metadata") or {}
    annotations = meta.get("annotations") or {}
    created = meta.get("creationTimestamp")
    return SecretInfo(
        name=str(meta.get("name")),
        namespace=str(meta.get("namespace") or "default"),
        keys=tuple(sorted(obj.get("data") or {})),
        created=created,
        updated=annotations.get(ANNOTATION_UPDATED) or created,
    )


class KubernetesSecrets:
    """The SecretStore on a cluster (see the module's docstring)."""

    def __init__(self, client: KubeClient, *, now: Callable[[], str] = _utc_now) -> None:
        self.client = client
        self._now = now

    def put(
        self, namespace: str, name: str, data: Mapping[str, bytes], *, replace: bool
    ) -> SecretInfo:
        body = make_secret(namespace, name, data, self._now())
        try:
            created = self.client.request("POST", SECRETS.path(namespace), body=body)
        except Conflict:
            current = self._get(namespace, name, missing_ok=True)
            if current is not None and not managed(current):
                raise Conflict(_foreign(namespace, name)) from None
            if not replace:
                raise Conflict(
                    f"secret {namespace}/{name} already exists: replace it "
                    "(`fn secret create --replace`) or delete it first"
                ) from None
            assert current is not None
            body["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
            created = self.client.request("PUT", SECRETS.path(namespace, name), body=body)
        return info_of(created)

    def info(self, namespace: str, name: str) -> SecretInfo:
        found = self._get(namespace, name)
        assert found is not None
        return info_of(found)

    def list(self, namespace: str | None = None) -> list[SecretInfo]:
        listed = self.client.request(
            "GET", SECRETS.path(namespace), query={"labelSelector": f"{LABEL_SECRET}=true"}
        )
        found = [info_of(item) for item in listed.get("items") or [] if managed(item)]
        return sorted(found, key=lambda s: (s.namespace, s.name))

    def read(self, namespace: str, name: str) -> dict[str, bytes]:
        found = self._get(namespace, name)
        assert found is not None
        return {k: base64.b64decode(v) for k, v in (found.get("data") or {}).items()}

    def delete(self, namespace: str, name: str) -> SecretInfo:
        found = self.info(namespace, name)
        try:
            self.client.request("DELETE", SECRETS.path(namespace, name))
        except NotFound:
            raise NotFound(_missing(namespace, name)) from None
        return found

    def _get(self, namespace: str, name: str, *, missing_ok: bool = False) -> dict[str, Any] | None:
        try:
            found = self.client.request("GET", SECRETS.path(namespace, name))
        except NotFound:
            if missing_ok:
                return None
            raise NotFound(_missing(namespace, name)) from None
        if not managed(found):
            if missing_ok:
                return found
            raise NotFound(_missing(namespace, name))
        return found


def _missing(namespace: str, name: str) -> str:
    return (
        f"secret {namespace}/{name} not found: create it with "
        f"`fn secret create {name} --from-literal KEY=VALUE` (-n {namespace})"
    )


def _foreign(namespace: str, name: str) -> str:
    return (
        f"a Secret {namespace}/{name} exists that fnmesh did not create: choose another "
        "name for the function's secret"
    )
