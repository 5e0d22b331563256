"""The hospital's staff directory as intake keeps it: who someone is and how to reach them at
work, as the hospital's identity system says. Pure, no I/O.

It is what ties a staff id to an address: the request page confirms only at the address the
directory holds for a staff id, and tells that address when the person's standing choice
changes; an incident's contact details are used only for someone the directory does not know
(agency staff, students)."""

from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from shared.events import (
    Code,
    Contact,
    Email,
    Function,
    HospitalId,
    LanguageCode,
    Participant,
    Phone,
)
from shared.rows import RowError, RowFile, split_cell

COLUMNS = (
    "hospital_id",
    "staff_id",
    "email",
    "phone",
    "function",
    "department",
    "team",
    "line_manager_staff_id",
    "seniority_years",
    "birth_year",
    "languages",
    "active",
)
SENIORITY_YEARS = (0, 60)
BIRTH_YEARS = (1930, 2015)
DIRECTORY_FILE = RowFile(
    COLUMNS,
    ("hospital_id", "staff_id", "email", "function", "department"),
    "staff",
    "the directory has nobody in it",
)


class StaffMember(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)

    hospital_id: HospitalId
    staff_id: Code
    email: Email
    """Their work address: where confirmations and notices about their choices go."""
    phone: Phone | None = None
    function: Function
    department: Code
    team: Code | None = None
    line_manager_staff_id: Code | None = None
    seniority_years: int | None = Field(default=None, ge=SENIORITY_YEARS[0], le=SENIORITY_YEARS[1])
    birth_year: int | None = Field(default=None, ge=BIRTH_YEARS[0], le=BIRTH_YEARS[1])
    languages: Annotated[list[LanguageCode], BeforeValidator(split_cell)] = Field(
        default_factory=list, max_length=10
    )
    active: bool = True
    """A leaver stays listed as inactive: no confirmation reaches their old address."""

    @property
    def staff(self) -> str:
        """Staff ids are unique within a hospital only."""
        return f"{self.hospital_id}/{self.staff_id}"

    @property
    def contact(self) -> Contact:
        return Contact(email=self.email, phone=self.phone)

    def as_participant(self) -> Participant:
        """As a request names the professional it is for: from the directory, not the form."""
        return Participant(
            staff_id=self.staff_id,
            function=self.function,
            department=self.department,
            team=self.team,
            line_manager_staff_id=self.line_manager_staff_id,
            seniority_years=self.seniority_years,
            birth_year=self.birth_year,
            languages=self.languages,
            contact=self.contact,
        )


def parse_directory(text: str) -> tuple[list[StaffMember], list[RowError]]:
    """Everyone in the file, or every row's error by its line number."""
    return DIRECTORY_FILE.parse(text, StaffMember)


def reached_as_known(participant: Participant, known: StaffMember | None) -> Participant:
    """How an incident's participant is reached: at the directory's address when the directory
    knows them, whatever the incident said; by the incident's contact details only when it
    does not (agency staff, students)."""
    if known is None or not known.active:
        return participant
    return participant.model_copy(update={"contact": known.contact})
