"""The channels notify reaches supporters through.

Each raises `RejectedEvent` when the provider refuses the message for good (the fallback
channel is tried) and `RetryLater` when it may pass (retried with a growing pause).
"""

from dataclasses import KW_ONLY, dataclass, field
from email.message import EmailMessage
from typing import Protocol

import aiosmtplib
import httpx

from services.notify.messages import Outreach
from shared.errors import RejectedEvent, RetryLater


class Channel(Protocol):
    name: str
    retries_are_safe: bool
    """Whether sending the same message again after a crash cannot reach the supporter
    twice (the provider drops a repeated idempotency key); SMTP cannot promise that."""

    async def send(self, outreach: Outreach, message_id: str) -> None: ...


@dataclass
class EmailChannel:
    host: str
    port: int
    sender: str
    _: KW_ONLY
    start_tls: bool = False
    username: str | None = None
    password: str | None = None
    ca_file: str | None = None
    """Certificates to trust for STARTTLS besides the system's."""
    timeout: float = 15.0
    name: str = field(default="email", init=False)
    retries_are_safe: bool = field(default=False, init=False)

    async def send(self, outreach: Outreach, message_id: str) -> None:
        """Send one message; its Message-ID is the assignment's, so a repeat is recognisable."""
        message = EmailMessage()
        message["From"] = self.sender
        message["To"] = outreach.to
        message["Subject"] = outreach.subject
        message["Message-ID"] = f"<{message_id}@peer-support>"
        message.set_content(outreach.body)
        message["Content-Language"] = outreach.language  # after set_content, which clears it
        try:
            await aiosmtplib.send(
                message,
                hostname=self.host,
                port=self.port,
                start_tls=self.start_tls,
                username=self.username,
                password=self.password,
                cert_bundle=self.ca_file,
                timeout=self.timeout,
            )
        except aiosmtplib.SMTPRecipientsRefused as error:
            if all(500 <= refused.code < 600 for refused in error.recipients):
                raise RejectedEvent(f"the mail server refuses {outreach.to}: {error}") from error
            raise RetryLater(f"the mail server defers {outreach.to}: {error}") from error
        except aiosmtplib.SMTPException as error:
            # Down, full, or misconfigured: not the assignment's fault, so it waits its turn.
            raise RetryLater(f"mail server {self.host}:{self.port}: {error}") from error


class WebhookChannel:
    """SMS or pager through an HTTP provider: one JSON post per message.

    The body is `{"to": phone, "text": ..., "reference": message_id}`, with the message id
    also in the `Idempotency-Key` header, so a provider that honours it delivers a repeat
    once. 2xx is sent; 408, 429 and 5xx may pass; any other 4xx is final.
    """

    name = "sms"
    retries_are_safe = True

    def __init__(self, url: str, token: str | None = None, timeout: float = 10.0) -> None:
        self.url = url
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.timeout = timeout

    async def send(self, outreach: Outreach, message_id: str) -> None:
        try:
            async with httpx.AsyncClient(timeout=self.timeout) as client:
                response = await client.post(
                    self.url,
                    json={"to": outreach.to, "text": outreach.body, "reference": message_id},
                    headers={**self.headers, "Idempotency-Key": message_id},
                )
        except httpx.HTTPError as error:
            raise RetryLater(f"sms provider {self.url}: {error}") from error
        if response.is_success:
            return
        reason = f"sms provider answered {response.status_code}: {response.text[:200]}"
        if response.status_code in (408, 429) or response.status_code >= 500:
            raise RetryLater(reason)
        raise RejectedEvent(reason)
