"""What a coordinator does from the desk: assign a supporter by hand, withdraw an offer, end
a case, record a group debriefing.

Each action is one transaction, like matching's own steps: it claims the case as it expects
to find it, books or gives back capacity, writes the events it causes to the outbox and a
line to the audit log. The assignment then takes the normal path (offer mail, reminder,
deadline). The rules that protect the colleague are never set aside; a soft rule only with a
reason, which stays in the audit log and never travels.
"""

import asyncio
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TypeVar

from pymongo.asynchronous.client_session import AsyncClientSession

from services.matching.desk import Debrief, DebriefDecision, Remark
from services.matching.desk_cases import status_said
from services.matching.desk_store import AuditLine, DeskRecords
from services.matching.desk_words import said
from services.matching.matcher import CaseStep
from services.matching.policy import (
    PROTECTIVE,
    Candidate,
    Judged,
    Policy,
    Refusal,
    assignment_for,
    cancellation_for,
    concern_for,
    judge_each,
    reopening_for,
    support_ended_for,
)
from services.matching.roster import standing_change
from services.matching.store import IN_PROGRESS, CaseBook, CaseRecord, Roster, Status
from shared.access import Grant
from shared.events import (
    CancelReason,
    ConcernRaisedBy,
    Envelope,
    GroupDebriefRecorded,
    PeerAssigned,
    ReferralKind,
    SupportOutcome,
)
from shared.i18n import _
from shared.mongo import Announcements, UnitOfWork
from shared.settings import Topics
from shared.words import rule_said

ENDED_BY_COORDINATOR = (
    SupportOutcome.COMPLETED,
    SupportOutcome.REFERRED,
    SupportOutcome.DECLINED_BY_COLLEAGUE,
    SupportOutcome.UNREACHABLE,
    SupportOutcome.CLOSED_BY_COORDINATOR,
)
ASSIGNABLE = (Status.NEW, Status.WAITING, Status.ESCALATED)


class Refused(Exception):
    """An action the desk turns down, with the HTTP status that says why."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


R = TypeVar("R")


@dataclass
class Coordination:
    unit_of_work: UnitOfWork
    roster: Roster
    book: CaseBook
    records: DeskRecords
    policy: Policy
    topics: Topics
    capacity_freed: asyncio.Event
    reopen_within: timedelta

    async def case(self, case_id: str, grant: Grant) -> CaseRecord:
        return await case_in_scope(self.book, case_id, grant)

    async def assign(self, case_id: str, supporter_id: str, reason: str, grant: Grant) -> None:
        await self.case(case_id, grant)

        async def step(session: AsyncClientSession, now: datetime) -> list[Envelope]:
            record = await self._take(
                session, case_id, ASSIGNABLE, _("withdraw its open offer first")
            )
            return [await self._offer(session, record, supporter_id, reason, grant, now)]

        await self._run(step)

    async def hand_over(self, case_id: str, supporter_id: str, reason: str, grant: Grant) -> None:
        """Accepted support moves to another supporter, who is offered it as any case; the
        one who had it is thanked and their capacity is free again."""
        _given(reason, _("give a reason for the handover: it stays in the audit log"))
        await self.case(case_id, grant)

        async def step(session: AsyncClientSession, now: datetime) -> list[Envelope]:
            record = await self._take(
                session, case_id, (Status.ACCEPTED,), _("only accepted support is handed over")
            )
            previous = record.holder
            if supporter_id == previous:
                raise Refused(422, _("the case is with this supporter already"))
            await self.roster.release(session, previous, case_id)
            await self.book.tried(session, case_id, previous)
            self.capacity_freed.set()
            cause = uuid.uuid4()
            thanked = cancellation_for(
                record.case, record.attempt, previous, CancelReason.HANDED_OVER, now, cause
            )
            await self._log_case(session, grant, now, "hand over", record, reason, previous)
            taken_over = record.tried_also(previous)
            offered = await self._offer(session, taken_over, supporter_id, reason, grant, now)
            return [thanked, offered]

        await self._run(step)

    async def _offer(
        self,
        session: AsyncClientSession,
        record: CaseRecord,
        supporter_id: str,
        reason: str,
        grant: Grant,
        now: datetime,
    ) -> PeerAssigned:
        """The case offered to the supporter the coordinator chose, within the rules."""
        supporter = await self.roster.one(supporter_id, session)
        if supporter is None or supporter.hospital_id != record.case.hospital_id:
            raise Refused(
                422,
                _("{supporter} is not on the roster of {hospital}").format(
                    supporter=supporter_id, hospital=record.case.hospital_id
                ),
            )
        share = await incident_share(self.book, self.policy, record, session)
        (judged,) = judge_each(record.case, [supporter], self.policy, now, share)
        _may_assign(judged, reason)
        beyond = judged.refusal is Refusal.AT_CAPACITY
        if not await self.roster.reserve(
            session, supporter_id, record.case_id, now, beyond_capacity=beyond
        ):
            raise Refused(
                409,
                _("{supporter} can no longer take the case; look again").format(
                    supporter=supporter_id
                ),
            )
        assigned = assignment_for(
            record.case,
            Candidate(supporter, judged.score),
            record.attempt + 1,
            self.policy,
            now,
            uuid.uuid4(),
            chosen_by_coordinator=True,
        )
        await self.book.offered(session, assigned, now)
        overridden = f" (overriding {judged.refusal})" if judged.refusal else ""
        await self._log_case(
            session, grant, now, "assign", record, reason + overridden, supporter_id
        )
        return assigned

    async def withdraw(self, case_id: str, reason: str, grant: Grant) -> None:
        """The open offer is taken back; the case stays with the coordinator."""
        await self.case(case_id, grant)

        async def step(session: AsyncClientSession, now: datetime) -> list[Envelope]:
            record = await self._take(
                session, case_id, (Status.OFFERED,), _("it has no open offer")
            )
            holder = record.holder
            await self.roster.release(session, holder, case_id)
            await self.book.tried(session, case_id, holder)
            await self.book.update(session, case_id, status=Status.ESCALATED, since=now)
            self.capacity_freed.set()
            await self._log_case(session, grant, now, "withdraw", record, reason, holder)
            reason_code = CancelReason.WITHDRAWN_BY_COORDINATOR
            return [
                cancellation_for(
                    record.case, record.attempt, holder, reason_code, now, uuid.uuid4()
                )
            ]

        await self._run(step)

    async def end(
        self,
        case_id: str,
        outcome: SupportOutcome,
        referral: ReferralKind | None,
        reason: str,
        grant: Grant,
    ) -> None:
        """Support ends as the coordinator decides, as it ends elsewhere in the product."""
        if outcome not in ENDED_BY_COORDINATOR:
            raise Refused(
                422, _("{outcome} is not the coordinator's to choose").format(outcome=said(outcome))
            )
        if (referral is not None) != (outcome is SupportOutcome.REFERRED):
            raise Refused(422, _("give a referral kind exactly when the outcome is referred"))
        await self.case(case_id, grant)

        async def step(session: AsyncClientSession, now: datetime) -> list[Envelope]:
            record = await self._take(session, case_id, IN_PROGRESS, _("it has ended already"))
            cause, events = uuid.uuid4(), list[Envelope]()
            if record.holds_capacity:
                await self.roster.release(session, record.holder, case_id)
                self.capacity_freed.set()
                withdrawn = CancelReason.WITHDRAWN_BY_COORDINATOR
                events.append(
                    cancellation_for(
                        record.case, record.attempt, record.holder, withdrawn, now, cause
                    )
                )
            await self.book.update(
                session, case_id, status=Status.ENDED, ended_at=now, outcome=outcome
            )
            await self._log_case(session, grant, now, f"end: {outcome}", record, reason)
            ended = support_ended_for(record.case, record.attempt, outcome, referral, now, cause)
            return [*events, ended]

        await self._run(step)

    async def reopen(self, case_id: str, reason: str, grant: Grant) -> None:
        """An ended case is the coordinator's to offer again (its last supporter first, if
        they can): the colleague needed more, or support ended by mistake."""
        _given(reason, _("give a reason for reopening: it stays in the audit log"))
        await self.case(case_id, grant)

        async def step(session: AsyncClientSession, now: datetime) -> list[Envelope]:
            record = await self._take(
                session, case_id, (Status.ENDED,), _("only an ended case is reopened")
            )
            ended_at = record.ended_at or now
            if now - ended_at > self.reopen_within:
                days = self.reopen_within.days
                raise Refused(
                    409,
                    _("support ended more than {days} days ago: open a new case").format(days=days),
                )
            await self.book.update(
                session,
                case_id,
                status=Status.ESCALATED,
                since=now,
                reopened_at=now,
                ended_at=None,
                outcome=None,
            )
            await self._log_case(session, grant, now, "reopen", record, reason)
            assert record.outcome is not None, f"ended case {case_id} has its outcome"
            ended = SupportOutcome(record.outcome)
            return [reopening_for(record.case, ended, now, uuid.uuid4())]

        await self._run(step)

    async def raise_concern(self, case_id: str, grant: Grant) -> None:
        """The coordinator worries for the colleague's safety: the back-up is alerted as when
        a supporter raises it, and the worklist holds it until it is settled."""
        record = await self.case(case_id, grant)
        if record.status not in IN_PROGRESS:
            raise Refused(409, _("support has ended: call the hospital's back-up directly"))

        async def step(session: AsyncClientSession, now: datetime) -> list[Envelope]:
            await self._log_case(session, grant, now, "safety concern raised", record, "")
            holder = record.supporter_id if record.holds_capacity else None
            by = ConcernRaisedBy.COORDINATOR
            return [concern_for(record.case, by, holder, now, uuid.uuid4())]

        await self._run(step)

    async def settle_concern(self, case_id: str, reason: str, grant: Grant) -> None:
        """Someone has acted on the concern: what they did stays in the audit log."""
        _given(reason, _("say what was done about the concern: it stays in the audit log"))
        record = await self.case(case_id, grant)

        async def step(session: AsyncClientSession, now: datetime) -> list[Envelope]:
            if not await self.records.notes.concern_settled(session, case_id):
                raise Refused(409, _("there is no open safety concern on this case"))
            await self._log_case(session, grant, now, "safety concern settled", record, reason)
            return []

        await self._run(step)

    async def claim(self, case_id: str, grant: Grant) -> None:
        """The coordinator takes the case's worklist items on: others see who has them."""
        record = await self.case(case_id, grant)

        async def step(session: AsyncClientSession, now: datetime) -> list[Envelope]:
            before = await self.records.notes.claim(session, case_id, grant.holder, now)
            taken = f"taken over from {before}" if before and before != grant.holder else ""
            await self._log_case(session, grant, now, "claim", record, taken)
            return []

        await self._run(step)

    async def note(self, case_id: str, text: str, grant: Grant) -> None:
        """A note on the case, kept with it until it is erased; the audit log says only that
        one was added."""
        _given(text, _("write the note first"))
        record = await self.case(case_id, grant)

        async def step(session: AsyncClientSession, now: datetime) -> list[Envelope]:
            remark = Remark(at=now, who=grant.holder, text=text.strip())
            await self.records.notes.remark(session, case_id, remark)
            await self._log_case(session, grant, now, "note added", record, "")
            return []

        await self._run(step)

    async def record_debrief(
        self, hospital_id: str, incident_id: str, decision: DebriefDecision, grant: Grant
    ) -> None:
        debrief = await debrief_in_scope(self.records, hospital_id, incident_id, grant)
        if refusal := decision.refusal():
            raise Refused(422, refusal)
        facilitator_id, facts = decision.facilitator_id, decision.facts()

        async def step(session: AsyncClientSession, now: datetime) -> list[Envelope]:
            if facilitator_id:
                facilitator = await self.roster.one(facilitator_id, session)
                if facilitator is None or facilitator.hospital_id != debrief.hospital_id:
                    raise Refused(
                        422,
                        _("{supporter} is not on the roster of {hospital}").format(
                            supporter=facilitator_id, hospital=debrief.hospital_id
                        ),
                    )
            await self.records.debriefs.record(session, hospital_id, incident_id, **facts)
            await self._log(
                session,
                grant,
                now,
                decision.what,
                debrief.hospital_id,
                incident_id=incident_id,
                supporter_id=facilitator_id,
                reason=decision.reason,
            )
            return [
                GroupDebriefRecorded(
                    event_id=uuid.uuid4(),
                    occurred_at=now,
                    producer="matching",
                    correlation_id=incident_id,
                    hospital_id=debrief.hospital_id,
                    incident_id=incident_id,
                    **facts,
                )
            ]

        await self._run(step)

    async def set_active(self, supporter_id: str, active: bool, reason: str, grant: Grant) -> None:
        """Deactivate (no new cases; those taken stay) or reactivate a supporter."""
        profile = found(
            await self.roster.profile(supporter_id),
            lambda profile: profile.hospital_id,
            grant,
            _("no supporter {id}").format(id=supporter_id),
        )

        async def step(session: AsyncClientSession, now: datetime) -> list[Envelope]:
            action = "reactivate" if active else "deactivate"
            await self._log(
                session,
                grant,
                now,
                action,
                profile.hospital_id,
                supporter_id=supporter_id,
                reason=reason,
            )
            return [standing_change(profile, active, now)]

        await self._run(step, self.topics.roster)

    async def _run(self, step: CaseStep, topic: str | None = None) -> None:
        async def work(session: AsyncClientSession, now: datetime) -> Announcements:
            return [(topic or self.topics.assignments, e) for e in await step(session, now)]

        await self.unit_of_work.run(work)

    async def _take(
        self, session: AsyncClientSession, case_id: str, allowed: tuple[Status, ...], otherwise: str
    ) -> CaseRecord:
        record = await self.book.take(session, case_id, status={"$in": list(allowed)})
        if record is None:
            current = await self.book.get(case_id)
            status = status_said(current.status) if current else _("gone")
            raise Refused(
                409,
                _("the case is {status}: {otherwise}").format(status=status, otherwise=otherwise),
            )
        return record

    async def _log_case(
        self,
        session: AsyncClientSession,
        grant: Grant,
        now: datetime,
        action: str,
        record: CaseRecord,
        reason: str,
        supporter_id: str | None = None,
    ) -> None:
        await self._log(
            session,
            grant,
            now,
            action,
            record.case.hospital_id,
            case_id=record.case_id,
            supporter_id=supporter_id or record.supporter_id,
            reason=reason,
        )

    async def _log(
        self,
        session: AsyncClientSession,
        grant: Grant,
        now: datetime,
        action: str,
        hospital_id: str,
        **about: str | None,
    ) -> None:
        """One audit line: who did what, when, about which case, incident or supporter, and
        the reason they gave."""
        line = AuditLine(
            at=now,
            who=grant.holder,
            scope=grant.scope,
            action=action,
            hospital_id=hospital_id,
            case_id=about.get("case_id"),
            incident_id=about.get("incident_id"),
            supporter_id=about.get("supporter_id"),
            reason=about.get("reason") or "",
        )
        await self.records.audit.add(session, line)


async def case_in_scope(book: CaseBook, case_id: str, grant: Grant) -> CaseRecord:
    """The case, if it is within the token's scope."""
    return found(
        await book.get(case_id),
        lambda r: r.case.hospital_id,
        grant,
        _("no case {id}").format(id=case_id),
    )


async def incident_share(
    book: CaseBook, policy: Policy, record: CaseRecord, session: AsyncClientSession | None = None
) -> Counter[str]:
    """How many of a large incident's cases each supporter holds (nothing for a small one)."""
    if record.case.exclusions.incident_size <= policy.large_incident:
        return Counter()
    return await book.incident_share(session, record.case.incident)


async def debrief_in_scope(
    records: DeskRecords, hospital_id: str, incident_id: str, grant: Grant
) -> Debrief:
    """The incident's group debriefing, if it is within the token's scope."""
    return found(
        await records.debriefs.get(hospital_id, incident_id),
        lambda debrief: debrief.hospital_id,
        grant,
        _("no group debriefing was suggested for incident {id}").format(id=incident_id),
    )


def found(record: R | None, hospital_of: Callable[[R], str], grant: Grant, unknown: str) -> R:
    """The record, refused with `unknown` (404) when it is missing or of a hospital outside the
    grant: the same answer either way, so nobody counts another hospital's cases or roster."""
    if record is None or not grant.reads(hospital_of(record)):
        raise Refused(404, unknown)
    return record


def _may_assign(judged: Judged, reason: str) -> None:
    refusal = judged.refusal
    if refusal is None:
        return
    if refusal in PROTECTIVE:
        raise Refused(
            422,
            _("{rule}: a rule that protects the colleague is never overridden").format(
                rule=rule_said(refusal)
            ),
        )
    if not judged.overridable:
        raise Refused(
            422, _("{rule}: this supporter cannot be assigned").format(rule=rule_said(refusal))
        )
    _given(
        reason,
        _("{rule}: give a reason to override this rule").format(rule=rule_said(refusal)),
    )


def _given(text: str, otherwise: str) -> None:
    """Text a coordinator must write (a reason, a note), refused with `otherwise` if blank."""
    if not text.strip():
        raise Refused(422, otherwise)
