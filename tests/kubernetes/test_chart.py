"""The Helm chart: lints, renders valid objects, grants least privilege, documents values.

helm comes from scripts/install-helm.sh (the test command runs it); without it these
tests are skipped, naming the missing binary.
"""

from __future__ import annotations

import datetime
import importlib
import importlib.util
import re
import socket
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from helmchart import CHART, NAMESPACE, ROOT, helm, render, template

from fnmesh.platform.cluster.identity import load_authority
from fnmesh.platform.cluster.settings import ApiSettings, ClusterSettings
from fnmesh.platform.mesh.identity import TlsCredentials, client_context, make_csr, server_context
from fnmesh.platform.mesh.identity.csr import load_csr
from fnmesh.platform.model import Artifact, ObjectMeta, Revision, RevisionSpec
from fnmesh.platform.runtime.kubernetes.builders import make_deployment
from fnmesh.platform.runtime.kubernetes.config import ClusterConfig

Validate = Callable[[dict[str, Any]], None]
COMPONENTS = ("api", "gateway", "activator", "autoscaler", "operator")
# Linkerd's proxy ports (outbound, inbound, admin): a pod of ours may share a pod with it
LINKERD_PORTS = {4140, 4143, 4190, 4191}


def values_args(*files: str) -> tuple[str, ...]:
    return tuple(arg for name in files for arg in ("--values", name))


def kinds(objects: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {o["metadata"]["name"]: o for o in objects if o["kind"] == kind}


def deployment(objects: list[dict[str, Any]], component: str) -> dict[str, Any]:
    return kinds(objects, "Deployment")[f"fnmesh-{component}"]


def env_of(deploy: dict[str, Any]) -> dict[str, str]:
    (item,) = deploy["spec"]["template"]["spec"]["containers"]
    return {e["name"]: e.get("value", "<from>") for e in item["env"]}


def sets(*assignments: str) -> tuple[str, ...]:
    return tuple(arg for assignment in assignments for arg in ("--set", assignment))


VARIANTS = {
    "default": (),
    "restricted": (
        *sets(
            "rbac.namespaces={team-a,team-b}",
            "persistence.enabled=false",
            "auth.existingSecret=my-token",
            "operator.replicas=2",
            "gateway.service.type=LoadBalancer",
            "api.podAnnotations.team=platform",
        ),
        *sets("identity.existingSecret=my-ca"),
    ),
}


# -- lint and validity ------------------------------------------------------------------


@pytest.mark.parametrize("variant", VARIANTS)
def test_helm_lint(variant: str) -> None:
    out = helm("lint", "--strict", str(CHART), *VARIANTS[variant])
    assert "0 chart(s) failed" in out


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_rendered_object_is_valid(variant: str, validate: Validate) -> None:
    objects = render(*VARIANTS[variant])
    assert len(objects) > 20
    for obj in objects:
        try:
            validate(obj)
        except Exception as error:
            name = f"{obj['kind']} {obj['metadata']['name']}"
            raise AssertionError(f"{name} is invalid: {error}") from None


def test_the_chart_installs_every_component() -> None:
    objects = render()
    for component in (*COMPONENTS, "telemetry"):
        assert f"fnmesh-{component}" in kinds(objects, "Deployment"), component
        assert f"fnmesh-{component}" in kinds(objects, "ServiceAccount"), component
    assert set(kinds(objects, "Service")) == {
        "fnmesh-api",
        "fnmesh-gateway",
        "fnmesh-activator",
        "fnmesh-autoscaler",
        "fnmesh-telemetry",
    }
    assert set(kinds(objects, "CustomResourceDefinition")) == {
        "functions.fnmesh.dev",
        "revisions.fnmesh.dev",
        "tokens.fnmesh.dev",
        "trafficsplits.split.smi-spec.io",
        "traffictargets.access.smi-spec.io",
        "httproutegroups.specs.smi-spec.io",
        "clusterkopfpeerings.kopf.dev",
        "kopfpeerings.kopf.dev",
    }
    commands = {
        name: d["spec"]["template"]["spec"]["containers"][0]["command"]
        for name, d in kinds(objects, "Deployment").items()
    }
    assert commands["fnmesh-operator"] == [
        "python",
        "-m",
        "fnmesh.platform.runtime.kubernetes.operator",
    ]
    for component in ("api", "gateway", "activator", "autoscaler", "telemetry"):
        module = f"fnmesh.platform.cluster.{component}"
        assert commands[f"fnmesh-{component}"] == ["python", "-m", module]


def test_pods_are_locked_down() -> None:
    for name, deploy in kinds(render(), "Deployment").items():
        pod = deploy["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert pod["securityContext"]["runAsUser"] > 0, name
        for item in pod["containers"]:
            context = item["securityContext"]
            assert context["readOnlyRootFilesystem"] is True, name
            assert context["allowPrivilegeEscalation"] is False, name
            assert context["capabilities"]["drop"] == ["ALL"], name
            assert item["resources"]["requests"], name


def test_services_reach_their_pods() -> None:
    objects = render()
    deployments = kinds(objects, "Deployment")
    for name, service in kinds(objects, "Service").items():
        selector = service["spec"]["selector"].items()
        matching = [
            d
            for d in deployments.values()
            if selector <= d["spec"]["template"]["metadata"]["labels"].items()
        ]
        assert len(matching) == 1, f"Service {name} selects {len(matching)} Deployments"
        ports = {
            p["name"] for p in matching[0]["spec"]["template"]["spec"]["containers"][0]["ports"]
        }
        for port in service["spec"]["ports"]:
            assert port["targetPort"] in ports, f"Service {name} targets a missing port"
    for name, deploy in deployments.items():
        account = deploy["spec"]["template"]["spec"]["serviceAccountName"]
        assert account in kinds(objects, "ServiceAccount"), name


def test_the_operator_config_points_at_the_rendered_services() -> None:
    objects = render(
        "--set", "image.repository=reg.example/fnmesh/platform", "--set", "image.tag=1.2.3"
    )
    env = env_of(deployment(objects, "operator"))
    config = ClusterConfig.from_env({k: v for k, v in env.items() if v != "<from>"})
    assert config.proxy_image == "reg.example/fnmesh/platform:1.2.3"
    assert config.runtime_image == "fnmesh/runtime:0.1.0"
    assert config.platform_namespace == NAMESPACE
    assert config.mesh == "fnmesh"
    services = kinds(objects, "Service")
    for url in (config.api_url, config.artifact_url, config.identity_url, config.telemetry_url):
        match = re.fullmatch(r"https?://([^.]+)\.([^.]+)\.svc:(\d+)", url)
        assert match, url
        service = services[match.group(1)]
        assert match.group(2) == NAMESPACE
        assert int(match.group(3)) in [p["port"] for p in service["spec"]["ports"]], url
    assert env["FNMESH_GATEWAY_SERVICE_ACCOUNT"] == "fnmesh-gateway"
    assert env["FNMESH_ACTIVATOR_SERVICE_ACCOUNT"] == "fnmesh-activator"


# -- RBAC -------------------------------------------------------------------------------

Permission = tuple[str, str, str]  # (apiGroup, resource, verb)
READ = ("get", "list", "watch")
WRITE = ("get", "list", "watch", "create", "update", "patch", "delete")


def grants(*rules: tuple[str, tuple[str, ...], tuple[str, ...]]) -> set[Permission]:
    return {(g, r, v) for g, resources, verbs in rules for r in resources for v in verbs}


EXPECTED: dict[str, set[Permission]] = {
    "operator": grants(
        ("fnmesh.dev", ("functions",), ("get", "list", "watch", "patch", "update")),
        ("fnmesh.dev", ("revisions",), ("get", "list", "watch", "create", "patch", "update")),
        ("fnmesh.dev", ("revisions",), ("delete",)),
        ("fnmesh.dev", ("functions/status", "revisions/status"), ("get", "patch", "update")),
        ("fnmesh.dev", ("functions/finalizers", "revisions/finalizers"), ("update",)),
        ("apps", ("deployments",), WRITE),
        ("", ("services", "serviceaccounts"), WRITE),
        ("split.smi-spec.io", ("trafficsplits",), WRITE),
        ("access.smi-spec.io", ("traffictargets",), WRITE),
        ("specs.smi-spec.io", ("httproutegroups",), WRITE),
        ("", ("events",), ("create", "patch")),
        ("events.k8s.io", ("events",), ("create", "patch")),
        ("apiextensions.k8s.io", ("customresourcedefinitions",), ("list", "watch")),
        ("", ("namespaces",), ("list", "watch")),
    ),
    "api": grants(
        ("fnmesh.dev", ("functions", "revisions"), WRITE),
        ("fnmesh.dev", ("functions/status", "revisions/status"), ("get", "patch", "update")),
        ("fnmesh.dev", ("functions/finalizers",), ("update",)),
        ("split.smi-spec.io", ("trafficsplits",), READ),
        ("", ("pods",), READ),
        ("", ("pods/log",), ("get",)),
        ("", ("secrets",), ("get", "list", "create", "update", "delete")),
        ("authentication.k8s.io", ("tokenreviews",), ("create",)),
        ("fnmesh.dev", ("tokens",), ("get", "list", "watch", "create", "update", "delete")),
    ),
    "gateway": grants(
        ("fnmesh.dev", ("functions", "revisions"), READ),
        ("split.smi-spec.io", ("trafficsplits",), READ),
    ),
    "autoscaler": grants(
        ("fnmesh.dev", ("functions", "revisions"), READ),
        ("apps", ("deployments/scale",), ("get", "patch")),
    ),
}
EXPECTED["activator"] = EXPECTED["gateway"]


def role_permissions(role: dict[str, Any]) -> set[Permission]:
    return {
        (group, resource, verb)
        for rule in role["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }


def all_roles(objects: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """ClusterRoles and Roles by name (the chart never gives both kinds one name)."""
    return {**kinds(objects, "ClusterRole"), **kinds(objects, "Role")}


def bound_roles(objects: list[dict[str, Any]], account: str) -> list[tuple[str, str | None]]:
    """(role name, namespace of the binding or None for cluster-wide) per binding."""
    found = []
    for binding in objects:
        if binding["kind"] not in ("ClusterRoleBinding", "RoleBinding"):
            continue
        for subject in binding["subjects"]:
            if (subject["kind"], subject["name"], subject["namespace"]) == (
                "ServiceAccount",
                account,
                NAMESPACE,
            ):
                found.append((binding["roleRef"]["name"], binding["metadata"].get("namespace")))
    return found


@pytest.mark.parametrize("variant", VARIANTS)
def test_rbac_has_no_wildcards_or_dangerous_grants(variant: str) -> None:
    objects = render(*VARIANTS[variant])
    for role in [o for o in objects if o["kind"] in ("ClusterRole", "Role")]:
        for rule in role["rules"]:
            for key in ("apiGroups", "resources", "verbs"):
                assert "*" not in rule[key], f"{role['metadata']['name']}: '*' in {key}"
            assert "nonResourceURLs" not in rule
            assert not {"escalate", "bind", "impersonate"} & set(rule["verbs"])
            assert not {"configmaps", "nodes", "pods/exec"} & set(rule["resources"])
            if "secrets" in rule["resources"]:
                # only the API, for function secrets, in the functions' namespaces
                assert role["metadata"]["name"] == "fnmesh-api", role["metadata"]["name"]
                assert set(rule["verbs"]) == {"get", "list", "create", "update", "delete"}


@pytest.mark.parametrize("component", COMPONENTS)
def test_each_component_gets_exactly_what_it_needs(component: str) -> None:
    objects = render()
    roles = all_roles(objects)
    granted: set[Permission] = set()
    for role, namespace in bound_roles(objects, f"fnmesh-{component}"):
        # default: functions in any namespace; a Role only for the release's own
        assert namespace == (NAMESPACE if role in kinds(objects, "Role") else None)
        granted |= role_permissions(roles[role])
    assert granted == EXPECTED[component]


@pytest.mark.parametrize("variant", VARIANTS)
def test_the_telemetry_hub_gets_no_access_to_the_kubernetes_api(variant: str) -> None:
    objects = render(*VARIANTS[variant])
    assert bound_roles(objects, "fnmesh-telemetry") == []
    account = kinds(objects, "ServiceAccount")["fnmesh-telemetry"]
    assert account["automountServiceAccountToken"] is False
    pod = deployment(objects, "telemetry")["spec"]["template"]["spec"]
    assert pod["automountServiceAccountToken"] is False
    assert {v["name"] for v in pod["volumes"]} == {"tmp", "identity-token"}
    for component in ("api", "gateway", "activator", "autoscaler", "operator"):
        assert deployment(objects, component)["spec"]["template"]["spec"][
            "automountServiceAccountToken"
        ], component


def test_every_component_reaches_the_telemetry_hub() -> None:
    objects = render()
    operator = deployment(objects, "operator")["spec"]["template"]["spec"]
    (source,) = {v["name"]: v for v in operator["volumes"]}["identity-token"]["projected"][
        "sources"
    ]
    assert source["serviceAccountToken"]["audience"] == "identity.fnmesh.dev"  # its certificate
    (port,) = kinds(objects, "Service")["fnmesh-telemetry"]["spec"]["ports"]
    url = f"https://fnmesh-telemetry.{NAMESPACE}.svc:{port['port']}"
    for name in kinds(objects, "Deployment"):
        assert env_of(kinds(objects, "Deployment")[name])["FNMESH_TELEMETRY_URL"] == url, name
    config = ClusterConfig.from_env(
        {k: v for k, v in env_of(deployment(objects, "operator")).items() if v != "<from>"}
    )
    assert config.telemetry_url == url  # where the operator points replica proxies
    api = ApiSettings.from_env(kubelet_env(deployment(objects, "api")))
    assert (api.accounts.telemetry, api.accounts.operator) == (
        "fnmesh-telemetry",
        "fnmesh-operator",
    )


def test_rbac_bound_per_namespace_when_namespaces_are_listed() -> None:
    objects = render("--set", "rbac.namespaces={team-a,team-b}")
    roles = kinds(objects, "ClusterRole")
    own = kinds(objects, "Role")
    assert {r: role_permissions(own[r]) for r in own} == {
        "fnmesh-api-tokens": grants(
            ("fnmesh.dev", ("tokens",), ("get", "list", "watch", "create", "update", "delete"))
        )
    }
    for component in COMPONENTS:
        bindings = [b for b in bound_roles(objects, f"fnmesh-{component}") if b[0] not in own]
        namespaced = {ns for role, ns in bindings if ns is not None}
        assert namespaced == {"team-a", "team-b"}, component
        for role, namespace in bindings:
            if namespace is None:  # only cluster-scoped needs stay cluster-wide
                assert role.endswith("-cluster"), (component, role)
                scoped = {r for _, r, _ in role_permissions(roles[role])}
                assert scoped <= {"tokenreviews", "customresourcedefinitions", "namespaces"}
        assert env_of(deployment(objects, component))["FNMESH_WATCH_NAMESPACES"] == "team-a,team-b"


# -- values -----------------------------------------------------------------------------


def test_persistence_values() -> None:
    claim = kinds(
        render("--set", "persistence.storageClass=fast", "--set", "persistence.size=20Gi"),
        "PersistentVolumeClaim",
    )
    assert claim["fnmesh-data"]["spec"]["storageClassName"] == "fast"
    assert claim["fnmesh-data"]["spec"]["resources"]["requests"]["storage"] == "20Gi"

    def data_volume(*args: str) -> dict[str, Any]:
        pod = deployment(render(*args), "api")["spec"]["template"]["spec"]
        return next(v for v in pod["volumes"] if v["name"] == "data")

    assert data_volume()["persistentVolumeClaim"]["claimName"] == "fnmesh-data"
    off = render("--set", "persistence.enabled=false")
    assert not kinds(off, "PersistentVolumeClaim")
    assert data_volume("--set", "persistence.enabled=false") == {"name": "data", "emptyDir": {}}
    mine = ("--set", "persistence.existingClaim=mine")
    assert not kinds(render(*mine), "PersistentVolumeClaim")
    assert data_volume(*mine)["persistentVolumeClaim"]["claimName"] == "mine"


def test_admin_token_values() -> None:
    given = kinds(render("--set", "auth.token=s3cret"), "Secret")["fnmesh-admin-token"]
    assert given["data"]["token"] == "czNjcmV0"  # base64 of s3cret
    for args, name in [((), "fnmesh-admin-token"), (("--set", "auth.existingSecret=my"), "my")]:
        objects = render(*args)
        assert not kinds(objects, "Secret")  # made before install, never at render time
        (item,) = deployment(objects, "api")["spec"]["template"]["spec"]["containers"]
        (token,) = [e for e in item["env"] if e["name"] == "FNMESH_API_TOKEN"]
        assert token["valueFrom"]["secretKeyRef"] == {"name": name, "key": "token"}


# -- the same bytes every time -----------------------------------------------------------

RENDERINGS = {
    **VARIANTS,
    "cert-manager": ("--set", "identity.certManager.enabled=true"),
    "token": ("--set", "auth.token=s3cret"),
}


@pytest.mark.parametrize("variant", RENDERINGS)
def test_rendering_twice_gives_the_same_bytes(variant: str) -> None:
    first, second = template(*RENDERINGS[variant]), template(*RENDERINGS[variant])
    assert first == second, "the chart made something at render time (keys, tokens, dates?)"
    made_now = r"\{\{[^}]*\b(gen\w+|rand\w+|uuidv4|now|lookup)\b"
    for path in (CHART / "templates").glob("*"):
        code = re.sub(r"\{\{-?\s*/\*.*?\*/\s*-?\}\}", "", path.read_text(), flags=re.S)
        found = re.search(made_now, code)
        assert found is None, f"{path.name} makes {found and found.group(1)} at render time"


def test_cert_manager_makes_the_authority_the_api_reads() -> None:
    objects = render("--set", "identity.certManager.enabled=true")
    (issuer,) = [o for o in objects if o["kind"] == "Issuer"]
    (certificate,) = [o for o in objects if o["kind"] == "Certificate"]
    assert issuer["spec"] == {"selfSigned": {}}
    spec = certificate["spec"]
    assert spec["isCA"] is True and spec["secretName"] == "fnmesh-identity"
    assert spec["privateKey"] == {"algorithm": "ECDSA", "size": 256, "rotationPolicy": "Never"}
    assert spec["issuerRef"]["name"] == issuer["metadata"]["name"]
    api = deployment(objects, "api")["spec"]["template"]["spec"]
    ca = {v["name"]: v for v in api["volumes"]}["ca"]["secret"]
    paths = {item["key"]: item["path"] for item in ca["items"]}
    assert paths == {"ca.crt": "ca.crt", "tls.crt": "issuer.crt", "tls.key": "issuer.key"}


# -- Linkerd's ports, probes, leader election ---------------------------------------------


def test_no_container_listens_on_a_linkerd_port() -> None:
    containers = [
        (name, item)
        for variant in VARIANTS
        for name, deploy in kinds(render(*VARIANTS[variant]), "Deployment").items()
        for item in deploy["spec"]["template"]["spec"]["containers"]
    ]
    stamped = Revision(
        metadata=ObjectMeta(name="hello-00001", namespace="team-a", uid="u-1"),
        spec=RevisionSpec(
            function="hello", handler="main:handle", artifact=Artifact(digest="sha256:" + "a" * 64)
        ),
    )
    replica = make_deployment(stamped, ClusterConfig())["spec"]["template"]["spec"]
    containers += [("function replica", item) for item in replica["containers"]]
    containers += [("function replica", item) for item in replica.get("initContainers", [])]
    assert len(containers) > 6
    for name, item in containers:
        ports = {p["containerPort"] for p in item.get("ports", [])}
        for env in item.get("env", []):
            if env["name"].endswith("_PORT") and env.get("value", "").isdigit():
                ports.add(int(env["value"]))
        assert not ports & LINKERD_PORTS, f"{name}/{item['name']} uses {ports & LINKERD_PORTS}"


def test_the_operator_has_a_liveness_probe_on_kopfs_health_endpoint() -> None:
    operator = deployment(render(), "operator")
    (item,) = operator["spec"]["template"]["spec"]["containers"]
    probe = item["livenessProbe"]["httpGet"]
    assert probe == {"path": "/healthz", "port": "health"}
    (port,) = item["ports"]
    env = env_of(operator)
    assert env["FNMESH_OPERATOR_LIVENESS"] == f"http://0.0.0.0:{port['containerPort']}/healthz"
    assert "FNMESH_OPERATOR_PEERING" not in env
    assert operator["spec"]["replicas"] == 1 and operator["spec"]["strategy"]["type"] == "Recreate"
    assert not [o for o in render() if o["apiVersion"].startswith("kopf.dev/")]


@pytest.mark.parametrize("scope", ["cluster", "namespaces"])
def test_more_operators_elect_a_leader_with_kopf_peering(scope: str) -> None:
    args = ("--set", "operator.replicas=3")
    if scope == "namespaces":
        args += ("--set", "rbac.namespaces={team-a,team-b}")
    objects = render(*args)
    operator = deployment(objects, "operator")
    assert operator["spec"]["replicas"] == 3
    assert operator["spec"]["strategy"]["type"] == "RollingUpdate"
    assert env_of(operator)["FNMESH_OPERATOR_PEERING"] == "fnmesh"
    peerings = [o for o in objects if o["apiVersion"] == "kopf.dev/v1"]
    crds = kinds(objects, "CustomResourceDefinition")
    if scope == "cluster":
        assert [(p["kind"], p["metadata"]["name"]) for p in peerings] == [
            ("ClusterKopfPeering", "fnmesh")
        ]
        role = kinds(objects, "ClusterRole")["fnmesh-operator-peering"]
        assert "clusterkopfpeerings.kopf.dev" in crds
    else:
        assert {(p["kind"], p["metadata"]["namespace"]) for p in peerings} == {
            ("KopfPeering", "team-a"),
            ("KopfPeering", "team-b"),
        }
        role = kinds(objects, "Role")["fnmesh-operator-peering"]
        assert "kopfpeerings.kopf.dev" in crds
    named = [r for r in role["rules"] if r.get("resourceNames")]
    assert named and all(r["resourceNames"] == ["fnmesh"] for r in named)
    assert {v for r in role["rules"] for v in r["verbs"]} == {"get", "patch", "list", "watch"}


def test_gateway_service_values() -> None:
    service = kinds(
        render("--set", "gateway.service.type=LoadBalancer", "--set", "gateway.service.port=8000"),
        "Service",
    )["fnmesh-gateway"]
    assert service["spec"]["type"] == "LoadBalancer"
    assert service["spec"]["ports"][0]["port"] == 8000


# -- documentation ----------------------------------------------------------------------

# Values handed to Kubernetes whole: their own keys are Kubernetes', not the chart's.
PASS_THROUGH = {
    "podSecurityContext",
    "securityContext",
    "resources",
    "nodeSelector",
    "tolerations",
    "affinity",
    "annotations",
    "podAnnotations",
    "extraEnv",
    "accessModes",
    "imagePullSecrets",
    "command",
    "args",
    "namespaces",
}


def value_paths(values: dict[str, Any], prefix: str = "") -> list[str]:
    """Dotted paths of every value a user sets (mappings of the chart's own are walked)."""
    paths = []
    for key, value in values.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and key not in PASS_THROUGH:
            paths += value_paths(value, f"{path}.")
        else:
            paths.append(path)
    return paths


def test_every_value_has_a_comment() -> None:
    lines = (CHART / "values.yaml").read_text().splitlines()
    undocumented = []
    stack: list[tuple[int, str]] = []
    for index, line in enumerate(lines):
        match = re.match(r"^( *)([A-Za-z][A-Za-z0-9]*):", line)
        if not match:
            continue
        indent, key = len(match.group(1)), match.group(2)
        while stack and stack[-1][0] >= indent:
            stack.pop()
        if any(parent in PASS_THROUGH for _, parent in stack):
            continue
        stack.append((indent, key))
        above = lines[index - 1].strip() if index else ""
        if not above.startswith("#"):
            undocumented.append(".".join(k for _, k in stack))
    assert undocumented == []


def test_every_value_is_in_the_readme() -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    readme = (CHART / "README.md").read_text()
    missing = [path for path in value_paths(values) if f"`{path}`" not in readme]
    assert missing == []


def test_docs_name_real_values_and_files() -> None:
    docs = (ROOT / "docs" / "kubernetes.md").read_text()
    assert "helm install" in docs
    assert "charts/fnmesh" in docs
    for flag in re.findall(r"--set ([a-zA-Z.]+)=", docs):
        values = yaml.safe_load((CHART / "values.yaml").read_text())
        node: Any = values
        for part in flag.split("."):
            assert isinstance(node, dict) and part in node, f"docs set unknown value {flag}"
            node = node[part]
    for path in re.findall(r"(charts/fnmesh/[\w./-]+\.yaml)", docs):
        assert (ROOT / path).exists(), path


# -- the entry points and what the chart gives them --------------------------------------

PORTS = {"api": 8081, "gateway": 8080, "activator": 8012, "autoscaler": 8090, "telemetry": 8091}
ANCHOR_PEM = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"


def kubelet_env(deploy: dict[str, Any]) -> dict[str, str]:
    """The main container's environment as the kubelet would fill it in."""
    (item,) = deploy["spec"]["template"]["spec"]["containers"]
    found = {}
    for entry in item["env"]:
        if "value" in entry:
            found[entry["name"]] = entry["value"]
            continue
        source = entry["valueFrom"]
        if "fieldRef" in source:
            found[entry["name"]] = {
                "metadata.name": "fnmesh-pod-x7k2p",
                "spec.serviceAccountName": deploy["spec"]["template"]["spec"]["serviceAccountName"],
            }[source["fieldRef"]["fieldPath"]]
        else:
            key = source["secretKeyRef"]["key"]
            found[entry["name"]] = {"ca.crt": ANCHOR_PEM, "token": "t0ken-from-the-secret-1234"}[
                key
            ]
    return found


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_entry_point_takes_the_environment_the_chart_gives_it(variant: str) -> None:
    objects = render(*VARIANTS[variant])
    for component, port in PORTS.items():
        deploy = deployment(objects, component)
        (item,) = deploy["spec"]["template"]["spec"]["containers"]
        module = item["command"][2]
        assert importlib.import_module(module).main, module
        env = kubelet_env(deploy)
        if component == "api":
            api = ApiSettings.from_env(env)
            cluster = api.cluster
            ports = {p["name"]: p["containerPort"] for p in item["ports"]}
            assert (cluster.listen_port, api.identity_port) == (ports["http"], ports["identity"])
            mounts = {m["mountPath"]: m["name"] for m in item["volumeMounts"]}
            assert mounts[str(api.ca_dir)] == "ca"
            assert mounts[str(api.data_dir)] == "data"
            assert api.accounts.gateway == "fnmesh-gateway"
        else:
            cluster = ClusterSettings.from_env(env, port=0)
            assert cluster.listen_port == port == item["ports"][0]["containerPort"]
            volumes = {v["name"]: v for v in deploy["spec"]["template"]["spec"]["volumes"]}
            (source,) = volumes["identity-token"]["projected"]["sources"]
            assert source["serviceAccountToken"]["audience"] == "identity.fnmesh.dev"
            mounts = {m["mountPath"]: m["name"] for m in item["volumeMounts"]}
            assert mounts[str(cluster.token_file.parent)] == "identity-token"
        assert cluster.trust_anchors == ANCHOR_PEM.strip()
        assert cluster.platform_namespace == NAMESPACE
        assert cluster.addresses.activator_url.startswith("https://fnmesh-activator.")


def test_the_readmes_authority_commands_make_a_working_authority(tmp_path: Path) -> None:
    """The commands README.md gives for the identity Secret make files the API loads."""
    assert not [o for o in render() if o["kind"] == "Secret"]  # the chart makes none
    readme = (CHART / "README.md").read_text()
    (block,) = re.findall(r"```sh\n(openssl req [^`]+?)```", readme)
    source = tmp_path / "secret"
    source.mkdir()
    script = block.replace("\\\n", " ").splitlines()
    commands = [line for line in script if line.startswith("openssl ")]
    assert commands, block
    for command in commands:
        done = subprocess.run(
            command, shell=True, cwd=source, capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, done.stderr
    creates = [line for line in script if line.startswith("kubectl ")]
    (create,) = creates
    assert "--from-file=ca.crt" in create and "--from-file=issuer.key" in create
    (source / "issuer.crt").write_bytes((source / "ca.crt").read_bytes())  # issuer.crt=ca.crt
    assert "--from-file=issuer.crt=ca.crt" in create
    now = datetime.datetime.now(datetime.UTC)
    authority = load_authority(source, tmp_path / "private", trust_domain="fnmesh.local", now=now)
    identity = "hello.default.serviceaccount.identity.fnmesh.local"
    key = make_csr(identity)
    issued = authority.issuer.sign(load_csr(key.csr_pem), identity, now)
    anchors = (source / "ca.crt").read_text()
    credentials = TlsCredentials(issued.chain_pem, key.key_pem)
    server = server_context(anchors, credentials, require_client_cert=False)
    client = client_context(anchors)
    one, two = socket.socketpair()
    with one, two:
        accepted: list[str] = []

        def serve() -> None:
            with server.wrap_socket(one, server_side=True) as tls:
                accepted.append(tls.recv(5).decode())

        thread = threading.Thread(target=serve)
        thread.start()
        with client.wrap_socket(two, server_hostname=identity) as tls:
            tls.sendall(b"hello")
        thread.join(10)
    assert accepted == ["hello"]


def test_an_existing_identity_secret_is_used_instead() -> None:
    objects = render("--set", "identity.existingSecret=corp-ca")
    assert "fnmesh-identity" not in kinds(objects, "Secret")
    api = deployment(objects, "api")["spec"]["template"]["spec"]
    assert {v["name"]: v for v in api["volumes"]}["ca"]["secret"]["secretName"] == "corp-ca"
    for component in COMPONENTS:
        (item,) = deployment(objects, component)["spec"]["template"]["spec"]["containers"]
        (anchors,) = [e for e in item["env"] if e["name"] == "FNMESH_TRUST_ANCHORS"]
        assert anchors["valueFrom"]["secretKeyRef"] == {"name": "corp-ca", "key": "ca.crt"}


def test_the_docs_commands_name_what_the_chart_installs() -> None:
    docs = (ROOT / "docs" / "kubernetes.md").read_text()
    readme = (CHART / "README.md").read_text()
    objects = render()
    for kind, pattern in [
        ("Deployment", r"deployment/([\w-]+)"),
        ("Service", r"service/([\w-]+)"),
    ]:
        named = re.findall(pattern, docs)
        assert named, pattern
        for name in named:
            assert name in kinds(objects, kind), f"docs name {kind} {name}"
    # the Secrets the docs make or read are the ones the components use
    used = set()
    for deploy in kinds(objects, "Deployment").values():
        pod = deploy["spec"]["template"]["spec"]
        used |= {v["secret"]["secretName"] for v in pod.get("volumes", []) if "secret" in v}
        for item in pod["containers"]:
            for env in item["env"]:
                if "secretKeyRef" in env.get("valueFrom", {}):
                    used.add(env["valueFrom"]["secretKeyRef"]["name"])
    secrets = re.findall(r"(?:create secret generic|get secret) ([\w-]+)", docs)
    assert set(secrets) == used == {"fnmesh-identity", "fnmesh-admin-token"}, secrets
    (crds,) = re.findall(r"kubectl get crd ([\w. -]+)\n", docs)
    assert set(crds.split()) <= set(kinds(objects, "CustomResourceDefinition"))
    for module in re.findall(r"python -m ([\w.]+)", docs + readme):
        assert importlib.util.find_spec(module) is not None, module
