"""The store on a cluster: the platform's resources kept as Kubernetes objects.

Each kind lives in a resource of its own:

- ``Function``, ``Revision``: ``fnmesh.dev/v1alpha1`` functions and revisions (custom
  resources with a status subresource, as the chart's CRDs declare them);
- ``TrafficSplit``: SMI's ``split.smi-spec.io`` trafficsplits, in the version the cluster
  serves (``ClusterConfig.split_api_version``; v1alpha2 to v1alpha4 share one shape);
- ``Token``: ``fnmesh.dev/v1alpha1`` tokens, a small custom resource. A Token holds only
  the SHA-256 of an API secret, never the secret, so nothing in it needs a Secret's
  protection; a custom resource keeps the object the same shape as in SQLite and lets the
  API be granted exactly ``tokens`` instead of read access to every Secret in the
  platform's namespace (the chart grants no component any Secret).

The API server does what SQLite does by hand: it stamps ``uid``, ``resourceVersion``,
``generation`` and ``creationTimestamp``, refuses stale writes (409 -> Conflict), and
its watch is the change feed (410 -> Expired). Calls are synchronous, through the
official ``kubernetes`` client's ``ApiClient`` with short timeouts; ``watch`` runs one
blocking watch per kind in a thread and hands events to the event loop. Events of one
kind arrive in order; events of different kinds are not ordered with each other.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import logging
import threading
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from kubernetes import client as k8s
from kubernetes import config as k8s_config

from fnmesh.platform.store.errors import Conflict, Expired, NotFound, StoreError
from fnmesh.platform.store.events import Event

log = logging.getLogger("fnmesh.store.kubernetes")
Obj = dict[str, Any]
_SERVER_FIELDS = ("uid", "resourceVersion", "creationTimestamp", "generation", "managedFields")
_REPLACEABLE = ("labels", "annotations", "ownerReferences", "finalizers")


class ApiError(StoreError):
    """The API server refused a call for another reason than 404, 409 or 410."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True, slots=True)
class Resource:
    """Where objects of one kind live in the Kubernetes API."""

    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool = True
    status: bool = False  # has a status subresource

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    def path(
        self, namespace: str | None = None, name: str | None = None, subresource: str | None = None
    ) -> str:
        """``/apis/<group>/<version>[/namespaces/<ns>]/<plural>[/<name>[/<subresource>]]``."""
        base = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if self.namespaced and namespace is not None:
            base += f"/namespaces/{namespace}"
        parts = [base, self.plural]
        if name is not None:
            parts.append(name)
            if subresource is not None:
                parts.append(subresource)
        return "/".join(parts)

    @classmethod
    def of(cls, api_version: str, plural: str, kind: str, **options: Any) -> Resource:
        group, _, version = api_version.rpartition("/")
        return cls(group, version, plural, kind, **options)


def platform_resources(
    split_api_version: str = "split.smi-spec.io/v1alpha4",
) -> dict[str, Resource]:
    """The resource of each kind the store keeps."""
    return {
        "Function": Resource("fnmesh.dev", "v1alpha1", "functions", "Function", status=True),
        "Revision": Resource("fnmesh.dev", "v1alpha1", "revisions", "Revision", status=True),
        "Token": Resource("fnmesh.dev", "v1alpha1", "tokens", "Token"),
        "TrafficSplit": Resource.of(split_api_version, "trafficsplits", "TrafficSplit"),
    }


def error_for(status: int, message: str) -> StoreError:
    """The store's refusal for an HTTP ``status`` from the API server."""
    if status == 404:
        return NotFound(message)
    if status == 409:
        return Conflict(message)
    if status == 410:
        return Expired(message)
    return ApiError(status, message)


class KubeClient:
    """JSON requests by path through the official client (its auth, TLS and pooling)."""

    def __init__(self, api_client: k8s.ApiClient, *, timeout: float = 10.0) -> None:
        self.api = api_client
        self.timeout = timeout

    @classmethod
    def from_environment(cls, *, timeout: float = 10.0) -> KubeClient:
        """In a pod: its service account; elsewhere: the current kubeconfig context."""
        configuration = k8s.Configuration()
        try:
            k8s_config.load_incluster_config(  # type: ignore[no-untyped-call]
                client_configuration=configuration
            )
        except k8s_config.ConfigException:
            try:
                k8s_config.load_kube_config(  # type: ignore[no-untyped-call]
                    client_configuration=configuration
                )
            except (k8s_config.ConfigException, OSError) as error:
                raise StoreError(
                    f"no Kubernetes configuration: not in a pod, and no usable kubeconfig "
                    f"({error}); set KUBECONFIG or run inside the cluster"
                ) from None
        return cls(k8s.ApiClient(configuration), timeout=timeout)

    def close(self) -> None:
        self.api.close()  # type: ignore[no-untyped-call]

    def request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        query: Mapping[str, str] | None = None,
        content_type: str = "application/json",
    ) -> Obj:
        """The decoded JSON answer; StoreError (NotFound, Conflict, ...) for a refusal."""
        response = self._send(method, path, body, query, content_type, self.timeout)
        try:
            status, decoded = response.status, _decoded(response.read())
        finally:
            response.response.release_conn()
        if not 200 <= status <= 299:
            raise error_for(status, f"{method} {path}: {decoded.get('message') or status}")
        return decoded

    def open_stream(self, path: str, query: Mapping[str, str], read_timeout: float) -> Any:
        """A streaming GET (a watch): the urllib3 response, unread; StoreError if refused."""
        response = self._send("GET", path, None, query, None, (self.timeout, read_timeout))
        if not 200 <= response.status <= 299:
            decoded = _decoded(response.read())
            response.response.release_conn()
            message = decoded.get("message") or response.status
            raise error_for(response.status, f"watch {path}: {message}")
        return response.response

    def _send(
        self,
        method: str,
        path: str,
        body: Any,
        query: Mapping[str, str] | None,
        content_type: str | None,
        timeout: Any,
    ) -> Any:
        headers = {"Accept": "application/json"}
        if body is not None and content_type:
            headers["Content-Type"] = content_type
        method, url, headers, body, _ = self.api.param_serialize(
            method=method,
            resource_path=path,
            query_params=list((query or {}).items()),
            header_params=headers,
            body=body,
            auth_settings=["BearerToken"],
        )
        return self.api.call_api(
            method, url, header_params=headers, body=body, _request_timeout=timeout
        )


def _decoded(data: bytes | None) -> Obj:
    """A JSON object from a response body; {} for an empty or non-JSON one (a proxy's page)."""
    try:
        decoded = json.loads(data) if data else {}
    except ValueError:
        return {}
    return decoded if isinstance(decoded, dict) else {}


def normalized(obj: Obj, resource: Resource) -> Obj:
    """``obj`` as the embedded store returns objects: kind and apiVersion, a status."""
    obj.setdefault("apiVersion", resource.api_version)
    obj.setdefault("kind", resource.kind)
    obj.get("metadata", {}).pop("managedFields", None)
    obj.setdefault("status", {})
    return obj


class KubernetesStore:
    """The Store protocol on custom resources (see the module's docstring)."""

    def __init__(
        self,
        client: KubeClient,
        *,
        resources: Mapping[str, Resource] | None = None,
        watch_timeout: int = 300,
        retry_delay: float = 1.0,
    ) -> None:
        self.client = client
        self.resources = dict(resources or platform_resources())
        self.watch_timeout = watch_timeout
        self.retry_delay = retry_delay

    def close(self) -> None:
        self.client.close()

    def resource(self, kind: str) -> Resource:
        try:
            return self.resources[kind]
        except KeyError:
            raise ValueError(
                f"kind {kind!r} is not kept on Kubernetes: use one of "
                f"{', '.join(sorted(self.resources))}"
            ) from None

    # -- reads -------------------------------------------------------------------------

    def get(self, kind: str, namespace: str, name: str) -> Obj:
        resource = self.resource(kind)
        try:
            found = self.client.request("GET", resource.path(namespace, name))
        except NotFound:
            raise NotFound(f"{kind} {namespace}/{name} not found") from None
        return normalized(found, resource)

    def list(
        self, kind: str, namespace: str | None = None, labels: dict[str, str] | None = None
    ) -> tuple[list[Obj], int]:
        resource = self.resource(kind)
        query = {"labelSelector": ",".join(f"{k}={v}" for k, v in labels.items())} if labels else {}
        listed = self.client.request("GET", resource.path(namespace), query=query)
        items = [normalized(item, resource) for item in listed.get("items") or []]
        items.sort(key=lambda o: (o["metadata"].get("namespace", ""), o["metadata"]["name"]))
        return items, int((listed.get("metadata") or {}).get("resourceVersion") or 0)

    # -- writes ------------------------------------------------------------------------

    def create(self, obj: Obj) -> Obj:
        resource, namespace, name = self._key(obj)
        body = copy.deepcopy(obj)
        body["apiVersion"] = resource.api_version
        meta = body.setdefault("metadata", {})
        meta["namespace"] = namespace
        for server_field in _SERVER_FIELDS:
            meta.pop(server_field, None)
        try:
            created = self.client.request("POST", resource.path(namespace), body=body)
        except Conflict:
            raise Conflict(f"{resource.kind} {namespace}/{name} already exists") from None
        return normalized(created, resource)

    def update(self, obj: Obj) -> Obj:
        """Replace labels, annotations, owner references, finalizers (those given) and spec."""

        def change(body: Obj) -> None:
            for meta_field in _REPLACEABLE:
                if meta_field in obj["metadata"]:
                    body["metadata"][meta_field] = copy.deepcopy(obj["metadata"][meta_field])
            body["spec"] = copy.deepcopy(obj.get("spec"))

        return self._rewrite(obj, change, status=False)

    def update_status(self, obj: Obj) -> Obj:
        def change(body: Obj) -> None:
            body["status"] = copy.deepcopy(obj.get("status") or {})

        return self._rewrite(obj, change, status=True)

    def delete(self, kind: str, namespace: str, name: str) -> Obj:
        resource = self.resource(kind)
        current = self.get(kind, namespace, name)
        try:
            answer = self.client.request("DELETE", resource.path(namespace, name))
        except NotFound:
            raise NotFound(f"{kind} {namespace}/{name} not found") from None
        if answer.get("kind") == resource.kind:
            return normalized(answer, resource)
        return current  # some servers answer a Status: the object as it was

    def _key(self, obj: Obj) -> tuple[Resource, str, str]:
        meta = obj.get("metadata") or {}
        if not meta.get("name"):
            raise ValueError("metadata.name is required: name the object")
        return (
            self.resource(str(obj.get("kind"))),
            str(meta.get("namespace") or "default"),
            meta["name"],
        )

    def _current(self, resource: Resource, namespace: str, name: str, obj: Obj) -> Obj:
        current = self.get(resource.kind, namespace, name)
        wanted = obj["metadata"].get("resourceVersion")
        have = current["metadata"]["resourceVersion"]
        if wanted is not None and str(wanted) != have:
            raise Conflict(
                f"{resource.kind} {namespace}/{name} was changed by someone else (resourceVersion "
                f"{wanted} is stale, now {have}): read it again and retry"
            )
        return current

    def _rewrite(self, obj: Obj, change: Callable[[Obj], None], *, status: bool) -> Obj:
        """PUT the current object as ``change`` leaves it. Without a resourceVersion the
        update is unconditional: a race with another writer is retried on the new state."""
        resource, namespace, name = self._key(obj)
        subresource = "status" if status and resource.status else None
        unconditional = obj["metadata"].get("resourceVersion") is None
        for attempt in range(1, 4):
            current = self._current(resource, namespace, name, obj)
            body = copy.deepcopy(current)
            change(body)
            if body == current:
                return current
            path = resource.path(namespace, name, subresource)
            try:
                return normalized(self.client.request("PUT", path, body=body), resource)
            except Conflict:
                if unconditional and attempt < 3:
                    continue
                raise Conflict(
                    f"{resource.kind} {namespace}/{name} was changed by someone else "
                    f"(resourceVersion {body['metadata']['resourceVersion']} is stale): read "
                    "it again and retry"
                ) from None
        raise AssertionError("unreachable")

    # -- the change feed ---------------------------------------------------------------

    async def watch(self, kinds: frozenset[str], since: int) -> AsyncIterator[Event]:
        """Changes to ``kinds`` after ``since``; Expired when the server no longer has them."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[Event | StoreError] = asyncio.Queue()

        def deliver(item: Event | StoreError) -> None:
            with contextlib.suppress(RuntimeError):  # the loop is gone: nobody is listening
                loop.call_soon_threadsafe(queue.put_nowait, item)

        watchers = [_Watcher(self, self.resource(kind), since, deliver) for kind in sorted(kinds)]
        for watcher in watchers:
            watcher.start()
        try:
            while True:
                item = await queue.get()
                if isinstance(item, StoreError):
                    raise item
                yield item
        finally:
            for watcher in watchers:
                watcher.stop()


@dataclass(eq=False)
class _Watcher:
    """One kind's watch, followed in a thread: reconnects where it stopped until stopped."""

    store: KubernetesStore
    resource: Resource
    version: int
    deliver: Callable[[Event | StoreError], None]
    _stopped: threading.Event = field(default_factory=threading.Event)
    _response: Any = None

    def start(self) -> None:
        name = f"watch {self.resource.plural}"
        threading.Thread(target=self._run, name=name, daemon=True).start()

    def stop(self) -> None:
        self._stopped.set()
        response = self._response
        if response is not None:
            with contextlib.suppress(Exception):
                response.shutdown()  # wakes the thread out of its blocking read

    def _run(self) -> None:
        while not self._stopped.is_set():
            try:
                self._follow()
            except StoreError as error:
                if not self._stopped.is_set():
                    self.deliver(error)
                return
            except Exception as error:
                if self._stopped.is_set():
                    return
                log.warning("watch of %s broke (%s); reconnecting", self.resource.plural, error)
                self._stopped.wait(self.store.retry_delay)

    def _follow(self) -> None:
        timeout = self.store.watch_timeout
        query = {"watch": "true", "allowWatchBookmarks": "true", "timeoutSeconds": str(timeout)}
        if self.version > 0:
            query["resourceVersion"] = str(self.version)
        self._response = response = self.store.client.open_stream(
            self.resource.path(), query, read_timeout=timeout + 30
        )
        try:
            for line in _lines(response):
                if self._stopped.is_set():
                    return
                self._handle(json.loads(line))
        finally:
            self._response = None
            with contextlib.suppress(Exception):
                response.release_conn()

    def _handle(self, raw: Obj) -> None:
        kind, obj = raw.get("type"), raw.get("object") or {}
        if kind == "ERROR":
            code = int(obj.get("code") or 500)
            raise error_for(code, f"watch of {self.resource.plural}: {obj.get('message', code)}")
        version = int((obj.get("metadata") or {}).get("resourceVersion") or 0)
        if kind in ("ADDED", "MODIFIED", "DELETED"):
            self.version = max(self.version, version)
            body = normalized(obj, self.resource)
            self.deliver(Event(kind, self.resource.kind, body, version))
        elif kind == "BOOKMARK":
            self.version = max(self.version, version)


def _lines(response: Any) -> Iterator[bytes]:
    """Newline-delimited JSON from a chunked response, each line as soon as it is complete."""
    pending = b""
    for chunk in response.stream(64 * 1024, decode_content=True):
        pending += chunk
        while b"\n" in pending:
            line, pending = pending.split(b"\n", 1)
            if line.strip():
                yield line
    if pending.strip():
        yield pending
