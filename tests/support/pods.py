"""A pod's containers as local processes: what to run, decided from the pod spec (pure).

The process kubelet (``kubelet.py``) runs every container of a pod as a process on this
machine, with no image, no mount namespace and no network namespace. What a container
would see in a pod is translated, and only this:

- **the interpreter**: a command ``python`` is this interpreter (the image's Python and
  this repository's packages are the same thing here);
- **volumes are folders**: each volume of the pod is a folder under the pod's own; an
  argument or a variable naming a path under a ``mountPath`` names the same path under
  the volume's folder; a mount at ``/tmp`` becomes ``TMPDIR``;
- **the pod's address**: each pod has a loopback address of its own (``127.x.y.z``). An
  argument or variable that is a bare listening host (``127.0.0.1``, ``0.0.0.0``) or a
  ``host:port`` on one becomes the pod's address (URLs are left alone: they name the
  platform's components, which the harness points at real local addresses);
- **listeners on all interfaces**: a pod has a network namespace of its own, so a
  listener on 0.0.0.0 takes its port from nobody; here pods share the host's, so
  ``LISTEN_ON_POD_ADDRESS`` variables are set to the pod's address when the spec leaves
  them out (the replica proxy's inbound listener, when its port is set);
- **variables from elsewhere**: ``fieldRef`` (``metadata.name``, ``metadata.namespace``,
  ``status.podIP``, labels and annotations) and ``secretKeyRef`` (through ``secret``).

Securities (``runAsUser``, seccomp, read-only roots) and resources are not enforced: the
harness proves the platform's wiring, the sandbox has tests of its own.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

Obj = dict[str, Any]
SecretLookup = Callable[[str, str], str | None]  # (secret name, key) -> value

# host variable -> the port variable whose presence says the container opens that listener
LISTEN_ON_POD_ADDRESS = {"FNMESH_PROXY_INBOUND_HOST": "FNMESH_PROXY_INBOUND_PORT"}
LOOPBACK_HOSTS = ("127.0.0.1", "0.0.0.0", "localhost")
_HOST_PORT = re.compile(r"^(127\.0\.0\.1|0\.0\.0\.0|localhost):(\d+)$")
_FIELD_KEY = re.compile(r"^metadata\.(labels|annotations)\['([^']+)'\]$")


class PodSpecError(ValueError):
    """The pod spec asks for something the process kubelet cannot do."""


@dataclass(frozen=True, slots=True)
class Probe:
    """An HTTP readiness probe at the pod's address."""

    port: int
    path: str
    failure_threshold: int = 3  # failures in a row before a ready pod is not ready


@dataclass(frozen=True, slots=True)
class Process:
    """One container as a local process."""

    name: str
    argv: tuple[str, ...]
    env: dict[str, str]
    ready_probe: Probe | None = None


@dataclass(frozen=True, slots=True)
class PodFiles:
    """Files the kubelet writes before the containers start: path -> (content, mode)."""

    folders: tuple[Path, ...] = ()
    files: dict[Path, tuple[bytes, int]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Pod:
    """Identity of one pod: what ``fieldRef``s read."""

    name: str
    namespace: str
    address: str
    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    service_account: str


def volume_folders(spec: Obj, root: Path) -> dict[str, Path]:
    """Each volume's folder under the pod's ``root``."""
    return {str(v["name"]): root / "volumes" / str(v["name"]) for v in spec.get("volumes") or []}


def pod_files(
    spec: Obj,
    pod: Pod,
    folders: Mapping[str, Path],
    *,
    token: Callable[[str, int], str],
    secret_data: Callable[[str], Mapping[str, bytes] | None],
) -> PodFiles:
    """The folders and files of the pod's volumes. ``token(audience, seconds)`` mints
    a projected service-account token; ``secret_data(name)`` reads a Secret's values."""
    files: dict[Path, tuple[bytes, int]] = {}
    for volume in spec.get("volumes") or []:
        where = folders[str(volume["name"])]
        if "downwardAPI" in volume:
            for item in volume["downwardAPI"].get("items") or []:
                text = field_value(pod, item["fieldRef"]["fieldPath"])
                files[where / item["path"]] = (text.encode(), 0o444)
        elif "projected" in volume:
            for source in volume["projected"].get("sources") or []:
                account = source.get("serviceAccountToken")
                if account is None:
                    raise PodSpecError(f"projected source {sorted(source)} is not supported")
                minted = token(account["audience"], int(account.get("expirationSeconds", 3600)))
                files[where / account["path"]] = (minted.encode(), 0o400)
        elif "secret" in volume:
            name = volume["secret"]["secretName"]
            data = secret_data(name)
            if data is None:
                raise PodSpecError(f"secret {name!r} of volume {volume['name']!r} is missing")
            mode = int(volume["secret"].get("defaultMode", 0o644))
            for key, value in data.items():
                files[where / key] = (value, mode)
        elif "emptyDir" not in volume:
            raise PodSpecError(f"volume {volume['name']!r}: only emptyDir, downwardAPI, "
                               "projected tokens and secrets are supported")  # fmt: skip
    return PodFiles(folders=tuple(folders.values()), files=files)


def field_value(pod: Pod, path: str) -> str:
    """What a ``fieldRef`` of ``pod`` reads."""
    simple = {
        "metadata.name": pod.name,
        "metadata.namespace": pod.namespace,
        "status.podIP": pod.address,
        "spec.serviceAccountName": pod.service_account,
    }
    if path in simple:
        return simple[path]
    keyed = _FIELD_KEY.match(path)
    if keyed:
        source = pod.labels if keyed.group(1) == "labels" else pod.annotations
        return str(source.get(keyed.group(2), ""))
    raise PodSpecError(f"fieldRef {path!r} is not supported")


def container_process(
    container: Obj,
    pod: Pod,
    folders: Mapping[str, Path],
    *,
    secret: SecretLookup,
    python: str = sys.executable,
) -> Process:
    """``container`` of ``pod`` as a local process (see the module's docstring)."""
    mounts = sorted(
        ((str(m["mountPath"]).rstrip("/") or "/", folders[m["name"]])
         for m in container.get("volumeMounts") or []),
        key=lambda pair: -len(pair[0]),
    )  # fmt: skip

    def local(value: str) -> str:
        return pod_address(mount_path(value, mounts), pod.address)

    command = [str(part) for part in container.get("command") or []]
    if not command:
        raise PodSpecError(f"container {container['name']!r} has no command (images are not run)")
    if command[0] == "python":
        command[0] = python
    argv = (*command, *(local(str(a)) for a in container.get("args") or []))
    env: dict[str, str] = {}
    for variable in container.get("env") or []:
        env[variable["name"]] = local(variable_value(variable, pod, secret))
    for host, port in LISTEN_ON_POD_ADDRESS.items():
        if port in env:
            env.setdefault(host, pod.address)
    for path, folder in mounts:
        if path == "/tmp":
            env["TMPDIR"] = str(folder)
    return Process(str(container["name"]), argv, env, readiness(container))


def variable_value(variable: Obj, pod: Pod, secret: SecretLookup) -> str:
    if "value" in variable:
        return str(variable["value"])
    source = variable.get("valueFrom") or {}
    if "fieldRef" in source:
        return field_value(pod, source["fieldRef"]["fieldPath"])
    if "secretKeyRef" in source:
        ref = source["secretKeyRef"]
        found = secret(ref["name"], ref["key"])
        if found is None:
            raise PodSpecError(f"variable {variable['name']}: secret {ref['name']!r} has no "
                               f"key {ref['key']!r}")  # fmt: skip
        return found
    return ""


def mount_path(value: str, mounts: list[tuple[str, Path]]) -> str:
    """``value`` with a leading mount path replaced by its volume's folder."""
    for path, folder in mounts:
        if value == path or value.startswith(path + "/"):
            return str(folder) + value[len(path) :]
    return value


def pod_address(value: str, address: str) -> str:
    """``value`` on the pod's address when it is a loopback or wildcard host (or
    ``host:port``); anything else unchanged."""
    if value in LOOPBACK_HOSTS:
        return address
    matched = _HOST_PORT.match(value)
    return f"{address}:{matched.group(2)}" if matched else value


def readiness(container: Obj) -> Probe | None:
    probe = (container.get("readinessProbe") or {}).get("httpGet")
    if probe is None:
        return None
    port = probe["port"]
    if isinstance(port, str):
        named = {p.get("name"): p["containerPort"] for p in container.get("ports") or []}
        if port not in named:
            raise PodSpecError(f"readiness probe port {port!r} is not a port of the container")
        port = named[port]
    threshold = int((container.get("readinessProbe") or {}).get("failureThreshold", 3))
    return Probe(int(port), str(probe.get("path") or "/"), max(threshold, 1))


def target_port(spec: Obj, port: Obj) -> int:
    """The container port a Service port's ``targetPort`` means in pods of ``spec``."""
    target = port.get("targetPort", port["port"])
    if str(target).isdigit():
        return int(str(target))
    for container in spec.get("containers") or []:
        for declared in container.get("ports") or []:
            if declared.get("name") == target:
                return int(declared["containerPort"])
    raise PodSpecError(f"targetPort {target!r} is not a port of the pod's containers")
