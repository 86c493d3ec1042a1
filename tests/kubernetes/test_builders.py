"""Desired-state builders: given these objects, expect these fields; every object valid."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest

from fnmesh.platform.mesh.policy.decision import parse_policy
from fnmesh.platform.mesh.proxy.config import ProxyConfig
from fnmesh.platform.model import (
    Artifact,
    Function,
    FunctionSpec,
    ObjectMeta,
    ResourcesSpec,
    Revision,
    RevisionSpec,
)
from fnmesh.platform.model.errors import ValidationError
from fnmesh.platform.runtime.kubernetes import (
    ClusterConfig,
    make_deployment,
    make_http_route_group,
    make_root_service,
    make_service,
    make_service_account,
    make_traffic_split,
    make_traffic_target,
)
from fnmesh.platform.runtime.kubernetes.builders import POLICY_DIR, TOKEN_FILE, stats_url
from fnmesh.platform.runtime.kubernetes.traffic import parse_identity

Validate = Callable[[dict[str, Any]], None]
DIGEST = "sha256:" + "ab" * 32
FUNCTION_UID = "7f1c9a52-0000-4000-8000-000000000001"
REVISION_UID = "7f1c9a52-0000-4000-8000-000000000002"
GATEWAY = "fnmesh-gateway.fnmesh-system.serviceaccount.identity.fnmesh.local"
ACTIVATOR = "fnmesh-activator.fnmesh-system.serviceaccount.identity.fnmesh.local"


def function(**spec: Any) -> Function:
    return Function(
        metadata=ObjectMeta(name="hello", namespace="team-a", uid=FUNCTION_UID),
        spec=FunctionSpec(**{"handler": "main:handle", **spec}),
    )


def revision(**spec: Any) -> Revision:
    values: dict[str, Any] = {
        "function": "hello",
        "handler": "main:handle",
        "artifact": Artifact(digest=DIGEST, build="b-1"),
        "service_account": "hello",
        **spec,
    }
    return Revision(
        metadata=ObjectMeta(name="hello-00002", namespace="team-a", uid=REVISION_UID),
        spec=RevisionSpec(**values),
    )


def container(deployment: dict[str, Any], name: str) -> dict[str, Any]:
    pod = deployment["spec"]["template"]["spec"]
    found = [c for c in pod["containers"] + pod.get("initContainers", []) if c["name"] == name]
    assert len(found) == 1, f"expected one container {name!r}"
    return found[0]


def env(item: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e.get("value", "<from>") for e in item.get("env", [])}


def mounts(item: dict[str, Any]) -> dict[str, str]:
    return {m["mountPath"]: m["name"] for m in item.get("volumeMounts", [])}


def arg_after(item: dict[str, Any], flag: str) -> str | None:
    args = item.get("args", [])
    return args[args.index(flag) + 1] if flag in args else None


# -- Deployment -------------------------------------------------------------------------

DEPLOYMENT_CASES: list[tuple[str, dict[str, Any], dict[str, Any], Any]] = [
    # (what, revision spec, cluster config, expected {probe: value})
    ("grace is the timeout plus 10 s", {"timeout": 30.0}, {}, {"grace": 40}),
    ("a fractional timeout rounds up", {"timeout": 2.5}, {}, {"grace": 13}),
    ("no concurrency limit: no flag", {"concurrency": 0}, {}, {"concurrency": None}),
    ("a concurrency limit reaches the runtime", {"concurrency": 4}, {}, {"concurrency": "4"}),
    (
        "the handler reaches the runtime",
        {"handler": "pkg.app:serve"},
        {},
        {"handler": "pkg.app:serve"},
    ),
    ("no dependency environment: no site dir", {}, {}, {"site": None, "environment_url": None}),
    (
        "a dependency environment is fetched and used",
        {"artifact": Artifact(digest=DIGEST, environment="env-1")},
        {"artifact_url": "https://artifacts.example:9000"},
        {
            "site": "/fnmesh/artifact/site",
            "environment_url": "https://artifacts.example:9000/environments/env-1",
        },
    ),
    (
        "the artifact comes from the artifact service",
        {},
        {"artifact_url": "https://fnmesh-api.platform.svc:8444"},
        {"artifact_url": f"https://fnmesh-api.platform.svc:8444/artifacts/{DIGEST}"},
    ),
    (
        "the fetch checks the artifact service's certificate before sending its token",
        {},
        {
            "trust_domain": "corp.example",
            "trust_anchors": "-----BEGIN CERTIFICATE-----\nx\n-----END CERTIFICATE-----\n",
        },
        {
            "artifact_server": "identity.fnmesh-system.serviceaccount.identity.corp.example",
            "fetch_anchors": "-----BEGIN CERTIFICATE-----\nx\n-----END CERTIFICATE-----\n",
        },
    ),
    (
        "images and pull policy come from the config",
        {},
        {
            "runtime_image": "reg.example/rt:1",
            "proxy_image": "reg.example/pl:1",
            "pull_policy": "Always",
        },
        {
            "images": ("reg.example/rt:1", "reg.example/rt:1", "reg.example/pl:1"),
            "pull": {"Always"},
        },
    ),
    (
        "the identity names the service account",
        {"service_account": "billing"},
        {"trust_domain": "corp.local"},
        {
            "identity": "billing.team-a.serviceaccount.identity.corp.local",
            "account": "billing",
            "trust_domain": "corp.local",
        },
    ),
    ("a public function takes public callers", {}, {}, {"policy": {"public": True, "allow": []}}),
    (
        "a private function takes nobody from outside",
        {"visibility": "private"},
        {},
        {"policy": {"public": False, "allow": []}},
    ),
    (
        "reports go to the telemetry hub over mTLS",
        {},
        {"telemetry_url": "http://fnmesh-telemetry.platform.svc:8091"},
        {"stats_url": "https://fnmesh-telemetry.platform.svc:8091/v1/stats"},
    ),
    (
        "fnmesh mesh: the proxy terminates mTLS, no injection",
        {},
        {"mesh": "fnmesh"},
        {"inbound_tls": "true", "annotations": {}},
    ),
    (
        "linkerd mesh: linkerd injects and secures, the proxy listens plain",
        {},
        {"mesh": "linkerd"},
        {"inbound_tls": "false", "annotations": {"linkerd.io/inject": "enabled"}},
    ),
    (
        "requests come from the config",
        {},
        {
            "runtime_cpu": "100m",
            "runtime_memory": "128Mi",
            "proxy_cpu": "20m",
            "proxy_memory": "48Mi",
        },
        {"requests": ({"cpu": "100m", "memory": "128Mi"}, {"cpu": "20m", "memory": "48Mi"})},
    ),
    (
        "trust anchors are passed when set",
        {},
        {"trust_anchors": "-----BEGIN CERTIFICATE-----\nx\n-----END CERTIFICATE-----\n"},
        {"anchors": True},
    ),
    ("no trust anchors: no variable", {}, {}, {"anchors": False}),
]


def probe(deployment: dict[str, Any], what: str) -> Any:
    pod = deployment["spec"]["template"]["spec"]
    fetch = container(deployment, "fetch")
    runtime = container(deployment, "function")
    proxy = container(deployment, "fnmesh-proxy")
    return {
        "grace": lambda: pod["terminationGracePeriodSeconds"],
        "concurrency": lambda: arg_after(runtime, "--concurrency"),
        "handler": lambda: arg_after(runtime, "--handler"),
        "site": lambda: arg_after(runtime, "--site"),
        "environment_url": lambda: arg_after(fetch, "--environment-url"),
        "artifact_url": lambda: arg_after(fetch, "--url"),
        "artifact_server": lambda: arg_after(fetch, "--server-identity"),
        "fetch_anchors": lambda: env(fetch).get("FNMESH_TRUST_ANCHORS"),
        "images": lambda: (fetch["image"], runtime["image"], proxy["image"]),
        "pull": lambda: {c["imagePullPolicy"] for c in (fetch, runtime, proxy)},
        "identity": lambda: env(proxy)["FNMESH_PROXY_IDENTITY"],
        "trust_domain": lambda: env(proxy)["FNMESH_PROXY_TRUST_DOMAIN"],
        "account": lambda: pod["serviceAccountName"],
        "inbound_tls": lambda: env(proxy)["FNMESH_PROXY_INBOUND_TLS"],
        "annotations": lambda: {
            k: v
            for k, v in deployment["spec"]["template"]["metadata"]["annotations"].items()
            if k != "fnmesh.dev/policy"
        },
        "policy": lambda: json.loads(
            deployment["spec"]["template"]["metadata"]["annotations"]["fnmesh.dev/policy"]
        ),
        "stats_url": lambda: env(proxy)["FNMESH_PROXY_STATS_URL"],
        "requests": lambda: (runtime["resources"]["requests"], proxy["resources"]["requests"]),
        "anchors": lambda: "FNMESH_PROXY_TRUST_ANCHORS" in env(proxy),
    }[what]()


@pytest.mark.parametrize(
    ("what", "spec", "config", "expected"),
    DEPLOYMENT_CASES,
    ids=[case[0] for case in DEPLOYMENT_CASES],
)
def test_deployment_table(
    what: str,
    spec: dict[str, Any],
    config: dict[str, Any],
    expected: dict[str, Any],
    validate: Validate,
) -> None:
    deployment = make_deployment(revision(**spec), ClusterConfig(**config), replicas=1)
    validate(deployment)
    assert {key: probe(deployment, key) for key in expected} == expected


def test_deployment_runs_the_runtime_behind_the_proxy(validate: Validate) -> None:
    rev = revision(env={"GREETING": "hi", "A_FIRST": "1"}, concurrency=2)
    deployment = make_deployment(rev, ClusterConfig(), replicas=3)
    validate(deployment)
    assert deployment["metadata"]["name"] == "hello-00002"
    assert deployment["metadata"]["namespace"] == "team-a"
    assert deployment["spec"]["replicas"] == 3
    pod = deployment["spec"]["template"]["spec"]
    assert [c["name"] for c in pod["initContainers"]] == ["fetch"]
    assert [c["name"] for c in pod["containers"]] == ["function", "fnmesh-proxy"]

    fetch = container(deployment, "fetch")
    assert fetch["command"] == ["python", "-m", "fnmesh.functions.fetch"]
    assert arg_after(fetch, "--digest") == DIGEST
    assert arg_after(fetch, "--dest") == "/fnmesh/artifact/source"
    assert mounts(fetch)["/fnmesh/artifact"] == "artifact"

    runtime = container(deployment, "function")
    assert runtime["command"] == ["python", "-m", "fnmesh.functions"]
    assert arg_after(runtime, "--source") == "/fnmesh/artifact/source"
    assert (arg_after(runtime, "--host"), arg_after(runtime, "--port")) == ("127.0.0.1", "8080")
    assert list(env(runtime))[:2] == ["A_FIRST", "GREETING"]  # the function's own, sorted
    assert env(runtime)["PORT"] == "8080"
    assert "ports" not in runtime  # loopback only: reachable through the proxy alone
    assert mounts(runtime) == {"/fnmesh/artifact": "artifact", "/tmp": "function-tmp"}
    assert [m["readOnly"] for m in runtime["volumeMounts"] if m["name"] == "artifact"] == [True]

    proxy = container(deployment, "fnmesh-proxy")
    assert proxy["command"] == ["python", "-m", "fnmesh.platform.mesh.proxy"]
    assert {p["name"]: p["containerPort"] for p in proxy["ports"]} == {"http": 8143, "admin": 8191}
    assert proxy["readinessProbe"]["httpGet"] == {"path": "/ready", "port": 8191}
    assert proxy["livenessProbe"]["httpGet"] == {"path": "/live", "port": 8191}
    proxy_env = env(proxy)
    assert proxy_env["FNMESH_PROXY_INBOUND_PORT"] == "8143"
    assert proxy_env["FNMESH_PROXY_ADMIN_PORT"] == "8191"
    assert proxy_env["FNMESH_PROXY_UPSTREAM"] == "127.0.0.1:8080"
    assert proxy_env["FNMESH_PROXY_ADMIN_HOST"] == "0.0.0.0"  # probed from outside the pod
    assert proxy_env["FNMESH_PROXY_REVISION"] == "hello-00002"
    assert proxy_env["FNMESH_PROXY_FUNCTION"] == "hello"
    assert proxy_env["FNMESH_PROXY_NAMESPACE"] == "team-a"
    assert proxy_env["FNMESH_PROXY_CONCURRENCY"] == "2"
    token = "/var/run/secrets/fnmesh.dev/identity/token"
    assert proxy_env["FNMESH_PROXY_BOOTSTRAP_TOKEN_FILE"] == token
    assert proxy_env["FNMESH_PROXY_REPLICA"] == "<from>"
    assert proxy_env["FNMESH_PROXY_POLICY_FILE"] == "/var/run/fnmesh.dev/policy/policy.json"
    assert mounts(proxy)["/var/run/fnmesh.dev/policy"] == "policy"
    assert "preStop" not in str(proxy)  # the proxy drains on SIGTERM by itself


def test_deployment_projects_an_identity_token_for_the_proxy_only() -> None:
    deployment = make_deployment(revision(), ClusterConfig())
    pod = deployment["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    token = volumes["identity-token"]["projected"]["sources"][0]["serviceAccountToken"]
    assert token == {"audience": "identity.fnmesh.dev", "expirationSeconds": 3600, "path": "token"}
    token_dir = "/var/run/secrets/fnmesh.dev/identity"
    assert mounts(container(deployment, "fnmesh-proxy"))[token_dir] == "identity-token"
    assert token_dir not in mounts(container(deployment, "function"))
    assert pod["automountServiceAccountToken"] is False  # no API credentials in the pod


def test_deployment_is_locked_down() -> None:
    deployment = make_deployment(revision(), ClusterConfig(run_as_user=1001))
    pod = deployment["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 1001
    for item in pod["containers"] + pod["initContainers"]:
        context = item["securityContext"]
        assert context["runAsNonRoot"] is True, item["name"]
        assert context["readOnlyRootFilesystem"] is True, item["name"]
        assert context["allowPrivilegeEscalation"] is False, item["name"]
        assert context["capabilities"] == {"drop": ["ALL"]}, item["name"]
        assert set(item["resources"]["requests"]) == {"cpu", "memory"}, item["name"]


def test_deployment_labels_select_its_own_pods() -> None:
    deployment = make_deployment(revision(), ClusterConfig())
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert labels["fnmesh.dev/function"] == "hello"
    assert labels["fnmesh.dev/revision"] == "hello-00002"
    assert labels["app.kubernetes.io/name"] == "hello"
    assert labels["app.kubernetes.io/instance"] == "hello-00002"
    assert labels["app.kubernetes.io/part-of"] == "fnmesh"
    assert labels["app.kubernetes.io/managed-by"] == "fnmesh-operator"
    selector = deployment["spec"]["selector"]["matchLabels"]
    assert selector.items() <= labels.items()
    assert deployment["metadata"]["labels"] == labels
    assert deployment["metadata"]["labels"] is not labels  # no shared, mutable parts


def test_deployment_without_replicas_leaves_scaling_to_the_autoscaler() -> None:
    assert "replicas" not in make_deployment(revision(), ClusterConfig())["spec"]
    assert make_deployment(revision(), ClusterConfig(), replicas=0)["spec"]["replicas"] == 0
    with pytest.raises(ValueError, match="replicas must be 0 or more"):
        make_deployment(revision(), ClusterConfig(), replicas=-1)


# -- ownership --------------------------------------------------------------------------


def owner(obj: dict[str, Any]) -> dict[str, Any]:
    (reference,) = obj["metadata"]["ownerReferences"]
    return dict(reference)


OWNED_CASES = [
    ("deployment", lambda: make_deployment(revision(), ClusterConfig()), "Revision", REVISION_UID),
    ("revision service", lambda: make_service(revision()), "Revision", REVISION_UID),
    ("service account", lambda: make_service_account(function()), "Function", FUNCTION_UID),
    ("apex service", lambda: make_root_service(function()), "Function", FUNCTION_UID),
    (
        "traffic split",
        lambda: make_traffic_split(function(), [("hello-00002", 100)]),
        "Function",
        FUNCTION_UID,
    ),
    (
        "traffic target",
        lambda: make_traffic_target(function(), [GATEWAY]),
        "Function",
        FUNCTION_UID,
    ),
    ("route group", lambda: make_http_route_group(function()), "Function", FUNCTION_UID),
]


@pytest.mark.parametrize(
    ("what", "build", "kind", "uid"), OWNED_CASES, ids=[case[0] for case in OWNED_CASES]
)
def test_every_object_is_controlled_by_its_owner(
    what: str, build: Any, kind: str, uid: str, validate: Validate
) -> None:
    obj = build()
    validate(obj)
    name = "hello-00002" if kind == "Revision" else "hello"
    assert owner(obj) == {
        "apiVersion": "fnmesh.dev/v1alpha1",
        "kind": kind,
        "name": name,
        "uid": uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }
    assert obj["metadata"]["namespace"] == "team-a"
    assert obj["metadata"]["labels"]["fnmesh.dev/function"] == "hello"


@pytest.mark.parametrize(
    "build",
    [
        lambda r, f: make_deployment(r, ClusterConfig()),
        lambda r, f: make_service(r),
        lambda r, f: make_service_account(f),
        lambda r, f: make_root_service(f),
        lambda r, f: make_traffic_split(f, [("hello-00001", 100)]),
        lambda r, f: make_traffic_target(f, []),
        lambda r, f: make_http_route_group(f),
    ],
)
def test_an_owner_without_uid_is_refused(build: Any) -> None:
    rev = dataclasses.replace(
        revision(), metadata=ObjectMeta(name="hello-00002", namespace="team-a")
    )
    fn = dataclasses.replace(function(), metadata=ObjectMeta(name="hello", namespace="team-a"))
    with pytest.raises(ValueError, match=r"team-a/hello(-00002)? has no metadata.uid"):
        build(rev, fn)


# -- Services and the ServiceAccount ----------------------------------------------------


def test_revision_service_targets_the_proxy_inbound_port(validate: Validate) -> None:
    service = make_service(revision())
    validate(service)
    assert service["metadata"]["name"] == "hello-00002"
    assert service["spec"]["selector"] == {"fnmesh.dev/revision": "hello-00002"}
    assert service["spec"]["ports"] == [
        {"name": "http", "port": 80, "targetPort": 8143, "protocol": "TCP"}
    ]


def test_apex_service_selects_every_revision(validate: Validate) -> None:
    service = make_root_service(function())
    validate(service)
    assert service["metadata"]["name"] == "hello"
    assert service["spec"]["selector"] == {"fnmesh.dev/function": "hello"}
    assert [(p["name"], p["port"], p["targetPort"]) for p in service["spec"]["ports"]] == [
        ("http", 80, 8143)
    ]


@pytest.mark.parametrize(("account", "expected"), [(None, "hello"), ("billing", "billing")])
def test_service_account_is_the_functions_own(
    account: str | None, expected: str, validate: Validate
) -> None:
    obj = make_service_account(function(service_account=account))
    validate(obj)
    assert obj["metadata"]["name"] == expected
    assert obj["automountServiceAccountToken"] is False


# -- SMI objects ------------------------------------------------------------------------

SPLIT_CASES = [
    ("one revision takes everything", [("hello-00001", 100)]),
    ("a canary", [("hello-00001", 90), ("hello-00002", 10)]),
    ("a finished canary keeps a zero backend", [("hello-00001", 0), ("hello-00002", 100)]),
]


@pytest.mark.parametrize(("what", "backends"), SPLIT_CASES, ids=[c[0] for c in SPLIT_CASES])
def test_traffic_split_table(
    what: str, backends: list[tuple[str, int]], validate: Validate
) -> None:
    split = make_traffic_split(function(), backends)
    validate(split)
    assert split["apiVersion"] == "split.smi-spec.io/v1alpha4"
    assert split["metadata"]["name"] == "hello"
    assert split["spec"]["service"] == "hello"
    assert split["spec"]["backends"] == [{"service": s, "weight": w} for s, w in backends]


def test_traffic_split_in_the_version_linkerd_serves(validate: Validate) -> None:
    split = make_traffic_split(
        function(), [("hello-00001", 100)], api_version="split.smi-spec.io/v1alpha2"
    )
    validate(split)
    assert split["apiVersion"] == "split.smi-spec.io/v1alpha2"


@pytest.mark.parametrize(
    ("backends", "message"),
    [
        ([], "needs at least one backend"),
        ([("hello-00001", -1)], r"backends\[0\] \(hello-00001\): weight must be"),
        ([("hello-00001", 0), ("hello-00002", 0)], "only zero weights"),
        ([("hello-00001", 100), ("Bad_Name", 0)], r"backends\[1\]: backend service 'Bad_Name'"),
        ([("hello-00001", True)], "weight must be a whole number"),
    ],
)
def test_traffic_split_refuses_bad_backends(backends: list[Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make_traffic_split(function(), backends)


def test_traffic_target_lets_the_allowed_service_accounts_in(validate: Validate) -> None:
    caller = "checkout.shop.serviceaccount.identity.fnmesh.local"
    target = make_traffic_target(
        function(service_account="billing"), [GATEWAY, ACTIVATOR, caller, GATEWAY]
    )
    validate(target)
    assert target["apiVersion"] == "access.smi-spec.io/v1alpha3"
    assert target["spec"]["destination"] == {
        "kind": "ServiceAccount",
        "name": "billing",
        "namespace": "team-a",
    }
    assert target["spec"]["sources"] == [
        {"kind": "ServiceAccount", "name": "fnmesh-gateway", "namespace": "fnmesh-system"},
        {"kind": "ServiceAccount", "name": "fnmesh-activator", "namespace": "fnmesh-system"},
        {"kind": "ServiceAccount", "name": "checkout", "namespace": "shop"},
    ]
    assert target["spec"]["rules"] == [
        {"kind": "HTTPRouteGroup", "name": "hello", "matches": ["all"]}
    ]
    route_group = make_http_route_group(function())
    validate(route_group)
    assert route_group["metadata"]["name"] == target["spec"]["rules"][0]["name"]
    assert [m["name"] for m in route_group["spec"]["matches"]] == ["all"]


def test_traffic_target_with_nobody_allowed(validate: Validate) -> None:
    target = make_traffic_target(function(), [])
    validate(target)
    assert target["spec"]["sources"] == []


@pytest.mark.parametrize(
    ("identity", "message"),
    [
        ("fnmesh-gateway", "is not a mesh identity"),
        ("a.b.c.d", "is not a mesh identity"),
        ("Gateway.fnmesh-system.serviceaccount.identity.fnmesh.local", "not a DNS-1123 label"),
    ],
)
def test_traffic_target_refuses_what_is_not_an_identity(identity: str, message: str) -> None:
    with pytest.raises(ValueError, match=message) as caught:
        make_traffic_target(function(), [GATEWAY, identity])
    assert str(caught.value).startswith("allowed[1]: ")


def test_identity_round_trip() -> None:
    config = ClusterConfig(trust_domain="corp.example")
    identity = config.identity("fnmesh-gateway", "fnmesh-system")
    assert identity == "fnmesh-gateway.fnmesh-system.serviceaccount.identity.corp.example"
    assert parse_identity(identity) == ("fnmesh-gateway", "fnmesh-system")


# -- the validation itself --------------------------------------------------------------


@pytest.mark.parametrize(
    ("break_it", "error"),
    [
        (
            lambda: {**make_service(revision()), "spec": {"selektor": {}}},
            kubernetes_validate.ValidationError,
        ),
        (
            lambda: {**make_deployment(revision(), ClusterConfig()), "replicas": 1},
            kubernetes_validate.ValidationError,
        ),
        (
            lambda: {
                **make_traffic_split(function(), [("hello-00001", 100)]),
                "spec": {"service": "hello", "backends": [{"service": "a", "weight": "x"}]},
            },
            jsonschema.ValidationError,
        ),
        (
            lambda: {**make_traffic_target(function(), []), "spec": {"sources": []}},
            jsonschema.ValidationError,
        ),
        (lambda: {**make_http_route_group(function()), "extra": True}, jsonschema.ValidationError),
    ],
)
def test_validation_catches_broken_objects(
    break_it: Callable[[], dict[str, Any]], error: type[Exception], validate: Validate
) -> None:
    with pytest.raises(error):
        validate(break_it())


# -- the proxy reads what the builder writes ---------------------------------------------

ANCHOR = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"


def resolved_env(item: dict[str, Any], pod_name: str) -> dict[str, str]:
    """The container's environment as the kubelet gives it (field refs filled in)."""
    fields = {"metadata.name": pod_name}
    found = {}
    for entry in item["env"]:
        if "value" in entry:
            found[entry["name"]] = entry["value"]
        else:
            found[entry["name"]] = fields[entry["valueFrom"]["fieldRef"]["fieldPath"]]
    return found


@pytest.mark.parametrize(
    "config",
    [
        {"trust_anchors": ANCHOR},
        {"trust_anchors": ANCHOR, "trust_domain": "corp.local"},
        {
            "trust_anchors": ANCHOR,
            "mesh": "linkerd",
            "split_api_version": "split.smi-spec.io/v1alpha2",
        },
        {
            "trust_anchors": ANCHOR,
            "identity_url": "https://api.platform.svc:9443",
            "telemetry_url": "https://hub.platform.svc:9091",
        },
    ],
    ids=["defaults", "trust-domain", "linkerd", "addresses"],
)
def test_the_proxy_accepts_the_environment_it_is_given(config: dict[str, Any]) -> None:
    cfg = ClusterConfig(**config)
    rev = revision(concurrency=3, timeout=12.5, visibility="private")
    deployment = make_deployment(rev, cfg)
    proxy = container(deployment, "fnmesh-proxy")
    parsed = ProxyConfig.from_env(resolved_env(proxy, "hello-00002-x7k2p"))
    assert parsed.identity.name == cfg.identity("hello", "team-a")
    assert parsed.identity.service_url == cfg.identity_url
    assert parsed.identity.trust_anchors_pem.strip() == ANCHOR.strip()
    assert parsed.identity.bootstrap_token_file == Path(TOKEN_FILE)
    assert (parsed.labels.namespace, parsed.labels.function) == ("team-a", "hello")
    assert (parsed.labels.revision, parsed.labels.replica) == ("hello-00002", "hello-00002-x7k2p")
    assert parsed.upstream.port == 8080 and parsed.listen.inbound.port == 8143
    assert (parsed.listen.admin.host, parsed.listen.admin.port) == ("0.0.0.0", 8191)
    assert parsed.limits.concurrency == 3
    assert parsed.limits.request_timeout == 12.5
    assert parsed.stats.url == stats_url(cfg)
    # the policy file is the pod annotation, projected by the downward API
    volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
    (item,) = volumes["policy"]["downwardAPI"]["items"]
    assert parsed.policy.file == Path(POLICY_DIR) / item["path"]
    annotation = item["fieldRef"]["fieldPath"].split("'")[1]
    document = deployment["spec"]["template"]["metadata"]["annotations"][annotation]
    policy = parse_policy(json.loads(document), parsed.policy.public_callers)
    assert policy.public is False and not policy.callers


def test_without_trust_anchors_the_proxy_says_what_is_missing() -> None:
    proxy = container(make_deployment(revision(), ClusterConfig()), "fnmesh-proxy")
    with pytest.raises(ValidationError, match="FNMESH_PROXY_TRUST_ANCHORS: is required"):
        ProxyConfig.from_env(resolved_env(proxy, "hello-00002-x7k2p"))


RESOURCE_CASES = [
    (
        "the revision's resources are the runtime's limits",
        ResourcesSpec(memory=512 * 1024**2, cpu=0.5, pids=128),
        {},
        {
            "requests": {"cpu": "50m", "memory": "64Mi"},
            "limits": {"cpu": "500m", "memory": "512Mi"},
        },
    ),
    (
        "unset: the cluster's default limits",
        ResourcesSpec(),
        {},
        {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"cpu": "1", "memory": "256Mi"}},
    ),
    (
        "the cluster's defaults are configurable",
        ResourcesSpec(cpu=2.0),
        {"runtime_cpu_limit": "1500m", "runtime_memory_limit": "1Gi"},
        {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"cpu": "2", "memory": "1Gi"}},
    ),
    (
        "requests never exceed small limits",
        ResourcesSpec(memory=32 * 1024**2, cpu=0.02),
        {},
        {"requests": {"cpu": "20m", "memory": "32Mi"}, "limits": {"cpu": "20m", "memory": "32Mi"}},
    ),
    (
        "memory that is no whole number of Ki is written in bytes",
        ResourcesSpec(memory=100_000_000),
        {"runtime_memory": "64M"},
        {
            "requests": {"cpu": "50m", "memory": "62500Ki"},
            "limits": {"cpu": "1", "memory": "100000000"},
        },
    ),
]


@pytest.mark.parametrize(
    ("what", "resources", "config", "expected"),
    RESOURCE_CASES,
    ids=[case[0] for case in RESOURCE_CASES],
)
def test_runtime_resources_table(
    what: str,
    resources: ResourcesSpec,
    config: dict[str, Any],
    expected: dict[str, Any],
    validate: Validate,
) -> None:
    deployment = make_deployment(revision(resources=resources), ClusterConfig(**config))
    validate(deployment)
    assert container(deployment, "function")["resources"] == expected


# The Pod Security Standard "restricted" profile, field by field, for every container.
RESTRICTED_CONTAINER = {
    "runAsNonRoot": True,
    "readOnlyRootFilesystem": True,
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"},
}


@pytest.mark.parametrize("name", ["fetch", "function", "fnmesh-proxy"])
@pytest.mark.parametrize(("field", "value"), list(RESTRICTED_CONTAINER.items()))
def test_every_container_is_restricted(name: str, field: str, value: Any) -> None:
    deployment = make_deployment(revision(), ClusterConfig())
    assert container(deployment, name)["securityContext"][field] == value
    assert "privileged" not in container(deployment, name)["securityContext"]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("runAsNonRoot", True),
        ("runAsUser", 65532),
        ("runAsGroup", 65532),
        ("seccompProfile", {"type": "RuntimeDefault"}),
    ],
)
def test_the_pod_runs_as_a_fixed_unprivileged_user(field: str, value: Any) -> None:
    pod = make_deployment(revision(), ClusterConfig())["spec"]["template"]["spec"]
    assert pod["securityContext"][field] == value


def test_the_pod_shares_nothing_with_its_node() -> None:
    pod = make_deployment(revision(), ClusterConfig())["spec"]["template"]["spec"]
    for field in ("hostNetwork", "hostPID", "hostIPC", "shareProcessNamespace"):
        assert not pod.get(field), field
    allowed = {"emptyDir", "projected", "downwardAPI"}
    for volume in pod["volumes"]:
        assert set(volume) - {"name"} <= allowed, volume["name"]


def test_the_runtime_writes_only_its_own_scratch_and_holds_no_token() -> None:
    deployment = make_deployment(revision(), ClusterConfig())
    pod = deployment["spec"]["template"]["spec"]
    runtime = container(deployment, "function")
    assert mounts(runtime)["/tmp"] == "function-tmp"
    writable = [m["name"] for m in runtime["volumeMounts"] if not m.get("readOnly")]
    assert writable == ["function-tmp"]
    assert "identity-token" not in mounts(runtime).values()
    assert "automountServiceAccountToken" not in runtime  # a pod field: False above
    assert pod["automountServiceAccountToken"] is False
    # the token goes to the proxy (certificates) and the fetch, which ends before the
    # runtime starts (artifacts over TLS only)
    holders = [
        c["name"]
        for c in pod["containers"] + pod["initContainers"]
        if "identity-token" in mounts(c).values()
    ]
    assert sorted(holders) == ["fetch", "fnmesh-proxy"]
