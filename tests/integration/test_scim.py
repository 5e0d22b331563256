"""The staff directory provisioned as Entra ID and Okta provision it: SCIM 2.0 at
`/scim/v2`, a token per hospital. scim2-tester checks the endpoint against RFC 7643/7644; the
other tests check what the programme needs of it: whom it provisions is reached at the
directory's address, a leaver is not, and no hospital's token reaches another's staff."""

import asyncio
from datetime import UTC, datetime
from typing import Any

import httpx
import httpx2
import pytest
from scim2_client.engines.httpx2 import SyncSCIMClient
from scim2_tester import Status, check_server

from services.intake.directory_store import StaffDirectory
from shared.access import NETWORK
from shared.tokens import ApiTokens
from tests.integration.pipeline import Pipeline

pytestmark = pytest.mark.integration

USER = "urn:ietf:params:scim:schemas:core:2.0:User"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
STAFF = "urn:ietf:params:scim:schemas:extension:peersupport:2.0:Staff"
PASSED = {Status.SUCCESS, Status.COMPLIANT, Status.ACCEPTABLE, Status.SKIPPED}


async def provisioning_token(pipeline: Pipeline, scope: str) -> str:
    tokens = ApiTokens(pipeline.mongo[pipeline.database("intake")])
    return await tokens.issue(scope, "identity system", datetime.now(UTC))


def provisioned(staff_id: str, **fields: Any) -> dict[str, Any]:
    """A user as Entra ID sends one with its default mappings: a name and a title too."""
    return {
        "schemas": [USER, ENTERPRISE, STAFF],
        "userName": staff_id,
        "name": {"givenName": "Anna", "familyName": "Jansen"},
        "title": "Verpleegkundige IC",
        "active": True,
        "emails": [{"value": f"{staff_id.lower()}@s1.example", "type": "work", "primary": True}],
        "phoneNumbers": [{"value": "+31205550101", "type": "work"}],
        ENTERPRISE: {"department": "ICU"},
        STAFF: {"function": "nurse", "seniorityYears": 12, "birthYear": 1984, "languages": ["nl"]},
        **fields,
    }


async def test_scim2_tester_reports_no_failure(pipeline: Pipeline, request_page_url: str) -> None:
    token = await provisioning_token(pipeline, "S9")

    def check() -> list[Any]:
        headers = {"Authorization": f"Bearer {token}"}
        with httpx2.Client(base_url=f"{request_page_url}/scim/v2", headers=headers) as http:
            client = SyncSCIMClient(http)
            client.discover()
            return check_server(client)

    results = await asyncio.to_thread(check)
    failed = [f"{r.title}: {r.reason}" for r in results if r.status not in PASSED]
    assert failed == []
    assert sum(r.status == Status.SUCCESS for r in results) >= 10, "checks ran"


async def test_whom_scim_provisions_is_in_the_directory_and_a_leaver_is_not(
    pipeline: Pipeline, request_page_url: str
) -> None:
    directory = StaffDirectory(pipeline.mongo[pipeline.database("intake")])
    headers = {"Authorization": f"Bearer {await provisioning_token(pipeline, 'S1')}"}
    async with httpx.AsyncClient(base_url=f"{request_page_url}/scim/v2", headers=headers) as scim:
        manager = await scim.post("/Users", json=provisioned("M100"))
        assert manager.status_code == 201, manager.text
        with_manager = {
            ENTERPRISE: {"department": "ICU", "manager": {"value": manager.json()["id"]}}
        }
        created = await scim.post("/Users", json=provisioned("E100", **with_manager))
        assert created.status_code == 201, created.text
        user_id = created.json()["id"]

        (member,) = (await directory.find("S1", ["E100"])).values()
        assert (member.email, member.phone) == ("e100@s1.example", "+31205550101")
        assert (member.function, member.department) == ("nurse", "ICU")
        assert member.line_manager_staff_id == "M100"
        read = (await scim.get(f"/Users/{user_id}")).json()
        assert not {"name", "title"} & set(read), "nothing kept beyond what is needed"

        found = await scim.get("/Users", params={"filter": 'userName eq "e100"'})
        assert [u["id"] for u in found.json()["Resources"]] == [user_id]

        leaving = {
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "replace", "path": "active", "value": False}],
        }
        assert (await scim.patch(f"/Users/{user_id}", json=leaving)).is_success
        assert await directory.find("S1", ["E100"]) == {}

        assert (await scim.delete(f"/Users/{manager.json()['id']}")).status_code == 204
        assert await directory.find("S1", ["M100"]) == {}


async def test_a_value_the_directory_cannot_keep_is_refused_by_its_attribute(
    pipeline: Pipeline, request_page_url: str
) -> None:
    headers = {"Authorization": f"Bearer {await provisioning_token(pipeline, 'S2')}"}
    async with httpx.AsyncClient(base_url=f"{request_page_url}/scim/v2", headers=headers) as scim:
        upn = await scim.post("/Users", json=provisioned("anna.jansen@s2.example"))
        surgeon = await scim.post("/Users", json=provisioned("E200", **{STAFF: {"function": "x"}}))
        taken = [await scim.post("/Users", json=provisioned("E201")) for _ in range(2)]
    assert upn.status_code == 400
    assert "userName" in upn.json()["detail"]
    assert surgeon.status_code == 400
    assert "function: one of nurse" in surgeon.json()["detail"]
    assert [t.status_code for t in taken] == [201, 409]


async def test_a_token_reaches_its_own_hospitals_staff_only(
    pipeline: Pipeline, request_page_url: str
) -> None:
    own = {"Authorization": f"Bearer {await provisioning_token(pipeline, 'S3')}"}
    other = {"Authorization": f"Bearer {await provisioning_token(pipeline, 'S4')}"}
    network = {"Authorization": f"Bearer {await provisioning_token(pipeline, NETWORK)}"}
    async with httpx.AsyncClient(base_url=f"{request_page_url}/scim/v2") as scim:
        user_id = (await scim.post("/Users", json=provisioned("E300"), headers=own)).json()["id"]
        assert (await scim.get(f"/Users/{user_id}", headers=other)).status_code == 404
        listed = (await scim.get("/Users", headers=other)).json()
        assert listed["totalResults"] == 0
        assert (await scim.get("/Users", headers=network)).status_code == 403
        refused = await scim.get("/Users")
        assert refused.status_code == 401
        assert refused.json()["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"]
        assert (await scim.get("/ServiceProviderConfig")).status_code == 200
