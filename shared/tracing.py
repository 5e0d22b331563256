"""Traces from incident to notified: FastStream's telemetry middleware opens a span for each
message consumed and published and carries its context in the message headers; the outbox
keeps the context of the work that put an event, so a relayed event stays in its trace.

Spans are exported over OTLP where the standard `OTEL_EXPORTER_OTLP_ENDPOINT` (or
`..._TRACES_ENDPOINT`) is set; without it they still give every log line its trace id.
"""

import contextlib
import os
from collections.abc import Iterator, Mapping

import structlog
from opentelemetry import context, propagate, trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

_provider: TracerProvider | None = None


def tracer_provider(service: str) -> TracerProvider:
    """The process's provider, made once (the tests run four services in one process)."""
    global _provider
    if _provider is None:
        _provider = TracerProvider(resource=Resource.create({"service.name": service}))
        if os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or os.environ.get(
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
        ):
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            _provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    return _provider


def current_context() -> dict[str, str]:
    """The trace context now, as headers carry it (empty outside a trace)."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier


@contextlib.contextmanager
def within(carrier: Mapping[str, str] | None) -> Iterator[None]:
    """Run as part of the trace `carrier` names, if any."""
    if not carrier:
        yield
        return
    token = context.attach(propagate.extract(dict(carrier)))
    try:
        yield
    finally:
        context.detach(token)


def add_trace_id(
    logger: object, method: str, event: structlog.types.EventDict
) -> structlog.types.EventDict:
    """Every line logged inside a trace carries its ids."""
    span = trace.get_current_span().get_span_context()
    if span.is_valid:
        event.setdefault("trace_id", format(span.trace_id, "032x"))
        event.setdefault("span_id", format(span.span_id, "016x"))
    return event
