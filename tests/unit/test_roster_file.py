"""The coordinator's roster file: every bad row reported by line, nothing half-loaded, and
only what changed published."""

from datetime import UTC, date, datetime
from pathlib import Path

from services.matching.roster import COLUMNS, parse_roster, roster_changes
from shared.events import SupporterDeactivated, SupporterRegistered, SupporterUpdated, Weekday
from shared.pseudonyms import pseudonymise
from tests.factories import KEYS, PSEUDONYM_KEY

HEADER = ",".join(COLUMNS) + "\n"
GOOD = (
    "P1,ZH-A,E1,Anna de Vries,anna@zh-a.example,,nl,,nl;en,nurse,ICU,ICU-2,12,1985,2024-05-01,"
    "4,mon;tue;wed,2026-12-24/2027-01-02;2027-02-14,true\n"
)
NOW = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


def test_the_seed_roster_is_valid() -> None:
    seed = Path(__file__).parents[2] / "deploy" / "seed" / "roster.csv"
    entries, errors = parse_roster(seed.read_text())
    assert errors == []
    assert len({e.hospital_id for e in entries}) == 3


def test_a_full_row_reads_as_the_coordinator_wrote_it() -> None:
    (entry,), errors = parse_roster(HEADER + GOOD)
    assert errors == []
    assert entry.languages == ["nl", "en"]
    assert entry.team == "ICU-2"
    assert entry.trained_on == date(2024, 5, 1)
    assert entry.available_days == [Weekday.MON, Weekday.TUE, Weekday.WED]
    assert [(a.first_day, a.last_day) for a in entry.absences] == [
        (date(2026, 12, 24), date(2027, 1, 2)),
        (date(2027, 2, 14), date(2027, 2, 14)),
    ]
    profile = entry.profile(KEYS)
    assert profile.pseudonym == pseudonymise(PSEUDONYM_KEY, "ZH-A", "E1")
    assert "E1" not in profile.model_dump_json().replace("ICU", "")


def test_a_supporter_may_prefer_a_text_if_they_have_a_phone() -> None:
    texting = GOOD.replace(",,nl,,", ",+31612345678,nl,sms,")
    (entry,), errors = parse_roster(HEADER + texting)
    assert errors == []
    assert entry.profile(KEYS).channel == "sms"
    _, errors = parse_roster(HEADER + GOOD.replace(",,nl,,", ",,nl,sms,"))
    assert "channel sms needs a phone number" in errors[0].reason


def test_only_the_required_columns_are_needed() -> None:
    text = (
        "supporter_id,hospital_id,staff_id,display_name,email,function,department\n"
        "P1,ZH-A,E1,Anna,anna@zh-a.example,nurse,ICU\n"
    )
    (entry,), errors = parse_roster(text)
    assert errors == []
    assert entry.active
    assert entry.trained_on is None
    assert entry.profile(KEYS).languages == ["nl"]


def test_every_bad_row_is_reported_with_its_line() -> None:
    text = (
        HEADER
        + GOOD
        + GOOD.replace("P1,", "P2,").replace("anna@zh-a.example", "not-an-email")
        + GOOD.replace("P1,", "P3,").replace(",nurse,", ",surgeon,")
        + GOOD.replace("P1,", "P4,").replace("2026-12-24/2027-01-02", "2027-01-02/2026-12-24")
        + GOOD.replace("P1,", "P5,").replace("mon;tue;wed", "monday")
        + GOOD
    )
    entries, errors = parse_roster(text)
    assert [(e.line, e.reason.split(":")[0]) for e in errors] == [
        (3, "1 contract violation(s)"),
        (4, "1 contract violation(s)"),
        (5, "1 contract violation(s)"),
        (6, "1 contract violation(s)"),
        (7, "supporter_id P1 already on line 2"),
    ]
    assert "email" in errors[0].reason
    assert "function" in errors[1].reason
    assert "absence ends (2026-12-24) before it starts (2027-01-02)" in errors[2].reason
    assert "available_days" in errors[3].reason
    assert len(entries) == 1


def test_an_unknown_or_missing_column_is_an_error_of_the_header() -> None:
    assert parse_roster(HEADER.replace("team", "squad") + GOOD)[1][0].reason == (
        "unknown column(s): squad"
    )
    assert parse_roster("supporter_id,hospital_id\nP1,ZH-A\n")[1][0].reason.startswith(
        "missing column(s): staff_id, display_name, email"
    )


def test_an_empty_roster_is_an_error() -> None:
    assert parse_roster(HEADER)[1][0].reason == "the roster has no supporters"


def test_only_changes_are_published() -> None:
    entries, _ = parse_roster(
        HEADER
        + GOOD
        + GOOD.replace("P1,", "P2,").replace(",E1,", ",E2,")
        + GOOD.replace("P1,", "P3,").replace(",E1,", ",E3,").replace(",true\n", ",false\n")
        + GOOD.replace("P1,", "P4,").replace(",E1,", ",E4,")
    )
    profiles = {e.supporter_id: e.profile(KEYS) for e in entries}
    current = {
        "P1": (profiles["P1"], True),
        "P2": (profiles["P2"].model_copy(update={"max_open_cases": 2}), True),
        "P3": (profiles["P3"], True),
    }
    changes = roster_changes(entries, current, KEYS, NOW)
    assert [(type(c).__name__, c.correlation_id) for c in changes] == [
        (SupporterUpdated.__name__, "P2"),
        (SupporterDeactivated.__name__, "P3"),
        (SupporterRegistered.__name__, "P4"),
    ]
    applied = {**current, "P2": (profiles["P2"], True), "P3": (profiles["P3"], False)}
    applied["P4"] = (profiles["P4"], True)
    assert roster_changes(entries, applied, KEYS, NOW) == []
