"""What the desk reads: the worklist, the cases found by a coordinator's filters, a case with
its timeline and candidates, the roster as a coordinator looks after it, the audit log; each
within the token's scope."""

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from services.matching.coordination import Refused, case_in_scope, incident_share
from services.matching.desk import (
    CandidateView,
    CaseNotes,
    CaseView,
    Debrief,
    Need,
    RosterLine,
    Targets,
    WorkItem,
    candidate_views,
    case_view,
    reached,
    roster_lines,
    worklist,
)
from services.matching.desk_cases import (
    CaseList,
    CaseOrder,
    CaseQuery,
    SupporterView,
    case_lines,
)
from services.matching.desk_store import AuditLine, DeskRecords
from services.matching.policy import Policy, judge_each
from services.matching.store import CaseBook, Roster, Status
from shared.access import Grant, OutOfScope
from shared.i18n import _

WORKLIST_CASES = 5000
"""Cases in progress looked at per worklist: far more than any programme has open."""


@dataclass
class DeskViews:
    book: CaseBook
    roster: Roster
    records: DeskRecords
    policy: Policy
    targets: Targets
    refresher_after: timedelta

    async def worklist(
        self, grant: Grant, hospital_id: str | None, now: datetime, need: Need | None = None
    ) -> list[WorkItem]:
        """`need`: only the items of that kind."""
        hospital = _scoped(grant, hospital_id)
        records = await self.book.in_progress(hospital, WORKLIST_CASES)
        notes = await self.records.notes.of_cases(r.case_id for r in records)
        debriefs = await self.records.debriefs.of_hospital(hospital)
        noted = ((r, notes.get(r.case_id, CaseNotes())) for r in records)
        items = [i for i in worklist(noted, debriefs, now, self.targets) if need in (None, i.need)]
        holders = {i.supporter_id for i in items if i.supporter_id}
        return reached(items, await self.roster.some(holders) if holders else [])

    async def case(self, case_id: str, grant: Grant) -> CaseView:
        record = await case_in_scope(self.book, case_id, grant)
        timeline = await self.records.timelines.of_case(case_id)
        notes = (await self.records.notes.of_cases([case_id])).get(case_id, CaseNotes())
        roster = await self.roster.of_hospital(record.case.hospital_id)
        names = {s.supporter_id: s.contact.display_name for s in roster}
        view = case_view(record, timeline, names, self.policy.timezone)
        return view.model_copy(
            update={
                "concern_since": notes.concern_at,
                "owner": notes.owner,
                "remarks": list(notes.remarks),
            }
        )

    async def cases(self, grant: Grant, query: CaseQuery) -> CaseList:
        criteria: dict[str, Any] = {}
        if hospital := _scoped(grant, query.hospital_id):
            criteria["profile.hospital_id"] = hospital
        if query.status is not None:
            criteria["status"] = query.status
        if query.supporter_id is not None:
            criteria["supporter_id"] = query.supporter_id
        if between := query.opened_between():
            criteria["opened_at"] = {"$gte": between[0], "$lt": between[1]}
        return await self._listed(criteria, query)

    async def incident_cases(self, debrief: Debrief) -> CaseList:
        """The cases a large incident opened, for its debriefing: the case book knows the
        incident only by the random reference its cases carry."""
        if debrief.incident_ref is None:
            return CaseList(total=0, offset=0, items=[])
        criteria = {"incident": debrief.incident_ref, "profile.hospital_id": debrief.hospital_id}
        return await self._listed(criteria, CaseQuery(order=CaseOrder.OLDEST, limit=200))

    async def _listed(self, criteria: dict[str, Any], query: CaseQuery) -> CaseList:
        total, records = await self.book.listing(
            criteria,
            newest_first=query.order is CaseOrder.NEWEST,
            offset=query.offset,
            limit=query.limit,
        )
        supporters = {r.supporter_id for r in records if r.supporter_id}
        names = {s.supporter_id: s.contact.display_name for s in await self.roster.some(supporters)}
        return case_lines(total, query, records, names)

    async def supporter(self, supporter_id: str, grant: Grant, now: datetime) -> SupporterView:
        """Another hospital's supporter is answered as an unknown one: rosters cannot be
        counted across hospitals."""
        known = [s for s in await self.roster.some([supporter_id]) if grant.reads(s.hospital_id)]
        if not known:
            raise Refused(404, _("no supporter {id}").format(id=supporter_id))
        found = known[0]
        since = now - self.policy.recent_window
        severe = await self.book.severe_accepted_since(found.hospital_id, since)
        (line,) = roster_lines(
            [found], severe, now, self.policy.recent_window, self.refresher_after
        )
        cases = await self.cases(grant, CaseQuery(supporter_id=supporter_id, limit=50))
        contact = found.contact
        return SupporterView(
            line=line,
            email=contact.email,
            phone=contact.phone,
            language=contact.language,
            cases=cases,
        )

    async def candidates(self, case_id: str, grant: Grant, now: datetime) -> list[CandidateView]:
        record = await case_in_scope(self.book, case_id, grant)
        share = await incident_share(self.book, self.policy, record)
        roster = await self.roster.of_hospital(record.case.hospital_id)
        if record.status == Status.ACCEPTED:  # the candidates to hand it over to
            roster = [s for s in roster if s.supporter_id != record.supporter_id]
        judged = judge_each(record.case, roster, self.policy, now, share)
        return candidate_views(record.case, judged, self.policy, now)

    async def roster_lines(
        self, grant: Grant, hospital_id: str | None, now: datetime
    ) -> list[RosterLine]:
        hospital = _scoped(grant, hospital_id)
        since = now - self.policy.recent_window
        severe = await self.book.severe_accepted_since(hospital, since)
        supporters = await self.roster.of_hospital(hospital)
        return roster_lines(
            supporters, severe, now, self.policy.recent_window, self.refresher_after
        )

    async def audit(self, grant: Grant, hospital_id: str | None, limit: int) -> list[AuditLine]:
        return await self.records.audit.listing(_scoped(grant, hospital_id), limit)


def _scoped(grant: Grant, hospital_id: str | None) -> str | None:
    try:
        return grant.hospital_filter(hospital_id)
    except OutOfScope as error:
        raise Refused(403, str(error)) from error
