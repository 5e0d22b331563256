"""Every contract bounds what it accepts, so no event can carry a value a service cannot store."""

from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import BaseModel, TypeAdapter, ValidationError

from shared import events
from shared.events import IncidentEvent, StaffMessage
from tests.factories import incident_json, outreach_choice_json

CONTRACTS = [
    model
    for model in vars(events).values()
    if isinstance(model, type)
    and issubclass(model, BaseModel)
    and model not in (BaseModel, events.Contract)
]


def unbounded(schema: dict[str, Any], defs: dict[str, Any], path: str) -> Iterator[str]:
    """Paths of strings, numbers, lists and maps in a JSON schema that have no upper bound."""
    if "$ref" in schema:
        return
    for key in ("anyOf", "oneOf", "allOf"):
        for i, option in enumerate(schema.get(key, ())):
            yield from unbounded(option, defs, f"{path}|{i}")
    kind = schema.get("type")
    if kind == "string" and not {"enum", "const", "pattern", "maxLength", "format"} & set(schema):
        yield path
    if kind in ("integer", "number") and not {"maximum", "exclusiveMaximum", "enum", "const"} & set(
        schema
    ):
        yield path
    if kind == "array":
        if "maxItems" not in schema:
            yield path
        yield from unbounded(schema.get("items", {}), defs, f"{path}[]")
    if kind == "object":
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict):
            if "maxProperties" not in schema:
                yield path
            yield from unbounded(extra, defs, f"{path}{{}}")
        for name, field in schema.get("properties", {}).items():
            yield from unbounded(field, defs, f"{path}.{name}")


@pytest.mark.parametrize("model", CONTRACTS, ids=lambda m: m.__name__)
def test_every_field_of_every_contract_is_bounded(model: type[BaseModel]) -> None:
    schema = model.model_json_schema()
    defs = schema.get("$defs", {})
    found = [*unbounded(schema, defs, model.__name__)]
    for name, definition in defs.items():
        found += unbounded(definition, defs, name)
    assert found == []


def test_the_check_finds_what_is_unbounded() -> None:
    class Loose(BaseModel):
        name: str
        count: int
        tags: list[str]
        terms: dict[str, int]

    schema = Loose.model_json_schema()
    assert sorted(unbounded(schema, {}, "Loose")) == [
        "Loose.count",
        "Loose.name",
        "Loose.tags",
        "Loose.tags[]",
        "Loose.terms",
        "Loose.terms{}",
    ]


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({"revision": 2**70}, "Input should be less than or equal to"),
        ({"occurred_at": "9999-12-31T23:30:00-01:00"}, "cannot be expressed in UTC"),
        ({"occurred_at": "1800-01-01T00:00:00+00:00"}, "year 1800 is outside"),
        ({"reported_at": "2999-01-01T00:00:00+00:00"}, "year 2999 is outside"),
    ],
)
def test_a_value_no_store_could_keep_is_a_contract_violation(
    changes: dict[str, Any], problem: str
) -> None:
    with pytest.raises(ValidationError, match=problem):
        TypeAdapter(IncidentEvent).validate_python(incident_json(**changes))


def test_an_outreach_choice_dated_beyond_utc_is_refused() -> None:
    choice = outreach_choice_json("E1", "declined", occurred_at="9999-12-31T23:30:00-01:00")
    with pytest.raises(ValidationError, match="cannot be expressed in UTC"):
        TypeAdapter(StaffMessage).validate_python(choice)
