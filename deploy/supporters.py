"""Supporters, simulated for the demo: they read their mail and use its links as a person
would, through notify's pages over HTTP. Most accept, some decline, some do not answer (and
get a reminder); those who accepted record a contact after the first follow-up."""

import hashlib
import re
from collections import Counter
from collections.abc import Iterable
from datetime import date, datetime
from email.message import Message
from zoneinfo import ZoneInfo

import httpx

OFFER_SUBJECTS = ("Verzoek om collegiale ondersteuning", "Request for peer support")
FOLLOW_UP_SUBJECTS = ("Hoe gaat het met je collega?", "How is your colleague doing?")


def body_of(mail: Message) -> str:
    payload = mail.get_payload(decode=True)
    return payload.decode() if isinstance(payload, bytes) else ""


def link(mail: Message, path: str) -> str | None:
    found = re.search(rf"(https?://\S+/{path}\?t=\S+)", body_of(mail))
    return found.group(1) if found else None


def _share(mail: Message) -> int:
    """0-99, fixed per message, so a rerun of the demo makes the same choices."""
    return int(hashlib.sha256(str(mail["Message-ID"]).encode()).hexdigest(), 16) % 100


def is_offer(mail: Message) -> bool:
    return str(mail["Subject"]).startswith(OFFER_SUBJECTS)


def is_follow_up(mail: Message) -> bool:
    return str(mail["Subject"]).startswith(FOLLOW_UP_SUBJECTS)


def answer_offers(mails: Iterable[Message], answered: set[str]) -> Counter[str]:
    """70% accept, 15% decline, 15% leave the offer unanswered; each offer once."""
    done: Counter[str] = Counter()
    with httpx.Client(timeout=10.0) as client:
        for mail in mails:
            url = link(mail, "respond")
            if not is_offer(mail) or url is None or mail["Message-ID"] in answered:
                continue
            share = _share(mail)
            if share >= 85:
                answered.add(str(mail["Message-ID"]))
                done["unanswered"] += 1
                continue
            answer = "accept" if share < 70 else "decline"
            try:
                response = client.post(url, data={"answer": answer})
            except httpx.TransportError:
                continue  # notify is down: the supporter tries again later
            answered.add(str(mail["Message-ID"]))
            done[answer if response.status_code == 200 else f"refused {response.status_code}"] += 1
    return done


def hospitals_today() -> date:
    """The day in the hospitals' calendar: a contact is dated neither before the acceptance
    nor in the future there, whatever the machine's own zone."""
    return datetime.now(ZoneInfo("Europe/Amsterdam")).date()


def log_contacts(mails: Iterable[Message], logged: set[str], today: date) -> int:
    """One contact per accepted offer, from its first follow-up: 20 to 90 minutes, mostly by
    phone or in person, now and then a referral to professional help."""
    count = 0
    with httpx.Client(timeout=10.0) as client:
        for mail in sorted(mails, key=lambda m: str(m["Message-ID"])):
            url = link(mail, "log-contact")
            assignment = str(mail["Message-ID"]).strip("<>").split(".", 1)[0]
            if not is_follow_up(mail) or url is None or assignment in logged:
                continue
            share = _share(mail)
            entry = {
                "contact_date": today.isoformat(),
                "minutes": str(20 + share * 70 // 100),
                "mode": ("phone", "in_person", "video")[share % 3],
                "tier": "1" if share < 80 else "2",
                "referred": "true" if share >= 90 else "",
            }
            try:
                response = client.post(url, data=entry)
            except httpx.TransportError:
                continue  # notify is down: the supporter tries again later
            logged.add(assignment)
            count += response.status_code == 200
    return count


CLOSING_SUBJECTS = (
    "Is de ondersteuning van je collega afgerond?",
    "Has support for your colleague ended?",
)
REFERRALS = ("psychologist", "occupational_physician", "eap", "spiritual_care")
ENDINGS = ((70, "completed"), (80, "referred"), (86, "unreachable"), (92, "declined_by_colleague"))
"""Shares (0-99) below which a supporter ends support so; the rest leave it to lapse."""


def end_support(mails: Iterable[Message], ended: set[str]) -> Counter[str]:
    """Each supporter says how support ended, once per assignment, from its latest prompt:
    most completed, some referred (the kind of help only), a few could not reach the colleague
    or were turned down, and some never answer, so that support lapses by itself."""
    done: Counter[str] = Counter()
    with httpx.Client(timeout=10.0) as client:
        for mail in sorted(mails, key=lambda m: str(m["Message-ID"])):
            url = link(mail, "end-support")
            assignment = str(mail["Message-ID"]).strip("<>").split(".", 1)[0]
            if url is None or assignment in ended:
                continue
            share = _share(mail)
            ended.add(assignment)
            if share >= 92:
                done["left to lapse"] += 1
                continue
            outcome = next(o for limit, o in ENDINGS if share < limit)
            form = {"choice": "end", "outcome": outcome, "referral": ""}
            if outcome == "referred":
                form["referral"] = REFERRALS[share % len(REFERRALS)]
            try:
                response = client.post(url, data=form)
            except httpx.TransportError:
                ended.discard(assignment)
                continue
            done[outcome if response.status_code == 200 else "already ended"] += 1
    return done
