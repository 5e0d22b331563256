"""The AsyncAPI documents in docs/asyncapi/ are what the code declares: `make docs` rewrites
them, and this fails until it has been run after a contract changed."""

from typing import Any

import pytest

from deploy.docs import DOCS, documents, rendered
from shared.settings import Topics

TOPICS = Topics()
SERVICES = ["intake", "matching", "notify", "reporting"]


@pytest.fixture(scope="module")
def generated() -> dict[str, dict[str, Any]]:
    return documents()


@pytest.mark.parametrize("service", SERVICES)
def test_the_committed_document_is_current(
    generated: dict[str, dict[str, Any]], service: str
) -> None:
    committed = (DOCS / f"{service}.json").read_text()
    assert committed == rendered(generated[service]), "run `make docs` and commit docs/asyncapi/"


@pytest.mark.parametrize(
    ("service", "publishes"),
    [
        ("intake", {TOPICS.cases, TOPICS.case_counts, TOPICS.contacts, TOPICS.staff}),
        ("matching", {TOPICS.assignments, TOPICS.roster, TOPICS.step_counts}),
        (
            "notify",
            {TOPICS.notifications, TOPICS.responses, TOPICS.contact_keys, TOPICS.step_counts},
        ),
        ("reporting", set()),
    ],
)
def test_each_service_declares_what_it_publishes_with_its_events(
    generated: dict[str, dict[str, Any]], service: str, publishes: set[str]
) -> None:
    doc = generated[service]
    assert doc["info"]["title"] == f"peer-support {service}"
    published = {
        channel["address"] for name, channel in doc["channels"].items() if name.endswith(":Publish")
    }
    assert published == publishes
    schemas = doc["components"]["schemas"]
    if service == "matching":
        assert {"PeerAssigned", "CaseEscalated", "SupportEnded"} <= set(schemas)
