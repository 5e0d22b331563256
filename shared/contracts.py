"""Each service's AsyncAPI document, from the code: what it consumes (its subscribers) and
what it publishes (declared here with the schemas of `shared/events.py`, since the outbox
publishes by topic name). `make docs` writes them to `docs/asyncapi/`; each service serves
its own at `/asyncapi.json`."""

from collections.abc import Sequence
from typing import Any

from faststream.kafka import KafkaBroker
from faststream.specification import AsyncAPI
from faststream.specification.base import SpecificationFactory

VERSION = "1"
"""The contracts' version: every event is `schema_version` 1 and grows only compatibly."""

Publishes = Sequence[tuple[str, Any, str]]
"""(topic, the schema of what goes on it, what it is for)."""


def specification(service: str, broker: KafkaBroker, publishes: Publishes) -> AsyncAPI:
    for topic, schema, description in publishes:
        broker.publisher(topic, schema=schema, title=f"{topic}:Publish", description=description)
    return AsyncAPI(
        broker,
        title=f"peer-support {service}",
        version=VERSION,
        description=f"The events peer-support's {service} service consumes and publishes.",
    )


def document(spec: SpecificationFactory) -> dict[str, Any]:
    jsonable: dict[str, Any] = spec.to_specification().to_jsonable()
    return jsonable
