"""The coordinator's roster file: parsed and checked whole before anything is published.

One row per trained peer supporter. Lists inside a cell are separated by `;`, and an absence
is `first/last` (ISO dates, both days included). See the README for every column.
"""

from collections.abc import Mapping
from datetime import date, datetime
from typing import Any, Literal, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from shared.events import (
    Absence,
    Code,
    Department,
    Email,
    Envelope,
    Function,
    HospitalId,
    LanguageCode,
    Phone,
    RosterChange,
    SupporterContact,
    SupporterDeactivated,
    SupporterProfile,
    SupporterReachable,
    SupporterRegistered,
    SupporterUpdated,
    Weekday,
    derived_event_id,
)
from shared.pseudonyms import PseudonymKeys
from shared.rows import RowError, RowFile, split_cell
from shared.settings import Topics

PRODUCER = "roster-import"
COLUMNS = (
    "supporter_id",
    "hospital_id",
    "staff_id",
    "display_name",
    "email",
    "phone",
    "language",
    "channel",
    "languages",
    "function",
    "department",
    "team",
    "seniority_years",
    "birth_year",
    "trained_on",
    "max_open_cases",
    "available_days",
    "absences",
    "active",
)
REQUIRED_COLUMNS = ("supporter_id", "hospital_id", "staff_id", "display_name", "email",
                    "function", "department")  # fmt: skip


class RosterEntry(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)

    supporter_id: Code
    hospital_id: HospitalId
    staff_id: Code
    display_name: str = Field(min_length=1, max_length=100)
    email: Email
    phone: Phone | None = None
    language: LanguageCode = "nl"
    channel: Literal["email", "sms"] = "email"
    languages: list[LanguageCode] = Field(default_factory=list, max_length=10)
    function: Function
    department: Department
    team: Code | None = None
    seniority_years: int | None = Field(default=None, ge=0, le=60)
    birth_year: int | None = Field(default=None, ge=1930, le=2015)
    trained_on: date | None = None
    max_open_cases: int = Field(default=3, ge=1, le=50)
    available_days: list[Weekday] = Field(default_factory=list)
    absences: list[Absence] = Field(default_factory=list, max_length=50)
    active: bool = True

    @field_validator(
        "phone",
        "team",
        "seniority_years",
        "birth_year",
        "trained_on",
        "active",
        mode="before",
    )
    @classmethod
    def _blank_is_missing(cls, value: object) -> object:
        return None if value == "" else value

    @field_validator("active", mode="after")
    @classmethod
    def _missing_is_active(cls, value: bool | None) -> bool:
        return True if value is None else value

    @field_validator("channel", mode="before")
    @classmethod
    def _missing_is_email(cls, value: object) -> object:
        return value or "email"

    @model_validator(mode="after")
    def _sms_needs_a_phone(self) -> Self:
        if self.channel == "sms" and self.phone is None:
            raise ValueError("channel sms needs a phone number")
        return self

    @field_validator("languages", "available_days", mode="before")
    @classmethod
    def _split(cls, value: object) -> object:
        return split_cell(value)

    @field_validator("absences", mode="before")
    @classmethod
    def _periods(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        periods = []
        for period in filter(None, (p.strip() for p in value.split(";"))):
            first, _, last = period.partition("/")
            periods.append({"first_day": first.strip(), "last_day": (last or first).strip()})
        return periods

    def profile(self, keys: PseudonymKeys) -> SupporterProfile:
        """The supporter as matching keeps them: the staff id only as its pseudonyms (under
        each key in use), which is how matching recognises a supporter among the staff
        involved in an incident."""
        fields = self.model_dump(exclude={"staff_id", "active"})
        if not self.languages:
            fields["languages"] = [self.language]
        pseudonyms = keys.every(self.hospital_id, self.staff_id)
        return SupporterProfile(**fields, pseudonym=pseudonyms[keys.key_id], pseudonyms=pseudonyms)


ROSTER_FILE = RowFile(COLUMNS, REQUIRED_COLUMNS, "supporter_id", "the roster has no supporters")


def parse_roster(text: str) -> tuple[list[RosterEntry], list[RowError]]:
    """All entries, or every row's error by its line number in the file."""
    return ROSTER_FILE.parse(text, RosterEntry)


def roster_changes(
    entries: list[RosterEntry],
    current: Mapping[str, tuple[SupporterProfile, bool]],
    keys: PseudonymKeys,
    at: datetime,
) -> list[RosterChange]:
    """The events that turn the current roster into the file's: registrations, updates and
    deactivations, none for a supporter the file leaves as they are. Supporters missing from
    the file are left alone: a file may cover one hospital only."""
    changes: list[RosterChange] = []
    for entry in entries:
        profile = entry.profile(keys)
        known = current.get(entry.supporter_id)
        envelope = _envelope(entry, at)
        if not entry.active:
            if known and known[1]:
                changes.append(
                    SupporterDeactivated(
                        event_id=_event_id("deactivated", profile, at),
                        supporter_id=entry.supporter_id,
                        **envelope,
                    )
                )
        elif known is None:
            changes.append(
                SupporterRegistered(
                    event_id=_event_id("registered", profile, at), supporter=profile, **envelope
                )
            )
        elif known != (profile, True):
            changes.append(
                SupporterUpdated(
                    event_id=_event_id("updated", profile, at), supporter=profile, **envelope
                )
            )
    return changes


def publications(changes: list[RosterChange], topics: Topics) -> list[tuple[str, Envelope]]:
    """Each change on the roster's topic, for matching; how to reach each supporter registered
    or updated on the contacts' topic, for notify, which so reads no pseudonym."""
    published: list[tuple[str, Envelope]] = []
    for change in changes:
        published.append((topics.roster, change))
        if isinstance(change, SupporterRegistered | SupporterUpdated):
            contact = SupporterContact.model_validate(change.supporter.model_dump())
            reachable = SupporterReachable(
                event_id=derived_event_id("reachable", change.event_id),
                occurred_at=change.occurred_at,
                producer=change.producer,
                correlation_id=change.correlation_id,
                hospital_id=change.hospital_id,
                supporter=contact,
            )
            published.append((topics.roster_contacts, reachable))
    return published


def standing_change(profile: SupporterProfile, active: bool, at: datetime) -> RosterChange:
    """A coordinator deactivates or reactivates a supporter from the desk: the same events
    the CSV import publishes, so matching and the import keep one truth."""
    envelope = {
        "occurred_at": at,
        "producer": "coordinator-desk",
        "correlation_id": profile.supporter_id,
        "hospital_id": profile.hospital_id,
    }
    if not active:
        event_id = _event_id("deactivated", profile, at)
        return SupporterDeactivated(
            event_id=event_id, supporter_id=profile.supporter_id, **envelope
        )
    return SupporterUpdated(
        event_id=_event_id("updated", profile, at), supporter=profile, **envelope
    )


def _event_id(change: str, profile: SupporterProfile, at: datetime) -> Any:
    return derived_event_id("roster", change, profile.supporter_id, at.isoformat())


def _envelope(entry: RosterEntry, at: datetime) -> dict[str, Any]:
    return {
        "occurred_at": at,
        "producer": PRODUCER,
        "correlation_id": entry.supporter_id,
        "hospital_id": entry.hospital_id,
    }


def key_refusal(loaded_with: str | None, keys: PseudonymKeys) -> str | None:
    """Why these keys may not load the roster: none of them is the one it was loaded with.
    Loading would change every supporter's pseudonym, and "never support an incident you
    were involved in" compares them with intake's. Loading with a new key while the roster's
    is among those it replaced is a rotation: every supporter is announced again with
    pseudonyms under both."""
    if loaded_with is None or loaded_with in keys.by_id():
        return None
    return (
        f"PSEUDONYM_KEY is not the key this roster was loaded with (fingerprint {keys.key_id}, "
        f"the roster's {loaded_with}), nor among PSEUDONYM_KEYS_RETIRED: use the keys intake "
        "uses; nothing loaded"
    )
