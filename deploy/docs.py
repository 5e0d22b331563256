"""`make docs`: each service's AsyncAPI document, as the code declares it, into docs/asyncapi/."""

import json
import secrets
from pathlib import Path
from typing import Any

from faststream.asgi import AsgiFastStream

from services.intake.app import create_app as intake_app
from services.intake.settings import IntakeSettings
from services.matching.app import create_app as matching_app
from services.matching.settings import MatchingSettings
from services.notify.app import create_app as notify_app
from services.notify.settings import NotifySettings
from services.reporting.app import create_app as reporting_app
from services.reporting.settings import ReportingSettings
from shared.contracts import document

DOCS = Path(__file__).parents[1] / "docs" / "asyncapi"
BROKER = "kafka:9092"
"""The server the documents name: the compose and Kubernetes address."""


def documents() -> dict[str, dict[str, Any]]:
    """Each service's document, built from its app as it would run."""
    secret = secrets.token_urlsafe(32)  # the documents hold no secret; the apps need one
    apps: dict[str, Any] = {
        "intake": intake_app(IntakeSettings(kafka_bootstrap_servers=BROKER, pseudonym_key=secret)),
        "matching": matching_app(MatchingSettings(kafka_bootstrap_servers=BROKER)),
        "notify": notify_app(NotifySettings(kafka_bootstrap_servers=BROKER, link_secret=secret)),
        "reporting": reporting_app(ReportingSettings(kafka_bootstrap_servers=BROKER)),
    }
    return {
        service: document(
            app.schema if isinstance(app, AsgiFastStream) else app.state.specification
        )
        for service, app in apps.items()
    }


def rendered(doc: dict[str, Any]) -> str:
    return json.dumps(doc, indent=2, sort_keys=True) + "\n"


def main() -> None:
    DOCS.mkdir(parents=True, exist_ok=True)
    for service, doc in documents().items():
        (DOCS / f"{service}.json").write_text(rendered(doc))
        print(f"wrote {DOCS / f'{service}.json'}")


if __name__ == "__main__":
    main()
