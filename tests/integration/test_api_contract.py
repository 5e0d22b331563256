"""The analysts' API keeps its OpenAPI contract under generated requests (schemathesis): every
answer is documented, as JSON or CSV, and nothing it is sent makes it fail.

One check is left out, `positive_data_acceptance`: `from` and `to` must be written in the
notation of `period` (2026-03 for months, 2026-Q1 for quarters), a rule across parameters that
OpenAPI cannot state; such a request gets the documented 422 with the reason."""

import asyncio
import shutil
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from shared.tokens import ApiTokens
from tests.integration.pipeline import Pipeline

pytestmark = pytest.mark.integration


async def test_generated_requests_get_documented_answers(
    pipeline: Pipeline, reporting_url: str
) -> None:
    tokens = ApiTokens(pipeline.mongo[f"{pipeline.database_prefix}reporting"])
    token = await tokens.issue("network", "schemathesis", datetime.now(UTC))
    command = shutil.which("schemathesis", path=str(Path(sys.executable).parent))
    assert command, "schemathesis is a dev dependency"
    run = await asyncio.create_subprocess_exec(
        command,
        "run",
        f"{reporting_url}/openapi.json",
        "--header",
        f"Authorization: Bearer {token}",
        "--max-examples",
        "40",
        "--seed",
        "7",
        "--generation-deterministic",
        "--exclude-checks",
        "positive_data_acceptance",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(run.communicate(), timeout=300)
    report = out.decode()
    assert run.returncode == 0, report
