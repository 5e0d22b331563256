"""matching on real servers: re-matching, deadlines, escalation, and no overbooking with
several matchers at once. Cases and answers are published as intake and notify publish them."""

import asyncio
import contextlib
import json
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import httpx
import pytest

from services.matching.app import create_app
from services.matching.roster import RosterEntry
from services.matching.settings import MatchingSettings
from services.matching.store import Roster
from shared.events import (
    AssignmentAccepted,
    AssignmentDeclined,
    CaseProfile,
    SupportCaseClosed,
    SupportCaseOpened,
    SupportCaseUpdated,
)
from shared.mongo import Document
from shared.pseudonyms import pseudonymise, tagged
from tests.factories import KEYS, PSEUDONYM_KEY, incident_json, opened_cases, participant
from tests.integration.pipeline import load_roster
from tests.integration.rig import Rig, Servers, isolated, running, until, until_true

pytestmark = pytest.mark.integration

URGENT_SECONDS = 4.0


@dataclass
class MatchingRig(Rig):
    """Matching instances in one consumer group, fed directly, watched on their output."""

    apps: Sequence[Any] = ()

    async def metric(self, name: str) -> float:
        """A figure of the first instance, as its operator's Prometheus reads it."""
        transport = httpx.ASGITransport(app=self.apps[0])
        async with httpx.AsyncClient(
            transport=transport, base_url="http://matching", follow_redirects=True
        ) as client:
            text = (await client.get("/metrics")).text
        (line,) = [line for line in text.splitlines() if line.startswith(f"peer_support_{name} ")]
        return float(line.split()[1])

    async def roster(self, *entries: RosterEntry) -> None:
        matching = self.mongo[self.database("matching")]
        await load_roster(self.producer, self.topics, matching, list(entries))

    async def open(self, *cases: SupportCaseOpened) -> None:
        for case in cases:
            await self.publish(self.topics.cases, case)

    async def answer(self, offer: dict[str, Any], accepted: bool) -> None:
        kind = AssignmentAccepted if accepted else AssignmentDeclined
        answer = kind(
            event_id=uuid.uuid4(),
            occurred_at=datetime.now(UTC),
            producer="notify",
            correlation_id=offer["correlation_id"],
            causation_id=offer["event_id"],
            hospital_id=offer["hospital_id"],
            assignment_id=offer["assignment_id"],
            case_id=offer["case_id"],
            profile=CaseProfile.model_validate(offer["profile"]),
        )
        await self.publish(self.topics.responses, answer)

    def news(self, case: SupportCaseOpened) -> list[dict[str, Any]]:
        """What matching announced about the case, each event once: delivery is at least
        once, and a relayed repeat carries the same event id."""
        events = {
            e["event_id"]: e
            for e in self.log.events(self.topics.assignments, case.correlation_id)
            if e["case_id"] == str(case.case_id)
        }
        return list(events.values())

    def of(self, case: SupportCaseOpened, event_type: str) -> list[dict[str, Any]]:
        return [e for e in self.news(case) if e["event_type"] == f"support.{event_type}"]

    async def until(
        self, case: SupportCaseOpened, event_type: str, count: int = 1
    ) -> dict[str, Any]:
        """The `count`-th event of that type about the case, once it is there."""
        await until(
            lambda: len(self.of(case, event_type)) >= count,
            what=f"{event_type} #{count} for {case.case_id}: {self.news(case)}",
        )
        return self.of(case, event_type)[count - 1]

    async def case_doc(self, case: SupportCaseOpened) -> Document:
        doc = await self.mongo[self.database("matching")]["cases"].find_one(
            {"_id": str(case.case_id)}
        )
        assert doc is not None
        return doc


@contextlib.asynccontextmanager
async def matching_rig(
    servers: Servers, instances: int = 1, **settings: Any
) -> AsyncIterator[MatchingRig]:
    isolation = await isolated(servers, "match")
    common = MatchingSettings(
        **isolation.settings(),
        retry_backoff_max_seconds=1.0,
        scan_seconds=0.5,
        urgent_response_seconds=URGENT_SECONDS,
        response_seconds=3600,
        answer_grace_seconds=1.0,
        **settings,
    )
    apps = [create_app(common) for _ in range(instances)]
    async with running(isolation, apps, [isolation.topics.assignments]) as base:
        yield MatchingRig(base.isolation, base.producer, base.mongo, base.log, apps)


@pytest.fixture(scope="module")
async def matching(servers: Servers) -> AsyncIterator[MatchingRig]:
    async with matching_rig(servers, max_attempts=3) as ready:
        yield ready


def peer(hospital: str, name: str, **changes: Any) -> RosterEntry:
    fields: dict[str, Any] = {
        "supporter_id": f"{hospital}-{name}",
        "hospital_id": hospital,
        "staff_id": f"S-{name}",
        "display_name": f"Supporter {name}",
        "email": f"{name.lower()}@{hospital.lower()}.example",
        "function": "nurse",
        "department": "Cardiology",
        "languages": ["nl", "en"],
        "trained_on": date(2025, 1, 15),
        "max_open_cases": 3,
    }
    return RosterEntry(**(fields | changes))


def case_in(hospital: str, staff_id: str = "E12345", **changes: Any) -> SupportCaseOpened:
    """The case of an ICU nurse (mild harm unless changed) in an incident of their own."""
    event = incident_json(
        f"INC-{uuid.uuid4().hex[:6]}",
        [participant(staff_id)],
        hospital_id=hospital,
        **({"harm": "mild", "calamity": False} | changes),
    )
    (case,) = opened_cases(event)
    return case


async def test_a_decline_goes_to_the_next_peer_and_never_back(matching: MatchingRig) -> None:
    await matching.roster(peer("M1", "A"), peer("M1", "B"))
    case = case_in("M1")
    await matching.open(case)
    first = await matching.until(case, "peer_assigned")
    await matching.answer(first, accepted=False)
    second = await matching.until(case, "peer_assigned", 2)
    assert second["attempt"] == 2
    assert second["supporter_id"] != first["supporter_id"]

    await matching.answer(second, accepted=False)
    escalation = await matching.until(case, "case_escalated")
    assert escalation["reason"] == "no_peer_available"
    assert escalation["rejections"] == {"tried_before": 2}
    assert len(matching.of(case, "peer_assigned")) == 2


async def test_an_unanswered_offer_goes_to_someone_else_an_accepted_one_stays(
    matching: MatchingRig,
) -> None:
    await matching.roster(peer("M2", "A"), peer("M2", "B"))
    case = case_in("M2", harm="severe")
    await matching.open(case)
    first = await matching.until(case, "peer_assigned")
    offered = datetime.fromisoformat(first["occurred_at"])
    assert (datetime.fromisoformat(first["respond_by"]) - offered).total_seconds() == URGENT_SECONDS

    cancelled = await matching.until(case, "assignment_cancelled")
    assert cancelled["reason"] == "no_response"
    assert cancelled["assignment_id"] == first["assignment_id"]
    assert datetime.fromisoformat(cancelled["occurred_at"]) >= datetime.fromisoformat(
        first["respond_by"]
    )
    second = await matching.until(case, "peer_assigned", 2)
    assert second["supporter_id"] != first["supporter_id"]

    await matching.answer(second, accepted=True)
    await asyncio.sleep(URGENT_SECONDS + 2)
    assert len(matching.of(case, "assignment_cancelled")) == 1
    assert (await matching.case_doc(case))["status"] == "accepted"
    # A late answer to the expired offer changes nothing.
    await matching.answer(first, accepted=True)
    await matching.answer(first, accepted=False)
    await asyncio.sleep(1)
    assert len(matching.of(case, "peer_assigned")) == 2


async def test_after_the_last_attempt_the_coordinator_takes_over(matching: MatchingRig) -> None:
    await matching.roster(*(peer("M3", name) for name in "ABCD"))
    case = case_in("M3")
    await matching.open(case)
    for attempt in (1, 2, 3):
        offer = await matching.until(case, "peer_assigned", attempt)
        await matching.answer(offer, accepted=False)
    escalation = await matching.until(case, "case_escalated")
    assert escalation["reason"] == "attempts_exhausted"
    assert escalation["attempt"] == 3
    await asyncio.sleep(1.5)
    assert len(matching.of(case, "peer_assigned")) == 3
    assert (await matching.case_doc(case))["status"] == "escalated"


async def test_waiting_cases_are_matched_as_capacity_frees_the_more_severe_first(
    matching: MatchingRig,
) -> None:
    await matching.roster(peer("M4", "A", max_open_cases=1))
    holding = case_in("M4", staff_id="E1")
    await matching.open(holding)
    await matching.until(holding, "peer_assigned")
    milder = case_in("M4", staff_id="E2", harm="none")
    graver = case_in("M4", staff_id="E3", harm="moderate")
    await matching.open(milder, graver)
    for waiting in (milder, graver):
        escalation = await matching.until(waiting, "case_escalated")
        assert escalation["reason"] == "no_peer_available"
        assert escalation["rejections"] == {"at_capacity": 1}

    await matching.publish(matching.topics.cases, closed(holding))
    cancelled = await matching.until(holding, "assignment_cancelled")
    assert cancelled["reason"] == "case_closed"
    await matching.until(graver, "peer_assigned")
    await asyncio.sleep(1.5)
    assert matching.of(milder, "peer_assigned") == []

    await matching.roster(peer("M4", "A", max_open_cases=1), peer("M4", "B", max_open_cases=1))
    offer = await matching.until(milder, "peer_assigned")
    assert offer["supporter_id"] == "M4-B"
    assert len(matching.of(milder, "case_escalated")) == 1


def from_intake(case: SupportCaseOpened) -> dict[str, Any]:
    """What intake puts on every later event about the case."""
    return {
        "event_id": uuid.uuid4(),
        "occurred_at": datetime.now(UTC),
        "producer": "intake",
        "correlation_id": case.correlation_id,
        "hospital_id": case.hospital_id,
        "case_id": case.case_id,
    }


def closed(case: SupportCaseOpened) -> SupportCaseClosed:
    return SupportCaseClosed(**from_intake(case), profile=case.profile, reason="incident_withdrawn")


def updated(case: SupportCaseOpened, **profile: Any) -> SupportCaseUpdated:
    exclusions = profile.pop("exclusions", case.exclusions)
    return SupportCaseUpdated(
        **from_intake(case),
        profile=CaseProfile.model_validate(case.profile.model_dump() | profile),
        exclusions=exclusions,
    )


async def test_an_upgrade_shortens_the_deadline_a_downgrade_never_lengthens_it(
    matching: MatchingRig,
) -> None:
    await matching.roster(peer("M5", "A"))
    case = case_in("M5")
    await matching.open(case)
    offer = await matching.until(case, "peer_assigned")
    offered_at = datetime.fromisoformat(offer["occurred_at"])
    assert (datetime.fromisoformat(offer["respond_by"]) - offered_at).total_seconds() == 3600

    await matching.publish(matching.topics.cases, updated(case, harm="death", calamity=True))
    moved = await matching.until(case, "response_deadline_moved")
    respond_by = datetime.fromisoformat(moved["respond_by"])
    # The store keeps milliseconds: the offer's time there is up to 1 ms before the event's.
    assert (respond_by - offered_at).total_seconds() == pytest.approx(URGENT_SECONDS, abs=0.002)
    await matching.publish(matching.topics.cases, updated(case, harm="none"))
    cancelled = await matching.until(case, "assignment_cancelled")
    assert cancelled["reason"] == "no_response"
    assert len(matching.of(case, "response_deadline_moved")) == 1
    assert (await matching.case_doc(case))["priority"] == 2  # the downgrade is kept for later


async def test_a_supporter_found_to_be_involved_is_replaced(matching: MatchingRig) -> None:
    await matching.roster(peer("M6", "A"), peer("M6", "B", function="physician"))
    case = case_in("M6")
    await matching.open(case)
    first = await matching.until(case, "peer_assigned")
    assert first["supporter_id"] == "M6-A"  # the same function scores higher

    # The incident is corrected: supporter A (staff id S-A) was in it too.
    pseudonym = pseudonymise(PSEUDONYM_KEY, "M6", "S-A")
    involved = [*case.exclusions.involved_pseudonyms, tagged(case.exclusions.salt, pseudonym)]
    exclusions = case.exclusions.model_copy(update={"involved_pseudonyms": involved})
    await matching.publish(matching.topics.cases, updated(case, exclusions=exclusions))
    cancelled = await matching.until(case, "assignment_cancelled")
    assert cancelled["reason"] == "supporter_excluded"
    second = await matching.until(case, "peer_assigned", 2)
    assert second["supporter_id"] == "M6-B"


async def test_someone_who_opted_out_is_counted_but_nobody_is_sent(matching: MatchingRig) -> None:
    await matching.roster(peer("M7", "A"))
    # Two colleagues in one incident: one key, one partition, handled in this order.
    people = [participant("E1"), participant("E2", department="ED")]
    event = incident_json("INC-M7", people, hospital_id="M7", harm="mild", calamity=False)
    first, behind = opened_cases(event)
    opted_out = first.model_copy(update={"opted_out": True})
    await matching.open(opted_out, behind)
    await matching.until(behind, "peer_assigned")
    assert matching.news(opted_out) == []
    assert (await matching.case_doc(opted_out))["status"] == "opted_out"


async def test_a_supporter_added_elsewhere_reaches_the_roster_a_matcher_holds(
    servers: Servers,
) -> None:
    """Another matcher may take a roster change in: the roster this one holds in memory
    follows the store, so its next decision can choose the newcomer."""
    async with matching_rig(servers) as matching:
        await until_true(
            lambda: matching.metric("roster_following"), lambda v: v == 1, "the roster followed"
        )
        await matching.roster(peer("M9", "A", function="physician"))
        first = case_in("M9")
        await matching.open(first)
        assert (await matching.until(first, "peer_assigned"))["supporter_id"] == "M9-A"
        assert await matching.metric("roster_held_supporters") == 1

        newcomer = peer("M9", "B").profile(KEYS)  # a nurse, as the colleague is
        await Roster(matching.mongo[matching.database("matching")]).apply(newcomer)
        await until_true(
            lambda: matching.metric("roster_held_supporters"),
            lambda held: held == 0,
            "the roster read again once someone joined it",
        )
        second = case_in("M9", staff_id="E2")
        await matching.open(second)
        assert (await matching.until(second, "peer_assigned"))["supporter_id"] == "M9-B"


async def test_concurrent_matchers_never_overbook_a_supporter(servers: Servers) -> None:
    """Three matching instances in one group, two consumers each, forty cases at once."""
    async with matching_rig(servers, instances=3, consumers_per_topic=1) as matchers:
        await matchers.roster(*(peer("MC", name, max_open_cases=2) for name in "ABC"))
        cases = [case_in("MC", staff_id=f"E{n}") for n in range(40)]
        await asyncio.gather(*(matchers.open(case) for case in cases))

        await until(
            lambda: all(matchers.news(case) for case in cases),
            within=180,
            what="every case decided",
        )
        await asyncio.sleep(2)  # any second decision would show by now
        decisions = Counter(case.case_id for case in cases for _ in matchers.news(case))
        assert set(decisions.values()) == {1}, "each case decided exactly once"
        offers = [e for case in cases for e in matchers.of(case, "peer_assigned")]
        per_supporter = Counter(e["supporter_id"] for e in offers)
        assert per_supporter == {"MC-A": 2, "MC-B": 2, "MC-C": 2}
        escalations = [e for case in cases for e in matchers.of(case, "case_escalated")]
        assert len(escalations) == 34
        supporters = matchers.mongo[matchers.database("matching")]["supporters"].find()
        async for supporter in supporters:
            assert supporter["free_capacity"] == 0
            assert len(supporter["open_case_ids"]) == 2
        partitions = {r.partition for r in matchers.log.records}
        assert len(partitions) > 1, "the cases were spread over partitions (and so matchers)"
        assert json.loads(matchers.log.records[0].value or b"")["producer"] == "matching"
