"""The operator's alert rules and dashboard watch metrics the services really export."""

import json
import re
import tomllib
from datetime import timedelta
from pathlib import Path

import structlog
import yaml
from pymongo import AsyncMongoClient

from services.matching.rosters import Rosters
from services.matching.store import Roster
from services.notify.notifier import OutreachMetrics
from services.reporting.releaser import Releaser
from services.reporting.store import CellStore
from shared.gate import refusals_of
from shared.kafka import create_broker
from shared.lag import LagWatch
from shared.metrics import service_registry
from shared.mongo import Document, Outbox
from shared.settings import AccessSettings, ServiceSettings

DEPLOY = Path(__file__).parents[2] / "deploy"
METRIC = re.compile(r"\bpeer_support_[a-z_]+")


def exported() -> set[str]:
    """Every metric name the services register, as Prometheus scrapes it."""
    registry = service_registry()
    broker, _ = create_broker(ServiceSettings(), "notify", registry)
    client: AsyncMongoClient[Document] = AsyncMongoClient("mongodb://127.0.0.1:1", connect=False)
    Outbox(client["unused"], broker, registry)
    LagWatch("127.0.0.1:1", [], registry)
    OutreachMetrics(registry)
    cells = CellStore(client["unused"], timedelta(days=1), ["hospital_id"])
    Releaser(cells, timedelta(days=7), 5, structlog.get_logger(), registry)
    refusals_of(client["unused"], registry, structlog.get_logger(), AccessSettings())
    Rosters(Roster(client["unused"]), 6, structlog.get_logger(), registry)
    names = set()
    for family in registry.collect():
        names |= {family.name, *(sample.name for sample in family.samples)}
        if family.type in ("counter", "histogram"):
            names |= {f"{family.name}_total", f"{family.name}_bucket", f"{family.name}_count"}
    return names


def test_every_alert_says_what_to_do_and_watches_a_real_metric() -> None:
    rules = [r for g in yaml.safe_load((DEPLOY / "prometheus/alerts.yml").read_text())["groups"]
             for r in g["rules"]]  # fmt: skip
    assert len(rules) >= 6
    names = exported()
    for rule in rules:
        assert rule["annotations"]["summary"], rule["alert"]
        assert rule["annotations"]["action"], rule["alert"]
        for metric in METRIC.findall(rule["expr"]):
            assert metric in names, f"{rule['alert']} watches {metric}, which nothing exports"


def test_every_dashboard_panel_plots_a_real_metric() -> None:
    dashboard = json.loads((DEPLOY / "grafana/peer-support.json").read_text())
    expressions = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    assert len(expressions) >= 6
    names = exported()
    for expression in expressions:
        assert METRIC.findall(expression), expression
        for metric in METRIC.findall(expression):
            assert metric in names, f"the dashboard plots {metric}, which nothing exports"


def test_the_image_builds_dependencies_first_and_runs_as_a_numeric_user() -> None:
    lines = [line.strip() for line in (DEPLOY / "Dockerfile").read_text().splitlines()]
    steps = [line for line in lines if line and not line.startswith("#")]
    assert sum(step.startswith("FROM ") for step in steps) >= 2, "a build stage of its own"
    wheels = next(i for i, s in enumerate(steps) if s.startswith("RUN pip install --no-index"))
    sources = next(i for i, s in enumerate(steps) if s.startswith("COPY services"))
    assert wheels < sources, "a source change must not reinstall the dependencies"
    (user,) = [step for step in steps if step.startswith("USER ")]
    assert re.fullmatch(r"USER \d+:\d+", user)
    assert any(step.startswith("HEALTHCHECK ") for step in steps)


def _pins(lock: Path) -> dict[str, str]:
    text = lock.read_text()
    assert "--hash=sha256:" in text
    pins = dict(re.findall(r"^([A-Za-z0-9_.-]+)==(\S+) \\$", text, re.MULTILINE))
    unhashed = re.findall(r"^[A-Za-z0-9_.-]+==\S+$", text, re.MULTILINE)
    assert not unhashed, f"pinned without a hash: {unhashed}"
    return {name.lower().replace("_", "-"): version for name, version in pins.items()}


def test_the_lock_files_pin_what_pyproject_asks_for_with_hashes() -> None:
    root = DEPLOY.parent
    project = tomllib.loads((root / "pyproject.toml").read_text())["project"]
    runtime, everything = _pins(root / "requirements.lock"), _pins(root / "requirements-dev.lock")
    extras = [r for group in project["optional-dependencies"].values() for r in group]
    asked = [(runtime, project["dependencies"]), (everything, [*project["dependencies"], *extras])]
    for lock, requirements in asked:
        for requirement in requirements:
            name, version = re.split(r"(?:\[[^\]]*\])?==", requirement)
            pinned = lock.get(name.lower().replace("_", "-"))
            assert pinned == version, f"run `make lock`: {requirement}"
    assert {n: v for n, v in everything.items() if n in runtime} == runtime, "one version of each"
