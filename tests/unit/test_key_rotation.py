"""Rotating the pseudonym key: a case keeps the key it was opened with, intake still knows
who is in an incident recorded before the rotation, and matching still tells a supporter
involved in it, until the retired key is dropped."""

import secrets
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import structlog
from pydantic import ValidationError

from services.intake.cases import IntakePolicy, Occasion, Reconciled, reconcile
from services.intake.intake import Intake
from services.intake.settings import IntakeSettings
from services.matching.policy import Policy, Refusal, excludes, rank
from services.matching.roster import key_refusal, parse_roster, roster_changes
from shared.events import (
    IncidentReported,
    IncidentUpdated,
    OutreachPreferenceSet,
    SupportCaseClosed,
    SupportCaseOpened,
    SupportCaseUpdated,
)
from shared.pseudonyms import PseudonymKeys, key_fingerprint, tagged
from shared.settings import Topics
from tests.factories import (
    NOW,
    case_to_match,
    incident_json,
    outreach_choice_json,
    participant,
    supporter,
)
from tests.fakes import (
    FakeIncidentRecords,
    FakePreferences,
    FakeStaffDirectory,
    FakeUnitOfWork,
    FakeWaitingContacts,
)
from tests.unit.test_roster_file import GOOD, HEADER

OLD = b"old-pseudonym-key-0123456789abcdef"
NEW = b"new-pseudonym-key-fedcba9876543210"
BEFORE = PseudonymKeys(OLD)
AFTER = PseudonymKeys(NEW, (OLD,))
LATER = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)


def reported(keys: PseudonymKeys, revision: int = 0, **changes: Any) -> Reconciled:
    event = incident_json(event_type="incident.updated", revision=revision, **changes)
    occasion = Occasion.of_incident(IncidentUpdated.model_validate(event))
    return reconcile(None, occasion, keys, set(), IntakePolicy(), NOW)


def revised(first: Reconciled, keys: PseudonymKeys, **changes: Any) -> Reconciled:
    event = incident_json(event_type="incident.updated", revision=2, **changes)
    occasion = Occasion.of_incident(IncidentUpdated.model_validate(event))
    return reconcile(first.record, occasion, keys, set(), IntakePolicy(), LATER)


def opened(outcome: Reconciled) -> list[SupportCaseOpened]:
    return [e for e in outcome.cases if isinstance(e, SupportCaseOpened)]


def test_keys_are_named_by_fingerprint_todays_first() -> None:
    assert AFTER.key_id == key_fingerprint(NEW)
    assert list(AFTER.by_id()) == [key_fingerprint(NEW), key_fingerprint(OLD)]
    every = AFTER.every("ZH-A", "E1")
    assert list(every.values()) == [AFTER.of("ZH-A", "E1"), BEFORE.of("ZH-A", "E1")]


def test_a_case_keeps_the_key_it_was_opened_with_after_a_rotation() -> None:
    first = reported(BEFORE)
    assert {c.exclusions.key_id for c in opened(first)} == {BEFORE.key_id}
    people = [participant("E12345"), participant("E23456", "ED"), participant("E34567", "OR")]
    after = revised(first, AFTER, participants=people)
    (new,) = opened(after)
    assert new.exclusions.key_id == AFTER.key_id, "a case opened now is made with today's key"
    updated = [e for e in after.cases if isinstance(e, SupportCaseUpdated)]
    assert len(updated) == 2, "the two colleagues are recognised, not opened again"
    for update in updated:
        assert update.exclusions.key_id == BEFORE.key_id
        newcomer = tagged(update.exclusions.salt, BEFORE.of("ZH-A", "E34567"))
        assert newcomer in update.exclusions.involved_pseudonyms
    salts = {c.case_id: c.exclusions.salt for c in opened(first)}
    assert {u.case_id: u.exclusions.salt for u in updated} == salts


def test_a_colleague_removed_after_a_rotation_has_their_case_closed() -> None:
    first = reported(BEFORE)
    after = revised(first, AFTER, participants=[participant("E12345")])
    (closed,) = [e for e in after.cases if isinstance(e, SupportCaseClosed)]
    assert closed.case_id == opened(first)[1].case_id
    assert opened(after) == []


def test_matching_tells_a_supporter_involved_in_a_case_of_the_old_key() -> None:
    case = case_to_match(opened(reported(BEFORE, participants=[participant("E12345")]))[0])
    today = AFTER.of("ZH-A", "E12345")
    rekeyed = supporter("P1", pseudonym=today, pseudonyms=AFTER.every("ZH-A", "E12345"))
    assert excludes(case.exclusions, rekeyed, Policy())
    assert rank(case, [rekeyed], Policy(), NOW).refusals == {Refusal.INVOLVED: 1}
    # Loaded before the rotation was: known by today's pseudonym only, which is not the case's.
    only_new = supporter("P1", pseudonym=today, pseudonyms={AFTER.key_id: today})
    assert rank(case, [only_new], Policy(), NOW).refusals == {Refusal.KEY_UNKNOWN: 1}
    assert excludes(case.exclusions, only_new, Policy())


def test_loading_the_roster_with_the_new_key_rekeys_every_supporter() -> None:
    entries, errors = parse_roster(HEADER + GOOD)
    assert errors == []
    (entry,) = entries
    before = entry.profile(BEFORE)
    after = entry.profile(AFTER)
    assert after.pseudonyms == AFTER.every("ZH-A", "E1")
    assert after.pseudonyms[BEFORE.key_id] == before.pseudonym
    (change,) = roster_changes(entries, {"P1": (before, True)}, AFTER, NOW)
    assert change.event_type == "supporter.updated"


def test_a_roster_is_loaded_only_with_its_key_or_the_key_that_replaced_it() -> None:
    assert key_refusal(None, BEFORE) is None
    assert key_refusal(BEFORE.key_id, BEFORE) is None
    assert key_refusal(BEFORE.key_id, AFTER) is None, "a rotation"
    refusal = key_refusal(BEFORE.key_id, PseudonymKeys(NEW))
    assert refusal is not None
    assert "nothing loaded" in refusal


def test_retired_keys_come_from_the_environment_or_a_file_and_must_be_strong(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    today, old = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    keys = IntakeSettings(pseudonym_key=today, pseudonym_keys_retired=[old]).pseudonym_keys()
    assert keys == PseudonymKeys(today.encode(), (old.encode(),))
    retired = tmp_path / "retired"
    retired.write_text(f'["{old}"]\n')
    monkeypatch.setenv("PSEUDONYM_KEY", today)
    monkeypatch.setenv("PSEUDONYM_KEYS_RETIRED_FILE", str(retired))
    assert IntakeSettings().pseudonym_keys() == keys
    with pytest.raises(ValidationError, match="too predictable"):
        IntakeSettings(pseudonym_key=today, pseudonym_keys_retired=["aaaaaaaaaaaaaaaaaaaa"])


def intake_with(keys: PseudonymKeys, preferences: FakePreferences) -> tuple[Intake, FakeUnitOfWork]:
    unit_of_work = FakeUnitOfWork(NOW)
    intake = Intake(
        unit_of_work,
        FakeIncidentRecords(),
        preferences,
        FakeWaitingContacts(),
        IntakePolicy(),
        keys,
        Topics(),
        structlog.get_logger("test"),
        timedelta(days=180),
        FakeStaffDirectory(),
    )
    return intake, unit_of_work


def choice(outreach: str, at: datetime) -> OutreachPreferenceSet:
    return OutreachPreferenceSet.model_validate(
        outreach_choice_json("E12345", outreach, occurred_at=at)
    )


async def test_a_choice_made_before_a_rotation_still_holds_and_moves_to_the_new_key() -> None:
    preferences = FakePreferences()
    before, _ = intake_with(BEFORE, preferences)
    await before.on_staff_message(choice("declined", NOW))
    after, unit_of_work = intake_with(AFTER, preferences)
    await after.on_incident(IncidentReported.model_validate(incident_json()))
    declined = {e.opted_out for e in unit_of_work.events(SupportCaseOpened)}
    assert declined == {True, False}, "the colleague who declined is still not approached"

    await after.on_staff_message(choice("welcome", LATER))
    assert set(preferences.made) == {AFTER.of("ZH-A", "E12345")}, "nothing under the old key"
    again, unit_of_work = intake_with(AFTER, preferences)
    await again.on_incident(IncidentReported.model_validate(incident_json("INC-2")))
    assert {e.opted_out for e in unit_of_work.events(SupportCaseOpened)} == {False}
