"""matching's settings: the score's weights, the hard rules' parameters, deadlines, the clock
and the coordinator desk's targets."""

from datetime import timedelta

from pydantic import Field

from services.matching.desk import Targets
from services.matching.policy import DepartmentRule, Policy, Weights
from shared.settings import ErasureSettings, ExclusionSettings, PagesSettings

SERVICE = "matching"


class MatchingSettings(PagesSettings, ErasureSettings, ExclusionSettings):
    http_port: int = 8082
    weight_function: float = Field(default=3.0, ge=0)
    weight_seniority: float = Field(default=2.0, ge=0)
    weight_age: float = Field(default=1.0, ge=0)
    weight_load: float = Field(default=2.0, ge=0)
    weight_waited: float = Field(default=1.0, ge=0)
    weight_department: float = Field(default=2.0, ge=0)
    department_rules: dict[str, DepartmentRule] = Field(default_factory=dict)
    """Per hospital, e.g. `{"UMC-C": "prefer"}`; others follow `default_department_rule`."""
    default_department_rule: DepartmentRule = DepartmentRule.AVOID
    large_incident: int = Field(default=5, ge=1)
    share_in_large_incident: int = Field(default=2, ge=1)
    timezone: str = "Europe/Amsterdam"
    urgent_response_seconds: float = Field(default=2 * 3600, gt=0)
    response_seconds: float = Field(default=24 * 3600, gt=0)
    answer_grace_seconds: float = Field(default=120, ge=0)
    """An offer expires this long after its deadline, so that an answer given at the last
    moment (notify takes none after it) still arrives first."""
    max_attempts: int = Field(default=3, ge=1)
    recent_window_days: int = Field(default=90, ge=1)
    """Cases a supporter carried this far back still weigh in their load."""
    recent_cases_full: int = Field(default=6, ge=1)
    scan_seconds: float = Field(default=15.0, gt=0)
    """How often overdue offers and waiting cases are looked at without other cause."""
    scan_batch: int = Field(default=50, ge=1)
    desk_target_urgent: timedelta = timedelta(hours=4)
    """How soon a coordinator should act on a worklist item after death, severe harm or a
    calamity (ISO 8601, e.g. `PT4H`)."""
    desk_target: timedelta = timedelta(hours=24)
    """How soon for any other item: UW Medicine triages every referral within a day."""
    first_contact_target: timedelta = timedelta(hours=72)
    """No first contact logged this long after the case opened puts it on the worklist."""
    refresher_after: timedelta = timedelta(days=730)
    """A supporter's refresher training is due this long after their training."""
    audit_kept: timedelta = timedelta(days=5 * 365)
    """How long the desk's audit log keeps each line (who did what, and the reason given)."""
    reopen_within: timedelta = timedelta(days=30)
    """A coordinator may reopen an ended case this long after its end; never past
    `PURGE_AFTER` (the shorter of the two counts), when nothing is left of it to reopen."""

    def reopen_window(self) -> timedelta:
        return min(self.reopen_within, self.purge_after)

    def targets(self) -> Targets:
        return Targets(
            urgent=self.desk_target_urgent,
            other=self.desk_target,
            first_contact=self.first_contact_target,
        )

    def policy(self) -> Policy:
        return Policy(
            weights=Weights(
                function=self.weight_function,
                seniority=self.weight_seniority,
                age=self.weight_age,
                load=self.weight_load,
                waited=self.weight_waited,
                department=self.weight_department,
            ),
            department_rules=self.department_rules,
            default_department_rule=self.default_department_rule,
            large_incident=self.large_incident,
            share_in_large_incident=self.share_in_large_incident,
            timezone=self.timezone,
            urgent_response=timedelta(seconds=self.urgent_response_seconds),
            response=timedelta(seconds=self.response_seconds),
            answer_grace=timedelta(seconds=self.answer_grace_seconds),
            max_attempts=self.max_attempts,
            recent_window=timedelta(days=self.recent_window_days),
            recent_cases_full=self.recent_cases_full,
            tag_key=self.tag_key(),
        )
