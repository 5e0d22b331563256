"""Each hospital's roster held in memory as columns, so that a decision reads no supporter
from the store.

The store stays the authority. A reservation is still its atomic update of one supporter; a
decision that finds nobody in memory looks at the store before it escalates; and what is held
follows every committed change to a supporter: a matcher's own at once, everyone else's (other
matchers, the coordinator's desk, roster loads) through the store's change stream. While that
stream is not open (at start, after a failure) nothing is held and every decision reads the
store, as it did before.
"""

import asyncio
from collections import Counter
from collections.abc import AsyncGenerator, Iterable
from typing import Any

from prometheus_client import CollectorRegistry, Gauge
from prometheus_client import Counter as Tally
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.errors import PyMongoError

from services.matching.store import Roster
from services.matching.supporters import RosterColumns, Supporter
from shared.metrics import NAMESPACE

READS_WHILE_CHANGING = 3
"""Reads of a hospital's roster that keep changing meanwhile before one is used unheld."""
REOPEN_AFTER = 1.0
"""Seconds before a lost change stream is opened again."""


class Rosters:
    def __init__(
        self,
        roster: Roster,
        carried_kept: int,
        log: Any,
        registry: CollectorRegistry | None = None,
    ) -> None:
        self.roster = roster
        self.carried_kept = carried_kept
        self.log = log
        registry = registry or CollectorRegistry()
        self.open_gauge = Gauge(
            "roster_following",
            "1 while matching holds the roster in memory and follows the store's changes to "
            "it; 0 while every decision reads the store",
            registry=registry,
            namespace=NAMESPACE,
        )
        Gauge(
            "roster_held_supporters",
            "Supporters matching holds in memory, of every hospital decided on since the "
            "change stream opened",
            registry=registry,
            namespace=NAMESPACE,
        ).set_function(lambda: sum(len(columns) for columns in self.held.values()))
        self.followed = Tally(
            "roster_changes_followed",
            "Changes to supporters taken from the store's change stream into memory",
            registry=registry,
            namespace=NAMESPACE,
        )
        self.held: dict[str, RosterColumns] = {}
        self.changes: Counter[str] = Counter()
        """Changes seen per hospital: a read during which one came may have missed it."""
        self.following = False

    async def to_decide(
        self, hospital_id: str, session: AsyncClientSession
    ) -> AsyncGenerator[RosterColumns, None]:
        """The hospital's roster for a decision: the one held, then (for a decision that found
        nobody there) the store's, read in the decision's own transaction."""
        held = self.held.get(hospital_id)
        if held is not None:
            yield held
        yield await self.read(hospital_id, session)

    async def read(
        self, hospital_id: str, session: AsyncClientSession | None = None
    ) -> RosterColumns:
        """From the store; held from now on if no change to the hospital came during the read.

        A decision passes its session and reads the roster as its transaction sees it (what
        it reserved already, which `Matcher._run_all` reads again once the transaction ends,
        committed or not). Read beside the transaction, decisions on the local store
        (SecantusDB) under load found nobody: cases escalated with no supporter refused and
        were assigned a second later, and `make demo` never settled. What in the store does
        that was not found; this is inferred from the demo."""
        for _ in range(READS_WHILE_CHANGING):
            seen, following = self.changes[hospital_id], self.following
            supporters = await self.roster.available_in(hospital_id, session)
            columns = RosterColumns(supporters, self.carried_kept)
            if self.changes[hospital_id] == seen:
                if following and self.following:
                    self.held[hospital_id] = columns
                break
        return columns

    async def refresh(self, supporter_ids: Iterable[str]) -> None:
        """A matcher's own changes, once committed: held before its next decision."""
        if ids := set(supporter_ids):
            for supporter in await self.roster.some(ids):
                self.put(supporter)

    def put(self, supporter: Supporter) -> None:
        hospital_id = supporter.hospital_id
        self.changes[hospital_id] += 1
        held = self.held.get(hospital_id)
        if held is not None and not (supporter.active and held.put(supporter)):
            # Someone joined or left the roster: read again when next needed.
            del self.held[hospital_id]

    async def follow(self) -> None:
        """For the service's life: every committed change to a supporter, as it comes."""
        while True:
            try:
                async with self.roster.changes() as changes:
                    self.following = True
                    self.open_gauge.set(1)
                    self.log.info("roster held in memory, following its changes")
                    async for supporter in changes:
                        if supporter is None:
                            self.held.clear()
                        else:
                            self.put(supporter)
                        self.followed.inc()
            except PyMongoError as lost:
                self.log.warning("roster change stream lost; reading the store", error=str(lost))
            except Exception:
                self.log.exception("roster change not understood; reading the store")
            finally:
                self.following = False
                self.open_gauge.set(0)
                self.held.clear()
            await asyncio.sleep(REOPEN_AFTER)
