"""reporting's settings: what cells are split by, how small a row may be shown, releases,
snapshots."""

from datetime import timedelta
from typing import Annotated

from pydantic import Field, field_validator
from pydantic_settings import NoDecode

from services.reporting.aggregates import DIMENSIONS, TO_FIRST_CONTACT
from shared.settings import PagesSettings

SERVICE = "reporting"


class ReportingSettings(PagesSettings):
    http_port: int = 8080
    min_cell_size: int = Field(default=11, ge=5)
    """Cells with fewer cases are suppressed; never below 5."""
    batch_max_records: int = Field(default=500, ge=1)
    counted_event_retention_days: int = Field(default=35, ge=1)
    """Keep at least as long as the topics keep events, or a late redelivery counts twice."""
    snapshot_seconds: float = Field(default=30.0, ge=0)
    """Analysts' answers come from a snapshot of the released cells at most this old."""
    release_delay: timedelta = Field(default=timedelta(days=7), ge=timedelta(0))
    """A hospital's month is released this long (ISO 8601, e.g. `P7D`) after it closed, or
    after its first event was counted if later; then only corrected, by at least
    `MIN_CELL_SIZE` cases at a time."""
    release_scan_seconds: float = Field(default=60.0, gt=0)
    """How often reporting looks for a release or correction due."""
    first_contact_target: timedelta = timedelta(hours=72)
    """The programme's target for a first contact (ISO 8601, e.g. `PT72H`), in whole days:
    rows show how many first contacts met it and their share of the accepted cases."""
    reporting_dimensions: Annotated[list[str], NoDecode] = Field(default=list(DIMENSIONS))
    """What cells are split by besides the month, comma-separated; fewer dimensions give
    larger cells, so fewer are hidden. Changing it needs a rebuild of the aggregates."""

    @field_validator("first_contact_target")
    @classmethod
    def _target_in_days_counted(cls, value: timedelta) -> timedelta:
        if value % timedelta(days=1) or value.days not in TO_FIRST_CONTACT.bounds:
            days = ", ".join(f"P{d}D" for d in TO_FIRST_CONTACT.bounds)
            raise ValueError(f"the target must be one of the days counted: {days}")
        return value

    @property
    def first_contact_target_days(self) -> int:
        return self.first_contact_target.days

    @field_validator("reporting_dimensions", mode="before")
    @classmethod
    def _dimension_list(cls, value: object) -> object:
        if isinstance(value, str):
            value = [d.strip() for d in value.split(",") if d.strip()]
        if isinstance(value, list) and (unknown := set(value) - set(DIMENSIONS)):
            raise ValueError(f"unknown dimension(s) {sorted(unknown)}; choose from {DIMENSIONS}")
        if isinstance(value, list) and "hospital_id" not in value:
            raise ValueError("hospital_id is needed: a hospital's token reads its own cells")
        return value
