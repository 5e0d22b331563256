"""The staff directory file a hospital without SCIM provisions intake with: checked whole,
every row's error by line; staff ids unique within a hospital, not across hospitals."""

from services.intake.directory import parse_directory, reached_as_known
from shared.events import Participant
from tests.factories import participant, staff_member

HEADER = "hospital_id,staff_id,email,phone,function,department,languages,active\n"


def test_a_directory_file_lists_each_hospitals_staff() -> None:
    text = HEADER + (
        "ZH-A,E1,e1@zh-a.example,+31612345678,nurse,ICU,nl;en,\n"
        "ZH-B,E1,e1@zh-b.example,,physician,ED,,false\n"
    )
    members, errors = parse_directory(text)
    assert errors == []
    first, second = members
    assert (first.staff, first.languages, first.active) == ("ZH-A/E1", ["nl", "en"], True)
    assert (second.staff, second.phone, second.active) == ("ZH-B/E1", None, False)


def test_every_row_error_is_told_by_its_line() -> None:
    text = HEADER + (
        "ZH-A,E1,not-an-address,,nurse,ICU,,\n"
        "ZH-A,E2,e2@zh-a.example,0612345678,nurse,ICU,,\n"
        "ZH-A,E3,e3@zh-a.example,,nurse,ICU,,\n"
        "ZH-A,E3,e3b@zh-a.example,,nurse,ICU,,\n"
    )
    members, errors = parse_directory(text)
    assert [m.staff for m in members] == ["ZH-A/E3"], "the good row, which the load refuses too"
    assert [error.line for error in errors] == [2, 3, 5]
    assert "email" in errors[0].reason
    assert "phone" in errors[1].reason
    assert errors[2].reason == "staff ZH-A/E3 already on line 4"
    missing, refused = parse_directory("hospital_id,staff_id\nZH-A,E1\n")
    assert (missing, refused[0].reason) == ([], "missing column(s): email, function, department")


def test_the_directorys_address_wins_over_the_incidents_for_active_staff_only() -> None:
    member = staff_member("E12345", email="e12345@mail.zh-a.example")
    involved = Participant.model_validate(participant("E12345"))
    assert reached_as_known(involved, member).contact == member.contact
    assert reached_as_known(involved, None) == involved, "agency staff: as the incident says"
    left = member.model_copy(update={"active": False})
    assert reached_as_known(involved, left) == involved
