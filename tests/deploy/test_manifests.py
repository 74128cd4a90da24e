"""deploy/: every overlay renders, validates against the Kubernetes schemas, grants exactly
the RBAC table, meets Pod Security "restricted", and ships configs and a dashboard that the
code accepts and exports."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import warnings
from pathlib import Path
from typing import Any

import pytest
import yaml

from autoscaler import main as autoscaler_main
from autoscaler.config import parse_config as parse_autoscaler_config
from gateway.config import parse_config as parse_gateway_config
from tests.deploy import dashboard

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
OVERLAYS = ["dev", "triton", "kserve"]
KUBECTL = shutil.which("kubectl")

pytestmark = pytest.mark.skipif(
    KUBECTL is None, reason="kubectl is not installed: `kubectl kustomize` renders the overlays"
)

# The RBAC table (docs/deploying.md): (apiGroup, resource, verbs, resourceNames).
GATEWAY_RULES = {("discovery.k8s.io", "endpointslices", ("list", "watch"), ())}
AUTOSCALER_RULES = {
    ("apps", "deployments/scale", ("get", "patch"), ("sim-pods",)),
    ("", "events", ("create",), ()),
    ("coordination.k8s.io", "leases", ("get", "update"), ("inference-autoscaler",)),
    ("coordination.k8s.io", "leases", ("create",), ()),
}
# With components/keda the autoscaler decides and KEDA's HPA patches: it only reads the scale.
KEDA_AUTOSCALER_RULES = {
    ("apps", "deployments/scale", ("get",), ("sim-pods",)),
    *(r for r in AUTOSCALER_RULES if r[1] == "leases"),
}
MODEL_DEPLOYMENT = {"dev": "sim-pods", "triton": "sim-pods", "kserve": "sim-predictor"}


def kustomize(directory: Path) -> list[dict[str, Any]]:
    out = subprocess.run(
        [KUBECTL or "kubectl", "kustomize", str(directory)],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout
    return [d for d in yaml.safe_load_all(out) if d]


_RENDERED: dict[str, list[dict[str, Any]]] = {}


def rendered(overlay: str) -> list[dict[str, Any]]:
    if overlay not in _RENDERED:
        _RENDERED[overlay] = kustomize(DEPLOY / "overlays" / overlay)
    return _RENDERED[overlay]


def with_keda(tmp_path: Path) -> list[dict[str, Any]]:
    """dev plus the keda Component (kustomize wants relative paths)."""
    rel = os.path.relpath(DEPLOY, tmp_path)
    (tmp_path / "kustomization.yaml").write_text(
        f"resources: [{rel}/overlays/dev]\ncomponents: [{rel}/components/keda]\n"
    )
    return kustomize(tmp_path)


def of_kind(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == kind]


def named(docs: list[dict[str, Any]], kind: str, prefix: str) -> dict[str, Any]:
    found = [d for d in of_kind(docs, kind) if d["metadata"]["name"].startswith(prefix)]
    assert len(found) == 1, f"one {kind} named {prefix}*: {found}"
    return found[0]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_renders_into_namespace_inference(overlay: str) -> None:
    docs = rendered(overlay)
    kinds = {d["kind"] for d in docs}
    assert {"Namespace", "Deployment", "Service", "Role", "RoleBinding"} <= kinds
    assert {"PodDisruptionBudget", "ConfigMap", "ServiceMonitor", "ServiceAccount"} <= kinds
    ns = named(docs, "Namespace", "inference")
    for mode in ("enforce", "warn", "audit"):
        assert ns["metadata"]["labels"][f"pod-security.kubernetes.io/{mode}"] == "restricted"
    for d in docs:
        if d["kind"] == "Namespace":
            continue
        assert d["metadata"]["namespace"] == "inference", d["metadata"]["name"]
        labels = d["metadata"]["labels"]
        for key in ("name", "part-of", "component"):
            assert f"app.kubernetes.io/{key}" in labels, (d["kind"], d["metadata"]["name"])


@pytest.mark.parametrize("version", ["1.30", "latest"])
@pytest.mark.parametrize("overlay", [*OVERLAYS, "keda"])
def test_every_object_validates_strictly(overlay: str, version: str, tmp_path: Path) -> None:
    import kubernetes_validate

    if version == "latest":
        version = kubernetes_validate.latest_version()
    docs = with_keda(tmp_path) if overlay == "keda" else rendered(overlay)
    for d in docs:
        if d["apiVersion"].split("/")[0].endswith((".coreos.com", "keda.sh", "kserve.io")):
            continue  # custom resources: checked by their required fields below
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            kubernetes_validate.validate(d, version, strict=True)


def test_custom_resources_have_their_required_fields(tmp_path: Path) -> None:
    docs = rendered("dev")
    monitors = of_kind(docs, "ServiceMonitor")
    assert len(monitors) == 2
    for sm in monitors:
        assert sm["apiVersion"] == "monitoring.coreos.com/v1"
        assert sm["spec"]["selector"]["matchLabels"]
        assert sm["spec"]["endpoints"] and all(e.get("port") for e in sm["spec"]["endpoints"])

    (so,) = of_kind(with_keda(tmp_path), "ScaledObject")
    assert so["apiVersion"] == "keda.sh/v1alpha1"
    assert so["spec"]["scaleTargetRef"]["name"] == "sim-pods"
    (trigger,) = so["spec"]["triggers"]
    assert trigger["type"] == "external-push"
    assert trigger["metadata"]["model"] == "sim"
    host, port = trigger["metadata"]["scalerAddress"].rsplit(":", 1)
    assert port == "8090" and host.split(".")[0] == "inference-autoscaler"
    svc = named(docs, "Service", "inference-autoscaler")
    assert svc["spec"]["clusterIP"] == "None"
    assert {"name": "grpc", "port": 8090} in [
        {"name": p["name"], "port": p["port"]} for p in svc["spec"]["ports"]
    ]

    isvc = named(rendered("kserve"), "InferenceService", "sim")
    assert isvc["apiVersion"] == "serving.kserve.io/v1beta1"
    notes = isvc["metadata"]["annotations"]
    assert notes["serving.kserve.io/deploymentMode"] in ("Standard", "RawDeployment")
    assert notes["serving.kserve.io/autoscalerClass"] == "external"
    predictor = isvc["spec"]["predictor"]
    assert predictor["triton"]["storageUri"] and predictor["triton"]["protocolVersion"]


def _rules(role: dict[str, Any]) -> set[tuple[str, str, tuple[str, ...], tuple[str, ...]]]:
    out = set()
    for r in role["rules"]:
        assert set(r) <= {"apiGroups", "resources", "verbs", "resourceNames"}, r
        for group in r["apiGroups"]:
            for resource in r["resources"]:
                out.add(
                    (group, resource, tuple(sorted(r["verbs"])), tuple(r.get("resourceNames", ())))
                )
    return out


@pytest.mark.parametrize("overlay", [*OVERLAYS, "keda"])
def test_roles_are_exactly_the_rbac_table(overlay: str, tmp_path: Path) -> None:
    docs = with_keda(tmp_path) if overlay == "keda" else rendered(overlay)
    assert not of_kind(docs, "ClusterRole") and not of_kind(docs, "ClusterRoleBinding")
    text = json.dumps([d for d in docs if d["kind"] in ("Role", "RoleBinding")])
    assert '"*"' not in text
    roles = {r["metadata"]["name"]: r for r in of_kind(docs, "Role")}
    assert set(roles) == {"inference-gateway", "inference-autoscaler"}
    assert _rules(roles["inference-gateway"]) == GATEWAY_RULES
    deployment = MODEL_DEPLOYMENT.get(overlay, "sim-pods")
    table = KEDA_AUTOSCALER_RULES if overlay == "keda" else AUTOSCALER_RULES
    expected = {(g, r, v, (deployment,) if r == "deployments/scale" else n) for g, r, v, n in table}
    assert _rules(roles["inference-autoscaler"]) == expected
    bindings = {b["metadata"]["name"]: b for b in of_kind(docs, "RoleBinding")}
    for name in roles:
        b = bindings[name]
        assert b["roleRef"] == {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "Role",
            "name": name,
        }
        assert b["subjects"] == [{"kind": "ServiceAccount", "name": name, "namespace": "inference"}]
    for dep in of_kind(docs, "Deployment"):
        sa = dep["spec"]["template"]["spec"].get("serviceAccountName")
        if sa in roles:
            assert sa == dep["metadata"]["name"]


_ALLOWED_VOLUMES = {
    "configMap", "secret", "emptyDir", "projected", "downwardAPI",
    "persistentVolumeClaim", "csi", "ephemeral",
}  # fmt: skip


def _check_restricted(where: str, pod: dict[str, Any]) -> None:
    psc = pod.get("securityContext", {})
    for key in ("hostNetwork", "hostPID", "hostIPC", "hostUsers"):
        assert key not in pod or (key == "hostUsers" and pod[key] is True), (where, key)
    for vol in pod.get("volumes", []):
        kinds = set(vol) - {"name"}
        assert kinds <= _ALLOWED_VOLUMES, (where, vol)
    assert psc.get("seccompProfile", {}).get("type") == "RuntimeDefault", where
    containers = pod["containers"] + pod.get("initContainers", [])
    for c in containers:
        csc = c.get("securityContext", {})
        name = f"{where}/{c['name']}"
        non_root = csc.get("runAsNonRoot", psc.get("runAsNonRoot"))
        assert non_root is True, name
        uid = csc.get("runAsUser", psc.get("runAsUser"))
        assert uid is not None and uid != 0, name
        assert csc.get("allowPrivilegeEscalation") is False, name
        assert csc.get("capabilities", {}).get("drop") == ["ALL"], name
        assert set(csc.get("capabilities", {}).get("add", [])) <= {"NET_BIND_SERVICE"}, name
        assert not csc.get("privileged"), name
        assert csc.get("readOnlyRootFilesystem") is True, name
        for port in c.get("ports", []):
            assert "hostPort" not in port, name
        for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
            for handler in ("httpGet", "tcpSocket"):
                assert "host" not in c.get(probe, {}).get(handler, {}), name
        mounts = {m["mountPath"] for m in c.get("volumeMounts", [])}
        assert "/tmp" in mounts, name


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_pod_meets_pss_restricted(overlay: str) -> None:
    docs = rendered(overlay)
    pods = [(d["metadata"]["name"], d["spec"]["template"]["spec"]) for d in docs
            if d["kind"] in ("Deployment", "StatefulSet", "DaemonSet", "Job")]  # fmt: skip
    assert pods
    for name, pod in pods:
        _check_restricted(name, pod)


def test_gateway_deployment_shape() -> None:
    docs = rendered("dev")
    dep = named(docs, "Deployment", "inference-gateway")
    spec = dep["spec"]
    assert spec["replicas"] >= 2
    assert spec["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    pod = spec["template"]["spec"]
    assert pod["topologySpreadConstraints"]
    (c,) = pod["containers"]
    assert {p["name"]: p["containerPort"] for p in c["ports"]} == {
        "http": 8000, "grpc": 8001, "metrics": 8002
    }  # fmt: skip
    assert c["livenessProbe"]["httpGet"]["path"] == "/v2/health/live"
    assert c["readinessProbe"]["httpGet"]["path"] == "/v2/health/ready"
    pre_stop = c["lifecycle"]["preStop"]["sleep"]["seconds"]
    config = parse_gateway_config(
        yaml.safe_load(named(docs, "ConfigMap", "inference-gateway-config")["data"]["gateway.yaml"])
    )  # the grace outlasts the preStop sleep and then the gateway's whole drain
    assert pod["terminationGracePeriodSeconds"] > pre_stop + config.server.drain_grace_s
    assert c["resources"]["requests"] and c["resources"]["limits"]
    assert c["command"] == ["gateway"] and c["args"] == ["--config", "/etc/gateway/gateway.yaml"]
    svc = named(docs, "Service", "inference-gateway")
    assert {p["name"]: p["port"] for p in svc["spec"]["ports"]} == {
        "http-inference-server": 8000, "grpc-inference-server": 8001,
        "metrics-inference-server": 8002,
    }  # fmt: skip
    auto = named(docs, "Deployment", "inference-autoscaler")
    assert auto["spec"]["replicas"] == 2
    (a,) = auto["spec"]["template"]["spec"]["containers"]
    assert a["readinessProbe"]["httpGet"] == {"path": "/healthz", "port": "metrics"}
    for pdb in of_kind(docs, "PodDisruptionBudget"):
        assert pdb["spec"] == {"maxUnavailable": 1, "selector": pdb["spec"]["selector"]}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_configmaps_load_and_point_at_real_services(overlay: str) -> None:
    docs = rendered(overlay)
    gw_cm = named(docs, "ConfigMap", "inference-gateway-config")
    gw = parse_gateway_config(yaml.safe_load(gw_cm["data"]["gateway.yaml"]))
    au_cm = named(docs, "ConfigMap", "inference-autoscaler-config")
    au = parse_autoscaler_config(yaml.safe_load(au_cm["data"]["autoscaler.yaml"]))
    # the Deployments mount the (hash-suffixed) ConfigMaps they were rendered with
    mounted = {
        v["configMap"]["name"]
        for d in of_kind(docs, "Deployment")
        for v in d["spec"]["template"]["spec"].get("volumes", [])
        if "configMap" in v
    }
    assert {gw_cm["metadata"]["name"], au_cm["metadata"]["name"]} <= mounted

    (model,) = gw.models
    assert model.name == "sim" and model.discovery is not None
    assert model.discovery.kubeconfig is None and model.discovery.namespace == "inference"
    assert gw.autoscaler is not None and gw.autoscaler.discovery is not None
    target = gw.autoscaler.discovery
    svc = named(docs, "Service", target.service)
    assert target.port_name in {p["name"] for p in svc["spec"]["ports"]}
    assert (au.server.grpc_port, au.server.metrics_port) == (8090, 8091)
    assert au.kubernetes.kubeconfig is None and au.kubernetes.namespace == "inference"
    assert au.leader_election.lease_name == "inference-autoscaler"
    (scaled,) = au.models
    assert scaled.deployment == MODEL_DEPLOYMENT[overlay]
    if overlay == "kserve":
        return  # KServe creates the predictor's Deployment and Service itself
    named(docs, "Deployment", scaled.deployment)
    model_svc = named(docs, "Service", model.discovery.service)
    assert model.discovery.port_name in {p["name"] for p in model_svc["spec"]["ports"]}


def _autoscaler_targets(docs: list[dict[str, Any]]) -> dict[str, str]:
    """Each model's actuation, as the rendered autoscaler would run it (its args, its config)."""
    (container,) = named(docs, "Deployment", "inference-autoscaler")["spec"]["template"]["spec"][
        "containers"
    ]
    args = autoscaler_main._parse(container["args"])
    cm = named(docs, "ConfigMap", "inference-autoscaler-config")
    config = parse_autoscaler_config(yaml.safe_load(cm["data"]["autoscaler.yaml"]))
    return {
        t.model: t.actuation
        for t in autoscaler_main._targets(autoscaler_main._with_flags(config, args))
    }


def test_the_keda_component_hands_the_scale_to_keda(tmp_path: Path) -> None:
    assert set(_autoscaler_targets(rendered("dev")).values()) == {"patch"}
    docs = with_keda(tmp_path)
    actuations = _autoscaler_targets(docs)
    (scaled,) = of_kind(docs, "ScaledObject")
    (trigger,) = scaled["spec"]["triggers"]
    assert actuations[trigger["metadata"]["model"]] == "keda"
    host, port = trigger["metadata"]["scalerAddress"].rsplit(":", 1)
    svc = named(docs, "Service", "inference-autoscaler")
    assert host == f"{svc['metadata']['name']}.inference.svc.cluster.local"
    assert int(port) in {p["port"] for p in svc["spec"]["ports"]}


def _selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


def test_each_servicemonitor_port_exists_on_its_service() -> None:
    docs = rendered("dev")
    services = of_kind(docs, "Service")
    for sm in of_kind(docs, "ServiceMonitor"):
        selector = sm["spec"]["selector"]["matchLabels"]
        matched = [s for s in services if _selects(selector, s["metadata"]["labels"])]
        assert len(matched) == 1, sm["metadata"]["name"]
        ports = {p["name"] for p in matched[0]["spec"]["ports"]}
        for ep in sm["spec"]["endpoints"]:
            assert ep["port"] in ports, (sm["metadata"]["name"], ep["port"])


def test_dashboard_is_a_grafana_configmap() -> None:
    docs = rendered("dev")
    cm = named(docs, "ConfigMap", "inference-gateway-dashboard")
    assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
    (text,) = cm["data"].values()
    dash = json.loads(text)
    assert dash["uid"] == "inference-gateway"
    variables = {v["name"]: v for v in dash["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert dash == dashboard.load()  # the ConfigMap carries the file as it is
    # Every name queried is exported by a running gateway or autoscaler:
    # tests/integration/loop/test_dashboard_metrics.py scrapes them.
    assert len(dashboard.queried_metrics(dash)) >= 15
    for p in dash["panels"]:
        assert p["datasource"]["uid"] == "${datasource}"


def test_dashboard_panels_tile_the_grid_without_overlap() -> None:
    """Grafana's 24-column grid: each panel inside it, no two sharing a cell, ids unique."""
    panels = dashboard.load()["panels"]
    assert len({p["id"] for p in panels}) == len(panels)
    taken: dict[tuple[int, int], str] = {}
    for p in panels:
        g = p["gridPos"]
        assert g["x"] >= 0 and g["w"] > 0 and g["x"] + g["w"] <= 24, p["title"]
        for cell in (
            (x, y) for x in range(g["x"], g["x"] + g["w"]) for y in range(g["y"], g["y"] + g["h"])
        ):
            assert cell not in taken, (p["title"], taken.get(cell))
            taken[cell] = p["title"]
