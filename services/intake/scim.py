"""The staff directory as hospitals' identity systems provision it: SCIM 2.0 (RFC 7643/7644),
which Entra ID and Okta speak. Pure, no I/O.

The User schema published here is cut down to what the directory keeps, so an identity system
cannot hand intake more about a clinician than the programme needs (no name, home address,
photo or birthday): `userName` is the staff id incidents name, the enterprise extension gives
the department and line manager, and peer-support's own extension the function, team,
seniority, birth year and languages matching weighs."""

from collections.abc import Sequence
from typing import Annotated, Any

from pydantic import Field, ValidationError
from scim2_models import (
    URN,
    AnyExtension,
    AuthenticationScheme,
    Bulk,
    ChangePassword,
    ComplexAttribute,
    ETag,
    Extension,
    Filter,
    InvalidValueException,
    Patch,
    Required,
    Resource,
    ResourceType,
    ScimPolicy,
    ScimProvider,
    ServiceProviderConfig,
    Sort,
    Uniqueness,
)

from services.intake.directory import BIRTH_YEARS, SENIORITY_YEARS, StaffMember
from shared.events import Function

MAX_RESULTS = 200


class WorkEmail(ComplexAttribute):
    value: Annotated[str | None, Required.true] = None
    type: str | None = Field(default=None, examples=["work"])
    primary: bool | None = None


class WorkPhone(ComplexAttribute):
    value: Annotated[str | None, Required.true] = Field(
        default=None, examples=["+31205550000", "+31612345678"]
    )
    """In international form: the directory keeps numbers a phone can dial from anywhere."""
    type: str | None = Field(default=None, examples=["work", "mobile"])
    primary: bool | None = None


class StaffUser(Resource[AnyExtension]):
    """A staff member as SCIM names them: only the attributes the directory keeps."""

    __schema__ = URN("urn:ietf:params:scim:schemas:core:2.0:User")

    user_name: Annotated[str | None, Uniqueness.server, Required.true] = None
    """The staff id incidents name (map the personnel number to it)."""
    active: bool | None = None
    emails: Annotated[list[WorkEmail] | None, Required.true] = None
    phone_numbers: list[WorkPhone] | None = None


class LineManager(ComplexAttribute):
    value: Annotated[str | None, Required.true] = None
    """The SCIM id of the manager's own User."""


class EnterpriseStaff(Extension):
    """RFC 7643's enterprise extension, cut down to the two attributes the directory keeps."""

    __schema__ = URN("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User")

    department: Annotated[str | None, Required.true] = None
    """The department's code, as incidents name it."""
    manager: LineManager | None = None


class PeerSupportStaff(Extension):
    """What matching weighs for a good match, beyond RFC 7643's attributes."""

    __schema__ = URN("urn:ietf:params:scim:schemas:extension:peersupport:2.0:Staff")

    function: Annotated[str | None, Required.true] = Field(
        default=None, examples=[str(function) for function in Function]
    )
    team: str | None = None
    seniority_years: int | None = None
    """Years in the profession; a number no career spans is kept as unknown."""
    birth_year: int | None = None
    """A year no working clinician was born in is kept as unknown."""
    languages: list[str] | None = Field(default=None, examples=["nl", "en"])


StaffResource = StaffUser.__class_getitem__(
    Annotated[EnterpriseStaff, Required.true] | Annotated[PeerSupportStaff, Required.true]
)
"""Both extensions are required: they hold the department and the function."""


def provider() -> ScimProvider:
    """What `/ServiceProviderConfig`, `/Schemas` and `/ResourceTypes` publish. Attributes
    outside the published schemas (an identity system's default mappings send names and
    titles) are dropped unread rather than refused; PATCH is read as Entra ID writes it."""
    user_type = ResourceType.from_resource(StaffResource)
    return ScimProvider(
        models=[StaffUser, EnterpriseStaff, PeerSupportStaff],
        resource_types=[user_type],
        policy=ScimPolicy(
            unknown=ScimPolicy.Unknown.ignore,
            remove_value_as_filter=ScimPolicy.RemoveValue.apply,
            unmatched_path_filter=ScimPolicy.UnmatchedPathFilter.create,
        ),
        config=ServiceProviderConfig(
            patch=Patch(supported=True),
            bulk=Bulk(supported=False, max_operations=0, max_payload_size=0),
            filter=Filter(supported=True, max_results=MAX_RESULTS),
            change_password=ChangePassword(supported=False),
            sort=Sort(supported=False),
            etag=ETag(supported=False),
            authentication_schemes=[
                AuthenticationScheme(
                    type=AuthenticationScheme.Type.oauthbearertoken,
                    name="Provisioning token",
                    description="A token per hospital: `python -m services.intake.cli token`.",
                )
            ],
        ),
    )


def staff_member_of(
    hospital_id: str, user: StaffUser[Any], line_manager_staff_id: str | None
) -> StaffMember:
    """The directory's entry for a provisioned user; a value the directory cannot keep is
    refused with the attribute it came from, so the identity system's log says what to fix."""
    enterprise = user[EnterpriseStaff] or EnterpriseStaff()
    staff = user[PeerSupportStaff] or PeerSupportStaff()
    fields = {
        "hospital_id": hospital_id,
        "staff_id": user.user_name,
        "email": _chosen(user.emails, "work"),
        "phone": _chosen(user.phone_numbers, "work", "mobile"),
        "function": staff.function,
        "department": enterprise.department,
        "team": staff.team,
        "line_manager_staff_id": line_manager_staff_id,
        "seniority_years": _plausible(staff.seniority_years, SENIORITY_YEARS),
        "birth_year": _plausible(staff.birth_year, BIRTH_YEARS),
        "languages": staff.languages or [],
        "active": user.active is not False,
    }
    try:
        return StaffMember.model_validate(fields)
    except ValidationError as error:
        raise InvalidValueException(detail=_in_scim_words(error)) from None


def _plausible(number: int | None, bounds: tuple[int, int]) -> int | None:
    """Identity systems fill unknown numbers with placeholders (0, 1900, 9999): those say
    nothing, and matching does better without them than refusing the person."""
    low, high = bounds
    return number if number is not None and low <= number <= high else None


def _chosen(offered: Sequence[WorkEmail] | Sequence[WorkPhone] | None, *types: str) -> str | None:
    """The primary value of the first type that has one, else any of that type, else the
    primary, else the first: a home address is taken only when nothing says work."""
    values: list[WorkEmail | WorkPhone] = [value for value in offered or [] if value.value]
    for kind in types:
        typed = [value for value in values if (value.type or "").casefold() == kind]
        if typed:
            return next((v for v in typed if v.primary), typed[0]).value
    untyped = [value for value in values if not value.type]
    return next((v.value for v in values if v.primary), untyped[0].value if untyped else None)


SCIM_NAMES = {
    "staff_id": "userName",
    "email": "emails",
    "phone": "phoneNumbers",
    "function": "function",
    "department": "department",
    "team": "team",
    "line_manager_staff_id": "manager",
    "seniority_years": "seniorityYears",
    "birth_year": "birthYear",
    "languages": "languages",
}


def _in_scim_words(error: ValidationError) -> str:
    """Each problem by the SCIM attribute it came from."""
    problems = []
    for problem in error.errors():
        field = str(problem["loc"][0]) if problem["loc"] else ""
        name = SCIM_NAMES.get(field, field)
        problems.append(f"{name}: {_plain(problem)}")
    return "; ".join(problems)


def _plain(problem: object) -> str:
    detail = problem if isinstance(problem, dict) else {}
    if detail.get("type") == "missing" or detail.get("input") is None:
        return "required"
    if detail.get("type") == "enum":
        return "one of " + ", ".join(str(function) for function in Function)
    if detail.get("type") == "string_pattern_mismatch":
        return f"{detail.get('input')!r} is not in the expected form"
    return str(detail.get("msg", "not valid"))
