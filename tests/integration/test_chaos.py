"""A short `make chaos`: the stack as deployed, its processes killed and its servers paused
while incidents flow; afterwards nothing is lost and nothing doubled."""

import asyncio
from pathlib import Path

import pytest

from deploy.chaos import CHAOS_TIMING, Findings, run_chaos
from deploy.stack import Ports, Stack

pytestmark = pytest.mark.integration


def chaos_in(workdir: Path) -> Findings:
    stack = Stack(workdir, Ports.free(), settings=CHAOS_TIMING, tied=True)
    stack.start()
    try:
        return run_chaos(stack, count=15, kills=3, seed=3)
    finally:
        stack.stop()


async def test_killed_services_and_paused_servers_lose_and_double_nothing(tmp_path: Path) -> None:
    # In a thread of its own: the tests' event loop (and the pipeline other tests left
    # running on it) goes on meanwhile, rather than waking to every timeout at once.
    findings = await asyncio.to_thread(chaos_in, tmp_path / "chaos")
    print(findings.table())
    kinds = {fault.kind for fault in findings.faults}
    assert {"kill -9", "pause", "kill -9 + start"} <= kinds
    assert any("+" in fault.target for fault in findings.faults), "two services at once"
    assert findings.facts["cases opened"] == findings.facts["cases expected"] > 0
    assert +findings.lost == {}, findings.table()
    assert +findings.doubled == {}, findings.table()
