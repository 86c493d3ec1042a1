"""An in-memory Kubernetes API server for tests: kmock's emulator plus the server's books.

kmock's ``KubernetesEmulator`` keeps objects and serves discovery, lists, watches and
fetches over real HTTP, but leaves out what the operator and the store rely on. ``KubeApi``
adds it, and nothing more:

- writes stamp ``uid``, ``creationTimestamp``, ``resourceVersion`` (one counter for the
  whole server, as etcd's revision) and ``generation`` (bumped when ``spec`` changes);
- ``PUT`` replaces an object; a stale ``metadata.resourceVersion`` on PUT or PATCH is a
  409, as is creating what exists;
- ``PATCH`` takes merge patches and JSON patches; a failed JSON-patch ``test`` is a 422
  (kopf's optimistic writes depend on it), never a 500;
- resources with a ``status`` subresource keep status and the rest apart: the main
  resource ignores status, ``.../status`` changes only status; ``deployments/scale``
  reads and sets ``spec.replicas``;
- deleting an object with finalizers marks it (``deletionTimestamp``) until they are gone;
- lists and watches honour ``labelSelector``; a watch from a ``resourceVersion`` replays
  what happened after it (or ends with a 410 ERROR event when that is no longer kept),
  and ends after ``timeoutSeconds``;
- "review" resources (TokenReview) keep nothing: the test answers them with a reaction;
- ``/api/v1/namespaces`` is the list of namespaces (kmock reads it as a namespace prefix);
- **authentication and RBAC**: every request carries a bearer token. ``ADMIN_TOKEN`` is
  the test acting as cluster admin; ``token_for(component)`` is the token of that
  component's ServiceAccount in the chart, whose Roles and bindings are read from
  ``helm template`` (``rbac.py``). A request its roles do not grant (verb, resource,
  subresource, namespace) is a 403 ``Status``; no token is ``system:anonymous``, an
  unknown one a 401;
- **custom resources are admitted** as the chart's CRDs say (``crdschema.py``): unknown
  fields pruned, the schema checked (422 naming the field), ``self == oldSelf`` rules held;
- **garbage collection**: when an object goes, the objects whose every owner reference
  points at something gone go too (background propagation; ``Orphan`` keeps them).

``ApiThread`` serves it from a thread of its own, for blocking clients and for kopf in
another thread.
"""

from __future__ import annotations

import asyncio
import collections
import copy
import datetime
import threading
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import aiohttp.web
import attrs
import jsonpatch
import jsonpointer
import kmock
import kubernetes
import yaml
from crdschema import Admission, Invalid
from helmchart import render, service_account
from kmock._internal import parsing
from rbac import ANONYMOUS, MASTERS, Attributes, Rbac, User

Obj = dict[str, Any]


def _info(kind: str, *, namespaced: bool = True, subresources: tuple[str, ...] = ()) -> Any:
    return kmock.ResourceInfo(
        kind=kind,
        singular=kind.lower(),
        namespaced=namespaced,
        verbs={"get", "list", "watch", "create", "update", "patch", "delete"},
        subresources=set(subresources),
    )


# What the platform reads and writes; "v1/namespaces" must be there or kopf never watches.
RESOURCES: dict[str, Any] = {
    "v1/namespaces": _info("Namespace", namespaced=False),
    "v1/events": _info("Event"),
    "v1/services": _info("Service", subresources=("status",)),
    "v1/serviceaccounts": _info("ServiceAccount"),
    "v1/secrets": _info("Secret"),
    "v1/pods": _info("Pod", subresources=("status",)),
    "apps/v1/deployments": _info("Deployment", subresources=("status", "scale")),
    "fnmesh.dev/v1alpha1/functions": _info("Function", subresources=("status",)),
    "fnmesh.dev/v1alpha1/revisions": _info("Revision", subresources=("status",)),
    "fnmesh.dev/v1alpha1/tokens": _info("Token"),
    "split.smi-spec.io/v1alpha4/trafficsplits": _info("TrafficSplit"),
    "access.smi-spec.io/v1alpha3/traffictargets": _info("TrafficTarget"),
    "specs.smi-spec.io/v1alpha4/httproutegroups": _info("HTTPRouteGroup"),
    "authentication.k8s.io/v1/tokenreviews": _info("TokenReview", namespaced=False),
    # kopf's peering, for more than one operator replica
    "kopf.dev/v1/clusterkopfpeerings": _info("ClusterKopfPeering", namespaced=False),
    "kopf.dev/v1/kopfpeerings": _info("KopfPeering"),
}
READ_ACTIONS = (kmock.action.LIST, kmock.action.WATCH, kmock.action.FETCH)
_SERVER_FIELDS = ("uid", "creationTimestamp", "generation", "name", "namespace")
ADMIN_TOKEN = "test-cluster-admin"  # the test itself, acting as the cluster's admin
ADMIN = User("kubernetes-admin", (MASTERS, "system:authenticated"))
COMPONENTS = ("api", "gateway", "activator", "autoscaler", "operator")


AS_ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def token_for(component: str) -> str:
    """The bearer token of a component's ServiceAccount (as a pod would mount it)."""
    namespace, name = service_account(component)
    return f"serviceaccount.{namespace}.{name}"


def configuration(url: str, component: str | None = None) -> kubernetes.client.Configuration:
    """A client configuration for ``url`` with ``component``'s token (None: the admin's)."""
    config = kubernetes.client.Configuration(host=url)
    config.api_key = {"authorization": ADMIN_TOKEN if component is None else token_for(component)}
    config.api_key_prefix = {"authorization": "Bearer"}
    return config


def chart_rbac() -> Rbac:
    """The Roles and bindings of the chart's default values (cached by the renderer)."""
    return Rbac.from_objects(render())


def chart_users() -> dict[str, User]:
    users = {ADMIN_TOKEN: ADMIN}
    for component in COMPONENTS:
        users[token_for(component)] = User.service_account(*service_account(component))
    return users


_parse_path = parsing.parse_path


def _parse_namespaces(path: str) -> Any:
    """kmock reads ``/api/v1/namespaces`` as a namespace prefix missing its name; it is the
    list of namespaces (kopf reads it when it serves some namespaces only)."""
    if path.rstrip("/") == "/api/v1/namespaces":
        return parsing.ParsedPath(group="", version="v1", plural="namespaces")
    return _parse_path(path)


parsing.parse_path = _parse_namespaces


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _fail(
    status: int, reason: str, message: str, details: dict[str, Any] | None = None
) -> Exception:
    return kmock.KubernetesError(
        status=status, reason=reason, message=message, details=details or {}
    )


def _verb(request: kmock.Request) -> str:
    method = request.method.value if request.method else "GET"
    if method == "GET":
        if request.params.get("watch") in ("true", "1"):
            return "watch"
        return "get" if request.name is not None else "list"
    if method == "DELETE" and request.name is None:
        return "deletecollection"
    return {"POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}.get(
        method, method.lower()
    )


def selector_matches(selector: str, labels: dict[str, str]) -> bool:
    """Whether ``labels`` match a label selector: ``a=b``, ``a==b``, ``a!=b``, ``a``, ``!a``."""
    for term in filter(None, (t.strip() for t in selector.split(","))):
        if "!=" in term:
            key, value = (part.strip() for part in term.split("!=", 1))
            if labels.get(key) == value:
                return False
        elif "=" in term:
            key, value = (part.strip() for part in term.replace("==", "=").split("=", 1))
            if labels.get(key) != value:
                return False
        elif term.startswith("!"):
            if term[1:].strip() in labels:
                return False
        elif term not in labels:
            return False
    return True


@attrs.define(kw_only=True)
class KubeApi(kmock.KubernetesEmulator):
    """kmock's emulator with the API server's bookkeeping (see the module's docstring)."""

    keep_events: int = 10_000
    rbac: Rbac | None = attrs.field(factory=chart_rbac)  # None: every request is allowed
    users: dict[str, User] = attrs.field(factory=chart_users)  # bearer token -> user
    admission: Admission | None = attrs.field(factory=Admission.from_chart)
    _version: int = attrs.field(default=0, init=False)
    _log: collections.deque[tuple[int, Any, Obj]] = attrs.field(
        factory=collections.deque, init=False
    )
    _forgotten: int = attrs.field(default=0, init=False)  # newest version dropped from _log

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        for key, info in RESOURCES.items():
            self.resources[key] = info

    # -- writes ----------------------------------------------------------------------------

    async def _handle(self, request: kmock.Request) -> aiohttp.web.StreamResponse:
        self._authorize(request)
        resource = request.resource
        if resource is None or request.action in READ_ACTIONS:
            return await super()._handle(request)
        if (resource.plural or "").endswith("reviews"):
            return await kmock.RawHandler._handle(self, request)  # only the test's reactions
        async with self._lock:
            status, body = await self._write(request)
        return aiohttp.web.json_response(body, status=status)

    # -- who may ----------------------------------------------------------------------------

    def _user(self, request: kmock.Request) -> User:
        header = request.headers.get("Authorization") or request.headers.get("authorization")
        if not header:
            return ANONYMOUS
        scheme, _, token = header.partition(" ")
        user = self.users.get(token.strip()) if scheme.lower() == "bearer" else None
        if user is None:
            raise _fail(401, "Unauthorized", "Unauthorized")
        return user

    def _authorize(self, request: kmock.Request) -> None:
        user = self._user(request)
        resource = request.resource
        if self.rbac is None or resource is None or not resource.plural:
            return  # discovery and /version: every authenticated user may read them
        wanted = Attributes(
            user=user,
            verb=_verb(request),
            group=resource.group or "",
            resource=resource.plural or "",
            subresource=request.subresource,
            namespace=request.namespace,
            name=request.name,
        )
        if not self.rbac.allows(wanted):
            details = {"group": wanted.group, "kind": wanted.resource}
            if wanted.name:
                details["name"] = wanted.name
            raise _fail(403, "Forbidden", wanted.refusal(), details)

    def _admit(self, request: kmock.Request, new: Obj, old: Obj | None) -> Obj:
        """A custom resource as the server keeps it (pruned, validated), or a 422."""
        resource = request.resource
        if self.admission is None or resource is None:
            return new
        found = self.admission.schema_for(
            resource.group or "", resource.version or "", resource.plural or ""
        )
        if found is None:
            return new
        kind, schema = found
        try:
            return self.admission.admit(schema, new, old)
        except Invalid as error:
            name = (new.get("metadata") or {}).get("name") or request.name or ""
            message = f'{kind}.{resource.group} "{name}" is invalid: {error}'
            cause = {"reason": "FieldValueInvalid", "message": str(error), "field": error.field}
            details = {"name": name, "group": resource.group, "kind": kind, "causes": [cause]}
            raise _fail(422, "Invalid", message, details) from None

    # -- writes (continued) -----------------------------------------------------------------

    async def _write(self, request: kmock.Request) -> tuple[int, Obj]:
        method = request.method.value if request.method else ""
        if method == "POST" and request.name is None:
            return 201, await self._create(request)
        if request.name is None:
            raise _fail(405, "MethodNotAllowed", f"{method} needs an object's name in the path")
        current = self._current(request.resource, request.namespace, request.name)
        if method == "DELETE":
            return 200, await self._delete(request, current)
        if method == "PUT":
            wanted = copy.deepcopy(request.data)
        elif method == "PATCH":
            wanted = self._patched(request, current)
        else:
            raise _fail(405, "MethodNotAllowed", f"{method} is not served for objects")
        self._check_version(wanted, current)
        sub = request.subresource
        if sub == "scale":
            replicas = ((request.data or {}).get("spec") or {}).get("replicas")
            result = copy.deepcopy(current)
            result.setdefault("spec", {})["replicas"] = replicas
            written = await self._commit(request, current, result)
            return 200, _scale(written)
        if sub == "status":
            result = copy.deepcopy(current)
            result["status"] = wanted.get("status") or {}
        elif sub is None:
            result = wanted
            if "status" in self._info(request.resource).subresources:
                result.pop("status", None)
                if "status" in current:
                    result["status"] = copy.deepcopy(current["status"])
        else:
            raise _fail(404, "NotFound", f"subresource {sub!r} is not served")
        result = self._admit(request, result, current)
        return 200, await self._commit(request, current, result)

    def _patched(self, request: kmock.Request, current: Obj) -> Obj:
        if request.subresource == "scale":
            return _scale(current)  # the new spec.replicas is read from the request itself
        patch = request.data
        try:
            if isinstance(patch, list):
                return dict(jsonpatch.apply_patch(copy.deepcopy(current), patch))
            if isinstance(patch, dict):
                return _merge(copy.deepcopy(current), patch)
        except jsonpatch.JsonPatchTestFailed as error:
            raise _fail(422, "Invalid", f"the patch's test failed: {error}") from None
        except (jsonpatch.JsonPatchException, jsonpointer.JsonPointerException) as error:
            raise _fail(422, "Invalid", f"the patch cannot be applied: {error}") from None
        raise _fail(400, "BadRequest", "a patch must be a JSON object or a JSON-patch list")

    def _check_version(self, wanted: Obj, current: Obj) -> None:
        given = (wanted.get("metadata") or {}).get("resourceVersion")
        have = current["metadata"]["resourceVersion"]
        if given is not None and str(given) != have:
            raise _fail(
                409,
                "Conflict",
                f"the object has been modified; resourceVersion {given} is stale, now {have}",
            )

    async def _create(self, request: kmock.Request) -> Obj:
        body = copy.deepcopy(request.data) if isinstance(request.data, dict) else {}
        meta = body.setdefault("metadata", {})
        name = meta.get("name") or (meta.get("generateName", "") + uuid.uuid4().hex[:5])
        namespace = request.namespace if self._info(request.resource).namespaced else None
        if not name:
            raise _fail(422, "Invalid", "metadata.name is required")
        key = (request.resource, namespace, name)
        if key in self.objects and not self.objects[key].deleted:
            raise _fail(409, "AlreadyExists", f"{request.resource.plural} {name!r} already exists")
        meta.update(name=name, uid=str(uuid.uuid4()), creationTimestamp=_now(), generation=1)
        meta.pop("resourceVersion", None)
        if namespace is not None:
            meta["namespace"] = namespace
        if "status" in self._info(request.resource).subresources:
            body.pop("status", None)
        body = self._admit(request, body, None)
        meta = body["metadata"]
        meta["resourceVersion"] = self._next()
        if key in self.objects:
            self.objects[key].create(body)
        else:
            self.objects[key] = body
        await self._emit(request.resource, "ADDED", body)
        return copy.deepcopy(body)

    async def _commit(self, request: kmock.Request, current: Obj, result: Obj) -> Obj:
        meta = result.setdefault("metadata", {})
        for field in _SERVER_FIELDS:
            if field in current["metadata"]:
                meta[field] = current["metadata"][field]
            else:
                meta.pop(field, None)
        if "deletionTimestamp" in current["metadata"]:
            meta["deletionTimestamp"] = current["metadata"]["deletionTimestamp"]
        if result.get("spec") != current.get("spec"):
            meta["generation"] = int(current["metadata"].get("generation", 1)) + 1
        meta["resourceVersion"] = current["metadata"]["resourceVersion"]
        if result == current:
            return copy.deepcopy(current)
        meta["resourceVersion"] = self._next()
        key = (request.resource, request.namespace, request.name)
        self.objects[key].history.append(result)
        if meta.get("deletionTimestamp") and not meta.get("finalizers"):
            self.objects[key].delete()
            await self._emit(request.resource, "DELETED", result)
            await self._collect_garbage()
        else:
            await self._emit(request.resource, "MODIFIED", result)
        return copy.deepcopy(result)

    async def _delete(self, request: kmock.Request, current: Obj) -> Obj:
        options = request.data if isinstance(request.data, dict) else {}
        policy = options.get("propagationPolicy") or request.params.get("propagationPolicy")
        if policy == "Orphan":
            await self._orphan(current["metadata"].get("uid"))
        if current["metadata"].get("finalizers"):
            if current["metadata"].get("deletionTimestamp"):
                return current
            marked = copy.deepcopy(current)
            marked["metadata"]["deletionTimestamp"] = _now()
            return await self._commit(request, current, marked)
        gone = copy.deepcopy(current)
        gone["metadata"]["resourceVersion"] = self._next()
        self.objects[request.resource, request.namespace, request.name].delete()
        await self._emit(request.resource, "DELETED", gone)
        await self._collect_garbage()
        return gone

    # -- garbage collection -------------------------------------------------------------------

    async def _collect_garbage(self) -> None:
        """Delete every object whose owners are all gone, until none is left (background)."""
        while True:
            live = {
                obj.raw["metadata"].get("uid") for obj in self.objects.values() if not obj.deleted
            }
            orphans = [
                (key, obj)
                for key, obj in self.objects.items()
                if not obj.deleted
                and (refs := obj.raw["metadata"].get("ownerReferences"))
                and not any(ref.get("uid") in live for ref in refs)
                and not obj.raw["metadata"].get("deletionTimestamp")
            ]
            if not orphans:
                return
            for (resource, _, _), obj in orphans:
                raw = copy.deepcopy(obj.raw)
                if raw["metadata"].get("finalizers"):
                    raw["metadata"]["deletionTimestamp"] = _now()
                    raw["metadata"]["resourceVersion"] = self._next()
                    obj.history.append(raw)
                    await self._emit(resource, "MODIFIED", raw)
                else:
                    raw["metadata"]["resourceVersion"] = self._next()
                    obj.delete()
                    await self._emit(resource, "DELETED", raw)

    async def _orphan(self, uid: str | None) -> None:
        """``propagationPolicy: Orphan``: dependents lose their reference to ``uid``."""
        for (resource, _, _), obj in self.objects.items():
            refs = obj.raw["metadata"].get("ownerReferences") or []
            if obj.deleted or not any(ref.get("uid") == uid for ref in refs):
                continue
            raw = copy.deepcopy(obj.raw)
            kept = [ref for ref in refs if ref.get("uid") != uid]
            if kept:
                raw["metadata"]["ownerReferences"] = kept
            else:
                raw["metadata"].pop("ownerReferences")
            raw["metadata"]["resourceVersion"] = self._next()
            obj.history.append(raw)
            await self._emit(resource, "MODIFIED", raw)

    def _current(self, resource: Any, namespace: str | None, name: str) -> Obj:
        key = (resource, namespace, name)
        if key not in self.objects or self.objects[key].deleted:
            raise _fail(404, "NotFound", f'{resource.plural} "{name}" not found')
        return copy.deepcopy(self.objects[key].raw)

    def _info(self, resource: Any) -> Any:
        if resource not in self.resources:
            raise _fail(404, "NotFound", f"the server does not serve {resource!r}")
        return self.resources[resource]

    def _next(self) -> str:
        self._version += 1
        return str(self._version)

    async def _emit(self, resource: Any, kind: str, body: Obj) -> None:
        event = {"type": kind, "object": copy.deepcopy(body)}
        self._log.append((self._version, resource, event))
        while len(self._log) > self.keep_events:
            self._forgotten = self._log.popleft()[0]
        await self._buses[resource].put(event)

    # -- reads -----------------------------------------------------------------------------

    def _matching(self, request: kmock.Request) -> Callable[[Obj], bool]:
        selector = request.params.get("labelSelector", "")

        def matches(obj: Obj) -> bool:
            meta = obj.get("metadata") or {}
            if request.namespace is not None and meta.get("namespace") != request.namespace:
                return False
            if request.name is not None and meta.get("name") != request.name:
                return False
            return selector_matches(selector, meta.get("labels") or {})

        return matches

    async def _serve_list(self, request: kmock.Request) -> Any:
        info = self._info(request.resource)
        matches = self._matching(request)
        async with self._lock:
            items = [
                copy.deepcopy(obj.raw)
                for (resource, _, _), obj in self.objects.items()
                if resource == request.resource and not obj.deleted and matches(obj.raw)
            ]
            listed = str(self._version)
        group, version = request.resource.group, request.resource.version
        return {
            "apiVersion": f"{group}/{version}" if group else version,
            "kind": f"{info.kind}List",
            "metadata": {"resourceVersion": listed},
            "items": items,
        }

    async def _serve_watch(self, request: kmock.Request) -> AsyncIterator[Any]:
        yield b""  # the headers go out now, even if nothing happens for a while
        matches = self._matching(request)
        since = request.params.get("resourceVersion", "")
        bus = self._buses[request.resource]
        async with self._lock:
            mark = await bus.mark()
            if since.isdigit() and int(since) > 0:
                if int(since) < self._forgotten:
                    yield _expired(since)
                    await bus.unmark(mark)
                    return
                backlog = [e for v, r, e in self._log if r == request.resource and v > int(since)]
            else:
                backlog = [
                    {"type": "ADDED", "object": copy.deepcopy(obj.raw)}
                    for (resource, _, _), obj in self.objects.items()
                    if resource == request.resource and not obj.deleted
                ]
        timeout = float(request.params.get("timeoutSeconds") or 0)
        deadline = asyncio.get_running_loop().time() + timeout if timeout > 0 else None
        stream = aiter(bus.stream(since=mark))
        try:
            for event in backlog:
                if matches(event["object"]):
                    yield event
            while True:
                left = None if deadline is None else deadline - asyncio.get_running_loop().time()
                try:
                    event = await asyncio.wait_for(anext(stream), left)
                except TimeoutError:
                    return  # as the API server does at timeoutSeconds: the client watches again
                if matches(event["object"]):
                    yield event
        finally:
            await bus.unmark(mark)


def _scale(deployment: Obj) -> Obj:
    meta = deployment.get("metadata") or {}
    return {
        "apiVersion": "autoscaling/v1",
        "kind": "Scale",
        "metadata": {
            key: meta[key]
            for key in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
            if key in meta
        },
        "spec": {"replicas": (deployment.get("spec") or {}).get("replicas", 0)},
        "status": {"replicas": (deployment.get("status") or {}).get("replicas", 0)},
    }


def _expired(since: str) -> Obj:
    return {
        "type": "ERROR",
        "object": {
            "apiVersion": "v1",
            "kind": "Status",
            "status": "Failure",
            "code": 410,
            "reason": "Expired",
            "message": f"too old resource version: {since}",
        },
    }


def _merge(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch: objects merge, null removes, anything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = _merge(result.get(key), value)
    return result


# -- running it beside synchronous code --------------------------------------------------


class ApiThread:
    """``KubeApi`` served on 127.0.0.1 from a thread of its own, with its own event loop.

    Blocking clients (the official ``kubernetes`` client, the store) can then call it from
    the test's thread; ``call`` runs a coroutine on the server's loop and waits for it.
    """

    def __init__(self, api: KubeApi | None = None, namespaces: tuple[str, ...] = ()) -> None:
        self.api = api if api is not None else KubeApi()
        self.namespaces = namespaces
        self.url = ""
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._failure: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="kmock", daemon=True)

    def __enter__(self) -> ApiThread:
        self._thread.start()
        if not self._ready.wait(10) or self._failure is not None:
            raise RuntimeError(f"the Kubernetes API did not start: {self._failure!r}")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)

    def call(self, coro: Any, timeout: float = 10.0) -> Any:
        future: Future[Any] = asyncio.run_coroutine_threadsafe(coro, self._loop)
        return future.result(timeout)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._serve())
        except BaseException as error:  # reported to __enter__
            self._failure = error
            self._ready.set()
        finally:
            self._loop.run_until_complete(self._loop.shutdown_asyncgens())
            self._loop.close()

    async def _serve(self) -> None:
        self._stop = asyncio.Event()
        async with self.api, kmock.Server(self.api) as server:
            self.url = str(server.url).rstrip("/")
            for namespace in self.namespaces:
                body = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}
                sent = await self.api.post("/api/v1/namespaces", json=body, headers=AS_ADMIN)
                await sent.release()
            self._ready.set()
            await self._stop.wait()

    # -- what tests do to the cluster --------------------------------------------------

    def objects(self, plural: str, namespace: str | None = None) -> Iterator[Obj]:
        """Copies of the live objects of ``plural`` (e.g. "apps/v1/deployments")."""

        async def read() -> list[Obj]:
            wanted = kmock.resource(plural)
            async with self.api._lock:
                return [
                    copy.deepcopy(obj.raw)
                    for (resource, ns, _), obj in self.api.objects.items()
                    if resource == wanted
                    and not obj.deleted
                    and (namespace is None or ns == namespace)
                ]

        return iter(self.call(read()))

    def names(self, plural: str, namespace: str | None = None) -> set[str]:
        return {obj["metadata"]["name"] for obj in self.objects(plural, namespace)}

    # -- how components reach it ---------------------------------------------------------

    def configuration(self, component: str | None = None) -> kubernetes.client.Configuration:
        """A client configuration with ``component``'s token (None: the cluster's admin)."""
        return configuration(self.url, component)

    def api_client(self, component: str | None = None) -> kubernetes.client.ApiClient:
        return kubernetes.client.ApiClient(self.configuration(component))

    def kubeconfig(self, path: Path, component: str | None = None) -> Path:
        """A kubeconfig file for a process running as ``component`` (None: the admin)."""
        token = ADMIN_TOKEN if component is None else token_for(component)
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "test", "cluster": {"server": self.url}}],
            "users": [{"name": "test", "user": {"token": token}}],
            "contexts": [{"name": "test", "context": {"cluster": "test", "user": "test"}}],
            "current-context": "test",
        }
        path.write_text(yaml.safe_dump(config))
        return path

    def answer(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        token: str | None = ADMIN_TOKEN,
        **headers: str,
    ) -> tuple[int, Any]:
        """(status, decoded body) of one request sent with ``token`` (None: no token)."""

        async def send() -> tuple[int, Any]:
            sent = {"Authorization": f"Bearer {token}"} if token is not None else {}
            sent.update(headers)
            async with self.api.request(method, path, json=body, headers=sent) as response:
                return response.status, await response.json(content_type=None)

        status, data = self.call(send())
        return status, data

    def request(self, method: str, path: str, body: Any = None, **headers: str) -> Any:
        """One request to the API as its admin (unless ``Authorization`` is given); returns
        the decoded JSON body (or raises for >= 400)."""

        async def send() -> Any:
            sent = {**AS_ADMIN, **headers}
            async with self.api.request(method, path, json=body, headers=sent) as response:
                data = await response.json(content_type=None)
                if response.status >= 400:
                    raise AssertionError(f"{method} {path}: {response.status} {data}")
                return data

        return self.call(send())
