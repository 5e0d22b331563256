"""One trace from a hospital's incident to the supporter's mail, across intake, matching and
notify."""

import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from shared.tracing import tracer_provider
from tests.factories import incident_json, participant
from tests.integration.pipeline import Pipeline
from tests.integration.test_pipeline import report_and_wait, roster

pytestmark = pytest.mark.integration


def topic_of(span: ReadableSpan) -> str:
    """FastStream names the topic of a consumed message and of a published one apart."""
    attributes = span.attributes or {}
    return str(
        attributes.get("messaging.destination_publish.name")
        or attributes.get("messaging.destination.name", "")
    )


async def test_an_incident_is_one_trace_from_intake_to_the_offer_mailed(
    pipeline: Pipeline,
) -> None:
    exporter = InMemorySpanExporter()
    tracer_provider("tests").add_span_processor(SimpleSpanProcessor(exporter))
    await pipeline.load_roster(roster("TR"))
    event = incident_json("INC-TRACE", [participant("E61001")], hospital_id="TR")
    await report_and_wait(pipeline, event, 1)

    topics = pipeline.topics
    spans = exporter.get_finished_spans()
    (trace_id,) = {
        s.context.trace_id
        for s in spans
        if topic_of(s) == topics.incidents_reported
        and (s.attributes or {}).get("messaging.kafka.message.key") == b"TR:INC-TRACE"
    }
    traced = {topic_of(s) for s in spans if s.context.trace_id == trace_id}
    assert {topics.incidents_reported, topics.cases, topics.assignments} <= traced, traced
    assert topics.notifications in traced, "notify's announcement is in the same trace"
