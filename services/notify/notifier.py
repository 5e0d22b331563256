"""What notify does with each assignment: its messages, sent at most once, and the answers and
contacts that come back through their links.

A supporter can only be asked to reach out once notify knows how to reach the colleague, and
the contact and the assignment arrive on different topics in either order: whichever comes
second makes the offer due. Every step of every assignment is one message record, so timers
survive restarts and a step is sent at most once (see `store.Messages`).
"""

import asyncio
from collections.abc import Awaitable, Callable, Collection, Coroutine, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge
from pymongo.asynchronous.client_session import AsyncClientSession

from services.notify.channels import Channel
from services.notify.links import Link, Links, Purpose
from services.notify.messages import (
    ContactEntry,
    answered,
    compose,
    concern_raised,
    contact_logged,
    failed,
    notified,
    support_ended,
)
from services.notify.messages import Links as MessageLinks
from services.notify.pages import Outcome
from services.notify.settings import NotifySettings
from services.notify.steps import (
    HANDED_OVER,
    LAPSE,
    OFFER,
    REMINDER,
    Scheduled,
    follow_up,
    kind_of,
    needs_colleague_contact,
    offer_steps,
    reminder_due,
    still_due,
    support_steps,
)
from services.notify.store import (
    CaseContacts,
    Claimed,
    Firsts,
    Messages,
    Offer,
    Offers,
    State,
    Supporters,
)
from shared.batches import Delivery
from shared.errors import RejectedEvent, describe
from shared.events import (
    ENDED_BY_SUPPORTER,
    AssignmentCancelled,
    AssignmentNews,
    CancelReason,
    CaseContactRecorded,
    ChannelName,
    Envelope,
    PeerAssigned,
    ReferralKind,
    ResponseDeadlineMoved,
    SupporterContact,
    SupporterReachable,
    SupportOutcome,
)
from shared.kafka import is_passing
from shared.metrics import NAMESPACE
from shared.mongo import Announcements, GroupCommit, Step, UnitOfWork, Work
from shared.settings import Topics
from shared.tracing import within

OFFER_FIRST_PAUSE = timedelta(seconds=1)
"""How long a reminder steps back while its offer is being sent."""


class OutreachMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.sent = Counter(
            "outreach_sent",
            "Messages sent to supporters, by channel and step",
            ["channel", "step"],
            registry=registry,
            namespace=NAMESPACE,
        )
        self.failures = Counter(
            "outreach_failed",
            "Messages a channel refused, or unconfirmed after a stop while sending",
            ["channel"],
            registry=registry,
            namespace=NAMESPACE,
        )
        self.answers = Counter(
            "offers_answered",
            "Offers answered through their link",
            ["answer"],
            registry=registry,
            namespace=NAMESPACE,
        )
        for channel in ("email", "sms"):
            self.failures.labels(channel)
        for answer in ("accepted", "declined"):
            self.answers.labels(answer)
        self.contacts_logged = Counter(
            "contacts_logged",
            "Contacts recorded by supporters",
            registry=registry,
            namespace=NAMESPACE,
        )
        self.waiting = Gauge(
            "outreach_waiting",
            "Messages to supporters waiting for the colleague's contact or the supporter's "
            "address, at the last scan",
            ["awaiting"],
            registry=registry,
            namespace=NAMESPACE,
        )
        for awaiting in ("contact", "supporter"):
            self.waiting.labels(awaiting)


class Sends:
    """Deliveries a handler hands off, so that it takes its next batch while they go out: a
    batch of assignments used to wait for the last batch's mail. A send that fails is logged;
    its message stays claimed and the scan takes it again after its lease, as it does one
    that was due."""

    def __init__(self) -> None:
        self.running: set[asyncio.Task[None]] = set()

    def start(self, sending: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(sending)
        self.running.add(task)
        task.add_done_callback(self.running.discard)

    async def finished(self) -> None:
        """Every send begun so far has ended: at shutdown, before the broker and the
        database close."""
        while self.running:
            await asyncio.wait(set(self.running))


@dataclass(frozen=True)
class Stores:
    contacts: CaseContacts
    offers: Offers
    supporters: Supporters
    messages: Messages
    used_links: Firsts
    contacted_cases: Firsts


class Notifier:
    def __init__(
        self,
        unit_of_work: UnitOfWork,
        stores: Stores,
        channels: dict[str, Channel],
        links: Links,
        settings: NotifySettings,
        metrics: OutreachMetrics,
        log: Any,
    ) -> None:
        self.unit_of_work = unit_of_work
        self.settlements = GroupCommit(unit_of_work)
        """Messages sent at once settle together: one transaction and one publish for those
        that finish while another's settlement commits."""
        self.sends = Sends()
        self.sending = asyncio.Semaphore(settings.sends_at_once)
        """At most `sends_at_once` messages go out at a time, whoever started them."""
        self.contacts = stores.contacts
        self.offers = stores.offers
        self.supporters = stores.supporters
        self.messages = stores.messages
        self.used_links = stores.used_links
        self.contacted_cases = stores.contacted_cases
        self.channels = channels
        self.links = links
        self.settings = settings
        self.topics: Topics = settings.topics
        self.metrics = metrics
        self.log = log

    # --- Events in ------------------------------------------------------------------------

    async def on_assignment_news(self, news: AssignmentNews) -> None:
        if recording := self._recording(news):
            await self.unit_of_work.run(recording)
            await self._offer(news)

    async def on_assignments(self, batch: Sequence[Delivery[AssignmentNews]]) -> None:
        """A batch recorded in one transaction; then its offers sent, several at once, while
        the next batch is taken (`Sends`).

        The colleague's contact usually comes a moment after the assignment (intake seals it
        to a key notify issues), so an offer whose contact is not here yet is recorded as
        waiting for it, and the contact's arrival sends it, rather than being claimed only to
        be put back. The contact may have come between the look and the commit, when its
        handler found nothing waiting: so look once more after it."""
        offers = [(d.event, d.trace) for d in batch if isinstance(d.event, PeerAssigned)]
        cases = {str(assignment.case_id) for assignment, _ in offers}
        known = await self.contacts.known_among(cases)
        await self.unit_of_work.run_steps(
            [
                Step(recording, d.trace)
                for d in batch
                if (recording := self._recording(d.event, known))
            ]
        )
        due: list[tuple[str | Claimed, dict[str, str] | None]] = [
            (f"{assignment.assignment_id}/{OFFER}", trace)
            for assignment, trace in offers
            if str(assignment.case_id) in known
        ]
        self._send_soon([*due, *await self._arrived_meanwhile(offers, cases - known)])

    async def _arrived_meanwhile(
        self, offers: Sequence[tuple[PeerAssigned, dict[str, str]]], waiting: Collection[str]
    ) -> list[tuple[str | Claimed, dict[str, str]]]:
        """The offers recorded as waiting whose contact came before the record's commit."""
        traces = {str(assignment.case_id): trace for assignment, trace in offers}
        arrived = await self.contacts.known_among(waiting)
        return await self._made_due(State.AWAITING_CONTACT, {c: traces[c] for c in arrived})

    def _recording(self, news: AssignmentNews, known: Collection[str] | None = None) -> Work | None:
        """What notify records of the news; None for escalations, which are the
        coordinator's. `known`: the cases whose contact notify holds, when it looked (None:
        it did not, and the offer is due at once)."""
        if not isinstance(news, PeerAssigned | AssignmentCancelled | ResponseDeadlineMoved):
            return None

        async def record(session: AsyncClientSession, now: datetime) -> Announcements:
            if isinstance(news, PeerAssigned):
                await self.offers.record(session, news)
                steps = offer_steps(news.occurred_at, news.respond_by)
                missing = known is not None and str(news.case_id) not in known
                await self.messages.schedule(
                    session, news, steps, awaiting_contact=(OFFER,) if missing else ()
                )
            elif isinstance(news, AssignmentCancelled):
                await self._cancel(session, news)
            else:
                await self._move_deadline(session, news)
            return []

        return record

    async def _cancel(self, session: AsyncClientSession, news: AssignmentCancelled) -> None:
        """No more messages for the assignment; support handed over, a word of thanks."""
        assignment_id = str(news.assignment_id)
        offer = await self.offers.get(assignment_id, session)
        if offer is None or offer.cancelled:  # unknown, or a redelivery
            return
        await self.offers.cancel(session, assignment_id)
        await self.messages.skip_remaining(session, assignment_id)
        if news.reason is CancelReason.HANDED_OVER:
            thanks = [Scheduled(HANDED_OVER, news.occurred_at)]
            await self.messages.schedule(session, offer.assignment, thanks)

    async def _offer(self, news: AssignmentNews) -> None:
        if isinstance(news, PeerAssigned):
            await self.deliver(f"{news.assignment_id}/{OFFER}")

    async def deliver_all(
        self, messages: Sequence[tuple[str | Claimed, dict[str, str] | None]]
    ) -> list[tuple[str, Exception]]:
        """Each (message id or claimed message, trace) delivered, up to `sends_at_once` at a
        time, every one whatever befalls another; returns the ids of those that failed, with
        why."""

        async def deliver(message: str | Claimed) -> None:
            async with self.sending:
                await self.deliver(message)

        tasks = []
        for message, trace in messages:
            with within(trace):
                tasks.append(asyncio.ensure_future(deliver(message)))
        outcomes = await asyncio.gather(*tasks, return_exceptions=True)
        return [
            (message.message_id if isinstance(message, Claimed) else message, outcome)
            for (message, _), outcome in zip(messages, outcomes, strict=True)
            if isinstance(outcome, Exception)
        ]

    def _send_soon(self, messages: Sequence[tuple[str | Claimed, dict[str, str] | None]]) -> None:
        """For a handler: sent while it goes on (`Sends`)."""
        if messages:
            self.sends.start(self._deliver_logged(messages))

    async def _deliver_logged(
        self, messages: Sequence[tuple[str | Claimed, dict[str, str] | None]]
    ) -> None:
        """Each on its own: one that fails is retried at a scan after its lease, and never
        holds up the others."""
        for message_id, error in await self.deliver_all(messages):
            self.log.error(
                "message not delivered; retried after its lease",
                id=message_id,
                error=describe(error),
                exc_info=error,
            )

    async def _move_deadline(
        self, session: AsyncClientSession, moved: ResponseDeadlineMoved
    ) -> None:
        assignment_id = str(moved.assignment_id)
        offer = await self.offers.get(assignment_id, session)
        if offer is not None:
            await self.offers.move_deadline(session, assignment_id, moved.respond_by)
            due = reminder_due(offer.assignment.occurred_at, moved.respond_by)
            await self.messages.reschedule(session, assignment_id, REMINDER, due)

    async def on_supporter_reachable(self, reachable: SupporterReachable) -> None:
        """A deactivated supporter keeps the cases they have, and their messages."""
        await self.supporters.keep(reachable.supporter)
        await self._arrived(State.AWAITING_SUPPORTER, reachable.supporter.supporter_id)

    async def on_contacts(
        self, contacts: Sequence[tuple[CaseContactRecorded, dict[str, str]]]
    ) -> None:
        """A batch's contacts recorded in one write; the messages that waited for them found
        in one read, claimed, and sent while the next batch is taken. (contact, trace)
        pairs."""
        await self.contacts.record([contact for contact, _ in contacts])
        traces = {str(contact.case_id): trace for contact, trace in contacts}
        self._send_soon(await self._made_due(State.AWAITING_CONTACT, traces))

    async def _made_due(
        self, awaiting: str, traces: dict[str, dict[str, str]]
    ) -> list[tuple[str | Claimed, dict[str, str]]]:
        """The steps that waited for the keys of `traces` (case or supporter ids), claimed:
        (claimed, the trace of the event that brought what they waited for)."""
        arrived = await self.messages.arrived(awaiting, traces, datetime.now(UTC))
        return [(claimed, traces[key]) for key, claimed in arrived]

    async def _arrived(self, awaiting: str, key: str) -> None:
        for _, claimed in await self.messages.arrived(awaiting, [key], datetime.now(UTC)):
            await self.deliver(claimed)

    async def _wait(
        self, message_id: str, awaiting: str, key: str, look: Callable[[str], Awaitable[object]]
    ) -> None:
        """The step waits; the arrival of what it waits for makes it due. That may have
        arrived after the step looked and before its wait was recorded, when its handler
        found nothing waiting: so look once more."""
        await self.messages.wait_for(message_id, awaiting)
        if await look(key) is not None:
            await self._arrived(awaiting, key)

    # --- Messages out ---------------------------------------------------------------------

    async def deliver_due(self) -> None:
        """The messages due now (a failed send's after its lease), and the waiting gauge."""
        due = await self.messages.due(datetime.now(UTC), self.settings.scan_batch)
        await self._deliver_logged([(m, None) for m in due])
        for state, count in (await self.messages.waiting()).items():
            self.metrics.waiting.labels(state.removeprefix("awaiting_")).set(count)

    async def deliver(self, message: str | Claimed) -> None:
        """Send one due step on the supporter's channel, falling back to the other: a message
        by its id, claimed here if it is claimable, or one claimed already."""
        if isinstance(message, str):
            claimed = await self.messages.claim(message, datetime.now(UTC))
            if claimed is None:
                return
        else:
            claimed = message
        message_id = claimed.message_id
        # What the step needs, read at once: most steps need all three.
        recorded, supporter, contact = await asyncio.gather(
            self.offers.get(claimed.assignment_id),
            self.supporters.of(claimed.supporter_id),
            self.contacts.of_case(claimed.case_id),
        )
        assert recorded is not None, "an offer is recorded before its messages"
        offer = replace(recorded, supporter=supporter)
        if not still_due(
            claimed.step, cancelled=offer.cancelled, answer=offer.answer, ended=offer.ended
        ):
            await self.messages.settle(message_id, State.SKIPPED)
            return
        if kind_of(claimed.step) == LAPSE:
            await self._end(offer.assignment, SupportOutcome.LAPSED, None, message_id)
            return
        if (channel := claimed.interrupted_on) and not self.channels[channel].retries_are_safe:
            await self._unconfirmed(claimed, offer.assignment, channel)
            return
        if kind_of(claimed.step) == REMINDER and await self._behind_its_offer(claimed, offer):
            return
        case_id, supporter_id = claimed.case_id, claimed.supporter_id
        if needs_colleague_contact(claimed.step) and contact is None:
            await self._wait(message_id, State.AWAITING_CONTACT, case_id, self.contacts.of_case)
        elif offer.supporter is None:  # the roster topic is behind the assignments topic
            await self._wait(message_id, State.AWAITING_SUPPORTER, supporter_id, self.supporters.of)
        else:
            await self._send(claimed, offer.assignment, offer.supporter, contact)

    async def _behind_its_offer(self, claimed: Claimed, offer: Offer) -> bool:
        """A reminder never reaches a supporter before its offer: while the offer waits (for
        the colleague's contact, or the supporter's address), so does the reminder; while the
        offer is about to go or going, the reminder comes back a moment later."""
        state = await self.messages.state_of(f"{claimed.assignment_id}/{OFFER}")
        if state == State.AWAITING_CONTACT:
            case_id = str(offer.assignment.case_id)
            await self._wait(claimed.message_id, state, case_id, self.contacts.of_case)
        elif state == State.AWAITING_SUPPORTER:
            supporter_id = offer.assignment.supporter_id
            await self._wait(claimed.message_id, state, supporter_id, self.supporters.of)
        elif state in (State.SCHEDULED, State.SENDING):
            later = datetime.now(UTC) + OFFER_FIRST_PAUSE
            await self.messages.retry_later(claimed.message_id, claimed.attempts, later)
        else:
            return False
        return True

    async def _unconfirmed(
        self, claimed: Claimed, assignment: PeerAssigned, channel: ChannelName
    ) -> None:
        reason = "unconfirmed: the service stopped while sending; not sent again"
        event = failed(assignment, claimed.step, channel, reason, datetime.now(UTC))
        await self._settle_and_announce(claimed.message_id, State.UNCONFIRMED, event)
        self.metrics.failures.labels(channel).inc()
        self.log.warning("message unconfirmed", message_id=claimed.message_id, step=claimed.step)

    async def _send(
        self,
        claimed: Claimed,
        assignment: PeerAssigned,
        supporter: SupporterContact,
        contact: CaseContactRecorded | None,
    ) -> None:
        message_id, step, tried = claimed.message_id, claimed.step, list(claimed.tried)
        for name in self._channel_order(supporter, tried):
            await self.messages.sending_on(message_id, name)
            outreach = compose(
                step,
                assignment,
                supporter,
                contact,
                name,
                self._message_links(assignment, message_id, step),
                self.settings.timezone,
            )
            key = str(assignment.assignment_id) if step == OFFER else message_id.replace("/", ".")
            try:
                await self.channels[name].send(outreach, key)
            except RejectedEvent as refusal:
                await self._refused(message_id, assignment, step, name, refusal)
                tried.append(name)
                continue
            except Exception as error:
                if not is_passing(error):
                    raise
                await self._retry_later(claimed, name, error)
                return
            now = datetime.now(UTC)
            done = notified(assignment, step, name, now)
            await self._settle_and_announce(message_id, State.SENT, done, sent_at=now)
            self.metrics.sent.labels(name, kind_of(step)).inc()
            self.log.info("supporter contacted", message_id=message_id, channel=name, step=step)
            return
        await self.messages.settle(message_id, State.FAILED, tried=tried)
        self.log.error("no channel could deliver", message_id=message_id, tried=tried)

    async def _refused(
        self,
        message_id: str,
        assignment: PeerAssigned,
        step: str,
        channel: ChannelName,
        refusal: RejectedEvent,
    ) -> None:
        event = failed(assignment, step, channel, describe(refusal), datetime.now(UTC))
        await self._announce(event)
        self.metrics.failures.labels(channel).inc()
        await self.messages.tried(message_id, channel)
        self.log.warning("channel refused message", message_id=message_id, channel=channel)

    async def _retry_later(self, claimed: Claimed, channel: str, error: Exception) -> None:
        attempts = claimed.attempts + 1
        pause = min(self.settings.retry_max_seconds, 5 * 2**attempts)
        at = datetime.now(UTC) + timedelta(seconds=pause)
        await self.messages.retry_later(claimed.message_id, attempts, at)
        self.log.warning(
            "message will be retried",
            message_id=claimed.message_id,
            channel=channel,
            retry_in_seconds=pause,
            error=describe(error),
        )

    def _channel_order(self, supporter: SupporterContact, tried: list[str]) -> list[ChannelName]:
        """The supporter's own channel first, the other as the fallback, where possible."""
        preferred: list[ChannelName] = [
            supporter.channel,
            "sms" if supporter.channel == "email" else "email",
        ]
        return [
            name
            for name in preferred
            if name in self.channels
            and name not in tried
            and (name != "sms" or supporter.phone is not None)
        ]

    def _message_links(self, assignment: PeerAssigned, message_id: str, step: str) -> MessageLinks:
        if kind_of(step) in (OFFER, REMINDER):
            return MessageLinks(respond=self.links.respond_url(assignment.assignment_id))
        assignment_id = assignment.assignment_id
        return MessageLinks(
            log_contact=self.links.url(Purpose.LOG_CONTACT, assignment_id, nonce=message_id),
            end=self.links.url(Purpose.END_SUPPORT, assignment_id, nonce=message_id),
            concern=self.links.url(Purpose.CONCERN, assignment_id),
        )

    async def _settle_and_announce(
        self, message_id: str, state: str, event: Envelope, **fields: object
    ) -> None:
        """Record how a step ended and announce it, together."""

        async def work(session: AsyncClientSession, now: datetime) -> Announcements:
            await self.messages.settle(message_id, state, session, **fields)
            return [(self.topics.notifications, event)]

        await self.settlements.run(work)

    async def _announce(self, event: Envelope) -> None:
        async def work(session: AsyncClientSession, now: datetime) -> Announcements:
            return [(self.topics.notifications, event)]

        await self.unit_of_work.run(work)

    # --- What comes back through the links ------------------------------------------------

    async def offer(self, assignment_id: str) -> Offer | None:
        offer = await self.offers.get(assignment_id)
        if offer is None:
            return None
        return replace(offer, supporter=await self.supporters.of(offer.assignment.supporter_id))

    async def answer(self, offer: Offer, answer: Outcome) -> bool:
        """Record the supporter's answer once, before the offer's deadline; returns False when
        the offer was no longer open or its deadline had passed."""
        assignment = offer.assignment
        assignment_id = str(assignment.assignment_id)

        async def record(session: AsyncClientSession, now: datetime) -> Announcements:
            if offer.too_late_to_answer(now):
                return []
            if not await self.offers.answer(session, assignment_id, answer, now):
                return []
            if answer == Outcome.ACCEPTED:
                settings = self.settings
                steps = support_steps(now, settings.follow_up_after, settings.support_ends_after)
                await self.messages.schedule(session, assignment, steps)
            return [(self.topics.responses, answered(assignment, answer == Outcome.ACCEPTED, now))]

        if not await self.unit_of_work.run(record):
            return False
        self.metrics.answers.labels(answer).inc()
        self.log.info("offer answered", assignment_id=assignment_id, answer=answer)
        return True

    async def log_contact(self, link: Link, assignment: PeerAssigned, entry: ContactEntry) -> bool:
        """Record one contact per link; returns False when the link was used before."""

        async def record(session: AsyncClientSession, now: datetime) -> Announcements:
            if not await self._first_use(session, Purpose.LOG_CONTACT, link.nonce, assignment, now):
                return []
            case_id = str(assignment.case_id)
            first = await self.contacted_cases.first(session, case_id, now, case_id=case_id)
            logged = contact_logged(assignment, entry, link.nonce, now, first_of_case=first)
            await self.offers.count_contact(session, str(assignment.assignment_id))
            lapse_at = now + self.settings.support_ends_after
            await self.messages.postpone(session, str(assignment.assignment_id), LAPSE, lapse_at)
            return [(self.topics.notifications, logged)]

        if not await self.unit_of_work.run(record):
            return False
        self.metrics.contacts_logged.inc()
        self.log.info("contact logged", assignment_id=str(link.assignment_id))
        return True

    async def _first_use(
        self,
        session: AsyncClientSession,
        purpose: Purpose,
        nonce: str,
        assignment: PeerAssigned,
        now: datetime,
    ) -> bool:
        """Marks a single-use link (or the lapse step) used; False when it was before."""
        key, case_id = _used_key(purpose, nonce), str(assignment.case_id)
        return await self.used_links.first(session, key, now, case_id=case_id)

    async def link_used(self, link: Link, purpose: Purpose) -> bool:
        """Whether a single-use link was used: opening it again says so at once."""
        return await self.used_links.seen(_used_key(purpose, link.nonce))

    async def end_support(
        self, link: Link, offer: Offer, outcome: SupportOutcome, referral: ReferralKind | None
    ) -> bool:
        """The supporter says support has ended; returns False for a link used before or an
        offer no longer in support."""
        if outcome not in ENDED_BY_SUPPORTER:
            raise ValueError(f"{outcome} is not the supporter's to choose")
        return await self._end(offer.assignment, outcome, referral, link.nonce)

    async def _end(
        self,
        assignment: PeerAssigned,
        outcome: SupportOutcome,
        referral: ReferralKind | None,
        nonce: str,
    ) -> bool:
        """End support once: what remains is skipped, matching gets the capacity back.
        `nonce`: the link's (used once), or the lapse step's own message id."""
        assignment_id = str(assignment.assignment_id)
        lapse = nonce == f"{assignment_id}/{LAPSE}"

        async def record(session: AsyncClientSession, now: datetime) -> Announcements:
            if not await self._first_use(session, Purpose.END_SUPPORT, nonce, assignment, now):
                return []
            contacts = await self.offers.end(session, assignment_id, outcome, now)
            if contacts is None:
                return []
            await self.messages.skip_remaining(session, assignment_id)
            if lapse:
                await self.messages.settle(nonce, State.DONE, session)
            event = support_ended(assignment, outcome, referral, now, contacts=contacts)
            return [(self.topics.responses, event)]

        ended = bool(await self.unit_of_work.run(record))
        if lapse and not ended:
            await self.messages.settle(nonce, State.SKIPPED)
        if ended:
            self.log.info("support ended", assignment_id=assignment_id, outcome=outcome)
        return ended

    async def raise_concern(self, offer: Offer, nonce: str) -> bool:
        """The supporter's concern for the colleague's safety, announced once per form (a
        second click on the same page raises nothing more); False once support has ended."""
        if not offer.in_support:
            return False
        assignment = offer.assignment

        async def record(session: AsyncClientSession, now: datetime) -> Announcements:
            raised = concern_raised(assignment, nonce, now)
            return [(self.topics.responses, raised)]

        await self.unit_of_work.run(record)
        return True

    async def still_supporting(self, link: Link, offer: Offer) -> bool:
        """One more follow-up, and the lapse moves after it; once per link."""
        assignment = offer.assignment
        assignment_id = str(assignment.assignment_id)
        continued = False

        async def record(session: AsyncClientSession, now: datetime) -> Announcements:
            nonlocal continued
            if offer.ended or not await self._first_use(
                session, Purpose.END_SUPPORT, link.nonce, assignment, now
            ):
                return []
            after = now + self.settings.still_supporting_after
            step = follow_up(after - (offer.answered_at or now))
            await self.messages.schedule(session, assignment, [Scheduled(step, after)])
            lapse_at = after + self.settings.support_ends_after
            await self.messages.postpone(session, assignment_id, LAPSE, lapse_at)
            continued = True
            return []

        await self.unit_of_work.run(record)
        return continued


def _used_key(purpose: Purpose, nonce: str) -> str:
    """What marks a single-use link used: a contact link's nonce, an ending link's (or the
    lapse step's) prefixed, as they have always been stored."""
    return nonce if purpose is Purpose.LOG_CONTACT else f"end/{nonce}"
