"""The coordinator's roster file: every bad row reported by line, nothing half-loaded."""

from pathlib import Path

from services.matching.roster import parse_roster

HEADER = (
    "supporter_id,hospital_id,staff_id,display_name,email,phone,language,function,department,"
    "seniority_years,birth_year,max_open_cases,active\n"
)
GOOD = "P1,ZH-A,E1,Anna de Vries,anna@zh-a.example,,nl,nurse,ICU,12,1985,4,true\n"


def test_the_seed_roster_is_valid() -> None:
    seed = Path(__file__).parents[2] / "deploy" / "seed" / "roster.csv"
    entries, errors = parse_roster(seed.read_text())
    assert errors == []
    assert len({e.hospital_id for e in entries}) == 3


def test_blank_optional_columns_are_missing_values() -> None:
    entries, errors = parse_roster(HEADER + GOOD.replace(",12,1985,", ",,,"))
    assert errors == []
    assert entries[0].phone is None
    assert entries[0].seniority_years is None


def test_every_bad_row_is_reported_with_its_line() -> None:
    text = (
        HEADER
        + GOOD
        + "P2,ZH-A,E2,Bram,not-an-email,,nl,nurse,ED,3,1990,4,true\n"
        + "P3,ZH-A,E3,Chantal,c@zh-a.example,,nl,surgeon,ED,3,1990,4,true\n"
        + GOOD
    )
    entries, errors = parse_roster(text)
    assert [(e.line, e.reason.split(":")[0]) for e in errors] == [
        (3, "1 contract violation(s)"),
        (4, "1 contract violation(s)"),
        (5, "supporter_id P1 already on line 2"),
    ]
    assert "email" in errors[0].reason
    assert "function" in errors[1].reason
    assert len(entries) == 1


def test_an_empty_roster_is_an_error() -> None:
    assert parse_roster(HEADER)[1][0].reason == "the roster has no supporters"
