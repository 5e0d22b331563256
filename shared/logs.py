"""JSON-line logs for every service, FastStream's, aiokafka's and uvicorn's included."""

import logging
import re
import sys

import structlog

from shared.tracing import add_trace_id


def configure_logging(service: str, level: str = "INFO") -> None:
    """Route structlog and the standard library through one JSON renderer on stdout.

    Context bound with `structlog.contextvars` (the correlation id of the message being
    handled) appears on every line logged while it is bound, whichever library logs it.
    """

    def add_service(
        logger: object, method: str, event: structlog.types.EventDict
    ) -> structlog.types.EventDict:
        event.setdefault("service", service)
        return event

    shared_processors: list[structlog.types.Processor] = [
        add_service,
        structlog.contextvars.merge_contextvars,
        add_trace_id,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.stdlib.ExtraAdder(),
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        processors=[
            *shared_processors,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared_processors,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            _drop_colour,
            structlog.processors.format_exc_info,
            redact_secrets,
            structlog.processors.JSONRenderer(),
        ],
    )
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level.upper())
    # FastStream gives its own logger a coloured stderr handler; send it through ours instead.
    faststream_logger = logging.getLogger("faststream")
    faststream_logger.handlers = []
    faststream_logger.propagate = True
    # aiokafka logs every rebalance and lost heartbeat at INFO/WARNING; keep those, drop debug.
    logging.getLogger("aiokafka").setLevel(max(logging.INFO, root.level))


def _drop_colour(
    logger: object, method: str, event: structlog.types.EventDict
) -> structlog.types.EventDict:
    """uvicorn adds a coloured copy of its message for terminals; JSON lines need none."""
    event.pop("color_message", None)
    return event


SECRETS = re.compile(
    r"(?P<keep>[?&](?:t|token)=|Bearer\s+|\"token\":\s*\")[^&\s\"']+"
    r"|(?P<user>://[^:/@\s]+:)[^@\s/]+(?=@)"
    r"|\bps_[A-Za-z0-9_-]{16,}"
)
"""Signed links' `t=` (valid for weeks), bearer and API tokens, the password in a URL such as
`MONGODB_URL`, wherever a line carries them: uvicorn's access log, httpx's request log, an
exception's message."""


def redact(text: str) -> str:
    return SECRETS.sub(lambda m: f"{m.group('keep') or m.group('user') or ''}[redacted]", text)


def redact_secrets(
    logger: object, method: str, event: structlog.types.EventDict
) -> structlog.types.EventDict:
    """No secret reaches a log line, whoever logged it."""
    return {k: redact(v) if isinstance(v, str) else v for k, v in event.items()}
