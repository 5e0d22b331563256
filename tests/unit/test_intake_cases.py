"""intake's domain: one case per professional, kept right as the incident unfolds."""

from datetime import UTC, datetime
from typing import Any

from services.intake.cases import IncidentRecord, IntakePolicy, Occasion, Reconciled, reconcile
from shared.events import (
    CaseOrigin,
    CloseReason,
    GroupDebriefSuggested,
    IncidentReported,
    IncidentUpdated,
    IncidentWithdrawn,
    SupportCaseClosed,
    SupportCaseOpened,
    SupportCaseUpdated,
    SupportRequested,
)
from shared.pseudonyms import pseudonymise, tagged
from tests.factories import (
    KEYS,
    PSEUDONYM_KEY,
    hospital_event,
    incident_json,
    participant,
    reconciled,
    withdrawal_json,
)

LATER = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)


def pseudonym(staff_id: str, hospital: str = "ZH-A") -> str:
    return pseudonymise(PSEUDONYM_KEY, hospital, staff_id)


def update(revision: int, **changes: Any) -> Occasion:
    event = incident_json(event_type="incident.updated", revision=revision, **changes)
    return Occasion.of_incident(IncidentUpdated.model_validate(event))


def withdrawal(revision: int) -> Occasion:
    event = withdrawal_json(revision=revision)
    return Occasion.of_incident(IncidentWithdrawn.model_validate(event))


def after(first: Reconciled | IncidentRecord | None, occasion: Occasion, **kw: Any) -> Reconciled:
    record = first.record if isinstance(first, Reconciled) else first
    return reconcile(
        record,
        occasion,
        KEYS,
        kw.pop("opted_out", set()),
        IntakePolicy(**kw),
        LATER,
    )


def of_type(outcome: Reconciled, kind: type) -> list[Any]:
    return [e for e in outcome.cases if isinstance(e, kind)]


def salted(case: SupportCaseOpened | SupportCaseUpdated, staff_id: str) -> str:
    """The professional's pseudonym as this case's events carry it."""
    return tagged(case.exclusions.salt, pseudonym(staff_id))


def test_each_professional_involved_gets_a_case_of_their_own() -> None:
    opened = of_type(reconciled(), SupportCaseOpened)
    assert len({c.case_id for c in opened}) == 2
    assert [c.colleague.pseudonym for c in opened] == [
        salted(c, staff) for c, staff in zip(opened, ("E12345", "E23456"), strict=True)
    ]
    for case in opened:
        assert case.exclusions.involved_pseudonyms == [
            salted(case, "E12345"),
            salted(case, "E23456"),
        ]


def test_no_pseudonym_itself_is_on_a_case_and_a_persons_cases_are_unlinkable() -> None:
    opened = of_type(reconciled(), SupportCaseOpened)
    first, second = opened
    assert first.exclusions.salt != second.exclusions.salt
    assert not set(first.exclusions.involved_pseudonyms) & set(
        second.exclusions.involved_pseudonyms
    )
    for case in opened:
        for staff in ("E12345", "E23456"):
            assert pseudonym(staff) not in case.model_dump_json()


def test_no_staff_id_contact_or_free_text_leaves_intake_with_a_case() -> None:
    people = [participant("E12345", notes="was on a double shift"), participant("E23456", "ED")]
    event = incident_json(participants=people, description="Patient J. Jansen, bed 4, 10x dose")
    outcome = reconciled(event)
    for case in outcome.cases:
        published = case.model_dump_json()
        for personal in ("E12345", "E23456", "@zh-a.example", "+316", "Jansen", "double shift"):
            assert personal not in published
    for contact in outcome.contacts:
        assert "Jansen" not in contact.model_dump_json()
        assert "double shift" not in contact.model_dump_json()


def test_contact_details_travel_separately_for_notify() -> None:
    contact = reconciled().contacts[0]
    assert contact.email == "e12345@zh-a.example"
    assert contact.phone == "+31612345678"
    assert contact.languages == ["nl", "en"]


def test_pseudonyms_are_stable_per_hospital_and_staff_id() -> None:
    assert pseudonym("E12345") == pseudonymise(PSEUDONYM_KEY, "ZH-A", "E12345")
    assert pseudonym("E12345", "ZH-B") != pseudonym("E12345")
    here = of_type(reconciled(), SupportCaseOpened)[0]
    other_incident = of_type(reconciled(incident_json("INC-2")), SupportCaseOpened)[0]
    assert here.colleague.pseudonym == salted(here, "E12345")
    assert other_incident.colleague.pseudonym == salted(other_incident, "E12345")
    assert other_incident.colleague.pseudonym != here.colleague.pseudonym


def test_the_same_report_again_changes_nothing() -> None:
    first = reconciled()
    again = after(first, Occasion.of_incident(IncidentReported.model_validate(incident_json())))
    assert again.stale
    assert again.cases == []


def test_events_about_a_case_name_the_case_never_the_incident() -> None:
    """An investigator reading the topics cannot tell who of an incident was supported: the
    cases of one incident share only a random reference."""
    event = incident_json()
    outcome = reconciled(event)
    opened = of_type(outcome, SupportCaseOpened)
    for case in [*opened, *outcome.contacts]:
        assert case.correlation_id == str(case.case_id)
        assert case.causation_id is None, "not the incident's event either"
        for trace in ("INC-2026-000123", event["event_id"]):
            assert trace not in case.model_dump_json()
    assert len({case.incident_ref for case in opened}) == 1
    assert opened[0].incident_ref == outcome.record.reference
    assert opened[0].profile.month == "2026-11"
    # Reported at 03:12 +01:00: the cases say the day, in the hospital's zone, not the time.
    assert {c.profile.incident_occurred_at.isoformat() for c in opened} == {
        "2026-11-20T00:00:00+01:00"
    }


def test_an_added_participant_gets_a_case_and_the_others_learn_who_is_involved() -> None:
    people = [participant("E12345"), participant("E23456", "ED"), participant("E34567", "OR")]
    first = reconciled()
    outcome = after(first, update(2, participants=people))
    (new,) = of_type(outcome, SupportCaseOpened)
    assert new.colleague.pseudonym == salted(new, "E34567")
    updated = of_type(outcome, SupportCaseUpdated)
    assert len(updated) == 2
    assert all(salted(u, "E34567") in u.exclusions.involved_pseudonyms for u in updated)
    salts = {c.case_id: c.exclusions.salt for c in of_type(first, SupportCaseOpened)}
    assert {u.case_id: u.exclusions.salt for u in updated} == salts, "each case keeps its salt"
    assert [c.case_id for c in outcome.contacts] == [new.case_id]


def test_a_removed_participant_has_their_case_closed() -> None:
    first = reconciled()
    outcome = after(first, update(2, participants=[participant("E12345")]))
    (closed,) = of_type(outcome, SupportCaseClosed)
    assert closed.reason is CloseReason.PARTICIPANT_REMOVED
    assert closed.case_id == of_type(first, SupportCaseOpened)[1].case_id


def test_a_regrade_reaches_every_open_case() -> None:
    first = reconciled(incident_json(harm="mild", calamity=False))
    outcome = after(first, update(2, harm="death", calamity=True))
    updated = of_type(outcome, SupportCaseUpdated)
    assert [(u.profile.harm, u.profile.calamity) for u in updated] == [("death", True)] * 2
    assert of_type(outcome, SupportCaseOpened) == []


def test_an_update_that_arrives_first_opens_the_cases_and_the_late_report_is_ignored() -> None:
    early = after(None, update(3, harm="death"))
    assert len(of_type(early, SupportCaseOpened)) == 2
    assert all(c.profile.harm == "death" for c in of_type(early, SupportCaseOpened))
    report = Occasion.of_incident(IncidentReported.model_validate(incident_json(harm="mild")))
    late = after(early, report)
    assert late.stale
    assert late.record == early.record


def test_updates_out_of_order_keep_the_newest() -> None:
    newest = after(reconciled(), update(3, harm="death"))
    older = after(newest, update(2, harm="mild"))
    assert older.stale
    assert older.cases == []


def test_a_withdrawal_closes_every_case_for_good() -> None:
    first = reconciled()
    withdrawn = after(first, withdrawal(2))
    closed = of_type(withdrawn, SupportCaseClosed)
    assert len(closed) == 2
    assert {c.reason for c in closed} == {CloseReason.INCIDENT_WITHDRAWN}
    assert after(withdrawn, update(3, harm="death")).stale


def test_a_withdrawal_before_the_report_keeps_the_report_from_opening_anything() -> None:
    withdrawn = after(None, withdrawal(2))
    assert withdrawn.cases == []
    assert after(
        withdrawn, Occasion.of_incident(IncidentReported.model_validate(incident_json()))
    ).stale


def test_entered_in_error_is_a_withdrawal() -> None:
    outcome = after(reconciled(), update(2, status="entered-in-error"))
    assert len(of_type(outcome, SupportCaseClosed)) == 2
    assert outcome.record.withdrawn


def test_near_misses_follow_the_setting() -> None:
    near_miss = incident_json(actuality="potential")
    assert len(of_type(reconciled(near_miss), SupportCaseOpened)) == 2
    assert reconciled(near_miss, near_miss_outreach=False).cases == []


def test_a_near_miss_that_turns_out_actual_opens_cases_then() -> None:
    first = reconciled(incident_json(actuality="potential"), near_miss_outreach=False)
    outcome = after(first, update(2), near_miss_outreach=False)
    assert len(of_type(outcome, SupportCaseOpened)) == 2


def test_a_large_incident_suggests_one_group_debriefing() -> None:
    people = [participant(f"E{n}", department="ED") for n in range(10001, 10007)]
    first = reconciled(incident_json(participants=people))
    (suggestion,) = of_type(first, GroupDebriefSuggested)
    assert suggestion.professionals_involved == 6
    assert suggestion.correlation_id == "ZH-A:INC-2026-000123", "about the incident, for a group"
    bigger = [*people, participant("E10099", department="ED")]
    assert of_type(after(first, update(2, participants=bigger)), GroupDebriefSuggested) == []
    assert of_type(reconciled(incident_json(participants=people[:5])), GroupDebriefSuggested) == []


def test_who_opted_out_gets_a_case_counted_but_no_outreach() -> None:
    outcome = after(
        None,
        Occasion.of_incident(IncidentReported.model_validate(incident_json())),
        opted_out={pseudonym("E12345")},
    )
    opened = of_type(outcome, SupportCaseOpened)
    opted_out = {c.colleague.pseudonym: c.opted_out for c in opened}
    assert opted_out == {salted(opened[0], "E12345"): True, salted(opened[1], "E23456"): False}
    assert len(outcome.contacts) == 1


def request(requested_by: str = "self") -> Occasion:
    event = hospital_event(
        "support.requested",
        occurred_at="2026-11-21T14:00:00+01:00",
        request_id="REQ-17",
        requested_by=requested_by,
        professional=participant("E12345"),
        message="I keep thinking about the patient in bed 4",
    )
    return Occasion.of_request(SupportRequested.model_validate(event))


def test_a_request_without_an_incident_opens_a_case() -> None:
    outcome = after(None, request())
    (case,) = of_type(outcome, SupportCaseOpened)
    assert case.profile.origin is CaseOrigin.REQUEST
    assert case.correlation_id == str(case.case_id)
    assert "bed 4" not in case.model_dump_json()
    assert after(outcome, request()).stale


def test_asking_oneself_overrides_an_earlier_opt_out_but_a_colleague_asking_does_not() -> None:
    out = {pseudonym("E12345")}
    (own,) = of_type(after(None, request("self"), opted_out=out), SupportCaseOpened)
    (for_them,) = of_type(after(None, request("colleague"), opted_out=out), SupportCaseOpened)
    assert not own.opted_out
    assert for_them.opted_out


def test_a_case_id_is_random_and_kept_through_the_incidents_revisions() -> None:
    """Nobody holding the pseudonym key can recompute whose case is whose; a revision finds
    each person's case in what intake recorded (until the incident settles)."""
    first = reconciled()
    opened = of_type(first, SupportCaseOpened)
    anew = of_type(reconciled(), SupportCaseOpened)
    assert not {c.case_id for c in opened} & {c.case_id for c in anew}
    regraded = of_type(after(first, update(2, harm="mild")), SupportCaseUpdated)
    assert [c.case_id for c in regraded] == [c.case_id for c in opened]
    assert regraded[0].correlation_id == str(opened[0].case_id)
