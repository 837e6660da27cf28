"""deploy/k8s: schema-valid for the Kubernetes versions we support (offline, with the schemas
that kubernetes-validate bundles), hardened, and consistent with the services' own settings."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import msgspec
import pytest
import yaml

from tests.deploy.manifests import (
    K8S,
    SETTINGS_BY_MODULE,
    all_k8s_documents,
    env_names,
    k8s_documents,
    k8s_manifest_files,
    k8s_objects,
    option,
    pod_spec,
    served_module,
)

# The oldest minor release still supported upstream when this was written, and the newest the
# bundled schemas know.
KUBERNETES_VERSIONS = ["1.30", kubernetes_validate.latest_version()]
NAMESPACE = "facturation"
ALL_INTERFACES = "0.0.0.0"  # noqa: S104 - what a container must listen on
CONTAINER_TMP = "/tmp"  # noqa: S108 - a path inside the container
DEPLOYMENT_PORTS = {"gateway": 8000, "auth": 8001, "facturation": 8002}
MODULES = {"gateway": "gateway", "auth": "auth_service", "facturation": "facturation_service"}

DOCUMENTS = [(path, doc) for path, doc in all_k8s_documents()]


def _document_id(path: Path, doc: dict[str, Any]) -> str:
    return f"{path.name}:{doc['kind']}/{doc['metadata']['name']}"


def _workloads() -> list[tuple[str, dict[str, Any]]]:
    deployments = [(f"Deployment/{n}", d) for n, d in k8s_objects("Deployment").items()]
    jobs = [(f"Job/{n}", d) for n, d in k8s_objects("Job").items()]
    return deployments + jobs


WORKLOADS = _workloads()


def _containers() -> list[tuple[str, dict[str, Any]]]:
    return [
        (f"{name}/{container['name']}", container)
        for name, workload in WORKLOADS
        for container in pod_spec(workload)["containers"]
    ]


def test_every_kubernetes_object_is_found() -> None:
    kinds = {doc["kind"] for _, doc in DOCUMENTS}
    assert kinds >= {
        "Namespace",
        "ConfigMap",
        "Secret",
        "Deployment",
        "Service",
        "Job",
        "HorizontalPodAutoscaler",
        "NetworkPolicy",
        "PodDisruptionBudget",
        "Ingress",
    }
    assert set(k8s_objects("Deployment")) == set(DEPLOYMENT_PORTS)


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize(
    ("path", "document"), DOCUMENTS, ids=[_document_id(p, d) for p, d in DOCUMENTS]
)
def test_manifest_matches_the_kubernetes_schema_strictly(
    path: Path, document: dict[str, Any], version: str
) -> None:
    # strict: an unknown or misspelt field is an error, not silently ignored by the API server.
    kubernetes_validate.validate(document, version, strict=True)


def test_schema_validation_rejects_a_misspelt_field() -> None:
    deployment = yaml.safe_load((K8S / "gateway.yaml").read_text().split("\n---\n")[0])
    deployment["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = {
        "httpGet": {"path": "/readyz", "port": "http"},
        "periodSecond": 5,
    }
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSIONS[-1], strict=True)


def test_everything_lives_in_the_facturation_namespace() -> None:
    for path, doc in DOCUMENTS:
        if doc["kind"] == "Namespace":
            assert doc["metadata"]["name"] == NAMESPACE
        else:
            assert doc["metadata"]["namespace"] == NAMESPACE, _document_id(path, doc)


def test_kustomization_applies_every_manifest_but_the_secret_templates() -> None:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    listed = set(kustomization["resources"])
    files = {path.name for path in k8s_manifest_files()}
    assert listed == files - {"secrets.example.yaml"}
    assert kustomization["namespace"] == NAMESPACE


def test_kustomization_builds_offline() -> None:
    kubectl = shutil.which("kubectl")
    assert kubectl is not None, "kubectl (from the machine image) builds the kustomization"
    built = subprocess.run(
        [kubectl, "kustomize", str(K8S)], capture_output=True, text=True, timeout=60, check=True
    ).stdout
    documents = [doc for doc in yaml.safe_load_all(built) if doc]
    expected = [
        doc
        for path in k8s_manifest_files()
        if path.name != "secrets.example.yaml"
        for doc in k8s_documents(path)
    ]
    assert len(documents) == len(expected)
    tag = yaml.safe_load((K8S / "kustomization.yaml").read_text())["images"][0]["newTag"]
    for doc in documents:
        if doc["kind"] in ("Deployment", "Job"):
            for container in pod_spec(doc)["containers"]:
                assert container["image"] == f"facturation:{tag}"


@pytest.mark.parametrize(("name", "workload"), WORKLOADS, ids=[n for n, _ in WORKLOADS])
def test_pods_run_non_root_with_the_restricted_profile(name: str, workload: dict[str, Any]) -> None:
    spec = pod_spec(workload)
    security = spec["securityContext"]
    assert security["runAsNonRoot"] is True
    assert security["runAsUser"] == 10001  # the image's USER
    assert security["seccompProfile"] == {"type": "RuntimeDefault"}
    assert spec["automountServiceAccountToken"] is False
    tmp_volumes = {v["name"] for v in spec["volumes"] if "emptyDir" in v}
    for container in spec["containers"]:
        context = container["securityContext"]
        assert context["allowPrivilegeEscalation"] is False
        assert context["readOnlyRootFilesystem"] is True
        assert context["capabilities"] == {"drop": ["ALL"]}
        mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
        assert mounts[CONTAINER_TMP] in tmp_volumes  # the one writable place


@pytest.mark.parametrize(("name", "container"), _containers(), ids=[n for n, _ in _containers()])
def test_containers_declare_requests_and_limits(name: str, container: dict[str, Any]) -> None:
    resources = container["resources"]
    assert set(resources["requests"]) == {"cpu", "memory"}
    assert set(resources["limits"]) == {"cpu", "memory"}


@pytest.mark.parametrize(("name", "port"), DEPLOYMENT_PORTS.items())
def test_deployment_serves_on_all_interfaces_with_probes_on_its_port(name: str, port: int) -> None:
    deployment = k8s_objects("Deployment")[name]
    (container,) = pod_spec(deployment)["containers"]
    command = container["command"]
    assert served_module(command) == MODULES[name]
    assert command[3] == "serve"
    assert option(command, "--host") == ALL_INTERFACES
    assert int(option(command, "--port")) == port
    assert container["ports"] == [{"name": "http", "containerPort": port, "protocol": "TCP"}]
    for probe, path in (
        ("startupProbe", "/healthz"),
        ("livenessProbe", "/healthz"),
        ("readinessProbe", "/readyz"),
    ):
        assert container[probe]["httpGet"] == {"path": path, "port": "http"}, probe
    service = k8s_objects("Service")[name]
    assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]
    assert service["spec"]["ports"] == [
        {"name": "http", "port": port, "targetPort": "http", "protocol": "TCP"}
    ]


def test_services_route_only_to_serving_pods_not_to_migration_jobs() -> None:
    for name, service in k8s_objects("Service").items():
        assert service["spec"]["selector"]["app.kubernetes.io/component"] == "api", name
    for name, job in k8s_objects("Job").items():
        labels = job["spec"]["template"]["metadata"]["labels"]
        assert labels["app.kubernetes.io/component"] == "migrations", name


def test_configmap_urls_point_at_the_services() -> None:
    data = k8s_objects("ConfigMap")["facturation-config"]["data"]
    assert data["AUTH_URL"] == f"http://auth:{DEPLOYMENT_PORTS['auth']}"
    assert data["FACTURATION_URL"] == f"http://facturation:{DEPLOYMENT_PORTS['facturation']}"


def _environment(container: dict[str, Any]) -> set[str]:
    names = {entry["name"] for entry in container.get("env", [])}
    for source in container.get("envFrom", []):
        config_map = k8s_objects("ConfigMap")[source["configMapRef"]["name"]]
        names |= set(config_map["data"])
    return names


@pytest.mark.parametrize(("name", "workload"), WORKLOADS, ids=[n for n, _ in WORKLOADS])
def test_every_variable_a_secret_gives_is_one_the_service_reads(
    name: str, workload: dict[str, Any]
) -> None:
    for container in pod_spec(workload)["containers"]:
        known = env_names(served_module(container["command"]))
        secret_fed = {e["name"] for e in container.get("env", [])}
        assert secret_fed <= known, f"{name}: {sorted(secret_fed - known)}"


def test_configmap_holds_only_settings_some_service_reads() -> None:
    data = k8s_objects("ConfigMap")["facturation-config"]["data"]
    known = set().union(*(env_names(module) for module in MODULES.values()))
    assert set(data) <= known, sorted(set(data) - known)


@pytest.mark.parametrize("name", DEPLOYMENT_PORTS)
def test_deployment_gets_every_required_setting(name: str) -> None:
    (container,) = pod_spec(k8s_objects("Deployment")[name])["containers"]
    settings = SETTINGS_BY_MODULE[MODULES[name]]
    required = {f.encode_name.upper() for f in msgspec.structs.fields(settings) if f.required}
    assert required <= _environment(container), sorted(required - _environment(container))


def test_secret_references_resolve_to_template_keys_with_no_real_secret() -> None:
    secrets = k8s_objects("Secret")
    referenced: set[tuple[str, str]] = set()
    for _, workload in WORKLOADS:
        for container in pod_spec(workload)["containers"]:
            for entry in container.get("env", []):
                ref = entry["valueFrom"]["secretKeyRef"]
                referenced.add((ref["name"], ref["key"]))
    templates = {(name, key) for name, s in secrets.items() for key in s["stringData"]}
    assert referenced == templates
    for name, secret in secrets.items():
        for key, value in secret["stringData"].items():
            assert value == "" or "REPLACE" in value, f"{name}.{key} looks like a real value"


def test_least_privilege_secrets_per_workload() -> None:
    def secret_keys(workload: dict[str, Any]) -> set[str]:
        (container,) = pod_spec(workload)["containers"]
        return {entry["name"] for entry in container.get("env", [])}

    deployments = k8s_objects("Deployment")
    assert secret_keys(deployments["gateway"]) == {"INTERNAL_TOKEN"}
    assert not any(key.startswith("STRIPE_") for key in secret_keys(deployments["auth"]))
    assert not any(key.startswith("JWT_") for key in secret_keys(deployments["facturation"]))
    jobs = k8s_objects("Job")
    assert secret_keys(jobs["auth-migrate"]) == {"AUTH_DATABASE_URL"}
    assert "STRIPE_SECRET_KEY" not in secret_keys(jobs["facturation-migrate"])


def test_migration_jobs_run_each_services_migrate_command() -> None:
    commands = {
        name: pod_spec(job)["containers"][0]["command"] for name, job in k8s_objects("Job").items()
    }
    assert commands == {
        "auth-migrate": ["python", "-m", "auth_service", "migrate"],
        "facturation-migrate": ["python", "-m", "facturation_service", "migrate"],
    }
    for name, job in k8s_objects("Job").items():
        assert pod_spec(job)["restartPolicy"] == "Never", name


def test_autoscalers_own_the_replica_count_of_gateway_and_facturation() -> None:
    autoscalers = k8s_objects("HorizontalPodAutoscaler")
    assert set(autoscalers) == {"gateway", "facturation"}
    deployments = k8s_objects("Deployment")
    for name, hpa in autoscalers.items():
        target = hpa["spec"]["scaleTargetRef"]
        assert (target["kind"], target["name"]) == ("Deployment", name)
        assert hpa["spec"]["minReplicas"] >= 2
        # A fixed count would be re-applied over the autoscaler's on every `kubectl apply`.
        assert "replicas" not in deployments[name]["spec"]
    assert deployments["auth"]["spec"]["replicas"] >= 2


def test_ingress_sends_everything_to_the_gateway() -> None:
    (ingress,) = k8s_objects("Ingress").values()
    backends = [
        path["backend"]["service"]
        for rule in ingress["spec"]["rules"]
        for path in rule["http"]["paths"]
    ]
    assert backends == [{"name": "gateway", "port": {"name": "http"}}]
