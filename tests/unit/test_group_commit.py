"""Group commit across concurrent callers: what notify's messages, sent at once, settle
through. Fewer transactions under load, and each caller's failure its own."""

import asyncio
from collections.abc import Sequence
from datetime import datetime

import pytest
from pymongo.asynchronous.client_session import AsyncClientSession

from shared.errors import RejectedEvent
from shared.mongo import Announcements, Document, GroupCommit, Step, UnitOfWork, Work
from shared.settings import Topics
from tests.factories import NOW, opened_cases


class Transactions(UnitOfWork):
    """All of a group's steps, or none of them; the first transaction held until `go`, the
    second until `then`."""

    def __init__(self) -> None:
        self.groups: list[int] = []
        self.committed: list[str] = []
        self.go, self.then = asyncio.Event(), asyncio.Event()
        self.then.set()
        self.second = asyncio.Event()
        """Set once the second transaction has begun."""
        self.topics = Topics()

    async def run_steps(
        self, steps: Sequence[Step], *, holding: object = None
    ) -> list[list[Document]]:
        self.groups.append(len(steps))
        if len(self.groups) == 2:
            self.second.set()
        await (self.go if len(self.groups) == 1 else self.then).wait()
        announced = [await step.work(None, NOW) for step in steps]  # type: ignore[arg-type]
        entries = [[{"_id": str(event.event_id)} for _, event in a] for a in announced]
        self.committed += [entry["_id"] for step_entries in entries for entry in step_entries]
        return entries


CASES = opened_cases()


def announcing(index: int, refused: bool = False) -> Work:
    async def work(session: AsyncClientSession, now: datetime) -> Announcements:
        if refused:
            raise RejectedEvent("refused")
        return [("topic", CASES[index])]

    return work


async def test_steps_that_come_while_a_commit_is_under_way_commit_together() -> None:
    transactions = Transactions()
    commits = GroupCommit(transactions)
    first = asyncio.ensure_future(commits.run(announcing(0)))
    await asyncio.sleep(0)  # the first is committing
    later = [asyncio.ensure_future(commits.run(announcing(1))) for _ in range(3)]
    await asyncio.sleep(0)
    transactions.go.set()
    results = await asyncio.gather(first, *later)
    assert transactions.groups == [1, 3], "one transaction for the three that waited"
    assert [[doc["_id"] for doc in r] for r in results] == [
        [str(CASES[0].event_id)],
        *[[str(CASES[1].event_id)]] * 3,
    ], "each caller gets its own step's entries"


async def test_a_refused_step_fails_its_own_caller_and_the_rest_of_its_group_commits() -> None:
    transactions = Transactions()
    commits = GroupCommit(transactions)
    first = asyncio.ensure_future(commits.run(announcing(0)))
    await asyncio.sleep(0)
    refused = asyncio.ensure_future(commits.run(announcing(1, refused=True)))
    kept = asyncio.ensure_future(commits.run(announcing(1)))
    await asyncio.sleep(0)
    transactions.go.set()
    await first
    with pytest.raises(RejectedEvent):
        await refused
    assert [doc["_id"] for doc in await kept] == [str(CASES[1].event_id)]
    assert transactions.committed == [str(CASES[0].event_id), str(CASES[1].event_id)]


async def test_a_caller_cancelled_while_its_group_commits_leaves_the_others_committed() -> None:
    transactions = Transactions()
    transactions.then.clear()
    commits = GroupCommit(transactions)
    first = asyncio.ensure_future(commits.run(announcing(0)))
    await asyncio.sleep(0)
    committing = asyncio.ensure_future(commits.run(announcing(1)))
    others = [asyncio.ensure_future(commits.run(announcing(1))) for _ in range(2)]
    await asyncio.sleep(0)
    transactions.go.set()
    await first
    await asyncio.wait_for(transactions.second.wait(), timeout=10)
    assert transactions.groups == [1, 3], "the second transaction commits for all three"
    committing.cancel()
    transactions.then.set()
    results = await asyncio.wait_for(asyncio.gather(*others), timeout=10)
    assert [[doc["_id"] for doc in r] for r in results] == [[str(CASES[1].event_id)]] * 2
