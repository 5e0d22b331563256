"""What matching does with each case, from opening to acceptance or escalation.

Each step is one transaction: it claims the case as it expects to find it, books or releases
a supporter's capacity, records where the case now stands and puts the events it causes in
the outbox. A step that finds the case changed (answered already, taken by another matcher)
does nothing, so redeliveries, late answers and several matchers are all harmless.
"""

import asyncio
import contextlib
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.errors import DuplicateKeyError

from services.matching.policy import (
    Case,
    Policy,
    Ranking,
    assignment_for,
    cancellation_for,
    escalation_for,
    excludes,
    moved_deadline_for,
    peer_assigned_id,
    priority,
    rank,
    withdrawal_for,
)
from services.matching.rosters import Rosters
from services.matching.store import (
    CaseBook,
    CaseRecord,
    Roster,
    Status,
    case_document,
    case_record,
    offer_changes,
)
from shared.batches import Delivery
from shared.events import (
    AssignmentAccepted,
    AssignmentDeclined,
    CancelReason,
    CaseNews,
    Envelope,
    EscalationReason,
    SupportCaseClosed,
    SupportCaseOpened,
    SupportCaseUpdated,
    SupportEnded,
)
from shared.mongo import Announcements, Document, Step, UnitOfWork, Work
from shared.tracing import current_context, within

BEST = 10
"""Candidates ranked per decision. The store refuses one whose capacity was taken since the
roster in memory saw it (the next is tried), or since the transaction's snapshot (the whole
decision is retried)."""

CaseStep = Callable[[AsyncClientSession, datetime], Awaitable[list[Envelope]]]


@dataclass
class Matcher:
    unit_of_work: UnitOfWork
    roster: Roster
    book: CaseBook
    policy: Policy
    topic: str
    log: Any
    rosters: Rosters
    """The rosters a decision judges: held in memory while `rosters.follow` runs."""
    capacity_freed: asyncio.Event = field(default_factory=asyncio.Event, init=False)
    """Set when waiting cases may now fit: wakes the scan instead of waiting for it."""
    _waiting_order: asyncio.Lock = field(default_factory=asyncio.Lock, init=False)
    """Held by a scan of the waiting cases and by every transaction that may free capacity,
    so a scan never sees capacity freed half-way: one that did would offer it to a milder case
    after passing over a graver one."""

    async def _run(self, step: CaseStep, *, may_free_capacity: bool = False) -> list[Document]:
        (published,) = await self._run_all([step], may_free_capacity=may_free_capacity)
        return published

    async def _run_all(
        self,
        steps: Sequence[CaseStep],
        traces: Sequence[dict[str, str]] | None = None,
        *,
        may_free_capacity: bool = False,
    ) -> list[list[Document]]:
        """The steps in one transaction (`traces`: the trace each belongs to, for a batch's);
        the supporters they wrote are held again once it commits."""
        sessions: list[AsyncClientSession] = []

        def work_of(step: CaseStep) -> Work:
            async def work(session: AsyncClientSession, now: datetime) -> Announcements:
                sessions.append(session)
                return [(self.topic, e) for e in await step(session, now)]

            return work

        traced = traces or [current_context()] * len(steps)
        lock = self._waiting_order if may_free_capacity else None
        try:
            published = await self.unit_of_work.run_steps(
                [Step(work_of(s), t) for s, t in zip(steps, traced, strict=True)], holding=lock
            )
        finally:
            written = {i for session in sessions for i in self.roster.written_by(session)}
            await self.rosters.refresh(written)
        for doc in (doc for docs in published for doc in docs):
            payload = doc["payload"]
            self.log.info(
                "case " + payload["event_type"].removeprefix("support."),
                case_id=payload["case_id"],
                attempt=payload.get("attempt"),
                supporter_id=payload.get("supporter", {}).get("supporter_id"),
                reason=payload.get("reason"),
                rejections=payload.get("rejections"),
            )
        return published

    async def open(self, opened: SupportCaseOpened) -> None:
        try:
            await self._run(self._opening(opened))
        except DuplicateKeyError:
            # Opened before: this delivery's transaction, reservation included, was undone.
            self.log.info("case opened before", case_id=str(opened.case_id))

    async def on_case_news(self, news: CaseNews) -> None:
        match news:
            case SupportCaseOpened():
                await self.open(news)
            case SupportCaseUpdated():
                await self.update(news)
            case SupportCaseClosed():
                await self.close(news)

    async def on_cases(self, batch: Sequence[Delivery[CaseNews]]) -> None:
        """A batch in the order it came: each run of new cases (most of the topic) decided
        in one transaction, an update or a close on its own in its place. A redelivered case
        is left out of its run; one opened meanwhile fails the run, which `Batches` then takes
        one at a time."""
        opening: list[tuple[SupportCaseOpened, dict[str, str]]] = []
        for one in [*batch, None]:
            if one is not None and isinstance(one.event, SupportCaseOpened):
                opening.append((one.event, one.trace))
                continue
            if opening := await self._not_opened_before(opening):
                await self._run_all(
                    [self._opening(opened) for opened, _ in opening], [t for _, t in opening]
                )
                opening = []
            if one is not None:
                with within(one.trace):
                    await self.on_case_news(one.event)

    async def _not_opened_before(
        self, opening: list[tuple[SupportCaseOpened, dict[str, str]]]
    ) -> list[tuple[SupportCaseOpened, dict[str, str]]]:
        if not opening:
            return []
        before = await self.book.opened_among([str(opened.case_id) for opened, _ in opening])
        for case_id in before:
            self.log.info("case opened before", case_id=case_id)
        return [(opened, trace) for opened, trace in opening if str(opened.case_id) not in before]

    def _opening(self, opened: SupportCaseOpened) -> CaseStep:
        case = Case.of(opened)

        async def step(session: AsyncClientSession, now: datetime) -> list[Envelope]:
            """Decided before it is written, so that the case is written once."""
            status = Status.OPTED_OUT if opened.opted_out else Status.NEW
            doc = case_document(case, status, priority(case.profile), opened.event_id, now)
            events: list[Envelope] = []
            if not opened.opted_out:
                events, decided = await self._decide(
                    session, case_record(doc), now, opened.event_id
                )
                doc |= decided
            await self.book.open(session, doc)
            return events

        return step

    async def respond(self, response: AssignmentAccepted | AssignmentDeclined) -> None:
        case_id = str(response.case_id)

        async def step(session: AsyncClientSession, now: datetime) -> list[Envelope]:
            record = await self.book.take(
                session,
                case_id,
                status=Status.OFFERED,
                assignment_id=str(response.assignment_id),
            )
            if record is None:
                self.log.info("answer to an offer no longer open", case_id=case_id)
                return []
            if isinstance(response, AssignmentAccepted):
                await self.book.update(session, case_id, status=Status.ACCEPTED, accepted_at=now)
                await self.roster.carried(session, record.holder, now)
                return []
            return await self._offer_ended(session, record, now, response.event_id, None)

        await self._run(step, may_free_capacity=True)

    async def end(self, ended: SupportEnded) -> None:
        """Support has ended: the case is done and its supporter's capacity comes back now,
        so the waiting cases are offered again at once, the severest first."""
        case_id = str(ended.case_id)

        async def step(session: AsyncClientSession, now: datetime) -> list[Envelope]:
            record = await self.book.take(
                session, case_id, status=Status.ACCEPTED, assignment_id=str(ended.assignment_id)
            )
            if record is None:
                self.log.info("end of support no longer open", case_id=case_id)
                return []
            await self.book.update(
                session, case_id, status=Status.ENDED, ended_at=now, outcome=ended.outcome
            )
            await self.roster.release(session, record.holder, case_id)
            self.capacity_freed.set()
            return []

        await self._run(step, may_free_capacity=True)
        self.log.info("support ended", case_id=case_id, outcome=ended.outcome)

    async def update(self, updated: SupportCaseUpdated) -> None:
        """An upgrade shortens an open offer's deadline; a downgrade never lengthens it."""
        case_id = str(updated.case_id)
        changes = {
            "profile": updated.profile.model_dump(mode="json"),
            "exclusions": updated.exclusions.model_dump(mode="json"),
            "priority": priority(updated.profile),
        }

        async def step(session: AsyncClientSession, now: datetime) -> list[Envelope]:
            record = await self.book.take(session, case_id, changes=changes)
            if record is None or not record.holds_capacity:
                return []
            holder = await self.roster.one(record.holder, session)
            if holder is not None and excludes(updated.exclusions, holder, self.policy):
                return await self._offer_ended(
                    session, record, now, updated.event_id, CancelReason.SUPPORTER_EXCLUDED
                )
            if record.status != Status.OFFERED or not (record.offered_at and record.respond_by):
                return []
            respond_by = record.offered_at + self.policy.response_time(updated.profile)
            if respond_by >= record.respond_by:
                return []
            await self.book.update(session, case_id, respond_by=respond_by)
            return [
                moved_deadline_for(record.case, record.attempt, respond_by, now, updated.event_id)
            ]

        await self._run(step, may_free_capacity=True)

    async def close(self, closed: SupportCaseClosed) -> None:
        case_id = str(closed.case_id)

        async def step(session: AsyncClientSession, now: datetime) -> list[Envelope]:
            record = await self.book.take(session, case_id)
            if record is None or record.status == Status.CLOSED:
                return []
            await self.book.update(session, case_id, status=Status.CLOSED, closed_at=now)
            if not record.holds_capacity:
                return []
            await self.roster.release(session, record.holder, case_id)
            self.capacity_freed.set()
            case, attempt, cause = record.case, record.attempt, closed.event_id
            cancelled = cancellation_for(
                case, attempt, record.holder, CancelReason.CASE_CLOSED, now, cause
            )
            if record.status != Status.ACCEPTED:
                return [cancelled]
            return [cancelled, withdrawal_for(case, attempt, now, cause)]

        await self._run(step, may_free_capacity=True)

    async def expire_overdue(self, limit: int) -> int:
        """Offers not answered in time go to someone else, once an answer given at the last
        moment would have arrived; returns how many expired."""
        grace = self.policy.answer_grace
        expired = 0
        for overdue in await self.book.overdue(datetime.now(UTC) - grace, limit):

            async def step(
                session: AsyncClientSession, now: datetime, overdue: CaseRecord = overdue
            ) -> list[Envelope]:
                record = await self.book.take(
                    session,
                    overdue.case_id,
                    status=Status.OFFERED,
                    assignment_id=overdue.assignment_id,
                    respond_by={"$lte": now - grace},
                )
                if record is None:
                    return []
                cause = peer_assigned_id(record.case.case_id, record.attempt)
                return await self._offer_ended(
                    session, record, now, cause, CancelReason.NO_RESPONSE
                )

            expired += bool(await self._run(step, may_free_capacity=True))
        return expired

    async def match_waiting(self, limit: int) -> int:
        """Try the waiting cases again, the most urgent first; returns how many were offered."""
        offered = 0
        async with self._waiting_order:
            for waiting in await self.book.waiting(limit):

                async def step(
                    session: AsyncClientSession, now: datetime, waiting: CaseRecord = waiting
                ) -> list[Envelope]:
                    record = await self.book.take(
                        session, waiting.case_id, status=Status.WAITING, attempt=waiting.attempt
                    )
                    if record is None:
                        return []
                    return await self._match(session, record, now, record.caused_by)

                published = await self._run(step)
                offered += any(d["event_type"] == "support.peer_assigned" for d in published)
        return offered

    async def _offer_ended(
        self,
        session: AsyncClientSession,
        record: CaseRecord,
        now: datetime,
        cause: uuid.UUID,
        cancelled: CancelReason | None,
    ) -> list[Envelope]:
        """The supporter declined, did not answer or may no longer support: free their
        capacity, never offer them this case again, and try the next (or escalate)."""
        supporter_id = record.holder
        await self.roster.release(session, supporter_id, record.case_id)
        await self.book.tried(session, record.case_id, supporter_id)
        self.capacity_freed.set()
        record = record.tried_also(supporter_id)
        events: list[Envelope] = []
        if cancelled is not None:
            events.append(
                cancellation_for(record.case, record.attempt, supporter_id, cancelled, now, cause)
            )
        if record.attempt >= self.policy.max_attempts:
            await self.book.update(session, record.case_id, status=Status.ESCALATED, since=now)
            exhausted = EscalationReason.ATTEMPTS_EXHAUSTED
            return [
                *events,
                escalation_for(record.case, record.attempt, exhausted, Counter(), now, cause),
            ]
        return [*events, *await self._match(session, record, now, cause)]

    async def _match(
        self, session: AsyncClientSession, record: CaseRecord, now: datetime, cause: uuid.UUID
    ) -> list[Envelope]:
        events, decided = await self._decide(session, record, now, cause)
        await self.book.update(session, record.case_id, **decided)
        return events

    async def _decide(
        self, session: AsyncClientSession, record: CaseRecord, now: datetime, cause: uuid.UUID
    ) -> tuple[list[Envelope], Document]:
        """Whom the case is offered to (their capacity reserved), or that it waits: the events
        and the case's changes, which the caller writes with the rest of the case."""
        case, case_id = record.case, record.case_id
        share = (
            await self.book.incident_share(session, case.incident)
            if case.exclusions.incident_size > self.policy.large_incident
            else Counter[str]()
        )
        rosters = self.rosters.to_decide(case.hospital_id, session)
        async with contextlib.aclosing(rosters):
            async for roster in rosters:
                ranking = rank(case, roster, self.policy, now, share, best=BEST)
                for candidate in ranking.candidates:
                    supporter_id = candidate.supporter.supporter_id
                    if await self.roster.reserve(session, supporter_id, case_id, now):
                        assigned = assignment_for(
                            case,
                            candidate,
                            record.attempt + 1,
                            self.policy,
                            now,
                            cause,
                            passed_over=ranking.passed_over,
                        )
                        return [assigned], offer_changes(assigned, now)
        return _waiting(record, now, cause, ranking)


def _waiting(
    record: CaseRecord, now: datetime, cause: uuid.UUID, ranking: Ranking
) -> tuple[list[Envelope], Document]:
    """Nobody fits now: the case waits, and the coordinator hears of it once."""
    waiting = record.status == Status.WAITING
    changes = {
        "status": Status.WAITING,
        "since": record.since if waiting else now,
        "escalated_while_waiting": True,
    }
    if waiting and record.escalated_while_waiting:
        return [], changes
    reason = EscalationReason.NO_PEER_AVAILABLE
    refusals, passed_over = ranking.refusals, ranking.passed_over
    escalation = escalation_for(
        record.case, record.attempt, reason, refusals, now, cause, passed_over
    )
    return [escalation], changes
