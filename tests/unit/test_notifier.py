"""notify's handlers on in-memory stores and channels: which channel, what after a refusal, a
passing failure or a stop while sending, and what the links record."""

import asyncio
import uuid
from collections.abc import Collection
from dataclasses import dataclass
from datetime import timedelta

import pytest
import structlog
import structlog.testing
from aiokafka import ConsumerRecord
from prometheus_client import CollectorRegistry
from pydantic import ValidationError

from services.notify.links import Link, Links
from services.notify.messages import ContactEntry
from services.notify.notifier import Notifier, OutreachMetrics, Stores
from services.notify.pages import Outcome
from services.notify.settings import NotifySettings
from services.notify.store import Offer, State
from services.notify.web import Ending
from shared.batches import Delivery
from shared.events import (
    AssignmentAccepted,
    AssignmentCancelled,
    AssignmentNews,
    CancelReason,
    CaseContactRecorded,
    NotificationFailed,
    PeerAssigned,
    PeerNotified,
    ReferralKind,
    SupportContactLogged,
    SupportEnded,
    SupportOutcome,
)
from tests.factories import LINK_SECRET, NOW, assignment_and_contacts, reachable
from tests.fakes import (
    FakeChannel,
    FakeContacts,
    FakeFirsts,
    FakeMessages,
    FakeOffers,
    FakeSupporters,
    FakeUnitOfWork,
)


@dataclass
class Desk:
    notifier: Notifier
    unit_of_work: FakeUnitOfWork
    messages: FakeMessages
    offers: FakeOffers
    email: FakeChannel
    sms: FakeChannel
    assignment: PeerAssigned
    contact: CaseContactRecorded
    supporters: FakeSupporters
    registry: CollectorRegistry

    def waiting(self, awaiting: str) -> float | None:
        """What the operator's gauge says waits for `awaiting`."""
        sample = "peer_support_outreach_waiting"
        return self.registry.get_sample_value(sample, {"awaiting": awaiting})

    @property
    def offer_id(self) -> str:
        return f"{self.assignment.assignment_id}/offer"


@pytest.fixture
def desk() -> Desk:
    assignment, supporter, contact = assignment_and_contacts()
    assignment = assignment.model_copy(update={"occurred_at": NOW})
    messages, offers, supporters = FakeMessages(), FakeOffers(), FakeSupporters()
    supporters.supporters[supporter.supporter_id] = supporter.model_copy(
        update={"phone": "+31611111111"}
    )
    stores = Stores(FakeContacts(), offers, supporters, messages, FakeFirsts(), FakeFirsts())
    email, sms = FakeChannel("email"), FakeChannel("sms", retries_are_safe=True)
    settings = NotifySettings(link_secret=LINK_SECRET, follow_up_after=[timedelta(days=1)])
    links = Links(LINK_SECRET, "http://notify", 3600)
    unit_of_work = FakeUnitOfWork(NOW)
    registry = CollectorRegistry()
    notifier = Notifier(
        unit_of_work,
        stores,
        {"email": email, "sms": sms},
        links,
        settings,
        OutreachMetrics(registry),
        structlog.get_logger("test"),
    )
    return Desk(
        notifier,
        unit_of_work,
        messages,
        offers,
        email,
        sms,
        assignment,
        contact,
        supporters,
        registry,
    )


async def test_the_offer_waits_for_the_colleagues_contact_then_goes_by_email(desk: Desk) -> None:
    await desk.notifier.on_assignment_news(desk.assignment)
    assert desk.messages.state(desk.offer_id) == State.AWAITING_CONTACT
    assert desk.email.sent == []

    await desk.notifier.on_contacts([(desk.contact, {})])
    await desk.notifier.sends.finished()
    ((key, outreach),) = desk.email.sent
    assert key == str(desk.assignment.assignment_id)
    assert "e12345@zh-a.example" in outreach.body
    assert desk.messages.state(desk.offer_id) == State.SENT
    (notified,) = desk.unit_of_work.events(PeerNotified)
    assert notified.channel == "email"


def delivered(assignment: PeerAssigned) -> Delivery[AssignmentNews]:
    record = ConsumerRecord("support.assignments.v1", 0, 0, 0, 0, None, b"", None, 0, 0, [])
    return Delivery(record, assignment, {})


async def test_a_batchs_offer_waits_for_a_contact_not_yet_here_and_goes_when_it_comes(
    desk: Desk,
) -> None:
    await desk.notifier.on_assignments([delivered(desk.assignment)])
    await desk.notifier.sends.finished()
    assert desk.messages.state(desk.offer_id) == State.AWAITING_CONTACT
    assert desk.email.sent == []

    await desk.notifier.on_contacts([(desk.contact, {})])
    await desk.notifier.sends.finished()
    assert len(desk.email.sent) == 1
    assert desk.messages.state(desk.offer_id) == State.SENT


async def test_a_contact_that_comes_while_a_batch_is_recorded_still_sends_its_offer(
    desk: Desk,
) -> None:
    """The contact's handler ran between the batch's look and its commit, and found no offer
    waiting: the batch looks once more."""
    contacts = desk.notifier.contacts
    looked = contacts.known_among

    async def contact_comes_after_the_look(case_ids: Collection[str]) -> set[str]:
        known = await looked(case_ids)
        await desk.notifier.on_contacts([(desk.contact, {})])
        await desk.notifier.sends.finished()
        return known

    contacts.known_among = contact_comes_after_the_look  # type: ignore[method-assign]
    await desk.notifier.on_assignments([delivered(desk.assignment)])
    await desk.notifier.sends.finished()
    assert len(desk.email.sent) == 1
    assert desk.messages.state(desk.offer_id) == State.SENT


async def test_one_batch_of_contacts_sends_every_case_its_waiting_offer(desk: Desk) -> None:
    case_id = uuid.uuid4()
    other = desk.assignment.model_copy(update={"assignment_id": uuid.uuid4(), "case_id": case_id})
    others_contact = desk.contact.model_copy(update={"case_id": case_id, "email": "o@zh-a.nl"})
    await desk.notifier.on_assignments([delivered(desk.assignment), delivered(other)])
    await desk.notifier.sends.finished()
    assert desk.email.sent == []

    await desk.notifier.on_contacts([(desk.contact, {}), (others_contact, {})])
    await desk.notifier.sends.finished()
    assert sorted(key for key, _ in desk.email.sent) == sorted(
        [str(desk.assignment.assignment_id), str(other.assignment_id)]
    )
    assert any("o@zh-a.nl" in outreach.body for _, outreach in desk.email.sent)


async def test_a_batchs_offer_whose_contact_is_here_goes_at_once(desk: Desk) -> None:
    await desk.notifier.on_contacts([(desk.contact, {})])
    await desk.notifier.sends.finished()
    await desk.notifier.on_assignments([delivered(desk.assignment)])
    await desk.notifier.sends.finished()
    assert len(desk.email.sent) == 1
    assert desk.messages.state(desk.offer_id) == State.SENT


async def test_a_batch_is_not_held_up_by_the_mail_of_the_batch_before(desk: Desk) -> None:
    await desk.notifier.on_contacts([(desk.contact, {})])
    desk.email.answering = asyncio.Event()  # the mail server is slow to answer
    # Returns while the mail waits (a handler held up by it would never return here).
    await asyncio.wait_for(desk.notifier.on_assignments([delivered(desk.assignment)]), 30)
    for _ in range(100):  # the send, begun, waits for the server
        if desk.messages.state(desk.offer_id) == State.SENDING:
            break
        await asyncio.sleep(0)
    assert desk.messages.state(desk.offer_id) == State.SENDING
    assert desk.email.sent == []

    desk.email.answering.set()
    await desk.notifier.sends.finished()
    assert len(desk.email.sent) == 1
    assert desk.messages.state(desk.offer_id) == State.SENT


async def test_a_send_that_fails_after_its_handler_returned_is_taken_again_by_the_scan(
    desk: Desk,
) -> None:
    await desk.notifier.on_contacts([(desk.contact, {})])
    await desk.notifier.sends.finished()

    async def store_lost(*args: object, **fields: object) -> None:
        raise ConnectionError("the store went away just after the mail")

    desk.messages.settle = store_lost  # type: ignore[method-assign]
    with structlog.testing.capture_logs() as logged:
        await desk.notifier.on_assignments([delivered(desk.assignment)])  # returns: no raise
        await desk.notifier.sends.finished()
    assert [entry["id"] for entry in logged if entry["log_level"] == "error"] == [desk.offer_id]
    message = desk.messages.messages[desk.offer_id]
    assert message.state == State.SENDING, "still claimed: the scan takes it after its lease"


async def test_a_refused_mail_falls_back_to_a_text(desk: Desk) -> None:
    desk.email.refuses = True
    await desk.notifier.on_contacts([(desk.contact, {})])
    await desk.notifier.sends.finished()
    await desk.notifier.on_assignment_news(desk.assignment)
    assert [key for key, _ in desk.sms.sent] == [str(desk.assignment.assignment_id)]
    (failure,) = desk.unit_of_work.events(NotificationFailed)
    assert failure.reason.startswith("550 p1@zh-a.example")
    assert desk.messages.state(desk.offer_id) == State.SENT


async def test_refused_on_every_channel_the_offer_is_failed(desk: Desk) -> None:
    desk.email.refuses = desk.sms.refuses = True
    await desk.notifier.on_contacts([(desk.contact, {})])
    await desk.notifier.sends.finished()
    await desk.notifier.on_assignment_news(desk.assignment)
    assert desk.messages.state(desk.offer_id) == State.FAILED
    assert len(desk.unit_of_work.events(NotificationFailed)) == 2


async def test_a_passing_failure_is_retried_later_not_dead(desk: Desk) -> None:
    desk.email.away = True
    await desk.notifier.on_contacts([(desk.contact, {})])
    await desk.notifier.sends.finished()
    await desk.notifier.on_assignment_news(desk.assignment)
    message = desk.messages.messages[desk.offer_id]
    assert (message.state, message.attempts) == (State.SCHEDULED, 1)
    assert message.claimable_from is not None
    assert message.claimable_from > NOW
    assert desk.sms.sent == []  # not a refusal: the supporter's own channel is tried again
    assert desk.unit_of_work.events(NotificationFailed) == []


async def test_a_mail_interrupted_by_a_stop_is_reported_unconfirmed_never_sent_again(
    desk: Desk,
) -> None:
    await desk.notifier.on_contacts([(desk.contact, {})])
    await desk.notifier.sends.finished()
    await desk.notifier.on_assignment_news(desk.assignment)
    message = desk.messages.messages[desk.offer_id]
    # As a worker leaves it when killed between "sending on email" and the mail server's answer:
    message.state, message.channel, message.claimable_from = State.SENDING, "email", NOW
    desk.email.sent.clear()

    await desk.notifier.deliver(desk.offer_id)
    assert desk.email.sent == []
    assert desk.messages.state(desk.offer_id) == State.UNCONFIRMED
    failure = desk.unit_of_work.events(NotificationFailed)[-1]
    assert failure.reason.startswith("unconfirmed")


async def test_an_answer_is_recorded_once_and_acceptance_schedules_follow_ups(desk: Desk) -> None:
    await desk.notifier.on_assignment_news(desk.assignment)
    offer = await desk.notifier.offer(str(desk.assignment.assignment_id))
    assert offer is not None
    assert await desk.notifier.answer(offer, Outcome.ACCEPTED)
    assert not await desk.notifier.answer(offer, Outcome.DECLINED)
    (accepted,) = desk.unit_of_work.events(AssignmentAccepted)
    assert accepted.case_id == desk.assignment.case_id
    follow_up = f"{desk.assignment.assignment_id}/follow_up_day_1"
    assert desk.messages.state(follow_up) == State.SCHEDULED


async def test_an_answer_after_the_deadline_is_refused_as_matching_gives_the_case_on(
    desk: Desk,
) -> None:
    await desk.notifier.on_assignment_news(desk.assignment)
    offer = await desk.notifier.offer(str(desk.assignment.assignment_id))
    assert offer is not None
    desk.unit_of_work.now = desk.assignment.respond_by
    assert not await desk.notifier.answer(offer, Outcome.ACCEPTED)
    assert desk.unit_of_work.events(AssignmentAccepted) == []
    follow_up = f"{desk.assignment.assignment_id}/follow_up_day_1"
    assert follow_up not in desk.messages.messages


async def test_a_contact_link_records_one_contact(desk: Desk) -> None:
    link = Link(desk.assignment.assignment_id, "nonce-1")
    entry = ContactEntry(contact_date=NOW.date(), minutes=30, mode="phone", tier=1, referred=False)
    assert await desk.notifier.log_contact(link, desk.assignment, entry)
    assert not await desk.notifier.log_contact(link, desk.assignment, entry)
    (logged,) = desk.unit_of_work.events(SupportContactLogged)
    assert logged.first_of_case


async def accepted(desk: Desk) -> Offer:
    await desk.notifier.on_contacts([(desk.contact, {})])
    await desk.notifier.sends.finished()
    await desk.notifier.on_assignment_news(desk.assignment)
    offer = await desk.notifier.offer(str(desk.assignment.assignment_id))
    assert offer is not None
    assert await desk.notifier.answer(offer, Outcome.ACCEPTED)
    again = await desk.notifier.offer(str(desk.assignment.assignment_id))
    assert again is not None
    return again


def steps_of(desk: Desk) -> dict[str, str]:
    prefix = f"{desk.assignment.assignment_id}/"
    return {k.removeprefix(prefix): m.state for k, m in desk.messages.messages.items()}


async def test_acceptance_schedules_follow_ups_a_closing_prompt_and_the_lapse(desk: Desk) -> None:
    await accepted(desk)
    steps = steps_of(desk)
    assert steps["follow_up_day_1"] == steps["closing"] == steps["lapse"] == State.SCHEDULED
    lapse = desk.messages.messages[f"{desk.assignment.assignment_id}/lapse"]
    assert lapse.due_at == NOW + timedelta(days=1) + timedelta(days=14)


async def test_a_supporter_ends_support_once_with_an_outcome(desk: Desk) -> None:
    offer = await accepted(desk)
    link = Link(desk.assignment.assignment_id, f"{desk.assignment.assignment_id}/follow_up_day_1")
    referral = ReferralKind.PSYCHOLOGIST
    assert await desk.notifier.end_support(link, offer, SupportOutcome.REFERRED, referral)
    (ended,) = desk.unit_of_work.events(SupportEnded)
    assert (ended.outcome, ended.referral) == (SupportOutcome.REFERRED, referral)
    assert set(steps_of(desk).values()) == {State.SENT, State.SKIPPED}  # nothing more comes
    again = await desk.notifier.offer(str(desk.assignment.assignment_id))
    assert again is not None
    assert not await desk.notifier.end_support(link, again, SupportOutcome.COMPLETED, None)
    other = Link(desk.assignment.assignment_id, "another-follow-up")
    assert not await desk.notifier.end_support(other, again, SupportOutcome.COMPLETED, None)
    assert len(desk.unit_of_work.events(SupportEnded)) == 1


async def test_still_supporting_brings_one_more_follow_up_and_puts_the_lapse_off(
    desk: Desk,
) -> None:
    offer = await accepted(desk)
    lapse = desk.messages.messages[f"{desk.assignment.assignment_id}/lapse"]
    before = lapse.due_at
    link = Link(desk.assignment.assignment_id, "closing-link")
    assert await desk.notifier.still_supporting(link, offer)
    assert not await desk.notifier.still_supporting(link, offer)  # once per link
    assert "follow_up_day_7" in steps_of(desk)
    assert lapse.due_at == NOW + timedelta(days=7) + timedelta(days=14) > before


async def test_support_nobody_continued_lapses_by_itself(desk: Desk) -> None:
    await accepted(desk)
    lapse_id = f"{desk.assignment.assignment_id}/lapse"
    desk.messages.messages[lapse_id].claimable_from = NOW
    await desk.notifier.deliver(lapse_id)
    (ended,) = desk.unit_of_work.events(SupportEnded)
    assert ended.outcome == SupportOutcome.LAPSED
    assert desk.messages.state(lapse_id) == State.DONE
    assert desk.email.sent[-1][0] == str(desk.assignment.assignment_id)  # no mail for a lapse


async def test_a_logged_contact_puts_the_lapse_off(desk: Desk) -> None:
    await accepted(desk)
    desk.unit_of_work.now = NOW + timedelta(days=10)
    link = Link(desk.assignment.assignment_id, "nonce-9")
    entry = ContactEntry(contact_date=NOW.date(), minutes=30, mode="phone", tier=1, referred=False)
    assert await desk.notifier.log_contact(link, desk.assignment, entry)
    lapse = desk.messages.messages[f"{desk.assignment.assignment_id}/lapse"]
    assert lapse.due_at == NOW + timedelta(days=24)


async def test_the_end_of_support_says_how_many_contacts_it_took(desk: Desk) -> None:
    offer = await accepted(desk)
    entry = ContactEntry(contact_date=NOW.date(), minutes=30, mode="phone", tier=1, referred=False)
    for nonce in ("first", "second", "first"):
        await desk.notifier.log_contact(
            Link(offer.assignment.assignment_id, nonce), offer.assignment, entry
        )
    link = Link(desk.assignment.assignment_id, "closing-link")
    assert await desk.notifier.end_support(link, offer, SupportOutcome.COMPLETED, None)
    (ended,) = desk.unit_of_work.events(SupportEnded)
    assert ended.contacts == 2


def test_the_ending_form_takes_a_referral_kind_exactly_when_referred() -> None:
    assert Ending.model_validate({"outcome": "completed", "referral": ""}).referral is None
    assert Ending.model_validate({"outcome": "referred", "referral": "eap"}).referral == "eap"
    for form in (
        {"outcome": "referred", "referral": ""},
        {"outcome": "completed", "referral": "eap"},
        {"outcome": "lapsed"},
        {"outcome": "closed_by_coordinator"},
        {"outcome": "a long story about the patient"},
    ):
        with pytest.raises(ValidationError):
            Ending.model_validate(form)


async def test_an_offer_to_a_supporter_not_yet_on_notifys_roster_waits_for_the_roster(
    desk: Desk,
) -> None:
    supporter = desk.supporters.supporters.pop("P1")
    await desk.notifier.on_contacts([(desk.contact, {})])
    await desk.notifier.sends.finished()
    await desk.notifier.on_assignment_news(desk.assignment)
    assert desk.email.sent == []
    assert desk.messages.state(desk.offer_id) == State.AWAITING_SUPPORTER

    await desk.notifier.on_supporter_reachable(reachable(supporter))
    ((_, outreach),) = desk.email.sent
    assert outreach.to == supporter.email
    assert outreach.body.startswith(f"Beste {supporter.display_name},")


async def test_a_reminder_never_reaches_the_supporter_before_its_offer(desk: Desk) -> None:
    await desk.notifier.on_assignment_news(desk.assignment)
    await desk.notifier.deliver_due()  # the reminder is due: NOW has passed, no contact yet
    assert desk.email.sent == [], "the offer waits for the contact, and its reminder with it"

    await desk.notifier.on_contacts([(desk.contact, {})])
    await desk.notifier.sends.finished()
    await desk.notifier.deliver_due()
    assert [o.subject.split(":")[0] for _, o in desk.email.sent] == [
        "Verzoek om collegiale ondersteuning (medicatie, 2026-11-20)",
        "Herinnering",
    ]


async def test_the_operator_sees_what_messages_wait_for(desk: Desk) -> None:
    supporter = desk.supporters.supporters.pop("P1")
    await desk.notifier.on_assignment_news(desk.assignment)
    await desk.notifier.deliver_due()  # the reminder is due too: NOW has passed
    assert (desk.waiting("contact"), desk.waiting("supporter")) == (2, 0), "the reminder too"

    await desk.notifier.on_contacts([(desk.contact, {})])
    await desk.notifier.sends.finished()
    await desk.notifier.deliver_due()
    assert (desk.waiting("contact"), desk.waiting("supporter")) == (0, 2)

    await desk.notifier.on_supporter_reachable(reachable(supporter))
    await desk.notifier.deliver_due()
    assert (desk.waiting("contact"), desk.waiting("supporter")) == (0, 0)
    assert [o.subject.split(":")[0] for _, o in desk.email.sent] == [
        "Verzoek om collegiale ondersteuning (medicatie, 2026-11-20)",
        "Herinnering",
    ]


async def test_a_supporter_whose_support_is_handed_over_is_thanked_once_and_told_no_more(
    desk: Desk,
) -> None:
    await accepted(desk)
    handed_over = AssignmentCancelled(
        **desk.assignment.model_dump(include={"case_id", "profile", "assignment_id"}),
        event_id=uuid.uuid4(),
        occurred_at=NOW + timedelta(hours=2),
        producer="matching",
        correlation_id=desk.assignment.correlation_id,
        hospital_id=desk.assignment.hospital_id,
        supporter_id=desk.assignment.supporter_id,
        reason=CancelReason.HANDED_OVER,
    )
    await desk.notifier.on_assignment_news(handed_over)
    await desk.notifier.on_assignment_news(handed_over)  # redelivered
    steps = steps_of(desk)
    assert steps["follow_up_day_1"] == steps["lapse"] == State.SKIPPED
    desk.email.sent.clear()

    await desk.notifier.deliver_due()
    await desk.notifier.sends.finished()

    ((_, thanks),) = desk.email.sent
    assert thanks.subject == "Je ondersteuning is overgedragen"  # in the supporter's language
    assert "Je hoeft niets meer te doen" in thanks.body
    assert "e12345@zh-a.example" not in thanks.body, "no longer theirs to reach"
    assert steps_of(desk)["handed_over"] == State.SENT
