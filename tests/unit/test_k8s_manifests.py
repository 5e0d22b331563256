"""The Kubernetes manifests are valid objects and run the services as a platform team
expects: probes, resources, a non-root read-only container, a disruption budget each."""

from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from services.intake.settings import IntakeSettings
from services.matching.settings import MatchingSettings
from services.notify.settings import NotifySettings
from services.reporting.settings import ReportingSettings

K8S = Path(__file__).parents[2] / "deploy" / "k8s"
KUBERNETES = "1.33.0"
PORTS = {
    "intake": IntakeSettings.model_fields["http_port"].default,
    "matching": MatchingSettings.model_fields["http_port"].default,
    "notify": NotifySettings.model_fields["http_port"].default,
    "reporting": ReportingSettings.model_fields["http_port"].default,
}


def documents(folder: Path) -> list[dict[str, Any]]:
    listed = yaml.safe_load((folder / "kustomization.yaml").read_text())
    files = [folder / name for name in listed["resources"] if name.endswith(".yaml")]
    return [doc for file in files for doc in yaml.safe_load_all(file.read_text()) if doc]


BASE = documents(K8S / "base")
DEPLOYMENTS = {d["metadata"]["name"]: d for d in BASE if d["kind"] == "Deployment"}


@pytest.mark.parametrize("folder", ["base", "overlays/example"])
def test_every_object_is_valid_for_kubernetes(folder: str) -> None:
    for doc in documents(K8S / folder):
        kubernetes_validate.validate(doc, KUBERNETES, strict=True)


def test_every_file_is_in_its_kustomization() -> None:
    for folder in (K8S / "base", K8S / "overlays/example"):
        listed = yaml.safe_load((folder / "kustomization.yaml").read_text())
        named = set(listed["resources"]) | {p["path"] for p in listed.get("patches", [])}
        on_disk = {p.name for p in folder.glob("*.yaml")} - {"kustomization.yaml"}
        assert on_disk <= named, f"{folder}: {sorted(on_disk - named)} not in kustomization"


@pytest.mark.parametrize("service", sorted(PORTS))
def test_each_service_is_probed_bounded_and_unprivileged(service: str) -> None:
    spec = DEPLOYMENTS[service]["spec"]["template"]["spec"]
    (container,) = spec["containers"]
    assert container["ports"] == [{"name": "http", "containerPort": PORTS[service]}]
    assert container["readinessProbe"]["httpGet"]["path"] == "/health/ready"
    assert container["livenessProbe"]["httpGet"]["path"] == "/health/live"
    assert {"cpu", "memory"} <= set(container["resources"]["requests"])
    assert "memory" in container["resources"]["limits"]
    security = container["securityContext"]
    assert security["runAsNonRoot"] is True
    assert isinstance(security["runAsUser"], int)
    assert security["runAsUser"] > 0
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert spec["automountServiceAccountToken"] is False
    budgets = [d for d in BASE if d["kind"] == "PodDisruptionBudget"]
    selector = DEPLOYMENTS[service]["spec"]["selector"]["matchLabels"]
    assert any(b["spec"]["selector"]["matchLabels"] == selector for b in budgets)


def test_secrets_reach_the_services_as_files_only() -> None:
    for deployment in DEPLOYMENTS.values():
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        names = {e["name"] for e in container["env"]}
        assert "MONGODB_URL_FILE" in names
        assert not {"PSEUDONYM_KEY", "LINK_SECRET", "MONGODB_URL"} & names
    config = next(d for d in BASE if d["kind"] == "ConfigMap")["data"]
    assert not {"PSEUDONYM_KEY", "LINK_SECRET", "MONGODB_URL", "KAFKA_SASL_PASSWORD"} & set(config)


KEYS = {
    "PSEUDONYM_KEY_FILE": {"intake"},
    "EXCLUSION_KEY_FILE": {"intake", "matching"},
    "LINK_SECRET_FILE": {"notify"},
}
"""Which services may read each key: reporting, which analysts reach, reads neither."""


@pytest.mark.parametrize("service", sorted(PORTS))
def test_each_service_mounts_a_secret_of_its_own_with_only_its_keys(service: str) -> None:
    pod = DEPLOYMENTS[service]["spec"]["template"]["spec"]
    (volume,) = [v for v in pod["volumes"] if "secret" in v]
    assert volume["secret"]["secretName"] == f"peer-support-{service}"
    (container,) = pod["containers"]
    names = {e["name"] for e in container["env"]}
    assert {key for key, readers in KEYS.items() if service in readers} == set(KEYS) & names
    assert "METRICS_TOKEN_FILE" in names, "/metrics answers only its bearer off the pod"
    config = next(d for d in BASE if d["kind"] == "ConfigMap")["data"]
    assert "FORWARDED_ALLOW_IPS" not in config, "proxies are the app's to trust: TRUSTED_PROXIES"
