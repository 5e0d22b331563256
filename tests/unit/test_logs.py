"""Log lines hold no secret: a signed link logged by uvicorn or httpx is useless to a reader."""

import json
import logging
from collections.abc import Iterator

import pytest
import structlog

from shared.logs import configure_logging

TOKEN = "eyJhIjoiOTQzM2M1YmYtZWUzOS01NzY4In0.aw7Gzw.x-IBmA1WTQg3_OKg0cmmIUQ1M6Y"


@pytest.fixture
def access_log() -> Iterator[logging.Logger]:
    """uvicorn's access logger as a service has it: propagating to the root (a test's own
    uvicorn server may have given it and its parent handlers of their own)."""
    loggers = [logging.getLogger("uvicorn"), logging.getLogger("uvicorn.access")]
    kept = [(logger.level, logger.handlers, logger.propagate) for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.INFO)
        logger.handlers, logger.propagate = [], True
    yield loggers[1]
    for logger, (level, handlers, propagate) in zip(loggers, kept, strict=True):
        logger.level, logger.handlers, logger.propagate = level, handlers, propagate


@pytest.fixture
def lines(
    capsys: pytest.CaptureFixture[str], access_log: logging.Logger
) -> list[dict[str, object]]:
    configure_logging("notify")
    access_log.info(
        '%s - "%s %s HTTP/%s" %d', "10.0.0.7:5123", "GET", f"/respond?t={TOKEN}", "1.1", 200
    )
    logging.getLogger("httpx").info(
        f"HTTP Request: POST http://127.0.0.1:8083/log-contact?t={TOKEN}&x=1"
    )
    structlog.get_logger("reporting").warning(
        "sign-in", header="Bearer ps_AbCdEfGhIjKlMnOpQrStUv", note="token ps_m-2zgPKRFJqhn0uuIHt0"
    )
    structlog.get_logger("reporting").error(
        "store down", url="mongodb://reporting:s3cr3t-P4ss@mongo-0.db:27017/?replicaSet=rs0"
    )
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def test_link_tokens_and_api_tokens_are_redacted(lines: list[dict[str, object]]) -> None:
    text = json.dumps(lines)
    assert TOKEN not in text
    assert "ps_AbCdEfGhIjKlMnOpQrStUv" not in text
    assert "ps_m-2zgPKRFJqhn0uuIHt0" not in text
    assert '/respond?t=[redacted] HTTP/1.1\\" 200' in text
    assert "http://127.0.0.1:8083/log-contact?t=[redacted]&x=1" in text
    assert lines[2]["header"] == "Bearer [redacted]"
    assert lines[3]["url"] == "mongodb://reporting:[redacted]@mongo-0.db:27017/?replicaSet=rs0"
