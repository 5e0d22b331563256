"""notify's key per case: intake seals the colleague's contact to it, notify alone opens it,
and once the key is erased no copy left on the contacts topic can be read."""

import pytest
import structlog

from services.intake.cases import sealed_contact
from services.notify.keyring import Keyring
from shared.errors import RejectedEvent
from shared.events import (
    CaseContactRecorded,
    CaseContactSealed,
    ContactKeyIssued,
    SupportCaseOpened,
)
from shared.settings import Topics
from tests.factories import NOW, delivered, reconciled
from tests.fakes import FakeContactKeys, FakeUnitOfWork

TOPICS = Topics()


@pytest.fixture
def keyring() -> Keyring:
    return Keyring(
        FakeUnitOfWork(NOW), FakeContactKeys(), TOPICS.contact_keys, structlog.get_logger("test")
    )


def issued(keyring: Keyring) -> list[ContactKeyIssued]:
    unit_of_work = keyring.unit_of_work
    assert isinstance(unit_of_work, FakeUnitOfWork)
    assert {topic for topic, _ in unit_of_work.published} <= {TOPICS.contact_keys}
    return unit_of_work.events(ContactKeyIssued)


async def test_each_case_gets_one_key_announced_again_on_a_redelivery(keyring: Keyring) -> None:
    first, second = (c for c in reconciled().cases if isinstance(c, SupportCaseOpened))
    await keyring.on_cases_counted([delivered(first.counted())])
    await keyring.on_cases_counted([delivered(first.counted()), delivered(second.counted())])
    await keyring.on_cases_counted([delivered(second.counted())])
    keys = issued(keyring)
    expected = [first.case_id, first.case_id, second.case_id, second.case_id]
    assert [k.case_id for k in keys] == expected
    assert keys[0].public_key == keys[1].public_key != keys[2].public_key == keys[3].public_key


async def test_a_colleague_who_opted_out_gets_no_key(keyring: Keyring) -> None:
    opened = reconciled().cases[0]
    assert isinstance(opened, SupportCaseOpened)
    declined = opened.model_copy(update={"opted_out": True}).counted()
    await keyring.on_cases_counted([delivered(declined)])
    assert issued(keyring) == []


async def sealed_for(
    keyring: Keyring, index: int = 0
) -> tuple[CaseContactSealed, CaseContactRecorded]:
    """A case's contact as intake seals it to the key notify announced, and as it was."""
    outcome = reconciled()
    opened, contact = outcome.cases[index], outcome.contacts[index]
    assert isinstance(opened, SupportCaseOpened)
    await keyring.on_cases_counted([delivered(opened.counted())])
    return sealed_contact(contact, issued(keyring)[-1], NOW), contact


async def test_notify_opens_what_intake_sealed_to_the_cases_key(keyring: Keyring) -> None:
    sealed, recorded = await sealed_for(keyring)
    (contact,) = await keyring.opened([sealed])
    assert contact == recorded
    assert contact.email is not None
    assert contact.email not in sealed.model_dump_json()


async def test_once_the_key_is_erased_the_sealed_contact_is_refused(keyring: Keyring) -> None:
    sealed, _ = await sealed_for(keyring)
    keys = keyring.keys
    assert isinstance(keys, FakeContactKeys)
    keys.pairs.clear()
    with pytest.raises(RejectedEvent, match="holds no key"):
        await keyring.opened([sealed])


async def test_a_contact_sealed_for_another_case_is_refused(keyring: Keyring) -> None:
    first, _ = await sealed_for(keyring, 0)
    second, _ = await sealed_for(keyring, 1)
    swapped = second.model_copy(update={"sealed": first.sealed})
    with pytest.raises(RejectedEvent, match="not sealed to its key"):
        await keyring.opened([swapped])
