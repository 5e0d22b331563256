"""Reporting rebuilt from the retained topics equals what it built as events arrived."""

import asyncio
import uuid
from datetime import timedelta

import pytest

from services.reporting.aggregates import DIMENSIONS, Replay
from services.reporting.rebuild import rebuild
from services.reporting.store import CellStore
from tests.factories import NOW, incident_json, opened_cases, participant
from tests.integration.pipeline import Pipeline
from tests.integration.test_pipeline import report_and_wait, roster

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("held_cells", [20_000, 1], ids=["written-at-the-end", "written-often"])
async def test_a_rebuild_from_the_topics_equals_the_live_aggregates(
    pipeline: Pipeline, held_cells: int
) -> None:
    await pipeline.load_roster(roster("RB"))
    people = [participant(f"E6{n}", department="ED") for n in range(3)]
    event = incident_json("INC-RB", people, hospital_id="RB")
    hospital = await report_and_wait(pipeline, event, 3)
    opened = pipeline.log.at(pipeline.topics.case_counts, hospital)[0]
    topic = pipeline.topics.case_counts
    await pipeline.send_raw(opened.value or b"", opened.key or b"", topic=topic)
    await pipeline.idle()

    database = pipeline.mongo[f"{pipeline.database_prefix}rebuilt_{uuid.uuid4().hex[:6]}"]
    store = CellStore(database, timedelta(days=35), DIMENSIONS)
    rebuilt = await rebuild(
        pipeline.bootstrap_servers,
        pipeline.topics.counted(),
        store,
        batch=50,
        held_cells=held_cells,
    )

    again = {cell["_id"]: cell async for cell in database["cells"].find()}
    # Live counting of other tests' last events may still be under way: it catches up.
    for _ in range(100):
        live = {cell["_id"]: cell for cell in await pipeline.cells()}
        if live == again:
            break
        await asyncio.sleep(0.3)
    assert again == live
    assert any(key.endswith("|RB|nurse|ED|severe") for key in again)
    assert 0 < rebuilt.counted < rebuilt.events  # every event read, the repeat counted once
    assert rebuilt.malformed == 0


async def test_a_rebuild_adds_to_the_cells_and_months_it_wrote_before(pipeline: Pipeline) -> None:
    first, second = (
        [o.counted() for o in opened_cases(incident_json(f"INC-FILL-{n}", [participant(f"F{n}")]))]
        for n in (1, 2)
    )
    store = CellStore(
        pipeline.mongo[f"{pipeline.database_prefix}filled_{uuid.uuid4().hex[:6]}"],
        timedelta(days=35),
        DIMENSIONS,
    )
    replay = Replay(DIMENSIONS)
    replay.count(first)
    await store.fill(replay, NOW)
    replay.count([*second, *first])
    await store.fill(replay, NOW)

    (cell,) = await store.rows()
    assert cell.counts["cases_opened"] == 2
    units = await store.release_candidates(min_cases=1)
    assert [unit.waiting_cases for unit in units] == [2]
    assert await store.ledger.count_documents({}) == 2
