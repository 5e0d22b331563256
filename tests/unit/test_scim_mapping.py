"""How a provisioned SCIM user becomes a directory entry: the work address, not the home one;
placeholders as unknown; a refusal that names the attribute to fix."""

from typing import Any

import pytest
from scim2_models import InvalidValueException

from services.intake.scim import StaffResource, provider, staff_member_of

STAFF = "urn:ietf:params:scim:schemas:extension:peersupport:2.0:Staff"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"


def user(**fields: Any) -> Any:
    payload = {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", ENTERPRISE, STAFF],
        "userName": "E1",
        "emails": [
            {"value": "anna@home.example", "type": "home", "primary": True},
            {"value": "a.jansen@zh-a.nl", "type": "work"},
        ],
        ENTERPRISE: {"department": "ICU"},
        STAFF: {"function": "nurse"},
        **fields,
    }
    with provider():
        return StaffResource.model_validate(payload)


def test_the_work_address_is_taken_over_a_primary_home_one() -> None:
    assert staff_member_of("ZH-A", user(), None).email == "a.jansen@zh-a.nl"


def test_a_home_address_alone_is_no_work_address() -> None:
    home_only = user(emails=[{"value": "anna@home.example", "type": "home"}])
    with pytest.raises(InvalidValueException, match="emails: required"):
        staff_member_of("ZH-A", home_only, None)


def test_placeholder_years_are_kept_as_unknown() -> None:
    member = staff_member_of(
        "ZH-A", user(**{STAFF: {"function": "nurse", "birthYear": 9999, "seniorityYears": 7}}), None
    )
    assert (member.birth_year, member.seniority_years) == (None, 7)


def test_a_refusal_names_the_scim_attribute() -> None:
    with pytest.raises(InvalidValueException) as refused:
        staff_member_of(
            "ZH-A", user(userName="a.jansen@zh-a.nl", **{STAFF: {"function": "x"}}), None
        )
    assert "userName: 'a.jansen@zh-a.nl' is not in the expected form" in str(refused.value)
    assert "function: one of nurse, physician" in str(refused.value)


def test_a_leaver_is_inactive() -> None:
    assert staff_member_of("ZH-A", user(active=False), None).active is False
