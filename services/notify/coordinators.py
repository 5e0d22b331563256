"""Telling coordinators: an urgent escalation at once (as soon as notify knows how to reach
the colleague, or after a short grace), everything else in each hospital's daily digest."""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from services.notify.alert_store import FAILED, PENDING, SENT, Alerts
from services.notify.channels import Channel
from services.notify.coordinator_mail import (
    CONCERN,
    Alert,
    alert_mail,
    concern_alert,
    digest_mail,
    due_digest,
    escalation_alert,
    undelivered_alert,
)
from services.notify.store import CaseContacts, Supporters
from shared.errors import RejectedEvent, describe
from shared.events import (
    CaseEscalated,
    NotificationFailed,
    NotificationNews,
    PeerNotified,
    SafetyConcernRaised,
)
from shared.kafka import is_passing
from shared.mail import Outreach


@dataclass
class CoordinatorAlerts:
    alerts: Alerts
    contacts: CaseContacts
    email: Channel
    addresses: dict[str, list[str]]
    """Each hospital's coordinators."""
    safety_contacts: dict[str, list[str]]
    """Each hospital's professional back-up, told of safety concerns with the coordinators."""
    supporters: Supporters
    desk_url: str
    digest_every: timedelta
    contact_grace: timedelta
    """How long an urgent alert about a case nobody fits waits for the colleague's contact
    details (they come on another topic) before it goes without them."""
    log: Any
    zone: str
    """The hospitals' time zone, for the times in a digest."""

    async def escalated(self, event: CaseEscalated) -> None:
        await self._add(escalation_alert(event))

    async def concern(self, event: SafetyConcernRaised) -> None:
        supporter = await self.supporters.of(event.supporter_id) if event.supporter_id else None
        await self._add(concern_alert(event, supporter))

    def _recipients(self, alert: Alert) -> list[str]:
        hospital = alert.hospital_id
        back_up = self.safety_contacts.get(hospital, []) if alert.kind == CONCERN else []
        return [*self.addresses.get(hospital, []), *back_up]

    async def heard(self, notifications: Sequence[NotificationNews]) -> None:
        """Notify's own news, in order: a failure makes an alert; messages that got
        through after all clear theirs, together until the next failure."""
        through: list[tuple[str, str, datetime]] = []
        for news in notifications:
            if isinstance(news, PeerNotified):
                through.append((str(news.assignment_id), news.step, news.occurred_at))
            elif isinstance(news, NotificationFailed):
                await self.alerts.got_through(through)
                through = []
                await self._add(undelivered_alert(news))
        await self.alerts.got_through(through)

    async def _add(self, alert: Alert) -> None:
        if not self._recipients(alert):
            self.log.warning(
                "no coordinator address for the hospital; the desk's worklist has it",
                hospital_id=alert.hospital_id,
                case_id=alert.case_id,
            )
            return
        await self.alerts.add(alert)

    async def send_due(self) -> None:
        """The urgent alerts now, then the digests that are due."""
        now = datetime.now(UTC)
        for urgent in (await self.alerts.pending(urgent=True)).values():
            for alert in urgent:
                await self._urgent(alert, now)
        for hospital_id, waiting in (await self.alerts.pending(urgent=False)).items():
            if due_digest(await self.alerts.last_digest(hospital_id), now, self.digest_every):
                await self._digest(hospital_id, waiting, now)

    async def _urgent(self, alert: Alert, now: datetime) -> None:
        contact = await self.contacts.of_case(alert.case_id)
        if alert.no_peer and contact is None and now - alert.at < self.contact_grace:
            return  # the contact may still come

        def mail(told: list[Alert], to: str) -> Outreach:
            return alert_mail(told[0], contact, self.desk_url, to)

        await self._mail([alert], mail)

    async def _digest(self, hospital_id: str, waiting: list[Alert], now: datetime) -> None:
        contacts = {
            a.case_id: contact
            for a in waiting
            if a.no_peer and (contact := await self.contacts.of_case(a.case_id))
        }
        if await self._mail(
            waiting,
            lambda told, to: digest_mail(hospital_id, told, contacts, self.desk_url, to, self.zone),
        ):
            await self.alerts.digested(hospital_id, now)

    async def _mail(
        self, alerts: list[Alert], compose: Callable[[list[Alert], str], Outreach]
    ) -> bool:
        """Claim, send to each of the hospital's coordinators, settle; True once sent."""
        claimed = await self.alerts.claim(alerts)
        if not claimed:
            return False
        hospital_id = claimed[0].hospital_id
        try:
            for to in self._recipients(claimed[0]):
                await self.email.send(
                    compose(claimed, to), f"coordinator.{claimed[0].alert_id}.{to}"
                )
        except RejectedEvent as refused:
            await self.alerts.settle(claimed, FAILED)
            self.log.error(
                "coordinator mail refused", hospital_id=hospital_id, error=describe(refused)
            )
            return False
        except Exception as error:
            if not is_passing(error):
                raise
            await self.alerts.settle(claimed, PENDING)
            self.log.warning("coordinator mail will be retried", error=describe(error))
            return False
        await self.alerts.settle(claimed, SENT)
        self.log.info("coordinators told", hospital_id=hospital_id, alerts=len(claimed))
        return True
