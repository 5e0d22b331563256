"""The coordinator's roster file: parsed and checked whole before anything is loaded.

CSV columns: supporter_id, hospital_id, staff_id, display_name, email, phone, language,
function, department, seniority_years, birth_year, max_open_cases, active.
"""

import csv
import io
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from shared.errors import describe
from shared.events import Code, Department, Email, Function, HospitalId, LanguageCode, Phone


class RosterEntry(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)

    supporter_id: Code
    hospital_id: HospitalId
    staff_id: Code
    display_name: str = Field(min_length=1, max_length=100)
    email: Email
    phone: Phone | None = None
    language: LanguageCode = "nl"
    function: Function
    department: Department
    seniority_years: int | None = Field(default=None, ge=0, le=60)
    birth_year: int | None = Field(default=None, ge=1930, le=2015)
    max_open_cases: int = Field(default=3, ge=1, le=50)
    active: bool = True

    @field_validator("phone", "seniority_years", "birth_year", mode="before")
    @classmethod
    def _blank_is_missing(cls, value: object) -> object:
        return None if value == "" else value


@dataclass(frozen=True)
class RowError:
    line: int
    reason: str


def parse_roster(text: str) -> tuple[list[RosterEntry], list[RowError]]:
    """All entries, or every row's error by its line number in the file."""
    entries: list[RosterEntry] = []
    errors: list[RowError] = []
    seen: dict[str, int] = {}
    reader = csv.DictReader(io.StringIO(text))
    for row in reader:
        line = reader.line_num
        try:
            entry = RosterEntry.model_validate(row)
        except ValidationError as error:
            errors.append(RowError(line, describe(error)))
            continue
        if entry.supporter_id in seen:
            errors.append(
                RowError(
                    line,
                    f"supporter_id {entry.supporter_id} already on line {seen[entry.supporter_id]}",
                )
            )
            continue
        seen[entry.supporter_id] = line
        entries.append(entry)
    if not entries and not errors:
        errors.append(RowError(1, "the roster has no supporters"))
    return entries, errors
