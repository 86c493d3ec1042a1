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
- ``/api/v1/namespaces`` is the list of namespaces (kmock reads it as a namespace prefix).

No garbage collection: owner references are stored, never followed. ``ApiThread`` serves
it from a thread of its own, for blocking clients and for kopf in another thread.
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
from typing import Any

import aiohttp.web
import attrs
import jsonpatch
import jsonpointer
import kmock
from kmock._internal import parsing

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
}
READ_ACTIONS = (kmock.action.LIST, kmock.action.WATCH, kmock.action.FETCH)
_SERVER_FIELDS = ("uid", "creationTimestamp", "generation", "name", "namespace")


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


def _fail(status: int, reason: str, message: str) -> Exception:
    return kmock.KubernetesError(status=status, reason=reason, message=message, details={})


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
        resource = request.resource
        if resource is None or request.action in READ_ACTIONS:
            return await super()._handle(request)
        if (resource.plural or "").endswith("reviews"):
            return await kmock.RawHandler._handle(self, request)  # only the test's reactions
        async with self._lock:
            status, body = await self._write(request)
        return aiohttp.web.json_response(body, status=status)

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
        else:
            await self._emit(request.resource, "MODIFIED", result)
        return copy.deepcopy(result)

    async def _delete(self, request: kmock.Request, current: Obj) -> Obj:
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
        return gone

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
                await (await self.api.post("/api/v1/namespaces", json=body)).release()
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

    def request(self, method: str, path: str, body: Any = None, **headers: str) -> Any:
        """One request to the API; returns the decoded JSON body (or raises for >= 400)."""

        async def send() -> Any:
            async with self.api.request(method, path, json=body, headers=headers) as response:
                data = await response.json(content_type=None)
                if response.status >= 400:
                    raise AssertionError(f"{method} {path}: {response.status} {data}")
                return data

        return self.call(send())
