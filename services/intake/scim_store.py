"""The SCIM endpoint's resources, one hospital's at a time, kept beside the staff directory
they provision: each write changes both in one transaction, so the directory is what the
identity system last said."""

import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, cast

from pymongo import ASCENDING
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError
from scim2_models import (
    Meta,
    NotFoundException,
    Resource,
    ResourceType,
    ResponseParameters,
    ScimFilter,
    SearchRequest,
    UniquenessException,
)
from scim2_server.storage import AsyncScimStorage, SearchPage
from scim2_server.utils import parametrize

from services.intake.directory_store import StaffDirectory
from services.intake.scim import EnterpriseStaff, StaffResource, StaffUser, staff_member_of
from shared.mongo import Document, in_transaction


class ProvisionedUsers:
    """Every hospital's provisioned users in one collection; `of` gives one hospital's."""

    def __init__(self, database: AsyncDatabase[Document], directory: StaffDirectory) -> None:
        self.collection = database["scim_users"]
        self.directory = directory
        self.client = database.client

    async def ensure_indexes(self) -> None:
        await self.collection.create_index(
            [("hospital_id", ASCENDING), ("user_key", ASCENDING)], unique=True
        )

    def of(self, hospital_id: str) -> "HospitalUsers":
        return HospitalUsers(self, hospital_id)


class HospitalUsers(AsyncScimStorage):
    """One hospital's users as scim2-server reads and writes them: a token for one hospital
    reaches no other's."""

    def __init__(self, users: ProvisionedUsers, hospital_id: str) -> None:
        self.users = users
        self.hospital_id = hospital_id

    async def get(
        self,
        resource_type: ResourceType,
        resource_id: str,
        *,
        response_parameters: ResponseParameters[Any] | None = None,
    ) -> Resource[Any]:
        return _resource(await self._stored(resource_id))

    async def search(
        self,
        resource_types: list[ResourceType],
        search_request: SearchRequest[Any],
        *,
        position: Any = None,
    ) -> SearchPage:
        """A hospital's directory is thousands of people: read whole, filtered here, with
        the filter's own semantics rather than a translation of them."""
        docs = self.users.collection.find({"hospital_id": self.hospital_id}).sort("_id", 1)
        resources = [_resource(doc) async for doc in docs]
        scim_filter = search_request.filter
        if scim_filter is not None:
            if not scim_filter.models:
                scim_filter = parametrize(ScimFilter, StaffResource)(str(scim_filter))
            resources = [found for found in resources if scim_filter.match(found)]
        start = search_request.start_index_0 or 0
        stop = None if search_request.count is None else start + search_request.count
        return SearchPage(len(resources), resources[start:stop])

    async def create(self, resource_type: ResourceType, resource: Resource[Any]) -> Resource[Any]:
        resource_id, now = uuid.uuid4().hex, datetime.now(UTC)

        async def write(session: AsyncClientSession) -> Document:
            doc = {
                "_id": resource_id,
                "hospital_id": self.hospital_id,
                "created": now,
                "version": 0,
                **await self._provisioned(resource, now, session),
            }
            await self.users.collection.insert_one(doc, session=session)
            return doc

        return _resource(await self._transaction(write))

    async def update(
        self,
        resource_type: ResourceType,
        resource: Resource[Any],
        *,
        expected_version: str | None = None,
    ) -> Resource[Any]:
        stored = await self._stored(str(resource.id))
        now = datetime.now(UTC)

        async def write(session: AsyncClientSession) -> Document:
            changes = await self._provisioned(resource, now, session)
            if changes["user_key"] != stored["user_key"]:
                await self._deprovision(stored, now, session)
            updated = {**stored, **changes, "version": stored["version"] + 1}
            await self.users.collection.replace_one(
                {"_id": stored["_id"]}, updated, session=session
            )
            return updated

        return _resource(await self._transaction(write))

    async def delete(
        self,
        resource_type: ResourceType,
        resource_id: str,
        *,
        expected_version: str | None = None,
    ) -> None:
        stored, now = await self._stored(resource_id), datetime.now(UTC)

        async def write(session: AsyncClientSession) -> None:
            await self._deprovision(stored, now, session)
            await self.users.collection.delete_one({"_id": stored["_id"]}, session=session)

        await self._transaction(write)

    async def _provisioned(
        self, resource: Resource[Any], now: datetime, session: AsyncClientSession
    ) -> Document:
        """The stored fields of a written resource, after its directory entry is written:
        a value the directory cannot keep refuses the write whole."""
        manager = (resource[EnterpriseStaff] or EnterpriseStaff()).manager
        member = staff_member_of(
            self.hospital_id,
            cast(StaffUser[Any], resource),
            await self._user_name(manager.value if manager else None),
        )
        await self.users.directory.provision(member, now, session)
        body = resource.model_dump(mode="json", exclude={"id", "meta"})
        return {"user_key": member.staff_id.casefold(), "resource": body, "modified": now}

    async def _deprovision(
        self, stored: Document, now: datetime, session: AsyncClientSession
    ) -> None:
        staff_id = stored["resource"]["userName"]
        await self.users.directory.deprovision(self.hospital_id, staff_id, now, session)

    async def _user_name(self, resource_id: str | None) -> str | None:
        """A manager is named by their SCIM id; the directory keeps their staff id."""
        if resource_id is None:
            return None
        doc = await self.users.collection.find_one(
            {"_id": resource_id, "hospital_id": self.hospital_id}
        )
        return None if doc is None else str(doc["resource"]["userName"])

    async def _stored(self, resource_id: str) -> Document:
        doc = await self.users.collection.find_one(
            {"_id": resource_id, "hospital_id": self.hospital_id}
        )
        if doc is None:
            raise NotFoundException(detail=f"User {resource_id!r} not found")
        return doc

    async def _transaction(self, write: Callable[[AsyncClientSession], Awaitable[Any]]) -> Any:
        try:
            return await in_transaction(self.users.client, write)
        except DuplicateKeyError:
            raise UniquenessException(detail="userName is already another user's") from None


def _resource(doc: Document) -> Resource[Any]:
    resource = StaffResource.model_validate(doc["resource"])
    resource.id = doc["_id"]
    resource.meta = Meta(
        resource_type="User",
        created=doc["created"],
        last_modified=doc["modified"],
        version=f'W/"{doc["version"]}"',
    )
    return resource
