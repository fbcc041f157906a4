"""deploy/kubernetes: the manifests validate offline and agree with each other and the image.

Core objects (Deployment, Service, HorizontalPodAutoscaler) are validated against the
Kubernetes OpenAPI schemas bundled in ``kubernetes-validate`` (strict: unknown fields are
errors). The KServe ``InferenceService`` is a custom resource whose schema ships with KServe,
not with Kubernetes, so it is checked by its documented structure here, and its
``resources`` block (a core ``ResourceRequirements``) by the core schema inside a Pod.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy" / "kubernetes"
K8S_VERSION = "1.30.0"  # oldest release still widely supported by managed clusters
CORE = ("deployment.yaml", "service.yaml", "hpa.yaml")


def load(name: str) -> dict:
    return yaml.safe_load((DEPLOY / name).read_text())


def validate(obj: dict) -> None:
    kubernetes_validate.validate(obj, K8S_VERSION, strict=True)


@pytest.mark.parametrize("name", CORE)
def test_core_manifests_pass_schema_validation(name):
    validate(load(name))


@pytest.mark.parametrize("name, mutate", [
    ("deployment.yaml", lambda d: d["spec"]["template"]["spec"]["containers"][0]["ports"][0].update(containerPort="http")),
    ("deployment.yaml", lambda d: d["spec"]["template"]["spec"]["containers"][0].update(readinessProbes=[])),
    ("service.yaml", lambda d: d["spec"].update(ports=[{"name": "http"}])),
    ("hpa.yaml", lambda d: d["spec"].pop("scaleTargetRef")),
])
def test_the_validator_catches_broken_manifests(name, mutate):
    broken = copy.deepcopy(load(name))
    mutate(broken)
    with pytest.raises(kubernetes_validate.ValidationError):
        validate(broken)


def _container(dep: dict) -> dict:
    (c,) = dep["spec"]["template"]["spec"]["containers"]
    return c


def test_deployment_serves_the_image_ports_with_gpu_and_health_probes():
    dep = load("deployment.yaml")
    c = _container(dep)
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    exposed = re.search(r"^EXPOSE (.+)$", (ROOT / "Dockerfile").read_text(), re.M).group(1).split()
    assert sorted(ports.values()) == sorted(int(p) for p in exposed) == [8000, 8001, 8002]
    assert c["resources"]["requests"]["nvidia.com/gpu"] == c["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert c["readinessProbe"]["httpGet"] == {"path": "/v2/health/ready", "port": "http"}
    assert c["livenessProbe"]["httpGet"] == {"path": "/v2/health/live", "port": "http"}
    assert c["startupProbe"]["httpGet"]["path"] == "/v2/health/ready"
    # the repository is the one the image bakes in: the command is the image's own
    assert "command" not in c and "args" not in c
    assert "COPY model_repository/ /models/" in (ROOT / "Dockerfile").read_text()
    grace = dep["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    exit_timeout = int(re.search(r"--exit-timeout-secs=(\d+)", (ROOT / "Dockerfile").read_text()).group(1))
    assert grace > exit_timeout


def test_service_and_autoscaler_point_at_the_deployment():
    dep, svc, hpa = load("deployment.yaml"), load("service.yaml"), load("hpa.yaml")
    labels = dep["spec"]["template"]["metadata"]["labels"]
    assert dep["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert svc["spec"]["selector"].items() <= labels.items()
    names = {p["name"] for p in _container(dep)["ports"]}
    assert {(p["name"], p["port"]) for p in svc["spec"]["ports"]} == {("http", 8000), ("grpc", 8001), ("metrics", 8002)}
    assert all(p["targetPort"] in names for p in svc["spec"]["ports"])
    ref = hpa["spec"]["scaleTargetRef"]
    assert (ref["kind"], ref["name"], ref["apiVersion"]) == ("Deployment", dep["metadata"]["name"], dep["apiVersion"])
    assert 1 <= hpa["spec"]["minReplicas"] < hpa["spec"]["maxReplicas"]
    kust = load("kustomization.yaml")
    assert sorted(kust["resources"]) == sorted(CORE) and all((DEPLOY / r).is_file() for r in kust["resources"])


def test_kserve_inference_service_structure():
    isvc = load("kserve-inferenceservice.yaml")
    assert (isvc["apiVersion"], isvc["kind"]) == ("serving.kserve.io/v1beta1", "InferenceService")
    assert re.fullmatch(r"[a-z]([-a-z0-9]{0,61}[a-z0-9])?", isvc["metadata"]["name"])
    assert set(isvc["spec"]) == {"predictor"}
    pred = isvc["spec"]["predictor"]
    assert set(pred) <= {"minReplicas", "maxReplicas", "model", "scaleTarget", "scaleMetric"}
    assert 0 <= pred["minReplicas"] <= pred["maxReplicas"]
    model = pred["model"]
    assert set(model) <= {"modelFormat", "runtime", "runtimeVersion", "protocolVersion", "storageUri", "args",
                          "env", "resources"}
    assert model["modelFormat"]["name"] == "triton" and model["runtime"] == "kserve-tritonserver"
    assert model["protocolVersion"] == "v2"
    assert re.match(r"(gs|s3|pvc|https?|hdfs|webhdfs|oci)://\S+", model["storageUri"])
    assert all(isinstance(a, str) and a.startswith("--") for a in model["args"])
    # the runtime version is the Triton release the production image is built on
    assert f"tritonserver:{model['runtimeVersion']}" in (ROOT / "Dockerfile").read_text()
    # ``resources`` is a core ResourceRequirements: validate it with the core schema inside a Pod
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "check"},
           "spec": {"containers": [{"name": "c", "image": "x", "resources": model["resources"]}]}}
    validate(pod)
    assert model["resources"]["limits"]["nvidia.com/gpu"] == "1"
