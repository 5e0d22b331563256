"""A trace's ids reach every log line written inside it, and an event relayed later from the
outbox stays in the trace of the work that put it there."""

from opentelemetry.sdk.trace import ReadableSpan, TracerProvider

from shared.tracing import add_trace_id, current_context, within

TRACER = TracerProvider().get_tracer("tests")


def test_a_line_logged_inside_a_trace_carries_its_ids() -> None:
    with TRACER.start_as_current_span("handling an incident") as span:
        line = add_trace_id(None, "info", {"event": "incident taken in"})
    assert line["trace_id"] == format(span.get_span_context().trace_id, "032x")
    assert add_trace_id(None, "info", {"event": "outside"}) == {"event": "outside"}


def test_work_resumed_from_a_kept_context_joins_its_trace() -> None:
    with TRACER.start_as_current_span("the handler that put the event") as put:
        kept = current_context()
    assert current_context() == {}
    with within(kept), TRACER.start_as_current_span("the relay publishing it") as relayed:
        pass
    assert relayed.get_span_context().trace_id == put.get_span_context().trace_id
    assert isinstance(relayed, ReadableSpan)
    assert relayed.parent is not None
    assert relayed.parent.span_id == put.get_span_context().span_id
