"""Log lines hold no secret: a signed link logged by uvicorn or httpx is useless to a reader."""

import json
import logging

import pytest
import structlog

from shared.logs import configure_logging

TOKEN = "eyJhIjoiOTQzM2M1YmYtZWUzOS01NzY4In0.aw7Gzw.x-IBmA1WTQg3_OKg0cmmIUQ1M6Y"


@pytest.fixture
def lines(capsys: pytest.CaptureFixture[str]) -> list[dict[str, object]]:
    configure_logging("notify")
    logging.getLogger("uvicorn.access").info(
        '%s - "%s %s HTTP/%s" %d', "10.0.0.7:5123", "GET", f"/respond?t={TOKEN}", "1.1", 200
    )
    logging.getLogger("httpx").info(f"HTTP Request: POST http://notify/log-contact?t={TOKEN}&x=1")
    structlog.get_logger("reporting").warning(
        "sign-in", header="Bearer ps_AbCdEfGhIjKlMnOpQrStUv", note="token ps_m-2zgPKRFJqhn0uuIHt0"
    )
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def test_link_tokens_and_api_tokens_are_redacted(lines: list[dict[str, object]]) -> None:
    text = json.dumps(lines)
    assert TOKEN not in text
    assert "ps_AbCdEfGhIjKlMnOpQrStUv" not in text
    assert "ps_m-2zgPKRFJqhn0uuIHt0" not in text
    assert '/respond?t=[redacted] HTTP/1.1\\" 200' in text
    assert "log-contact?t=[redacted]&x=1" in text
    assert lines[2]["header"] == "Bearer [redacted]"
